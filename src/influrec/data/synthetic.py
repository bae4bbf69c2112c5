"""Seeded multi-behaviour e-commerce sequences with planted, recorded cause -> effect links.

This is the project's built-in default dataset. Every random draw comes from
``numpy.random.SeedSequence(config.seed)`` split into three independent streams (successor
graph, item attributes, user sequences), so one config always gives byte-identical tables and
:func:`successor_graph` can rebuild the graph without generating any events.

Generative process (``W = cause_window``, ``K = n_successors``, ``M = n_items``):

1. **Successor graph.** Each item ``a`` gets ``K`` distinct successor items, drawn uniformly
   from the other ``M - 1`` items. This sparse item -> item graph is the planted influence.
2. **Items.** Popularity is Zipf-like: the items are given the ranks ``1..M`` in random order and
   item weight is ``rank ** -zipf_exponent``. Each item belongs to one of ``n_clusters`` taste
   clusters (a random balanced assignment; the item table names it as the item's ``category``,
   ``c1 .. cC``) and has a fixed price ``exp(N(log 20, 1))`` rounded to cents (at least 0.01).
3. **Users.** User ``u`` gets a taste cluster (uniform), a sequence length
   ``min_events + Geometric(p) - 1`` with ``p = 1 / (mean_events - min_events + 1)`` (so the
   mean length is ``mean_events``), and a start time uniform in
   ``[start_timestamp, start_timestamp + start_spread_s]``.
4. **Events.** For step ``t = 0, 1, ...`` every user whose sequence is still running draws its
   event ``t`` (vectorised over users):

   a. *Triggers.* Each of the user's previous ``W`` events (positions ``t-W .. t-1``) fires
      independently with probability ``trigger_<behavior>`` of that earlier event's behaviour
      (defaults: buy 0.20 > cart 0.10 > fav 0.06 > view 0.02).
   b. *Caused event.* If at least one fired, one fired event is chosen uniformly at random as
      THE cause; the new item is a uniformly random one of the cause item's ``K`` successors and
      the time gap is ``1 + floor(Exp(caused_gap_mean_s))`` seconds after the previous event.
      The pair (new event, cause) is written to the ground truth.
   c. *Background event.* Otherwise, with probability ``taste_weight`` the item is drawn from
      the Zipf popularity restricted to the user's cluster, else from the global Zipf
      popularity; the gap is ``1 + floor(Exp(background_gap_mean_s))`` seconds.
   d. *Behaviour.* Caused and background events alike draw their behaviour from
      ``(view, cart, fav, buy)`` with probabilities ``(1 - p_cart - p_fav - p_buy, p_cart,
      p_fav, p_buy)``; so the cause of an event is never visible from its own behaviour.

   Caused events can themselves trigger later events (chains), and one event may cause several
   later events while it stays inside the window. An event's item may repeat an earlier item.

Output: ``events`` follows :data:`influrec.data.schema.RAW_SCHEMA`, ordered by user number
(``u1, u2, ..., uN``) then time, with timestamps strictly increasing within a user and ``row``
running ``1..N`` in table order. ``value`` is the item's price for ``cart`` and ``buy`` events
and null for ``view`` and ``fav``. ``ground_truth`` has one row per caused event
(:data:`GROUND_TRUTH_SCHEMA`); events absent from it are background events.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from influrec.data.schema import RAW_SCHEMA
from influrec.errors import InputError

BEHAVIORS = ("view", "cart", "fav", "buy")
"""Behaviour vocabulary; an event's behaviour code is its index here."""

GROUND_TRUTH_SCHEMA = pa.schema(
    [
        pa.field("row", pa.int64(), nullable=False),
        pa.field("cause_row", pa.int64(), nullable=False),
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("item_id", pa.string(), nullable=False),
        pa.field("cause_item_id", pa.string(), nullable=False),
        pa.field("cause_behavior", pa.string(), nullable=False),
    ]
)
"""One row per caused event: its ``row`` and the ``row`` of the earlier event that caused it."""

SUCCESSOR_SCHEMA = pa.schema(
    [
        pa.field("item_id", pa.string(), nullable=False),
        pa.field("successor_item_id", pa.string(), nullable=False),
    ]
)
"""The planted item -> item graph: ``n_successors`` rows per item."""

_PRICE_MEDIAN = 20.0


@dataclass(frozen=True)
class SynthConfig:
    """Knobs of the synthetic generator; see the module docstring for what each one does.

    Raises:
        InputError: at construction, naming the field, when a value is out of range.
    """

    n_users: int = 2000
    n_items: int = 1000
    mean_events: float = 50.0
    min_events: int = 5
    seed: int = 0
    n_successors: int = 3
    cause_window: int = 5
    trigger_view: float = 0.02
    trigger_cart: float = 0.10
    trigger_fav: float = 0.06
    trigger_buy: float = 0.20
    p_cart: float = 0.10
    p_fav: float = 0.07
    p_buy: float = 0.05
    zipf_exponent: float = 0.8
    n_clusters: int = 20
    taste_weight: float = 0.9
    start_timestamp: int = 1_704_067_200  # 2024-01-01T00:00:00Z
    start_spread_s: int = 7 * 86_400
    background_gap_mean_s: float = 7_200.0
    caused_gap_mean_s: float = 120.0

    def __post_init__(self) -> None:
        _validate(self)


@dataclass(frozen=True)
class SyntheticLog:
    """A generated log: the events, which events caused which, each item's category (its taste
    cluster) and the config that made them."""

    events: pa.Table
    ground_truth: pa.Table
    config: SynthConfig
    items: pa.Table  # item_id, category

    @property
    def successors(self) -> pa.Table:
        """The planted successor graph (:data:`SUCCESSOR_SCHEMA`) behind ``ground_truth``."""
        return successor_graph(self.config)


def _validate(c: SynthConfig) -> None:
    checks: list[tuple[bool, str]] = [
        (c.n_users >= 1, f"n_users must be >= 1, got {c.n_users}"),
        (c.n_items >= 2, f"n_items must be >= 2, got {c.n_items}"),
        (c.min_events >= 1, f"min_events must be >= 1, got {c.min_events}"),
        (
            c.mean_events >= c.min_events,
            f"mean_events ({c.mean_events}) must be >= min_events ({c.min_events})",
        ),
        (c.seed >= 0, f"seed must be >= 0, got {c.seed}"),
        (
            1 <= c.n_successors <= c.n_items - 1,
            f"n_successors must be in [1, n_items - 1 = {c.n_items - 1}], got {c.n_successors}",
        ),
        (c.cause_window >= 1, f"cause_window must be >= 1, got {c.cause_window}"),
        (
            1 <= c.n_clusters <= c.n_items,
            f"n_clusters must be in [1, n_items = {c.n_items}], got {c.n_clusters}",
        ),
        (c.zipf_exponent >= 0, f"zipf_exponent must be >= 0, got {c.zipf_exponent}"),
        (c.start_spread_s >= 0, f"start_spread_s must be >= 0, got {c.start_spread_s}"),
        (c.background_gap_mean_s > 0, "background_gap_mean_s must be > 0"),
        (c.caused_gap_mean_s > 0, "caused_gap_mean_s must be > 0"),
        (
            c.p_cart + c.p_fav + c.p_buy <= 1.0,
            f"p_cart + p_fav + p_buy must be <= 1, got {c.p_cart + c.p_fav + c.p_buy}",
        ),
    ]
    for name in (
        "trigger_view", "trigger_cart", "trigger_fav", "trigger_buy",
        "p_cart", "p_fav", "p_buy", "taste_weight",
    ):  # fmt: skip
        value = getattr(c, name)
        checks.append((0.0 <= value <= 1.0, f"{name} must be a probability in [0, 1], got {value}"))
    for ok, message in checks:
        if not ok:
            raise InputError(f"synthetic data: {message}")


def _streams(seed: int) -> list[np.random.Generator]:
    """Independent generators for the successor graph, the items and the user sequences."""
    return [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3)]


def _draw_successors(config: SynthConfig) -> np.ndarray:
    """(M, K) int64 successor item codes: K distinct items per row, never the row's own item.

    Floyd's algorithm, vectorised over items, samples K distinct offsets from 0..M-2.
    """
    rng = _streams(config.seed)[0]
    n, k = config.n_items, config.n_successors
    offsets = np.empty((n, k), dtype=np.int64)
    for col, j in enumerate(range(n - 1 - k, n - 1)):
        pick = rng.integers(0, j + 1, size=n)
        taken = (offsets[:, :col] == pick[:, None]).any(axis=1)
        offsets[:, col] = np.where(taken, j, pick)
    return (np.arange(n)[:, None] + 1 + offsets) % n


def successor_graph(config: SynthConfig) -> pa.Table:
    """The planted item -> item graph of ``generate(config)``, as :data:`SUCCESSOR_SCHEMA`."""
    successors = _draw_successors(config)
    names = _names("i", config.n_items)
    sources = np.repeat(np.arange(config.n_items), config.n_successors)
    return pa.Table.from_arrays(
        [names.take(sources), names.take(successors.ravel())], schema=SUCCESSOR_SCHEMA
    )


@dataclass(frozen=True)
class _World:
    """Fixed item-side quantities the per-step sampler needs."""

    successors: np.ndarray  # (M, K) item codes
    item_cluster: np.ndarray  # (M,) taste cluster of each item code
    pop_cdf: np.ndarray  # (M,) cumulative global popularity, by item code
    cluster_items: np.ndarray  # (M,) item codes sorted by cluster
    cluster_cdf: np.ndarray  # (M,) cluster + cumulative popularity within the cluster
    cluster_end: np.ndarray  # (C,) one past the last position of each cluster in cluster_items
    prices: np.ndarray  # (M,) float64
    trigger_probs: np.ndarray  # (4,) by behaviour code
    behavior_cdf: np.ndarray  # (4,) cumulative behaviour mix


def _build_world(config: SynthConfig, rng: np.random.Generator) -> _World:
    n, n_clusters = config.n_items, config.n_clusters
    ranks = rng.permutation(n) + 1
    pop = ranks.astype(np.float64) ** -config.zipf_exponent
    pop /= pop.sum()
    item_cluster = rng.permutation(n) % n_clusters
    order = np.argsort(item_cluster, kind="stable")
    sorted_clusters = item_cluster[order]
    sorted_pop = pop[order]
    cum = np.cumsum(sorted_pop)
    cluster_start = np.searchsorted(sorted_clusters, np.arange(n_clusters), side="left")
    cluster_end = np.searchsorted(sorted_clusters, np.arange(n_clusters), side="right")
    before = (cum - sorted_pop)[cluster_start]
    total = cum[cluster_end - 1] - before
    within = (cum - before[sorted_clusters]) / total[sorted_clusters]
    cluster_cdf = sorted_clusters + within
    cluster_cdf[cluster_end - 1] = np.arange(n_clusters) + 1.0
    prices = np.maximum(np.round(_PRICE_MEDIAN * np.exp(rng.normal(0.0, 1.0, n)), 2), 0.01)
    mix = [1.0 - config.p_cart - config.p_fav - config.p_buy, config.p_cart, config.p_fav]
    return _World(
        successors=_draw_successors(config),
        item_cluster=item_cluster,
        pop_cdf=np.cumsum(pop),
        cluster_items=order,
        cluster_cdf=cluster_cdf,
        cluster_end=cluster_end,
        prices=prices,
        trigger_probs=np.array(
            [config.trigger_view, config.trigger_cart, config.trigger_fav, config.trigger_buy]
        ),
        behavior_cdf=np.cumsum([*mix, config.p_buy]),
    )


@dataclass(frozen=True)
class _Sequences:
    """Per-user event arrays, (U, T) with T the longest sequence; cells past a length unused."""

    lengths: np.ndarray  # (U,) int64
    clusters: np.ndarray  # (U,) taste cluster of each user
    starts: np.ndarray  # (U,) int64 epoch seconds before the first event
    items: np.ndarray  # (U, T) int64 item codes
    behaviors: np.ndarray  # (U, T) int64 behaviour codes
    timestamps: np.ndarray  # (U, T) int64 epoch seconds
    cause_pos: np.ndarray  # (U, T) int64 position of the causing event, -1 for background


def _pick_causes(
    window: np.ndarray, trigger_probs: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """(m, w) behaviour codes of the last w events -> (m,) offset of the chosen cause, or -1."""
    fired = rng.random(window.shape) < trigger_probs[window]
    if window.shape[1] == 0:
        return np.full(window.shape[0], -1, dtype=np.int64)
    score = np.where(fired, rng.random(window.shape), -1.0)
    return np.where(fired.any(axis=1), score.argmax(axis=1), -1)


def _background_items(
    world: _World, clusters: np.ndarray, taste_weight: float, rng: np.random.Generator
) -> np.ndarray:
    """(m,) item codes from the user's taste cluster or the global popularity."""
    u = rng.random(clusters.shape[0])
    from_taste = rng.random(clusters.shape[0]) < taste_weight
    n = world.pop_cdf.shape[0]
    global_items = np.minimum(np.searchsorted(world.pop_cdf, u, side="right"), n - 1)
    pos = np.searchsorted(world.cluster_cdf, clusters + u, side="right")
    taste_items = world.cluster_items[np.minimum(pos, world.cluster_end[clusters] - 1)]
    items: np.ndarray = np.where(from_taste, taste_items, global_items)
    return items


def _step(
    t: int, seq: _Sequences, world: _World, config: SynthConfig, rng: np.random.Generator
) -> None:
    """Draw event ``t`` of every user whose sequence is at least ``t + 1`` long, in place."""
    users = np.flatnonzero(seq.lengths > t)
    m = users.shape[0]
    lo = max(0, t - config.cause_window)
    offset = _pick_causes(seq.behaviors[users, lo:t], world.trigger_probs, rng)
    caused = offset >= 0
    cause_pos = np.where(caused, lo + offset, -1)
    cause_items = seq.items[users, np.maximum(cause_pos, 0)]
    slot = rng.integers(0, config.n_successors, size=m)
    background = _background_items(world, seq.clusters[users], config.taste_weight, rng)
    behaviors = np.searchsorted(world.behavior_cdf, rng.random(m), side="right")
    gap_mean = np.where(caused, config.caused_gap_mean_s, config.background_gap_mean_s)
    gaps = 1 + np.floor(rng.standard_exponential(m) * gap_mean).astype(np.int64)
    seq.items[users, t] = np.where(caused, world.successors[cause_items, slot], background)
    seq.behaviors[users, t] = np.minimum(behaviors, len(BEHAVIORS) - 1)
    previous = seq.timestamps[users, t - 1] if t > 0 else seq.starts[users]
    seq.timestamps[users, t] = previous + gaps
    seq.cause_pos[users, t] = cause_pos


def _init_sequences(config: SynthConfig, rng: np.random.Generator) -> _Sequences:
    p = 1.0 / (config.mean_events - config.min_events + 1.0)
    lengths = config.min_events + rng.geometric(p, size=config.n_users).astype(np.int64) - 1
    clusters = rng.integers(0, config.n_clusters, size=config.n_users)
    starts = config.start_timestamp + rng.integers(0, config.start_spread_s + 1, config.n_users)
    shape = (config.n_users, int(lengths.max()))
    return _Sequences(
        lengths=lengths,
        clusters=clusters,
        starts=starts.astype(np.int64),
        items=np.zeros(shape, dtype=np.int64),
        behaviors=np.zeros(shape, dtype=np.int64),
        timestamps=np.zeros(shape, dtype=np.int64),
        cause_pos=np.full(shape, -1, dtype=np.int64),
    )


def _names(prefix: str, n: int) -> pa.Array:
    """``prefix1 .. prefixN`` as a string array indexed by code 0..N-1."""
    return pa.array([f"{prefix}{i}" for i in range(1, n + 1)], type=pa.string())


def _to_tables(seq: _Sequences, world: _World, config: SynthConfig) -> tuple[pa.Table, pa.Table]:
    """Flatten (U, T) arrays in user-then-time order into the events and ground-truth tables."""
    mask = np.arange(seq.items.shape[1]) < seq.lengths[:, None]
    users = np.nonzero(mask)[0]  # row-major: by user, then by position
    items, behaviors = seq.items[mask], seq.behaviors[mask]
    rows = np.arange(1, users.shape[0] + 1, dtype=np.int64)
    user_names, item_names = _names("u", config.n_users), _names("i", config.n_items)
    behavior_names = pa.array(BEHAVIORS, type=pa.string())
    has_value = (behaviors == BEHAVIORS.index("cart")) | (behaviors == BEHAVIORS.index("buy"))
    events = pa.Table.from_arrays(
        [
            user_names.take(users),
            item_names.take(items),
            behavior_names.take(behaviors),
            pa.array(seq.timestamps[mask], type=pa.int64()),
            pa.array(world.prices[items], type=pa.float64(), mask=~has_value),
            pa.array(rows, type=pa.int64()),
        ],
        schema=RAW_SCHEMA,
    )
    first_row = np.concatenate([[0], np.cumsum(seq.lengths)[:-1]])  # row - 1 of position 0
    cause_pos = seq.cause_pos[mask]
    caused = np.flatnonzero(cause_pos >= 0)
    cause_index = first_row[users[caused]] + cause_pos[caused]  # 0-based index of the cause
    ground_truth = pa.Table.from_arrays(
        [
            pa.array(rows[caused], type=pa.int64()),
            pa.array(rows[cause_index], type=pa.int64()),
            user_names.take(users[caused]),
            item_names.take(items[caused]),
            item_names.take(items[cause_index]),
            behavior_names.take(behaviors[cause_index]),
        ],
        schema=GROUND_TRUTH_SCHEMA,
    )
    return events, ground_truth


def generate(config: SynthConfig) -> SyntheticLog:
    """Generate the synthetic log described in the module docstring; deterministic in ``config``.

    About 100k events (the defaults) take well under a few seconds: the loop runs over time
    steps, each step vectorised over all users still active.
    """
    _, item_rng, user_rng = _streams(config.seed)
    world = _build_world(config, item_rng)
    seq = _init_sequences(config, user_rng)
    for t in range(seq.items.shape[1]):
        _step(t, seq, world, config, user_rng)
    events, ground_truth = _to_tables(seq, world, config)
    items = pa.table(
        {
            "item_id": _names("i", config.n_items),
            "category": _names("c", config.n_clusters).take(world.item_cluster),
        }
    )
    return SyntheticLog(events=events, ground_truth=ground_truth, config=config, items=items)
