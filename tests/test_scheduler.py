"""The server's background jobs (pywrap/scheduler.py): maintenance every interval, the archive
at its time of day, both stopped cleanly with the server."""

from __future__ import annotations

import logging
import time
from datetime import datetime, timezone
from datetime import time as dtime
from pathlib import Path

import pytest

from pywrap import scheduler
from pywrap.config import ConfigError
from tests.conftest import create_app
from tests.helpers import track
from tests.server_fixtures import fast_pool_retry, start_server  # noqa: F401 - fixture
from tests.test_lifecycle import lifecycle, old_events, settle  # noqa: F401 - fixture
from tests.test_rollups import rollups  # noqa: F401 - fixture used by lifecycle


def test_daily_time_parsing_and_next_run() -> None:
    assert scheduler.parse_daily_time("02:00") == dtime(2, 0, tzinfo=timezone.utc)
    assert scheduler.parse_daily_time("off") is None
    for bad in ("25:00", "2", "02:60", "noon"):
        with pytest.raises(ConfigError):
            scheduler.parse_daily_time(bad)
    at = dtime(2, 0, tzinfo=timezone.utc)
    assert scheduler.seconds_until(at, datetime(2026, 5, 1, 1, 0, tzinfo=timezone.utc)) == 3600
    assert scheduler.seconds_until(at, datetime(2026, 5, 1, 2, 0, tzinfo=timezone.utc)) == 86400
    assert scheduler.seconds_until(at, datetime(2026, 5, 1, 3, 0, tzinfo=timezone.utc)) == 23 * 3600


def wait_for_log(caplog: pytest.LogCaptureFixture, text: str, timeout: float = 30) -> logging.LogRecord:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [r for r in caplog.records if r.getMessage().startswith(text)]
        if found:
            return found[0]
        time.sleep(0.05)
    raise AssertionError(f"no log line {text!r}: {[r.getMessage() for r in caplog.records][-20:]}")


def test_server_runs_maintenance_every_interval_and_stops_cleanly(db, fast_pool_retry, caplog):  # noqa: F811
    with db.connect() as conn:
        create_app(conn, "app123", retention_days=10)
        # An exactly-once key older than the retention: maintenance purges it.
        conn.execute("INSERT INTO analytics_internal.tb_event_key (fk_app, event_key, \"timestamp\")"
                     " SELECT pk_app, gen_random_uuid(), now() - interval '30 days' FROM analytics.tb_app")
    caplog.set_level(logging.INFO, logger="pywrap.scheduler")
    server = start_server(db, maintenance_interval=0.2, archive_at="off")
    try:
        wait_for_log(caplog, "maintenance: ")
    finally:
        started = time.monotonic()
        server.stop()
    assert not server.thread.is_alive() and time.monotonic() - started < 15
    with db.connect() as conn:
        assert conn.execute("SELECT count(*) FROM analytics_internal.tb_event_key").fetchone()[0] == 0


@pytest.mark.pg_only  # the archive works on a connection of its own next to the server's pool
def test_server_archives_at_its_time_into_the_data_dir(db, lifecycle, engine_name, caplog, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch):
    conn = lifecycle
    app = create_app(conn, "old-app", retention_days=200)
    assert track(conn, app, old_events(100, 4, "old"))["accepted"] == 4
    settle(conn, engine_name)
    conn.execute("UPDATE analytics.tb_app SET retention_days = 30")
    for name in ("BUCKET", "DIR"):
        monkeypatch.delenv(f"MOBILE_ANALYTICS_ARCHIVE_{name}", raising=False)
    monkeypatch.setattr(scheduler, "seconds_until", lambda _at, now=None: 0.2)
    caplog.set_level(logging.INFO, logger="pywrap.scheduler")
    server = start_server(db, maintenance_interval=0, archive_at="03:00", data_dir=tmp_path)
    try:
        record = wait_for_log(caplog, "archive: ")
    finally:
        server.stop()
    assert "'objects_written': 1" in record.getMessage()
    assert len(list((tmp_path / "archive").rglob("*.parquet"))) == 1
    assert conn.execute("SELECT count(*) FROM analytics.tb_event").fetchone()[0] == 0
