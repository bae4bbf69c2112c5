"""Next-item losses over hidden states at the positions that have a target.

All take ``hidden`` (N, D) and ``targets`` (N,) item ids in 1..I and the item embedding table
(I + 1, D) whose row 0 is padding.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def full_softmax_loss(
    hidden: torch.Tensor,
    targets: torch.Tensor,
    items: torch.Tensor,
    *,
    exclude: tuple[torch.Tensor, torch.Tensor] | None = None,
    smoothing: float = 0.0,
) -> torch.Tensor:
    """Cross-entropy over every item (the default; exact, and cheap up to ~10^5 items).

    ``exclude`` = (rows, items) pairs left out of those rows' softmax (never the row's target).
    ``smoothing`` = ε: the target distribution puts 1 - ε on the target and spreads ε evenly
    over the items each row's softmax covers.
    """
    logits = hidden @ items.T  # (N, I + 1)
    logits[:, 0] = float("-inf")
    # for smoothing: the mean logit over the covered items, from h·ΣE less the excluded items
    total = hidden.float() @ items[1:].float().sum(0) if smoothing else None  # (N,)
    count = torch.full_like(total, items.shape[0] - 1) if total is not None else None
    if exclude is not None:
        rows, cols = exclude
        keep = cols != targets[rows]
        rows, cols = rows[keep], cols[keep]
        if total is not None and count is not None:
            dropped = logits[rows, cols].float()
            total = total.index_add(0, rows, -dropped)
            count = count.index_add(0, rows, -torch.ones_like(dropped))
        logits[rows, cols] = float("-inf")
    logits = logits.float()
    if total is None or count is None:
        return F.cross_entropy(logits, targets)
    lse = torch.logsumexp(logits, dim=1)
    target = lse - logits.gather(1, targets[:, None])[:, 0]
    uniform = lse - total / count  # cross-entropy against the uniform distribution
    return ((1 - smoothing) * target + smoothing * uniform).mean()


def sampled_softmax_loss(
    hidden: torch.Tensor,
    targets: torch.Tensor,
    items: torch.Tensor,
    *,
    log_q: torch.Tensor,
    negatives: int,
    sequences: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Softmax over the target and ``negatives`` items drawn from the proposal q (``log_q``
    (I + 1,), log-probabilities, -inf at 0), with logQ correction (subtract log q from every
    logit) and accidental hits of the target masked out.

    The negatives are shared by the batch, or with ``sequences`` (N,) (the sequence 0..G-1 of
    each row, rows of a sequence contiguous) drawn anew for every sequence: G x ``negatives``
    draws per step cover a catalogue that one shared draw touches only a sliver of.
    """
    proposal = log_q.exp()
    positive = (hidden * items[targets]).sum(-1, keepdim=True) - log_q[targets][:, None]  # (N, 1)
    if sequences is None:
        sampled = torch.multinomial(proposal, negatives, replacement=True, generator=generator)
        negative = hidden @ items[sampled].T - log_q[sampled][None]  # (N, S)
        hits = sampled[None] == targets[:, None]
    else:
        count = int(sequences[-1]) + 1
        draws = count * negatives
        drawn = torch.multinomial(proposal, draws, replacement=True, generator=generator)
        drawn = drawn.view(count, negatives)  # (G, S)
        # rows laid out per sequence (G, T, D), so each sequence meets its own negatives in a bmm
        lengths = torch.bincount(sequences, minlength=count)
        starts = torch.cumsum(lengths, 0) - lengths
        slot = torch.arange(len(sequences), device=hidden.device) - starts[sequences]
        padded = hidden.new_zeros(count, int(lengths.max()), hidden.shape[1])
        padded[sequences, slot] = hidden
        scores = torch.bmm(padded, items[drawn].transpose(1, 2))  # (G, T, S)
        negative = scores[sequences, slot] - log_q[drawn][sequences]  # (N, S)
        hits = drawn[sequences] == targets[:, None]
    negative = negative.masked_fill(hits, float("-inf"))
    logits = torch.cat([positive, negative], dim=1).float()
    return F.cross_entropy(logits, torch.zeros_like(targets))


def bce_loss(
    hidden: torch.Tensor,
    targets: torch.Tensor,
    items: torch.Tensor,
    *,
    negatives: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Binary cross-entropy: the target against ``negatives`` uniform random items per position."""
    n_items = items.shape[0] - 1
    sampled = torch.randint(1, n_items + 1, (len(targets), negatives), generator=generator)
    sampled = sampled.to(targets.device)
    positive = (hidden * items[targets]).sum(-1)  # (N,)
    negative = torch.einsum("nd,nsd->ns", hidden, items[sampled])  # (N, S)
    hit = sampled == targets[:, None]
    loss_pos = F.softplus(-positive.float())
    loss_neg = (F.softplus(negative.float()) * ~hit).sum(-1)
    return (loss_pos + loss_neg).mean()


def with_unavailable(
    exclude: tuple[torch.Tensor, torch.Tensor] | None, items: torch.Tensor | None, rows: int
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """``exclude``'s (row, item) pairs plus every row paired with each of ``items`` (C,)."""
    if items is None or len(items) == 0:
        return exclude
    pairs = (torch.arange(rows).repeat_interleave(len(items)), items.repeat(rows))
    if exclude is None:
        return pairs
    return torch.cat([exclude[0], pairs[0]]), torch.cat([exclude[1], pairs[1]])


def seen_pairs(
    items: np.ndarray, valid: np.ndarray, *, last_only: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """(target row, item) pairs: for the target after each valid slot (rows in ``hidden[valid]``
    order), the items of that window up to and including the slot. ``last_only``: one target
    per row, after its last slot (``train.samples = "prefixes"``): every item of the row."""
    if last_only:
        rows, slots = np.nonzero(valid)
        return torch.from_numpy(rows), torch.from_numpy(items[rows, slots])
    length = items.shape[1]
    row_of_slot = np.cumsum(valid.ravel()).reshape(valid.shape) - 1  # (B, T)
    earlier = np.tril(np.ones((length, length), bool))[None] & valid[:, :, None] & valid[:, None, :]
    b, t, s = np.nonzero(earlier)  # slot t's target may not be item at slot s <= t
    return torch.from_numpy(row_of_slot[b, t]), torch.from_numpy(items[b, s])
