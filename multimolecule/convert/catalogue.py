"""The catalogue of published upstream checkpoints (`checkpoints/<family>.toml`, installed as
`multimolecule.checkpoints`): where each comes from, its sha256, licence, paper, target Hub repo and the
facts its model card states. Data only; see `checkpoints/README.md` for the fields."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import tomllib

from .errors import UnknownVariantError

_FAMILY_FIELDS = {"family", "name", "repository", "commit", "license", "paper", "citation", "description"}
_VARIANT_FIELDS = {
    "source", "sha256", "size", "repo_id", "description", "tags", "datasets", "pipeline_tag", "base_model",
    "license", "card",
}  # fmt: skip


@dataclass(frozen=True)
class Paper:
    title: str
    url: str
    authors: str = ""
    year: int | None = None


@dataclass(frozen=True)
class Entry:
    """One published upstream checkpoint."""

    variant: str
    family: str
    family_name: str
    source: str
    sha256: str
    repo_id: str
    repository: str
    commit: str
    license: str
    paper: Paper
    citation: str
    description: str
    pipeline_tag: str | None = None
    tags: tuple[str, ...] = ()
    datasets: tuple[str, ...] = ()
    base_model: str | None = None
    size: int | None = None
    card: dict[str, Any] = field(default_factory=dict)

    @property
    def filename(self) -> str:
        """The upstream file's own name (the archive member's, for a file inside an archive)."""
        return self.source.split("#")[-1].rstrip("/").rsplit("/", 1)[-1]


def _parse(text: str, origin: str) -> dict[str, Entry]:
    data = tomllib.loads(text)
    unknown = set(data) - _FAMILY_FIELDS - {"variants"}
    if unknown:
        raise ValueError(f"{origin}: unknown family field(s) {sorted(unknown)}")
    entries = {}
    for variant, spec in data.get("variants", {}).items():
        unknown = set(spec) - _VARIANT_FIELDS
        if unknown:
            raise ValueError(f"{origin}: variant {variant}: unknown field(s) {sorted(unknown)}")
        sha256 = spec["sha256"].lower()
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise ValueError(f"{origin}: variant {variant}: sha256 {spec['sha256']!r} is not 64 hex digits")
        entries[variant] = Entry(
            variant=variant,
            family=data["family"],
            family_name=data["name"],
            source=spec["source"],
            sha256=sha256,
            repo_id=spec.get("repo_id", f"multimolecule/{variant}"),
            repository=data["repository"],
            commit=data["commit"],
            license=spec.get("license", data["license"]),
            paper=Paper(**data["paper"]),
            citation=data["citation"].strip(),
            description=spec.get("description", data["description"]).strip(),
            pipeline_tag=spec.get("pipeline_tag"),
            tags=tuple(spec.get("tags", ())),
            datasets=tuple(spec.get("datasets", ())),
            base_model=spec.get("base_model"),
            size=spec.get("size"),
            card=spec.get("card", {}),
        )
    return entries


@cache
def catalogue() -> dict[str, Entry]:
    """Every catalogued variant, by name."""
    entries: dict[str, Entry] = {}
    for resource in sorted(resources.files("multimolecule.checkpoints").iterdir(), key=lambda r: r.name):
        if resource.name.endswith(".toml"):
            for variant, entry in _parse(resource.read_text(encoding="utf-8"), resource.name).items():
                if variant in entries:
                    raise ValueError(f"variant {variant} is catalogued twice")
                entries[variant] = entry
    return entries


def lookup(variant: str) -> Entry:
    entries = catalogue()
    if variant not in entries:
        raise UnknownVariantError(f"unknown variant {variant!r}; catalogued variants: {', '.join(sorted(entries))}")
    return entries[variant]
