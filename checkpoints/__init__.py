"""Catalogue data: one TOML file per family (see README.md). Read with multimolecule.convert.catalogue."""
