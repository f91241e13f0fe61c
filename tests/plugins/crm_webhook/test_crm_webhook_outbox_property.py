"""Whatever the CRM answers, in whatever order, every record ends delivered exactly once or dead-lettered."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import Direction, Interaction, InteractionKind
from engine.store import open_store
from engine.testing import wait_until
from plugins.crm_webhook import WebhookCrm, WebhookCrmSettings
from plugins.crm_webhook._outbox import MIGRATIONS

STATUSES = st.sampled_from([200, 201, 204, 400, 401, 404, 408, 429, 500, 502, 503])


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=st.integers(min_value=1, max_value=6), script=st.lists(STATUSES, max_size=15))
def test_every_record_is_delivered_once_or_dead_lettered(crm_server_class: Any, records: int, script: list[int]) -> None:
    async def scenario() -> tuple[Any, dict[str, Any], list[str]]:
        server = crm_server_class(push_script=list(script))
        with tempfile.TemporaryDirectory() as tmp:
            async with trio.open_nursery() as nursery:
                await server.start(nursery)
                async with open_store(Path(tmp) / "outbox.db", MIGRATIONS) as store:
                    crm = WebhookCrm(store, WebhookCrmSettings(push_url=f"{server.url}/push", secret=server.secret,
                                                               max_attempts=3, backoff=0.001, backoff_max=0.005))
                    await nursery.start(crm.run)
                    ids = []
                    for n in range(records):
                        item = Interaction(InteractionKind.SMS, Direction.INBOUND, from_=f"+3460000000{n}", to="1",
                                           channel="sms")
                        ids.append(item.id)
                        await crm.record_interaction(item)
                    await wait_until(lambda: crm.statistics()["outbox_pending"] == 0)
                    stats = dict(crm.statistics())
                    dead = await crm.dead_letters()
                    nursery.cancel_scope.cancel()
                await crm.aclose()
        return server, stats | {"dead_ids": [json.loads(d["body"])["interaction"]["id"] for d in dead]}, ids

    server, stats, ids = trio.run(scenario)
    accepted = [body["interaction"]["id"] for body in server.accepted()]
    assert len(accepted) == len(set(accepted))  # nothing acknowledged was ever sent again
    assert set(accepted).isdisjoint(stats["dead_ids"])
    assert sorted(accepted + stats["dead_ids"]) == sorted(ids)  # nothing lost
    assert accepted == [i for i in ids if i in accepted]  # in the order they were queued
    assert stats["delivered"] == len(accepted) and stats["outbox_dead"] == len(stats["dead_ids"])
    assert server.bad_signatures == 0
