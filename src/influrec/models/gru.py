"""GRU4Rec-style recurrent model: ``model.layers`` GRU layers over the shared event tokens.

The tokens (item, behaviour, position, optional time gap, value and item features) and the
heads are those of every family (:class:`~influrec.models.tokens.EventModel`). The GRU reads
each sequence from its oldest event; the hidden state at position t summarises events 0..t and
predicts event t + 1. Left padding is skipped, not read: each row is shifted so that its events
come first and packed with its length, so a padded sequence gives exactly the hidden states of
the same sequence unpadded. The hidden states at padding positions are zero before the final
LayerNorm (they are never used). The GRU's gates use their own sigmoid and tanh;
``model.activation`` does not apply.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from influrec.config import ModelConfig
from influrec.models.protocol import Capabilities
from influrec.models.tokens import EventModel


class BehaviorGRU(EventModel):
    """Scores the next item and predicts the next behaviour type after every event."""

    capabilities: ClassVar[Capabilities] = Capabilities()

    def build_layers(self, config: ModelConfig) -> None:
        """The layers between the token embeddings and the final LayerNorm."""
        d = config.d_model
        between = config.dropout if config.layers > 1 else 0.0
        self.gru = nn.GRU(d, d, num_layers=config.layers, batch_first=True, dropout=between)
        self.out_dropout = nn.Dropout(config.dropout)

    def encode_embeddings(
        self, x: torch.Tensor, items: torch.Tensor, *, last_only: bool = False
    ) -> torch.Tensor:
        """Run the GRU over token embeddings x (B, T, D) of left-padded events (``items``
        (B, T), 0 pads): (B, T, D), or (B, 1, D) for the last position with ``last_only``."""
        _, length, d = x.shape
        lengths = (items != 0).sum(dim=1)  # (B,)
        columns = torch.arange(length, device=x.device)[None]  # (1, T)
        shift = (length - lengths)[:, None]  # (B, 1) padding columns before the first event
        to_front = ((columns + shift) % length)[..., None].expand(-1, -1, d)  # (B, T, D)
        packed = pack_padded_sequence(
            self.dropout(x).gather(1, to_front),  # events first, padding after
            lengths.clamp(min=1).cpu(),
            batch_first=True,
            enforce_sorted=False,
        )
        out, _ = self.gru(packed)
        front, _ = pad_packed_sequence(out, batch_first=True, total_length=length)  # (B, T, D)
        back = ((columns - shift) % length)[..., None].expand(-1, -1, d)
        hidden = self.out_dropout(front.gather(1, back))  # (B, T, D) left-padded again
        return self.ln_final(hidden[:, -1:] if last_only else hidden)
