"""One seen-items default for the library, the CLI and the service: a user is recommended new
items (the items of their history left out), and explanations rank the same items, unless
seen items are asked for (``exclude_seen=False``, ``--include-seen``, ``exclude_seen=false``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from influrec.cli.main import main
from influrec.inference import EXCLUDE_SEEN, Recommender
from influrec.influence import api

READ = {"Authorization": "Bearer reader-key"}


def cli_json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict:
    capsys.readouterr()
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_library_cli_and_service_share_one_default(
    served_run: Path, client: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    rec = Recommender.load(served_run)
    user = max(rec.user_index, key=lambda u: len(rec.user_history(u)))
    history = rec.user_history(user)
    seen = {rec.item_ids[i - 1] for i in history.items.tolist()}
    k = 8
    lists = {}
    for name, exclude in (("default", None), ("excluded", True), ("included", False)):
        options = {} if exclude is None else {"exclude_seen": exclude}
        flags = [] if exclude is None else ["--exclude-seen" if exclude else "--include-seen"]
        query = "" if exclude is None else f"&exclude_seen={str(exclude).lower()}"
        library = [r.item_id for r in rec.recommend(history, k=k, **options)]
        argv = ["recommend", str(served_run), "--user", user, "--k", str(k), *flags]
        cli = [r["item_id"] for r in cli_json(capsys, argv)["recommendations"]]
        url = f"/v1/users/{user}/recommendations?k={k}{query}"
        http = [r["item"] for r in client.get(url, headers=READ).json()["recommendations"]]
        assert library == cli == http, name
        lists[name] = library
    assert EXCLUDE_SEEN and lists["default"] == lists["excluded"] != lists["included"]
    assert not seen & set(lists["default"]) and seen & set(lists["included"])
    capsys.readouterr()
    assert main(["recommend", str(served_run), "--user", user, "--k", "2"]) == 0
    assert f"top 2 for {user} (new items only)" in capsys.readouterr().out

    explained = {}
    for name, exclude in (("default", None), ("included", False)):
        options = {} if exclude is None else {"exclude_seen": exclude}
        flags = [] if exclude is None else ["--include-seen"]
        query = "" if exclude is None else "&exclude_seen=false"
        library = api.explain(rec, history, k=k, **options).to_dict()
        argv = ["explain", str(served_run), "--user", user, "--k", str(k), *flags]
        cli = cli_json(capsys, argv)
        url = f"/v1/users/{user}/explanations?k={k}{query}"
        http = client.get(url, headers=READ).json()
        for answer in (library, cli, http):  # the same items, measured the same way
            assert [r["item"] for r in answer["recommendations"]] == lists[name]
            assert answer["exclude_seen"] is (exclude is not False)
        assert [r["value"] for r in cli["recommendations"]] == pytest.approx(
            [r["value"] for r in library["recommendations"]], abs=1e-5
        )
        explained[name] = library["recommendations"]
    # an explanation names its own item as a supporter only when seen items are included
    own = lambda recs: [r["item"] for r in recs if r["item"] in {e["item"] for e in r["events"]}]  # noqa: E731
    assert own(explained["default"]) == [] and own(explained["included"]) != []
