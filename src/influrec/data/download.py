"""Download public recommendation datasets into a cache: resumable, verified, safely extracted.

Two entry points::

    download(url, dest, sha256=...)          one file, resumed from ``dest.part`` after a break
    fetch_dataset("ml-1m", cache_dir)        a known dataset (or a URL), downloaded once and
                                             extracted into ``cache_dir/<name>/``

Only ``urllib`` is used; ``http``, ``https`` and ``file`` URLs are supported. A ``sha256`` that is
``None`` means no published checksum is known: the computed one is logged so it can be recorded.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import logging
import os
import re
import shutil
import tarfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO
from urllib.error import HTTPError, URLError
from urllib.parse import unquote, urlparse
from urllib.request import Request, url2pathname, urlopen

from influrec.errors import InputError

logger = logging.getLogger(__name__)


class DownloadError(InputError):
    """A download, checksum or extraction failed; the message names the URL or file and why
    (the user can act on it: check the URL or the connection, run again to resume)."""


@dataclass(frozen=True)
class DatasetSource:
    """Where a public dataset lives and which file inside it the reader wants."""

    name: str
    url: str
    sha256: str | None
    archive_member: str | None
    format: str
    description: str
    companions: tuple[str, ...] = ()  # URLs of plain files stored beside the main one


_GROUPLENS = "https://files.grouplens.org/datasets/movielens"
_SASREC = "https://raw.githubusercontent.com/kang205/SASRec/master/data"
_S3REC = "https://raw.githubusercontent.com/aHuiWang/CIKM2020-S3Rec/master/data"

KNOWN_DATASETS: dict[str, DatasetSource] = {
    source.name: source
    for source in (
        # name, url, sha256, archive_member (main file inside the archive), format, description
        DatasetSource(
            "ml-100k", f"{_GROUPLENS}/ml-100k.zip", None, "ml-100k/u.data", "movielens",
            "MovieLens 100K (1998): 100,000 ratings 1-5 from 943 users on 1,682 movies.",
        ),
        DatasetSource(
            "ml-1m", f"{_GROUPLENS}/ml-1m.zip", None, "ml-1m/ratings.dat", "movielens",
            "MovieLens 1M (2003): 1,000,209 ratings 1-5 from 6,040 users on about 3,900 movies.",
        ),
        DatasetSource(
            "ml-20m", f"{_GROUPLENS}/ml-20m.zip", None, "ml-20m/ratings.csv", "movielens",
            "MovieLens 20M (2015): 20,000,263 ratings 0.5-5 from 138,493 users on 27,278 movies.",
        ),
        DatasetSource(
            "ml-25m", f"{_GROUPLENS}/ml-25m.zip", None, "ml-25m/ratings.csv", "movielens",
            "MovieLens 25M (2019): 25,000,095 ratings 0.5-5 from 162,541 users on 62,423 movies.",
        ),
        DatasetSource(
            "ml-latest-small", f"{_GROUPLENS}/ml-latest-small.zip", None,
            "ml-latest-small/ratings.csv", "movielens",
            "MovieLens latest small: about 100,000 ratings from about 600 users; GroupLens "
            "refreshes it, so its contents (and checksum) change between releases.",
        ),
        DatasetSource(
            "sasrec-ml-1m", f"{_SASREC}/ml-1m.txt", None, None, "sasrec",
            "MovieLens 1M as preprocessed by SASRec (Kang & McAuley, ICDM 2018): one "
            "'user item' pair per line, ids from 1, in time order within each user.",
        ),
        DatasetSource(
            "sasrec-video", f"{_SASREC}/Video.txt", None, None, "sasrec",
            "Amazon 'Video' reviews as preprocessed by SASRec: one 'user item' pair per line.",
        ),
        DatasetSource(
            "s3rec-lastfm", f"{_S3REC}/LastFM.txt", None, None, "s3rec",
            "LastFM as preprocessed by S3-Rec (Zhou et al., CIKM 2020): one user per line, "
            "'user item item ...' in time order; with the artists' tags as attributes.",
            (f"{_S3REC}/LastFM_item2attributes.json",),
        ),
        DatasetSource(
            "s3rec-beauty", f"{_S3REC}/Beauty.txt", None, None, "s3rec",
            "Amazon Beauty as preprocessed by S3-Rec: 22,363 users, 12,101 items, one user per "
            "line in time order; with the items' categories and brand as attributes.",
            (f"{_S3REC}/Beauty_item2attributes.json",),
        ),
        DatasetSource(
            "s3rec-sports", f"{_S3REC}/Sports_and_Outdoors.txt", None, None, "s3rec",
            "Amazon Sports and Outdoors as preprocessed by S3-Rec: 35,598 users, 18,357 items; "
            "with the items' categories and brand as attributes.",
            (f"{_S3REC}/Sports_and_Outdoors_item2attributes.json",),
        ),
        DatasetSource(
            "s3rec-yelp", f"{_S3REC}/Yelp.txt", None, None, "s3rec",
            "Yelp as preprocessed by S3-Rec: 30,431 users, 20,033 businesses; with the "
            "businesses' categories as attributes.",
            (f"{_S3REC}/Yelp_item2attributes.json",),
        ),
    )
}  # fmt: skip
"""Datasets ``fetch_dataset`` knows by name. Checksums are ``None`` until someone records them."""


def default_cache_dir() -> Path:
    """``$INFLUREC_CACHE`` when set, otherwise ``~/.cache/influrec``."""
    configured = os.environ.get("INFLUREC_CACHE")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "influrec"


def download(
    url: str,
    dest: Path,
    *,
    sha256: str | None = None,
    chunk_size: int = 1 << 20,
    timeout: float = 30.0,
) -> Path:
    """Download ``url`` to the file ``dest`` and return ``dest``.

    Bytes go to ``dest.part``, renamed to ``dest`` once complete and verified. An existing
    ``.part`` is resumed: ``file://`` by seeking, ``http(s)://`` with a ``Range`` header (a server
    that ignores it and answers 200 makes the download restart). A ``dest`` that already exists
    and matches ``sha256`` (or any ``dest`` when ``sha256`` is None) is returned untouched.
    ``timeout`` is in seconds, per network operation.

    Raises DownloadError when the URL cannot be reached or read (the ``.part`` is kept, so calling
    again resumes) or when the checksum differs (the ``.part`` is deleted).
    """
    dest = Path(dest)
    if dest.exists():
        if sha256 is None or _sha256_of(dest, chunk_size) == sha256.lower():
            logger.info("using cached %s", dest)
            return dest
        logger.warning("cached %s does not match sha256 %s; downloading it again", dest, sha256)
        dest.unlink()
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    scheme = urlparse(url).scheme
    if scheme == "file":
        _copy_local(url, part, chunk_size)
    elif scheme in ("http", "https"):
        _fetch_http(url, part, chunk_size, timeout)
    else:
        raise DownloadError(f"cannot download {url}: scheme {scheme!r} is not http, https or file")
    _verify(part, url, sha256, chunk_size)
    os.replace(part, dest)
    logger.info("downloaded %s to %s", url, dest)
    return dest


def _sha256_of(path: Path, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def _verify(part: Path, url: str, sha256: str | None, chunk_size: int) -> None:
    actual = _sha256_of(part, chunk_size)
    if sha256 is None:
        logger.info("%s has sha256 %s (no published checksum to compare with)", url, actual)
        return
    if actual != sha256.lower():
        part.unlink()
        raise DownloadError(
            f"checksum mismatch for {url}: expected sha256 {sha256.lower()}, got {actual}; "
            f"the partial file {part} was deleted, so the next attempt starts afresh"
        )


def _copy_stream(source: BinaryIO | http.client.HTTPResponse, out: BinaryIO, chunk: int) -> int:
    copied = 0
    while data := source.read(chunk):
        out.write(data)
        copied += len(data)
    return copied


def _copy_local(url: str, part: Path, chunk_size: int) -> None:
    parsed = urlparse(url)
    if parsed.netloc not in ("", "localhost"):
        raise DownloadError(f"cannot read {url}: file URLs on host {parsed.netloc!r} unsupported")
    source = Path(url2pathname(parsed.path))
    try:
        size = source.stat().st_size
        offset = part.stat().st_size if part.exists() else 0
        if offset > size:
            logger.warning("%s is longer than %s (%d bytes); restarting", part, url, size)
            offset = 0
        if offset:
            logger.info("resuming %s at byte %d of %d", url, offset, size)
        with source.open("rb") as src, part.open("ab" if offset else "wb") as out:
            src.seek(offset)
            _copy_stream(src, out, chunk_size)
    except OSError as exc:
        raise DownloadError(f"cannot read {url}: {exc.strerror or exc}") from exc


def _fetch_http(url: str, part: Path, chunk_size: int, timeout: float) -> None:
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": "influrec"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        response = urlopen(Request(url, headers=headers), timeout=timeout)
    except HTTPError as exc:
        if exc.code == 416 and offset:  # Range not satisfiable: .part complete, or too long
            if _part_is_complete(url, part, offset, exc.headers.get("Content-Range")):
                return
            return _fetch_http(url, part, chunk_size, timeout)
        raise DownloadError(f"cannot download {url}: HTTP {exc.code} {exc.reason}") from exc
    except (URLError, OSError) as exc:
        raise DownloadError(f"cannot reach {url}: {getattr(exc, 'reason', exc)}") from exc
    with response:
        append = _resumes(response, url, offset)
        expected = response.headers.get("Content-Length")
        try:
            with part.open("ab" if append else "wb") as out:
                received = _copy_stream(response, out, chunk_size)
        except (OSError, http.client.HTTPException) as exc:
            message = f"download of {url} broke off ({exc}); {part} is kept, run again to resume"
            raise DownloadError(message) from exc
    if expected is not None and received != int(expected):
        raise DownloadError(
            f"{url} closed the connection after {received} of {expected} bytes; "
            f"{part} is kept, run again to resume"
        )


def _resumes(response: http.client.HTTPResponse, url: str, offset: int) -> bool:
    """Whether the response continues the ``.part`` (206) rather than restarting it (200)."""
    if not offset:
        return False
    if response.status != 206:
        logger.warning("%s ignored the Range request (HTTP %d); restarting", url, response.status)
        return False
    content_range = response.headers.get("Content-Range", "")
    match = re.match(r"bytes (\d+)-", content_range)
    if match is None or int(match.group(1)) != offset:
        raise DownloadError(
            f"{url} answered Range bytes={offset}- with Content-Range {content_range!r}; "
            "cannot resume safely"
        )
    logger.info("resuming %s at byte %d", url, offset)
    return True


def _part_is_complete(url: str, part: Path, offset: int, content_range: str | None) -> bool:
    """After HTTP 416: True when ``part`` already holds the whole file, else delete it."""
    match = re.match(r"bytes \*/(\d+)", content_range or "")
    if match is not None and int(match.group(1)) == offset:
        return True
    logger.warning("%s refused Range bytes=%d-; restarting", url, offset)
    part.unlink()
    return False


def _inside(root: Path, member: str, archive: Path) -> None:
    if not (root / member).resolve().is_relative_to(root.resolve()):
        raise DownloadError(
            f"refusing to extract {archive}: member {member!r} would be written outside {root}"
        )


def _extract_zip(archive: Path, folder: Path) -> Path:
    with zipfile.ZipFile(archive) as bundle:
        for name in bundle.namelist():
            _inside(folder, name, archive)
        bundle.extractall(folder)
    return folder


def _extract_tar(archive: Path, folder: Path) -> Path:
    with tarfile.open(archive) as bundle:
        members = bundle.getmembers()
        for member in members:
            _inside(folder, member.name, archive)
            if not (member.isfile() or member.isdir()):
                raise DownloadError(
                    f"refusing to extract {archive}: member {member.name!r} is a link or "
                    "special file; only regular files and folders are extracted"
                )
        if hasattr(tarfile, "data_filter"):
            bundle.extractall(folder, members=members, filter="data")
        else:  # Python < 3.10.12: the checks above are the guard
            bundle.extractall(folder, members=members)
    return folder


def _extract_gzip(archive: Path, folder: Path) -> Path:
    target = folder / archive.name.removesuffix(".gz")
    with gzip.open(archive, "rb") as src, target.open("wb") as out:
        shutil.copyfileobj(src, out)
    return target


_EXTRACTORS: dict[str, Callable[[Path, Path], Path]] = {
    ".zip": _extract_zip,
    ".tar.gz": _extract_tar,
    ".tgz": _extract_tar,
    ".tar.bz2": _extract_tar,
    ".tar.xz": _extract_tar,
    ".tar": _extract_tar,
    ".gz": _extract_gzip,
}
"""Archive suffix -> extractor, which returns the default main path. First match wins."""


def _archive_suffix(file_name: str) -> str | None:
    return next((suffix for suffix in _EXTRACTORS if file_name.endswith(suffix)), None)


def _extract(archive: Path, folder: Path, suffix: str) -> Path:
    """Extract into ``folder.partial``, then rename it to ``folder``: a crash leaves no half folder.

    Returns the default main path: the folder, or the decompressed file for a plain ``.gz``.
    """
    staging = folder.with_name(folder.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        main = _EXTRACTORS[suffix](archive, staging)
    except (OSError, EOFError, zipfile.BadZipFile, tarfile.TarError, DownloadError) as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(exc, DownloadError):
            raise
        raise DownloadError(f"cannot extract {archive}: {exc}") from exc
    staging.rename(folder)
    logger.info("extracted %s into %s", archive, folder)
    return folder / main.relative_to(staging)


def _url_file_name(url: str) -> str:
    name = PurePosixPath(unquote(urlparse(url).path)).name
    if name in ("", ".", ".."):
        raise DownloadError(f"cannot tell a file name from {url}; the URL must end in one")
    return name


def _resolve_source(name_or_url: str) -> DatasetSource:
    if name_or_url in KNOWN_DATASETS:
        return KNOWN_DATASETS[name_or_url]
    if "://" in name_or_url:
        file_name = _url_file_name(name_or_url)
        suffix = _archive_suffix(file_name)
        name = file_name.removesuffix(suffix) if suffix else PurePosixPath(file_name).stem
        return DatasetSource(name, name_or_url, None, None, "csv", f"downloaded from {name_or_url}")
    raise InputError(
        f"unknown dataset {name_or_url!r}; known datasets: {', '.join(sorted(KNOWN_DATASETS))}; "
        "or pass an http(s):// or file:// URL"
    )


def _main_path(folder: Path, default: Path, source: DatasetSource) -> Path:
    if source.archive_member is None:
        return default
    main = folder / source.archive_member
    if not main.exists():
        found = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
        raise DownloadError(
            f"{source.name}: expected {source.archive_member} in {folder}, found {found[:10]}; "
            f"delete {folder} to extract again"
        )
    return main


def fetch_dataset(name_or_url: str, cache_dir: Path, *, sha256: str | None = None) -> Path:
    """Download (once) and extract a dataset into ``cache_dir/<name>/``; return its main file.

    ``name_or_url`` is a key of ``KNOWN_DATASETS`` or a URL. Archives (zip, tar[.gz], gz) are
    extracted, refusing any member that would land outside the folder; other files are stored
    as they are. Returns ``archive_member`` inside the folder when the source names one, else
    the extraction folder (the file itself for a plain file or a single ``.gz``). ``sha256``
    overrides the source's checksum. A plain file's ``companions`` are stored beside it.

    Raises InputError for an unknown name (listing the known ones), DownloadError when the
    download, checksum or extraction fails.
    """
    source = _resolve_source(name_or_url)
    cache_dir = Path(cache_dir)
    folder = cache_dir / source.name
    file_name = _url_file_name(source.url)
    expected = sha256 or source.sha256
    suffix = _archive_suffix(file_name)
    if suffix is None:
        for url in source.companions:  # e.g. S3-Rec's item attributes, read from beside the log
            download(url, folder / _url_file_name(url))
        return download(source.url, folder / file_name, sha256=expected)
    if folder.exists():
        logger.info("using extracted %s", folder)
        default = folder / file_name.removesuffix(".gz") if suffix == ".gz" else folder
    else:
        archive = download(source.url, cache_dir / "archives" / file_name, sha256=expected)
        default = _extract(archive, folder, suffix)
    return _main_path(folder, default, source)
