"""Scalars beyond GraphQL's own: JSON, EventTime and Milliseconds (DateTime and Date are Graphene's)."""

from __future__ import annotations

from typing import Any

import graphene
from graphql import FloatValueNode, IntValueNode, StringValueNode, Undefined, ValueNode, value_from_ast_untyped

from .. import events


class _PassThrough(graphene.Scalar):
    """A scalar whose values go to SQL as they are, once `check` has accepted them.

    Subclasses set `check` (returns the value, or raises ValueError with a message for the
    client). The rules live in pywrap.events, which the executor's fast path uses too."""

    @staticmethod
    def check(value: Any) -> Any:
        return value

    @staticmethod
    def serialize(value: Any) -> Any:
        return value

    @classmethod
    def parse_value(cls, value: Any) -> Any:
        return cls.check(value)


class JSON(_PassThrough):
    """Any JSON value. As a literal it is written in GraphQL syntax, e.g. `metadata: { referrer: "/search" }`."""

    @staticmethod
    def parse_literal(node: ValueNode, variables: dict[str, Any] | None = None) -> Any:
        # An object literal is the common case (the seed's metadata); variables inside it
        # are resolved too, so `metadata: { screen: $screen }` works.
        return value_from_ast_untyped(node, variables)


class EventTime(_PassThrough):
    """When an event happened: an ISO 8601 date-time ("2026-01-31T12:00:00Z"; UTC when no offset
    is given) or a number of milliseconds since 1970-01-01 UTC. Invalid values reject the one
    event (code invalid_timestamp), not the batch."""

    check = staticmethod(events.parse_event_time)

    @staticmethod
    def parse_literal(node: ValueNode, _variables: dict[str, Any] | None = None) -> Any:
        if isinstance(node, StringValueNode):
            return node.value
        if isinstance(node, IntValueNode):
            return int(node.value)
        if isinstance(node, FloatValueNode):
            return float(node.value)
        return Undefined


class Milliseconds(_PassThrough):
    """A duration in whole milliseconds, 0 to 2^53-1 (GraphQL's Int stops at 2^31-1, about 25 days)."""

    check = staticmethod(events.parse_milliseconds)

    @staticmethod
    def parse_literal(node: ValueNode, _variables: dict[str, Any] | None = None) -> Any:
        if not isinstance(node, IntValueNode | FloatValueNode):
            return Undefined
        try:
            return events.parse_milliseconds(float(node.value) if isinstance(node, FloatValueNode) else int(node.value))
        except ValueError:
            return Undefined
