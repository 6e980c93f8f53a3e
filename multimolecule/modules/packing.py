"""Packed execution of a padded batch: the per-token work runs on the real tokens only.

Norms, projections, the feed-forward block and residuals treat every token alone, so on a padded batch they
can run on the real tokens packed as (tokens, hidden) and cost what those tokens cost, not the padded
rectangle. Attention is the one step that needs the sequences: queries, keys and values are scattered back to
(batch, length, ...) for the attention kernel (CPU has no kernel for sequences of different lengths), where the
same additive mask as in the padded path hides the padding, and its output is gathered back to the tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class PackedTokens:
    """Where the real tokens of a padded (batch, length) batch sit, and the mask attention needs over them.

    Passed to the layers in place of the additive attention mask: a layer or attention that reads it receives
    hidden states as (tokens, hidden), tokens in row-major order of the padded batch (whatever the padding side).
    """

    indices: torch.Tensor  # (tokens,): position in the flattened (batch * length) batch of each real token
    batch: int
    length: int
    attention_mask: torch.Tensor  # additive, broadcastable to (batch, heads, length, length), as in the padded path

    @classmethod
    def from_token_mask(cls, token_mask: torch.Tensor, attention_mask: torch.Tensor) -> PackedTokens:
        """`token_mask` (batch, length) is nonzero at real tokens; finding them synchronises with the device once."""
        batch, length = token_mask.shape
        indices = token_mask.reshape(-1).nonzero().squeeze(-1)
        return cls(indices=indices, batch=batch, length=length, attention_mask=attention_mask)

    def pack(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, length, ...) -> (tokens, ...): the real tokens only."""
        return x.reshape(self.batch * self.length, *x.shape[2:]).index_select(0, self.indices)

    def pad(self, x: torch.Tensor) -> torch.Tensor:
        """(tokens, ...) -> (batch, length, ...), zero at padding."""
        rest = x.shape[1:]
        padded = x.new_zeros(self.batch * self.length, *rest).index_copy_(0, self.indices, x)  # in place: one write
        return padded.view(self.batch, self.length, *rest)
