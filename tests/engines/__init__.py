"""Database engines for the test suite.

Two engines, both started per test run and stopped explicitly:

* ``start_postgres(base_dir)`` -- a private PostgreSQL (>= 15) cluster run through
  pytest-postgresql's ``PostgreSQLExecutor`` (pg_ctl). Several connections, real server.
  When running as root, pg_ctl/initdb are run as the ``postgres`` OS user through the
  checked-in wrapper ``tests/engines/pg_ctl_as_postgres``.
* ``start_timescale_wasm(base_dir)`` -- the TimescaleDB (Timescale License) WASM build
  (PGlite + timescaledb-tsl) served over the PostgreSQL wire protocol by
  ``tests/engines/timescale/server.mjs``. ONE connection at a time; see RunningEngine.

Plain module: ``from tests.engines import start_postgres, start_timescale_wasm, RunningEngine``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "EngineStartError",
    "RunningEngine",
    "find_pg_ctl",
    "start_postgres",
    "start_timescale_wasm",
]

ENGINES_DIR = Path(__file__).resolve().parent
PG_CTL_WRAPPER = ENGINES_DIR / "pg_ctl_as_postgres"
TIMESCALE_DIR = ENGINES_DIR / "timescale"
MIN_PG_MAJOR = 15

HOST = "127.0.0.1"
PG_START_TIMEOUT = 60
WASM_READY_TIMEOUT = 60.0
WASM_STOP_GRACE = 10.0
NPM_CI_TIMEOUT = 600


class EngineStartError(RuntimeError):
    """An engine could not be started (message includes the tail of its log)."""


def _quote_conninfo_value(value: object) -> str:
    s = str(value)
    if s and re.fullmatch(r"[A-Za-z0-9_.:/@+-]+", s):
        return s
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


@dataclass
class RunningEngine:
    """A started database engine; call ``stop()`` when done (idempotent).

    ``name`` is ``"postgresql"`` or ``"timescaledb"``.

    For the TimescaleDB WASM engine (``name == "timescaledb"``, ``single_connection`` True):
    the server accepts ONE client connection at a time -- a second concurrent connection is
    refused. Use a single connection, no pool, no concurrent transactions. After a connection
    is closed the server frees the slot asynchronously, so the next connect can be refused
    for a moment: open connections with ``connect()`` (retries up to 10 s) or probe with
    ``wait_connectable()``. Also unsupported there: COPY FROM STDIN (crashes the instance),
    background workers (run policies with ``CALL run_job(id)``), other extensions,
    ``statement_timeout``.
    """

    name: str
    host: str
    port: int
    user: str
    password: str | None = None
    single_connection: bool = False
    data_dir: Path | None = None
    log_file: Path | None = None
    pid: int | None = None
    conninfo_extra: dict[str, str] = field(default_factory=dict)
    _stop: Callable[[], None] | None = field(default=None, repr=False)

    def conninfo(self, dbname: str = "postgres") -> str:
        """libpq conninfo string for ``dbname`` on this engine."""
        params: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "dbname": dbname,
        }
        if self.password is not None:
            params["password"] = self.password
        params.update(self.conninfo_extra)
        return " ".join(f"{k}={_quote_conninfo_value(v)}" for k, v in params.items())

    def connect(
        self, dbname: str = "postgres", timeout: float = 10.0, **kwargs: Any
    ) -> psycopg.Connection[Any]:
        """Open a psycopg connection, retrying refused/failed connects for up to ``timeout`` s.

        Extra keyword arguments go to ``psycopg.connect`` (e.g. ``autocommit=True``).
        """
        import psycopg

        deadline = time.monotonic() + timeout
        delay = 0.05
        while True:
            try:
                return psycopg.connect(self.conninfo(dbname), connect_timeout=5, **kwargs)
            except psycopg.OperationalError:
                if time.monotonic() + delay > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 0.5)

    def wait_connectable(self, dbname: str = "postgres", timeout: float = 10.0) -> None:
        """Retry connecting (connect + ``select 1`` + close) for up to ``timeout`` s.

        Raises the last ``psycopg.OperationalError`` if it never succeeds. On the single-
        connection WASM engine the probe's own slot is again released asynchronously; to
        get a connection to use, call ``connect()``, which retries the same way.
        """
        with self.connect(dbname, timeout=timeout, autocommit=True) as conn:
            conn.execute("select 1")

    def stop(self) -> None:
        """Stop the engine and remove its temporary files (safe to call twice)."""
        stop, self._stop = self._stop, None
        if stop is not None:
            stop()


# --------------------------------------------------------------------------------------
# helpers


def _free_port(host: str = HOST) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _tail(path: Path | None, lines: int = 40) -> str:
    if path is None:
        return ""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


def _pg_ctl_major(pg_ctl: Path) -> int | None:
    try:
        out = subprocess.run(
            [str(pg_ctl), "--version"], capture_output=True, text=True, timeout=10, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r"\(PostgreSQL\)\s+(\d+)", out)
    return int(m.group(1)) if m else None


def find_pg_ctl() -> Path:
    """The real pg_ctl: ``$MA_PG_CTL`` if set, else the highest PostgreSQL >= 15 found in
    ``/usr/lib/postgresql/*/bin`` or ``pg_config --bindir``. Same rule as the shell wrapper."""
    override = os.environ.get("MA_PG_CTL")
    if override:
        return Path(override)
    candidates: list[Path] = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            bindir = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            ).stdout.strip()
            if bindir:
                candidates.append(Path(bindir) / "pg_ctl")
    best: tuple[int, Path] | None = None
    for cand in candidates:
        if not os.access(cand, os.X_OK):
            continue
        major = _pg_ctl_major(cand)
        if major is not None and major >= MIN_PG_MAJOR and (best is None or major > best[0]):
            best = (major, cand)
    if best is None:
        raise EngineStartError(
            f"no PostgreSQL >= {MIN_PG_MAJOR} pg_ctl found in /usr/lib/postgresql/*/bin or "
            "`pg_config --bindir` (install postgresql-15, or set MA_PG_CTL)"
        )
    return best[1]


# --------------------------------------------------------------------------------------
# PostgreSQL


def start_postgres(base_dir: Path, *, durable: bool = False) -> RunningEngine:
    """Start a private PostgreSQL >= 15 cluster on a free 127.0.0.1 port (trust auth, user
    ``postgres``; fsync off unless ``durable``, which keeps the server's crash-safe defaults,
    as benchmarks want). Its files live in a fresh temporary directory -- under the
    system temp dir, chowned to ``postgres``, when running as root (``base_dir`` is then
    typically not reachable by that user); under ``base_dir`` otherwise.
    """
    from mirakuru.exceptions import AlreadyRunning
    from pytest_postgresql.executors.proc import PostgreSQLExecutor

    as_root = os.geteuid() == 0
    if as_root:
        import pwd

        pw = pwd.getpwnam("postgres")  # KeyError: postgresql server package not installed
        if shutil.which("runuser") is None:
            raise EngineStartError("running as root needs `runuser` (util-linux)")
        find_pg_ctl()  # fail early with a clear message; the wrapper applies the same rule
        executable = str(PG_CTL_WRAPPER)
        work = Path(tempfile.mkdtemp(prefix="ma-pg-"))
        os.chown(work, pw.pw_uid, pw.pw_gid)
    else:
        executable = str(find_pg_ctl())
        base_dir = Path(base_dir).resolve()
        base_dir.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix="pg-", dir=base_dir))
        if len(str(work)) > 70:  # unix socket paths are limited to ~107 bytes
            shutil.rmtree(work)
            work = Path(tempfile.mkdtemp(prefix="ma-pg-"))

    datadir = work / "data"
    sockdir = work / "sock"
    logfile = work / "postgresql.log"
    sockdir.mkdir()
    if as_root:
        os.chown(sockdir, pw.pw_uid, pw.pw_gid)

    def make_executor(port: int) -> PostgreSQLExecutor:
        return PostgreSQLExecutor(
            executable=executable,
            host=HOST,
            port=port,
            datadir=str(datadir),
            unixsocketdir=str(sockdir),
            logfile=str(logfile),
            startparams="-w",
            dbname="postgres",
            user="postgres",
            password=None,  # -> initdb --auth=trust
            timeout=PG_START_TIMEOUT,
            postgres_options=(
                f"-c listen_addresses={HOST} -c max_connections=100"
                # pytest-postgresql always passes -F (fsync off); a later -c fsync=on wins
                + (" -c fsync=on" if durable else " -c fsync=off -c synchronous_commit=off -c full_page_writes=off")
            ),
        )

    def cleanup(executor: PostgreSQLExecutor) -> None:
        if executor.running():
            return  # never delete the files of a server still running
        shutil.rmtree(work, ignore_errors=True)

    attempts = 3
    for attempt in range(1, attempts + 1):
        port = _free_port()
        executor = make_executor(port)
        try:
            executor.start()
            break
        except AlreadyRunning:
            # Someone grabbed the port between _free_port() and listen: try another one.
            if attempt == attempts:
                cleanup(executor)
                raise EngineStartError(
                    f"PostgreSQL: ports kept being taken ({attempts} attempts)"
                ) from None
        except Exception as exc:
            log = _tail(logfile)
            with contextlib.suppress(Exception):
                if executor.running():
                    executor.stop()
            cleanup(executor)
            raise EngineStartError(
                f"PostgreSQL failed to start via {executable} on port {port}: "
                f"{type(exc).__name__}: {exc}\n--- {logfile} ---\n{log}"
            ) from exc

    def stop() -> None:
        try:
            executor.stop()
        finally:
            cleanup(executor)

    return RunningEngine(
        name="postgresql",
        host=HOST,
        port=port,
        user="postgres",
        password=None,
        single_connection=False,
        data_dir=datadir,
        log_file=logfile,
        pid=None,
        conninfo_extra={},
        _stop=stop,
    )


# --------------------------------------------------------------------------------------
# TimescaleDB (Timescale License) WASM


def _ensure_node_modules() -> None:
    """Run ``npm ci`` in tests/engines/timescale if its node_modules is missing."""
    marker = TIMESCALE_DIR / "node_modules" / "@electric-sql" / "pglite-socket" / "package.json"
    if marker.exists():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise EngineStartError(
            f"{TIMESCALE_DIR}/node_modules is missing and `npm` is not on PATH; "
            "install Node.js >= 20 with npm, then run `npm ci` there"
        )
    lock_path = Path(tempfile.gettempdir()) / "mobile-analytics-npm-ci.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel test workers: one npm ci at a time
        if marker.exists():
            return
        try:
            proc = subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund"],
                cwd=TIMESCALE_DIR,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=NPM_CI_TIMEOUT,
            )
        except subprocess.TimeoutExpired as exc:
            raise EngineStartError(
                f"`npm ci` in {TIMESCALE_DIR} timed out after {NPM_CI_TIMEOUT} s"
            ) from exc
        if proc.returncode != 0 or not marker.exists():
            out = "\n".join((proc.stdout + proc.stderr).splitlines()[-30:])
            raise EngineStartError(
                f"`npm ci` in {TIMESCALE_DIR} failed (exit {proc.returncode}); "
                f"the TimescaleDB WASM engine cannot start:\n{out}"
            )


def _terminate(proc: subprocess.Popen[bytes], grace: float = WASM_STOP_GRACE) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait(timeout=grace)
    if proc.stdin is not None:
        with contextlib.suppress(OSError):
            proc.stdin.close()


def start_timescale_wasm(base_dir: Path) -> RunningEngine:
    """Start the TimescaleDB WASM build as a wire-protocol server on 127.0.0.1.

    Data persists in ``base_dir/timescaledb-data`` (reused if present), server output goes to
    ``base_dir/timescaledb-server.log``. Runs ``npm ci`` first if node_modules is missing.
    Connect as user ``postgres`` with password ``x`` (any password; libpq needs one) and
    ``sslmode=disable``. ONE connection at a time: see ``RunningEngine``.
    """
    node = shutil.which("node")
    if node is None:
        raise EngineStartError("`node` (Node.js >= 20) is not on PATH")
    _ensure_node_modules()

    base_dir = Path(base_dir).resolve()
    base_dir.mkdir(parents=True, exist_ok=True)
    data_dir = base_dir / "timescaledb-data"
    log_file = base_dir / "timescaledb-server.log"

    env = dict(os.environ, MA_EXIT_ON_STDIN_EOF="1")  # dies with us even if we are SIGKILLed
    with open(log_file, "wb") as log:
        proc = subprocess.Popen(
            # port 0: the server binds a free port and reports it on its READY line (no race)
            [node, str(TIMESCALE_DIR / "server.mjs"), str(data_dir), "0"],
            cwd=TIMESCALE_DIR,
            stdin=subprocess.PIPE,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )

    ready = re.compile(rb"^READY (\S+):(\d+)\s*$", re.MULTILINE)
    deadline = time.monotonic() + WASM_READY_TIMEOUT
    port: int | None = None
    while True:
        m = ready.search(log_file.read_bytes())
        if m:
            port = int(m.group(2))
            break
        if proc.poll() is not None:
            raise EngineStartError(
                f"TimescaleDB WASM server exited with {proc.returncode} before READY\n"
                f"--- {log_file} ---\n{_tail(log_file)}"
            )
        if time.monotonic() > deadline:
            _terminate(proc)
            raise EngineStartError(
                f"TimescaleDB WASM server not READY within {WASM_READY_TIMEOUT:.0f} s\n"
                f"--- {log_file} ---\n{_tail(log_file)}"
            )
        time.sleep(0.05)

    return RunningEngine(
        name="timescaledb",
        host=HOST,
        port=port,
        user="postgres",
        password="x",
        single_connection=True,
        data_dir=data_dir,
        log_file=log_file,
        pid=proc.pid,
        conninfo_extra={"sslmode": "disable"},
        _stop=lambda: _terminate(proc),
    )
