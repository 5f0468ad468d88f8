"""Benchmark: the plan editor's live evaluation against the prediction alone, in the same run.

Work: a draft of five glabella sites (4 U each) and one free point near the left brow (the
editor's typical state), evaluated as ``POST /api/patients/{id}/evaluate`` does it, without
HTTP or database: ``simulate(plan, 180)`` (the course and spread field) + :func:`evaluate_draft` (totals,
conversions, units per muscle, the 200-patient ptosis cohort, the course plot). Peer:
``simulate(plan, 180).to_json()`` alone (what ``POST /api/predict`` computes).

Target (issue 13): the editor updates "within a fraction of a second": p95 of the whole
evaluation under 500 ms on one core.

    .venv/bin/python benchmarks/web_evaluate.py [--repeats 20]
"""

from __future__ import annotations

import argparse
import statistics
import time

from threadpoolctl import threadpool_limits

from neuromod.clinic.web.evaluate import evaluate_draft
from neuromod.model.simulate import simulate
from neuromod.schemas.plan import parse_plan

TARGET_P95_MS = 500.0
DRAFT = {"product": "botox", "injections": [
    *({"site": site, "units": 4} for site in ("glabella_procerus", "glabella_corrugator_medial_left",
                                              "glabella_corrugator_medial_right", "glabella_corrugator_mid_left",
                                              "glabella_corrugator_mid_right")),
    {"x_mm": 30, "y_mm": 12, "units": 2}]}


def timed_ms(work, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(1000.0 * (time.perf_counter() - start))
    return times


def p95(times: list[float]) -> float:
    return statistics.quantiles(times, n=20)[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    plan = parse_plan(DRAFT)

    def prediction_alone() -> None:
        simulate(plan, days=180).to_json()

    def whole_evaluation() -> None:
        evaluate_draft(simulate(plan, days=180), treatment_day=0.0)

    with threadpool_limits(limits=1):
        whole_evaluation()  # compile and warm caches
        peer = timed_ms(prediction_alone, args.repeats)
        ours = timed_ms(whole_evaluation, args.repeats)
    print(f"plan editor evaluation, {args.repeats} repeats, one BLAS thread")
    print(f"  prediction alone (simulate --json)   p50 {statistics.median(peer):7.1f} ms   p95 {p95(peer):7.1f} ms")
    print(f"  whole live evaluation                p50 {statistics.median(ours):7.1f} ms   p95 {p95(ours):7.1f} ms")
    print(f"  ratio (evaluation / prediction) p50 {statistics.median(ours) / statistics.median(peer):.2f}x; "
          f"target p95 < {TARGET_P95_MS:g} ms: {'met' if p95(ours) < TARGET_P95_MS else 'MISSED'}")


if __name__ == "__main__":
    main()
