"""End-to-end ingestion over HTTP: trackEvents through real uvicorn servers, next to
fn_track_events called directly and raw COPY, in the same run and the same database.

    .venv/bin/python -m bench.http_ingest [--events N] [--clients C] [--workers W] [--pool-size P]
                                          [--direct-conns N] [--paced-share S] [--log-level L]
                                          [--fast] [--profile [--profile-out FILE]]

On demand only, never part of the test suite. It starts a private PostgreSQL cluster
(tests.engines.start_postgres, crash-safe settings unless --fast), migrates it, creates an
app, then W server processes `mobile-analytics serve --database-url ... --port P --no-migrate`
on 127.0.0.1, one port each (what a load balancer in front of W processes would see).
Every client is its own process with one keep-alive httpx connection, pinned to server
(client % W), and sends the typed document

    mutation Track($appId: ID!, $events: [EventInput!]!, $sentAt: DateTime) { trackEvents(...) }

with 500 camelCase events per request and the app's write key in X-API-Key. Request bodies
are serialized before the clock starts. All variants send the SAME events (bench.ingest's
generator and batches) into the same truncated table:

1. COPY (ceiling) and fn_track_events called directly: bench.ingest's runners, unchanged.
2. HTTP, closed loop: C clients send back to back; events/s = events / wall time. The
   service time of each request is recorded too (latency at saturation).
3. HTTP, open loop at a fraction (default 1/2) of phase 2's rate: batch j is due at
   t0 + j * 500 / rate, client j % C sends it, and its latency is counted from when it was
   DUE, not from when it was sent, so a slow response that delays the next send is not
   hidden (coordinated omission).

Each phase is verified (HTTP 200, no GraphQL errors, accepted == sent, no duplicates or
rejections, stored rows == events sent, and the stored events' fingerprint equal to the
direct run's), so a broken run fails instead of printing a fast number. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import psycopg

from bench import ingest
from bench.ingest import BATCH_SIZE, WARMUP_BATCHES, Batch, Variant

TARGET_EPS = 25_000  # issue 5 item 10: half of the ~50k events/s COPY ceiling on this 2-core machine
TARGET_P99_MS = 100.0  # per 500-event batch, at half of the maximum rate
CLIENT_TIMEOUT = 120.0
PHASE_TIMEOUT = 900.0
LATE_MS = 5.0  # an open-loop send this much behind schedule counts as late

DOCUMENT = (
    "mutation Track($appId: ID!, $events: [EventInput!]!, $sentAt: DateTime) {"
    " trackEvents(appId: $appId, events: $events, sentAt: $sentAt) {"
    " success eventCount duplicateCount clampedCount rejected { index code message } } }"
)

# bench.ingest's events use fn_track_events' snake_case keys; the GraphQL input is camelCase.
_CAMEL = {"event_id": "eventId", "user_id": "userId", "anonymous_id": "anonymousId",
          "session_id": "sessionId", "os_version": "osVersion", "app_version": "appVersion"}


def camel_event(event: dict[str, Any]) -> dict[str, Any]:
    """One event as an SDK sends it to trackEvents (metadata is free-form: left as it is)."""
    out = {_CAMEL.get(k, k): v for k, v in event.items()}
    if "device" in out:
        out["device"] = {_CAMEL.get(k, k): v for k, v in event["device"].items()}
    return out


def http_bodies(batches: Sequence[Batch], app_id: str) -> list[tuple[bytes, int]]:
    """(request body, events in it) per batch, as an SDK would POST it."""
    return [
        (json.dumps({"query": DOCUMENT, "operationName": "Track",
                     "variables": {"appId": app_id, "events": [camel_event(e) for e in b.events],
                                   "sentAt": b.sent_at.isoformat()}}).encode(), len(b.events))
        for b in batches
    ]


def check_same_json(batches: Sequence[Batch]) -> None:
    """The server's fast path must turn the camelCase events back into exactly the JSON that
    the direct runner sends, or the two variants would not do the same database work."""
    from pywrap.events import from_variable

    for b in batches:
        mapped = from_variable([camel_event(e) for e in b.events], "events")
        if json.dumps(mapped) != json.dumps(b.events):
            raise RuntimeError("camelCase events do not map back to the direct runner's JSON")


# --------------------------------------------------------------------------------------
# client processes


@dataclass
class ClientPlan:
    base_url: str
    api_key: str
    warmup: list[tuple[bytes, int]]
    timed: list[tuple[bytes, int]]
    period: float | None = None  # open loop: seconds between this client's sends
    offset: float = 0.0  # open loop: this client's first send, seconds after t0


def _post(client: Any, body: bytes, n: int, tally: Counter, problems: list[str]) -> None:
    """One trackEvents request; its outcome is added to `tally`, the first problems kept."""
    try:
        response = client.post("/graphql", content=body)
    except Exception as exc:  # noqa: BLE001 - any transport failure fails the run, after it ends
        tally["transport_errors"] += 1
        problems.append(f"transport: {exc!r}")
        return
    if response.status_code != 200:
        tally["http_errors"] += 1
        problems.append(f"HTTP {response.status_code}: {response.text[:300]}")
        return
    answer = response.json()
    if answer.get("errors"):
        tally["graphql_errors"] += len(answer["errors"])
        problems.append(f"GraphQL errors: {json.dumps(answer['errors'])[:300]}")
    result = (answer.get("data") or {}).get("trackEvents")
    if not result or not result["success"]:
        tally["failed_batches"] += 1
        return
    tally["accepted"] += result["eventCount"]
    tally["duplicates"] += result["duplicateCount"]
    tally["clamped"] += result["clampedCount"]
    tally["rejected"] += len(result["rejected"])
    tally["sent"] += n
    if result["rejected"]:
        problems.append(f"rejected: {json.dumps(result['rejected'][:3])}")


def _client(plan: ClientPlan, ready: Any, go: Any, start: Any, results: Any) -> None:
    try:
        import httpx

        problems: list[str] = []
        with httpx.Client(base_url=plan.base_url, timeout=CLIENT_TIMEOUT,
                          headers={"Content-Type": "application/json", "X-API-Key": plan.api_key},
                          limits=httpx.Limits(max_connections=1, max_keepalive_connections=1)) as client:
            warm: Counter = Counter()
            for body, n in plan.warmup:
                _post(client, body, n, warm, problems)
            if problems:
                raise RuntimeError("warm-up failed: " + problems[0])
            ready.wait(PHASE_TIMEOUT)
            if not go.wait(PHASE_TIMEOUT):
                raise TimeoutError("never told to start")
            t0 = start.value
            tally: Counter = Counter()
            due_ms: list[float] = []  # open loop: done - due (what a device waits)
            service_ms: list[float] = []  # done - sent
            lateness_ms: list[float] = []  # open loop: sent - due
            cpu0 = time.process_time()
            first_send = None
            for k, (body, n) in enumerate(plan.timed):
                due = None
                if plan.period is not None:
                    due = t0 + plan.offset + k * plan.period
                    wait = due - time.monotonic()
                    if wait > 0:
                        time.sleep(wait)
                sent = time.monotonic()
                first_send = sent if first_send is None else first_send
                _post(client, body, n, tally, problems)
                done = time.monotonic()
                service_ms.append((done - sent) * 1000)
                if due is not None:
                    due_ms.append((done - due) * 1000)
                    lateness_ms.append((sent - due) * 1000)
            cpu = time.process_time() - cpu0
        results.put({"ok": True, "tally": dict(tally), "problems": problems[:5], "first_send": first_send,
                     "last_done": done, "service_ms": service_ms, "due_ms": due_ms, "lateness_ms": lateness_ms,
                     "cpu_s": cpu, "maxrss_kib": ingest._peak_rss_kib()})
    except BaseException:
        results.put({"ok": False, "error": traceback.format_exc()})
        ready.abort()


# --------------------------------------------------------------------------------------
# servers and CPU accounting


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Servers:
    """W `mobile-analytics serve` processes, one port each, started and stopped by the bench."""

    procs: list[subprocess.Popen]
    ports: list[int]
    logs: list[Path]

    @classmethod
    def start(cls, database_url: str, workers: int, pool_size: int, log_level: str, log_dir: Path) -> Servers:
        exe = Path(sys.executable).with_name("mobile-analytics")
        command = [str(exe)] if exe.exists() else [sys.executable, "-m", "pywrap.cli"]
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("MOBILE_ANALYTICS_") and k != "DATABASE_URL"}
        env |= {"MOBILE_ANALYTICS_POOL_MIN": str(pool_size), "MOBILE_ANALYTICS_LOG_LEVEL": log_level}
        servers = cls([], [], [])
        try:
            for w in range(workers):
                port = _free_port()
                log = log_dir / f"server-{w}.log"
                with log.open("wb") as sink:
                    servers.procs.append(subprocess.Popen(
                        [*command, "serve", "--database-url", database_url, "--port", str(port),
                         "--pool-size", str(pool_size), "--no-migrate"],
                        env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True))
                servers.ports.append(port)
                servers.logs.append(log)
            servers.wait_ready()
        except BaseException:
            servers.stop()
            raise
        return servers

    def url(self, client: int) -> str:
        return f"http://127.0.0.1:{self.ports[client % len(self.ports)]}"

    def wait_ready(self, timeout: float = 60.0) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        for w, proc in enumerate(self.procs):
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"server {w} exited ({proc.returncode}):\n{self.tail(w)}")
                try:
                    if httpx.get(self.url(w) + "/readyz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"server {w} never became ready:\n{self.tail(w)}")
                time.sleep(0.1)

    def tail(self, w: int, lines: int = 20) -> str:
        try:
            return "\n".join(self.logs[w].read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def check_alive(self) -> None:
        for w, proc in enumerate(self.procs):
            if proc.poll() is not None:
                raise RuntimeError(f"server {w} died ({proc.returncode}):\n{self.tail(w)}")

    def log_levels(self) -> Counter:
        """How many lines of each level the servers logged (warnings or errors mean trouble)."""
        levels: Counter = Counter()
        for log in self.logs:
            for line in log.read_text(errors="replace").splitlines():
                found = re.search(r'"level": "(\w+)"', line)
                levels[found.group(1) if found else "not JSON (start-up banner)"] += 1
        return levels

    def stop(self) -> list[int]:
        """SIGTERM (graceful: in-flight requests finish, the pool closes); the exit codes."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return [proc.returncode for proc in self.procs]


def _proc_cpu(proc: psutil.Process, with_children: bool = False) -> float:
    try:
        t = proc.cpu_times()
        return t.user + t.system + ((t.children_user + t.children_system) if with_children else 0.0)
    except psutil.Error:
        return 0.0


class CpuMeter:
    """CPU seconds of the server processes, of PostgreSQL (postmaster, its live children, and
    the reaped ones through the postmaster's children times) and of the whole machine."""

    def __init__(self, server_pids: list[int], postmaster_pid: int) -> None:
        self.servers = [psutil.Process(pid) for pid in server_pids]
        self.postmaster = psutil.Process(postmaster_pid)

    def _pg(self) -> float:
        try:
            children = self.postmaster.children()
        except psutil.Error:
            children = []
        return _proc_cpu(self.postmaster, with_children=True) + sum(_proc_cpu(c) for c in children)

    def snapshot(self) -> dict[str, Any]:
        machine = psutil.cpu_times()
        return {"t": time.monotonic(), "servers": [_proc_cpu(p) for p in self.servers], "pg": self._pg(),
                # guest time is already part of user time on Linux: not summed twice
                "busy": sum(getattr(machine, f, 0.0) for f in ("user", "nice", "system", "irq", "softirq", "steal")),
                "rss": [self._rss(p) for p in self.servers]}

    @staticmethod
    def _rss(proc: psutil.Process) -> int:
        try:
            return proc.memory_info().rss
        except psutil.Error:
            return 0

    def peak_rss_kib(self) -> list[int]:
        out = []
        for p in self.servers:
            try:
                text = Path(f"/proc/{p.pid}/status").read_text()
                out.append(int(re.search(r"VmHWM:\s+(\d+)", text).group(1)))  # type: ignore[union-attr]
            except (OSError, AttributeError):
                out.append(0)
        return out


@dataclass
class Usage:
    """CPU seconds used during a phase (and the servers' RSS at its end)."""

    wall: float
    servers: list[float]
    pg: float
    machine: float
    server_rss: list[int]

    @classmethod
    def between(cls, a: dict[str, Any], b: dict[str, Any]) -> Usage:
        return cls(b["t"] - a["t"], [y - x for x, y in zip(a["servers"], b["servers"], strict=True)],
                   b["pg"] - a["pg"], b["busy"] - a["busy"], b["rss"])


# --------------------------------------------------------------------------------------
# phases


@dataclass
class Phase:
    label: str
    conns: int
    events: int
    seconds: float  # timed part only
    # CPU seconds spent on the timed batches: each server process, PostgreSQL, the clients,
    # and the whole machine (None where it cannot be told apart from process start-up).
    server_cpu: list[float]
    pg_cpu: float
    client_cpu: float
    machine_cpu: float | None
    server_rss: list[int] = field(default_factory=list)
    service_ms: list[float] = field(default_factory=list)
    due_ms: list[float] = field(default_factory=list)
    lateness_ms: list[float] = field(default_factory=list)
    target_rate: float | None = None

    @property
    def eps(self) -> float:
        return self.events / self.seconds

    @property
    def batches(self) -> int:
        return -(-self.events // BATCH_SIZE)

    def pct(self, cpu_s: float) -> float:
        """CPU seconds as % of one core over the timed part: 200 = both cores of this machine."""
        return cpu_s / self.seconds * 100

    def per_batch_ms(self, cpu_s: float) -> float:
        return cpu_s / self.batches * 1000


FINGERPRINT_SQL = """
SELECT count(*), md5(string_agg(row_text, E'\\n' ORDER BY row_text))
FROM (SELECT concat_ws('|', client_event_id, event_type, user_id, anonymous_id, session_id, path, label,
                       duration_ms, device::text, metadata::text) AS row_text
      FROM analytics.tb_event) AS stored
"""


def fingerprint(admin: psycopg.Connection) -> tuple[int, str]:
    """What was stored, minus server-made values (ids of id-less events, received_at, skew-corrected time)."""
    return admin.execute(FINGERPRINT_SQL).fetchone()  # type: ignore[return-value]


def run_direct(ctx, admin, conninfo: str, app: dict, meter: CpuMeter, variant: Variant,
               warmup: list, timed: list, n_events: int) -> Phase:
    """A bench.ingest variant (truncate, warm up, run, verify), with CPU accounting around it.
    PostgreSQL's CPU is measured over the whole variant, warm-up batches included, and scaled
    down to the timed batches."""
    ingest.truncate_all(admin)  # the previous phase's checkpoint falls outside the accounting
    before = meter.snapshot()
    seconds, stats, _rss = ingest.run_variant(ctx, admin, conninfo, app, variant, warmup, timed, n_events)
    used = Usage.between(before, meter.snapshot())
    share = len(timed) / (len(timed) + WARMUP_BATCHES * variant.conns)
    return Phase(variant.label, variant.conns, n_events, seconds, [x * share for x in used.servers],
                 used.pg * share, stats["client_cpu_s"], None, used.server_rss)


def run_http(ctx, admin, servers: Servers, meter: CpuMeter, app: dict, warmup: list, bodies: list,
             clients: int, label: str, rate: float | None = None) -> Phase:
    """C client processes against the servers; closed loop, or open loop at `rate` events/s."""
    n_events = sum(n for _, n in bodies)
    gap = BATCH_SIZE / rate if rate else None  # seconds between two batches, all clients together
    plans = [ClientPlan(servers.url(c), app["write_key"], warmup[c * WARMUP_BATCHES:(c + 1) * WARMUP_BATCHES],
                        bodies[c::clients], gap * clients if gap else None, gap * c if gap else 0.0)
             for c in range(clients)]
    ready, go, start, results = ctx.Barrier(clients + 1), ctx.Event(), ctx.Value("d", 0.0), ctx.Queue()
    ingest.truncate_all(admin)
    procs = [ctx.Process(target=_client, args=(plan, ready, go, start, results), name=f"http-client-{c}")
             for c, plan in enumerate(plans)]
    for p in procs:
        p.start()
    try:
        try:
            ready.wait(PHASE_TIMEOUT)
        except threading.BrokenBarrierError:
            outs = [results.get(timeout=PHASE_TIMEOUT) for _ in procs]
            raise RuntimeError(f"{label}: a client failed during warm-up:\n"
                               + "\n".join(o["error"] for o in outs if not o["ok"])) from None
        ingest.truncate_all(admin)  # warm-up rows out
        before = meter.snapshot()
        start.value = time.monotonic() + 0.05
        go.set()
        outs = [results.get(timeout=PHASE_TIMEOUT) for _ in procs]
        after = meter.snapshot()
    finally:
        ingest.join_workers(procs)
    ingest.raise_failed_workers(outs, label)
    servers.check_alive()
    tally: Counter = Counter()
    for o in outs:
        tally.update(o["tally"])
    problems = [p for o in outs for p in o["problems"]]
    bad = {k: tally[k] for k in ("transport_errors", "http_errors", "graphql_errors", "failed_batches",
                                 "duplicates", "rejected") if tally[k]}
    if bad or problems:
        raise RuntimeError(f"{label}: {bad}; first problems: {problems[:3]}")
    stats = {"accepted": tally["accepted"], "duplicates": tally["duplicates"], "rejected": tally["rejected"],
             "first_rejection": None}
    if tally["sent"] != n_events:
        raise RuntimeError(f"{label}: {tally['sent']} of {n_events} events acknowledged")
    ingest.verify(admin, Variant("http", label, "track", clients), stats, n_events)
    t0 = start.value if gap else min(o["first_send"] for o in outs)
    used = Usage.between(before, after)
    phase = Phase(label, clients, n_events, max(o["last_done"] for o in outs) - t0, used.servers, used.pg,
                  sum(o["cpu_s"] for o in outs), used.machine, used.server_rss, target_rate=rate)
    for o in outs:
        phase.service_ms += o["service_ms"]
        phase.due_ms += o["due_ms"]
        phase.lateness_ms += o["lateness_ms"]
    return phase


def quantile(values: Sequence[float], q: float) -> float:
    """Nearest-rank quantile (p99 of 400 batches is the 396th fastest, no interpolation)."""
    ordered = sorted(values)
    return ordered[min(len(ordered), max(1, math.ceil(round(q * len(ordered), 6)))) - 1]


# --------------------------------------------------------------------------------------
# profiling a server process (optional, after the measured phases)


def profile_server(ctx, admin, servers: Servers, meter: CpuMeter, app: dict, warmup: list, bodies: list,
                   clients: int, raw: Path) -> None:
    spy = Path(sys.executable).with_name("py-spy")
    if not spy.exists():
        print(f"--profile: {spy} not found (.venv/bin/pip install py-spy)")
        return
    proc = subprocess.Popen([str(spy), "record", "--pid", str(servers.procs[0].pid), "--rate", "200",
                             "--format", "raw", "--output", str(raw), "--nonblocking"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(1.0)
    try:
        run_http(ctx, admin, servers, meter, app, warmup, bodies, clients, "profiled (not reported)")
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    if not raw.exists():
        print(f"--profile: py-spy wrote nothing: {err.decode(errors='replace')[-500:]}")
        return
    print_profile(raw)


_BUCKETS = [  # (label, a frame containing this text), checked from the innermost frame outwards
    ("request JSON parse (json.loads in app._parse_request)", "_parse_request (pywrap/app.py"),
    ("EventInput check (events.from_variable)", "from_variable (pywrap/events.py"),
    ("batch JSON serialization (psycopg's Json dumper: json.dumps)", "psycopg/types/json.py"),
    ("query send to PostgreSQL (libpq copy + socket writes)", "_send_query_prepared (psycopg"),
    ("psycopg, other (pool, execute, results)", "psycopg"),
    ("graphql-core execute (minus the above)", "graphql/execution"),
    ("access log (logs.JsonFormatter / logging)", "logging/"),
    ("HTTP parsing/writing (h11 / uvicorn protocol)", "h11/"),
    ("uvicorn protocol", "uvicorn/protocols"),
    ("starlette routing / request body", "starlette/"),
    ("asyncio event loop", "asyncio/"),
]


def print_profile(raw: Path) -> None:
    """py-spy raw (collapsed) stacks of server 0: where its CPU went, by area and by function."""
    total = 0
    areas: Counter = Counter()
    leaves: Counter = Counter()
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        leaves[re.sub(r":\d+\)$", ")", frames[-1])] += n
        for frame in reversed(frames):
            hit = next((label for label, needle in _BUCKETS if needle in frame), None)
            if hit:
                areas[hit] += n
                break
        else:
            areas["other"] += n
    if not total:
        print("profile: no samples")
        return
    print(f"\nWhere server 0's CPU went (py-spy, {total} samples at 200 Hz, idle excluded; area = innermost "
          "matching frame):")
    for label, n in areas.most_common():
        print(f"  {n / total:6.1%}  {label}")
    print("Top functions by self time:")
    for frame, n in leaves.most_common(15):
        print(f"  {n / total:6.1%}  {frame[:150]}")
    print(f"(raw stacks: {raw})")


# --------------------------------------------------------------------------------------
# report


def _fmt_ms(values: Sequence[float]) -> str:
    if not values:
        return f"{'':>22}"
    return f"{quantile(values, 0.50):6.1f} {quantile(values, 0.95):6.1f} {quantile(values, 0.99):7.1f}"


def report(phases: list[Phase], copy: Phase, direct: Phase, best: Phase, paced: Phase, servers: Servers,
           meter: CpuMeter, setup: list[tuple[str, str]], info: list[tuple[str, str]], load: tuple) -> None:
    print()
    header = (f"{'variant':<44} {'conns':>5} {'events/s':>9} {'vs COPY':>7} {'vs fn':>6}  "
              f"{'p50':>6} {'p95':>6} {'p99':>7}  ms per 500-event batch")
    print(header)
    print("-" * len(header))
    for p in phases:
        print(f"{p.label:<44} {p.conns:>5} {p.eps:>9,.0f} {p.eps / copy.eps:>7.2f} {p.eps / direct.eps:>6.2f}  "
              f"{_fmt_ms(p.due_ms or p.service_ms)}".rstrip())
    print("(vs fn: vs fn_track_events called directly. Latency: closed loop = send -> response, i.e. at")
    print(" saturation; open loop = when the batch was DUE -> response, so client-side queueing counts.)")
    print()
    header = (f"{'CPU during the timed part':<44} {'server':>9} {'PG':>5} {'clients':>7} {'machine':>7} {'others':>6}"
              f"  {'server':>6} {'PG':>5} {'clients':>7}")
    print(f"{'':<44} {'% of one core (200 = both cores)':<39}  CPU ms per batch")
    print(header)
    print("-" * len(header))
    for p in phases:
        http = p.machine_cpu is not None
        own = sum(p.server_cpu) + p.pg_cpu + p.client_cpu
        print(f"{p.label:<44} {'+'.join(f'{p.pct(x):.0f}' for x in p.server_cpu) if http else '-':>9} "
              f"{p.pct(p.pg_cpu):>5.0f} {p.pct(p.client_cpu):>7.0f} "
              f"{f'{p.pct(p.machine_cpu):.0f}' if http else '-':>7} "
              f"{f'{p.pct(p.machine_cpu - own):.0f}' if http else '-':>6}  "
              f"{p.per_batch_ms(sum(p.server_cpu)) if http else 0:>6.1f} {p.per_batch_ms(p.pg_cpu):>5.1f} "
              f"{p.per_batch_ms(p.client_cpu):>7.1f}")
    print("(server: each server process; PG: all of PostgreSQL; machine: everything running, other sessions")
    print(" included; others = machine - server - PG - clients. Direct rows: PG measured over the whole")
    print(" variant incl. warm-up, scaled to the timed batches.)")
    print()
    p99 = quantile(paced.due_ms, 0.99)
    late = [x for x in paced.lateness_ms if x > LATE_MS]
    print(f"Open loop at {paced.target_rate:,.0f} events/s ({paced.target_rate / best.eps:.0%} of the "
          f"{best.eps:,.0f} max): achieved {paced.eps:,.0f}; service time p50/p95/p99 {_fmt_ms(paced.service_ms)} ms; "
          f"{len(late)} of {len(paced.lateness_ms)} sends more than {LATE_MS:g} ms behind schedule"
          f" (max {max(paced.lateness_ms, default=0):.1f} ms)")
    print()
    print("Targets (issue 5 item 10):")
    print(f"  end to end over HTTP: {best.eps:,.0f} events/s  (target >= {TARGET_EPS:,})  "
          f"{'PASS' if best.eps >= TARGET_EPS else 'MISS'}")
    print(f"  p99 per 500-event batch at half the max rate: {p99:.1f} ms  (target < {TARGET_P99_MS:g} ms)  "
          f"{'PASS' if p99 < TARGET_P99_MS else 'MISS'}")
    print()
    peak = meter.peak_rss_kib()
    print("Server processes: " + "; ".join(
        f"#{w} (pid {proc.pid}) CPU {best.pct(best.server_cpu[w]):.0f}% at max, "
        f"{paced.pct(paced.server_cpu[w]):.0f}% at {paced.target_rate / best.eps:.0%}, "
        f"RSS {paced.server_rss[w] / 2**20:.0f} MiB (peak {peak[w] / 1024:.0f} MiB)"
        for w, proc in enumerate(servers.procs)))
    levels = servers.log_levels()
    print("Server log lines by level: " + ", ".join(f"{k} {v:,}" for k, v in sorted(levels.items())))
    print(f"Load average (1/5/15 min): before {' '.join(f'{x:.2f}' for x in load)}, after "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} -- on {os.cpu_count()} CPUs; anything else running "
          "skews the numbers")
    print("Setup:")
    for k, v in setup + info:
        print(f"  {k:<16} {v}")


# --------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.http_ingest", description=__doc__.split("\n\n")[0])
    p.add_argument("--events", type=int, default=200_000,
                   help="events per phase (default 200000 = 400 batches; the same events in every phase)")
    p.add_argument("--clients", type=int, default=4, help="concurrent HTTP clients, one process each (default 4)")
    p.add_argument("--workers", type=int, default=2, help="server processes, one port each (default 2 = nproc)")
    p.add_argument("--pool-size", type=int, default=2,
                   help="database connections per server process, all opened at start (default 2)")
    p.add_argument("--direct-conns", type=int, default=2,
                   help="connections of the direct fn_track_events and COPY runs (default 2)")
    p.add_argument("--paced-share", type=float, default=0.5,
                   help="open-loop rate as a share of the measured maximum (default 0.5)")
    p.add_argument("--log-level", default="info", help="the servers' log level (default info, as in production)")
    p.add_argument("--fast", action="store_true",
                   help="private cluster with fsync/synchronous_commit/full_page_writes off (default: durable)")
    p.add_argument("--profile", action="store_true",
                   help="afterwards, run the closed loop once more with py-spy on server 0 and print where its "
                   "CPU went (needs .venv/bin/py-spy; not part of the measured figures)")
    p.add_argument("--profile-out", type=Path, metavar="FILE",
                   help="with --profile: keep py-spy's raw (collapsed) stacks in FILE (default: a temporary file)")
    args = p.parse_args(argv)
    if args.events < BATCH_SIZE * args.clients:
        p.error(f"--events must be at least {BATCH_SIZE} x --clients")
    if not 0 < args.paced_share <= 1:
        p.error("--paced-share must be in (0, 1]")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    from bench.cluster import private_database

    with private_database("ma_http_bench", durable=not args.fast) as (conninfo, tmp):
        return _bench(args, conninfo, tmp)


def _bench(args: argparse.Namespace, conninfo: str, tmp: Path) -> int:
    from pywrap.migrate import migrate

    load = os.getloadavg()
    print(f"migrated (engine {migrate(conninfo).engine})", flush=True)
    with psycopg.connect(conninfo, autocommit=True) as admin:
        admin.execute("SET client_min_messages = warning")
        admin.execute(ingest.SEED_DDL)  # bench.ingest.truncate_all also empties its scratch tables
        app = ingest.create_app(admin)
        postmaster = psutil.Process(admin.info.backend_pid).ppid()

        t = time.monotonic()
        factory = ingest.EventFactory(ingest.SEED, datetime.now(UTC))
        batches = factory.batches(args.events)
        warm = factory.batches(WARMUP_BATCHES * max(args.clients, args.direct_conns) * BATCH_SIZE)
        check_same_json(batches)
        bodies, warm_bodies = http_bodies(batches, app["identifier"]), http_bodies(warm, app["identifier"])
        print(f"generated {args.events:,} events in {len(batches)} batches, ~{len(bodies[0][0]) / BATCH_SIZE:.0f} "
              f"bytes per event in a request ({time.monotonic() - t:.1f} s)", flush=True)

        ctx = mp.get_context("spawn")
        servers = Servers.start(conninfo, args.workers, args.pool_size, args.log_level, tmp)
        try:
            meter = CpuMeter([p.pid for p in servers.procs], postmaster)
            phases = []

            def step(phase: Phase) -> Phase:
                phases.append(phase)
                print(f"  {phase.label} x{phase.conns}: {phase.eps:,.0f} events/s ({phase.seconds:.2f} s)",
                      flush=True)
                return phase

            n = args.direct_conns
            copy = step(run_direct(ctx, admin, conninfo, app, meter, Variant("copy", "COPY (ceiling)", "copy", n),
                                   ingest.copy_payloads(warm, app["pk_app"], random.Random(ingest.SEED + 2)),
                                   ingest.copy_payloads(batches, app["pk_app"], random.Random(ingest.SEED + 3)),
                                   args.events))
            direct = step(run_direct(ctx, admin, conninfo, app, meter,
                                     Variant("track", "fn_track_events, direct", "track", n),
                                     ingest.track_payloads(warm), ingest.track_payloads(batches), args.events))
            expected = fingerprint(admin)
            best = step(run_http(ctx, admin, servers, meter, app, warm_bodies, bodies, args.clients,
                                 "trackEvents over HTTP, closed loop (max)"))
            if fingerprint(admin) != expected:
                raise RuntimeError("the events stored over HTTP differ from those stored by the direct call")
            rate = best.eps * args.paced_share
            paced = step(run_http(ctx, admin, servers, meter, app, warm_bodies, bodies, args.clients,
                                  f"trackEvents over HTTP, open loop at {args.paced_share:.0%}", rate))
            if fingerprint(admin) != expected:
                raise RuntimeError("the events stored over HTTP (open loop) differ from the direct call's")
            ingest.truncate_all(admin)
            setup = [
                ("servers", f"{args.workers} x `mobile-analytics serve` (uvicorn {_uvicorn_stack()}), one port each, "
                            f"pool {args.pool_size} per process (min = max), log level {args.log_level}"),
                ("clients", f"{args.clients} processes, httpx {_version('httpx')}, one keep-alive connection each, "
                            f"bodies pre-serialized; direct/COPY: {n} connection(s)"),
                ("events", f"{args.events:,} per phase, {len(batches)} batches of {BATCH_SIZE}, verified: "
                           f"stored == sent, no errors/duplicates/rejections, same fingerprint as direct"),
            ]
            report(phases, copy, direct, best, paced, servers, meter, setup, ingest.machine_info(admin), load)
            if args.profile:
                profile_server(ctx, admin, servers, meter, app, warm_bodies, bodies, args.clients,
                               args.profile_out or tmp / "server-0.pyspy.txt")
                ingest.truncate_all(admin)
        finally:
            codes = servers.stop()
    print(f"Servers stopped by SIGTERM: exit codes {codes}" + ("" if not any(codes) else "  <- not a clean stop"))
    return 0


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "not installed"


def _uvicorn_stack() -> str:
    """What uvicorn's "auto" picks: httptools and uvloop when installed, else h11 and asyncio."""
    http = "httptools" if _version("httptools") != "not installed" else f"h11 {_version('h11')}"
    loop = "uvloop" if _version("uvloop") != "not installed" else "asyncio"
    return f"{_version('uvicorn')}, {http}, {loop}"


if __name__ == "__main__":
    sys.exit(main())
