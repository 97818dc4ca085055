"""pywrap.jsoncodec: orjson's speed with the standard library's reach, and no NaN."""

from __future__ import annotations

import json

import pytest

from pywrap import jsoncodec


@pytest.mark.parametrize("text", [
    '{"a": [1, 2.5, "x", null, true], "b": {"c": "é☃"}}',
    '"\\ud800 alone"',                 # unpaired surrogate: orjson refuses, json takes it
    '123456789012345678901234567890',  # beyond 64 bits
])
def test_loads_equals_the_standard_library(text):
    assert jsoncodec.loads(text) == json.loads(text)
    assert jsoncodec.loads(text.encode()) == json.loads(text)


@pytest.mark.parametrize("text", ["NaN", '{"d": Infinity}', "[-Infinity]", "{", "", "\xff"])
def test_loads_refuses_what_is_not_json(text):
    with pytest.raises(ValueError):
        jsoncodec.loads(text.encode("latin-1"))


@pytest.mark.parametrize("value", [
    {"a": [1, 2.5, "x", None, True], "b": {"c": "é☃"}},
    ["\ud800 alone"],
    [123456789012345678901234567890],
])
def test_dumps_round_trips(value):
    assert json.loads(jsoncodec.dumps(value)) == value
