import pytest

from neuromod.reference.products import convert, get_product, load_products


def test_every_product_has_sources_and_sane_numbers():
    products = load_products()
    assert {"botox", "dysport", "xeomin", "jeuveau", "daxxify", "letybo", "placebo"} <= set(products)
    for p in products.values():
        assert p.equivalence_source and p.spread_source and p.limits_source
        assert p.units_per_ona_unit_low <= p.units_per_ona_unit <= p.units_per_ona_unit_high
        assert p.vial_units > 0 and p.label_saline_ml > 0 and p.max_session_units > 0


def test_label_concentration_botox_is_4_units_per_0_1_ml():
    assert get_product("botox").label_units_per_ml / 10 == pytest.approx(4.0)
    assert get_product("daxxify").label_units_per_ml / 10 == pytest.approx(100 / 12, rel=1e-6)


def test_convert_botox_to_dysport_uses_2_5_to_3_range():
    result = convert(20, "botox", "dysport")
    assert result.units == pytest.approx(50)
    assert result.low == pytest.approx(50) and result.high == pytest.approx(60)
    assert "NIHMS710244" in result.source


def test_convert_round_trip_and_placebo():
    there = convert(20, "botox", "dysport").units
    assert convert(there, "dysport", "botox").units == pytest.approx(20)
    assert get_product("placebo").to_ona_units(20) == 0.0
    with pytest.raises(ValueError, match="placebo"):
        convert(20, "placebo", "botox")


def test_unknown_product_names_the_field_and_the_choices():
    with pytest.raises(ValueError, match=r"product: unknown product 'botax'; allowed: .*botox"):
        get_product("botax")
