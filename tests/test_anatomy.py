import numpy as np
import pytest

from neuromod.reference.anatomy import load_face_map


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
