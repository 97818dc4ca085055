"""`mobile-analytics serve` with no database URL: the embedded cluster, end to end, as a subprocess.

Runs as whoever runs the tests: as root (CI) the cluster runs as an unprivileged user, which
is what the first case proves works; the second case runs `serve` itself as `nobody`, i.e.
as a normal user (only when the tests run as root, which can switch users).
"""

from __future__ import annotations

import os
import pwd
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.server_fixtures import SEED_TRACK_EVENTS

REPO = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Serve:
    """A `mobile-analytics serve` process and the banner it printed."""

    def __init__(self, data_dir: Path, log: Path, user: str | None = None) -> None:
        self.port = _free_port()
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "MOBILE_ANALYTICS_ADMIN_TOKEN")}
        env["PYTHONPATH"] = str(REPO)  # this checkout's pywrap, whatever is installed
        self.log = log
        with open(log, "ab") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "pywrap.cli", "serve", "--port", str(self.port), "--data-dir", str(data_dir)],
                stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL, text=True, env=env, cwd=REPO,
                user=user, group=pwd.getpwnam(user).pw_gid if user else None, extra_groups=[] if user else None)
        self.banner = self._read_banner()
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=30)

    def _read_banner(self, timeout: float = 90) -> dict[str, str]:
        lines: queue.Queue[str | None] = queue.Queue()

        def pump() -> None:
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=pump, daemon=True).start()
        banner: dict[str, str] = {}
        deadline = time.monotonic() + timeout
        while "admin token" not in banner:
            try:
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                line = None
            if line is None:
                self.proc.kill()
                pytest.fail(f"serve printed no banner; its log:\n{self.log.read_text()[-4000:]}")
            label, _, value = line.strip().partition("  ")
            banner[label.strip()] = value.strip()
        return banner

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.client.get("/readyz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert self.proc.poll() is None, self.log.read_text()[-4000:]
            assert time.monotonic() < deadline, "never ready"
            time.sleep(0.1)

    def stop(self) -> int:
        self.client.close()
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=60)


@pytest.mark.parametrize("user", [None, "nobody"], ids=["as-this-user", "as-nobody"])
def test_serve_embedded_default(user):
    if user is not None:
        if os.geteuid() != 0:
            pytest.skip("switching to another user needs root")
        try:
            subprocess.run([sys.executable, "-c", "import pywrap"], user=user, cwd=REPO, env={"PYTHONPATH": str(REPO)},
                           check=True, capture_output=True)
        except (OSError, subprocess.CalledProcessError):
            pytest.skip(f"user {user} cannot run this interpreter or read the checkout ({sys.executable})")
    # Under the system temp dir, not pytest's tmp_path: the cluster's user must reach it.
    data_dir = Path(tempfile.mkdtemp(prefix="ma-serve-"))
    log = Path(tempfile.mkdtemp(prefix="ma-serve-log-")) / "serve.log"
    if user is not None:
        entry = pwd.getpwnam(user)
        for path in (data_dir, log.parent):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    first = second = None
    try:
        first = Serve(data_dir, log, user)
        write_key = first.banner["write key"]
        assert first.banner["demo app"] == "demo" and write_key.startswith("maw_")
        assert "(embedded, started" in first.banner["database"]
        first.wait_ready()
        seed = SEED_TRACK_EVENTS.replace('"app123"', '"demo"')
        response = first.client.post("/graphql", json={"query": seed}, headers={"X-API-Key": write_key})
        assert response.json() == {"data": {"trackEvents": {"success": True, "eventCount": 3}}}
        assert first.stop() == 0
        assert not (data_dir / "pgdata" / "postmaster.pid").exists(), "the cluster was not stopped"

        # A second start reuses the cluster: same demo app and keys, the events are still there.
        second = Serve(data_dir, log, user)
        assert second.banner["write key"] == write_key
        second.wait_ready()
        query = '{ app(appId: "demo") { identifier apiKeys { kind active } } }'
        body = second.client.post("/graphql", json={"query": query},
                                  headers={"Authorization": f"Bearer {second.banner['admin token']}"}).json()
        assert body["data"]["app"]["identifier"] == "demo"
        retry = second.client.post("/graphql", json={"query": seed.replace("page_view", "page_view2")},
                                   headers={"X-API-Key": write_key})
        assert retry.json()["data"]["trackEvents"]["eventCount"] == 3
        assert second.stop() == 0
    finally:
        for serve in (first, second):
            if serve is not None and serve.proc.poll() is None:
                serve.proc.kill()
        _stop_leftover_cluster(data_dir / "pgdata")
        shutil.rmtree(data_dir, ignore_errors=True)
        shutil.rmtree(log.parent, ignore_errors=True)


def _stop_leftover_cluster(pgdata: Path) -> None:
    """After a failure: the cluster runs in a session of its own and would outlive the test."""
    try:
        pid = int((pgdata / "postmaster.pid").read_text().splitlines()[0])
        os.kill(pid, signal.SIGINT)  # fast shutdown
    except (OSError, ValueError, IndexError):
        return
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
