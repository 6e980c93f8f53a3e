"""One module per upstream family: how its published checkpoints map onto MultiMolecule models.

Installed as `multimolecule.converters`. Each module defines `VARIANTS`, a dict from variant name (as in
the catalogue) to a `multimolecule.convert.engine.Converter`. Modules are imported only when asked for.
"""

from __future__ import annotations

import importlib

from multimolecule.convert.engine import Converter
from multimolecule.convert.errors import UnknownVariantError

FAMILIES = ("rnafm", "rnabert", "splicebert", "rnaernie", "calm", "utrlm", "rinalmo", "rnamsm", "ernierna")


def family_variants(family: str) -> dict[str, Converter]:
    return importlib.import_module(f"{__name__}.{family}").VARIANTS


def all_variants() -> dict[str, Converter]:
    return {name: converter for family in FAMILIES for name, converter in family_variants(family).items()}


def get_converter(variant: str) -> Converter:
    variants = all_variants()
    if variant not in variants:
        raise UnknownVariantError(
            f"no converter for {variant!r}; variants with a converter: {', '.join(sorted(variants))} "
            "(`python -m multimolecule.convert list` shows every catalogued variant)"
        )
    return variants[variant]
