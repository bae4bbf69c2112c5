"""The allocator setting: applied once, reported honestly, and switched off by the variable."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from influrec.runtime import DISABLE_VARIABLE

PROBE = "from influrec.runtime import keep_freed_memory as k; print(k(), k())"


def _probe(**env: str) -> str:
    environment = {k: v for k, v in os.environ.items() if k != DISABLE_VARIABLE} | env
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env=environment, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def _glibc() -> bool:
    try:
        return sys.platform.startswith("linux") and str(
            os.confstr("CS_GNU_LIBC_VERSION")
        ).startswith("glibc")
    except (ValueError, OSError, AttributeError):
        return False


@pytest.mark.skipif(not _glibc(), reason="the setting is glibc's mallopt")
def test_applied_on_glibc_and_idempotent() -> None:
    assert _probe() == "True True"


def test_the_variable_leaves_the_allocator_alone() -> None:
    assert _probe(**{DISABLE_VARIABLE: "1"}) == "False False"
