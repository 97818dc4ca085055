"""The GraphQL schema, assembled from one module per area.

Each area module holds its types and a Query/Mutation/Subscription mixin (a graphene
ObjectType whose fields the roots below inherit). Adding an area (metrics, funnels, cohorts,
retention) is a new module with e.g. `class MetricsQuery(graphene.ObjectType)` and one more
base class here; resolvers authorize with pywrap.auth.authorize_read and call one SQL
function through pywrap.queries.
"""

from __future__ import annotations

import graphene

from .apps import AppsMutation, AppsQuery
from .cohorts import CohortsMutation, CohortsQuery
from .funnels import FunnelsQuery
from .ingest import IngestMutation
from .live import LiveSubscription
from .metrics import MetricsQuery
from .retention import RetentionQuery
from .users import UsersMutation


class Query(MetricsQuery, FunnelsQuery, CohortsQuery, RetentionQuery, AppsQuery, graphene.ObjectType):
    pass


class Mutation(IngestMutation, CohortsMutation, AppsMutation, UsersMutation, graphene.ObjectType):
    pass


class Subscription(LiveSubscription, graphene.ObjectType):
    pass


schema = graphene.Schema(query=Query, mutation=Mutation, subscription=Subscription)
graphql_schema = schema.graphql_schema
