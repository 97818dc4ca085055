"""`mobile-analytics archive` (pywrap/archive.py): expired chunks exported as Parquet to a real
S3 API (moto in server mode, a separate process on loopback) or a local directory, verified,
recorded, then dropped; killed with SIGKILL at any stage and rerun, nothing is lost or doubled.
Both engines."""

from __future__ import annotations

import hashlib
import io
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pywrap.archive import ArchiveConfig, Progress, run_archive
from tests.conftest import Database, create_app
from tests.helpers import track
from tests.test_lifecycle import lifecycle, old_events, rollup_rows, settle  # noqa: F401 - fixture
from tests.test_rollups import rollups  # noqa: F401 - fixture used by lifecycle

CLI = Path(sys.executable).with_name("mobile-analytics")
MOTO = Path(sys.executable).with_name("moto_server")
S3_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
OLD_DAYS = (101, 100, 99)
KEY = re.compile(r"^events/app=(?P<app>[0-9a-f-]{36})/date=(?P<date>\d{4}-\d{2}-\d{2})/part-(?P<start>\d{8}T\d{6}Z)\.parquet$")

# The documented Parquet schema (docs/lifecycle.md), written out independently of pywrap.archive.
DOCUMENTED = [
    ("event_id", pa.string(), False), ("client_event_id", pa.string(), True), ("app_id", pa.string(), False),
    ("event_type", pa.string(), False), ("timestamp", pa.timestamp("us", tz="UTC"), False),
    ("received_at", pa.timestamp("us", tz="UTC"), False), ("timestamp_clamped", pa.bool_(), False),
    ("user_id", pa.string(), True), ("anonymous_id", pa.string(), True), ("session_id", pa.string(), True),
    ("path", pa.string(), True), ("label", pa.string(), True), ("duration_ms", pa.int64(), True),
    ("device", pa.string(), False), ("metadata", pa.string(), False), ("sequence", pa.int64(), False),
]


@pytest.fixture(scope="session")
def moto_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An S3 API on 127.0.0.1: moto's server, in a process of its own."""
    log_path = tmp_path_factory.mktemp("moto") / "moto.log"
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen([str(MOTO), "-H", "127.0.0.1", "-p", "0"], stdout=log_file,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=os.environ | S3_ENV)
    try:
        deadline = time.monotonic() + 30
        while not (m := re.search(rb"Running on (http://127\.0\.0\.1:\d+)", log_path.read_bytes())):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"moto_server did not start: {log_path.read_text(errors='replace')[-2000:]}")
            time.sleep(0.05)
        yield m[1].decode()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@dataclass
class Where:
    """An archive target for one test, and how to read back what landed there."""

    kind: str
    config: ArchiveConfig
    env: dict[str, str]
    client: Any = None

    def objects(self) -> dict[str, bytes]:
        if self.kind == "local":
            root = self.config.directory
            assert root is not None
            return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
        listed = self.client.list_objects_v2(Bucket=self.config.bucket).get("Contents", [])
        return {o["Key"]: self.client.get_object(Bucket=self.config.bucket, Key=o["Key"])["Body"].read()
                for o in listed}

    def cli_args(self) -> list[str]:
        if self.kind == "local":
            return ["--dir", str(self.config.directory)]
        return ["--bucket", str(self.config.bucket), "--endpoint-url", str(self.config.endpoint_url)]


@pytest.fixture(params=["local", "s3"])
def where(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Where:
    if request.param == "local":
        return Where("local", ArchiveConfig(directory=tmp_path / "archive", batch_rows=4), {})
    import boto3

    url = request.getfixturevalue("moto_url")
    for name, value in S3_ENV.items():
        monkeypatch.setenv(name, value)
    bucket = f"archive-{uuid.uuid4().hex[:12]}"
    client = boto3.client("s3", endpoint_url=url, region_name="us-east-1")
    client.create_bucket(Bucket=bucket)
    return Where("s3", ArchiveConfig(bucket=bucket, endpoint_url=url, batch_rows=4), S3_ENV, client)


@dataclass
class OldData:
    total: int
    old: Counter[tuple[str, str]]  # event id -> (app uuid, UTC date)
    ids: dict[str, tuple[str, str]]
    rollups: dict[str, list[tuple]]


def make_old_data(conn: psycopg.Connection, engine: str) -> OldData:
    """Two apps with events 101, 100 and 99 days back and yesterday; then their retention is
    cut to 30 days, so that three chunks are expired."""
    apps = [create_app(conn, "arch-a", retention_days=200), create_app(conn, "arch-b", retention_days=200)]
    for n, app in enumerate(apps):
        for days_ago in OLD_DAYS:
            events = old_events(days_ago, 5 + n * 2, app.identifier)
            for e in events:
                e["metadata"] = {"n": n, "text": "é ✓"}
            assert track(conn, app, events)["accepted"] == len(events)
        assert track(conn, app, old_events(1, 3, app.identifier))["accepted"] == 3
    settle(conn, engine)
    conn.execute("UPDATE analytics.tb_app SET retention_days = 30")
    ids = {str(i): (str(a), d.isoformat()) for i, a, d in conn.execute(
        "SELECT e.id, a.id, (e.\"timestamp\" AT TIME ZONE 'UTC')::date FROM analytics.tb_event e"
        " JOIN analytics.tb_app a ON a.pk_app = e.fk_app WHERE e.\"timestamp\" < now() - interval '50 days'")}
    total = conn.execute("SELECT count(*) FROM analytics.tb_event").fetchone()[0]
    return OldData(total, Counter(ids.values()), ids, rollup_rows(conn))


def check_archive(conn: psycopg.Connection, where: Where, data: OldData) -> None:
    """Everything expired is in exactly one object, nothing twice, and gone from the table;
    the objects have the documented schema and layout; the ledger matches them; rollups kept."""
    objects = where.objects()
    assert not [k for k in objects if not k.endswith(".parquet")], "temporary files were left behind"
    seen: Counter[str] = Counter()
    for key, body in objects.items():
        m = KEY.match(key)
        assert m, key
        table = pq.read_table(io.BytesIO(body))
        assert [(f.name, f.type, f.nullable) for f in table.schema] == DOCUMENTED
        assert pq.ParquetFile(io.BytesIO(body)).metadata.row_group(0).column(0).compression == "ZSTD"
        rows = table.to_pylist()
        assert {r["app_id"] for r in rows} == {m["app"]}
        assert {r["timestamp"].date().isoformat() for r in rows} == {m["date"]}
        assert all(r["metadata"] and "é ✓" in r["metadata"] for r in rows)
        seen.update(r["event_id"] for r in rows)
    assert set(seen) == set(data.ids) and max(seen.values()) == 1
    remaining = conn.execute("SELECT count(*) FROM analytics.tb_event").fetchone()[0]
    assert remaining + sum(seen.values()) == data.total
    assert conn.execute("SELECT count(*) FROM analytics.tb_event WHERE id::text = ANY(%s)",
                        [list(data.ids)]).fetchone()[0] == 0
    ledger = conn.execute("SELECT object_key, state, row_count, byte_size, sha256 FROM analytics_internal.tb_archive_object"
                          ).fetchall()
    assert sorted(k for k, *_ in ledger) == sorted(objects)
    for key, state, row_count, size, sha in ledger:
        assert state == "verified"
        assert (size, sha) == (len(objects[key]), hashlib.sha256(objects[key]).hexdigest())
        assert row_count == pq.read_metadata(io.BytesIO(objects[key])).num_rows
    assert len(ledger) == len(data.old)
    assert rollup_rows(conn) == data.rollups


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_archive_exports_verifies_records_and_drops(lifecycle, engine_name, where):
    conn = lifecycle
    data = make_old_data(conn, engine_name)
    terminal = FakeTerminal()
    report = run_archive(conn, where.config, progress=Progress(terminal))
    assert (report.chunks, report.objects_written, report.rows_written) == (3, len(data.old), len(data.ids))
    assert [r["action"] for r in report.retention] == ["dropped"] * 3
    check_archive(conn, where, data)
    assert "\r" in terminal.getvalue() and "rows" in terminal.getvalue()

    again = run_archive(conn, where.config, progress=Progress(FakeTerminal()))
    assert (again.chunks, again.objects_written, again.retention) == (0, 0, [])
    check_archive(conn, where, data)


def run_cli(db: Database, where: Where, fault: str | None = None) -> subprocess.Popen[str]:
    env = os.environ | where.env | {"PYTHONUNBUFFERED": "1"}
    env.pop("MOBILE_ANALYTICS_ARCHIVE_FAULT", None)
    if fault:
        env["MOBILE_ANALYTICS_ARCHIVE_FAULT"] = fault
    return subprocess.Popen([str(CLI), "archive", "--database-url", db.conninfo, "--batch-rows", "4", *where.cli_args()],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def wait_for_fault(proc: subprocess.Popen[str]) -> str:
    assert proc.stderr is not None
    seen = []
    deadline = time.monotonic() + 120
    for line in proc.stderr:  # the archive logs a line per object; the fault hook one more
        seen.append(line)
        if "fault injection" in line or time.monotonic() > deadline:
            break
    assert "fault injection" in seen[-1], "".join(seen)
    return "".join(seen)


# Killed after the ledger says pending and the object is up but unverified (the first chunk's
# second object), and after the second chunk's second object is verified (the first chunk is
# dropped by then). Against S3 the first is enough: the ledger logic is the same.
@pytest.mark.parametrize(("where", "fault"), [("local", "after-upload:2"), ("local", "after-verify:4"),
                                              ("s3", "after-upload:2")], indirect=["where"])
def test_kill_9_mid_archive_then_rerun_loses_and_doubles_nothing(db, lifecycle, engine_name, where, fault):
    conn = lifecycle
    data = make_old_data(conn, engine_name)
    conn.close()  # the WASM engine takes one connection: the archive process gets it

    proc = run_cli(db, where, fault)
    try:
        wait_for_fault(proc)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    with db.connect() as check:  # what the crash left: every event in the table or in a verified object
        states = dict(check.execute("SELECT state, count(*) FROM analytics_internal.tb_archive_object GROUP BY 1"))
        assert states.get("pending", 0) == (0 if fault.startswith("after-verify") else 1)
        assert states.get("verified", 0) == (4 if fault.startswith("after-verify") else 1)
        # Each chunk holds two objects: after-verify:4 stops in the second chunk, the first dropped.
        dropped = check.execute("SELECT count(*) FROM analytics_internal.tb_event_drop").fetchone()[0]
        assert dropped == (1 if fault.startswith("after-verify") else 0)
        in_dropped_objects = check.execute(
            "SELECT coalesce(sum(o.row_count), 0) FROM analytics_internal.tb_archive_object o"
            " JOIN analytics_internal.tb_event_drop d ON d.range_start = o.range_start WHERE o.state = 'verified'"
        ).fetchone()[0]
        remaining = check.execute("SELECT count(*) FROM analytics.tb_event").fetchone()[0]
        assert remaining + in_dropped_objects == data.total

    proc = run_cli(db, where)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "expired chunk(s)" in out
    with db.connect() as check:
        check_archive(check, where, data)
