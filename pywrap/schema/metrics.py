"""Dashboard metrics: the seed's `metrics` query, served by analytics.fn_metrics from the rollups."""

from __future__ import annotations

from typing import Any

import graphene

from ..auth import authorize_read
from ..context import RequestContext
from ..queries import METRICS, MetricRow
from .ranges import DateRangeInput, date_bounds, enum_value


class Granularity(graphene.Enum):
    HOUR = "hour"
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


class MetricDimension(graphene.Enum):
    NONE = "none"
    OS = "os"
    APP_VERSION = "app_version"
    EVENT_TYPE = "event_type"


class Metric(graphene.ObjectType):
    """One metric of one period and dimension value (see docs/analytics.md for the definitions)."""

    metric_type = graphene.String(required=True, description="e.g. page_view_count, unique_users, sessions, "
                                  "avg_session_duration, crash_count")
    # The seed's query selects `metric_type` as written; Graphene would only expose metricType.
    metric_type_snake = graphene.String(name="metric_type", required=True,
                                        deprecation_reason="use metricType")
    value = graphene.Float(required=True, description="a count, or seconds for avg_session_duration")
    dimension = graphene.String(required=True, description="the dimension's value, or 'all' when not broken down")
    date = graphene.DateTime(required=True, description="start of the period: the UTC hour, or local midnight "
                             "in the app's time zone of the day, the ISO week's Monday or the month's first day")

    @staticmethod
    def resolve_metric_type_snake(root: MetricRow, _info: Any) -> str:
        return root.metric_type

    @staticmethod
    def resolve_value(root: MetricRow, _info: Any) -> float:
        return float(root.value)


class MetricsQuery(graphene.ObjectType):
    metrics = graphene.Field(
        graphene.NonNull(graphene.List(graphene.NonNull(Metric))),
        app_id=graphene.ID(required=True),
        date_range=graphene.Argument(DateRangeInput, required=True),
        granularity=graphene.Argument(Granularity, default_value=Granularity.DAY),
        dimension=graphene.Argument(MetricDimension, default_value=MetricDimension.NONE),
        metric_types=graphene.List(graphene.NonNull(graphene.String),
                                   description="only these metric types (default: all)"),
        description="event counts per type, unique users, sessions, average session duration and crashes "
        "per period (read key of the app, or the admin token)",
    )

    @staticmethod
    async def resolve_metrics(_root: Any, info: graphene.ResolveInfo, app_id: str, date_range: Any,
                              granularity: Any, dimension: Any,
                              metric_types: list[str] | None = None) -> list[MetricRow]:
        ctx: RequestContext = info.context
        app = await authorize_read(ctx.db, ctx.credentials, app_id)
        start, end = date_bounds(date_range)
        return await ctx.db.all(METRICS, {"app": str(app.app_id), "from": start, "to": end,
                                          "granularity": enum_value(granularity), "dimension": enum_value(dimension),
                                          "metric_types": metric_types}, MetricRow)
