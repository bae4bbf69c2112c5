"""NextItNet-style causal convolutional model over the shared event tokens.

A stack of residual blocks, one per dilation d in ``model.dilations`` (repeated
``model.layers`` times), each with two causal convolutions of width ``model.kernel_size``
dilated d and 2d: ``x + dropout(conv2(act(ln2(conv1(act(ln1(x)))))))``, with ``act`` from
``model.activation``. A convolution at position t reads positions t, t - d, t - 2d...
only, so position t summarises events 0..t and every position predicts its next event in one
pass, as the Transformer does. The tokens and heads are those of every family
(:class:`~influrec.models.tokens.EventModel`).

Left padding is neutral: every convolution's input is zero at padding positions, which is
what the convolution's own zero padding puts before the first event of an unpadded sequence,
so a padded sequence gives exactly the hidden states of the same sequence unpadded.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from influrec.config import ModelConfig
from influrec.models.protocol import Capabilities
from influrec.models.tokens import EventModel, activation


class CausalConv(nn.Module):
    """A dilated causal convolution over (B, T, D) tokens: output t reads inputs
    t - j * dilation, j = 0..kernel_size - 1 (zeros before the first column)."""

    def __init__(self, d: int, *, kernel_size: int, dilation: int) -> None:
        super().__init__()
        self.reach = (kernel_size - 1) * dilation
        self.conv = nn.Conv1d(d, d, kernel_size, dilation=dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(F.pad(x.transpose(1, 2), (self.reach, 0)))  # (B, D, T)
        return y.transpose(1, 2)  # (B, T, D)


class ResidualBlock(nn.Module):
    """Two causal convolutions, dilated d and 2d, pre-LayerNorm, on a residual stream."""

    def __init__(self, config: ModelConfig, dilation: int) -> None:
        super().__init__()
        d, width = config.d_model, config.kernel_size
        self.ln1 = nn.LayerNorm(d)
        self.conv1 = CausalConv(d, kernel_size=width, dilation=dilation)
        self.ln2 = nn.LayerNorm(d)
        self.conv2 = CausalConv(d, kernel_size=width, dilation=2 * dilation)
        self.act = activation(config)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """(B, T, D) -> (B, T, D); ``real`` (B, T, 1) is 1 at events, 0 at padding."""
        h = self.conv1(self.act(self.ln1(x)) * real)
        h = self.conv2(self.act(self.ln2(h)) * real)
        return (x + self.dropout(h)) * real


class BehaviorCNN(EventModel):
    """Scores the next item and predicts the next behaviour type at every position."""

    capabilities: ClassVar[Capabilities] = Capabilities()

    def build_layers(self, config: ModelConfig) -> None:
        """The layers between the token embeddings and the final LayerNorm."""
        dilations = list(config.dilations) * config.layers
        self.blocks = nn.ModuleList(ResidualBlock(config, d) for d in dilations)

    def encode_embeddings(
        self, x: torch.Tensor, items: torch.Tensor, *, last_only: bool = False
    ) -> torch.Tensor:
        """Run the blocks over token embeddings x (B, T, D) of left-padded events (``items``
        (B, T), 0 pads): (B, T, D), or (B, 1, D) for the last position with ``last_only``."""
        real = (items != 0)[..., None].to(x.dtype)  # (B, T, 1)
        x = self.dropout(x) * real
        for block in self.blocks:
            x = block(x, real)
        return self.ln_final(x[:, -1:] if last_only else x)
