from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from influrec.training.losses import bce_loss, full_softmax_loss, sampled_softmax_loss


def setup() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return (
        torch.randn(4, 8, generator=g),
        torch.tensor([1, 2, 3, 5]),
        torch.randn(6, 8, generator=g),
    )


def test_full_softmax_ignores_padding() -> None:
    hidden, targets, items = setup()
    expected = F.cross_entropy(hidden @ items[1:].T, targets - 1)
    torch.testing.assert_close(full_softmax_loss(hidden, targets, items), expected)


def test_label_smoothing_against_a_hand_computation() -> None:
    hidden, targets, items = setup()
    exclude = (torch.tensor([0, 0]), torch.tensor([3, 4]))  # row 0 leaves items 3 and 4 out
    loss = full_softmax_loss(hidden, targets, items, exclude=exclude, smoothing=0.2)
    total = 0.0
    for n in range(4):
        covered = [i for i in range(1, 6) if not (n == 0 and i in (3, 4))]
        logits = {i: float(hidden[n] @ items[i]) for i in covered}
        lse = math.log(sum(math.exp(v) for v in logits.values()))
        target = lse - logits[int(targets[n])]
        uniform = sum(lse - v for v in logits.values()) / len(covered)
        total += 0.8 * target + 0.2 * uniform
    assert math.isclose(float(loss), total / 4, rel_tol=1e-5)


def test_sampled_softmax_with_logq_against_a_hand_computation() -> None:
    hidden, targets, items = setup()
    log_q = torch.log(torch.tensor([0.0, 0.1, 0.2, 0.3, 0.2, 0.2]))
    torch.manual_seed(5)
    loss = sampled_softmax_loss(hidden, targets, items, log_q=log_q, negatives=7)
    torch.manual_seed(5)
    sampled = torch.multinomial(log_q.exp(), 7, replacement=True)
    total = 0.0
    for n in range(4):
        t = int(targets[n])
        pos = float(hidden[n] @ items[t]) - float(log_q[t])
        negs = [float(hidden[n] @ items[s]) - float(log_q[s]) for s in sampled.tolist() if s != t]
        total += -pos + math.log(sum(math.exp(v) for v in [pos, *negs]))
    assert math.isclose(float(loss), total / 4, rel_tol=1e-5)


def test_sampled_softmax_with_a_uniform_proposal_is_uncorrected_sampled_softmax() -> None:
    # train.sampler = "uniform": log q is the same for every item, so the correction cancels
    hidden, targets, items = setup()
    log_q = torch.full((6,), math.log(1 / 5))
    log_q[0] = float("-inf")
    torch.manual_seed(2)
    loss = sampled_softmax_loss(hidden, targets, items, log_q=log_q, negatives=9)
    torch.manual_seed(2)
    sampled = torch.multinomial(log_q.exp(), 9, replacement=True)
    assert 0 not in sampled.tolist()
    total = 0.0
    for n in range(4):
        t = int(targets[n])
        logits = [float(hidden[n] @ items[t])]
        logits += [float(hidden[n] @ items[s]) for s in sampled.tolist() if s != t]
        total += -logits[0] + math.log(sum(math.exp(v) for v in logits))
    assert math.isclose(float(loss), total / 4, rel_tol=1e-5)


def test_sampled_softmax_per_sequence_draws_each_sequence_its_own_negatives() -> None:
    # rows 0-1 belong to sequence 0, rows 2-3 to sequence 2 (sequence 1 has no targets)
    hidden, targets, items = setup()
    log_q = torch.log(torch.tensor([0.0, 0.1, 0.2, 0.3, 0.2, 0.2]))
    sequences = torch.tensor([0, 0, 2, 2])
    torch.manual_seed(4)
    loss = sampled_softmax_loss(
        hidden, targets, items, log_q=log_q, negatives=5, sequences=sequences
    )
    torch.manual_seed(4)
    drawn = torch.multinomial(log_q.exp(), 3 * 5, replacement=True).view(3, 5)
    assert not torch.equal(drawn[0], drawn[2])  # the two sequences really meet other items
    total = 0.0
    for n in range(4):
        t, own = int(targets[n]), drawn[int(sequences[n])].tolist()
        pos = float(hidden[n] @ items[t]) - float(log_q[t])
        negs = [float(hidden[n] @ items[s]) - float(log_q[s]) for s in own if s != t]
        total += -pos + math.log(sum(math.exp(v) for v in [pos, *negs]))
    assert math.isclose(float(loss), total / 4, rel_tol=1e-5)
    hidden.requires_grad_(True)
    grad = torch.autograd.grad(
        sampled_softmax_loss(hidden, targets, items, log_q=log_q, negatives=5, sequences=sequences),
        hidden,
    )[0]
    assert grad.abs().sum(1).gt(0).all()  # the gradient reaches every row through the layout


def test_bce_against_a_hand_computation() -> None:
    hidden, targets, items = setup()
    torch.manual_seed(3)
    loss = bce_loss(hidden, targets, items, negatives=3)
    torch.manual_seed(3)
    sampled = torch.randint(1, 6, (4, 3))
    total = 0.0
    for n in range(4):
        t = int(targets[n])
        total += -math.log(torch.sigmoid(hidden[n] @ items[t]).item())
        total += sum(
            -math.log(1 - torch.sigmoid(hidden[n] @ items[s]).item())
            for s in sampled[n].tolist()
            if s != t
        )
    assert math.isclose(float(loss), total / 4, rel_tol=1e-5)


def test_full_softmax_excludes_seen_items_but_never_the_target() -> None:
    hidden, targets, items = setup()
    rows = torch.tensor([0, 0, 1])
    cols = torch.tensor(
        [2, targets[0].item(), 4]
    )  # row 0: item 2 and its own target; row 1: item 4
    logits = hidden @ items.T
    logits[:, 0] = float("-inf")
    logits[0, 2] = float("-inf")
    logits[1, 4] = float("-inf")
    expected = F.cross_entropy(logits, targets)
    torch.testing.assert_close(
        full_softmax_loss(hidden, targets, items, exclude=(rows, cols)), expected
    )


def test_seen_pairs_cover_each_windows_prefix() -> None:
    import numpy as np

    from influrec.training.losses import seen_pairs

    items = np.array([[0, 7, 8, 9], [0, 0, 5, 6]])
    valid = items > 0
    rows, cols = seen_pairs(items, valid)
    pairs = sorted(zip(rows.tolist(), cols.tolist(), strict=True))
    # target rows in hidden[valid] order: 0-2 follow 7, 8, 9; 3-4 follow 5, 6
    assert pairs == [(0, 7), (1, 7), (1, 8), (2, 7), (2, 8), (2, 9), (3, 5), (4, 5), (4, 6)]
