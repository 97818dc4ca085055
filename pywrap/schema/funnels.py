"""Funnels: the seed's `funnel` query, served by analytics.fn_funnel."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import graphene

from ..auth import authorize_read
from ..context import RequestContext
from ..queries import FUNNEL, FunnelStepRow
from .ranges import DateRangeInput, date_bounds, enum_value


class FunnelBreakdown(graphene.Enum):
    NONE = "none"
    OS = "os"
    APP_VERSION = "app_version"


class FunnelStep(graphene.ObjectType):
    """How many users reached one step (see docs/analytics.md#funnels for the counting rule)."""

    step = graphene.String(required=True, description="the step's event type (the seed's field)")
    position = graphene.Int(required=True, description="1 for the first step")
    users = graphene.Int(required=True)
    conversion_percent = graphene.Float(required=True, description="users of this step / users of step 1, in %")
    dropoff_percent = graphene.Float(required=True, description="users lost since the previous step, in %")
    median_seconds_from_previous = graphene.Float(description="null for step 1 and when nobody got here")
    breakdown = graphene.String(required=True, description="the breakdown value, 'all' without a breakdown")

    @staticmethod
    def resolve_step(root: FunnelStepRow, _info: Any) -> str:
        return root.event_type

    @staticmethod
    def resolve_position(root: FunnelStepRow, _info: Any) -> int:
        return root.step


class FunnelsQuery(graphene.ObjectType):
    funnel = graphene.Field(
        graphene.NonNull(graphene.List(graphene.NonNull(FunnelStep))),
        app_id=graphene.ID(required=True),
        steps=graphene.List(graphene.NonNull(graphene.String), required=True,
                            description="event types in order, 1 to 10"),
        date_range=graphene.Argument(DateRangeInput, description="when step 1 happened (default: the last 30 days)"),
        conversion_window=graphene.Int(default_value=14 * 24 * 3600,
                                       description="seconds from step 1 within which the later steps count "
                                       "(default 14 days)"),
        breakdown=graphene.Argument(FunnelBreakdown, default_value=FunnelBreakdown.NONE),
        description="an ordered conversion funnel (read key of the app, or the admin token)",
    )

    @staticmethod
    async def resolve_funnel(_root: Any, info: graphene.ResolveInfo, app_id: str, steps: list[str],
                             conversion_window: int, breakdown: Any,
                             date_range: Any = None) -> list[FunnelStepRow]:
        ctx: RequestContext = info.context
        app = await authorize_read(ctx.db, ctx.credentials, app_id)
        start, end = date_bounds(date_range)
        return await ctx.db.all(FUNNEL, {"app": str(app.app_id), "steps": steps, "from": start, "to": end,
                                         "window": timedelta(seconds=conversion_window),
                                         "breakdown": enum_value(breakdown)}, FunnelStepRow)
