"""fn_track_events under concurrency (PostgreSQL engine: several connections at once).

Exactly-once must hold when batches with overlapping event ids race each other in different
orders, when whole batches are retried with another sentAt, and when a retry arrives while the
original batch's transaction is still open (then commits or rolls back).
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from typing import Any

import psycopg
import pytest

from tests.conftest import create_app
from tests.ingest_support import send, stored_counts

pytestmark = pytest.mark.pg_only

THREADS = 8
BATCHES_PER_THREAD = 10
BATCH_SIZE = 200
RETRIES_PER_THREAD = 2
# Few enough ids that every batch overlaps with most others; half uuid-shaped, half free text,
# so that both ways of deriving the event key are exercised.
ID_POOL = [str(uuid.UUID(int=i * 7919 + 1)) for i in range(300)] + [f"evt-{i}" for i in range(300)]


def plan_batches(seed: int) -> list[tuple[list[dict[str, Any]], datetime | None]]:
    """One thread's work: shuffled batches of pool ids, then retries of some with a new sentAt."""
    rng = random.Random(seed)
    now = datetime.now(timezone.utc)
    batches = []
    for n in range(BATCHES_PER_THREAD):
        ids = rng.sample(ID_POOL, BATCH_SIZE)
        events = [{"type": "race", "event_id": i, "label": f"t{seed}-b{n}"} for i in ids]
        batches.append((events, now if n % 2 else None))
    for events, _ in rng.sample(batches, RETRIES_PER_THREAD):
        retry = events[:]
        rng.shuffle(retry)
        batches.append((retry, now + timedelta(minutes=rng.randint(1, 30))))
    return batches


def run_threads(worker: Callable[[int], Any], count: int) -> list[Any]:
    """Run worker(0..count-1) in parallel; the first exception of any worker is raised here."""
    with ThreadPoolExecutor(max_workers=count) as pool:
        futures = [pool.submit(worker, n) for n in range(count)]
        return [f.result(timeout=60) for f in futures]


def test_overlapping_batches_store_every_id_exactly_once(db):
    with db.connect() as conn:
        app = create_app(conn)
    plans = [plan_batches(seed) for seed in range(THREADS)]
    start = threading.Barrier(THREADS)

    def worker(n: int) -> list[dict[str, Any]]:
        with db.connect() as conn:
            start.wait(timeout=30)
            return [send(conn, app, events, sent_at=sent_at) for events, sent_at in plans[n]]

    results = [r for per_thread in run_threads(worker, THREADS) for r in per_thread]

    sent = [e["event_id"] for plan in plans for events, _ in plan for e in events]
    distinct = set(sent)
    assert all(r["rejected"] == [] for r in results)
    assert sum(r["accepted"] for r in results) == len(distinct)
    assert sum(r["accepted"] + r["duplicates"] for r in results) == len(sent)
    with db.connect() as conn:
        stored = conn.execute("SELECT client_event_id FROM analytics.tb_event").fetchall()
        assert sorted(row[0] for row in stored) == sorted(distinct)
        assert stored_counts(conn) == (len(distinct), len(distinct))


def wait_until_blocked(conn: psycopg.Connection, pid: int, timeout: float = 10.0) -> None:
    """Wait until backend `pid` waits for a lock (the retry queued behind the open original)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        blocked = conn.execute("SELECT cardinality(pg_blocking_pids(%s)) > 0", [pid]).fetchone()[0]
        if blocked:
            return
        time.sleep(0.02)
    raise AssertionError(f"backend {pid} never waited for the original batch's transaction")


ORIGINAL = [{"type": "purchase", "event_id": "order-1"}, {"type": "purchase", "event_id": str(uuid.UUID(int=99))}]
RETRY = [ORIGINAL[1], {"type": "purchase", "event_id": "order-2"}, ORIGINAL[0]]  # another order, one new id


@pytest.mark.parametrize("ending", ["commit", "rollback"])
def test_retry_while_the_original_is_still_open(db, ending):
    with db.connect() as observer, db.connect(autocommit=False) as original, db.connect() as retrier:
        app = create_app(observer)
        assert send(original, app, ORIGINAL)["accepted"] == 2  # transaction left open
        retrier_pid = retrier.info.backend_pid
        with ThreadPoolExecutor(max_workers=1) as pool:
            retry = pool.submit(send, retrier, app, RETRY, sent_at=datetime.now(timezone.utc) + timedelta(minutes=3))
            wait_until_blocked(observer, retrier_pid)
            assert not retry.done()
            getattr(original, ending)()
            result = retry.result(timeout=10)

        if ending == "commit":
            assert (result["accepted"], result["duplicates"]) == (1, 2)
        else:
            assert (result["accepted"], result["duplicates"]) == (3, 0)
        per_id = "SELECT client_event_id, count(*) FROM analytics.tb_event GROUP BY 1 ORDER BY 1"
        assert observer.execute(per_id).fetchall() == sorted((e["event_id"], 1) for e in RETRY)
        assert stored_counts(observer) == (3, 3)
