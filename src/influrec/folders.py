"""Folders that influrec writes, and the one rule for when it may write or replace them.

An output folder (a prepared dataset, a run, a report...) is written only where nothing of the
user's can be lost:

* it does not exist yet, or is an empty folder: it is written;
* it is a folder of the same kind that influrec wrote (every marker file of that kind is there,
  and nothing else but names influrec writes in such a folder), it does not hold an input of the
  command (the input file, the dataset a run is trained from, or a folder above them), and
  ``overwrite`` is asked: it is replaced;
* anything else (a file, a folder with other things in it, a folder that holds an input, a
  place that cannot be written) is refused with an :class:`~influrec.errors.InputError` that
  says why, before any work is done.

Replacing is atomic: the new content is written to a hidden ``.NAME.tmp-PID-XXXX`` sibling and
renamed into place, the old folder is renamed to ``.NAME.old-PID-XXXX`` and then deleted. A
failure at any step removes the temporary folder and puts the old one back; leftovers of a
process that was killed are removed the next time the same folder is written (an old folder
whose replacement never arrived is put back).

Writers use :func:`new_folder`::

    with new_folder(out, DATASET_FOLDER, overwrite=True, inputs=[source]) as tmp:
        write_everything_into(tmp)
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from influrec.errors import InputError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FolderKind:
    """A kind of folder influrec writes.

    ``markers`` are relative paths that must all exist for a folder to count as one of this
    kind; ``contents`` are the top-level names influrec may write there (markers included);
    ``part_of`` names the parent folders it may be part of (a run's copy of its dataset).
    """

    name: str
    markers: tuple[str, ...]
    contents: frozenset[str]
    part_of: tuple[str, str] | None = None  # (marker, kind name): a folder whose parent has
    # that marker file belongs to that other folder and is never replaced on its own


class FolderExistsError(InputError):
    """The output folder exists and is not empty, and replacing it was not asked for.

    ``replaceable`` says whether it is a folder of ``kind`` that asking for it would replace
    (``reason`` says why not otherwise); the CLI turns that into the flag to pass.
    """

    def __init__(self, path: Path, kind: FolderKind, reason: str | None) -> None:
        self.path, self.kind, self.reason = Path(path), kind, reason
        self.replaceable = reason is None
        detail = f"an influrec {kind.name}" if reason is None else reason
        super().__init__(f"{path}: already exists and is not empty ({detail})")


def check_output_dir(
    out_dir: Path, kind: FolderKind, *, overwrite: bool, inputs: Iterable[Path] = ()
) -> None:
    """Raise :class:`InputError` unless ``out_dir`` may be written under the module's rule
    (:class:`FolderExistsError` when it exists and ``overwrite`` is false)."""
    out = Path(out_dir)
    if out.is_symlink():  # replacing would swap the link, not what it points to
        raise InputError(f"{out}: is a symbolic link; name the folder it points to")
    _check_writable_place(out)
    if not out.exists():
        return
    if not out.is_dir():
        raise InputError(f"{out}: exists and is a file, not a folder; choose another folder")
    if not any(out.iterdir()):
        return
    reason = why_not_replaceable(out, kind, inputs=inputs)
    if not overwrite:
        raise FolderExistsError(out, kind, reason)
    if reason is not None:
        raise InputError(f"{out}: not replaced: {reason}; choose another folder")


def why_not_replaceable(
    folder: Path, kind: FolderKind, *, inputs: Iterable[Path] = ()
) -> str | None:
    """Why the existing ``folder`` must not be replaced by a ``kind`` folder (None: it may)."""
    if folder.is_symlink():
        return "it is a symbolic link; name the folder it points to"
    real = folder.resolve()
    for item in inputs:
        source = Path(item).resolve()
        if source == real or real in source.parents:
            return f"it holds the input {item}"
    if kind.part_of is not None and (real.parent / kind.part_of[0]).exists():
        return f"it is part of the {kind.part_of[1]} {real.parent}"
    missing = [m for m in kind.markers if not (folder / m).exists()]
    if missing:
        return f"not an influrec {kind.name}: it has no {', '.join(missing)}"
    foreign = sorted(p.name for p in folder.iterdir() if p.name not in kind.contents)
    if foreign:
        shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
        return f"it holds files influrec did not write there: {shown}"
    return None


def _check_writable_place(out: Path) -> None:
    """The folder that would hold ``out`` (its nearest existing ancestor) accepts new entries."""
    place = out.parent
    while not place.exists() and place != place.parent:
        place = place.parent
    if not place.is_dir():
        raise InputError(f"{out}: cannot be created: {place} is a file, not a folder")
    into = out.is_dir() and not any(out.iterdir())  # an empty folder is written into
    for folder in (place, out) if into else (place,):
        try:
            probe = tempfile.mkdtemp(prefix=".influrec-probe-", dir=folder)
        except OSError as exc:
            raise InputError(
                f"{out}: cannot be written: creating a folder in {folder} failed "
                f"({exc.strerror or exc}); choose a folder you can write to"
            ) from None
        os.rmdir(probe)


@contextlib.contextmanager
def new_folder(
    out_dir: Path, kind: FolderKind, *, overwrite: bool = False, inputs: Iterable[Path] = ()
) -> Iterator[Path]:
    """A temporary folder to write ``out_dir``'s content into; on a clean exit it replaces
    ``out_dir`` (checked with :func:`check_output_dir` before and again just before the swap),
    on an exception it is removed and ``out_dir`` is left as it was."""
    out = _absolute(out_dir)  # "." has no name to make a sibling from
    inputs = list(inputs)
    check_output_dir(out, kind, overwrite=overwrite, inputs=inputs)
    out.parent.mkdir(parents=True, exist_ok=True)
    if remove_stale_temporaries(out):  # an interrupted swap's old folder is back: check again
        check_output_dir(out, kind, overwrite=overwrite, inputs=inputs)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()  # unlike mkdtemp, honours the umask
    try:
        yield tmp
        check_output_dir(out, kind, overwrite=overwrite, inputs=inputs)
        replace_dir(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def replace_dir(new: Path, target: Path) -> None:
    """Rename ``new`` to ``target``, deleting what ``target`` was; if the swap fails the old
    ``target`` is put back."""
    target = _absolute(target)
    old = target.parent / f".{target.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    had_old = target.exists() or target.is_symlink()
    if had_old:
        target.rename(old)
    try:
        new.rename(target)
    except BaseException:
        if had_old:
            old.rename(target)
        raise
    if had_old:
        _delete(old)


def remove_dir(folder: Path, kind: FolderKind) -> None:
    """Delete ``folder`` if it is a ``kind`` folder influrec wrote (else InputError)."""
    folder = _absolute(folder)
    if not folder.exists():
        return
    if folder.is_dir() and not folder.is_symlink() and not any(folder.iterdir()):
        folder.rmdir()
        return
    reason = why_not_replaceable(folder, kind)
    if reason is not None:
        raise InputError(f"{folder}: not deleted: {reason}; remove it yourself or choose another")
    old = folder.parent / f".{folder.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    folder.rename(old)
    _delete(old)


def remove_stale_temporaries(out: Path) -> bool:
    """Delete ``.NAME.tmp-PID-*`` / ``.NAME.old-PID-*`` siblings of ``out`` left by processes
    that no longer run (killed while writing it). An old folder whose process was killed in
    the middle of the swap, while ``out`` is missing, is renamed back to ``out`` instead;
    returns whether that happened."""
    pattern = re.compile(rf"\.{re.escape(out.name)}\.(tmp|old)-(\d+)(?:-[0-9a-f]+)?")
    restored = False
    if not out.parent.is_dir():
        return restored
    for entry in sorted(out.parent.iterdir()):
        match = pattern.fullmatch(entry.name)
        if not match or not entry.is_dir() or _process_alive(int(match.group(2))):
            continue
        if match.group(1) == "old" and not (out.exists() or out.is_symlink()):
            entry.rename(out)
            restored = True
        else:
            _delete(entry)
    return restored


def _absolute(path: Path) -> Path:
    """``path`` made absolute without resolving symbolic links."""
    return Path(os.path.abspath(path))


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def _delete(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    if folder.exists():
        log.warning("could not delete %s completely; remove it by hand", folder)
