"""FMLP-Rec-style all-MLP model: a learnable causal filter over positions, then a feed-forward
block, ``model.layers`` times, over the shared event tokens.

FMLP-Rec multiplies the FFT of the whole sequence by a learned spectrum and transforms back:
a circular convolution, so every position reads every other one, later events included. Here
the filter is the causal part of such a kernel. Each channel c has a learned spectrum of
``max_len + 1`` complex frequencies; its inverse real FFT of length ``2 * max_len`` is a kernel
whose first ``max_len`` taps k[0..max_len-1, c] are kept (the wrap-around half, which would
read the future, is dropped). The filter is the causal convolution

    y[t, c] = sum over s <= t of k[t - s, c] * x[s, c]

computed as a lower-triangular Toeplitz matrix per channel (no FFT at run time, so position t
is bitwise independent of every later event). Each block is pre-LayerNorm:
``x + dropout(filter(ln1(x)))``, then ``x + dropout(W2 act(W1 ln2(x)))`` with ``act`` from
``model.activation`` and width ``model.ff_mult * model.d_model``. Position t summarises events
0..t and every position predicts its next event in one pass, as the Transformer does. The
tokens and heads are those of every family (:class:`~influrec.models.tokens.EventModel`).

Left padding is neutral: the filter's input is zero at padding positions, so the padded events
add nothing, and a padded sequence gives the hidden states of the same sequence unpadded.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from influrec.config import ModelConfig
from influrec.models.protocol import Capabilities
from influrec.models.tokens import EventModel, feed_forward


class CausalFilter(nn.Module):
    """A learned global causal filter over (B, T, D) tokens, one kernel per channel,
    parameterised by its spectrum (see the module docstring)."""

    def __init__(self, d: int, *, max_len: int) -> None:
        super().__init__()
        self.max_len = max_len
        # (max_len + 1, D, 2): real and imaginary parts of each channel's frequencies
        self.spectrum = nn.Parameter(0.02 * torch.randn(max_len + 1, d, 2))

    def taps(self) -> torch.Tensor:
        """The causal kernel (max_len, D): tap j multiplies the event j positions earlier."""
        spectrum = torch.view_as_complex(self.spectrum)  # (max_len + 1, D)
        kernel = torch.fft.irfft(spectrum, n=2 * self.max_len, dim=0, norm="ortho")  # (2L, D)
        return kernel[: self.max_len]

    def matrix(self, length: int) -> torch.Tensor:
        """(D, T, T) lower-triangular Toeplitz matrices: [c, t, s] = k[t - s, c] for s <= t,
        else 0, with T = ``length``. ValueError when T > max_len (no tap reaches that far)."""
        if length > self.max_len:
            raise ValueError(f"sequence of {length} events is longer than max_len {self.max_len}")
        columns = torch.arange(length, device=self.spectrum.device)
        lag = columns[:, None] - columns[None]  # (T, T)
        taps = self.taps().T  # (D, L)
        return taps[:, lag.clamp(min=0)] * (lag >= 0).to(taps.dtype)

    def forward(self, x: torch.Tensor, *, last_only: bool = False) -> torch.Tensor:
        """(B, T, D) -> (B, T, D), or (B, 1, D) for the last position with ``last_only``."""
        weights = self.matrix(x.shape[1])  # (D, T, T)
        if last_only:
            weights = weights[:, -1:]  # (D, 1, T)
        return torch.einsum("cts,bsc->btc", weights, x)


class FilterBlock(nn.Module):
    """A causal filter then a feed-forward layer, each pre-LayerNorm on a residual stream."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        d = config.d_model
        self.ln1 = nn.LayerNorm(d)
        self.filter = CausalFilter(d, max_len=config.max_len)
        self.filter_dropout = nn.Dropout(config.dropout)
        self.ln2 = nn.LayerNorm(d)
        self.mlp = feed_forward(config)

    def forward(
        self, x: torch.Tensor, real: torch.Tensor, *, last_only: bool = False
    ) -> torch.Tensor:
        """(B, T, D) -> (B, T, D), or (B, 1, D) with ``last_only``; ``real`` (B, T, 1) is 1 at
        events and 0 at padding (zero at padding positions on the way out)."""
        filtered = self.filter(self.ln1(x) * real, last_only=last_only)
        if last_only:
            x, real = x[:, -1:], real[:, -1:]
        x = x + self.filter_dropout(filtered)
        return (x + self.mlp(self.ln2(x))) * real


class BehaviorMLP(EventModel):
    """Scores the next item and predicts the next behaviour type at every position."""

    capabilities: ClassVar[Capabilities] = Capabilities()

    def build_layers(self, config: ModelConfig) -> None:
        """The layers between the token embeddings and the final LayerNorm."""
        self.blocks = nn.ModuleList(FilterBlock(config) for _ in range(config.layers))

    def encode_embeddings(
        self, x: torch.Tensor, items: torch.Tensor, *, last_only: bool = False
    ) -> torch.Tensor:
        """Run the blocks over token embeddings x (B, T, D) of left-padded events (``items``
        (B, T), 0 pads): (B, T, D), or (B, 1, D) with ``last_only``, where the last block
        computes only the last position (the same values at less cost)."""
        real = (items != 0)[..., None].to(x.dtype)  # (B, T, 1)
        x = self.dropout(x) * real
        for i, block in enumerate(self.blocks):
            x = block(x, real, last_only=last_only and i == len(self.blocks) - 1)
        return self.ln_final(x)  # (B, T, D) or (B, 1, D)
