"""Apps and API keys: app/apps queries (admin, or a read key for its own app) and the admin
mutations createApp, rotateApiKey and revokeApiKey."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import graphene

from ..auth import authorize_read, require_admin
from ..context import RequestContext
from ..errors import ApiError, Code
from ..queries import (
    CREATE_APP,
    LIST_APPS,
    REVOKE_API_KEY,
    ROTATE_API_KEY,
    AppRow,
    CreatedAppRow,
    RevokedKeyRow,
    RotatedKeyRow,
)


class ApiKeyKind(graphene.Enum):
    WRITE = "write"
    READ = "read"


@dataclass(frozen=True)
class _KeyRow:
    id: str
    kind: str
    key_prefix: str
    label: str | None
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def from_json(cls, item: dict[str, Any]) -> _KeyRow:
        def when(name: str) -> datetime | None:
            return datetime.fromisoformat(item[name]) if item.get(name) else None

        return cls(item["id"], item["kind"], item["key_prefix"], item.get("label"),
                   when("created_at"), when("last_used_at"), when("revoked_at"))  # type: ignore[arg-type]


class ApiKey(graphene.ObjectType):
    """An API key's metadata; the key itself is shown only when it is created."""

    id = graphene.ID(required=True)
    kind = graphene.Field(ApiKeyKind, required=True)
    prefix = graphene.String(required=True, description="the key's first characters, to recognise it")
    label = graphene.String()
    created_at = graphene.DateTime(required=True)
    last_used_at = graphene.DateTime(description="refreshed at most once a minute")
    revoked_at = graphene.DateTime(description="when the key stops (or stopped) working")
    active = graphene.Boolean(required=True)

    @staticmethod
    def resolve_prefix(root: _KeyRow, _info: Any) -> str:
        return root.key_prefix

    @staticmethod
    def resolve_active(root: _KeyRow, _info: Any) -> bool:
        return root.revoked_at is None or root.revoked_at > datetime.now(root.revoked_at.tzinfo)


class App(graphene.ObjectType):
    id = graphene.ID(required=True, description="uuid")
    identifier = graphene.String(required=True, description="the id SDKs send, e.g. app123")
    name = graphene.String(required=True)
    owner_id = graphene.ID(required=True)
    timezone = graphene.String(required=True)
    retention_days = graphene.Int(required=True)
    created_at = graphene.DateTime(required=True)
    api_keys = graphene.List(graphene.NonNull(ApiKey), required=True, description="admin only")

    @staticmethod
    def resolve_id(root: AppRow, _info: Any) -> UUID:
        return root.app_id

    @staticmethod
    def resolve_api_keys(root: AppRow, info: graphene.ResolveInfo) -> list[_KeyRow]:
        ctx: RequestContext = info.context
        if not ctx.credentials.is_admin:
            raise ApiError(Code.FORBIDDEN, "only the admin token may list API keys")
        return [_KeyRow.from_json(k) for k in root.api_keys]


class AppsQuery(graphene.ObjectType):
    app = graphene.Field(App, app_id=graphene.ID(required=True),
                         description="one app: admin token, or the app's read key")
    apps = graphene.Field(graphene.NonNull(graphene.List(graphene.NonNull(App))),
                          limit=graphene.Int(default_value=100), offset=graphene.Int(default_value=0),
                          description="every app, a page at a time (admin only)")

    @staticmethod
    async def resolve_app(_root: Any, info: graphene.ResolveInfo, app_id: str) -> AppRow | None:
        ctx: RequestContext = info.context
        if not ctx.credentials.is_admin:
            app_id = str((await authorize_read(ctx.db, ctx.credentials, app_id)).app_id)
        return await ctx.db.one(LIST_APPS, {"app": app_id, "limit": 1, "offset": 0}, AppRow)

    @staticmethod
    async def resolve_apps(_root: Any, info: graphene.ResolveInfo, limit: int, offset: int) -> list[AppRow]:
        ctx: RequestContext = info.context
        require_admin(ctx.credentials)
        return await ctx.db.all(LIST_APPS, {"app": None, "limit": limit, "offset": offset}, AppRow)


class CreateAppResult(graphene.ObjectType):
    app = graphene.Field(App, required=True)
    write_key = graphene.String(required=True, description="shown once: only its hash is stored")
    read_key = graphene.String(required=True, description="shown once: only its hash is stored")


class CreateApp(graphene.Mutation):
    """Create an app with one write key and one read key (admin)."""

    class Arguments:
        identifier = graphene.String(required=True, description="1-64 letters, digits, '.', '_' or '-'")
        name = graphene.String(description="default: the identifier")
        timezone = graphene.String(default_value="UTC", description="IANA zone for daily buckets")
        retention_days = graphene.Int(default_value=90)
        owner_id = graphene.ID(description="uuid of the owner; default: a new one")

    Output = CreateAppResult

    @staticmethod
    async def mutate(_root: Any, info: graphene.ResolveInfo, identifier: str, timezone: str, retention_days: int,
                     name: str | None = None, owner_id: str | None = None) -> CreateAppResult:
        ctx: RequestContext = info.context
        require_admin(ctx.credentials)
        created = await ctx.db.one(CREATE_APP, {
            "identifier": identifier, "name": name or identifier, "owner_id": owner_id,
            "timezone": timezone, "retention_days": retention_days}, CreatedAppRow)
        assert created is not None
        app = await ctx.db.one(LIST_APPS, {"app": str(created.app_id), "limit": 1, "offset": 0}, AppRow)
        return CreateAppResult(app=app, write_key=created.write_key, read_key=created.read_key)


class RotateApiKeyResult(graphene.ObjectType):
    key_id = graphene.ID(required=True)
    kind = graphene.Field(ApiKeyKind, required=True)
    key = graphene.String(required=True, description="the new key, shown once")
    previous_keys_expire_at = graphene.DateTime(description="when the replaced keys stop working")


class RotateApiKey(graphene.Mutation):
    """Issue a new key and retire the app's other keys of that kind after graceSeconds (admin)."""

    class Arguments:
        app_id = graphene.ID(required=True)
        kind = ApiKeyKind(required=True)
        grace_seconds = graphene.Int(default_value=0, description="0 to 2592000 (30 days)")

    Output = RotateApiKeyResult

    @staticmethod
    async def mutate(_root: Any, info: graphene.ResolveInfo, app_id: str, kind: Any,
                     grace_seconds: int) -> RotateApiKeyResult:
        ctx: RequestContext = info.context
        require_admin(ctx.credentials)
        row = await ctx.db.one(ROTATE_API_KEY, {"app": app_id, "kind": kind.value, "grace_seconds": grace_seconds},
                               RotatedKeyRow)
        assert row is not None
        return RotateApiKeyResult(key_id=row.key_id, kind=row.kind, key=row.api_key,
                                  previous_keys_expire_at=row.previous_keys_expire_at)


class RevokeApiKeyResult(graphene.ObjectType):
    key_id = graphene.ID(required=True)
    revoked_at = graphene.DateTime(required=True)


class RevokeApiKey(graphene.Mutation):
    """Revoke a key at once (admin). Revoking twice keeps the first time."""

    class Arguments:
        key_id = graphene.ID(required=True)

    Output = RevokeApiKeyResult

    @staticmethod
    async def mutate(_root: Any, info: graphene.ResolveInfo, key_id: str) -> RevokeApiKeyResult:
        ctx: RequestContext = info.context
        require_admin(ctx.credentials)
        row = await ctx.db.one(REVOKE_API_KEY, {"key_id": key_id}, RevokedKeyRow)
        assert row is not None
        return RevokeApiKeyResult(key_id=key_id, revoked_at=row.revoked_at)


class AppsMutation(graphene.ObjectType):
    create_app = CreateApp.Field()
    rotate_api_key = RotateApiKey.Field()
    revoke_api_key = RevokeApiKey.Field()
