"""Byte streams for the text readers, and the source lines that bad-row messages quote.

* :func:`open_binary` opens a file (``.gz`` decompressed on the fly) positioned after any UTF-8
  byte-order mark; a truncated or corrupt ``.gz`` becomes one :class:`InputError`.
* :class:`Utf8Guard` passes bytes through unchanged when they are valid UTF-8 and replaces an
  invalid byte with U+FFFD, remembering its (1-based, physical) line, so that a reader sees only
  valid text and the row on that line becomes a ``bad_encoding`` bad row instead of failing the
  whole file.
* :func:`source_lines` reads given physical lines back from the file, as they are in it.
"""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any, cast

from influrec.errors import InputError

BOM = b"\xef\xbb\xbf"
_REPLACEMENT = "\ufffd".encode()
_CHUNK = 1 << 20
_READ_ERRORS = (EOFError, OSError, zlib.error)


def _read_error(path: Path, exc: BaseException) -> InputError:
    if path.suffix == ".gz":
        return InputError(
            f"{path}: the compressed file is truncated or corrupt ({exc}); "
            "download or compress it again"
        )
    return InputError(f"{path}: cannot read ({exc})")


class CheckedStream(io.RawIOBase):
    """Reads ``raw``; a read error (truncated ``.gz``, bad CRC, I/O error) becomes InputError.

    With ``quiet=True`` (a stream read by pyarrow, possibly from its own thread) the error is
    kept and the stream ends there instead; the caller calls :meth:`check`.
    """

    def __init__(self, raw: IO[bytes], path: Path, *, quiet: bool = False) -> None:
        self.raw, self.path, self.quiet = raw, path, quiet
        self.error: InputError | None = None

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        """Up to ``size`` bytes as the underlying file gives them (no extra copy)."""
        if self.error is not None:
            return b""
        try:
            return self.raw.read(-1 if size is None else size)
        except _READ_ERRORS as exc:
            self.error = _read_error(self.path, exc)
            if not self.quiet:
                raise self.error from exc
            return b""

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def check(self) -> None:
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        self.raw.close()
        super().close()


def open_binary(path: Path, *, quiet: bool = False) -> CheckedStream:
    """Open a file as bytes after any BOM, decompressing ``.gz``; clear errors for a missing,
    empty, truncated or corrupt file (see :class:`CheckedStream` for ``quiet``)."""
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a folder; give the data file itself")
    raw = gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")  # noqa: SIM115
    try:
        start = raw.peek(len(BOM))
        if start.startswith(BOM):
            raw.read(len(BOM))
            start = raw.peek(1)
    except _READ_ERRORS as exc:
        raw.close()
        raise _read_error(path, exc) from exc
    if not start:
        raw.close()
        raise InputError(f"{path}: file is empty")
    return CheckedStream(cast(IO[bytes], raw), path, quiet=quiet)


class Utf8Guard(io.RawIOBase):
    """Byte stream that is always valid UTF-8; ``bad_lines`` holds the lines that were not.

    ``quoted`` turns True once a ``"`` has passed (before that no field can hold a newline).
    """

    def __init__(self, raw: io.RawIOBase) -> None:
        self.raw = raw
        self.bad_lines: set[int] = set()
        self.newlines = 0  # newlines passed on so far
        self.carry = b""  # an incomplete multi-byte character at the end of the last chunk
        self.pending = memoryview(b"")
        self.quoted = False

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        """Checked bytes, at most about ``size`` of them; b"" at the end."""
        want = size if size is not None and size > 0 else _CHUNK
        while True:
            data = self.raw.read(want) or b""
            if not data and not self.carry:
                return b""
            out = self._checked(data, final=not data)
            if data and out.endswith(b"\r"):
                # pyarrow loses the "\n" of a quoted "\r\n" cut between two reads
                out, self.carry = out[:-1], b"\r" + self.carry
            if out or not data:
                return out

    def readinto(self, buffer: Any) -> int:
        if not self.pending:
            self.pending = memoryview(self.read(len(buffer)))
        n = min(len(buffer), len(self.pending))
        buffer[:n] = self.pending[:n]
        self.pending = self.pending[n:]
        return n

    def _checked(self, data: bytes, *, final: bool) -> bytes:
        if self.carry:
            data, self.carry = self.carry + data, b""
        self.quoted = self.quoted or b'"' in data
        if data.isascii():
            self.newlines += data.count(b"\n")
            return data
        parts, start = [], 0
        while True:
            try:
                data[start:].decode("utf-8")
                break
            except UnicodeDecodeError as exc:
                bad = start + exc.start
                if exc.reason == "unexpected end of data" and not final:
                    data, self.carry = data[:bad], data[bad:]
                    break
                self.bad_lines.add(self.newlines + data.count(b"\n", 0, bad) + 1)
                parts += [data[start:bad], _REPLACEMENT]
                start += exc.end
        parts.append(data[start:])
        self.newlines += data.count(b"\n")
        return b"".join(parts)


def source_lines(path: Path, wanted: Iterable[int]) -> dict[int, str]:
    """The given 1-based physical lines of ``path`` as text, undecodable bytes shown as ``\\xNN``.

    One pass that stops after the last wanted line; lines past a truncation are left out.
    """
    todo = set(wanted)
    found: dict[int, str] = {}
    if not todo:
        return found
    last = max(todo)
    try:
        with open_binary(path) as raw, io.BufferedReader(raw) as lines:
            for number, line in enumerate(lines, start=1):
                if number in todo:
                    found[number] = line.decode("utf-8", "backslashreplace").rstrip("\r\n")
                if number >= last:
                    break
    except InputError:
        pass
    return found
