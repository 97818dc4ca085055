"""Per-user data rights: the deleteUser mutation (admin token only).

Exporting a user's events is not GraphQL (a response is one JSON document, built whole): it is
the streaming HTTP endpoint GET /apps/{appId}/users/{userId}/events.jsonl (pywrap.export).
"""

from __future__ import annotations

from typing import Any

import graphene

from ..auth import require_admin
from ..context import RequestContext
from ..queries import DELETE_USER, DeletedUserRow


class DeleteUserResult(graphene.ObjectType):
    deletion_id = graphene.ID(required=True, description="id of the audit record (it holds no user id)")
    deleted_events = graphene.Int(required=True, description="raw events deleted")
    deleted_user_days = graphene.Int(required=True, description="days the user counted as active (ca_user_daily rows)")
    deleted_cohort_memberships = graphene.Int(required=True)
    oldest_event_at = graphene.DateTime(description="time of the oldest deleted event; null when none was found")


class DeleteUser(graphene.Mutation):
    """Erase a user's events, per-user aggregates and cohort memberships (admin token only).

    A user is everything whose coalesce(user_id, anonymous_id) is userId or one of
    anonymousIds. Aggregates are corrected before this returns (docs/privacy.md). Deleting
    twice is harmless: the second call finds nothing."""

    class Arguments:
        app_id = graphene.ID(required=True)
        user_id = graphene.String(required=True,
                                  description="the user id (or the anonymous id of a user who never signed in)")
        anonymous_ids = graphene.List(graphene.NonNull(graphene.String),
                                      description="more anonymous (device) ids of the same person, at most 100")

    Output = DeleteUserResult

    @staticmethod
    async def mutate(_root: Any, info: graphene.ResolveInfo, app_id: str, user_id: str,
                     anonymous_ids: list[str] | None = None) -> DeleteUserResult:
        ctx: RequestContext = info.context
        require_admin(ctx.credentials)
        row = await ctx.db.one(DELETE_USER, {
            "app": app_id, "user_id": user_id, "anonymous_ids": anonymous_ids,
            "requested_by": f"graphql admin, request {ctx.request_id}"}, DeletedUserRow)
        assert row is not None  # a CALL returns its INOUT parameters as one row
        return DeleteUserResult(deletion_id=row.deletion_id, deleted_events=row.deleted_events,
                                deleted_user_days=row.deleted_user_days,
                                deleted_cohort_memberships=row.deleted_cohort_memberships,
                                oldest_event_at=row.oldest_event_at)


class UsersMutation(graphene.ObjectType):
    delete_user = DeleteUser.Field()
