"""The broker's fan-out in one process, on a fake backend whose subscribe and unsubscribe the test
holds and releases: the races of a network round trip, played in a chosen order."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import pytest

from adapters.broker import Broker, Event, Subscriber
from domain.errors import TooSlow

GUARD_SECONDS = 2.0  # only a failing test waits this long


class Gate:
    """Holds the backend calls that reach it while closed, and tells when one has arrived."""

    def __init__(self) -> None:
        self.arrived = asyncio.Event()
        self._open = asyncio.Event()
        self._open.set()

    def close(self) -> None:
        self._open.clear()

    def open(self) -> None:
        self._open.set()

    async def wait_for_a_call(self) -> None:
        await asyncio.wait_for(self.arrived.wait(), GUARD_SECONDS)

    async def pass_through(self) -> None:
        self.arrived.set()
        await self._open.wait()


class FakeBackend:
    """An in-process backend that records its calls; each subscribe and unsubscribe passes a gate,
    like a round trip to Redis."""

    healthy = True

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.subscribed: set[str] = set()
        self.subscribing = Gate()
        self.unsubscribing = Gate()
        self.refuse_subscribe: Exception | None = None
        self.failed = asyncio.Event()
        self._published: asyncio.Queue[Event | Exception] = asyncio.Queue()

    async def connect(self) -> None:
        self.calls.append("connect")

    async def disconnect(self) -> None:
        self.calls.append("disconnect")

    async def subscribe(self, channel: str) -> None:
        self.calls.append(f"subscribe {channel}")
        await self.subscribing.pass_through()
        if self.refuse_subscribe is not None:
            raise self.refuse_subscribe
        self.subscribed.add(channel)

    async def unsubscribe(self, channel: str) -> None:
        self.calls.append(f"unsubscribe {channel}")
        await self.unsubscribing.pass_through()
        self.subscribed.discard(channel)

    async def publish(self, channel: str, message: str) -> None:
        if channel in self.subscribed:
            self._published.put_nowait(Event(channel, message))

    def break_down(self, error: Exception) -> None:
        """The next `next_published` raises `error`."""
        self._published.put_nowait(error)

    async def next_published(self) -> Event:
        item = await self._published.get()
        if isinstance(item, Exception):
            self.failed.set()
            raise item
        return item


@asynccontextmanager
async def connected(backend: FakeBackend, *, max_pending: int = 1000) -> AsyncIterator[Broker]:
    async with asyncio.timeout(GUARD_SECONDS), Broker(backend, max_pending=max_pending) as broker:
        yield broker


async def next_message(subscriber: Subscriber) -> str:
    return (await asyncio.wait_for(subscriber.get(), GUARD_SECONDS)).message


async def read_all(subscriber: Subscriber) -> list[str]:
    return [event.message async for event in subscriber]


async def test_two_first_subscribers_entering_together_both_receive_the_next_event() -> None:
    # Given the backend's subscribe of a channel in flight, and a second subscriber arriving
    backend = FakeBackend()
    backend.subscribing.close()
    async with connected(backend) as broker, AsyncExitStack() as stack:
        entering = [
            asyncio.create_task(stack.enter_async_context(broker.subscribe("store:S1")))
            for _ in range(2)
        ]
        await backend.subscribing.wait_for_a_call()
        # Neither may return before the backend has the channel: it would miss what comes next.
        assert not any(task.done() for task in entering)

        # When the backend has the channel and an event is published
        backend.subscribing.open()
        first, second = await asyncio.gather(*entering)
        await broker.publish("store:S1", "ready for pickup")

        # Then both receive it, through the one backend subscription
        assert await next_message(first) == "ready for pickup"
        assert await next_message(second) == "ready for pickup"
        assert backend.calls == ["connect", "subscribe store:S1"]


async def test_a_subscribe_cancelled_while_the_backend_call_is_in_flight_leaves_nothing() -> None:
    # Given a subscription whose backend subscribe has not returned
    backend = FakeBackend()
    backend.subscribing.close()
    async with connected(backend) as broker:

        async def subscribe_and_wait() -> None:
            async with broker.subscribe("store:S1"):
                await asyncio.Event().wait()

        task = asyncio.create_task(subscribe_and_wait())
        await backend.subscribing.wait_for_a_call()

        # When it is cancelled: then it ends cancelled, not with an error of the broker's
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

        # And the backend subscription is undone: the next subscriber subscribes afresh
        assert backend.calls == ["connect", "subscribe store:S1", "unsubscribe store:S1"]
        assert backend.subscribed == set()
        backend.subscribing.open()
        async with broker.subscribe("store:S1") as subscriber:
            await broker.publish("store:S1", "ready for pickup")
            assert await next_message(subscriber) == "ready for pickup"
        assert backend.calls[3:] == ["subscribe store:S1", "unsubscribe store:S1"]


async def test_a_subscriber_waiting_behind_a_cancelled_first_one_subscribes_itself() -> None:
    # Given a first subscriber whose backend subscribe is in flight, and a second one waiting
    backend = FakeBackend()
    backend.subscribing.close()
    async with connected(backend) as broker, AsyncExitStack() as stack:

        async def subscribe_and_wait() -> None:
            async with broker.subscribe("store:S1"):
                await asyncio.Event().wait()

        first = asyncio.create_task(subscribe_and_wait())
        await backend.subscribing.wait_for_a_call()
        second = asyncio.create_task(stack.enter_async_context(broker.subscribe("store:S1")))

        # When the first is cancelled and the backend then answers
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        backend.subscribing.open()
        subscriber = await asyncio.wait_for(second, GUARD_SECONDS)

        # Then the second has subscribed the channel itself, and receives
        await broker.publish("store:S1", "ready for pickup")
        assert await next_message(subscriber) == "ready for pickup"
        assert backend.calls == [
            "connect",
            "subscribe store:S1",
            "unsubscribe store:S1",
            "subscribe store:S1",
        ]


async def test_a_refused_backend_subscribe_is_undone() -> None:
    # Given a backend that refuses to subscribe
    backend = FakeBackend()
    backend.refuse_subscribe = OSError("connection refused")
    async with connected(backend) as broker:
        # When a subscription is made: then it fails with the backend's error
        with pytest.raises(OSError, match="connection refused"):
            async with broker.subscribe("store:S1"):
                pass

        # And once the backend is back, the next subscriber subscribes afresh and receives
        assert backend.calls == ["connect", "subscribe store:S1", "unsubscribe store:S1"]
        backend.refuse_subscribe = None
        async with broker.subscribe("store:S1") as subscriber:
            await broker.publish("store:S1", "ready for pickup")
            assert await next_message(subscriber) == "ready for pickup"


async def test_disconnect_ends_every_subscribers_async_for() -> None:
    # Given three subscribers on two channels, with events waiting for two of them
    backend = FakeBackend()
    async with (
        connected(backend) as broker,
        broker.subscribe("store:S1") as first,
        broker.subscribe("store:S1") as second,
        broker.subscribe("store:S2") as other_store,
    ):
        await broker.publish("store:S2", "collected")
        await broker.publish("store:S1", "ready")
        await broker.publish("store:S1", "expired")
        # The first has read both of its channel's events: all three have been fanned out.
        assert [await next_message(first), await next_message(first)] == ["ready", "expired"]
        readers = [asyncio.create_task(read_all(s)) for s in (first, second, other_store)]

        # When the broker disconnects
        await broker.disconnect()

        # Then every `async for` ends, after the events that were waiting
        assert await asyncio.gather(*readers) == [[], ["ready", "expired"], ["collected"]]
        assert await read_all(second) == []  # and stays ended
        assert backend.calls[-1] == "disconnect"


async def test_an_overflowing_subscriber_gets_too_slow_while_the_others_keep_receiving(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given subscribers that may fall 2 events behind: one that does not read, one that does
    async with (
        connected(FakeBackend(), max_pending=2) as broker,
        broker.subscribe("store:S1") as slow,
        broker.subscribe("store:S1") as fast,
    ):
        # When 4 events are published
        received = []
        for n in range(4):
            await broker.publish("store:S1", f"event {n}")
            received.append(await next_message(fast))

        # Then the reader gets them all, the slow one the 2 it had room for and then TooSlow
        assert received == ["event 0", "event 1", "event 2", "event 3"]
        assert [await next_message(slow), await next_message(slow)] == ["event 0", "event 1"]
        with pytest.raises(TooSlow, match="fell more than 2 events behind and was closed"):
            await next_message(slow)
        # And the reader keeps receiving, while the dropped one stays dropped
        await broker.publish("store:S1", "event 4")
        assert await next_message(fast) == "event 4"
        with pytest.raises(TooSlow):
            await read_all(slow)
    (dropped,) = [r for r in caplog.records if r.getMessage() == "subscriber dropped: too slow"]
    assert (dropped.name, dropped.__dict__["channel"]) == ("adapters.broker", "store:S1")


async def test_the_last_subscriber_leaving_unsubscribes_the_backend() -> None:
    # Given two subscribers of a channel
    backend = FakeBackend()
    async with connected(backend) as broker:
        async with broker.subscribe("store:S1"):
            async with broker.subscribe("store:S1"):
                pass

            # When one leaves: then the channel stays subscribed
            assert backend.calls == ["connect", "subscribe store:S1"]
            assert backend.subscribed == {"store:S1"}

        # When the last one leaves: then the backend is unsubscribed
        assert backend.calls == ["connect", "subscribe store:S1", "unsubscribe store:S1"]
        assert backend.subscribed == set()


async def test_a_subscriber_arriving_while_the_last_one_unsubscribes_subscribes_afresh() -> None:
    # Given the last subscriber of a channel leaving, its backend unsubscribe in flight
    backend = FakeBackend()
    async with connected(backend) as broker, AsyncExitStack() as stack:

        async def subscribe_and_leave() -> None:
            async with broker.subscribe("store:S1"):
                pass

        backend.unsubscribing.close()
        leaving = asyncio.create_task(subscribe_and_leave())
        await backend.unsubscribing.wait_for_a_call()

        # When a new subscriber arrives before the backend has answered
        arriving = asyncio.create_task(stack.enter_async_context(broker.subscribe("store:S1")))
        await asyncio.sleep(0)  # one turn of the loop: its subscribe runs as far as it can
        assert not arriving.done()
        backend.unsubscribing.open()
        await asyncio.wait_for(leaving, GUARD_SECONDS)
        subscriber = await asyncio.wait_for(arriving, GUARD_SECONDS)

        # Then it subscribed the channel after the unsubscribe, and receives
        assert backend.calls == [
            "connect",
            "subscribe store:S1",
            "unsubscribe store:S1",
            "subscribe store:S1",
        ]
        await broker.publish("store:S1", "ready for pickup")
        assert await next_message(subscriber) == "ready for pickup"


async def test_what_the_listener_failed_with_is_raised_by_disconnect() -> None:
    # Given a backend that fails while the broker listens
    backend = FakeBackend()
    broker = Broker(backend)
    await broker.connect()
    async with broker.subscribe("store:S1") as subscriber:
        backend.break_down(RuntimeError("the wire is gone"))
        await asyncio.wait_for(backend.failed.wait(), GUARD_SECONDS)

        # When the broker disconnects: then the error is raised, and the subscriber ended
        with pytest.raises(RuntimeError, match="the wire is gone"):
            await broker.disconnect()
        assert await asyncio.wait_for(read_all(subscriber), GUARD_SECONDS) == []
    assert backend.calls[-2:] == ["disconnect", "unsubscribe store:S1"]
