"""Cohorts: the seed's `cohorts` query, createCohort / refreshCohort / deleteCohort, and
cohortRetention. Cohorts are analysis objects: the app's read key manages them, as does
the admin token."""

from __future__ import annotations

from typing import Any

import graphene
from psycopg.types.json import Jsonb

from ..auth import authorize_read
from ..context import RequestContext
from ..queries import (
    COHORT_RETENTION,
    CREATE_COHORT,
    DELETE_COHORT,
    LIST_COHORTS,
    REFRESH_COHORT,
    CohortRetentionRow,
    CohortRow,
    DeletedCohortRow,
)
from .ranges import enum_value
from .scalars import JSON


class RetentionInterval(graphene.Enum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


class Cohort(graphene.ObjectType):
    id = graphene.ID(required=True, description="uuid")
    identifier = graphene.String(required=True, description="unique within the app")
    name = graphene.String(required=True)
    filter = JSON(required=True, description="the cohort's filter (docs/analytics.md#cohort-filters)")
    user_count = graphene.Int(required=True, description="members at the last refresh")
    retention_rate = graphene.Float(description="week-1 retention of the members, 0 to 1 (docs/analytics.md); "
                                    "null when no member is old enough to tell")
    created_at = graphene.DateTime(required=True)
    refreshed_at = graphene.DateTime()

    @staticmethod
    def resolve_retention_rate(root: CohortRow, _info: Any) -> float | None:
        return None if root.retention_rate is None else float(root.retention_rate)


class CohortRetentionPeriod(graphene.ObjectType):
    period = graphene.Int(required=True, description="0 is the members' first period")
    period_start = graphene.Date(required=True, description="first local day of the period (docs/analytics.md)")
    cohort_size = graphene.Int(required=True)
    returning_users = graphene.Int(required=True)
    retention_rate = graphene.Float(description="returning users / cohort size, 0 to 1")

    @staticmethod
    def resolve_retention_rate(root: CohortRetentionRow, _info: Any) -> float | None:
        return None if root.retention_rate is None else float(root.retention_rate)


class CohortsQuery(graphene.ObjectType):
    cohorts = graphene.Field(
        graphene.NonNull(graphene.List(graphene.NonNull(Cohort))),
        app_id=graphene.ID(required=True),
        limit=graphene.Int(default_value=20, description="1 to 1000"),
        description="the app's cohorts, newest first (read key of the app, or the admin token)",
    )
    cohort_retention = graphene.Field(
        graphene.NonNull(graphene.List(graphene.NonNull(CohortRetentionPeriod))),
        app_id=graphene.ID(required=True),
        cohort_id=graphene.ID(required=True, description="the cohort's uuid or identifier"),
        interval=graphene.Argument(RetentionInterval, default_value=RetentionInterval.DAY),
        periods=graphene.Int(default_value=8),
        description="how many of a cohort's members came back in each period after their first",
    )

    @staticmethod
    async def resolve_cohorts(_root: Any, info: graphene.ResolveInfo, app_id: str, limit: int) -> list[CohortRow]:
        ctx: RequestContext = info.context
        app = await authorize_read(ctx.db, ctx.credentials, app_id)
        return await ctx.db.all(LIST_COHORTS, {"app": str(app.app_id), "limit": limit}, CohortRow)

    @staticmethod
    async def resolve_cohort_retention(_root: Any, info: graphene.ResolveInfo, app_id: str, cohort_id: str,
                                       interval: Any, periods: int) -> list[CohortRetentionRow]:
        ctx: RequestContext = info.context
        app = await authorize_read(ctx.db, ctx.credentials, app_id)
        return await ctx.db.all(COHORT_RETENTION, {"app": str(app.app_id), "cohort": cohort_id,
                                                   "interval": enum_value(interval), "periods": periods},
                                CohortRetentionRow)


class CreateCohort(graphene.Mutation):
    """Save a cohort and compute its members now."""

    class Arguments:
        app_id = graphene.ID(required=True)
        name = graphene.String(required=True)
        filter = JSON(required=True, description="docs/analytics.md#cohort-filters")
        identifier = graphene.String(description="unique within the app (default: derived from the name)")

    Output = graphene.NonNull(Cohort)

    @staticmethod
    async def mutate(_root: Any, info: graphene.ResolveInfo, app_id: str, name: str, filter: Any,
                     identifier: str | None = None) -> CohortRow:
        ctx: RequestContext = info.context
        app = await authorize_read(ctx.db, ctx.credentials, app_id)
        row = await ctx.db.one(CREATE_COHORT, {"app": str(app.app_id), "name": name, "filter": Jsonb(filter),
                                               "identifier": identifier}, CohortRow)
        assert row is not None  # the function raises rather than return nothing
        return row


class RefreshCohort(graphene.Mutation):
    """Recompute a cohort's members and size now (maintenance also does it periodically)."""

    class Arguments:
        app_id = graphene.ID(required=True)
        cohort_id = graphene.ID(required=True, description="the cohort's uuid or identifier")

    Output = graphene.NonNull(Cohort)

    @staticmethod
    async def mutate(_root: Any, info: graphene.ResolveInfo, app_id: str, cohort_id: str) -> CohortRow:
        ctx: RequestContext = info.context
        app = await authorize_read(ctx.db, ctx.credentials, app_id)
        row = await ctx.db.one(REFRESH_COHORT, {"app": str(app.app_id), "cohort": cohort_id}, CohortRow)
        assert row is not None
        return row


class DeleteCohort(graphene.Mutation):
    """Delete a cohort and its member list; true when it existed."""

    class Arguments:
        app_id = graphene.ID(required=True)
        cohort_id = graphene.ID(required=True, description="the cohort's uuid or identifier")

    Output = graphene.NonNull(graphene.Boolean)

    @staticmethod
    async def mutate(_root: Any, info: graphene.ResolveInfo, app_id: str, cohort_id: str) -> bool:
        ctx: RequestContext = info.context
        app = await authorize_read(ctx.db, ctx.credentials, app_id)
        row = await ctx.db.one(DELETE_COHORT, {"app": str(app.app_id), "cohort": cohort_id}, DeletedCohortRow)
        return bool(row and row.deleted)


class CohortsMutation(graphene.ObjectType):
    create_cohort = CreateCohort.Field()
    refresh_cohort = RefreshCohort.Field()
    delete_cohort = DeleteCohort.Field()

