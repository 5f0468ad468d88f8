import pytest

from neuromod.schemas.plan import PlanError, load_plan, parse_plan


def test_shortest_plan_gets_documented_defaults():
    plan = parse_plan({"product": "botox", "areas": {"glabella": 20}})
    assert plan.patient.age == 45 and plan.patient.sex == "female"
    assert plan.treatment_days == [0.0]
    assert plan.units_per_ml == pytest.approx(40.0)  # 100 U + 2.5 mL
    points = plan.points()
    assert len(points) == 5
    assert sum(p.units for p in points) == pytest.approx(20)
    assert all(p.volume_ml == pytest.approx(0.1) for p in points)


def test_dilution_sets_the_volume_and_volume_sets_the_units():
    plan = parse_plan({"product": "botox", "saline_ml": 1.0,
                       "injections": [{"site": "glabella_procerus", "volume_ml": 0.05}]})
    (point,) = plan.points()
    assert point.units == pytest.approx(5.0)  # 100 U/mL x 0.05 mL


@pytest.mark.parametrize(
    "document, fragment",
    [
        ({"product": "botax", "areas": {"glabella": 20}}, "product: unknown product 'botax'; allowed:"),
        ({"product": "botox", "areas": {"cheeks": 20}}, "areas.cheeks: unknown area; allowed:"),
        ({"product": "botox", "injections": [{"site": "nowhere", "units": 4}]}, "injections.0.site: unknown site 'nowhere'"),
        ({"product": "botox", "areas": {"glabella": -5}}, "areas.glabella: units must be > 0 and <= 125"),
        ({"product": "botox", "areas": {"glabella": 0}}, "areas.glabella: units must be > 0"),
        ({"product": "botox", "areas": {"glabella": 500}}, "areas.glabella: units must be > 0 and <= 125"),
        ({"product": "botox", "injections": [{"site": "glabella_procerus", "units": 80}]},
         "injections.0.units: must be > 0 and <= 25 botox units per site, got 80"),
        ({"product": "botox", "injections": [{"site": "glabella_procerus", "volume_ml": 0}]},
         "injections.0.volume_ml: must be > 0 and <= 0.5 mL per site"),
        ({"product": "botox", "areas": {"masseter": 150, "platysma": 100, "glabella": 40, "forehead": 40,
                                        "crows_feet": 60, "chin": 20}},
         "units (session total): 410 botox units exceeds the label maximum of 400"),
        ({"product": "botox", "areas": {"glabella": 20}, "treatment_days": [0, 60]},
         "treatment_days: day 60 comes 60 days after day 0; botox label: repeat no sooner than 90 days"),
        ({"product": "botox", "areas": {"glabella": 20}, "treatment_days": [5]},
         "treatment_days: the first treatment is day 0"),
        ({"product": "botox", "injections": [{"site": "glabella_procerus", "units": 4, "volume_ml": 0.3}]},
         "injections.0.units/volume_ml: 4 units in 0.3 mL disagrees with the dilution of 40 units/mL"),
        ({"product": "botox", "injections": [{"x_mm": 150, "y_mm": 0, "units": 4}]},
         "injections.0.x_mm/y_mm: point (150, 0) mm is off the face map"),
        ({"product": "botox", "injections": [{"x_mm": 10, "units": 4}]}, "injections.0: give a site, or both x_mm and y_mm"),
        ({"product": "botox", "injections": [{"site": "glabella_procerus"}]}, "injections.0: give units or volume_ml"),
        ({"product": "botox"}, "injections/areas: give at least one injection or one area"),
        ({"product": "botox", "areas": {"glabella": 20}, "patient": {"age": 12}}, "patient.age: must be greater than or equal to 18, got 12; allowed: years, 18-90"),
        ({"product": "botox", "areas": {"glabella": 20}, "patient": {"sex": "other"}}, "patient.sex: must be 'female' or 'male', got 'other'"),
        ({"product": "botox", "areas": {"glabella": 20}, "patient": {"baseline": {"glabella": {"contraction": 4}}}},
         "patient.baseline.glabella.contraction: must be less than or equal to 3, got 4; allowed: FWS grade"),
        ({"product": "botox", "areas": {"glabella": 20}, "patient": {"baseline": {"elbow": {"rest": 1}}}},
         "patient.baseline.elbow: unknown area"),
        ({"product": "botox", "areas": {"glabella": 20}, "colour": "blue"}, "colour: unknown field"),
        ({"product": "botox", "areas": {"glabella": 20}, "saline_ml": 0}, "saline_ml: must be greater than or equal to 0.25, got 0; allowed: mL of saline added, 0.25-10"),
    ],
)
def test_bad_plans_are_refused_with_the_field_and_range(document, fragment):
    with pytest.raises(PlanError) as error:
        parse_plan(document)
    assert fragment in str(error.value)


def test_placebo_accepts_zero_units():
    plan = parse_plan({"product": "placebo", "areas": {"glabella": 0}})
    assert plan.total_units() == 0


def test_dysport_limits_scale_with_its_units():
    parse_plan({"product": "dysport", "injections": [{"site": "glabella_procerus", "units": 30}]})
    with pytest.raises(PlanError, match="62.5 dysport units per site"):
        parse_plan({"product": "dysport", "injections": [{"site": "glabella_procerus", "units": 70}]})


def test_malformed_yaml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("product: botox\nareas: {glabella: 20\n")
    with pytest.raises(PlanError, match="plan file: .*bad.yaml: malformed YAML: .* at line 3"):
        load_plan(bad)
    with pytest.raises(PlanError, match="plan file: .*missing.yaml: cannot read"):
        load_plan(tmp_path / "missing.yaml")
    listy = tmp_path / "list.yaml"
    listy.write_text("- 1\n- 2\n")
    with pytest.raises(PlanError, match="plan: expected a mapping"):
        load_plan(listy)


def test_json_plans_are_read(tmp_path):
    path = tmp_path / "plan.json"
    path.write_text('{"product": "xeomin", "areas": {"crows_feet": 24}}')
    assert load_plan(path).product == "xeomin"
