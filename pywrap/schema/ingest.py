"""Ingestion: the trackEvents mutation (one fn_track_events call per batch)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import graphene
from psycopg.types.json import Json, Jsonb

from .. import events, jsoncodec
from ..context import RequestContext
from ..queries import TRACK_EVENTS, TrackEventsRow
from .scalars import JSON, EventTime, Milliseconds


class DeviceInput(graphene.InputObjectType):
    """The device an event came from. Per-event values win over the batch's context and headers."""

    os = graphene.String()
    os_version = graphene.String()
    model = graphene.String()
    manufacturer = graphene.String()
    app_version = graphene.String()
    app_build = graphene.String()
    locale = graphene.String()
    timezone = graphene.String()
    carrier = graphene.String()
    network = graphene.String()
    sdk_name = graphene.String()
    sdk_version = graphene.String()
    screen_width = graphene.Int()
    screen_height = graphene.Int()


class EventInput(graphene.InputObjectType):
    """One event. Only `type` is required; an event with an `eventId` is stored at most once per app."""

    type = graphene.String(required=True, description="e.g. page_view, screen_view, button_click, crash")
    event_id = graphene.String(description="client-generated id (a uuid is best): retries are counted as duplicates")
    timestamp = EventTime(description="when it happened on the device; default: when the batch arrived")
    user_id = graphene.String()
    anonymous_id = graphene.String()
    session_id = graphene.String()
    path = graphene.String()
    label = graphene.String()
    duration = Milliseconds()
    device = DeviceInput()
    metadata = JSON(description="free-form properties, a JSON object")


class EventContextInput(graphene.InputObjectType):
    """Fills gaps in every event of the batch; wins over the X-User-Id / X-Session-Id /
    X-Anonymous-Id / X-Device-* headers."""

    user_id = graphene.String()
    anonymous_id = graphene.String()
    session_id = graphene.String()
    device = DeviceInput()


class RejectedEvent(graphene.ObjectType):
    index = graphene.Int(required=True, description="0-based position in the batch")
    code = graphene.String(required=True, description="e.g. invalid_field, invalid_timestamp, too_old")
    message = graphene.String(required=True)


class TrackEventsResult(graphene.ObjectType):
    success = graphene.Boolean(required=True, description="true: the batch is committed (rejected events aside)")
    event_count = graphene.Int(required=True, description="events stored by this call")
    duplicate_count = graphene.Int(required=True, description="events whose eventId was already stored")
    clamped_count = graphene.Int(required=True, description="events dated > 23 h ahead, stored at arrival time")
    rejected = graphene.List(graphene.NonNull(RejectedEvent), required=True,
                             description="events not stored, and why; retrying them will not help")


class TrackEvents(graphene.Mutation):
    """Send a batch of up to 2000 events (10 MB) with the app's write key. Safe to retry."""

    class Arguments:
        app_id = graphene.ID(required=True, description="the app's identifier (e.g. app123) or uuid")
        events = graphene.List(graphene.NonNull(EventInput), required=True)
        sent_at = graphene.DateTime(description="when the device sent the batch, by its clock (corrects skew)")
        context = EventContextInput()

    Output = TrackEventsResult

    @staticmethod
    async def mutate(
        root: Any,
        info: graphene.ResolveInfo,
        app_id: str,
        events: list[Any],
        sent_at: datetime | None = None,
        context: dict[str, Any] | None = None,
    ) -> TrackEventsResult:
        ctx: RequestContext = info.context
        batch = ctx.prevalidated_events if ctx.prevalidated_events is not None else _events.from_inputs(events)
        request_context = _events.request_context(ctx.headers, context)
        row = await ctx.db.one(
            TRACK_EVENTS,
            {
                "app": app_id,
                "api_key": ctx.credentials.secret,
                "events": Json(batch, dumps=jsoncodec.dumps),
                "sent_at": sent_at,
                "context": Jsonb(request_context) if request_context is not None else None,
            },
            TrackEventsRow,
        )
        assert row is not None
        return TrackEventsResult(
            success=True,
            event_count=row.accepted,
            duplicate_count=row.duplicates,
            clamped_count=row.clamped,
            rejected=[RejectedEvent(**r) for r in row.rejected],
        )


# the argument named `events` shadows the module inside mutate()
_events = events


class IngestMutation(graphene.ObjectType):
    track_events = TrackEvents.Field()
