"""Neuromodulator products: potency relative to onabotulinumtoxinA, spread, kinetics, label limits.

Data: ``data/products.csv`` (one row per product, each number with its source column).
Units of different products are not interchangeable; the model works internally in
onabotulinumtoxinA-equivalent units (``ona_units = units / units_per_ona_unit``). Beyond potency
and spread, a product can differ in how fast its toxin becomes available at the junction
(``availability_factor``: onset) and how long its light chain stays active
(``persistence_factor``: duration); both are 1 for onabotulinumtoxinA and act on every patient
treated with the product (:func:`neuromod.model.patient.with_product`), in every trial of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from neuromod.reference.files import read_csv


@dataclass(frozen=True)
class Product:
    """One product as its label and the equivalence literature describe it."""

    name: str
    generic: str
    contains_toxin: bool
    vial_units: float
    label_saline_ml: float
    units_per_ona_unit: float
    units_per_ona_unit_low: float
    units_per_ona_unit_high: float
    spread_factor: float
    max_session_units: float
    min_retreat_days: float
    label_glabella_units: float
    equivalence_source: str
    spread_source: str
    limits_source: str
    immunogenicity: float = 1.0
    immunogenicity_source: str = ""
    availability_factor: float = 1.0
    availability_source: str = ""
    persistence_factor: float = 1.0
    persistence_source: str = ""

    @property
    def label_units_per_ml(self) -> float:
        """Concentration after label reconstitution (units per mL)."""
        return self.vial_units / self.label_saline_ml

    def to_ona_units(self, units: float) -> float:
        """OnabotulinumtoxinA-equivalent units of ``units`` of this product (0 for placebo)."""
        return units / self.units_per_ona_unit if self.contains_toxin else 0.0


@dataclass(frozen=True)
class Conversion:
    """A dose converted between products, with the range the evidence allows."""

    units: float
    low: float
    high: float
    source: str


def _positive(row: dict[str, str], column: str) -> float:
    """A factor column of ``products.csv`` (> 0), or a clear error naming the product and column."""
    value = float(row[column])
    if not value > 0.0:
        raise ValueError(f"products.csv: {row['product']}.{column} must be > 0, got {value}")
    return value


@lru_cache(maxsize=1)
def load_products() -> dict[str, Product]:
    """All products keyed by name (``botox``, ``dysport``, ...)."""
    products = {}
    for row in read_csv("products.csv"):
        products[row["product"]] = Product(
            name=row["product"],
            generic=row["generic"],
            contains_toxin=row["contains_toxin"] == "yes",
            vial_units=float(row["vial_units"]),
            label_saline_ml=float(row["label_saline_ml"]),
            units_per_ona_unit=float(row["units_per_ona_unit"]),
            units_per_ona_unit_low=float(row["units_per_ona_unit_low"]),
            units_per_ona_unit_high=float(row["units_per_ona_unit_high"]),
            spread_factor=float(row["spread_factor"]),
            max_session_units=float(row["max_session_units"]),
            min_retreat_days=float(row["min_retreat_days"]),
            label_glabella_units=float(row["label_glabella_units"]),
            equivalence_source=row["equivalence_source"],
            spread_source=row["spread_source"],
            limits_source=row["limits_source"],
            immunogenicity=float(row["immunogenicity"]),
            immunogenicity_source=row["immunogenicity_source"],
            availability_factor=_positive(row, "availability_factor"),
            availability_source=row["availability_source"],
            persistence_factor=_positive(row, "persistence_factor"),
            persistence_source=row["persistence_source"],
        )
    return products


def get_product(name: str) -> Product:
    """The product called ``name``; a clear error lists the known ones."""
    products = load_products()
    try:
        return products[name]
    except KeyError:
        raise ValueError(
            f"product: unknown product {name!r}; allowed: {', '.join(sorted(products))}"
        ) from None


def convert(units: float, source: str, target: str) -> Conversion:
    """Convert ``units`` of product ``source`` to product ``target``.

    The central value uses each product's central ratio to onabotulinumtoxinA; the range
    combines the ends of both products' published ratio ranges.
    """
    if units < 0:
        raise ValueError(f"units: must be >= 0, got {units}")
    a, b = get_product(source), get_product(target)
    if not (a.contains_toxin and b.contains_toxin):
        raise ValueError("product: placebo has no toxin to convert")
    central = units / a.units_per_ona_unit * b.units_per_ona_unit
    ends = [
        units / ra * rb
        for ra in (a.units_per_ona_unit_low, a.units_per_ona_unit_high)
        for rb in (b.units_per_ona_unit_low, b.units_per_ona_unit_high)
    ]
    sources = {a.equivalence_source, b.equivalence_source}
    return Conversion(central, min(ends), max(ends), " | ".join(sorted(sources)))
