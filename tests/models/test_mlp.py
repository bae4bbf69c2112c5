"""The `mlp` family's causal filter against slow references written here: a loop over the
convolution's sum, and FMLP-Rec's FFT filter when the kernel has no wrap-around part.
(Causality, padding, leave-one-out and the CLI are in the shared family tests.)"""

from __future__ import annotations

import pytest
import torch

from influrec.config import ModelConfig
from influrec.models.mlp import BehaviorMLP, CausalFilter
from influrec.models.registry import build_model

MAX_LEN, D = 7, 5


def random_filter() -> CausalFilter:
    torch.manual_seed(0)
    layer = CausalFilter(D, max_len=MAX_LEN).double()
    with torch.no_grad():
        layer.spectrum.normal_()
    return layer


def test_the_filter_is_the_causal_convolution_with_its_taps() -> None:
    layer = random_filter()
    x = torch.randn(2, MAX_LEN - 2, D, dtype=torch.float64)
    k = layer.taps()  # (MAX_LEN, D)
    assert k.shape == (MAX_LEN, D) and bool((k.abs() > 1e-3).all())
    expected = torch.zeros_like(x)
    for t in range(x.shape[1]):
        for s in range(t + 1):
            expected[:, t] += k[t - s] * x[:, s]
    with torch.no_grad():
        torch.testing.assert_close(layer(x), expected)
        torch.testing.assert_close(layer(x, last_only=True), expected[:, -1:])


def test_without_wrap_around_taps_the_filter_is_fmlp_recs_fft_filter() -> None:
    """FMLP-Rec: irfft(rfft(x) * W) over the sequence zero-padded to 2 * max_len. Its kernel is
    circular; when the kernel's second half (the taps that wrap round to read later events) is
    zero, it is causal and equals this filter with the same spectrum (scaled: both FFTs here
    are orthonormal)."""
    layer = random_filter()
    n = 2 * MAX_LEN
    kernel = torch.randn(n, D, dtype=torch.float64)
    kernel[MAX_LEN:] = 0
    spectrum = torch.fft.rfft(kernel, n=n, dim=0, norm="ortho")  # (MAX_LEN + 1, D)
    with torch.no_grad():
        layer.spectrum.copy_(torch.view_as_real(spectrum))
    torch.testing.assert_close(layer.taps(), kernel[:MAX_LEN].detach())
    x = torch.randn(3, MAX_LEN, D, dtype=torch.float64)
    frequencies = torch.fft.rfft(x, n=n, dim=1, norm="ortho")  # (B, MAX_LEN + 1, D)
    fmlp = torch.fft.irfft(frequencies * spectrum, n=n, dim=1, norm="ortho")[:, :MAX_LEN]
    with torch.no_grad():
        torch.testing.assert_close(layer(x), fmlp * n**0.5)
    with torch.no_grad():  # a nonzero wrap-around half would have made FMLP-Rec's filter differ
        layer.spectrum.normal_()
        spectrum = torch.view_as_complex(layer.spectrum)
        fmlp = torch.fft.irfft(frequencies * spectrum, n=n, dim=1, norm="ortho")[:, :MAX_LEN]
        assert not torch.allclose(layer(x), fmlp * n**0.5)


def test_a_sequence_longer_than_the_taps_is_refused() -> None:
    with pytest.raises(ValueError, match="sequence of 8 events is longer than max_len 7"):
        random_filter()(torch.zeros(1, MAX_LEN + 1, D, dtype=torch.float64))


def test_mlp_family_blocks_follow_the_config_and_all_padding_rows_stay_finite() -> None:
    config = ModelConfig(architecture="mlp", max_len=MAX_LEN, d_model=8, layers=3, ff_mult=2)
    model = build_model(config, n_items=9, n_behaviors=2).eval()
    assert isinstance(model, BehaviorMLP) and len(model.blocks) == 3
    assert model.blocks[0].mlp[0].out_features == 16
    items = torch.tensor([[0, 0, 3, 4], [0, 0, 0, 0]])
    with torch.no_grad():
        hidden = model.encode(items, (items > 0).long())
    assert hidden.shape == (2, 4, 8) and torch.isfinite(hidden).all()
