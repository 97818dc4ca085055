"""Event batches: from GraphQL input to the JSON that analytics.fn_track_events takes.

The GraphQL names are camelCase (eventId, device.osVersion); the SQL function's JSON keys are
snake_case (event_id, device.os_version, see fn_event_problem.sql). Two ways in, one result:

* `from_inputs`: values that graphql-core already coerced into EventInput containers (an
  inline literal, or any document that the fast path does not cover). Graphene keys them by
  their Python names, which are exactly the SQL keys.
* `from_variable`: the raw JSON of an `$events: [EventInput!]!` variable, checked here
  against the same rules graphql-core applies to EventInput (field names, String/Int/
  scalar types, non-null), in one tight loop. Coercing 500 events through graphql-core's
  generic machinery costs ~20 ms; this costs well under 1 ms.

Both drop nulls: to fn_track_events an absent field and a null one mean the same, and the
JSON sent is smaller. Whether a value is *valid* (lengths, characters, time formats) is
decided by the SQL function, which reports bad events one by one without failing the batch.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

MAX_SAFE_INTEGER = 2**53 - 1
_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1

# GraphQL name -> (SQL key, kind); kinds are checked in _coerce_value.
EVENT_FIELDS: dict[str, tuple[str, str]] = {
    "type": ("type", "String!"),
    "eventId": ("event_id", "String"),
    "timestamp": ("timestamp", "EventTime"),
    "userId": ("user_id", "String"),
    "anonymousId": ("anonymous_id", "String"),
    "sessionId": ("session_id", "String"),
    "path": ("path", "String"),
    "label": ("label", "String"),
    "duration": ("duration", "Milliseconds"),
    "device": ("device", "DeviceInput"),
    "metadata": ("metadata", "JSON"),
}
DEVICE_FIELDS: dict[str, tuple[str, str]] = {
    name: (snake, "String")
    for name, snake in (
        ("os", "os"), ("osVersion", "os_version"), ("model", "model"), ("manufacturer", "manufacturer"),
        ("appVersion", "app_version"), ("appBuild", "app_build"), ("locale", "locale"),
        ("timezone", "timezone"), ("carrier", "carrier"), ("network", "network"),
        ("sdkName", "sdk_name"), ("sdkVersion", "sdk_version"),
    )
} | {"screenWidth": ("screen_width", "Int"), "screenHeight": ("screen_height", "Int")}

# Request headers that fill gaps in a batch's events (the `context` argument wins over them).
CONTEXT_HEADERS = {"x-user-id": "user_id", "x-anonymous-id": "anonymous_id", "x-session-id": "session_id"}
DEVICE_HEADERS = {"x-device-" + snake.replace("_", "-"): (snake, kind) for snake, kind in DEVICE_FIELDS.values()}


class InputError(ValueError):
    """The variable does not fit EventInput; str() is worded like graphql-core's message."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


# --- scalar rules, shared with the GraphQL scalars in pywrap.schema.scalars --------------


def parse_event_time(value: Any) -> str | int | float:
    """EventTime: an ISO 8601 string or epoch milliseconds; the SQL function judges the value."""
    if isinstance(value, str) or (isinstance(value, int | float) and not isinstance(value, bool)):
        return value
    raise ValueError("EventTime must be an ISO 8601 date-time string or a number of epoch milliseconds")


def parse_milliseconds(value: Any) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_SAFE_INTEGER:
        return value
    raise ValueError("Milliseconds must be a whole number from 0 to 2^53-1")


def _parse_int(value: Any) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and _INT_MIN <= value <= _INT_MAX:
        return value
    raise ValueError(f"Int cannot represent non-integer value: {value!r}")


def _coerce_value(kind: str, value: Any, path: str) -> Any:
    """A value of any kind but String (which _coerce_object checks inline, being most fields)."""
    try:
        if kind == "EventTime":
            return parse_event_time(value)
        if kind == "Milliseconds":
            return parse_milliseconds(value)
        if kind == "Int":
            return _parse_int(value)
    except ValueError as exc:
        raise InputError(path, str(exc)) from None
    if kind == "DeviceInput":
        return _coerce_object(value, DEVICE_FIELDS, "DeviceInput", path)
    if kind in _STRING_KINDS:
        raise InputError(path, f"String cannot represent a non string value: {value!r}")
    return value  # JSON: any value


_STRING_KINDS = frozenset({"String", "String!"})


def _coerce_object(value: Any, spec: Mapping[str, tuple[str, str]], type_name: str, path: str) -> dict[str, Any]:
    # The hot loop of the fast path (every field of every event): strings, the common case,
    # are checked inline; the rest goes through _coerce_value.
    if type(value) is not dict:
        raise InputError(path, f"Expected type '{type_name}' to be an object.")
    out: dict[str, Any] = {}
    for name, item in value.items():
        field = spec.get(name)
        if field is None:
            raise InputError(path, f"Field '{name}' is not defined by type '{type_name}'.")
        snake, kind = field
        if type(item) is str and kind in _STRING_KINDS:
            out[snake] = item
        elif item is None:
            if kind == "String!":
                raise InputError(f"{path}.{name}", "Expected non-nullable type 'String!' not to be null.")
        else:
            out[snake] = _coerce_value(kind, item, f"{path}.{name}")
    return out


def from_variable(raw: Any, variable: str) -> list[dict[str, Any]]:
    """The raw JSON value of `$variable: [EventInput!]!` as fn_track_events events.

    Raises ValueError with graphql-core's wording for a value that does not fit EventInput."""
    try:
        return _events_from_json(raw)
    except InputError as exc:
        at = f" at '{variable}{exc.path}'" if exc.path else ""
        raise ValueError(f"Variable '${variable}' got invalid value{at}; {exc.reason}") from None


def _events_from_json(raw: Any) -> list[dict[str, Any]]:
    if isinstance(raw, dict):
        raw = [raw]  # GraphQL input coercion: a single value where a list is expected
    if not isinstance(raw, list):
        raise InputError("", "Expected type '[EventInput!]' to be a list.")
    events = []
    for index, item in enumerate(raw):
        path = f"[{index}]"
        if item is None:
            raise InputError(path, "Expected non-nullable type 'EventInput!' not to be null.")
        event = _coerce_object(item, EVENT_FIELDS, "EventInput", path)
        if "type" not in event:
            raise InputError(path, "Field 'type' of required type 'String!' was not provided.")
        events.append(event)
    return events


def _without_nulls(value: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in value.items() if v is not None}


def from_inputs(inputs: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """EventInput values already coerced by graphql-core, as fn_track_events events."""
    events = []
    for item in inputs:
        event = _without_nulls(item)
        if "device" in event:
            event["device"] = _without_nulls(event["device"])
        events.append(event)
    return events


def request_context(headers: Mapping[str, str], argument: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """fn_track_events' p_context: X-User-Id, X-Session-Id, X-Anonymous-Id and X-Device-*
    headers, overridden field by field by the `context` argument; None when there is none."""
    context: dict[str, Any] = {}
    for header, key in CONTEXT_HEADERS.items():
        if value := headers.get(header):
            context[key] = value
    device: dict[str, Any] = {}
    for header, (key, kind) in DEVICE_HEADERS.items():
        if value := headers.get(header):
            # Headers are text; the screen sizes are numbers in the JSON (the SQL function
            # refuses the context, with a hint naming the headers, when they are not).
            device[key] = int(value) if kind == "Int" and value.isdigit() and len(value) < 10 else value
    if argument:
        given = _without_nulls(argument)
        device |= _without_nulls(given.pop("device", None) or {})
        context |= given
    if device:
        context["device"] = device
    return context or None
