"""Ingestion throughput benchmark: fn_track_events vs raw COPY, a bare one-statement INSERT and
the seed's per-event writes.

    .venv/bin/python -m bench.ingest [--events N] [--database-url URL] [--repeat R] [--only ...]

On demand only, never part of the test suite. Without --database-url it starts a private
PostgreSQL cluster with tests.engines.start_postgres -- crash-safe server defaults (fsync,
synchronous_commit, full_page_writes on), as in production; --fast turns them off like the
tests do -- migrates it with pywrap.migrate.migrate and
creates an app with analytics.fn_create_app. See bench/README.md for what each variant measures.

Method, in short:
* All events are generated once, up front, from a fixed seed; every variant sends the SAME
  events in the SAME batches of 500, into the same table, which is truncated (together with
  analytics_internal.tb_event_key and the bench_seed tables) before each timed run.
* Every variant runs in worker processes (1 or 2), one connection each, so the parent's GIL
  plays no part and two workers really run in parallel. Each worker first sends a few warm-up
  batches of different events on its own connection (plan caches, catalog caches, psycopg's
  prepared statements); the parent then truncates, checkpoints, and starts all workers at once.
  Throughput = events sent / (last worker's end - first worker's start).
* All client-side serialization happens before the clock starts: a fn_track_events batch is
  pre-serialized to JSON bytes (json.dumps, as psycopg's Json would) and passed as
  ``Json(payload, dumps=<identity>)`` through a ``%t`` placeholder, i.e. a text-format ``json``
  parameter -- exactly what the product's Python layer sends for ``Json(events)``, minus the
  json.dumps call. COPY batches are pre-rendered COPY text; the seed variant's parameters are
  pre-built tuples. The timed part is protocol + server work (+ psycopg's per-parameter
  adaptation, which the seed's executemany pays per event).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import random
import resource
import statistics
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Json

BATCH_SIZE = 500
# Per connection, before every timed run: more than psycopg's prepare_threshold (5) and than the
# 5 custom plans PL/pgSQL tries before it may switch the function's query to a generic plan.
WARMUP_BATCHES = 6
USER_POOL = 20_000
NO_EVENT_ID_SHARE = 0.05
RETRY_EVERY = 10  # every 10th batch of the retry variant re-sends an earlier batch (10 %)
SEED = 20260131
WORKER_TIMEOUT = 3600.0

TARGET_COPY_RATIO = 0.80
TARGET_SEED_RATIO = 4.0


# --------------------------------------------------------------------------------------
# realistic events


EVENT_TYPES: list[tuple[str, int]] = [
    ("page_view", 38),
    ("button_click", 18),
    ("screen_time", 10),
    ("app_open", 8),
    ("session_start", 6),
    ("search", 6),
    ("add_to_cart", 5),
    ("error", 3),
    ("purchase", 2),
    ("share", 2),
    ("push_open", 2),
]
PATHS = ["/home", "/feed", "/search", "/cart", "/checkout", "/settings", "/notifications",
         "/product/{}", "/profile/{}", "/category/{}", "/article/{}"]
LABELS = ["Buy now", "Add to cart", "Share", "Like", "Follow", "Sign in", "Continue", "Close",
          "Open menu", "Play", "Retry", "Search"]
DEVICES: list[tuple[str, list[str], list[str]]] = [
    ("iOS", ["16.7", "17.4", "17.5.1", "18.0", "18.1"],
     ["iPhone12,1", "iPhone13,2", "iPhone14,5", "iPhone15,2", "iPhone16,1", "iPad13,4"]),
    ("Android", ["12", "13", "14", "15"],
     ["SM-S911B", "SM-A546B", "Pixel 7", "Pixel 8 Pro", "M2101K6G", "CPH2451", "moto g54"]),
]
LOCALES = ["en-US", "en-GB", "de-DE", "fr-FR", "es-ES", "pt-BR", "ja-JP", "it-IT", "nl-NL", "pl-PL"]
APP_VERSIONS = ["3.8.2", "3.9.0", "3.9.1", "4.0.0", "4.0.1"]


def _uuid4(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _metadata(rng: random.Random, event_type: str) -> dict[str, Any]:
    pool: list[tuple[str, Callable[[], Any]]] = [
        ("source", lambda: rng.choice(["organic", "push", "deeplink", "email", "ad"])),
        ("ab_group", lambda: rng.choice(["control", "variant_a", "variant_b"])),
        ("network", lambda: rng.choice(["wifi", "cellular"])),
        ("battery", lambda: rng.randint(3, 100)),
        ("item_id", lambda: f"sku-{rng.randint(1, 50_000)}"),
        ("price", lambda: round(rng.uniform(0.99, 199.0), 2)),
        ("position", lambda: rng.randint(0, 40)),
        ("is_logged_in", lambda: rng.random() < 0.7),
        ("referrer", lambda: rng.choice(["home", "search", "feed", "notification", "external"])),
        ("load_ms", lambda: rng.randint(40, 4000)),
    ]
    k = rng.randint(3, 5)
    md = {name: make() for name, make in rng.sample(pool, k)}
    if event_type == "search":
        md["query_len"] = rng.randint(1, 40)
    return md


@dataclass
class Batch:
    events: list[dict[str, Any]]
    sent_at: datetime  # batch-level sentAt, by the (here: exact) device clock


class EventFactory:
    """Deterministic generator of realistic SDK events (skewed users, sessions, devices)."""

    def __init__(self, seed: int, now: datetime):
        self.rng = random.Random(seed)
        self.now = now
        rng = self.rng
        self.users = [_uuid4(rng) for _ in range(USER_POOL)]
        # Zipf-like skew: a few heavy users send most events.
        weights = [1.0 / (rank + 1) ** 1.05 for rank in range(USER_POOL)]
        self.cum_weights = list(_accumulate(weights))
        self.devices: dict[int, dict[str, str]] = {}
        self.sessions: dict[int, list[str]] = {}
        self.types = [t for t, _ in EVENT_TYPES]
        self.type_cum = list(_accumulate(w for _, w in EVENT_TYPES))

    def _device(self, u: int) -> dict[str, str]:
        dev = self.devices.get(u)
        if dev is None:
            rng = self.rng
            os_name, versions, models = rng.choice(DEVICES)
            dev = {
                "os": os_name,
                "os_version": rng.choice(versions),
                "model": rng.choice(models),
                "app_version": rng.choice(APP_VERSIONS),
                "locale": rng.choice(LOCALES),
            }
            self.devices[u] = dev
        return dev

    def _session(self, u: int) -> str:
        sess = self.sessions.setdefault(u, [])
        if not sess or self.rng.random() < 0.02:
            sess.append(_uuid4(self.rng))
        return sess[-1]

    def event(self, sent_at: datetime) -> dict[str, Any]:
        rng = self.rng
        u = rng.choices(range(USER_POOL), cum_weights=self.cum_weights)[0]
        etype = rng.choices(self.types, cum_weights=self.type_cum)[0]
        ts = sent_at - timedelta(seconds=rng.uniform(0.0, 3599.0))
        ev: dict[str, Any] = {}
        if rng.random() >= NO_EVENT_ID_SHARE:
            ev["event_id"] = _uuid4(rng)
        ev["type"] = etype
        ev["timestamp"] = ts.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        ev["user_id"] = self.users[u]
        ev["session_id"] = self._session(u)
        if etype == "page_view":
            ev["path"] = rng.choice(PATHS).format(rng.randint(1, 5000))
        elif etype == "button_click":
            ev["label"] = rng.choice(LABELS)
        elif etype == "screen_time":
            ev["duration"] = rng.randint(300, 600_000)
        ev["device"] = dict(self._device(u))
        ev["metadata"] = _metadata(rng, etype)
        return ev

    def batches(self, n_events: int) -> list[Batch]:
        out: list[Batch] = []
        left = n_events
        while left > 0:
            size = min(BATCH_SIZE, left)
            sent_at = self.now - timedelta(seconds=self.rng.uniform(0.0, 5.0))
            out.append(Batch([self.event(sent_at) for _ in range(size)], sent_at))
            left -= size
        return out


def _accumulate(values):
    total = 0.0
    for v in values:
        total += v
        yield total


def with_retries(batches: list[Batch], rng: random.Random) -> tuple[list[Batch], int]:
    """The same number of batches, every RETRY_EVERY-th a re-send of a recent earlier batch
    (same events and event ids, later sentAt) -- an SDK retrying after a lost response.
    Returns (sequence, number of retried batches)."""
    seq: list[Batch] = []
    originals: list[Batch] = []
    fresh = iter(batches)
    retries = 0
    for i in range(len(batches)):
        if i % RETRY_EVERY == RETRY_EVERY - 1 and originals:
            orig = rng.choice(originals[-20:])
            seq.append(Batch(orig.events, orig.sent_at + timedelta(seconds=30)))
            retries += 1
        else:
            b = next(fresh)
            originals.append(b)
            seq.append(b)
    return seq, retries


# --------------------------------------------------------------------------------------
# payloads (built before the clock starts)


def _identity(payload: bytes) -> bytes:
    """Json(..., dumps=_identity): the payload is already serialized JSON."""
    return payload


def track_payloads(batches: Sequence[Batch]) -> list[tuple[bytes, datetime]]:
    # json.dumps with its defaults: byte-for-byte what psycopg's Json(events) would send.
    return [(json.dumps(b.events).encode(), b.sent_at) for b in batches]


COPY_COLUMNS = ("id, client_event_id, fk_app, event_type, \"timestamp\", received_at, timestamp_clamped, "
                "user_id, anonymous_id, session_id, path, label, duration_ms, device, metadata")
COPY_SQL = f"COPY analytics.tb_event ({COPY_COLUMNS}) FROM STDIN"
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_field(v: Any) -> str:
    if v is None:
        return "\\N"
    return str(v).translate(_COPY_ESCAPES)


def copy_payloads(batches: Sequence[Batch], pk_app: int, rng: random.Random) -> list[bytes]:
    """COPY text rows with the columns fn_track_events fills (no dedup, no validation; the
    event time is the client's, not skew-corrected; events without an id get a client uuid)."""
    out = []
    for b in batches:
        received = b.sent_at.isoformat()
        lines = []
        for e in b.events:
            eid = e.get("event_id")
            row = (
                eid or _uuid4(rng), eid, pk_app, e["type"], e["timestamp"], received, "f",
                e.get("user_id"), e.get("anonymous_id"), e.get("session_id"), e.get("path"),
                e.get("label"), e.get("duration"), json.dumps(e["device"]), json.dumps(e["metadata"]),
            )
            lines.append("\t".join(_copy_field(v) for v in row))
        out.append(("\n".join(lines) + "\n").encode())
    return out


SEED_DDL = """
DROP SCHEMA IF EXISTS bench_seed CASCADE;
CREATE SCHEMA bench_seed;
COMMENT ON SCHEMA bench_seed IS 'Scratch schema of bench/ingest.py: the seed''s table shapes.';
CREATE TABLE bench_seed.tb_event (
    pk          SERIAL PRIMARY KEY,
    id          uuid DEFAULT gen_random_uuid(),
    fk_app      int,
    event_type  text,
    user_id     text,
    session_id  text,
    device      jsonb,
    metadata    jsonb,
    "timestamp" timestamptz DEFAULT now()
);
CREATE TABLE bench_seed.tb_metric (
    pk          SERIAL PRIMARY KEY,
    fk_app      int,
    metric_type text,
    value       bigint,
    dimension   text,
    date        date,
    UNIQUE (fk_app, metric_type, dimension, date)
);
"""
SEED_EVENT_SQL = (
    "INSERT INTO bench_seed.tb_event (fk_app, event_type, user_id, session_id, device, metadata, \"timestamp\")"
    " VALUES (%s, %s, %s, %s, %s::jsonb, %s::jsonb, %s::timestamptz)"
)
SEED_METRIC_SQL = (
    "INSERT INTO bench_seed.tb_metric (fk_app, metric_type, value, dimension, date)"
    " VALUES (%s, 'event_count', 1, %s, %s::date)"
    " ON CONFLICT (fk_app, metric_type, dimension, date)"
    " DO UPDATE SET value = bench_seed.tb_metric.value + 1"
)


def seed_payloads(batches: Sequence[Batch], pk_app: int) -> list[tuple[list[tuple], list[tuple]]]:
    """Per batch: one INSERT row per event and ONE counter upsert per event. The seed table
    has no path column, so path goes into metadata. Upserts are sorted by key within a batch
    (a kindness to the seed: without it two connections deadlock on the hot counters)."""
    out = []
    for b in batches:
        ev_rows, metric_rows = [], []
        for e in b.events:
            md = e["metadata"] if "path" not in e else {**e["metadata"], "path": e["path"]}
            ev_rows.append((pk_app, e["type"], e.get("user_id") or e.get("anonymous_id"), e.get("session_id"),
                            json.dumps(e["device"]), json.dumps(md), e["timestamp"]))
            metric_rows.append((pk_app, e["type"], e["timestamp"][:10]))
        metric_rows.sort(key=lambda r: (r[1], r[2]))
        out.append((ev_rows, metric_rows))
    return out


# --------------------------------------------------------------------------------------
# what the workers run (in their own process, on their own connection)


TRACK_SQL = (
    "SELECT accepted, duplicates, jsonb_array_length(rejected), rejected -> 0"
    " FROM analytics.fn_track_events(%s, %s, %t, %s, NULL)"
)


def run_track(conn: psycopg.Connection, app: dict, payloads: list) -> dict:
    stats = {"accepted": 0, "duplicates": 0, "rejected": 0, "first_rejection": None}
    with conn.cursor() as cur:
        for body, sent_at in payloads:
            cur.execute(TRACK_SQL, (app["identifier"], app["write_key"], Json(body, dumps=_identity), sent_at))
            accepted, duplicates, rejected, first = cur.fetchone()
            stats["accepted"] += accepted
            stats["duplicates"] += duplicates
            stats["rejected"] += rejected
            if rejected and stats["first_rejection"] is None:
                stats["first_rejection"] = first
    return stats


def run_copy(conn: psycopg.Connection, app: dict, payloads: list) -> dict:
    rows = 0
    with conn.cursor() as cur:
        for data in payloads:  # one COPY (= one autocommit transaction) per batch of 500
            with cur.copy(COPY_SQL) as cp:
                cp.write(data)
            rows += cur.rowcount
    return {"rows": rows}


# The "one-statement jsonb_to_recordset insert": the same json parameter as
# fn_track_events, turned into rows and inserted in one statement, with neither validation nor
# de-duplication. It is the floor of any ingestion written as a SQL statement over the batch;
# the gap from COPY to it is the executor's, the gap from it to fn_track_events is the checks'
# and the exactly-once ledger's.
FLOOR_SQL = (
    f"INSERT INTO analytics.tb_event ({COPY_COLUMNS})"
    " SELECT coalesce(r.event_id::uuid, gen_random_uuid()), r.event_id, %s, r.type, r.\"timestamp\"::timestamptz,"
    " now(), false, r.user_id, r.anonymous_id, r.session_id, r.path, r.label, r.duration::bigint,"
    " coalesce(r.device, '{}'), coalesce(r.metadata, '{}')"
    " FROM jsonb_to_recordset(%t::jsonb) AS r(type text, event_id text, \"timestamp\" text, user_id text,"
    " anonymous_id text, session_id text, path text, label text, duration text, device jsonb, metadata jsonb)"
)


def run_floor(conn: psycopg.Connection, app: dict, payloads: list) -> dict:
    rows = 0
    with conn.cursor() as cur:
        for body, _sent_at in payloads:  # one autocommit INSERT per batch, as fn_track_events
            cur.execute(FLOOR_SQL, (app["pk_app"], Json(body, dumps=_identity)))
            rows += cur.rowcount
    return {"rows": rows}


def run_seed(conn: psycopg.Connection, app: dict, payloads: list) -> dict:
    """As the seed did it: executemany for the batch's rows, then one awaited counter upsert
    per event, each its own statement and (autocommit) transaction."""
    events = 0
    with conn.cursor() as cur:
        for ev_rows, metric_rows in payloads:
            with conn.transaction():
                cur.executemany(SEED_EVENT_SQL, ev_rows)
            for row in metric_rows:
                cur.execute(SEED_METRIC_SQL, row)
            events += len(ev_rows)
    return {"rows": events}


def join_workers(procs: Sequence[Any]) -> None:
    """Wait for worker processes; terminate any still running after a minute."""
    for p in procs:
        p.join(60)
        if p.is_alive():
            p.terminate()
            p.join()


def raise_failed_workers(outs: Sequence[dict], label: str) -> None:
    """Fail the run, not print a fast number, when any worker reported an error."""
    failed = [r["error"] for r in outs if not r["ok"]]
    if failed:
        raise RuntimeError(f"{label}: worker failed:\n" + "\n".join(failed))


RUNNERS: dict[str, Callable[[psycopg.Connection, dict, list], dict]] = {
    "track": run_track,
    "copy": run_copy,
    "floor": run_floor,
    "seed": run_seed,
}


def _peak_rss_kib() -> int:
    """VmHWM of this process. (getrusage's ru_maxrss would do in the parent, but a spawned
    child inherits its parent's high-water mark across fork + exec on Linux.)"""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _worker(kind, conninfo, app, warmup, timed, ready, go, results) -> None:
    try:
        run = RUNNERS[kind]
        with psycopg.connect(conninfo, autocommit=True) as conn:
            run(conn, app, warmup)
            ready.wait(WORKER_TIMEOUT)
            if not go.wait(WORKER_TIMEOUT):
                raise TimeoutError("never told to start")
            t0, c0 = time.monotonic(), time.process_time()
            stats = run(conn, app, timed)
            t1, c1 = time.monotonic(), time.process_time()
            stats["client_cpu_s"] = c1 - c0
        results.put({"ok": True, "t0": t0, "t1": t1, "stats": stats, "maxrss_kib": _peak_rss_kib()})
    except BaseException:
        results.put({"ok": False, "error": traceback.format_exc()})
        ready.abort()


# --------------------------------------------------------------------------------------
# the parent: one variant = truncate, spawn, warm up, truncate, go, collect, verify


@dataclass
class Variant:
    key: str
    label: str
    kind: str  # track | copy | seed
    conns: int


@dataclass
class Result:
    variant: Variant
    events: int
    seconds: list[float] = field(default_factory=list)
    stats: dict = field(default_factory=dict)
    worker_maxrss_kib: int = 0
    client_cpu: list[float] = field(default_factory=list)  # worker CPU s / wall s, per run

    @property
    def eps(self) -> float:
        return self.events / statistics.median(self.seconds)


def truncate_all(conn: psycopg.Connection) -> None:
    conn.execute(
        "TRUNCATE analytics.tb_event, analytics_internal.tb_event_key,"
        " bench_seed.tb_event, bench_seed.tb_metric RESTART IDENTITY"
    )
    conn.execute("CHECKPOINT")


def run_variant(ctx, admin: psycopg.Connection, conninfo: str, app: dict, variant: Variant,
                warmup: list, timed: list, n_events: int) -> tuple[float, dict, int]:
    n = variant.conns
    ready = ctx.Barrier(n + 1)
    go = ctx.Event()
    results = ctx.Queue()
    truncate_all(admin)
    procs = [
        ctx.Process(target=_worker, name=f"bench-{variant.key}-{w}",
                    args=(variant.kind, conninfo, app, warmup[w * WARMUP_BATCHES:(w + 1) * WARMUP_BATCHES],
                          timed[w::n], ready, go, results))
        for w in range(n)
    ]
    for p in procs:
        p.start()
    try:
        try:
            ready.wait(WORKER_TIMEOUT)
        except threading.BrokenBarrierError:
            errors = [r["error"] for r in _drain(results, n) if not r["ok"]]
            raise RuntimeError(f"{variant.label}: a worker failed during warm-up:\n" + "\n".join(errors))
        truncate_all(admin)  # warm-up rows out; every timed run starts on empty tables
        go.set()
        outs = _drain(results, n)
    finally:
        join_workers(procs)
    raise_failed_workers(outs, variant.label)
    seconds = max(r["t1"] for r in outs) - min(r["t0"] for r in outs)
    stats: dict[str, Any] = {}
    for r in outs:
        for k, v in r["stats"].items():
            if isinstance(v, (int, float)):
                stats[k] = stats.get(k, 0) + v
            elif v is not None and stats.get(k) is None:
                stats[k] = v
    stats.update(verify(admin, variant, stats, n_events))
    return seconds, stats, max(r["maxrss_kib"] for r in outs)


def _drain(results, n: int) -> list[dict]:
    return [results.get(timeout=WORKER_TIMEOUT) for _ in range(n)]


def verify(admin: psycopg.Connection, variant: Variant, stats: dict, n_events: int) -> dict:
    """Check that the run stored what it should (so a fast number is not a broken run)."""
    if variant.kind == "seed":
        stored, counted = admin.execute(
            "SELECT (SELECT count(*) FROM bench_seed.tb_event),"
            " (SELECT coalesce(sum(value), 0) FROM bench_seed.tb_metric)"
        ).fetchone()
        if stored != n_events or counted != n_events:
            raise RuntimeError(f"{variant.label}: stored {stored} events, counted {counted}, sent {n_events}")
        return {"stored": stored}
    stored = admin.execute("SELECT count(*) FROM analytics.tb_event").fetchone()[0]
    if variant.kind in ("copy", "floor"):
        if stored != n_events or stats["rows"] != n_events:
            raise RuntimeError(f"{variant.label}: stored {stored} of {n_events}")
    else:
        if stats["rejected"]:
            raise RuntimeError(f"{variant.label}: {stats['rejected']} events rejected, "
                               f"first: {stats['first_rejection']}")
        if stats["accepted"] + stats["duplicates"] != n_events or stored != stats["accepted"]:
            raise RuntimeError(f"{variant.label}: sent {n_events}, accepted {stats['accepted']}, "
                               f"duplicates {stats['duplicates']}, stored {stored}")
    return {"stored": stored}


# --------------------------------------------------------------------------------------
# setup, machine info, report


def create_app(conn: psycopg.Connection) -> dict:
    ident = f"bench-{uuid.uuid4().hex[:12]}"
    _, identifier, write_key = conn.execute(
        "SELECT app_id, identifier, write_key FROM analytics.fn_create_app(%s, %s)",
        [ident, "ingest benchmark"],
    ).fetchone()
    pk_app = conn.execute("SELECT pk_app FROM analytics.tb_app WHERE identifier = %s", [identifier]).fetchone()[0]
    return {"identifier": identifier, "write_key": write_key, "pk_app": pk_app}


REPO_ROOT = Path(__file__).resolve().parent.parent


def _git_state(path: Path) -> str:
    """Which fn_track_events was measured: HEAD's, or HEAD's plus uncommitted edits."""
    import subprocess

    try:
        head = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO_ROOT), "diff", "--quiet", "HEAD", "--", str(path)],
                               capture_output=True, timeout=10).returncode != 0
    except (OSError, subprocess.SubprocessError):
        return "git state unknown"
    return f"file at git {head}" + (" + uncommitted changes" if dirty else "")


def machine_info(conn: psycopg.Connection) -> list[tuple[str, str]]:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        kib = int(Path("/proc/meminfo").read_text().split("\n")[0].split()[1])
        mem = f"{kib / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    settings = dict(conn.execute(
        "SELECT name, current_setting(name) FROM pg_settings WHERE name IN"
        " ('fsync', 'synchronous_commit', 'full_page_writes', 'shared_buffers', 'max_wal_size', 'jit')"
    ).fetchall())
    fn_md5 = conn.execute(
        "SELECT left(md5(p.prosrc), 12) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
        " WHERE n.nspname = 'analytics' AND p.proname = 'fn_track_events'"
    ).fetchone()[0]
    return [
        ("fn_track_events", f"md5(prosrc) {fn_md5}, {_git_state(REPO_ROOT / 'sql/functions/fn_track_events.sql')}"),
        ("nproc", f"{os.cpu_count()} (usable: {len(os.sched_getaffinity(0))})"),
        ("cpu", cpu),
        ("memory", mem),
        ("kernel", platform.release()),
        ("python", platform.python_version()),
        ("psycopg / libpq", f"{psycopg.__version__} / {psycopg.pq.version()}"),
        ("server", conn.execute("SELECT version()").fetchone()[0]),
        ("engine", conn.execute("SELECT analytics.fn_engine()").fetchone()[0]),
        ("settings", ", ".join(f"{k}={v}" for k, v in sorted(settings.items()))),
    ]


def _fmt_ratio(num: float | None, den: float | None, suffix: str = "") -> str:
    if num is None or den is None or den == 0:
        return "n/a"
    return f"{num / den:.2f}{suffix}"


def report(results: dict[str, Result], info: list[tuple[str, str]], n_events: int, repeat: int,
           extra: dict[str, str]) -> None:
    def eps(kind_key: str) -> float | None:
        r = results.get(kind_key)
        return r.eps if r else None

    print()
    print(f"Ingestion benchmark: {n_events:,} events per variant, batches of {BATCH_SIZE}, "
          f"median of {repeat} run(s) each")
    header = (f"{'variant':<38} {'conns':>5} {'events/s':>10} {'vs COPY':>8} {'vs seed':>8} "
              f"{'client CPU':>10}  notes")
    print(header)
    print("-" * len(header))
    for key, r in results.items():
        v = r.variant
        notes = ""
        if v.kind == "track":
            notes = f"accepted {r.stats['accepted']:,}, duplicates {r.stats['duplicates']:,}"
        line = (f"{v.label:<38} {v.conns:>5} {r.eps:>10,.0f} "
                f"{_fmt_ratio(r.eps, eps(f'copy{v.conns}')):>8} "
                f"{_fmt_ratio(r.eps, eps(f'seed{v.conns}')):>8} "
                f"{statistics.median(r.client_cpu):>10.0%}  {notes}")
        print(line.rstrip())
    print("(client CPU: CPU time of the worker processes / wall time, in % of one core: "
          "how busy the Python side was)")
    print()
    print(f"Targets (fn_track_events, no retries): >= {TARGET_COPY_RATIO:.0%} of COPY, "
          f">= {TARGET_SEED_RATIO:g}x the seed approach (same connection count)")
    for conns in (1, 2):
        fn = eps(f"track{conns}")
        if fn is None:
            continue
        for name, base, target in (("COPY", eps(f"copy{conns}"), TARGET_COPY_RATIO),
                                   ("seed", eps(f"seed{conns}"), TARGET_SEED_RATIO)):
            if base is None:
                print(f"  {conns} conn: fn_track_events / {name:<4} = n/a (variant not run)")
                continue
            ratio = fn / base
            verdict = "PASS" if ratio >= target else "MISS"
            print(f"  {conns} conn: fn_track_events / {name:<4} = {ratio:5.2f}  (target >= {target:g})  {verdict}")
        floor, copy = eps(f"floor{conns}"), eps(f"copy{conns}")
        if floor is not None:
            print(f"  {conns} conn: for scale, the one-statement INSERT / COPY = {_fmt_ratio(floor, copy)}, "
                  f"fn_track_events / that INSERT = {_fmt_ratio(fn, floor)}")
    print()
    self_kib = _peak_rss_kib()
    worker_kib = max((r.worker_maxrss_kib for r in results.values()), default=0)
    print(f"Peak RSS: parent {self_kib / 1024:.0f} MiB (holds all events and payloads), "
          f"largest worker {worker_kib / 1024:.0f} MiB")
    for k, v in extra.items():
        print(f"{k}: {v}")
    print("Machine:")
    for k, v in info:
        print(f"  {k:<16} {v}")


# --------------------------------------------------------------------------------------


VARIANTS = [
    Variant("copy1", "COPY into analytics.tb_event (ceiling)", "copy", 1),
    Variant("copy2", "COPY into analytics.tb_event (ceiling)", "copy", 2),
    Variant("floor1", "one-statement INSERT, no checks/dedup", "floor", 1),
    Variant("floor2", "one-statement INSERT, no checks/dedup", "floor", 2),
    Variant("track1", "fn_track_events", "track", 1),
    Variant("track2", "fn_track_events", "track", 2),
    Variant("retry1", "fn_track_events, 10% retried batches", "track", 1),
    Variant("retry2", "fn_track_events, 10% retried batches", "track", 2),
    Variant("seed1", "seed approach (INSERT + upsert/event)", "seed", 1),
    Variant("seed2", "seed approach (INSERT + upsert/event)", "seed", 2),
]
GROUPS = {"copy": ("copy1", "copy2"), "floor": ("floor1", "floor2"), "track": ("track1", "track2"), "retry": ("retry1", "retry2"),
          "seed": ("seed1", "seed2")}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__.split("\n\n")[0])
    p.add_argument("--events", type=int, default=100_000, help="events per variant (default 100000)")
    p.add_argument("--database-url", help="use this (migrated or empty) database instead of a private "
                   "cluster; its analytics.tb_event must be empty unless --force")
    p.add_argument("--force", action="store_true",
                   help="with --database-url: run even though analytics.tb_event has rows (they are TRUNCATED)")
    p.add_argument("--repeat", type=int, default=1, help="timed runs per variant; the median is reported")
    p.add_argument("--fast", action="store_true",
                   help="private cluster with fsync/synchronous_commit/full_page_writes off (default: durable)")
    p.add_argument("--only", default="copy,floor,track,retry,seed",
                   help="comma-separated subset of copy,floor,track,retry,seed (default: all)")
    p.add_argument("--max-conns", type=int, choices=(1, 2), default=2, help="skip the 2-connection runs with 1")
    args = p.parse_args(argv)
    if args.events < BATCH_SIZE:
        p.error(f"--events must be at least {BATCH_SIZE}")
    unknown = set(args.only.split(",")) - set(GROUPS)
    if unknown:
        p.error(f"unknown --only group(s): {sorted(unknown)}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    server = None
    tmp = None
    try:
        if args.database_url:
            conninfo = args.database_url
        else:
            from tests.engines import start_postgres

            tmp = tempfile.TemporaryDirectory(prefix="ma-bench-")
            print("starting a private PostgreSQL cluster ...", flush=True)
            server = start_postgres(Path(tmp.name), durable=not args.fast)
            with server.connect("postgres", autocommit=True) as c:
                c.execute("CREATE DATABASE ma_bench")
            conninfo = server.conninfo("ma_bench")
        return _bench(args, conninfo)
    finally:
        if server is not None:
            server.stop()
        if tmp is not None:
            tmp.cleanup()


def _bench(args: argparse.Namespace, conninfo: str) -> int:
    from pywrap.migrate import migrate

    report_ = migrate(conninfo)
    print(f"migrated (engine {report_.engine}, applied {report_.applied or 'nothing new'})", flush=True)
    with psycopg.connect(conninfo, autocommit=True) as admin:
        if not args.force and admin.execute("SELECT EXISTS (SELECT 1 FROM analytics.tb_event)").fetchone()[0]:
            print("analytics.tb_event has rows and the benchmark TRUNCATEs it: use an empty database "
                  "or pass --force", file=sys.stderr)
            return 2
        admin.execute("SET client_min_messages = warning")
        admin.execute(SEED_DDL)
        app = create_app(admin)
        try:
            return _run_all(args, conninfo, admin, app)
        finally:
            if args.database_url:  # leave a user's database as we found it (minus truncated events)
                truncate_all(admin)
                admin.execute("DROP SCHEMA bench_seed CASCADE")
                admin.execute("DELETE FROM analytics.tb_app WHERE identifier = %s", [app["identifier"]])


def _run_all(args, conninfo: str, admin: psycopg.Connection, app: dict) -> int:
    load_before = os.getloadavg()
    now = datetime.now(timezone.utc)
    t = time.monotonic()
    factory = EventFactory(SEED, now)
    batches = factory.batches(args.events)
    warm = factory.batches(WARMUP_BATCHES * 2 * BATCH_SIZE)  # other events, same distributions
    retry_seq, n_retried = with_retries(batches, random.Random(SEED + 1))
    n_retry_events = sum(len(b.events) for b in retry_seq)
    sample = track_payloads(batches[:20])
    bytes_per_event = sum(len(body) for body, _ in sample) / sum(len(b.events) for b in batches[:20])
    users = {e["user_id"] for b in batches for e in b.events}
    no_id = sum("event_id" not in e for b in batches for e in b.events)
    print(f"generated {args.events:,} events in {len(batches)} batches ({time.monotonic() - t:.1f} s): "
          f"{len(users):,} distinct users, {no_id / args.events:.1%} without event_id, "
          f"~{bytes_per_event:.0f} bytes of JSON per event", flush=True)

    chosen = [k for g in args.only.split(",") for k in GROUPS[g]]
    variants = [v for v in VARIANTS if v.key in chosen and v.conns <= args.max_conns]
    ctx = mp.get_context("spawn")
    pk_app = app["pk_app"]
    rng = random.Random(SEED + 2)
    payload_cache: dict[str, tuple[list, list, int]] = {}

    def payloads_for(v: Variant) -> tuple[list, list, int]:
        group = "retry" if v.key.startswith("retry") else v.kind
        if group not in payload_cache:
            payload_cache.clear()  # keep one group's payloads at a time
            if group in ("track", "floor"):
                payload_cache[group] = (track_payloads(warm), track_payloads(batches), args.events)
            elif group == "retry":
                payload_cache[group] = (track_payloads(warm), track_payloads(retry_seq), n_retry_events)
            elif group == "copy":
                payload_cache[group] = (copy_payloads(warm, pk_app, rng), copy_payloads(batches, pk_app, rng),
                                        args.events)
            else:
                payload_cache[group] = (seed_payloads(warm, pk_app), seed_payloads(batches, pk_app), args.events)
        return payload_cache[group]

    results: dict[str, Result] = {}
    for v in variants:
        warmup, timed, n = payloads_for(v)
        res = Result(v, n)
        for i in range(args.repeat):
            seconds, stats, rss = run_variant(ctx, admin, conninfo, app, v, warmup, timed, n)
            res.seconds.append(seconds)
            res.client_cpu.append(stats["client_cpu_s"] / seconds)
            res.stats = stats
            res.worker_maxrss_kib = max(res.worker_maxrss_kib, rss)
            print(f"  {v.label} x{v.conns}: {n / seconds:,.0f} events/s ({seconds:.2f} s"
                  f"{', run %d' % (i + 1) if args.repeat > 1 else ''})", flush=True)
        results[v.key] = res
    truncate_all(admin)

    info = machine_info(admin)
    extra = {"Load average (1/5/15 min)": "before " + " ".join(f"{x:.2f}" for x in load_before)
             + ", after " + " ".join(f"{x:.2f}" for x in os.getloadavg())
             + f" -- on {os.cpu_count()} CPUs; anything else running skews the numbers"}
    if any(k.startswith("retry") for k in results):
        extra["Retry variant"] = (f"{len(retry_seq)} batches, {n_retried} of them re-sends of a recent earlier "
                                  f"batch (new sentAt); events/s counts accepted + duplicates")
    report(results, info, args.events, args.repeat, extra)
    return 0


if __name__ == "__main__":
    sys.exit(main())
