import re

import numpy as np
import pytest

from neuromod.model.simulate import simulate
from neuromod.reference.anatomy import load_face_map
from neuromod.reference.parameters import apply_overrides, default_parameters
from neuromod.schemas.plan import parse_plan


def test_paired_muscles_are_mirrored(face_map):
    left = face_map.region("corrugator_supercilii_left")
    right = face_map.region("corrugator_supercilii_right")
    assert right.cx_mm == -left.cx_mm and right.cy_mm == left.cy_mm
    assert right.angle_deg == -left.angle_deg
    # a point inside the left region mirrors into the right one
    assert left.contains(np.array([left.cx_mm + 3]), np.array([left.cy_mm]))[0]
    assert right.contains(np.array([-(left.cx_mm + 3)]), np.array([left.cy_mm]))[0]


def test_every_site_lies_in_its_target_muscle_and_on_the_face(face_map):
    for site in face_map.sites.values():
        sides = ("left", "right") if site.side == "midline" else (site.side,)
        keys = [site.target_muscle] + [f"{site.target_muscle}_{side}" for side in sides]
        regions = [r for r in face_map.regions if r.key in keys]
        assert regions, site.name
        assert any(r.contains(np.array([site.x_mm]), np.array([site.y_mm]))[0] for r in regions), site.name
        assert face_map.on_face(site.x_mm, site.y_mm), site.name


def test_site_shares_sum_to_one_per_area(face_map):
    for area in face_map.areas_with_sites:
        shares = [s.share for s in face_map.area_sites(area)]
        assert sum(shares) == pytest.approx(1.0, abs=1e-5), area


def test_label_glabella_pattern_has_five_sites_and_crows_feet_six(face_map):
    assert len(face_map.area_sites("glabella")) == 5
    assert len(face_map.area_sites("forehead")) == 5
    assert len(face_map.area_sites("crows_feet")) == 6


def test_area_weights_rows_sum_to_one(face_map):
    weights = face_map.area_weights()
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-9)


def test_danger_zones_present(face_map):
    dangers = {r.key: r.danger for r in face_map.regions if r.danger}
    assert dangers["levator_palpebrae_superioris_left"] == "eyelid_ptosis"
    assert dangers["frontalis_lower_right"] == "brow_ptosis"


def test_glabella_sites_stay_clear_of_the_levator(face_map):
    for side in ("left", "right"):
        levator = face_map.region(f"levator_palpebrae_superioris_{side}")
        for site in face_map.area_sites("glabella"):
            distance = np.hypot(site.x_mm - levator.cx_mm, site.y_mm - levator.cy_mm)
            assert distance > levator.semi_major_mm + 8, site.name


def test_outline_rejects_points_off_the_face(face_map):
    assert face_map.on_face(0.0, 0.0)
    assert not face_map.on_face(200.0, 0.0)
    assert not face_map.on_face(0.0, -150.0)


def test_face_map_is_cached():
    assert load_face_map() is load_face_map()


def test_region_masks_equal_testing_every_cell() -> None:
    """region_masks tests each region only on the square of cells around it; the masks are the
    ones testing every cell of the grid gives, for every muscle of the shipped face map."""
    face_map = load_face_map()
    grid = face_map.grid
    every_cell = np.stack([region.contains(grid.x, grid.y) for region in face_map.regions])
    np.testing.assert_array_equal(face_map.region_masks, every_cell)
    assert every_cell.any(axis=1).all()  # every region covers cells


def test_area_shares_replace_a_muscles_weight_and_rescale_the_rest(face_map):
    """``params.skin.area_share`` sets one muscle's share of its area; the area's other muscles keep
    their published proportions (muscles.csv) in what is left, and every row still sums to 1."""
    plain = face_map.area_weights()
    shared = face_map.area_weights({"zygomaticus_major": 0.4})
    area = face_map.areas.index("crows_feet")
    zygomaticus = [j for j, r in enumerate(face_map.regions) if r.muscle == "zygomaticus_major"]
    orbicularis = [j for j, r in enumerate(face_map.regions) if r.muscle == "orbicularis_oculi_lateral"]
    assert shared[area, zygomaticus].sum() == pytest.approx(0.4)
    assert shared[area, orbicularis].sum() == pytest.approx(0.6)
    np.testing.assert_allclose(shared.sum(axis=1), 1.0, atol=1e-12)
    others = [a for a in range(len(face_map.areas)) if a != area]
    np.testing.assert_array_equal(shared[others], plain[others])
    np.testing.assert_allclose(face_map.area_weights({"zygomaticus_major": 0.25}), plain, atol=1e-12)


@pytest.mark.parametrize("shares, message", [
    ({"no_such_muscle": 0.3}, "'no_such_muscle' is not a muscle in a face-map area"),
    ({"orbicularis_oculi": 0.3}, "'orbicularis_oculi' is not a muscle in a face-map area"),
    ({"zygomaticus_major": 1.2}, "outside 0-1"),
    ({"zygomaticus_major": 0.7, "orbicularis_oculi_lateral": 0.6}, "leave -0.3"),
])
def test_area_shares_out_of_range_are_refused(face_map, shares, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        face_map.area_weights(shares)


def test_the_fitted_zygomaticus_share_reaches_the_crows_feet_grades(face_map):
    """The share is a model parameter (skin.area_share, fitted): overriding it moves a crow's-feet
    plan's residual expression at maximum smile and leaves a glabella plan's alone."""
    params = default_parameters()
    more = apply_overrides(params, {"skin.area_share.zygomaticus_major": 0.5})  # fitted 0.40 (stop 32)
    assert more.skin.area_share == {**params.skin.area_share, "zygomaticus_major": 0.5}
    plan = parse_plan({"product": "botox", "areas": {"crows_feet": 24, "glabella": 20}})
    crows_feet, glabella = face_map.areas.index("crows_feet"), face_map.areas.index("glabella")
    base = simulate(plan, params=params, days=30).output.residual_expression[0]
    moved = simulate(plan, params=more, days=30).output.residual_expression[0]
    assert moved[crows_feet, -1] > base[crows_feet, -1] + 0.05
    np.testing.assert_allclose(moved[glabella], base[glabella], atol=1e-12)
    with pytest.raises(ValueError, match="no such parameter"):
        apply_overrides(params, {"skin.area_share.no_such_muscle": 0.3})
