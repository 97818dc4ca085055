"""fn_track_events against hostile input: every text field, the limits, timestamps, and a
property test over mixed batches. Runs on both engines.

Values are checked in two encodings (raw UTF-8 and \\u-escaped JSON, as SDKs send either),
and every accepted value must come back from the table exactly as sent.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import errors

from tests.conftest import create_app
from tests.ingest_support import (
    SQL_NULL,
    Raw,
    as_stored,
    assert_refused,
    assert_tables_intact,
    rejected_pairs,
    rows_by_case,
    send,
    stored_counts,
)

STORED = "stored"
INVALID = "invalid_field"
UNSTORABLE = "unstorable_text"
MISSING = "missing_field"

DEVICE_TEXT_FIELDS = (
    "os", "os_version", "model", "manufacturer", "app_version", "app_build",
    "locale", "timezone", "carrier", "network", "sdk_name", "sdk_version",
)
EVENT_TEXT_FIELDS = {
    # field: (column, max characters)
    "type": ("event_type", 128),
    "event_id": ("client_event_id", 128),
    "user_id": ("user_id", 256),
    "anonymous_id": ("anonymous_id", 256),
    "session_id": ("session_id", 256),
    "path": ("path", 2048),
    "label": ("label", 1024),
}
CONTEXT_TEXT_FIELDS = ("user_id", "anonymous_id", "session_id")


@pytest.fixture(autouse=True)
def _no_server_side_prepare(conn):
    """The WASM engine is one backend for all connections: a statement that psycopg prepares
    (after 5 runs) would outlive this test and clash with the next connection's first one."""
    conn.prepare_threshold = None


SQL_INJECTIONS = [
    ("sql-drop-table", "'; DROP TABLE analytics.tb_event; --"),
    ("sql-or-1-1", "\\' OR 1=1 --"),
    ("sql-dollar-quote", "$$;"),
    ("sql-e-string-nul", "E'\\x00'"),
    ("sql-drop-app", "x'); DROP TABLE analytics.tb_app CASCADE; SELECT ('"),
    ("sql-comment", "/* */ SELECT pg_sleep(10) --"),
    ("format-specifiers", "%s %(app)s {0} %n %%"),
    ("json-lookalike", '{"type": ["a", 1]}'),
]

# Characters no text field may hold (C0, DEL, C1, separators, bidi controls, BOM, non-characters).
FORBIDDEN_CHARS = [
    ("tab", "a\tb"), ("newline", "a\nb"), ("carriage-return", "a\rb"), ("soh", "\x01x"),
    ("ansi-escape", "\x1b[31mred"), ("unit-separator", "x\x1f"), ("del", "a\x7f"),
    ("c1-nel", "a\x85b"), ("c1-last", "x\x9f"), ("line-separator", "a\u2028b"),
    ("paragraph-separator", "a\u2029b"), ("lre", "\u202ax"), ("rlo-override", "abc\u202edcba"),
    ("pdf", "x\u202c"), ("lri", "\u2066x"), ("pdi", "x\u2069"), ("bom", "\ufeffx"),
    ("nonchar-fffe", "x\ufffe"), ("nonchar-ffff", "x\uffff"),
]

# Text valid in every field (each is also a distinct value, so that event ids do not repeat).
UNICODE_OK = [
    ("combining-marks", "e\u0301\u0302 Z\u0351\u0337a\u0308"),
    ("rtl-text", "مرحبا بالعالم שלום"),
    ("zero-width-joiner", "👩\u200d👩\u200d👧\u200d👦"),
    ("astral-emoji", "🦄𝄞😀"),
    ("escaped-surrogate-pair", "\ud83d\ude00"),
    ("literal-backslash-u0000", "\\u0000"),
    ("uuid", "0b7c5e2a-6f1d-4e8a-9c3b-2d4f6a8b0c1e"),
]

CONTEXT_DEVICE_SAMPLE = {
    "over-limit-ascii", "over-limit-emoji", "empty", "object", "true", "tab", "del", "c1-nel",
    "line-separator", "rlo-override", "bom", "nonchar-ffff", "nul", "lone-low-surrogate",
}

UNSTORABLE_TEXT = [
    ("nul", "a\x00b"),
    ("lone-high-surrogate", "\ud800"),
    ("lone-low-surrogate", "\udc00"),
    ("reversed-pair", "\ude00\ud83d"),
    ("high-surrogate-then-text", "x\udbffy"),
]


def text_cases(limit: int, *, is_type: bool) -> list[tuple[str, Any, str]]:
    """(case name, value, expected outcome) for a text field of `limit` characters."""
    cases: list[tuple[str, Any, str]] = [
        ("plain", "checkout_step-2", STORED),
        ("inner-space", "Sign Up now", STORED),
        ("at-limit-ascii", "a" * limit, STORED),
        ("over-limit-ascii", "a" * (limit + 1), INVALID),
        ("at-limit-2-byte", "é" * limit, STORED),
        ("over-limit-2-byte", "é" * (limit + 1), INVALID),
        ("at-limit-emoji", "😀" * limit, STORED),
        ("over-limit-emoji", "😀" * (limit + 1), INVALID),
        ("at-limit-combining", "e\u0301" * (limit // 2), STORED),
        ("empty", "", INVALID),
        ("object", {"id": "x"}, INVALID),
        ("empty-object", {}, INVALID),
        ("array", ["x"], INVALID),
        ("true", True, INVALID),
        ("false", False, INVALID),
    ]
    cases += [(name, value, STORED) for name, value in SQL_INJECTIONS + UNICODE_OK]
    cases += [(name, value, INVALID) for name, value in FORBIDDEN_CHARS]
    cases += [(name, value, UNSTORABLE) for name, value in UNSTORABLE_TEXT]
    if is_type:
        cases += [
            ("null", None, MISSING),
            ("number", 42, INVALID),
            ("zero", 0, INVALID),
            ("leading-space", " page_view", INVALID),
            ("trailing-space", "page_view ", INVALID),
            ("only-space", " ", INVALID),
            ("leading-ideographic-space", "\u3000page_view", INVALID),
            ("trailing-em-space", "page_view\u2003", INVALID),
        ]
    else:
        cases += [
            ("null", None, STORED),
            ("padded", " padded ", STORED),
            ("number", 12345, STORED),
            ("zero", 0, STORED),
            ("negative", -7, STORED),
            ("fraction", 1.5, STORED),
            ("digits-at-limit", int("9" * limit), STORED),
            ("digits-over-limit", int("8" * (limit + 1)), INVALID),
        ]
    return cases


@dataclass(frozen=True)
class Slot:
    """Where a hostile value goes: an event field, an event device field, or the context."""

    where: str  # "event", "device", "context" or "context-device"
    field: str

    @property
    def id(self) -> str:
        return f"{self.where}.{self.field}"

    @property
    def limit(self) -> int:
        return EVENT_TEXT_FIELDS[self.field][1] if self.field in EVENT_TEXT_FIELDS else 128

    @property
    def in_device(self) -> bool:
        return self.where in ("device", "context-device")

    def cases(self) -> list[tuple[str, Any, str]]:
        return text_cases(self.limit, is_type=self.field == "type")

    def event(self, value: Any, case: str) -> dict[str, Any]:
        event = {"type": "probe", "metadata": {"case": case}}
        if self.where == "event":
            event[self.field] = value
        elif self.where == "device":
            event["device"] = {self.field: value}
        return event

    def context(self, value: Any) -> dict[str, Any]:
        return {"device": {self.field: value}} if self.where == "context-device" else {self.field: value}

    def stored(self, row: dict[str, Any]) -> Any:
        if self.in_device:
            return row["device"].get(self.field)
        return row[EVENT_TEXT_FIELDS[self.field][0]]

    def expected(self, value: Any) -> Any:
        """The value as read back: text columns hold numbers as their JSON text."""
        if isinstance(value, str):
            return as_stored(value)
        if value is None or self.in_device:
            return value
        return str(value)

    @property
    def reported_name(self) -> str:
        return "device" if self.in_device else self.field


EVENT_SLOTS = [Slot("event", f) for f in EVENT_TEXT_FIELDS] + [Slot("device", f) for f in DEVICE_TEXT_FIELDS]
CONTEXT_SLOTS = [Slot("context", f) for f in CONTEXT_TEXT_FIELDS] + [
    Slot("context-device", f) for f in DEVICE_TEXT_FIELDS
]


def slot_cases(slots: list[Slot]) -> list[tuple[Slot, str, Any, str]]:
    """Every case of every slot, as (slot, "slot-id/case name", value, outcome)."""
    return [(slot, f"{slot.id}/{name}", value, outcome) for slot in slots for name, value, outcome in slot.cases()]


def assert_batch_outcomes(result: dict[str, Any], cases: list[tuple[Slot, str, Any, str]]) -> None:
    """Exactly the cases expected to fail are rejected, with their code and field name."""
    got = {cases[r["index"]][1]: r["code"] for r in result["rejected"]}
    assert got == {name: outcome for _, name, _, outcome in cases if outcome != STORED}
    assert sorted(r["index"] for r in result["rejected"]) == [r["index"] for r in result["rejected"]]
    assert result["accepted"] == sum(outcome == STORED for *_, outcome in cases)
    assert result["duplicates"] == 0
    for problem in result["rejected"]:
        slot, name = cases[problem["index"]][:2]
        if problem["code"] in (INVALID, MISSING):
            assert f'"{slot.reported_name}"' in problem["message"], name


def assert_round_trip(conn: psycopg.Connection, app: Any, cases: list[tuple[Slot, str, Any, str]]) -> None:
    """Every stored case holds its value exactly as sent (numbers as their JSON text in text columns)."""
    rows = rows_by_case(conn, app)
    assert sorted(rows) == sorted(name for _, name, _, outcome in cases if outcome == STORED)
    stored = {name: slot.stored(rows[name]) for slot, name, _, outcome in cases if outcome == STORED}
    assert stored == {name: slot.expected(value) for slot, name, value, outcome in cases if outcome == STORED}


def check_batch(conn, app, cases: list[tuple[str, Any, str]], **kwargs: Any) -> dict[str, Any]:
    """Send [event for each case]; the events whose outcome is a code are rejected with it,
    the others stored. Returns the stored rows by case name (a "case" marker is added to the
    metadata of object events, unless their metadata is not an object)."""
    events = [
        {**event, "metadata": {"case": name, **event.get("metadata", {})}}
        if isinstance(event, dict) and isinstance(event.get("metadata", {}), dict) else event
        for name, event, _ in cases
    ]
    result = send(conn, app, events, **kwargs)
    got = {cases[r["index"]][0]: r["code"] for r in result["rejected"]}
    assert got == {name: outcome for name, _, outcome in cases if outcome != STORED}
    assert result["accepted"] == sum(outcome == STORED for *_, outcome in cases)
    return rows_by_case(conn, app)


@pytest.mark.parametrize("ascii_only", [False, True], ids=["utf8", "escaped"])
def test_hostile_values_in_event_text_fields(conn, app, ascii_only):
    """One batch with every case for every event and device text field: only the bad events are
    rejected, each with its code and field, and every other value comes back exactly."""
    cases = slot_cases(EVENT_SLOTS)
    result = send(conn, app, [slot.event(value, name) for slot, name, value, _ in cases], ascii_only=ascii_only)
    assert_batch_outcomes(result, cases)
    assert_round_trip(conn, app, cases)
    assert_tables_intact(conn)


def test_hostile_values_in_context_fields(conn, app):
    """A bad context value refuses the whole batch (22023); a good one fills the event.

    Good values are sent for all context fields at once; bad ones one field at a time (all of
    them for user_id, anonymous_id, session_id and device.os, a sample for other device fields,
    which the event tests above cover in full).
    """
    by_name: dict[str, list[tuple[Slot, str, Any, str]]] = {}
    for slot, name, value, outcome in slot_cases(CONTEXT_SLOTS):
        by_name.setdefault(name.split("/", 1)[1], []).append((slot, name, value, outcome))
    stored_cases = []
    for name, cases in by_name.items():
        if all(outcome == STORED for *_, outcome in cases):
            context: dict[str, Any] = {"device": {}}
            for slot, _, value, _ in cases:
                (context["device"] if slot.in_device else context)[slot.field] = value
            assert send(conn, app, [{"type": "probe", "metadata": {"case": name}}], context=context)["accepted"] == 1
            stored_cases += [(slot, name, value) for slot, _, value, _ in cases]
            continue
        for slot, case, value, outcome in cases:
            assert outcome != STORED, f"{case} is expected to be valid in some context fields only"
            if slot.where == "context-device" and slot.field != "os" and name not in CONTEXT_DEVICE_SAMPLE:
                continue
            event = [{"type": "probe", "metadata": {"case": case}}]
            if outcome == UNSTORABLE:
                # p_context is jsonb: the server cannot even read such a value as a parameter.
                with pytest.raises(psycopg.DataError):
                    send(conn, app, event, context=slot.context(value))
            else:
                assert_refused(conn, app, errors.InvalidParameterValue, event, context=slot.context(value),
                               count=False, label=case)
    rows = rows_by_case(conn, app)
    assert sorted(rows) == sorted({name for _, name, _ in stored_cases})
    assert stored_counts(conn) == (len(rows), 0)  # the refused batches wrote nothing
    assert {(slot.id, name): slot.stored(rows[name]) for slot, name, _ in stored_cases} == {
        (slot.id, name): slot.expected(value) for slot, name, value in stored_cases
    }
    assert_tables_intact(conn)


def test_hostile_values_round_trip_through_metadata(conn, app):
    """metadata is free-form: keys and values of any text (newlines too) are kept verbatim."""
    texts = [v for _, v in SQL_INJECTIONS + UNICODE_OK + FORBIDDEN_CHARS]
    metadata = {
        "case": "all",
        "values": texts,
        "by_key": {text: i for i, text in enumerate(texts)},
        "nested": {"a": [{"b": {"c": [None, True, 1.25, "multi\nline\ttext"]}}]},
    }
    assert send(conn, app, [{"type": "meta", "metadata": metadata}])["accepted"] == 1
    stored = rows_by_case(conn, app)["all"]["metadata"]
    assert stored["values"] == [as_stored(t) for t in texts]
    assert stored["by_key"] == {as_stored(t): i for i, t in enumerate(texts)}
    assert stored["nested"] == metadata["nested"]


UNSTORABLE_METADATA = {
    "nul-value": {"k": "\x00"},
    "nul-nested": {"deep": [{"deeper": {"k": "a\x00"}}]},
    "nul-key": {"\x00key": 1},
    "lone-high": {"k": "\ud800"},
    "lone-low-key": {"\udfff": "lone low surrogate in a key"},
    "lone-high-in-array": {"k": ["ok", "\ud83d"]},
}


@pytest.mark.parametrize("ascii_only", [False, True], ids=["utf8", "escaped"])
def test_unstorable_text_in_metadata_rejects_only_that_event(conn, app, ascii_only):
    cases = [("literal-backslash-u0000", {"type": "t", "metadata": {"k": "\\u0000 as text"}}, STORED)]
    cases += [(name, {"type": "t", "metadata": m}, UNSTORABLE) for name, m in UNSTORABLE_METADATA.items()]
    cases += [("pair", {"type": "t", "metadata": {"k": "\ud83d\ude00"}}, STORED)]
    rows = check_batch(conn, app, cases, ascii_only=ascii_only)
    assert rows["literal-backslash-u0000"]["metadata"]["k"] == "\\u0000 as text"
    assert rows["pair"]["metadata"]["k"] == "😀"


# --- event shape, numbers, device and metadata ----------------------------------------------------


def test_events_that_are_not_objects(conn, app):
    cases = [
        (name, event, "not_an_object")
        for name, event in [("number", 42), ("string", "page_view"), ("null", None), ("true", True),
                            ("array", [{"type": "nested"}]), ("empty-array", [])]
    ]
    check_batch(conn, app, [("ok", {"type": "ok"}, STORED), *cases])


def test_unknown_and_missing_fields(conn, app):
    hostile_key = "'; DROP TABLE analytics.tb_event; --"
    cases = [
        ("ok", {"type": "ok", "metadata": {"case": "ok"}}, STORED),
        ("no-type", {"path": "/home"}, MISSING),
        ("empty-object", {}, MISSING),
        ("typo", {"type": "a", "userId": "u1"}, "unknown_field"),
        ("hostile-key", {"type": "a", hostile_key: 1}, "unknown_field"),
        ("properties", {"type": "a", "properties": {}}, "unknown_field"),
        ("type-case", {"type": "a", "Type": "b"}, "unknown_field"),
    ]
    result = send(conn, app, [event for _, event, _ in cases])
    assert rejected_pairs(result) == [(i, code) for i, (_, _, code) in enumerate(cases) if code != STORED]
    messages = {cases[r["index"]][0]: r["message"] for r in result["rejected"]}
    assert '"type"' in messages["no-type"]
    assert "userId" in messages["typo"] and "properties" in messages["properties"]
    assert "DROP TABLE" in messages["hostile-key"]
    assert_tables_intact(conn)


def test_duration_must_be_whole_milliseconds(conn, app):
    good = {"zero": 0, "seed": 45000, "max-safe": 2**53 - 1, "whole-float": 5.0}
    bad = {"negative": -1, "beyond-2^53": 2**53, "fraction": 1.5, "string": "100", "true": True,
           "object": {"ms": 1}, "array": [1], "huge": 10**30}
    cases = [(n, {"type": "t", "duration": v}, STORED) for n, v in good.items()]
    cases += [(n, {"type": "t", "duration": v}, INVALID) for n, v in bad.items()]
    rows = check_batch(conn, app, cases)
    assert {n: rows[n]["duration_ms"] for n in good} == {n: int(v) for n, v in good.items()}


DEVICE_SHAPES = [
    ("dims-zero", {"screen_width": 0, "screen_height": 0}, STORED),
    ("dims-max", {"screen_width": 100000, "screen_height": 100000}, STORED),
    ("dims-whole-float", {"screen_width": 1080.0}, STORED),
    ("full", {**{f: f"v-{f}" for f in DEVICE_TEXT_FIELDS}, "screen_width": 1170, "screen_height": 2532}, STORED),
    ("empty", {}, STORED),
    ("null-field", {"os": None, "model": "Pixel 8"}, STORED),
    ("width-negative", {"screen_width": -1}, INVALID),
    ("width-over", {"screen_width": 100001}, INVALID),
    ("height-fraction", {"screen_height": 1.5}, INVALID),
    ("height-string", {"screen_height": "1080"}, INVALID),
    ("width-true", {"screen_width": True}, INVALID),
    ("unknown-field", {"os": "iOS", "imei": "35-209900-176148-1"}, INVALID),
    ("nested-object", {"os": {"name": "iOS"}}, INVALID),
    ("string", "iPhone 15", INVALID),
    ("array", [{"os": "iOS"}], INVALID),
    ("number", 7, INVALID),
]


def test_device_shape_in_events(conn, app):
    rows = check_batch(conn, app, [(n, {"type": "t", "device": d}, o) for n, d, o in DEVICE_SHAPES])
    assert rows["full"]["device"] == DEVICE_SHAPES[3][1]
    assert rows["null-field"]["device"] == {"model": "Pixel 8"}
    assert rows["empty"]["device"] == {}


def test_device_shape_in_context(conn, app):
    for name, device, outcome in DEVICE_SHAPES:
        event = [{"type": "t", "metadata": {"case": name}}]
        if outcome == STORED:
            assert send(conn, app, event, context={"device": device})["accepted"] == 1
        else:
            assert_refused(conn, app, errors.InvalidParameterValue, event, context={"device": device}, label=name)
    assert rows_by_case(conn, app)["dims-max"]["device"] == {"screen_width": 100000, "screen_height": 100000}


MALFORMED_CONTEXTS = [
    [], "u1", 42, True, {"user_id": "u1", "ip": "10.0.0.1"}, {"userId": "u1"}, {"device": "iOS"},
    {"device": ["iOS"]}, {"session_id": {"id": 1}}, {"anonymous_id": ""}, {"user_id": "x" * 257},
]


def test_malformed_context_refuses_the_batch(conn, app):
    send(conn, app, [{"type": "seed", "event_id": "seed-1"}])
    for context in MALFORMED_CONTEXTS:
        assert_refused(conn, app, errors.InvalidParameterValue, [{"type": "a", "event_id": "new"}], context=context,
                       label=repr(context)[:60])
    assert stored_counts(conn) == (1, 1)


def test_metadata_must_be_an_object(conn, app):
    cases = [
        ("nested", {"type": "t", "metadata": {"case": "nested", "a": {"b": [1, {"c": None}]}, "n": "x\ny"}}, STORED),
        ("null", {"type": "t", "metadata": None}, STORED),
        ("array", {"type": "t", "metadata": [1, 2]}, INVALID),
        ("string", {"type": "t", "metadata": "{}"}, INVALID),
        ("number", {"type": "t", "metadata": 1}, INVALID),
    ]
    result = send(conn, app, [event for _, event, _ in cases])
    assert rejected_pairs(result) == [(2, INVALID), (3, INVALID), (4, INVALID)]
    assert all('"metadata"' in r["message"] for r in result["rejected"])
    stored = [row[0] for row in conn.execute("SELECT metadata FROM analytics.tb_event ORDER BY metadata = '{}'")]
    assert stored == [cases[0][1]["metadata"], {}]  # metadata null is stored as {}


# --- exactly-once rules inside one batch -------------------------------------------------------


def test_first_valid_copy_of_an_id_wins(conn, app):
    events = [
        {"type": "", "event_id": "dup"},  # invalid: does not claim the id
        {"type": "second", "event_id": "dup"},
        {"type": "third", "event_id": "dup"},
        {"type": "big", "event_id": "dup2", "metadata": {"blob": "x" * 40000}},  # too large
        {"type": "after-big", "event_id": "dup2"},
        {"type": "x", "event_id": 7},  # a number id is kept as its JSON text
    ]
    result = send(conn, app, events)
    assert rejected_pairs(result) == [(0, INVALID), (3, "event_too_large")]
    assert (result["accepted"], result["duplicates"]) == (3, 1)
    stored = conn.execute("SELECT client_event_id, event_type FROM analytics.tb_event ORDER BY 1").fetchall()
    assert stored == [("7", "x"), ("dup", "second"), ("dup2", "after-big")]


def test_events_without_id_are_always_stored(conn, app):
    batch = [{"type": "tap", "label": "same"}] * 3
    for sent_at in (None, datetime.now(timezone.utc)):
        assert send(conn, app, batch, sent_at=sent_at) == {"accepted": 3, "duplicates": 0, "clamped": 0, "rejected": []}
    ids = conn.execute("SELECT id, client_event_id FROM analytics.tb_event").fetchall()
    assert len({i for i, _ in ids}) == 6 and {c for _, c in ids} == {None}
    assert stored_counts(conn) == (6, 0)


def test_distinct_event_ids_never_collide(conn, app):
    twin = str(uuid.UUID(hashlib.md5(b"order-1").hexdigest()))
    result = send(conn, app, [{"type": "a", "event_id": "order-1"}, {"type": "b", "event_id": twin}])
    assert (result["accepted"], result["duplicates"]) == (2, 0)


# --- size and count limits ----------------------------------------------------------------------


def oversized_batch() -> list[dict[str, Any]]:
    """About 10.8 MB of JSON in 1100 events of ~9.8 KB (each well under the per-event limit)."""
    return [{"type": "bulk", "event_id": f"bulk-{i}", "metadata": {"blob": "x" * 9800}} for i in range(1100)]


def numbered_events(count: int) -> list[dict[str, Any]]:
    return [{"type": "bulk", "event_id": f"e{i}"} for i in range(count)]


def test_2000_events_are_accepted(conn, app):
    batch = numbered_events(2000)
    assert send(conn, app, batch) == {"accepted": 2000, "duplicates": 0, "clamped": 0, "rejected": []}
    assert stored_counts(conn) == (2000, 2000)


def test_large_event_is_rejected_alone(conn, app):
    events = [
        {"type": "small", "metadata": {"case": "small"}},
        {"type": "ok", "metadata": {"case": "20-kb", "blob": "x" * 20000}},
        {"type": "too-big", "metadata": {"blob": "x" * 40000}},
        {"type": "too-big", "metadata": {"blob": "😀" * 10000}},  # 40 KB however it is encoded
        {"type": "ok", "metadata": {"case": "20-kb-emoji", "blob": "😀" * 5000}},
    ]
    result = send(conn, app, events)
    assert rejected_pairs(result) == [(2, "event_too_large"), (3, "event_too_large")]
    rows = rows_by_case(conn, app)
    assert sorted(rows) == ["20-kb", "20-kb-emoji", "small"]
    assert rows["20-kb-emoji"]["metadata"]["blob"] == "😀" * 5000


def _revoke_write_key(conn, app):
    conn.execute(
        "SELECT analytics.fn_revoke_api_key(k.id) FROM analytics.tb_api_key k"
        " JOIN analytics.tb_app a ON a.pk_app = k.fk_app WHERE a.identifier = %s AND k.kind = 'write'",
        [app.identifier],
    )
    return {}


GOOD_BATCH = [{"type": "a", "event_id": "new-1"}, {"type": "b", "event_id": "new-2"}, {"type": "c"}]
BAD_KEY = errors.InvalidAuthorizationSpecification
NOT_ARRAY = errors.InvalidParameterValue
TOO_BIG = errors.ProgramLimitExceeded
BATCH_ERRORS = {
    # group: {scenario: (error, (conn, app) -> send() arguments, words the message must contain)}
    "credentials": {
        "unknown-key": (BAD_KEY, lambda c, a: {"key": "maw_" + "0" * 64}, ()),
        "missing-key": (BAD_KEY, lambda c, a: {"key": None}, ()),
        "empty-key": (BAD_KEY, lambda c, a: {"key": ""}, ()),
        "injection-key": (BAD_KEY, lambda c, a: {"key": "' OR 1=1 --"}, ()),
        "null-app": (BAD_KEY, lambda c, a: {"app_ref": None}, ()),
        "unknown-app": (BAD_KEY, lambda c, a: {"app_ref": "no-such-app"}, ()),
        "other-apps-key": (BAD_KEY, lambda c, a: {"key": create_app(c, "other").write_key}, ()),
        "read-key": (errors.InsufficientPrivilege, lambda c, a: {"key": a.read_key}, ()),
        "revoked-key": (BAD_KEY, _revoke_write_key, ()),  # last: the app has no write key after it
    },
    "not-an-array": {
        "object": (NOT_ARRAY, lambda c, a: {"events": Raw('{"type": "a"}')}, ()),
        "string": (NOT_ARRAY, lambda c, a: {"events": Raw('"[{\\"type\\": \\"a\\"}]"')}, ()),
        "number": (NOT_ARRAY, lambda c, a: {"events": Raw("42")}, ()),
        "json-null": (NOT_ARRAY, lambda c, a: {"events": Raw("null")}, ()),
        "sql-null": (NOT_ARRAY, lambda c, a: {"events": SQL_NULL}, ()),
    },
    "limits": {
        "2001-events": (TOO_BIG, lambda c, a: {"events": numbered_events(2001)}, ("2000",)),
        "over-10-mb": (TOO_BIG, lambda c, a: {"events": oversized_batch()}, ("10485760",)),
    },
}


@pytest.mark.parametrize("group", list(BATCH_ERRORS))
def test_whole_batch_errors_store_nothing(conn, app, group):
    """Each refusal has its SQLSTATE and a HINT, and leaves tb_event and tb_event_key as they were."""
    assert send(conn, app, [{"type": "seed", "event_id": "seed-1"}, {"type": "seed"}])["accepted"] == 2
    for scenario, (error, arguments, mentions) in BATCH_ERRORS[group].items():
        kwargs = {"events": GOOD_BATCH, **arguments(conn, app)}
        refusal = assert_refused(conn, app, error, kwargs.pop("events"), mentions=mentions, label=scenario, **kwargs)
        assert refusal.diag.sqlstate == error.sqlstate, scenario
    assert stored_counts(conn) == (2, 1)


# --- timestamps ----------------------------------------------------------------------------------


def iso_variants(base: datetime) -> list[tuple[str, Any, datetime]]:
    """(name, timestamp as sent, instant expected) for accepted spellings of `base` (UTC)."""
    plus2, minus8 = base + timedelta(hours=2), base - timedelta(hours=8)
    plus0530 = base + timedelta(hours=5, minutes=30)
    return [
        ("zulu", base.strftime("%Y-%m-%dT%H:%M:%SZ"), base),
        ("lower-case", base.strftime("%Y-%m-%dt%H:%M:%Sz"), base),
        ("plus-02:00", plus2.strftime("%Y-%m-%dT%H:%M:%S+02:00"), base),
        ("plus-0530", plus0530.strftime("%Y-%m-%dT%H:%M:%S+0530"), base),
        ("minus-08", minus8.strftime("%Y-%m-%dT%H:%M:%S-08"), base),
        ("no-offset-is-utc", base.strftime("%Y-%m-%dT%H:%M:%S"), base),
        ("space-separator", base.strftime("%Y-%m-%d %H:%M:%S"), base),
        ("space-and-offset", plus2.strftime("%Y-%m-%d %H:%M:%S+02:00"), base),
        ("millis", base.strftime("%Y-%m-%dT%H:%M:%S.123Z"), base + timedelta(microseconds=123000)),
        ("micros", base.strftime("%Y-%m-%dT%H:%M:%S.654321Z"), base + timedelta(microseconds=654321)),
        ("nanos-rounded", base.strftime("%Y-%m-%dT%H:%M:%S.000001999Z"), base + timedelta(microseconds=2)),
        ("no-seconds", base.strftime("%Y-%m-%dT%H:%MZ"), base.replace(second=0)),
        ("epoch-millis", int(base.timestamp() * 1000), base),
        ("epoch-millis-float", base.timestamp() * 1000 + 250.0, base + timedelta(microseconds=250000)),
    ]


def test_valid_timestamp_spellings(conn, app):
    """Every spelling names the same instant, whatever the session's time zone."""
    base = (datetime.now(timezone.utc) - timedelta(days=1)).replace(microsecond=0)
    variants = iso_variants(base)
    with conn.transaction():  # SET LOCAL: the WASM engine's one session outlives this test
        conn.execute("SET LOCAL TimeZone = 'Pacific/Kiritimati'")  # UTC+14; no offset must still mean UTC
        rows = check_batch(conn, app, [(name, {"type": "t", "timestamp": ts}, STORED) for name, ts, _ in variants])
    assert {name: rows[name]["timestamp"] for name, _, _ in variants} == {name: at for name, _, at in variants}
    assert not any(row["timestamp_clamped"] for row in rows.values())


def invalid_timestamps(now: datetime) -> dict[str, Any]:
    year = now.year
    return {
        "feb-30": f"{year}-02-30T10:00:00Z",
        "month-13": f"{year}-13-01T10:00:00Z",
        "month-00": f"{year}-00-10T10:00:00Z",
        "day-00": f"{year}-01-00T10:00:00Z",
        "hour-24": f"{year}-01-10T24:00:00Z",
        "minute-60": f"{year}-01-10T10:60:00Z",
        "second-61": f"{year}-01-10T10:00:61Z",
        "garbage": "yesterday at noon",
        "pg-now": "now",
        "pg-today": "today",
        "pg-epoch": "epoch",
        "pg-infinity": "infinity",
        "empty": "",
        "digits-as-string": str(int(now.timestamp() * 1000)),
        "date-and-garbage": f"{year}-01-10Tnoon",
        "space-before-zone": f"{year}-01-10T10:00:00 Z",
        "one-digit-offset": f"{year}-01-10T10:00:00+2",
        "arabic-indic-digits": "٢٠٢٥-٠٦-٠١T12:00:00Z",
        "fullwidth-digits": "２０２５-０６-０１T12:00:00Z",
        "pre-1970": "1969-12-31T23:59:59Z",
        "true": True,
        "false": False,
        "negative-millis": -1,
        "negative-big": -1_000_000_000_000,
        "beyond-year-9999": 10**16,
        "object": {"seconds": 1},
        "array": [year, 1, 10],
    }


def test_invalid_timestamps_reject_only_their_event(conn, app):
    bad = invalid_timestamps(datetime.now(timezone.utc))
    cases = [("ok", {"type": "t"}, STORED)]
    cases += [(name, {"type": "t", "timestamp": ts}, "invalid_timestamp") for name, ts in bad.items()]
    rows = check_batch(conn, app, cases)
    assert sorted(rows) == ["ok"]


def test_out_of_range_offset_is_an_invalid_timestamp(conn, app):
    day = (datetime.now(timezone.utc) - timedelta(days=1)).strftime("%Y-%m-%d")
    cases = [("ok", {"type": "t"}, STORED)]
    cases += [(offset, {"type": "t", "timestamp": f"{day}T10:00:00{offset}"}, "invalid_timestamp")
              for offset in ("+99:00", "-16:00", "+14:60")]
    check_batch(conn, app, cases)


def test_future_timestamps_are_clamped_beyond_23_hours(conn, app):
    now = datetime.now(timezone.utc)
    device_now = now + timedelta(hours=5)  # with sentAt, times are read on the device's clock
    batches = [
        (None, [("in-22h", now + timedelta(hours=22), False), ("in-25h", now + timedelta(hours=25), True)]),
        (device_now, [("sent-in-20h", device_now + timedelta(hours=20), False),
                      ("sent-in-25h", device_now + timedelta(hours=25), True)]),
    ]
    for sent_at, cases in batches:
        events = [{"type": "t", "timestamp": at.isoformat(), "metadata": {"case": n}} for n, at, _ in cases]
        result = send(conn, app, events, sent_at=sent_at)
        assert (result["accepted"], result["clamped"]) == (2, 1)
    rows = rows_by_case(conn, app)
    assert {n: rows[n]["timestamp_clamped"] for _, cases in batches for n, _, _ in cases} == {
        n: clamped for _, cases in batches for n, _, clamped in cases
    }
    assert rows["in-25h"]["timestamp"] == rows["in-25h"]["received_at"]


def test_absurd_sent_at_does_not_fail_the_batch(conn, app):
    now = datetime.now(timezone.utc)
    result = send(conn, app, [{"type": "untimed"}, {"type": "timed", "timestamp": now.isoformat()}],
                  sent_at=datetime(9999, 12, 31, tzinfo=timezone.utc))
    assert rejected_pairs(result) == [(1, "too_old")]


def test_retention_follows_the_app(conn):
    app = create_app(conn, "short", retention_days=7)
    now = datetime.now(timezone.utc)
    events = [{"type": "t", "timestamp": (now - timedelta(days=d)).isoformat()} for d in (6, 8)]
    result = send(conn, app, events)
    assert rejected_pairs(result) == [(1, "too_old")]
    assert "7 days" in result["rejected"][0]["message"]


# --- escapes the json type lets through but jsonb cannot hold ---------------------------------------


def test_lone_surrogate_after_escaped_backslash_is_unstorable(conn, app):
    events = [{"type": "ok"}, {"type": "t", "label": "\\ud83d\udc00"}]
    assert rejected_pairs(send(conn, app, events)) == [(1, UNSTORABLE)]


def test_escaped_backslashes_before_u_escapes(conn, app):
    """An even run of backslashes is text; an odd one ends in a real \\u escape."""
    cases = [
        ("text-u0000", {"type": "t", "label": "\\u0000"}, STORED),
        ("two-backslashes-u0000", {"type": "t", "label": "\\\\u0000"}, STORED),
        ("text-ud800", {"type": "t", "label": "\\ud800"}, STORED),
        ("backslash-then-nul", {"type": "t", "metadata": {"k": "\\\x00"}}, UNSTORABLE),
        ("backslash-then-lone", {"type": "t", "metadata": {"k": "\\\ud800"}}, UNSTORABLE),
        ("pair-then-lone", {"type": "t", "metadata": {"k": "\ud83d\ude00\udc00"}}, UNSTORABLE),
        ("high-high-low", {"type": "t", "metadata": {"k": "\ud83d\ud83d\ude00"}}, UNSTORABLE),
    ]
    rows = check_batch(conn, app, cases, ascii_only=True)
    assert {n: rows[n]["label"] for n in ("text-u0000", "two-backslashes-u0000", "text-ud800")} == {
        "text-u0000": "\\u0000", "two-backslashes-u0000": "\\\\u0000", "text-ud800": "\\ud800"}
    # upper-case hex digits, which Python's json module never writes
    upper = Raw('[{"type": "t", "label": "\\uD83D\\uDE00"}, {"type": "t", "label": "\\uDBFF"},'
                ' {"type": "t", "label": "\\u0000"}]')
    result = send(conn, app, upper)
    assert rejected_pairs(result) == [(1, UNSTORABLE), (2, UNSTORABLE)]
    assert conn.execute("SELECT count(*) FROM analytics.tb_event WHERE label = '😀'").fetchone() == (1,)


# --- leading and trailing Unicode white space in "type" ---------------------------------------------


# Unicode White_Space that libc iswspace() does not count (U+1680: only musl, the WASM engine's libc)
SPACES_LIBC_MISSES = ["\u00a0", "\u2007", "\u202f", "\u1680"]
OTHER_SPACES = ["\u2000", "\u2005", "\u200a", "\u205f", "\u3000"]


def space_cases(spaces: list[str]) -> list[tuple[str, Any, str]]:
    cases = []
    for space in spaces:
        name = f"U+{ord(space):04X}"
        cases += [
            (f"{name}-leading", {"type": f"{space}tap"}, INVALID),
            (f"{name}-trailing", {"type": f"tap{space}"}, INVALID),
            (f"{name}-inside", {"type": f"tap{space}twice"}, STORED),
        ]
    return cases


def test_unicode_spaces_around_type(conn, app):
    check_batch(conn, app, space_cases(OTHER_SPACES))


def test_spaces_libc_misses_around_type(conn, app):
    check_batch(conn, app, space_cases(SPACES_LIBC_MISSES))


# --- property: any mix of valid and invalid events -----------------------------------------------

ID_POOL = [f"order-{i}" for i in range(8)] + [str(uuid.UUID(int=i)) for i in range(1, 5)] + [42]
PRINTABLE = st.text(st.characters(categories=("L", "M", "N", "P", "S")), min_size=1, max_size=24)
FREE_TEXT = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=16)
RECENT = st.integers(0, 80 * 86400).map(  # within the default retention of 90 days
    lambda s: (datetime.now(timezone.utc) - timedelta(seconds=s)).isoformat()
)

VALID_EVENT = st.fixed_dictionaries(
    {"type": PRINTABLE},
    optional={
        "event_id": st.sampled_from(ID_POOL),
        "user_id": st.one_of(PRINTABLE, st.integers(0, 10**12)),
        "session_id": PRINTABLE,
        "path": PRINTABLE.map(lambda p: "/" + p),
        "label": PRINTABLE,
        "duration": st.integers(0, 2**53 - 1),
        "timestamp": st.one_of(RECENT, st.none()),
        "device": st.fixed_dictionaries({}, optional={"os": PRINTABLE, "screen_width": st.integers(0, 100000)}),
        "metadata": st.dictionaries(FREE_TEXT, st.one_of(st.none(), st.booleans(), st.integers(), FREE_TEXT),
                                    max_size=3),
    },
)
SPOILERS = [
    lambda e: {**e, "type": ""},
    lambda e: {**e, "type": " " + e["type"]},
    lambda e: {**e, "type": e["type"] + "\u202e"},
    lambda e: {k: v for k, v in e.items() if k != "type"},
    lambda e: {**e, "user_id": {"id": 1}},
    lambda e: {**e, "session_id": True},
    lambda e: {**e, "label": "x" * 1025},
    lambda e: {**e, "path": "/a\u2028b"},
    lambda e: {**e, "duration": -1},
    lambda e: {**e, "timestamp": "2026-02-30T00:00:00Z"},
    lambda e: {**e, "timestamp": (datetime.now(timezone.utc) - timedelta(days=200)).isoformat()},
    lambda e: {**e, "device": {"imei": "1"}},
    lambda e: {**e, "metadata": {"k": "a\x00"}},
    lambda e: {**e, "metadata": ["not", "an", "object"]},
    lambda e: {**e, "campaign": "x"},
    lambda e: [e],
]
INVALID_EVENT = st.tuples(VALID_EVENT, st.sampled_from(SPOILERS)).map(lambda pair: pair[1](pair[0]))
BATCH = st.lists(  # (event, whether it is valid)
    st.one_of(VALID_EVENT.map(lambda e: (e, True)), INVALID_EVENT.map(lambda e: (e, False))), max_size=30
)


def known_ids(conn: psycopg.Connection, app: Any) -> set[str]:
    rows = conn.execute(
        "SELECT e.client_event_id FROM analytics.tb_event e JOIN analytics.tb_app a ON a.pk_app = e.fk_app"
        " WHERE a.identifier = %s AND e.client_event_id IS NOT NULL",
        [app.identifier],
    ).fetchall()
    return {row[0] for row in rows}


@settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batch=BATCH)
def test_any_mix_of_events_is_fully_accounted_for(conn, app, batch):
    """The app keeps its events across examples, so ids from ID_POOL are retried across batches."""
    seen = known_ids(conn, app)
    new_ids: dict[str, str] = {}  # id first stored by this batch -> type of its first valid copy
    expected_accepted = expected_duplicates = 0
    for event, valid in batch:
        if not valid:
            continue
        event_id = None if event.get("event_id") is None else str(event["event_id"])
        if event_id in seen or event_id in new_ids:
            expected_duplicates += 1
            continue
        expected_accepted += 1
        if event_id is not None:
            new_ids[event_id] = event["type"]
    before = stored_counts(conn)

    result = send(conn, app, [event for event, _ in batch])

    assert result["accepted"] + result["duplicates"] + len(result["rejected"]) == len(batch)
    assert [r["index"] for r in result["rejected"]] == [i for i, (_, valid) in enumerate(batch) if not valid]
    assert (result["accepted"], result["duplicates"]) == (expected_accepted, expected_duplicates)
    assert stored_counts(conn) == (before[0] + result["accepted"], len(seen) + len(new_ids))
    stored_types = conn.execute(
        "SELECT client_event_id, event_type FROM analytics.tb_event WHERE client_event_id = ANY(%s)", [list(new_ids)]
    ).fetchall()
    assert dict(stored_types) == new_ids


# --- property: the fast path for all-valid batches stores what the general path stores ------------

TIMESTAMP_SPELLINGS = st.one_of(
    RECENT,  # isoformat with +00:00
    st.integers(0, 80 * 86400).map(  # the SDKs' usual layout, 2026-01-31T12:00:00.000Z
        lambda s: (datetime.now(timezone.utc) - timedelta(seconds=s)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"),
    st.integers(0, 80 * 86400).map(  # epoch milliseconds
        lambda s: int((datetime.now(timezone.utc) - timedelta(seconds=s)).timestamp() * 1000)),
    st.integers(1, 48 * 3600).map(  # in the future: clamped beyond 23 hours
        lambda s: (datetime.now(timezone.utc) + timedelta(seconds=s)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"),
)
FAST_EVENT = st.fixed_dictionaries(
    {"type": PRINTABLE},
    optional={
        "event_id": st.one_of(st.uuids().map(str), st.uuids().map(lambda u: str(u).upper()), PRINTABLE,
                              st.integers(0, 10**12)),
        "user_id": st.one_of(PRINTABLE, st.integers(0, 10**12)),
        "anonymous_id": PRINTABLE,
        "session_id": PRINTABLE,
        "path": PRINTABLE.map(lambda p: "/" + p),
        "label": PRINTABLE,
        "duration": st.integers(0, 2**53 - 1),
        "timestamp": TIMESTAMP_SPELLINGS,
        "device": st.one_of(st.none(), st.fixed_dictionaries({}, optional={
            "os": st.one_of(PRINTABLE, st.none()), "os_version": PRINTABLE, "model": st.one_of(PRINTABLE, st.none()),
            "app_version": PRINTABLE, "locale": PRINTABLE, "screen_width": st.integers(0, 100000)})),
        "metadata": st.one_of(st.none(), st.dictionaries(FREE_TEXT, st.one_of(st.none(), st.integers(), FREE_TEXT),
                                                         max_size=3)),
    },
)
STORED_COLUMNS = ("e.event_type, e.client_event_id, e.id, e.\"timestamp\", e.timestamp_clamped, e.user_id,"
                  " e.anonymous_id, e.session_id, e.path, e.label, e.duration_ms, e.device, e.metadata")


def test_all_valid_batches_store_the_same_on_either_path(conn, engine_name):
    """fn_track_events takes a batch of valid, new events on a fast path (cheap checks, plain
    inserts) and any other batch on the general path. One spoiled event appended sends the same
    events down the general path, into another app: both apps must store the same rows."""
    fast, general = create_app(conn, "paths-fast"), create_app(conn, "paths-general")
    spoiled = {"type": "x", "campaign": "spoils the batch"}

    def stored(app) -> list[tuple]:
        return sorted(conn.execute(
            f"SELECT {STORED_COLUMNS} FROM analytics.tb_event e JOIN analytics.tb_app a ON a.pk_app = e.fk_app"
            " WHERE a.identifier = %s", [app.identifier]).fetchall(),
            # not by the random id of events sent without one, nor by their now()-derived time
            key=lambda r: repr((r[0], r[1], r[4:], r[2] if r[1] is not None else None)))

    @settings(max_examples=15 if engine_name == "timescaledb" else 40, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(events=st.lists(FAST_EVENT, min_size=1, max_size=20, unique_by=lambda e: str(e.get("event_id", id(e)))),
           sent_at_shift=st.one_of(st.none(), st.integers(-3600, 3600)),
           context=st.one_of(st.none(), st.fixed_dictionaries(
               {"user_id": PRINTABLE, "session_id": PRINTABLE},
               optional={"device": st.fixed_dictionaries({"os": PRINTABLE})})))
    def check(events, sent_at_shift, context):
        conn.execute("DELETE FROM analytics.tb_event e USING analytics.tb_app a"
                     " WHERE a.pk_app = e.fk_app AND a.identifier LIKE 'paths-%'")
        conn.execute("DELETE FROM analytics_internal.tb_event_key k USING analytics.tb_app a"
                     " WHERE a.pk_app = k.fk_app AND a.identifier LIKE 'paths-%'")
        sent_at = None if sent_at_shift is None else datetime.now(timezone.utc) + timedelta(seconds=sent_at_shift)

        one = send(conn, fast, events, sent_at=sent_at, context=context)
        other = send(conn, general, [*events, spoiled], sent_at=sent_at, context=context)

        assert [(r["index"], r["code"]) for r in other["rejected"]] == [(len(events), "unknown_field")]
        assert (one["accepted"], one["duplicates"], one["clamped"], one["rejected"]) == (
            other["accepted"], other["duplicates"], other["clamped"], [])
        got, want = stored(fast), stored(general)
        assert len(got) == len(want) == one["accepted"]
        timed = {str(e["event_id"]) for e in events if "event_id" in e and "timestamp" in e}
        for a, b in zip(got, want):
            # events without an id get a random id; a time derived from now() (no timestamp, or
            # corrected by sentAt) differs by the time between the two calls
            assert a[:2] == b[:2] and (a[2] == b[2] or a[1] is None), (a, b)
            assert abs(a[3] - b[3]) < timedelta(seconds=30), (a, b)
            if sent_at is None and a[1] in timed and not a[4]:  # a clamped time is now()
                assert a[3] == b[3], (a, b)
            assert a[4:] == b[4:], (a, b)

    check()
