"""Runs GraphQL documents: parse and validate once per distinct text, execute per request.

Three things make the hot path (a mobile SDK sending the same trackEvents document with a
new `$events` variable every few seconds) cheap:

1. Parsed and validated documents are kept in an LRU cache keyed by the query text, so a
   repeated document costs a dictionary lookup instead of parse + validate.
2. The cache entry also records, per operation, whether it is a plain
   `mutation (...$events: [EventInput!]!) { trackEvents(events: $events ...) }`. For those,
   the executor checks the raw `$events` JSON against EventInput itself (pywrap.events) and
   hands graphql-core an empty list in its place, so graphql-core's per-value coercion of
   hundreds of input objects is skipped. The resolver takes the checked list from the
   request context. The schema still declares EventInput, for introspection, inline
   literals and every other document shape, which take graphql-core's ordinary path.
3. Documents longer than `cacheable_query_chars` (a batch written inline) are not cached.

Limits: document length and token count (parser), selection depth and the number of field
selections once fragments are expanded (a validation rule).
"""

from __future__ import annotations

import inspect
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    DocumentNode,
    ExecutionResult,
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSchema,
    InlineFragmentNode,
    ListTypeNode,
    NamedTypeNode,
    NonNullTypeNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    ValidationRule,
    VariableNode,
    execute,
    get_operation_ast,
    parse,
    specified_rules,
    subscribe,
    validate,
)
from graphql.language import Visitor, visit

from . import events
from .config import Settings
from .context import RequestContext
from .errors import Code, error_dict, format_graphql_error

log = logging.getLogger(__name__)

FAST_FIELD = "trackEvents"
FAST_ARGUMENT = "events"
FAST_INPUT_TYPE = "EventInput"


@dataclass(frozen=True)
class Prepared:
    """A document after parse and validation, or the errors that stopped it."""

    document: DocumentNode | None
    errors: list[dict[str, Any]] = field(default_factory=list)
    # operation name (None: the document's only, anonymous operation) -> `$events` variable name
    fast_events: Mapping[str | None, str] = field(default_factory=dict)

    def operation(self, operation_name: str | None) -> OperationDefinitionNode | None:
        return get_operation_ast(self.document, operation_name) if self.document else None


class DocumentCache:
    def __init__(self, size: int) -> None:
        self._size = size
        self._entries: OrderedDict[str, Prepared] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, text: str) -> Prepared | None:
        found = self._entries.get(text)
        if found is None:
            self.misses += 1
            return None
        self.hits += 1
        self._entries.move_to_end(text)
        return found

    def put(self, text: str, prepared: Prepared) -> None:
        self._entries[text] = prepared
        self._entries.move_to_end(text)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)


class _LimitExceeded(Exception):
    pass


def limits_rule(max_depth: int, max_fields: int) -> type[ValidationRule]:
    """A validation rule refusing operations nested deeper than `max_depth` fields, or holding
    more than `max_fields` field selections once fragments are expanded (alias bombs)."""

    class QueryLimits(ValidationRule):
        def enter_operation_definition(self, node: OperationDefinitionNode, *_args: Any) -> None:
            count = 0

            def walk(selection_set: SelectionSetNode, depth: int, fragments: frozenset[str]) -> None:
                nonlocal count
                for selection in selection_set.selections:
                    if isinstance(selection, FieldNode):
                        count += 1
                        if depth > max_depth:
                            raise _LimitExceeded(f"exceeds the maximum depth of {max_depth}")
                        if count > max_fields:
                            raise _LimitExceeded(f"selects more than {max_fields} fields")
                        if selection.selection_set:
                            walk(selection.selection_set, depth + 1, fragments)
                    elif isinstance(selection, InlineFragmentNode):
                        walk(selection.selection_set, depth, fragments)
                    elif isinstance(selection, FragmentSpreadNode):
                        name = selection.name.value
                        fragment = self.context.get_fragment(name)
                        if fragment is not None and name not in fragments:  # cycles: NoFragmentCycles reports
                            walk(fragment.selection_set, depth, fragments | {name})

            try:
                walk(node.selection_set, 1, frozenset())
            except _LimitExceeded as exc:
                name = f" '{node.name.value}'" if node.name else ""
                self.report_error(GraphQLError(f"Operation{name} {exc}.", node))

    return QueryLimits


def _is_event_list(type_node: Any) -> bool:
    # [EventInput!]! exactly: what the trackEvents argument declares.
    return (
        isinstance(type_node, NonNullTypeNode)
        and isinstance(type_node.type, ListTypeNode)
        and isinstance(type_node.type.type, NonNullTypeNode)
        and isinstance(type_node.type.type.type, NamedTypeNode)
        and type_node.type.type.type.name.value == FAST_INPUT_TYPE
    )


def _variable_uses(document: DocumentNode) -> dict[str, int]:
    uses: dict[str, int] = {}

    class Count(Visitor):
        def enter_variable_definition(self, *_args: Any) -> Any:
            return Visitor.SKIP  # a definition is not a use

        def enter_variable(self, node: VariableNode, *_args: Any) -> None:
            uses[node.name.value] = uses.get(node.name.value, 0) + 1

    visit(document, Count())
    return uses


def _fast_event_variables(document: DocumentNode) -> dict[str | None, str]:
    """Operations whose `$events` can skip graphql-core's coercion (see the module docstring)."""
    found: dict[str | None, str] = {}
    uses: dict[str, int] | None = None
    for operation in document.definitions:
        if not isinstance(operation, OperationDefinitionNode) or operation.operation != OperationType.MUTATION:
            continue
        candidates = {d.variable.name.value for d in operation.variable_definitions or () if _is_event_list(d.type)}
        if not candidates:
            continue
        uses = uses if uses is not None else _variable_uses(document)
        for selection in operation.selection_set.selections:
            if not isinstance(selection, FieldNode) or selection.name.value != FAST_FIELD:
                continue
            for argument in selection.arguments or ():
                value = argument.value
                if (
                    argument.name.value == FAST_ARGUMENT
                    and isinstance(value, VariableNode)
                    and value.name.value in candidates
                    and uses.get(value.name.value) == 1
                ):
                    key = operation.name.value if operation.name else None
                    if key in found:  # two trackEvents fields: let graphql-core do it all
                        found.pop(key)
                        break
                    found[key] = value.name.value
    return found


class Executor:
    def __init__(self, schema: GraphQLSchema, settings: Settings) -> None:
        self.schema = schema
        self.settings = settings
        self.rules = (*specified_rules, limits_rule(settings.max_depth, settings.max_fields))
        self.cache = DocumentCache(settings.document_cache)

    # -- parse and validate ------------------------------------------------------------

    def prepare(self, query: str) -> Prepared:
        cacheable = len(query) <= self.settings.cacheable_query_chars
        if cacheable and (found := self.cache.get(query)) is not None:
            return found
        prepared = self._prepare(query)
        if cacheable:
            self.cache.put(query, prepared)
        return prepared

    def _prepare(self, query: str) -> Prepared:
        if len(query) > self.settings.max_query_chars:
            return Prepared(None, [error_dict(
                f"The document is longer than {self.settings.max_query_chars} characters.",
                Code.PAYLOAD_TOO_LARGE, hint="Send large batches in variables, not inline.")])
        try:
            document = parse(query, max_lexical_tokens=self.settings.max_query_tokens, no_location=False)
        except GraphQLError as exc:
            code = Code.PAYLOAD_TOO_LARGE if "more than" in exc.message and "tokens" in exc.message \
                else Code.GRAPHQL_PARSE_FAILED
            return Prepared(None, [error_dict(exc.message, code, locations=_locations(exc))])
        errors = validate(self.schema, document, self.rules)
        if errors:
            return Prepared(None, [error_dict(e.message, Code.GRAPHQL_VALIDATION_FAILED, locations=_locations(e))
                                   for e in errors])
        return Prepared(document, fast_events=_fast_event_variables(document))

    # -- execute -----------------------------------------------------------------------

    def _variables(
        self, prepared: Prepared, variables: dict[str, Any] | None, operation_name: str | None, ctx: RequestContext
    ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """(variables to hand graphql-core, or an error response); applies the events fast path."""
        operation = prepared.operation(operation_name)
        name = operation.name.value if operation is not None and operation.name else None
        variable = prepared.fast_events.get(name) if operation is not None else None
        if variable is None or not variables or variables.get(variable) is None:
            return variables, None
        try:
            ctx.prevalidated_events = events.from_variable(variables[variable], variable)
        except ValueError as exc:
            return None, {"errors": [error_dict(str(exc), Code.BAD_USER_INPUT)]}
        return {**variables, variable: []}, None

    async def execute(
        self,
        prepared: Prepared,
        variables: dict[str, Any] | None,
        operation_name: str | None,
        ctx: RequestContext,
        *,
        allow_mutations: bool = True,
    ) -> dict[str, Any]:
        """The response body for a query or mutation."""
        if prepared.document is None:
            return {"errors": prepared.errors}
        operation = prepared.operation(operation_name)
        if operation is not None:
            if operation.operation == OperationType.SUBSCRIPTION:
                return {"errors": [error_dict(
                    "Subscriptions are served over WebSocket (graphql-transport-ws) at this URL.",
                    Code.BAD_USER_INPUT)]}
            if operation.operation == OperationType.MUTATION and not allow_mutations:
                return {"errors": [error_dict("Mutations need a POST request.", Code.BAD_USER_INPUT)]}
        variables, failed = self._variables(prepared, variables, operation_name, ctx)
        if failed is not None:
            return failed
        result = execute(self.schema, prepared.document, context_value=ctx, variable_values=variables,
                         operation_name=operation_name)
        if inspect.isawaitable(result):
            result = await result
        return self.format(result, ctx.request_id)

    async def subscribe(
        self, prepared: Prepared, variables: dict[str, Any] | None, operation_name: str | None, ctx: RequestContext
    ) -> AsyncIterator[ExecutionResult] | dict[str, Any]:
        """An iterator of results for a subscription, or the error response that stopped it."""
        assert prepared.document is not None
        result = await subscribe(self.schema, prepared.document, context_value=ctx, variable_values=variables,
                                 operation_name=operation_name)
        if isinstance(result, ExecutionResult):
            return self.format(result, ctx.request_id)
        return result

    @staticmethod
    def format(result: ExecutionResult, request_id: str) -> dict[str, Any]:
        errors = result.errors or []
        # No data and no error with a path: graphql-core stopped before any resolver ran
        # (variables, operation choice), so the messages describe the request itself.
        request_phase = result.data is None and all(e.path is None for e in errors)
        body: dict[str, Any] = {}
        if errors:
            body["errors"] = [format_graphql_error(e, request_id=request_id, request_phase=request_phase)
                              for e in errors]
        if not (request_phase and errors):
            body["data"] = result.data
        return body


def _locations(error: GraphQLError) -> list[dict[str, int]] | None:
    return [{"line": loc.line, "column": loc.column} for loc in error.locations or ()] or None
