"""The server's background jobs: maintenance every few minutes and the archive once a day.

    MOBILE_ANALYTICS_MAINTENANCE_INTERVAL  seconds between CALL analytics.prc_run_maintenance()
                                           (300; 0: never). Its advisory lock makes several
                                           server instances run it once at a time.
    MOBILE_ANALYTICS_ARCHIVE_AT            HH:MM (UTC) of the daily `archive` run (02:00;
                                           "off": never). Where to: pywrap.archive.ArchiveConfig.

Both run as asyncio tasks; the archive itself (blocking I/O: psycopg, pyarrow, boto3) runs in
a thread on a connection of its own. On shutdown a maintenance call in progress is let finish,
and the archive stops at the next batch of rows (what it verified stays recorded; the next run
goes on from there). A failed run is logged and tried again at the next interval or day.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from datetime import datetime, time, timedelta, timezone

from .archive import ArchiveConfig, Progress, run_archive_url
from .config import ConfigError, Settings
from .db import Database
from .queries import RUN_MAINTENANCE

log = logging.getLogger(__name__)


def parse_daily_time(text: str) -> time | None:
    """'HH:MM' -> a UTC time of day; 'off' (or '') -> None."""
    if text.strip().lower() in ("off", "", "none", "never"):
        return None
    match = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*", text)
    if not match or int(match[1]) > 23 or int(match[2]) > 59:
        raise ConfigError(f"MOBILE_ANALYTICS_ARCHIVE_AT={text!r} is not HH:MM (UTC) or off")
    return time(int(match[1]), int(match[2]), tzinfo=timezone.utc)


def seconds_until(at: time, now: datetime | None = None) -> float:
    """Seconds from now to the next occurrence of `at` (UTC), in (0, 86400]."""
    now = now or datetime.now(timezone.utc)
    target = datetime.combine(now.date(), at)
    if target <= now:
        target += timedelta(days=1)
    return (target - now).total_seconds()


class Scheduler:
    def __init__(self, settings: Settings, db: Database, database_url: str) -> None:
        if settings.maintenance_interval < 0:
            raise ConfigError("MOBILE_ANALYTICS_MAINTENANCE_INTERVAL must be >= 0 (0: off)")
        self.settings = settings
        self.db = db
        self.database_url = database_url
        self.archive_at = parse_daily_time(settings.archive_at)
        self.archive_config = None if self.archive_at is None else ArchiveConfig.from_env(
            default_dir=settings.data_dir / "archive" if settings.data_dir else None)
        self._stop = asyncio.Event()
        self._archive_stop = threading.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        if self.settings.maintenance_interval > 0:
            self._tasks.append(asyncio.create_task(self._maintenance_loop(), name="maintenance"))
        if self.archive_at is not None:
            self._tasks.append(asyncio.create_task(self._archive_loop(), name="archive"))

    async def stop(self, timeout: float) -> None:
        self._stop.set()
        self._archive_stop.set()
        if not self._tasks:
            return
        _done, pending = await asyncio.wait(self._tasks, timeout=timeout)
        for task in pending:
            log.warning("background job %s did not stop within %s s; cancelled", task.get_name(), timeout)
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    async def _wait(self, seconds: float) -> bool:
        """Sleep; False as soon as the scheduler is stopping."""
        try:
            await asyncio.wait_for(self._stop.wait(), timeout=seconds)
        except TimeoutError:
            return True
        return False

    async def maintenance_once(self) -> dict[str, object] | None:
        row = await self.db.one_dict(RUN_MAINTENANCE, {})
        log.info("maintenance: %s", row)
        return row

    async def _maintenance_loop(self) -> None:
        # The first run waits one interval: a server starting up (or a test) is left alone.
        while await self._wait(self.settings.maintenance_interval):
            try:
                await self.maintenance_once()
            except Exception:  # noqa: BLE001 - logged; the next interval tries again
                log.exception("maintenance failed; retried in %s s", self.settings.maintenance_interval)

    async def _archive_loop(self) -> None:
        assert self.archive_at is not None and self.archive_config is not None
        while await self._wait(seconds_until(self.archive_at)):
            try:
                report = await asyncio.to_thread(run_archive_url, self.database_url, self.archive_config,
                                                 stop=self._archive_stop, progress=Progress(enabled=False))
                log.info("archive: %s", report.as_dict())
            except Exception:  # noqa: BLE001 - logged; tomorrow's run tries again
                log.exception("archive failed; tried again tomorrow at %s UTC", self.archive_at.strftime("%H:%M"))
