"""The event broker on memory:// and on Redis, through a dropped connection and
a Redis restart. Each Redis test starts its own redis-server on a free port (never the shared one),
so that it can kill and restart it."""

from __future__ import annotations

import asyncio
import inspect
import logging
import shutil
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from pathlib import Path
from typing import TypeVar

import pytest
import pytest_asyncio
from redis import asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError

from adapters.broker import (
    Broker,
    BrokerUnavailable,
    Event,
    MemoryBackend,
    RedisBackend,
    Subscriber,
    make_broadcast,
    redact,
)

REDIS_SERVER = shutil.which("redis-server")
DELIVERY_SECONDS = 1.0  # a message published on loopback arrives within this
TEST_SECONDS = 30.0  # no test can hang the run for longer

T = TypeVar("T")


# --- a private Redis server -----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """A redis-server process of the test's own, stopped and started again on the same port."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self._process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        assert REDIS_SERVER is not None
        self._process = await asyncio.create_subprocess_exec(
            REDIS_SERVER,
            *("--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"),
            *("--dir", str(self.workdir)),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        await wait_until(self._answers_ping, within=5, what=f"redis-server on port {self.port}")

    async def stop(self) -> None:
        if self._process is not None and self._process.returncode is None:
            self._process.kill()
            await asyncio.wait_for(self._process.wait(), 5)
        self._process = None

    async def _answers_ping(self) -> bool:
        if self._process is None or self._process.returncode is not None:
            raise AssertionError(f"redis-server on port {self.port} exited")
        client = aioredis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=1)
        try:
            return bool(await client.ping())
        except (RedisConnectionError, OSError):
            return False
        finally:
            await client.aclose()


class SlowLink:
    """A TCP proxy in front of the server that holds what clients send for `delay` seconds: a
    slow network on the way to Redis."""

    def __init__(self, target_port: int, delay: float) -> None:
        self.target_port = target_port
        self.delay = delay
        self.port = 0
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def __aenter__(self) -> SlowLink:
        self._server = await asyncio.start_server(self._connect, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        for pipe in self._pipes:
            pipe.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)
        await self._server.wait_closed()

    async def _connect(self, client: asyncio.StreamReader, to_client: asyncio.StreamWriter) -> None:
        server, to_server = await asyncio.open_connection("127.0.0.1", self.target_port)
        for pipe in (self._pipe(client, to_server, self.delay), self._pipe(server, to_client, 0)):
            task = asyncio.create_task(pipe)
            self._pipes.add(task)
            task.add_done_callback(self._pipes.discard)

    @staticmethod
    async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter, delay: float) -> None:
        try:
            while data := await source.read(65536):
                await asyncio.sleep(delay)  # the latency being simulated
                sink.write(data)
                await sink.drain()
        finally:
            sink.close()


@pytest_asyncio.fixture(loop_scope="session")
async def redis_server(tmp_path: Path) -> AsyncIterator[RedisServer]:
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not on PATH: the Redis broker tests start their own server")
    server = RedisServer(tmp_path)
    for _ in range(3):  # the free port may be taken between finding it and binding it
        try:
            await server.start()
            break
        except AssertionError:
            await server.stop()
            server = RedisServer(tmp_path)
    else:
        pytest.fail("could not start a private redis-server")
    try:
        yield server
    finally:
        await server.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def admin(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    """A plain client of the private server, to look at it and to kill connections."""
    client = aioredis.Redis.from_url(redis_server.url)
    yield client
    await client.aclose()


# --- helpers --------------------------------------------------------------------------------------


async def wait_until(
    condition: Callable[[], bool | Awaitable[bool]], *, within: float, what: str
) -> None:
    """Poll until `condition` holds; fail the test after `within` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        result = condition()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if loop.time() > deadline:
            raise AssertionError(f"waited {within} s for {what}")
        await asyncio.sleep(0.02)


async def enter(stack: AsyncExitStack, context: AbstractAsyncContextManager[T]) -> T:
    return await asyncio.wait_for(stack.enter_async_context(context), DELIVERY_SECONDS)


async def pubsub_connections(admin: aioredis.Redis) -> dict[str, int]:
    """Redis's view: the id of each connection with subscriptions, and how many it has."""
    return {c["id"]: int(c["sub"]) for c in await admin.client_list(_type="pubsub")}


async def kill_pubsub_connection(admin: aioredis.Redis, channels: int) -> None:
    """Kill the one pub/sub connection and wait until its replacement holds `channels` again."""
    before = await pubsub_connections(admin)
    assert list(before.values()) == [channels]
    assert await admin.client_kill_filter(_type="pubsub") == 1

    async def replaced() -> bool:
        now = await pubsub_connections(admin)
        return any(id_ not in before and sub == channels for id_, sub in now.items())

    await wait_until(replaced, within=5, what=f"a new connection subscribed to {channels}")


async def next_event(subscriber: Subscriber) -> Event:
    return await asyncio.wait_for(subscriber.get(), DELIVERY_SECONDS)


def broker_logs(caplog: pytest.LogCaptureFixture, message: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "adapters.broker" and r.getMessage() == message]


# --- memory:// (one process) ----------------------------------------------------------------------


async def test_memory_round_trip() -> None:
    async with asyncio.timeout(TEST_SECONDS), make_broadcast("memory://") as broadcast:
        async with broadcast.subscribe("store:S1") as subscriber:
            await broadcast.publish("store:S1", "hello")

            assert await next_event(subscriber) == Event("store:S1", "hello")
        assert broadcast.healthy


def test_unknown_broker_urls_are_refused_without_showing_the_password() -> None:
    with pytest.raises(ValueError, match="unsupported broker URL") as refused:
        make_broadcast("kafka://user:s3cret@host:9092")

    assert "s3cret" not in str(refused.value)
    assert redact("redis://:s3cret@cache:6379/0") == "redis://:***@cache:6379/0"


class GatedBackend(MemoryBackend):
    """The memory backend, with a subscribe that waits for a gate: a network round trip."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.calls: list[str] = []

    async def subscribe(self, channel: str) -> None:
        self.calls.append(f"subscribe {channel}")
        await self.gate.wait()
        await super().subscribe(channel)

    async def unsubscribe(self, channel: str) -> None:
        self.calls.append(f"unsubscribe {channel}")
        self._subscribed.discard(channel)


async def test_first_subscribers_arriving_together_all_receive() -> None:
    backend = GatedBackend()
    async with asyncio.timeout(TEST_SECONDS), Broker(backend=backend) as broker:
        async with AsyncExitStack() as stack:
            entering = [
                asyncio.create_task(stack.enter_async_context(broker.subscribe("store:S1")))
                for _ in range(3)
            ]
            await wait_until(lambda: bool(backend.calls), within=1, what="the first subscribe")
            backend.gate.set()
            subscribers = await asyncio.gather(*entering)
            await broker.publish("store:S1", "hello")

            for subscriber in subscribers:
                assert await next_event(subscriber) == Event("store:S1", "hello")
        assert backend.calls == ["subscribe store:S1", "unsubscribe store:S1"]


async def test_a_subscription_cancelled_while_subscribing_is_undone() -> None:
    backend = GatedBackend()
    async with asyncio.timeout(TEST_SECONDS), Broker(backend=backend) as broker:

        async def subscribe_and_wait() -> None:
            async with broker.subscribe("store:S1"):
                await asyncio.Event().wait()

        task = asyncio.create_task(subscribe_and_wait())
        await wait_until(lambda: bool(backend.calls), within=1, what="the first subscribe")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

        assert backend.calls == ["subscribe store:S1", "unsubscribe store:S1"]
        backend.gate.set()
        async with broker.subscribe("store:S1") as subscriber:
            await broker.publish("store:S1", "hello")
            assert await next_event(subscriber) == Event("store:S1", "hello")


async def test_disconnect_ends_every_subscriber() -> None:
    async with asyncio.timeout(TEST_SECONDS):
        broker = make_broadcast("memory://")
        await broker.connect()
        async with broker.subscribe("store:S1") as subscriber:
            seen: list[Event] = []

            async def read_all() -> None:
                async for event in subscriber:
                    seen.append(event)

            reader = asyncio.create_task(read_all())
            await broker.publish("store:S1", "hello")
            await wait_until(lambda: bool(seen), within=1, what="the first event")

            await broker.disconnect()

            await asyncio.wait_for(reader, DELIVERY_SECONDS)
            assert seen == [Event("store:S1", "hello")]


# --- Redis: what broadcaster's own backend gets wrong ---------------------------------------------


async def test_two_processes_share_events_through_redis(redis_server: RedisServer) -> None:
    async with (
        asyncio.timeout(TEST_SECONDS),
        make_broadcast(redis_server.url) as web_1,
        make_broadcast(redis_server.url) as web_2,
        web_1.subscribe("store:S1") as subscriber,
    ):
        await web_2.publish("store:S1", "ready for pickup")

        assert await next_event(subscriber) == Event("store:S1", "ready for pickup")
        assert web_1.healthy
        assert web_2.healthy


async def test_the_first_subscription_of_a_channel_receives_the_first_message(
    redis_server: RedisServer,
) -> None:
    # redis-py 8 made broadcaster's backend miss this: its reader saw no subscription and stopped.
    async with (
        asyncio.timeout(TEST_SECONDS),
        make_broadcast(redis_server.url) as web_1,
        make_broadcast(redis_server.url) as web_2,
    ):
        for n in range(20):
            async with web_1.subscribe(f"reservation:{n}") as subscriber:
                await web_2.publish(f"reservation:{n}", f"first {n}")

                assert await next_event(subscriber) == Event(f"reservation:{n}", f"first {n}")


async def test_subscribers_of_one_channel_arriving_together_all_receive(
    redis_server: RedisServer,
) -> None:
    # One Redis subscription per channel; the broker fans out to every subscriber in the process.
    async with (
        asyncio.timeout(TEST_SECONDS),
        make_broadcast(redis_server.url) as web,
        AsyncExitStack() as stack,
    ):
        subscribers = await asyncio.gather(
            *(enter(stack, web.subscribe("store:S1")) for _ in range(5))
        )
        await web.publish("store:S1", "hello")

        for subscriber in subscribers:
            assert await next_event(subscriber) == Event("store:S1", "hello")


async def test_subscribe_returns_only_once_redis_has_the_subscription(
    redis_server: RedisServer,
) -> None:
    # With a slow link to Redis, a SUBSCRIBE merely sent would arrive after the PUBLISH below.
    async with (
        asyncio.timeout(TEST_SECONDS),
        SlowLink(redis_server.port, delay=0.2) as slow_link,
        make_broadcast(slow_link.url) as far_web,
        make_broadcast(redis_server.url) as near_web,
        far_web.subscribe("store:S1") as subscriber,
    ):
        await near_web.publish("store:S1", "first")

        assert await next_event(subscriber) == Event("store:S1", "first")


# --- Redis: outages -------------------------------------------------------------------------------


async def test_a_killed_connection_is_replaced_and_the_subscriber_keeps_receiving(
    redis_server: RedisServer, admin: aioredis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="adapters.broker")
    async with (
        asyncio.timeout(TEST_SECONDS),
        make_broadcast(redis_server.url) as web_1,
        make_broadcast(redis_server.url) as web_2,
        web_1.subscribe("store:S1") as subscriber,
    ):
        await web_2.publish("store:S1", "before")
        assert await next_event(subscriber) == Event("store:S1", "before")

        for n in range(3):
            await kill_pubsub_connection(admin, channels=1)
            await web_2.publish("store:S1", f"after kill {n}")

            assert await next_event(subscriber) == Event("store:S1", f"after kill {n}")
        assert web_1.healthy
    # Connections that die young are not replaced in a tight loop: the wait doubles.
    lost = broker_logs(caplog, "broker connection lost")
    assert [r.__dict__["retry_in_seconds"] for r in lost] == [0.1, 0.2, 0.4]
    assert [r.__dict__["attempt"] for r in broker_logs(caplog, "broker reconnected")] == [1, 1, 1]


async def test_a_redis_restart_is_survived_and_publishing_fails_clearly_meanwhile(
    redis_server: RedisServer, admin: aioredis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    # One gateway process here, so that the logs are all of one reader.
    caplog.set_level(logging.INFO, logger="adapters.broker")
    async with (
        asyncio.timeout(TEST_SECONDS),
        make_broadcast(redis_server.url) as web,
        AsyncExitStack() as stack,
    ):
        staying = await enter(stack, web.subscribe("store:S1"))
        leaving = web.subscribe("store:S2")
        await asyncio.wait_for(leaving.__aenter__(), DELIVERY_SECONDS)
        assert web.healthy

        await redis_server.stop()
        await wait_until(lambda: not web.healthy, within=5, what="healthy to turn False")
        with pytest.raises(BrokerUnavailable, match="cannot publish to 'store:S1'"):
            await asyncio.wait_for(web.publish("store:S1", "lost"), 2)
        # Subscribing and unsubscribing while Redis is down return at once and take effect later.
        joining = await enter(stack, web.subscribe("store:S3"))
        await asyncio.wait_for(leaving.__aexit__(None, None, None), DELIVERY_SECONDS)
        await asyncio.sleep(3)  # Redis stays down for a while: several reconnects fail
        assert not web.healthy

        await redis_server.start()
        await wait_until(lambda: web.healthy, within=10, what="healthy to turn True")
        await web.publish("store:S1", "back")
        await web.publish("store:S3", "joined")

        assert await next_event(staying) == Event("store:S1", "back")
        assert await next_event(joining) == Event("store:S3", "joined")
        numsub = dict(await admin.pubsub_numsub("store:S1", "store:S2", "store:S3"))
        assert numsub == {b"store:S1": 1, b"store:S2": 0, b"store:S3": 1}

    # The connection had been up for less than the longest backoff: the first retry waits too.
    (lost,) = broker_logs(caplog, "broker connection lost")
    failed = broker_logs(caplog, "broker reconnect failed")
    assert len(failed) >= 4
    assert [r.__dict__["attempt"] for r in failed] == list(range(1, len(failed) + 1))
    delays = [r.__dict__["retry_in_seconds"] for r in [lost, *failed]]
    assert delays == [min(5.0, 0.1 * 2**i) for i in range(len(delays))]
    (reconnected,) = broker_logs(caplog, "broker reconnected")
    assert reconnected.__dict__["attempt"] == len(failed) + 1
    assert reconnected.__dict__["channels"] == 2


async def test_many_channels_are_all_subscribed_again_after_a_reconnect(
    redis_server: RedisServer, admin: aioredis.Redis
) -> None:
    channels = [f"reservation:{n}" for n in range(50)]
    async with (
        asyncio.timeout(TEST_SECONDS),
        make_broadcast(redis_server.url) as web_1,
        make_broadcast(redis_server.url) as web_2,
        AsyncExitStack() as stack,
    ):
        subscribers = [await enter(stack, web_1.subscribe(channel)) for channel in channels]

        await kill_pubsub_connection(admin, channels=len(channels))
        for channel in channels:
            await web_2.publish(channel, f"for {channel}")

        for channel, subscriber in zip(channels, subscribers, strict=True):
            assert await next_event(subscriber) == Event(channel, f"for {channel}")
        assert all(subscriber._queue.empty() for subscriber in subscribers)


async def test_an_unresponsive_redis_is_noticed_by_its_silence(
    redis_server: RedisServer, admin: aioredis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    # A half-open connection looks like a quiet one: the reader PINGs when nothing arrives.
    caplog.set_level(logging.INFO, logger="adapters.broker")
    backend = RedisBackend(redis_server.url, ping_interval=0.2, connect_timeout=0.5)
    async with (
        asyncio.timeout(TEST_SECONDS),
        Broker(backend=backend) as web,
        web.subscribe("store:S1") as subscriber,
    ):
        await asyncio.sleep(1)  # quiet for five ping intervals: answered PINGs keep it up
        assert web.healthy
        assert not broker_logs(caplog, "broker connection lost")

        await admin.client_pause(1500)  # mode ALL, the default
        await wait_until(lambda: not web.healthy, within=2, what="the silence to be noticed")
        await wait_until(lambda: web.healthy, within=5, what="the reconnect after the pause")
        await web.publish("store:S1", "awake")

        assert await next_event(subscriber) == Event("store:S1", "awake")
    (lost,) = broker_logs(caplog, "broker connection lost")
    assert "no reply to PING" in lost.__dict__["error"]


async def test_a_subscriber_too_far_behind_is_dropped_with_a_clear_error() -> None:
    # Given a broker that lets a subscriber fall 3 events behind, and one that does not read
    from adapters.broker import make_broadcast
    from domain.errors import TooSlow

    broadcast = make_broadcast("memory://", max_pending=3)
    await broadcast.connect()
    try:
        async with broadcast.subscribe("store:S1") as slow, broadcast.subscribe("store:S1") as fast:
            # When 5 events are published, the other subscriber reading as they come
            received = []
            for n in range(5):
                await broadcast.publish("store:S1", f"event {n}")
                received.append((await asyncio.wait_for(fast.get(), 1)).message)

            # Then the reader got them all, and the slow one gets its 3 and then the error
            assert received == [f"event {n}" for n in range(5)]
            got = [(await asyncio.wait_for(slow.get(), 1)).message for _ in range(3)]
            assert got == ["event 0", "event 1", "event 2"]
            with pytest.raises(TooSlow, match="fell more than 3 events behind"):
                await asyncio.wait_for(slow.get(), 1)
    finally:
        await broadcast.disconnect()
