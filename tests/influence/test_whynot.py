"""Why not item X: its rank, the events holding it back (exact leave-one-out), the best next
action, checked against direct re-scoring."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from influrec.errors import InputError
from influrec.inference import Recommender
from influrec.influence.whynot import why_not
from tests_helpers import drop_events, rescore_without, user_history


def test_why_not_an_item_outside_the_top_k(recommender: Recommender) -> None:
    history = user_history(recommender, 14)
    scores = recommender.scores([history])[0]
    order = torch.argsort(scores, descending=True).tolist()
    target = order[14]  # rank 15
    item = recommender.item_ids[target - 1]
    result = why_not(recommender, history, item, k=5)
    assert result.rank == 15 and not result.in_top_k and result.unit
    assert all(e.effect < 0 for e in result.holding_back)
    assert [e.effect for e in result.holding_back] == sorted(e.effect for e in result.holding_back)
    assert result.holding_back  # of 14 events, some lower the item
    worst = result.holding_back[0].position  # deleting it raises the item's margin
    after = rescore_without(recommender, history, [worst])
    others = torch.cat([after[1:target], after[target + 1 :]])
    before_others = torch.cat([scores[1:target], scores[target + 1 :]])
    margin = lambda s, o: float(s[target] - torch.topk(o, 5).values[-1])  # noqa: E731
    assert margin(after, others) > margin(scores, before_others)
    assert "holds it back most" in result.sentence
    action = result.best_action
    assert action is not None and action.rank_after >= 1
    assert item in result.sentence or (result.title or "") in result.sentence


def test_why_not_refuses_empty_histories_and_unknown_items(recommender: Recommender) -> None:
    history = user_history(recommender, 5)
    with pytest.raises(InputError, match="unknown item"):
        why_not(recommender, history, "no-such-item")
    with pytest.raises(InputError, match="history is empty"):
        why_not(recommender, drop_events(history, range(5)), recommender.item_ids[0])
    top = recommender.recommend(history, k=1)[0]
    assert why_not(recommender, history, top.item_id, k=3).in_top_k
    assert np.isfinite(why_not(recommender, history, top.item_id).rank)


def test_whynot_command_prints_the_sentence_and_both_sides(tmp_path, capsys) -> None:
    import json

    from influrec.cli.main import main
    from tests_helpers import train_tiny_run

    run = train_tiny_run(tmp_path, users=20)
    rec = Recommender.load(run)
    user = next(iter(rec.user_index))
    scores = rec.scores([rec.user_history(user)])[0]
    item = rec.item_ids[int(torch.argsort(scores, descending=True)[12]) - 1]
    capsys.readouterr()  # the training's output
    assert main(["whynot", str(run), "--user", user, "--item", item, "--k", "3", "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["item"] == item and answer["rank"] >= 1 and not answer["in_top_k"]
    assert main(["whynot", str(run), "--user", user, "--item", item, "--k", "3"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert answer["sentence"].split(";")[0] in text and "events holding it back" in text
