"""Every command, called with a bad argument as a user would type it: exit 2, one clear
``error:`` line, no traceback. Each case runs as its own ``influrec`` process."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests_helpers import train_tiny_run


@dataclass(frozen=True)
class Case:
    name: str
    argv: tuple[str, ...]  # {run}, {data} and {tmp} are filled in
    says: str  # what the error line must contain


HISTORIES = {
    "time_word.json": [{"item": "i1", "timestamp": "yesterday"}],
    "time_nan.json": '[{"item": "i1", "timestamp": NaN}]',
    "time_huge.json": [{"item": "i1", "timestamp": 10**30}],
    "time_bool.json": [{"item": "i1", "timestamp": True}],
    "value_word.json": [{"item": "i1", "value": "high"}],
    "value_f32.json": [{"item": "i1", "value": 1e39}],
    "value_inf.json": '[{"item": "i1", "value": Infinity}]',
    "no_item.json": [{"behavior": "buy"}],
    "not_list.json": {"item": "i1"},
    "deep.json": "[" * 100_000,
    "bad_json.json": '[{"item": ',
}

CASES = [
    Case("recommend k negative", ("recommend", "{run}", "--user", "u3", "--k", "-1"), "--k"),
    Case("recommend k zero", ("recommend", "{run}", "--user", "u3", "--k", "0"), "at least 1"),
    Case("recommend k word", ("recommend", "{run}", "--user", "u3", "--k", "ten"), "whole"),
    Case("explain k negative", ("explain", "{run}", "--user", "u3", "--k", "-3"), "--k"),
    Case("whatif k zero", ("whatif", "{run}", "--user", "u3", "--k", "0"), "--k"),
    Case(
        "counterfactual k",
        ("counterfactual", "{run}", "--user", "u3", "--item", "i1", "--k", "-2"),
        "--k",
    ),
    Case(
        "actions candidates",
        ("influential-actions", "{run}", "--user", "u3", "--candidates", "-5"),
        "--candidates",
    ),
    Case("actions top", ("influential-actions", "{run}", "--user", "u3", "--top", "0"), "--top"),
    Case("faithfulness users 0", ("faithfulness", "{run}", "--users", "0"), "--users"),
    Case("evaluate ks 0", ("evaluate", "{run}", "--ks", "0,5"), "--ks"),
    Case("evaluate ks words", ("evaluate", "{run}", "--ks", "ten"), "--ks"),
    Case("evaluate ks empty", ("evaluate", "{run}", "--ks", ","), "--ks"),
    Case(
        "plot missing folder",
        ("explain", "{run}", "--user", "u3", "--plot", "{tmp}/nowhere/x.png"),
        "does not exist",
    ),
    Case(
        "plot not an image",
        ("explain", "{run}", "--user", "u3", "--plot", "{tmp}/x.txt"),
        "name the image",
    ),
    Case("whatif remove outside", ("whatif", "{run}", "--user", "u3", "--remove", "999"), "999"),
    Case("whatif unknown item", ("whatif", "{run}", "--user", "u3", "--add", "nope:buy"), "nope"),
    Case(
        "unknown user",  # explain has no --cold-start: the hint names only what it has
        ("explain", "{run}", "--user", "nobody"),
        "unknown user 'nobody': not in the run's dataset; give their events with --history",
    ),
    Case(
        "train unknown model architecture",
        ("train", "{data}", "--out", "{tmp}/kind", "--set", "model.architecture=rnn"),
        "model.architecture must name a registered model (transformer, gru, cnn, mlp), got 'rnn'",
    ),
    Case("synth users 0", ("data", "synth", "--out", "{tmp}/s", "--users", "0"), "--users"),
    Case("synth items 3", ("data", "synth", "--out", "{tmp}/s", "--items", "3"), "--items"),
    Case(
        "synth mean events", ("data", "synth", "--out", "{tmp}/s", "--mean-events", "2"), "--mean"
    ),
    Case(
        "denoise fraction", ("denoise", "{run}", "--fraction", "5", "--out", "{tmp}/d"), "between"
    ),
    Case(
        "data-influence top",
        ("data-influence", "{run}", "--user", "u3", "--item", "i1", "--top", "0"),
        "--top",
    ),
    Case("missing run", ("recommend", "{tmp}/no-run", "--user", "u3"), "no-run"),
    Case("serve port", ("serve", "{run}", "--port", "70000"), "--port"),
    Case("serve damaged run", ("serve", "{tmp}/damaged", "--port", "0"), "model.safetensors"),
    Case("history missing", ("recommend", "{run}", "--history", "{tmp}/none.json"), "none.json"),
    *(
        Case(f"history {name}", ("recommend", "{run}", "--history", "{tmp}/" + name), says)
        for name, says in {
            "time_word.json": "timestamp",
            "time_nan.json": "timestamp",
            "time_huge.json": "timestamp",
            "time_bool.json": "timestamp",
            "value_word.json": "value",
            "value_f32.json": "value",
            "value_inf.json": "value",
            "no_item.json": "'item'",
            "not_list.json": "list",
            "deep.json": "nested",
            "bad_json.json": "not valid JSON",
        }.items()
    ),
    Case(
        "explain history f32",
        ("explain", "{run}", "--history", "{tmp}/value_f32.json"),
        "value",
    ),
]


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, subprocess.CompletedProcess]:
    root = tmp_path_factory.mktemp("bad-args")
    run = train_tiny_run(root, users=40, epochs=1, max_len=10)
    tmp = root / "scratch"
    tmp.mkdir()
    for name, content in HISTORIES.items():
        text = content if isinstance(content, str) else json.dumps(content)
        (tmp / name).write_text(text)
    damaged = shutil.copytree(run, tmp / "damaged")
    weights = damaged / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])  # truncated
    fill = {"run": str(run), "data": str(root / "data"), "tmp": str(tmp)}
    env = {**os.environ, "COLUMNS": "200", "INFLUREC_API_KEYS": "k:read"}

    def call(case: Case) -> subprocess.CompletedProcess:
        argv = [a.format(**fill) for a in case.argv]
        command = [sys.executable, "-m", "influrec.cli.main", *argv]
        return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)

    with ThreadPoolExecutor(max_workers=4) as pool:
        done = list(pool.map(call, CASES))
    return {case.name: result for case, result in zip(CASES, done, strict=True)}


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_bad_argument_is_one_clear_error_line(
    case: Case, results: dict[str, subprocess.CompletedProcess]
) -> None:
    result = results[case.name]
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    error_lines = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(error_lines) == 1, result.stderr
    assert case.says in error_lines[0], error_lines[0]


def test_an_internal_error_is_shown_as_a_bug(tmp_path: Path) -> None:
    """A broken library function must not pass for an input error: traceback, exit 70."""
    probe = (
        "import sys\n"
        "from influrec.cli import main as cli\n"
        "from influrec.cli import data\n"
        "def broken(args):\n"
        "    raise ValueError('an internal invariant failed')\n"
        "data.run_stats = broken\n"
        "sys.exit(cli.main(['data', 'stats', sys.argv[1]]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe, str(tmp_path)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 70
    assert "Traceback" in result.stderr and "ValueError: an internal invariant" in result.stderr
    assert "bug in influrec" in result.stderr
    assert not any(line.startswith("error:") for line in result.stderr.splitlines())
