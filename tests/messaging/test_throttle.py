"""Provider throttling (api/messaging/throttle.py) against the real Redis, on an injected
clock: sleeping advances the clock, so nothing here waits in real time."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from api.core.ids import new_id
from api.messaging.throttle import LocalSlots, SendRateLimiter, key_for


class FakeClock:
    """Time that moves only when a send sleeps (or a test says so)."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        # Called right after the pacer read the clock: the clock moves to the slot.
        self.slept.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


def limiter(redis: Redis | None, clock: FakeClock) -> SendRateLimiter:
    return SendRateLimiter(redis, clock=clock, sleep=clock.sleep, local=LocalSlots())


async def _sends(pacer, clock: FakeClock, n: int) -> list[float]:
    """The clock reading at which each of n sends would go."""
    times = []
    for _ in range(n):
        await pacer.turn()
        times.append(clock())
    return times


async def test_sends_are_spaced_at_the_rate_and_start_at_once(redis):
    clock = FakeClock()
    tenant = new_id("tenant")
    pacer = limiter(redis, clock).pacer(tenant, "sms", 10, expected=25)
    times = await _sends(pacer, clock, 25)
    start = 1_800_000_000.0
    # The first goes at once, each next one 0.1 s later: 25 sends take 2.4 s, none lost.
    assert times == pytest.approx([start + i / 10 for i in range(25)])
    assert await redis.exists(key_for(tenant, "sms"))


async def test_two_workers_share_one_rate(redis):
    """Two processes (two limiters, one Redis) sending for the same practice take turns:
    together they never go faster than the practice's rate."""
    clock = FakeClock()
    tenant = new_id("tenant")
    first = limiter(redis, clock).pacer(tenant, "email", 20, expected=30)
    second = limiter(redis, clock).pacer(tenant, "email", 20, expected=30)
    sent: list[float] = []

    async def worker(pacer) -> None:
        for _ in range(30):
            sent.append(await pacer.turn())

    await asyncio.gather(worker(first), worker(second))
    assert len(sent) == 60 and clock() == max(sent)
    # 60 sends at 20 per second: the last one 59 intervals after the first, and in every
    # one-second window at most 20 (+1 for the window's closed end).
    ordered = sorted(sent)
    assert ordered[-1] - ordered[0] == pytest.approx(59 / 20)
    for i, t in enumerate(ordered):
        within = [u for u in ordered[i:] if u < t + 1 - 1e-9]
        assert len(within) <= 20


async def test_practices_and_channels_do_not_share_a_rate(redis):
    clock = FakeClock()
    limiter_ = limiter(redis, clock)
    one, other = new_id("tenant"), new_id("tenant")
    await _sends(limiter_.pacer(one, "sms", 5, expected=5), clock, 5)
    before = clock()
    # Another practice, and the same practice's email, are not behind those five.
    await limiter_.pacer(other, "sms", 5, expected=1).turn()
    await limiter_.pacer(one, "email", 5, expected=1).turn()
    assert clock() == before


async def test_after_an_idle_spell_the_rate_starts_again_at_once(redis):
    clock = FakeClock()
    tenant = new_id("tenant")
    limiter_ = limiter(redis, clock)
    await _sends(limiter_.pacer(tenant, "sms", 2, expected=3), clock, 3)
    clock.now += 60
    waited = len(clock.slept)
    await limiter_.pacer(tenant, "sms", 2, expected=1).turn()
    assert len(clock.slept) == waited  # no wait: nobody sent for a minute


async def test_without_redis_each_process_still_paces_itself():
    """Redis unreachable: the limiter falls back to pacing in the process (no error, no
    message dropped), at the same rate."""
    clock = FakeClock()
    unreachable = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    try:
        pacer = limiter(unreachable, clock).pacer(new_id("tenant"), "sms", 4, expected=8)
        times = await _sends(pacer, clock, 8)
    finally:
        await unreachable.aclose()
    assert times == pytest.approx([1_800_000_000.0 + i / 4 for i in range(8)])


async def test_no_redis_at_all_paces_in_process():
    clock = FakeClock()
    pacer = limiter(None, clock).pacer(new_id("tenant"), "email", 50, expected=3)
    times = await _sends(pacer, clock, 3)
    assert times == pytest.approx([1_800_000_000.0 + i / 50 for i in range(3)])


# --- the setting, over REST and GraphQL --------------------------------------------------

SETTINGS = {
    "allow_clinical_sms": False,
    "send_rates": [{"channel": "sms", "per_second": 10}, {"channel": "email", "per_second": 50}],
}
MUTATION = """
mutation ($settings: JSON!) { updateMessagingSettings(settings: $settings) }
"""


async def _graphql(client, headers, query, variables=None):
    response = await client.post(
        "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
    )
    assert response.status_code == 200, response.text
    return response.json()


async def test_send_rates_are_set_over_rest_and_read_over_graphql(client, practice):
    saved = await client.put("/v1/messaging/settings", json=SETTINGS, headers=practice.headers)
    assert saved.status_code == 200, saved.text
    assert saved.json()["send_rates"] == SETTINGS["send_rates"]
    read = await _graphql(client, practice.headers, "{ messagingSettings }")
    assert read["data"]["messagingSettings"]["send_rates"] == SETTINGS["send_rates"]
    # Leaving them out of the next PUT removes the throttle.
    cleared = await client.put(
        "/v1/messaging/settings", json={"allow_clinical_sms": False}, headers=practice.headers
    )
    assert cleared.json()["send_rates"] == []


async def test_send_rates_are_set_over_graphql_with_the_same_checks(client, practice):
    done = await _graphql(client, practice.headers, MUTATION, {"settings": SETTINGS})
    assert done["data"]["updateMessagingSettings"]["send_rates"] == SETTINGS["send_rates"]
    rest = await client.get("/v1/messaging/settings", headers=practice.headers)
    assert rest.json()["send_rates"] == SETTINGS["send_rates"]
    twice = SETTINGS | {"send_rates": [{"channel": "sms", "per_second": 1}] * 2}
    refused = await _graphql(client, practice.headers, MUTATION, {"settings": twice})
    assert refused["data"] is None
    assert refused["errors"][0]["extensions"]["status"] == 422


@pytest.mark.parametrize(
    ("rates", "field"),
    [
        ([{"channel": "sms", "per_second": 0}], "per_second"),
        ([{"channel": "fax", "per_second": 5}], "channel"),
        ([{"channel": "sms", "per_second": 2}, {"channel": "sms", "per_second": 3}], None),
    ],
)
async def test_bad_send_rates_are_refused_and_nothing_is_saved(client, practice, rates, field):
    before = await client.get("/v1/messaging/settings", headers=practice.headers)
    body = {"allow_clinical_sms": True, "send_rates": rates}
    refused = await client.put("/v1/messaging/settings", json=body, headers=practice.headers)
    assert refused.status_code == 422
    assert refused.headers["content-type"].startswith("application/problem+json")
    if field is not None:
        assert any(field in e["field"] for e in refused.json()["errors"])
    after = await client.get("/v1/messaging/settings", headers=practice.headers)
    assert after.json() == before.json()
