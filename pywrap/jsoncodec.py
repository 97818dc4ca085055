"""JSON for the request path: orjson where it can, the standard library where it cannot.

A 500-event batch is about 160 kB of JSON, parsed once from the request and written once for
fn_track_events; orjson does each several times faster (a few ms per batch on this machine's
cores). It refuses what the standard library takes, and then the standard library decides:
unpaired UTF-16 surrogates ("\\ud800", which mobile clients do send and fn_track_events
reports per event). orjson reads integers beyond 64 bits as floats, silently: text with a run
of 19 or more digits goes to the standard library, which keeps them exact. NaN and Infinity
are not JSON: `loads` refuses them on both paths, so `dumps` never meets them in a request's
values.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


_LONG_DIGITS = re.compile(r"[0-9]{19}")
_LONG_DIGITS_BYTES = re.compile(rb"[0-9]{19}")


def loads(data: bytes | str) -> Any:
    """Parse JSON; ValueError (json.JSONDecodeError or orjson's, both ValueErrors) when invalid."""
    long_digits = (_LONG_DIGITS_BYTES if isinstance(data, bytes) else _LONG_DIGITS).search(data)  # type: ignore[arg-type]
    if long_digits is None:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
    return json.loads(data, parse_constant=_no_constants)


def dumps(value: Any) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value, allow_nan=False)
