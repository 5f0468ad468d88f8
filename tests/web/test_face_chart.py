"""The face chart and the plan editor's evaluation without a browser (run everywhere)."""

from __future__ import annotations

import re

import pytest

from neuromod.clinic.web.evaluate import evaluate_draft
from neuromod.clinic.web.face_chart import ChartPoint, face_chart_svg
from neuromod.model.simulate import simulate
from neuromod.schemas.plan import parse_plan


def test_chart_is_drawn_from_the_face_map(face_map):
    svg = face_chart_svg(interactive=True)
    sites = re.findall(r'<circle class="site" data-site="([^"]+)"[^>]*cx="([^"]+)" cy="([^"]+)"', svg)
    assert {name for name, _, _ in sites} == set(face_map.sites)
    for name, cx, cy in sites:  # SVG x = x_mm, SVG y = -y_mm
        assert float(cx) == face_map.sites[name].x_mm and float(cy) == -face_map.sites[name].y_mm
    assert len(re.findall(r'data-muscle="', svg)) == len(face_map.regions)
    danger = set(re.findall(r'class="muscle[^"]* danger[^"]*" data-muscle="([^"]+)"', svg))
    assert danger == {r.key for r in face_map.regions if r.danger}
    assert {"levator_palpebrae_superioris_left", "frontalis_lower_right"} <= danger


def test_mini_chart_shows_only_the_given_points():
    svg = face_chart_svg([ChartPoint(10, 5, 4, "a"), ChartPoint(-10, 5, 16, "b")])
    assert 'class="site"' not in svg
    radii = [float(r) for r in re.findall(r'class="given-point"[^>]*r="([^"]+)"', svg)]
    assert len(radii) == 2 and radii[1] > radii[0]  # more units, larger dot


def _evaluate(document):
    plan = parse_plan(document)
    return evaluate_draft(simulate(plan, days=180), treatment_day=0.0)


@pytest.fixture(scope="module")
def label_glabella():
    return _evaluate({"product": "botox", "areas": {"glabella": 20}})


def test_totals_conversion_and_limits(label_glabella):
    assert label_glabella.total_units == pytest.approx(20)
    assert [(a.area, a.units, a.points) for a in label_glabella.areas] == [("glabella", 20, 5)]
    dysport = next(c for c in label_glabella.conversions if c.product == "dysport")
    # products.csv: 2.5 (range 2.5-3.0) Dysport units per Botox unit
    assert (dysport.units, dysport.low, dysport.high) == (50.0, 50.0, 60.0)
    assert label_glabella.limits.max_session_units == 400
    reached = sum(m.units for m in label_glabella.muscles) + label_glabella.lost_units
    assert reached == pytest.approx(20, abs=0.05)  # conservation (shown muscles >= 0.01 U)
    glabella = label_glabella.landmarks[0]
    assert glabella.onset_day < glabella.peak_day < glabella.wear_off_day
    assert "not medical advice" in label_glabella.disclaimer
    assert 'data-area="glabella"' in label_glabella.course_svg


def test_ptosis_risk_follows_the_point_to_the_danger_zone(label_glabella):
    near_levator = _evaluate({"product": "botox", "injections": [{"x_mm": 28, "y_mm": 2, "units": 6}]})
    high_forehead = _evaluate({"product": "botox", "injections": [{"x_mm": 28, "y_mm": 40, "units": 6}]})
    risk = {e.event: e.risk_pct for e in near_levator.ptosis}
    far = {e.event: e.risk_pct for e in high_forehead.ptosis}
    assert set(risk) == {"eyelid_ptosis", "brow_ptosis"}
    # each risk says the block it needs, the brow's second rule included (report.tables.event_rule)
    rules = {e.event: e.rule for e in near_levator.ptosis}
    assert rules["eyelid_ptosis"] == "block > 30%" and "whose brow rests on frontalis tone" in rules["brow_ptosis"]
    assert risk["eyelid_ptosis"] > far["eyelid_ptosis"]
