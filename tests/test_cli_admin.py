"""The operator commands of `mobile-analytics` (apps, rotate-key, revoke-key, maintenance,
status), run in-process against both engines."""

from __future__ import annotations

import json
import time

import pytest

from pywrap import sqlfiles
from pywrap.cli import main
from tests.conftest import create_app


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    # The WASM engine frees the previous connection's slot a moment after it closes: retry
    # a refused connection briefly (a real server accepts at once).
    deadline = time.monotonic() + 5
    while True:
        code = main(list(argv))
        out, err = capsys.readouterr()
        if "connection" not in err or time.monotonic() > deadline:
            return code, out, err
        time.sleep(0.05)


def test_apps_rotate_and_revoke(db, capsys):
    with db.connect() as conn:
        app = create_app(conn, "app123")
    url = ("--database-url", db.conninfo)
    code, out, _ = run(capsys, "apps", *url, "--json")
    assert code == 0 and [a["identifier"] for a in json.loads(out)] == ["app123"]

    code, out, err = run(capsys, "rotate-key", "app123", "--kind", "read", "--grace-seconds", "0", *url, "--json")
    assert code == 0, err
    rotated = json.loads(out)
    assert code == 0 and rotated["kind"] == "read" and rotated["api_key"] != app.read_key

    code, out, _ = run(capsys, "apps", "app123", *url)
    assert code == 0 and out.count("revoked at") == 1 and rotated["key_id"] in out
    assert rotated["api_key"] not in out and app.write_key not in out  # only prefixes are shown

    code, out, _ = run(capsys, "revoke-key", rotated["key_id"], *url)
    assert code == 0 and "revoked at" in out
    code, out, _ = run(capsys, "apps", "app123", *url)
    assert out.count("revoked at") == 2

    code, _, err = run(capsys, "revoke-key", "not-a-uuid", *url)
    assert code == 1 and err.startswith("error: ")
    code, out, _ = run(capsys, "apps", "nope", *url)
    assert code == 1 and "no app" in out


def test_maintenance_and_status(db, capsys):
    url = ("--database-url", db.conninfo)
    code, out, err = run(capsys, "maintenance", *url, "--json")
    assert code == 0, err
    assert code == 0 and "refreshed_rollups" in json.loads(out), (out, err)
    code, out, err = run(capsys, "status", *url, "--json")
    assert code == 0, err
    report = json.loads(out)
    assert code == 0 and report["migrations_pending"] == []
    assert report["migrations_applied"] == len(sqlfiles.migrations())
    assert report["engine"] == db.engine and report["rollups"]
    code, out, _ = run(capsys, "status", *url)
    assert code == 0 and "none pending" in out
