"""The retention matrix: analytics.fn_retention."""

from __future__ import annotations

from typing import Any

import graphene

from ..auth import authorize_read
from ..context import RequestContext
from ..queries import RETENTION, RetentionCellRow
from .cohorts import RetentionInterval
from .ranges import DateRangeInput, enum_value


class RetentionMode(graphene.Enum):
    FIRST_TIME = "first_time"
    RECURRING = "recurring"


class RetentionCell(graphene.ObjectType):
    cohort_start = graphene.Date(required=True, description="first local day of the cohort's period")
    cohort_size = graphene.Int(required=True)
    period = graphene.Int(required=True, description="periods after the cohort's own (0 = the cohort period)")
    users = graphene.Int(required=True, description="cohort members active in that period")
    rate = graphene.Float(description="users / cohort size, 0 to 1")

    @staticmethod
    def resolve_rate(root: RetentionCellRow, _info: Any) -> float | None:
        return None if root.rate is None else float(root.rate)


class RetentionQuery(graphene.ObjectType):
    retention = graphene.Field(
        graphene.NonNull(graphene.List(graphene.NonNull(RetentionCell))),
        app_id=graphene.ID(required=True),
        date_range=graphene.Argument(DateRangeInput, required=True, description="the cohorts' periods"),
        interval=graphene.Argument(RetentionInterval, default_value=RetentionInterval.WEEK),
        periods=graphene.Int(default_value=8),
        mode=graphene.Argument(RetentionMode, default_value=RetentionMode.FIRST_TIME,
                               description="FIRST_TIME: cohorts of new users; RECURRING: of active users"),
        description="a retention matrix, one cell per cohort and period (read key of the app, or the admin token)",
    )

    @staticmethod
    async def resolve_retention(_root: Any, info: graphene.ResolveInfo, app_id: str, date_range: Any,
                                interval: Any, periods: int, mode: Any) -> list[RetentionCellRow]:
        ctx: RequestContext = info.context
        app = await authorize_read(ctx.db, ctx.credentials, app_id)
        return await ctx.db.all(RETENTION, {"app": str(app.app_id), "from": date_range.from_, "to": date_range.to,
                                            "interval": enum_value(interval), "periods": periods,
                                            "mode": enum_value(mode)}, RetentionCellRow)
