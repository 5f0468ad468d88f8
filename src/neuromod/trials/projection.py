"""Long-term projection: treated every N days against never treated, over years.

Static lines (seen at rest) deepen with folding, faster with age, sun and smoking, and repair
slowly while folding is absent (:mod:`neuromod.model.skin`). Repeated treatment keeps folding low,
so over years the treated face's static lines soften while the untreated face's deepen.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from neuromod.model.simulate import SimulationResult, simulate
from neuromod.schemas.plan import Plan, parse_plan

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Projection:
    """Both arms' courses (daily) and the yearly summary per treated area."""

    years: int
    every_days: float
    treated: SimulationResult
    untreated: SimulationResult

    def yearly(self) -> dict[str, list[dict[str, float]]]:
        """Per area, per year: expected FWS at rest and at contraction (mean over that year's
        last 30 days), treated and untreated."""
        table: dict[str, list[dict[str, float]]] = {}
        for area in self.treated.treated_areas:
            rows = []
            for year in range(1, self.years + 1):
                window = slice(max(0, year * 365 - 30), year * 365 + 1)
                t, u = self.treated.courses[area], self.untreated.courses[area]
                rows.append({
                    "year": year,
                    "treated_rest": float(t.fws_rest[window].mean()),
                    "untreated_rest": float(u.fws_rest[window].mean()),
                    "treated_contraction": float(t.fws_contraction[window].mean()),
                    "untreated_contraction": float(u.fws_contraction[window].mean()),
                })
            table[area] = rows
        return table


def project(plan: Plan, years: int = 10, every_days: float = 120.0) -> Projection:
    """Simulate ``plan`` repeated every ``every_days`` for ``years`` years, and no treatment."""
    document = plan.model_dump(exclude={"treatment_days", "every_days", "until_day"}, exclude_none=True)
    horizon = 365 * years
    treated = parse_plan({**document, "every_days": every_days, "until_day": min(horizon, 3650)})
    areas = sorted({p.area for p in plan.points() if p.area != "custom"}) or ["glabella"]
    untreated = parse_plan({"patient": document["patient"], "product": "placebo", "areas": {a: 0 for a in areas}})
    return Projection(years, every_days, simulate(treated, days=horizon), simulate(untreated, days=horizon))
