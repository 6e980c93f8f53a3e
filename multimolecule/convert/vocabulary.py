"""How an upstream vocabulary becomes ours: spellings, row order, and the rows of tokens upstream lacks."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import torch

from .errors import ConversionError

# Upstream spellings of our tokens. A spelling is only read as ours when upstream does not also have our own
# spelling (a vocabulary holding both `T` and `U` keeps both).
TOKEN_SPELLINGS: dict[str, str] = {
    "[PAD]": "<pad>",
    "PAD": "<pad>",
    "[CLS]": "<cls>",
    "<s>": "<cls>",
    "[SEP]": "<eos>",
    "</s>": "<eos>",
    "[UNK]": "<unk>",
    "UNK": "<unk>",
    "[MASK]": "<mask>",
    "MASK": "<mask>",
    "T": "U",
}
# Decoder bias of tokens the upstream model never saw: they are never predicted, and the probabilities of
# upstream's own tokens are unchanged.
ABSENT_TOKEN_LOGIT = -1.0e4


def fairseq_vocabulary(
    standard: Iterable[str],
    prepend: tuple[str, ...] = ("<cls>", "<pad>", "<eos>", "<unk>"),
    append: tuple[str, ...] = ("<mask>",),
) -> list[str]:
    """The id order of a fairseq / ESM alphabet: prepended specials, the standard tokens, `<null_k>` fillers
    up to a multiple of 8, then the appended specials."""
    tokens = [*prepend, *standard]
    tokens += [f"<null_{index + 1}>" for index in range(-len(tokens) % 8)]
    return [*tokens, *append]


def canonical_tokens(upstream: list[str], spellings: Mapping[str, str] = TOKEN_SPELLINGS) -> list[str]:
    """Upstream's tokens under our spelling (see TOKEN_SPELLINGS)."""
    present = set(upstream)
    return [spellings[token] if token in spellings and spellings[token] not in present else token for token in upstream]


@dataclass
class VocabularyRemap:
    """How upstream's vocabulary became ours, in words a model card can state.

    `token_rows` names, for some of our tokens, the upstream token whose row they take instead of their own
    (e.g. `N` -> `X` where upstream's tokenizer reads N as X, even when upstream also has an untrained `N` row);
    they are never predicted (their logit is ABSENT_TOKEN_LOGIT) and their logits are not compared with
    upstream's. Any other token upstream lacks takes upstream's `<unk>` row, which is what upstream computes for
    it, or a zero embedding when upstream has no `<unk>`.
    """

    upstream: list[str]
    ours: list[str]
    spellings: Mapping[str, str] = field(default_factory=lambda: TOKEN_SPELLINGS)
    token_rows: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.canonical = canonical_tokens(self.upstream, self.spellings)
        self._index = {token: row for row, token in enumerate(self.canonical)}
        for ours, theirs in self.token_rows.items():
            if theirs not in self.upstream:
                raise ConversionError(f"token_rows sends {ours!r} to {theirs!r}, which the upstream vocabulary lacks")

    @property
    def respelled(self) -> dict[str, str]:
        """Upstream spelling -> ours, for the tokens whose spelling changed."""
        return {theirs: ours for theirs, ours in zip(self.upstream, self.canonical, strict=True) if theirs != ours}

    @property
    def absent(self) -> list[str]:
        """Our tokens upstream lacks."""
        return [token for token in self.ours if token not in self._index]

    @property
    def fallback(self) -> str | None:
        """Upstream's token whose row the absent tokens take (None: a zero embedding)."""
        return "<unk>" if "<unk>" in self._index else None

    @property
    def discarded(self) -> list[str]:
        """Upstream tokens we do not have: their rows are dropped."""
        ours = set(self.ours)
        return [theirs for theirs, token in zip(self.upstream, self.canonical, strict=True) if token not in ours]

    def source_rows(self) -> list[int | None]:
        rows = []
        for token in self.ours:
            if token in self.token_rows:
                rows.append(self.upstream.index(self.token_rows[token]))
            elif token in self._index:
                rows.append(self._index[token])
            else:
                rows.append(self._index.get(self.fallback) if self.fallback else None)
        return rows

    def ids(self, upstream_ids: torch.Tensor) -> torch.Tensor:
        """Upstream token ids as ours (for reference inputs); an upstream token we lack is an error."""
        ours = {token: index for index, token in enumerate(self.ours)}
        table = [ours.get(token, -1) for token in self.canonical]
        lacking = sorted({self.upstream[i] for i in upstream_ids.unique().tolist() if table[i] < 0})
        if lacking:
            raise ValueError(f"the reference input uses tokens our vocabulary lacks: {lacking}")
        return torch.tensor(table)[upstream_ids]

    def shared_columns(self) -> tuple[list[int], list[int]]:
        """(our ids, upstream ids) of the tokens both vocabularies have: the logit columns to compare. Left out:
        tokens given another row on purpose (`token_rows`), and special tokens, which our masked-LM head never
        predicts (their logits are the dtype's minimum)."""
        ours = {token: index for index, token in enumerate(self.ours)}
        pairs = [
            (ours[token], row)
            for row, token in enumerate(self.canonical)
            if token in ours and token not in self.token_rows and not _special(token)
        ]
        return [ours_id for ours_id, _ in pairs], [row for _, row in pairs]

    def apply(self, key: str, tensor: torch.Tensor, kind: str) -> torch.Tensor:
        if tensor.shape[0] != len(self.upstream):
            raise ConversionError(
                f"{key} has {tensor.shape[0]} rows but the upstream vocabulary of this variant has "
                f"{len(self.upstream)} tokens; is this checkpoint of another variant?"
            )
        rows = self.source_rows()
        remapped = tensor.new_zeros((len(rows), *tensor.shape[1:]))
        present = [index for index, row in enumerate(rows) if row is not None]
        remapped[present] = tensor[[rows[index] for index in present]]
        if kind == "logit":
            never = [row for row, token in enumerate(self.ours) if token not in self._index or token in self.token_rows]
            remapped[never] = ABSENT_TOKEN_LOGIT
        return remapped


def _special(token: str) -> bool:
    return token.startswith("<") and token.endswith(">")
