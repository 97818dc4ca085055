"""GraphQL overhead of one trackEvents batch, without a database: stock path vs pywrap's executor.

    .venv/bin/python -m bench.graphql_coercion [--events 500] [--repeat 200]

Both variants run the same document with a 500-event `$events: [EventInput!]!` variable
against the same schema, and the resolver's database call is replaced by a stub that only
serializes the batch to JSON (what psycopg would send), so the figures are the Python
layer's own cost per batch:

* stock   graphql-core's graphql(): parse + validate + coerce every EventInput + execute,
          every time (what Graphene's schema.execute does)
* cached  pywrap.executor.Executor: document from the LRU cache, `$events` checked by
          pywrap.events.from_variable instead of graphql-core's coercion, then execute
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import time
import uuid
from typing import Any

from graphql import graphql

from pywrap.auth import Credentials
from pywrap.config import Settings
from pywrap.context import RequestContext
from pywrap.executor import Executor
from pywrap.queries import TrackEventsRow
from pywrap.schema import graphql_schema

DOCUMENT = """
mutation Track($appId: ID!, $events: [EventInput!]!, $sentAt: DateTime) {
  trackEvents(appId: $appId, events: $events, sentAt: $sentAt) {
    success eventCount duplicateCount clampedCount rejected { index code message }
  }
}
"""


class StubDatabase:
    """Stands in for pywrap.db.Database: serializes the batch, answers 'all accepted'."""

    async def one(self, _query: Any, params: dict[str, Any], _row: Any) -> TrackEventsRow:
        events = params["events"].obj
        json.dumps(events)
        return TrackEventsRow(accepted=len(events), duplicates=0, clamped=0, rejected=[])


def make_events(n: int) -> list[dict[str, Any]]:
    rng = random.Random(7)
    return [
        {
            "type": rng.choice(["page_view", "screen_view", "button_click", "screen_time"]),
            "eventId": str(uuid.UUID(int=rng.getrandbits(128))),
            "timestamp": "2026-01-31T12:00:00.123Z",
            "userId": f"user-{rng.randrange(10_000)}",
            "sessionId": f"s-{rng.randrange(100_000)}",
            "path": "/products/" + str(rng.randrange(1000)),
            "device": {"os": "iOS", "osVersion": "17.4", "model": "iPhone15,2", "appVersion": "3.2.1"},
            "metadata": {"referrer": "/search", "position": rng.randrange(20)},
        }
        for _ in range(n)
    ]


def context() -> RequestContext:
    return RequestContext(db=StubDatabase(), hub=None, credentials=Credentials("maw_x", False),  # type: ignore[arg-type]
                          headers={}, request_id="bench")


async def stock(variables: dict[str, Any]) -> None:
    result = await graphql(graphql_schema, DOCUMENT, context_value=context(), variable_values=variables)
    assert not result.errors and result.data["trackEvents"]["eventCount"] == len(variables["events"]), result


async def cached(executor: Executor, variables: dict[str, Any]) -> None:
    body = await executor.execute(executor.prepare(DOCUMENT), variables, None, context())
    assert "errors" not in body and body["data"]["trackEvents"]["eventCount"] == len(variables["events"]), body


async def measure(label: str, run: Any, repeat: int, n: int) -> float:
    for _ in range(5):
        await run()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        await run()
        times.append((time.perf_counter() - started) * 1000)
    median = statistics.median(times)
    print(f"{label:8s} median {median:7.2f} ms  p90 {sorted(times)[int(repeat * 0.9)]:7.2f} ms"
          f"  per {n} events  ({n / median * 1000:,.0f} events/s per core)")
    return median


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    variables = {"appId": "app123", "events": make_events(args.events), "sentAt": "2026-01-31T12:00:01Z"}
    executor = Executor(graphql_schema, Settings())
    before = await measure("stock", lambda: stock(variables), args.repeat, args.events)
    after = await measure("cached", lambda: cached(executor, variables), args.repeat, args.events)
    print(f"speed-up {before / after:.1f}x")


if __name__ == "__main__":
    asyncio.run(main())
