"""Inputs that several analytics queries share."""

from __future__ import annotations

from datetime import date
from typing import Any

import graphene


class DateRangeInput(graphene.InputObjectType):
    """Local dates in the app's time zone, both included (as in the seed: {from: "2024-01-01", to: "2024-01-31"})."""

    from_ = graphene.Date(name="from", required=True)
    to = graphene.Date(required=True)


def date_bounds(date_range: Any) -> tuple[date | None, date | None]:
    """(from, to) of an optional DateRangeInput; (None, None) lets the SQL function pick its default."""
    if date_range is None:
        return None, None
    return date_range.from_, date_range.to


def enum_value(member: Any) -> Any:
    """The SQL value of a Graphene enum argument (resolvers get the member; defaults may be either)."""
    return getattr(member, "value", member)
