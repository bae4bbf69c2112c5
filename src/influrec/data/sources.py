"""The public datasets :func:`influrec.data.download.fetch_dataset` knows by name: where each
lives, its sha256 when verified, and which file inside it the reader wants."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DatasetSource:
    """Where a public dataset lives and which file inside it the reader wants."""

    name: str
    url: str
    sha256: str | None
    archive_member: str | None
    format: str
    description: str
    companions: tuple[tuple[str, str | None], ...] = ()
    """(URL, sha256 or None) of plain files stored beside the main one."""


_GROUPLENS = "https://files.grouplens.org/datasets/movielens"
_SASREC = "https://raw.githubusercontent.com/kang205/SASRec/master/data"
_S3REC = "https://raw.githubusercontent.com/aHuiWang/CIKM2020-S3Rec/master/data"
# The sha256 of the SASRec and S3-Rec files below were computed from the files at those URLs
# (the git blobs of the repositories' master branches); they equal the byte-identical copies
# in ../shared/datasets (tests/data/test_download.py checks against those when present). The
# MovieLens archives and SASRec's ml-1m.txt could not be read: trust on first use for them.

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
            "sasrec-video", f"{_SASREC}/Video.txt",
            "b7376fe24430743f411dc7f567285657b2adb3f74361cc7ba0aee94f3024b651", None, "sasrec",
            "Amazon 'Video' reviews as preprocessed by SASRec: one 'user item' pair per line.",
        ),
        DatasetSource(
            "s3rec-lastfm", f"{_S3REC}/LastFM.txt",
            "9ded486adb5b0fe9dc761950afa0a9a05e93ff018992e0c52bf11afec529f802", None, "s3rec",
            "LastFM as preprocessed by S3-Rec (Zhou et al., CIKM 2020): one user per line, "
            "'user item item ...' in time order; with the artists' tags as attributes.",
            ((f"{_S3REC}/LastFM_item2attributes.json",
              "a4ccd678dc9ff6d43fe5073f491db5c9b02eb98dfa4f8c0382913a784be217ef"),),
        ),
        DatasetSource(
            "s3rec-beauty", f"{_S3REC}/Beauty.txt",
            "226cce9c3105299ca0db9615d7d3fb32b3175e90da43100ae352599f0f0107b8", None, "s3rec",
            "Amazon Beauty as preprocessed by S3-Rec: 22,363 users, 12,101 items, one user per "
            "line in time order; with the items' categories and brand as attributes.",
            ((f"{_S3REC}/Beauty_item2attributes.json",
              "129e40f67486f6877eff0f5318cfa8530ee8ac23d8b0d1de04e1bb7a2ba0b2d4"),),
        ),
        DatasetSource(
            "s3rec-sports", f"{_S3REC}/Sports_and_Outdoors.txt",
            "2a095e0648872beb9982408958290f5d655db5be2911c3756b5446de9f0b8de2", None, "s3rec",
            "Amazon Sports and Outdoors as preprocessed by S3-Rec: 35,598 users, 18,357 items; "
            "with the items' categories and brand as attributes.",
            ((f"{_S3REC}/Sports_and_Outdoors_item2attributes.json",
              "7fb10733ac4f1811384a52144cdefa7fcc7536fa80a7232c5da9bd789155c34b"),),
        ),
        DatasetSource(
            "s3rec-yelp", f"{_S3REC}/Yelp.txt",
            "724b219106b81dd2349027da997334ddb6da9fe2f152ad6e0d97a93170f7caed", None, "s3rec",
            "Yelp as preprocessed by S3-Rec: 30,431 users, 20,033 businesses; with the "
            "businesses' categories as attributes.",
            ((f"{_S3REC}/Yelp_item2attributes.json",
              "f25acd5e1e680e0b22fd4e3f4fb6be4b2a7461e9222610616e3e1ee6702dd58d"),),
        ),
    )
}  # fmt: skip
"""Datasets ``fetch_dataset`` knows by name; a ``None`` checksum means trust on first use."""
