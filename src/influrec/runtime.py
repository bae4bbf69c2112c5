"""Process-wide settings that make CPU training and inference faster.

The ``influrec`` command, the service and the benchmarks call :func:`keep_freed_memory` at
start-up; a program that uses the library directly may call it once, before heavy work.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys

log = logging.getLogger(__name__)

DISABLE_VARIABLE = "INFLUREC_SYSTEM_MALLOC"
"""Set to 1 to leave the C allocator as it is (to compare, or with another allocator)."""

_M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's malloc.h
_M_MMAP_THRESHOLD = -3
_KEEP_BYTES = 1 << 30

_applied: bool | None = None


def keep_freed_memory() -> bool:
    """Have glibc's malloc keep freed blocks of up to 1 GiB for reuse.

    By default glibc serves every large block (above a threshold it adapts up to 32 MiB) with
    a fresh ``mmap`` and returns it to the system when freed, so the next tensor of that size
    page-faults and is zeroed by the kernel all over again. A leave-one-out over 200 events
    allocates several 20 MB temporaries per call; with this setting it takes ~24 ms instead
    of 32-35 ms in most runs on the benchmark VM (bench/influence.py), and a model's forward
    pass gains alike. The cost: the process keeps its peak heap instead of shrinking after it.

    Returns whether the setting is in effect (glibc on Linux, and ``INFLUREC_SYSTEM_MALLOC``
    not set to 1). Idempotent.
    """
    global _applied
    if _applied is not None:
        return _applied
    _applied = False
    if os.environ.get(DISABLE_VARIABLE) == "1" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        _applied = bool(
            libc.mallopt(_M_MMAP_THRESHOLD, _KEEP_BYTES)
            and libc.mallopt(_M_TRIM_THRESHOLD, _KEEP_BYTES)
        )
    except (OSError, AttributeError):  # not glibc (musl, ...): nothing to tune
        pass
    log.info("keep freed memory for reuse (glibc mallopt): %s", _applied)
    return _applied
