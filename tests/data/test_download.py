"""Downloader tests against real files: ``file://`` URLs and a loopback HTTP server with Range."""

from __future__ import annotations

import gzip
import hashlib
import io
import random
import re
import socket
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from influrec.data import download as dl
from influrec.data.dataset import prepare
from influrec.data.download import (
    DownloadError,
    default_cache_dir,
    download,
    fetch_dataset,
    recorded_sha256,
)
from influrec.data.sources import KNOWN_DATASETS, DatasetSource
from influrec.errors import InputError

PAYLOAD = random.Random(7).randbytes(100_003)  # odd length, several chunks of 4 KiB
CHUNK = 4096


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "remote" / "payload.bin"
    path.parent.mkdir()
    path.write_bytes(PAYLOAD)
    return path


def _part(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


def test_file_download_with_correct_checksum(source: Path, tmp_path: Path) -> None:
    dest = tmp_path / "cache" / "payload.bin"
    result = download(source.as_uri(), dest, sha256=_sha(PAYLOAD), chunk_size=CHUNK)
    assert result == dest
    assert dest.read_bytes() == PAYLOAD
    assert not _part(dest).exists()


def test_checksum_mismatch_raises_naming_both_and_leaves_no_file(
    source: Path, tmp_path: Path
) -> None:
    dest = tmp_path / "payload.bin"
    wrong = "ab" * 32
    with pytest.raises(DownloadError) as error:
        download(source.as_uri(), dest, sha256=wrong, chunk_size=CHUNK)
    assert wrong in str(error.value)
    assert _sha(PAYLOAD) in str(error.value)
    assert source.as_uri() in str(error.value)
    assert not dest.exists()
    assert not _part(dest).exists()


def test_file_resume_completes_a_half_written_part(source: Path, tmp_path: Path) -> None:
    dest = tmp_path / "payload.bin"
    half = len(PAYLOAD) // 2
    _part(dest).write_bytes(PAYLOAD[:half])
    download(source.as_uri(), dest, sha256=_sha(PAYLOAD), chunk_size=CHUNK)
    assert dest.read_bytes() == PAYLOAD
    assert not _part(dest).exists()


def test_file_resume_continues_the_part_rather_than_restarting(
    source: Path, tmp_path: Path
) -> None:
    dest = tmp_path / "payload.bin"
    half = len(PAYLOAD) // 2
    foreign = bytes(half)  # same length as the real first half, different bytes
    _part(dest).write_bytes(foreign)
    # A restart would produce PAYLOAD and pass the checksum; a resume keeps the foreign bytes.
    with pytest.raises(DownloadError, match="checksum mismatch"):
        download(source.as_uri(), dest, sha256=_sha(PAYLOAD), chunk_size=CHUNK)
    assert not dest.exists() and not _part(dest).exists()

    _part(dest).write_bytes(foreign)
    download(source.as_uri(), dest, chunk_size=CHUNK)
    assert dest.read_bytes() == foreign + PAYLOAD[half:]


def test_part_longer_than_the_source_restarts(source: Path, tmp_path: Path) -> None:
    dest = tmp_path / "payload.bin"
    _part(dest).write_bytes(bytes(len(PAYLOAD) + 10))
    download(source.as_uri(), dest, sha256=_sha(PAYLOAD), chunk_size=CHUNK)
    assert dest.read_bytes() == PAYLOAD


def test_cached_dest_is_reused_and_a_stale_one_replaced(source: Path, tmp_path: Path) -> None:
    dest = tmp_path / "payload.bin"
    dest.write_bytes(b"cached bytes")
    missing = (tmp_path / "no-such-file.bin").as_uri()  # any real download attempt would fail
    assert download(missing, dest) == dest
    assert download(missing, dest, sha256=_sha(b"cached bytes").upper()) == dest
    assert dest.read_bytes() == b"cached bytes"

    download(source.as_uri(), dest, sha256=_sha(PAYLOAD), chunk_size=CHUNK)  # stale: replaced
    assert dest.read_bytes() == PAYLOAD


def test_missing_file_url_names_the_url(tmp_path: Path) -> None:
    url = (tmp_path / "absent.zip").as_uri()
    with pytest.raises(DownloadError, match=re.escape(url)):
        download(url, tmp_path / "out.zip")


def test_unsupported_scheme_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="ftp"):
        download("ftp://example.org/x.zip", tmp_path / "x.zip")


@dataclass
class _Served:
    url: str
    ranges: list[str | None] = field(default_factory=list)
    bytes_sent: list[int] = field(default_factory=list)


@contextmanager
def _serve(
    payload: bytes,
    *,
    honour_range: bool = True,
    cut_first_after: int | None = None,
    status: int | None = None,
) -> Iterator[_Served]:
    """Serve ``payload`` on 127.0.0.1, recording each request's Range header and bytes sent.

    ``cut_first_after`` closes the first response's connection after that many body bytes;
    ``status`` answers every request with that error status instead.
    """
    served = _Served(url="")

    class Handler(BaseHTTPRequestHandler):
        timeout = 5

        def do_GET(self) -> None:
            header = self.headers.get("Range")
            served.ranges.append(header)
            if status is not None:
                self.send_error(status)
                return
            start = int(header[len("bytes=") : -1]) if header and honour_range else 0
            if start >= len(payload):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(payload)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                served.bytes_sent.append(0)
                return
            body = payload[start:]
            self.send_response(206 if start else 200)
            self.send_header("Content-Length", str(len(body)))
            if start:
                self.send_header(
                    "Content-Range", f"bytes {start}-{len(payload) - 1}/{len(payload)}"
                )
            self.end_headers()
            if cut_first_after is not None and len(served.ranges) == 1:
                body = body[:cut_first_after]
                self.close_connection = True
            self.wfile.write(body)
            served.bytes_sent.append(len(body))

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        served.url = f"http://127.0.0.1:{server.server_address[1]}/payload.bin"
        yield served
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_http_resume_sends_range_and_appends(tmp_path: Path) -> None:
    dest = tmp_path / "payload.bin"
    half = len(PAYLOAD) // 2
    foreign = bytes(half)
    _part(dest).write_bytes(foreign)
    with _serve(PAYLOAD) as served:
        download(served.url, dest, chunk_size=CHUNK, timeout=5)
    assert served.ranges == [f"bytes={half}-"]
    assert served.bytes_sent == [len(PAYLOAD) - half]
    assert dest.read_bytes() == foreign + PAYLOAD[half:]  # the kept bytes prove it resumed

    dest.unlink()
    _part(dest).write_bytes(PAYLOAD[:half])
    with _serve(PAYLOAD) as served:
        download(served.url, dest, sha256=_sha(PAYLOAD), chunk_size=CHUNK, timeout=5)
    assert dest.read_bytes() == PAYLOAD


def test_http_server_ignoring_range_restarts_from_zero(tmp_path: Path) -> None:
    dest = tmp_path / "payload.bin"
    _part(dest).write_bytes(bytes(1000))
    with _serve(PAYLOAD, honour_range=False) as served:
        download(served.url, dest, sha256=_sha(PAYLOAD), chunk_size=CHUNK, timeout=5)
    assert served.ranges == ["bytes=1000-"]
    assert served.bytes_sent == [len(PAYLOAD)]
    assert dest.read_bytes() == PAYLOAD


def test_http_broken_connection_keeps_part_and_next_call_resumes(tmp_path: Path) -> None:
    dest = tmp_path / "payload.bin"
    with _serve(PAYLOAD, cut_first_after=30_000) as served:
        with pytest.raises(DownloadError, match="run again to resume"):
            download(served.url, dest, sha256=_sha(PAYLOAD), chunk_size=CHUNK, timeout=5)
        assert _part(dest).read_bytes() == PAYLOAD[:30_000]
        assert not dest.exists()
        download(served.url, dest, sha256=_sha(PAYLOAD), chunk_size=CHUNK, timeout=5)
    assert served.ranges == [None, "bytes=30000-"]
    assert dest.read_bytes() == PAYLOAD


def test_http_complete_part_is_accepted_on_416(tmp_path: Path) -> None:
    dest = tmp_path / "payload.bin"
    _part(dest).write_bytes(PAYLOAD)
    with _serve(PAYLOAD) as served:
        download(served.url, dest, sha256=_sha(PAYLOAD), chunk_size=CHUNK, timeout=5)
    assert served.ranges == [f"bytes={len(PAYLOAD)}-"]
    assert dest.read_bytes() == PAYLOAD


def test_http_error_status_names_url_and_status(tmp_path: Path) -> None:
    with _serve(PAYLOAD, status=404) as served, pytest.raises(DownloadError, match="404") as error:
        download(served.url, tmp_path / "x.bin", timeout=5)
    assert served.url in str(error.value)
    assert not (tmp_path / "x.bin").exists()


def test_http_416_for_a_part_longer_than_the_file_restarts(tmp_path: Path) -> None:
    dest = tmp_path / "payload.bin"
    _part(dest).write_bytes(bytes(len(PAYLOAD) + 5))
    with _serve(PAYLOAD) as served:
        download(served.url, dest, sha256=_sha(PAYLOAD), chunk_size=CHUNK, timeout=5)
    assert served.ranges == [f"bytes={len(PAYLOAD) + 5}-", None]
    assert dest.read_bytes() == PAYLOAD


def test_unreachable_url_names_url_and_reason(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/ml-1m.zip"
    with pytest.raises(DownloadError, match=re.escape(url)) as error:
        download(url, tmp_path / "ml-1m.zip", timeout=5)
    assert "refused" in str(error.value).lower()


def _zip_with(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as bundle:
        for name, data in members.items():
            bundle.writestr(name, data)
    return path


def _register(monkeypatch: pytest.MonkeyPatch, archive: Path, member: str | None) -> None:
    source = DatasetSource("toy", archive.as_uri(), None, member, "movielens", "test dataset")
    monkeypatch.setitem(KNOWN_DATASETS, "toy", source)


def test_fetch_dataset_extracts_zip_and_returns_member(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ratings = b"1::10::5::978300760\n1::20::3::978302109\n"
    archive = _zip_with(tmp_path / "toy.zip", {"toy/ratings.dat": ratings, "toy/README": b"r"})
    _register(monkeypatch, archive, "toy/ratings.dat")
    cache = tmp_path / "cache"
    main = fetch_dataset("toy", cache)
    assert main == cache / "toy" / "toy" / "ratings.dat"
    assert main.read_bytes() == ratings
    assert (cache / "toy" / "toy" / "README").read_bytes() == b"r"

    archive.unlink()  # the second call must need neither the network nor the archive
    assert fetch_dataset("toy", cache) == main


def test_fetch_dataset_checks_the_given_checksum(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = _zip_with(tmp_path / "toy.zip", {"toy/ratings.dat": b"x"})
    _register(monkeypatch, archive, "toy/ratings.dat")
    with pytest.raises(DownloadError, match="checksum mismatch"):
        fetch_dataset("toy", tmp_path / "cache", sha256="0" * 64)
    assert not (tmp_path / "cache" / "toy").exists()


def test_fetch_dataset_missing_member_lists_what_is_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = _zip_with(tmp_path / "toy.zip", {"toy/other.csv": b"x"})
    _register(monkeypatch, archive, "toy/ratings.dat")
    with pytest.raises(DownloadError, match=r"toy/ratings\.dat.*toy/other\.csv"):
        fetch_dataset("toy", tmp_path / "cache")


def test_fetch_dataset_by_url_extracts_tar_gz_into_a_folder(tmp_path: Path) -> None:
    archive = tmp_path / "events.tar.gz"
    with tarfile.open(archive, "w:gz") as bundle:
        info = tarfile.TarInfo("events/clicks.csv")
        info.size = 4
        bundle.addfile(info, io.BytesIO(b"a,b\n"))
    folder = fetch_dataset(archive.as_uri(), tmp_path / "cache")
    assert folder == tmp_path / "cache" / "events"
    assert (folder / "events" / "clicks.csv").read_bytes() == b"a,b\n"


def test_fetch_dataset_by_url_decompresses_single_gz(tmp_path: Path) -> None:
    archive = tmp_path / "clicks.csv.gz"
    archive.write_bytes(gzip.compress(b"user,item\n"))
    main = fetch_dataset(archive.as_uri(), tmp_path / "cache")
    assert main == tmp_path / "cache" / "clicks.csv" / "clicks.csv"
    assert main.read_bytes() == b"user,item\n"
    assert fetch_dataset(archive.as_uri(), tmp_path / "cache") == main


def test_fetch_dataset_stores_plain_file_as_is(tmp_path: Path) -> None:
    plain = tmp_path / "Beauty.txt"
    plain.write_bytes(b"1 2\n1 3\n")
    main = fetch_dataset(plain.as_uri(), tmp_path / "cache")
    assert main == tmp_path / "cache" / "Beauty" / "Beauty.txt"
    assert main.read_bytes() == b"1 2\n1 3\n"


@pytest.mark.parametrize("evil", ["../evil.txt", "toy/../../evil.txt", "{tmp}/absolute-evil.txt"])
def test_zip_member_escaping_the_folder_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, evil: str
) -> None:
    evil = evil.format(tmp=tmp_path)
    archive = _zip_with(tmp_path / "toy.zip", {"toy/ratings.dat": b"ok", evil: b"pwned"})
    _register(monkeypatch, archive, "toy/ratings.dat")
    cache = tmp_path / "cache"
    with pytest.raises(DownloadError, match=re.escape(repr(evil))):
        fetch_dataset("toy", cache)
    assert not (cache / "evil.txt").exists()
    assert not (tmp_path / "evil.txt").exists()
    assert not (tmp_path / "absolute-evil.txt").exists()
    assert not (cache / "toy").exists() and not (cache / "toy.partial").exists()


def _tar_with(path: Path, info: tarfile.TarInfo, data: bytes = b"") -> Path:
    with tarfile.open(path, "w:gz") as bundle:
        info.size = len(data)
        bundle.addfile(info, io.BytesIO(data))
    return path


def test_tar_member_escaping_the_folder_is_refused(tmp_path: Path) -> None:
    archive = _tar_with(tmp_path / "bad.tar.gz", tarfile.TarInfo("../evil.txt"), b"pwned")
    with pytest.raises(DownloadError, match="outside"):
        fetch_dataset(archive.as_uri(), tmp_path / "cache")
    assert not (tmp_path / "cache" / "evil.txt").exists()
    assert not (tmp_path / "cache" / "bad").exists()


def test_tar_symlink_member_is_refused(tmp_path: Path) -> None:
    link = tarfile.TarInfo("bad/passwd")
    link.type = tarfile.SYMTYPE
    link.linkname = "/etc/passwd"
    archive = _tar_with(tmp_path / "bad.tar.gz", link)
    with pytest.raises(DownloadError, match="link"):
        fetch_dataset(archive.as_uri(), tmp_path / "cache")
    assert not (tmp_path / "cache" / "bad").exists()


def test_unknown_name_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="ml-10m") as error:
        fetch_dataset("ml-10m", tmp_path)
    for name in KNOWN_DATASETS:
        assert name in str(error.value)


def test_known_datasets_are_well_formed() -> None:
    assert {"ml-100k", "ml-1m", "ml-20m", "ml-25m", "ml-latest-small"} <= set(KNOWN_DATASETS)
    for key, source in KNOWN_DATASETS.items():
        assert source.name == key
        assert source.url.startswith("https://")
        checksums = [source.sha256, *(sha for _, sha in source.companions)]
        assert all(s is None or re.fullmatch(r"[0-9a-f]{64}", s) for s in checksums), key
        assert all(url.startswith("https://") for url, _ in source.companions), key
        assert source.format in {"movielens", "taobao", "retailrocket", "sasrec", "s3rec", "csv"}
        assert source.description
    zipped = [
        source
        for source in KNOWN_DATASETS.values()
        if dl._archive_suffix(dl._url_file_name(source.url)) == ".zip"
    ]
    assert len(zipped) >= 5  # the MovieLens archives at least
    assert all(source.archive_member is not None for source in zipped), zipped


# known dataset -> its byte-identical copy under ../shared/datasets (see PROVENANCE.md there)
SHARED_COPIES = {
    "sasrec-video": "amazon-games-sasrec/Video.txt",
    "s3rec-lastfm": "s3rec-sequences/LastFM.txt",
    "s3rec-beauty": "s3rec-sequences/Beauty.txt",
    "s3rec-sports": "s3rec-sequences/Sports_and_Outdoors.txt",
    "s3rec-yelp": "s3rec-sequences/Yelp.txt",
}


@pytest.mark.parametrize("name", sorted(SHARED_COPIES))
def test_known_checksums_are_those_of_the_upstream_files(name: str, shared_file) -> None:
    """The recorded sha256 of each verified dataset (and of its companions) is the sha256 of the
    byte-identical copy in ../shared/datasets."""
    source = KNOWN_DATASETS[name]
    folder = Path(SHARED_COPIES[name]).parent
    assert source.sha256 == _sha(shared_file(SHARED_COPIES[name]).read_bytes())
    for url, sha in source.companions:
        companion = shared_file(str(folder / dl._url_file_name(url)))
        assert sha == _sha(companion.read_bytes()), url


def test_trust_on_first_use_records_the_first_download_and_checks_every_later_one(
    source: Path, tmp_path: Path
) -> None:
    dest = tmp_path / "cache" / "payload.bin"
    record = tmp_path / "cache" / "payload.bin.sha256"
    download(source.as_uri(), dest, chunk_size=CHUNK)  # no known checksum: recorded
    assert record.read_text() == f"{_sha(PAYLOAD)}  payload.bin\n"  # sha256sum's format
    assert recorded_sha256(dest) == _sha(PAYLOAD)

    dest.write_bytes(b"corrupted")  # a damaged cached file is downloaded again, and checked
    assert download(source.as_uri(), dest, chunk_size=CHUNK).read_bytes() == PAYLOAD

    source.write_bytes(PAYLOAD[:-1] + b"!")  # the file changed upstream
    dest.unlink()
    with pytest.raises(DownloadError, match=r"recorded in .*payload\.bin\.sha256") as error:
        download(source.as_uri(), dest, chunk_size=CHUNK)
    assert _sha(PAYLOAD) in str(error.value) and _sha(source.read_bytes()) in str(error.value)
    assert not dest.exists() and not _part(dest).exists()

    record.unlink()  # deleting the record trusts the new file
    assert download(source.as_uri(), dest, chunk_size=CHUNK).read_bytes() == source.read_bytes()
    assert recorded_sha256(dest) == _sha(source.read_bytes())


def test_a_cached_file_without_a_record_is_recorded_on_reuse(tmp_path: Path) -> None:
    dest = tmp_path / "payload.bin"
    dest.write_bytes(b"cached bytes")  # e.g. downloaded by a version that kept no record
    missing = (tmp_path / "no-such-file.bin").as_uri()
    assert download(missing, dest) == dest
    assert recorded_sha256(dest) == _sha(b"cached bytes")
    dest.write_bytes(b"other bytes")  # now checked: not the recorded file, fetched again
    with pytest.raises(DownloadError, match=r"no-such-file\.bin"):
        download(missing, dest)


def test_a_record_without_a_checksum_is_refused(source: Path, tmp_path: Path) -> None:
    dest = tmp_path / "payload.bin"
    (tmp_path / "payload.bin.sha256").write_text("not a checksum\n")
    with pytest.raises(DownloadError, match=r"payload\.bin\.sha256 does not start with a sha256"):
        download(source.as_uri(), dest)
    assert not dest.exists()


def test_companions_are_checked_against_their_checksums(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sequences = tmp_path / "Beauty.txt"
    sequences.write_bytes(b"1 1 2\n")
    attributes = tmp_path / "Beauty_item2attributes.json"
    attributes.write_bytes(b'{"1": [3]}')
    wrong = ((attributes.as_uri(), _sha(b"something else")),)
    source = DatasetSource("toy", sequences.as_uri(), None, None, "s3rec", "test", wrong)
    monkeypatch.setitem(KNOWN_DATASETS, "toy", source)
    with pytest.raises(DownloadError, match=r"checksum mismatch.*Beauty_item2attributes\.json"):
        fetch_dataset("toy", tmp_path / "cache")


def test_default_cache_dir_follows_env_then_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INFLUREC_CACHE", str(tmp_path / "mine"))
    assert default_cache_dir() == tmp_path / "mine"
    monkeypatch.delenv("INFLUREC_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / ".cache" / "influrec"


def test_companion_files_are_stored_beside_the_main_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sequences = tmp_path / "Beauty.txt"
    sequences.write_bytes(b"1 1 2\n2 2 1\n")
    attributes = tmp_path / "Beauty_item2attributes.json"
    attributes.write_bytes(b'{"1": [3], "2": [4]}')
    source = DatasetSource(
        "toy-s3rec", sequences.as_uri(), None, None, "s3rec", "test", ((attributes.as_uri(), None),)
    )
    monkeypatch.setitem(KNOWN_DATASETS, "toy-s3rec", source)
    main = fetch_dataset("toy-s3rec", tmp_path / "cache")
    assert main == tmp_path / "cache" / "toy-s3rec" / "Beauty.txt"
    beside = main.parent / "Beauty_item2attributes.json"
    assert beside.read_bytes() == attributes.read_bytes()
    dataset = prepare(main, "s3rec")  # the loader finds the attributes beside the sequences
    assert dataset.items.column("attributes").to_pylist() == ["3", "4"]
