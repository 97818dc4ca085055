"""Archive of expired raw events as Parquet (S3 or a local directory), then retention.

`mobile-analytics archive` and the server's daily job call `run_archive`. For every raw-event
chunk past its retention (analytics.fn_retention_status), oldest first, and every app and UTC
day with events in it (analytics.fn_archive_plan):

1. the ledger row is set to `pending` (committed);
2. the app-day's events are streamed from a server-side cursor over analytics.fn_archive_rows,
   inside one REPEATABLE READ transaction that also counts them, into a Parquet file (zstd,
   one row group per batch), so memory stays bounded whatever the size;
3. the file is uploaded to its deterministic key and read back: size, SHA-256 and the row
   count in its Parquet footer must match what was written;
4. the ledger row becomes `verified` with the row count and id checksum of step 2.

Then analytics.fn_apply_retention drops the chunk, which it does only if every app-day in it
is verified and still matches. A crash anywhere leaves either no object, or an object that a
rerun overwrites under the same key (never a second copy), and a ledger that is never ahead
of the objects. See docs/lifecycle.md.
"""

from __future__ import annotations

import base64
import hashlib
import io
import logging
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol, TextIO

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
from psycopg.rows import dict_row

from . import queries

log = logging.getLogger(__name__)

ENV_PREFIX = "MOBILE_ANALYTICS_ARCHIVE_"
ARCHIVE_LOCK_KEY = 7_346_221_904
# Testing hook (docs/lifecycle.md): "<stage>:<n>" stops the process for good at the n-th
# object reaching stage after-pending, after-upload or after-verify, so that a test can kill
# it there with SIGKILL. Never set it in production.
FAULT_ENV = "MOBILE_ANALYTICS_ARCHIVE_FAULT"
FAULT_STAGES = ("after-pending", "after-upload", "after-verify")

_UTC_US = pa.timestamp("us", tz="UTC")
SCHEMA = pa.schema(
    [
        pa.field("event_id", pa.string(), nullable=False),
        pa.field("client_event_id", pa.string()),
        pa.field("app_id", pa.string(), nullable=False),
        pa.field("event_type", pa.string(), nullable=False),
        pa.field("timestamp", _UTC_US, nullable=False),
        pa.field("received_at", _UTC_US, nullable=False),
        pa.field("timestamp_clamped", pa.bool_(), nullable=False),
        pa.field("user_id", pa.string()),
        pa.field("anonymous_id", pa.string()),
        pa.field("session_id", pa.string()),
        pa.field("path", pa.string()),
        pa.field("label", pa.string()),
        pa.field("duration_ms", pa.int64()),
        pa.field("device", pa.string(), nullable=False),
        pa.field("metadata", pa.string(), nullable=False),
        pa.field("sequence", pa.int64(), nullable=False),
    ],
    metadata={"mobile_analytics.schema": "events/1"},
)

# S3: objects above this size go up in parts (each part's SHA-256 checked by S3 on arrival),
# with a bounded number of parts in flight.
MULTIPART_THRESHOLD = 64 * 1024 * 1024
MULTIPART_CHUNK = 16 * 1024 * 1024
MULTIPART_CONCURRENCY = 4


class ArchiveError(RuntimeError):
    """An object could not be written or did not verify; nothing was dropped for it."""


class Stopped(Exception):
    """The caller asked the archive to stop (server shutdown); the current object is abandoned."""


@dataclass(frozen=True)
class ArchiveConfig:
    """Where and how to archive. With no bucket, objects go below `directory`."""

    bucket: str | None = None
    prefix: str = "events"
    endpoint_url: str | None = None
    region: str | None = None
    directory: Path | None = None
    batch_rows: int = 20_000
    drop: bool = True

    def __post_init__(self) -> None:
        if self.bucket is None and self.directory is None:
            raise ValueError("archive needs a bucket or a directory")
        if self.batch_rows < 1:
            raise ValueError("batch_rows must be positive")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, default_dir: Path | None = None,
                 **overrides: Any) -> ArchiveConfig:
        """MOBILE_ANALYTICS_ARCHIVE_{BUCKET,PREFIX,ENDPOINT_URL,REGION,DIR}; overrides that are
        not None win. No bucket and no directory: default_dir, else <data dir>/archive (the
        data dir of MOBILE_ANALYTICS_DATA_DIR or pywrap.embedded's default)."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for name in ("bucket", "prefix", "endpoint_url", "region"):
            if raw := env.get(ENV_PREFIX + name.upper()):
                values[name] = raw
        if raw := env.get(ENV_PREFIX + "DIR"):
            values["directory"] = Path(raw).expanduser()
        given = {k: v for k, v in overrides.items() if v is not None}
        if "directory" in given and "bucket" not in given:
            values.pop("bucket", None)  # an explicit directory beats a bucket from the environment
        values.update(given)
        if not values.get("bucket") and not values.get("directory"):
            values["directory"] = default_dir or default_directory()
        return cls(**values)


def default_directory() -> Path:
    from .embedded import default_data_dir  # only its path rule, not the cluster

    base = os.environ.get("MOBILE_ANALYTICS_DATA_DIR")
    return (Path(base).expanduser() if base else default_data_dir()) / "archive"


def object_key(prefix: str, app_id: Any, day: date, range_start: datetime) -> str:
    """<prefix>/app=<app uuid>/date=<YYYY-MM-DD>/part-<chunk start, UTC>.parquet: the same key
    for the same app-day and chunk on every run, so that a rerun overwrites, never duplicates."""
    stamp = range_start.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    parts = [p for p in prefix.strip("/").split("/") if p]
    return "/".join([*parts, f"app={app_id}", f"date={day:%Y-%m-%d}", f"part-{stamp}.parquet"])


@dataclass
class ArchiveReport:
    chunks: int = 0
    objects_written: int = 0
    objects_skipped: int = 0
    objects_deleted: int = 0
    rows_written: int = 0
    bytes_written: int = 0
    locked_out: bool = False
    stopped: bool = False
    retention: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "chunks": self.chunks, "objects_written": self.objects_written,
            "objects_skipped": self.objects_skipped, "objects_deleted": self.objects_deleted,
            "rows_written": self.rows_written, "bytes_written": self.bytes_written,
            "locked_out": self.locked_out, "stopped": self.stopped, "retention": self.retention,
        }


# --- targets -------------------------------------------------------------------------------


class Target(Protocol):
    uri: str

    def spool_path(self, key: str) -> Path: ...
    def put(self, key: str, spooled: Path, sha256: str, rows: int) -> None: ...
    def verify(self, key: str, size: int, sha256: str, rows: int) -> None: ...
    def delete(self, key: str) -> None: ...


def _file_sha256(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(1024 * 1024):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


class LocalTarget:
    """Objects as files below a directory, same keys as S3. A file appears under its final name
    only once complete and synced (written next to it, then renamed)."""

    def __init__(self, root: Path) -> None:
        self.root = root.expanduser().resolve()
        self.uri = self.root.as_uri()

    def _path(self, key: str) -> Path:
        return self.root / key

    def spool_path(self, key: str) -> Path:
        final = self._path(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        # Leftovers of a run killed while writing this object.
        for stale in final.parent.glob(f".{final.name}.*.tmp"):
            stale.unlink(missing_ok=True)
        return final.with_name(f".{final.name}.{os.getpid()}.tmp")

    def put(self, key: str, spooled: Path, sha256: str, rows: int) -> None:
        final = self._path(key)
        with open(spooled, "rb") as f:
            os.fsync(f.fileno())
        os.replace(spooled, final)
        dir_fd = os.open(final.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def verify(self, key: str, size: int, sha256: str, rows: int) -> None:
        path = self._path(key)
        got_size, got_sha = _file_sha256(path)
        got_rows = pq.read_metadata(path).num_rows
        if (got_size, got_sha, got_rows) != (size, sha256, rows):
            raise ArchiveError(f"{path} does not verify: size {got_size}/{size}, rows {got_rows}/{rows}, "
                               f"sha256 {got_sha[:12]}…/{sha256[:12]}…")

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)


class _S3RangeReader(io.RawIOBase):
    """A seekable read-only file over an S3 object, one ranged GET per read: enough for
    pyarrow to read a Parquet footer without downloading the object."""

    def __init__(self, client: Any, bucket: str, key: str, size: int) -> None:
        self._client, self._bucket, self._key, self._size = client, bucket, key, size
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        want = min(len(buffer), self._size - self._pos)
        if want <= 0:
            return 0
        body = self._client.get_object(Bucket=self._bucket, Key=self._key,
                                       Range=f"bytes={self._pos}-{self._pos + want - 1}")["Body"].read()
        buffer[: len(body)] = body
        self._pos += len(body)
        return len(body)


class S3Target:
    """Objects in an S3 bucket (or any S3 API: endpoint_url). Credentials come from boto3's
    usual chain (AWS_* variables, ~/.aws, instance roles)."""

    def __init__(self, bucket: str, *, endpoint_url: str | None = None, region: str | None = None,
                 spool_dir: Path | None = None) -> None:
        import boto3
        from boto3.s3.transfer import TransferConfig

        self.bucket = bucket
        self.uri = f"s3://{bucket}"
        self.client = boto3.client("s3", endpoint_url=endpoint_url, region_name=region)
        self._transfer = TransferConfig(multipart_threshold=MULTIPART_THRESHOLD, multipart_chunksize=MULTIPART_CHUNK,
                                        max_concurrency=MULTIPART_CONCURRENCY)
        self._spool_dir = spool_dir

    def spool_path(self, key: str) -> Path:
        fd, name = tempfile.mkstemp(prefix="mobile-analytics-archive-", suffix=".parquet", dir=self._spool_dir)
        os.close(fd)
        return Path(name)

    def put(self, key: str, spooled: Path, sha256: str, rows: int) -> None:
        try:
            # ChecksumAlgorithm: S3 recomputes the SHA-256 of the body (of each part) and refuses
            # a corrupted upload; the metadata lets verify() and anyone later check the object.
            self.client.upload_file(str(spooled), self.bucket, key, Config=self._transfer, ExtraArgs={
                "ChecksumAlgorithm": "SHA256",
                "ContentType": "application/vnd.apache.parquet",
                "Metadata": {"sha256": sha256, "rows": str(rows)},
            })
        finally:
            spooled.unlink(missing_ok=True)

    def verify(self, key: str, size: int, sha256: str, rows: int) -> None:
        head = self.client.head_object(Bucket=self.bucket, Key=key, ChecksumMode="ENABLED")
        meta = head.get("Metadata", {})
        problems = []
        if head["ContentLength"] != size:
            problems.append(f"size {head['ContentLength']} instead of {size}")
        if meta.get("sha256") != sha256 or meta.get("rows") != str(rows):
            problems.append("metadata does not match the file written")
        checksum = head.get("ChecksumSHA256")
        if size < MULTIPART_THRESHOLD and checksum and "-" not in checksum:
            if checksum != base64.b64encode(bytes.fromhex(sha256)).decode():
                problems.append("S3's SHA-256 of the object differs")
        footer_rows = pq.ParquetFile(_S3RangeReader(self.client, self.bucket, key, size)).metadata.num_rows
        if footer_rows != rows:
            problems.append(f"Parquet footer says {footer_rows} rows instead of {rows}")
        if problems:
            raise ArchiveError(f"{self.uri}/{key} does not verify: {'; '.join(problems)}")

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=key)


def make_target(config: ArchiveConfig) -> Target:
    if config.bucket:
        return S3Target(config.bucket, endpoint_url=config.endpoint_url, region=config.region)
    assert config.directory is not None
    return LocalTarget(config.directory)


# --- progress ------------------------------------------------------------------------------


class Progress:
    """One line rewritten in place on a terminal (stderr by default); silent otherwise, where
    the log has a line per object instead."""

    def __init__(self, stream: TextIO | None = None, *, enabled: bool | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = bool(getattr(self.stream, "isatty", lambda: False)()) if enabled is None else enabled
        self._last = 0.0
        self._width = 0

    def show(self, text: str, *, force: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (not force and now - self._last < 0.1):
            return
        self._last = now
        self.stream.write("\r" + text.ljust(self._width))
        self._width = len(text)
        self.stream.flush()

    def done(self) -> None:
        if self.enabled and self._width:
            self.stream.write("\n")
            self.stream.flush()
            self._width = 0


# --- the run -------------------------------------------------------------------------------


class _Faults:
    def __init__(self, spec: str | None) -> None:
        self.stage, self.at, self.seen = None, 0, 0
        if spec:
            stage, _, n = spec.partition(":")
            if stage not in FAULT_STAGES or not n.isdigit():
                raise ValueError(f"{FAULT_ENV}={spec!r}: use <stage>:<n>, stage one of {', '.join(FAULT_STAGES)}")
            self.stage, self.at = stage, int(n)

    def reached(self, stage: str) -> None:
        if stage != self.stage:
            return
        self.seen += 1
        if self.seen == self.at:
            sys.stderr.write(f"archive: fault injection: stopped {stage} #{self.seen}\n")
            sys.stderr.flush()
            while True:  # until the test kills the process
                time.sleep(3600)


def _to_table(rows: list[tuple[Any, ...]]) -> pa.Table:
    columns = list(zip(*rows, strict=True))
    return pa.Table.from_arrays([pa.array(col, type=f.type) for col, f in zip(columns, SCHEMA, strict=True)],
                                schema=SCHEMA)


@dataclass
class _Run:
    conn: psycopg.Connection[Any]
    config: ArchiveConfig
    target: Target
    report: ArchiveReport
    progress: Progress
    stop: Callable[[], bool]
    faults: _Faults
    engine: str = "postgresql"
    label: str = ""

    def check_stop(self) -> None:
        if self.stop():
            raise Stopped

    def export(self, group: dict[str, Any], path: Path) -> tuple[int, Decimal]:
        """Write the app-day's events to `path`; returns (rows, id checksum) of one snapshot,
        (0, 0) when the app-day has no events any more."""
        written = 0
        with self.conn.transaction():
            # The count, the checksum and the rows come from one snapshot: what the ledger
            # records is exactly what the file holds.
            self.conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            counted = self.conn.execute(queries.ARCHIVE_PLAN.sql, {
                "range_start": group["range_start"], "app": str(group["app_id"]), "day": group["day"],
            }).fetchone()
            expected = counted["row_count"] if counted else 0
            with pq.ParquetWriter(path, SCHEMA, compression="zstd") as writer, \
                    self.conn.cursor(name=f"mobile_analytics_archive_{os.getpid()}", row_factory=psycopg.rows.tuple_row) as cur:
                cur.execute(queries.ARCHIVE_ROWS.sql, {"app": group["fk_app"], "from": group["from_time"],
                                                       "to": group["to_time"]})
                while batch := cur.fetchmany(self.config.batch_rows):
                    writer.write_table(_to_table(batch))
                    written += len(batch)
                    self.progress.show(f"{self.label}: {written:,} of {expected:,} rows")
                    self.check_stop()
        self.progress.show(f"{self.label}: {written:,} rows", force=True)
        if written != expected:
            raise ArchiveError(f"exported {written} rows of app {group['app_id']} on {group['day']}, counted {expected}")
        return written, counted["id_checksum"] if counted else Decimal(0)

    def archive_group(self, group: dict[str, Any]) -> None:
        key = object_key(self.config.prefix, group["app_id"], group["day"], group["range_start"])
        ledger = {"range_start": group["range_start"], "app": str(group["app_id"]), "day": group["day"],
                  "target": self.target.uri, "object_key": key}
        self.conn.execute(queries.ARCHIVE_RECORD.sql, ledger | {
            "state": "pending", "row_count": None, "id_checksum": None, "byte_size": None, "sha256": None})
        self.faults.reached("after-pending")
        spooled = self.target.spool_path(key)
        try:
            rows, id_checksum = self.export(group, spooled)
            if rows == 0:  # deleted since the plan was read
                self.forget_group(group | {"target": self.target.uri, "object_key": key})
                return
            size, sha256 = _file_sha256(spooled)
            self.target.put(key, spooled, sha256, rows)
        finally:
            spooled.unlink(missing_ok=True)
        self.faults.reached("after-upload")
        self.target.verify(key, size, sha256, rows)
        self.conn.execute(queries.ARCHIVE_RECORD.sql, ledger | {
            "state": "verified", "row_count": rows, "id_checksum": id_checksum, "byte_size": size, "sha256": sha256})
        self.faults.reached("after-verify")
        self.report.objects_written += 1
        self.report.rows_written += rows
        self.report.bytes_written += size
        log.info("archived %s rows of app %s on %s to %s/%s (%s bytes)", rows, group["app_id"], group["day"],
                 self.target.uri, key, size)

    def forget_group(self, group: dict[str, Any]) -> None:
        """An app-day that has no events any more (deleted since it was archived): its object
        must not outlive them."""
        if group["target"] == self.target.uri and group["object_key"]:
            self.target.delete(group["object_key"])
            self.report.objects_deleted += 1
        elif group["object_key"]:
            log.warning("app-day %s of app %s has no events any more, but its object %s/%s is in another "
                        "target than this run's %s: delete it by hand", group["day"], group["app_id"],
                        group["target"], group["object_key"], self.target.uri)
        self.conn.execute(queries.ARCHIVE_FORGET.sql, {"range_start": group["range_start"],
                                                       "app": str(group["app_id"]), "day": group["day"]})

    def archive_chunk(self, chunk: dict[str, Any], number: int, total: int) -> None:
        plan = self.conn.execute(queries.ARCHIVE_PLAN.sql, {"range_start": chunk["range_start"], "app": None,
                                                            "day": None}).fetchall()
        for i, group in enumerate(plan, 1):
            self.check_stop()
            self.label = (f"archive chunk {number}/{total} ({chunk['range_start']:%Y-%m-%d %H:%M}), "
                          f"object {i}/{len(plan)}")
            self.progress.show(self.label, force=True)
            if group["row_count"] == 0:
                self.forget_group(group)
            elif group["matched"]:
                self.report.objects_skipped += 1
            else:
                self.archive_group(group)
        self.report.chunks += 1
        if not self.config.drop:
            return
        self.check_stop()
        if self.engine == "timescaledb":
            # fn_apply_retention drops a chunk only when the continuous aggregates hold all
            # of it; refreshing cannot happen inside that function.
            self.conn.execute(queries.REFRESH_ROLLUPS.sql)
        for row in self.conn.execute(queries.APPLY_RETENTION.sql, {"range_start": chunk["range_start"]}).fetchall():
            self.report.retention.append(dict(row))
            log.info("retention: chunk %s: %s%s", row["range_start"], row["action"],
                     f" ({row['detail']})" if row["detail"] else "")


def run_archive(conn: psycopg.Connection[Any], config: ArchiveConfig, *, stop: Callable[[], bool] | None = None,
                progress: Progress | None = None, target: Target | None = None) -> ArchiveReport:
    """Archive every expired chunk, then drop it (config.drop). `conn` must be in autocommit.

    Returns what was done; raises ArchiveError (after committing what verified) when an object
    cannot be written or does not verify. `stop` is polled between batches and objects."""
    report = ArchiveReport()
    run = _Run(conn, config, target or make_target(config), report, progress or Progress(),
               stop or (lambda: False), _Faults(os.environ.get(FAULT_ENV)))
    previous_factory = conn.row_factory
    conn.row_factory = dict_row  # type: ignore[assignment]
    try:
        if not conn.execute(queries.ARCHIVE_LOCK.sql, {"key": ARCHIVE_LOCK_KEY}).fetchone()["locked"]:
            log.info("another archive is running; this one stops")
            report.locked_out = True
            return report
        try:
            run.engine = conn.execute(queries.ENGINE.sql).fetchone()["engine"]
            if run.engine == "postgresql":
                # Rows in the default partition have no chunk until maintenance moves them.
                conn.execute(queries.CREATE_PARTITIONS.sql)
            chunks = [c for c in conn.execute(queries.RETENTION_STATUS.sql, {"details": False}).fetchall()
                      if c["expired"]]
            for number, chunk in enumerate(chunks, 1):
                run.archive_chunk(chunk, number, len(chunks))
        except Stopped:
            report.stopped = True
            log.info("archive stopped on request; the next run goes on from here")
        finally:
            run.progress.done()
            conn.execute(queries.ARCHIVE_UNLOCK.sql, {"key": ARCHIVE_LOCK_KEY})
    finally:
        conn.row_factory = previous_factory
    return report


def run_archive_url(conninfo: str, config: ArchiveConfig, *, stop: threading.Event | None = None,
                    progress: Progress | None = None) -> ArchiveReport:
    """run_archive on a connection of its own (prepared statements off: the WASM test engine
    shares one session between connections)."""
    with psycopg.connect(conninfo, autocommit=True, prepare_threshold=None) as conn:
        return run_archive(conn, config, stop=stop.is_set if stop is not None else None, progress=progress)
