"""The pipelined Redis connection of the rate limiter (api/core/redis_pipe.py), against the
test Redis and against loopback servers that refuse or never answer."""

from __future__ import annotations

import asyncio

import pytest
import uvloop
from starlette.requests import Request

from api.core import redis_pipe
from api.core.embedded import free_port
from api.core.ratelimit import RateLimiter
from api.core.redis_pipe import RedisPipe, RedisPipeError


async def test_concurrent_calls_each_get_their_own_reply(settings, redis):
    pipe = RedisPipe(settings.redis_url)
    try:
        await redis.delete("pipe:counter")
        replies = await asyncio.gather(*(pipe.call("INCR", "pipe:counter") for _ in range(200)))
        assert sorted(replies) == list(range(1, 201))
        await pipe.call("SET", "pipe:text", "réponse")
        assert await pipe.call("GET", "pipe:text") == "réponse".encode()
        # The URL's database is selected: the other client sees the same keys.
        assert int(await redis.get("pipe:counter")) == 200
        with pytest.raises(RedisPipeError, match="WRONGTYPE"):
            await pipe.call("LPUSH", "pipe:text", "x")
        assert await pipe.call("PING") == b"PONG"  # an error reply leaves the pipe usable
    finally:
        await pipe.close()
        await redis.delete("pipe:counter", "pipe:text")


async def test_a_dropped_connection_fails_its_calls_and_the_next_call_reconnects(settings, redis):
    pipe = RedisPipe(settings.redis_url)
    try:
        await pipe.call("CLIENT", "SETNAME", "pipe-under-test")
        clients = (await redis.execute_command("CLIENT", "LIST")).decode()
        [line] = [c for c in clients.splitlines() if "name=pipe-under-test" in c]
        client_id = line.split("id=", 1)[1].split(" ", 1)[0]
        waiting = asyncio.create_task(pipe.call("BLPOP", "pipe:never", 5))
        await asyncio.sleep(0.1)  # the BLPOP is on the server, holding the connection
        await redis.execute_command("CLIENT", "KILL", "ID", client_id)
        with pytest.raises(RedisPipeError, match="closed"):
            await asyncio.wait_for(waiting, 2)
        assert await pipe.call("PING") == b"PONG"
    finally:
        await pipe.close()


async def test_no_server_and_a_silent_server_raise_within_the_timeout():
    closed = RedisPipe(f"redis://127.0.0.1:{free_port()}/0", timeout=0.5)
    with pytest.raises(RedisPipeError, match="cannot connect"):
        await closed.call("PING")

    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1 << 16)
        await asyncio.sleep(5)

    server = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    silent = RedisPipe(f"redis://127.0.0.1:{port}", timeout=0.2)
    try:
        loop = asyncio.get_running_loop()
        began = loop.time()
        results = await asyncio.gather(
            silent.call("PING"), silent.call("PING"), return_exceptions=True
        )
        assert all(isinstance(r, RedisPipeError) for r in results)
        assert loop.time() - began < 1
    finally:
        await silent.close()
        server.close()


def test_tls_urls_stay_with_redis_py():
    assert redis_pipe.supports("redis://127.0.0.1:6379/0")
    assert redis_pipe.supports("unix:///tmp/redis.sock?db=2")
    assert not redis_pipe.supports("rediss://cache.example:6380/0")
    with pytest.raises(ValueError):
        RedisPipe("rediss://cache.example:6380/0")


async def test_the_limiter_reloads_its_script_after_redis_forgets_it(settings, redis):
    limiter = RateLimiter(settings.redis_url)
    try:
        key = "chairfill:ratelimit:pipe-test"
        first = await limiter._count(key, 10)
        await redis.script_flush()
        second = await limiter._count(key, 10)
        assert first[0] == second[0] == 1 and second[1] == first[1] - 1
    finally:
        await limiter.close()
        keys = await redis.keys("chairfill:ratelimit:pipe-test:*")
        if keys:
            await redis.delete(*keys)


async def test_the_limiter_lets_requests_through_when_redis_is_gone():
    limiter = RateLimiter(f"redis://127.0.0.1:{free_port()}/0")
    request = Request({"type": "http", "method": "GET", "path": "/", "headers": []})
    try:
        assert await limiter.hit(request, "client:nowhere", 1) is None
        assert await limiter.hit(request, "client:nowhere", 1) is None
        assert getattr(request.state, "rate_limit", None) is None
    finally:
        await limiter.close()


def test_it_works_on_uvloop_as_served(settings):
    """uvicorn serves on uvloop (where, under load, a connection came back before
    connection_made had run: the pipe takes the transport create_connection returns)."""

    async def calls() -> list[object]:
        pipe = RedisPipe(settings.redis_url)
        try:
            return list(await asyncio.gather(*(pipe.call("PING") for _ in range(20))))
        finally:
            await pipe.close()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        assert runner.run(calls()) == [b"PONG"] * 20


async def test_a_reply_that_comes_too_late_is_never_taken_for_the_next_call():
    connections = 0

    async def slow_then_prompt(reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        nonlocal connections
        connections += 1
        delay = 0.5 if connections == 1 else 0
        while await reader.read(1 << 16):
            await asyncio.sleep(delay)
            writer.write(b"+LATE\r\n" if delay else b"+PONG\r\n")
            await writer.drain()

    server = await asyncio.start_server(slow_then_prompt, "127.0.0.1", 0)
    pipe = RedisPipe(f"redis://127.0.0.1:{server.sockets[0].getsockname()[1]}", timeout=0.2)
    try:
        with pytest.raises(RedisPipeError, match="no reply"):
            await pipe.call("PING")
        await asyncio.sleep(0.5)  # the late reply is sent, to a connection already dropped
        assert await pipe.call("PING") == b"PONG"
        assert connections == 2
    finally:
        await pipe.close()
        server.close()


async def test_after_a_failed_connect_calls_fail_at_once_for_a_moment():
    pipe = RedisPipe(f"redis://127.0.0.1:{free_port()}/0", timeout=0.5)
    with pytest.raises(RedisPipeError, match="cannot connect"):
        await pipe.call("PING")
    loop = asyncio.get_running_loop()
    began = loop.time()
    failed = await asyncio.gather(*(pipe.call("PING") for _ in range(50)), return_exceptions=True)
    assert all(isinstance(f, RedisPipeError) and "not trying" in str(f) for f in failed)
    assert loop.time() - began < 0.1
    await pipe.close()
    with pytest.raises(RedisPipeError, match="closed"):
        await pipe.call("PING")
