"""The canonical event table every reader produces and every later stage consumes.

One row is one logged behaviour::

    user_id    string     who acted
    item_id    string     on what
    behavior   string     how (view, click, cart, fav, buy, rate, ...), a small vocabulary
    timestamp  int64      when, seconds since the Unix epoch (UTC); for timestamp-free sequence
                          files it is the event's ordinal within its user and `stats.json`
                          says ``"time_kind": "order"``
    value      float64    optional magnitude (rating, price, dwell time); null when absent
    row        int64      the event's position in the source (its line number for text files),
                          which keeps ties in file order and lets ground truth refer to rows

A prepared dataset folder adds integer codes (``user_idx``, ``item_idx``, ``behavior_idx``) whose
index 0 is reserved for padding, so the first real id has index 1.
"""

from __future__ import annotations

import pyarrow as pa

PAD_INDEX = 0
PAD_TOKEN = "[PAD]"
# |value| bound of an event (rating, price, dwell time...). The model reads values as float32
# and its layer norms square them, so a value near 1e19 already turns every score into NaN
# (float32's max is 3.4e38); 1e15 leaves headroom and still holds any price or duration in ms.
MAX_ABS_VALUE = 1e15

RAW_SCHEMA = pa.schema(
    [
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("item_id", pa.string(), nullable=False),
        pa.field("behavior", pa.string(), nullable=False),
        pa.field("timestamp", pa.int64(), nullable=False),
        pa.field("value", pa.float64(), nullable=True),
        pa.field("row", pa.int64(), nullable=False),
    ]
)
"""Columns of the canonical table before indexing (what the synthetic generator emits)."""

EVENTS_SCHEMA = pa.schema(
    [
        pa.field("user_id", pa.dictionary(pa.int32(), pa.string()), nullable=False),
        pa.field("item_id", pa.dictionary(pa.int32(), pa.string()), nullable=False),
        pa.field("behavior", pa.dictionary(pa.int16(), pa.string()), nullable=False),
        pa.field("timestamp", pa.int64(), nullable=False),
        pa.field("value", pa.float64(), nullable=True),
        pa.field("row", pa.int64(), nullable=False),
        pa.field("user_idx", pa.int32(), nullable=False),
        pa.field("item_idx", pa.int32(), nullable=False),
        pa.field("behavior_idx", pa.int16(), nullable=False),
    ]
)
"""Columns of ``events.parquet`` in a prepared dataset folder, sorted by user then time.

Behaviour codes are int16 (up to 32767 behaviour types); folders written before that used int8
and still load: readers widen ``behavior_idx`` with ``astype``."""

EVENTS_FILE = "events.parquet"
USERS_FILE = "users.parquet"
ITEMS_FILE = "items.parquet"
BEHAVIORS_FILE = "behaviors.json"
STATS_FILE = "stats.json"
GROUND_TRUTH_FILE = "ground_truth.parquet"
