"""The event broker: events fanned out to each channel's subscribers in this process, over memory://
or Redis. Our own: broadcaster's API cannot bound queues, end them on disconnect or avoid races."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from redis import asyncio as aioredis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from domain.errors import TooSlow

log = logging.getLogger(__name__)

# What a dropped or unreachable Redis looks like from redis-py: the reader reconnects on these.
_TRANSIENT = (RedisError, OSError)


# How many events a subscriber may have waiting before it is dropped as too slow.
DEFAULT_MAX_PENDING = 1000


class BrokerUnavailable(Exception):
    """Redis could not be reached to publish: the event was not sent (keep it and retry)."""


class SubscriptionEnded(Exception):
    """The subscription has no more events: its context was left or the broker disconnected."""


@dataclass(frozen=True, slots=True)
class Event:
    """A message as published on a channel."""

    channel: str
    message: str


class Backend(Protocol):
    """Where events travel between publishers and this process: one subscription per channel."""

    @property
    def healthy(self) -> bool:
        """Connected: what is published now reaches the subscribed channels."""
        ...

    async def connect(self) -> None: ...

    async def disconnect(self) -> None: ...

    async def subscribe(self, channel: str) -> None:
        """Returns once what is published on `channel` from now on is delivered."""
        ...

    async def unsubscribe(self, channel: str) -> None: ...

    async def publish(self, channel: str, message: str) -> None: ...

    async def next_published(self) -> Event:
        """The next event on a subscribed channel, waiting for one."""
        ...


def make_broadcast(url: str, *, max_pending: int | None = None) -> Broker:
    """`memory://` (one process) or `redis://host:port/db` (`rediss://` with TLS) across replicas.
    `max_pending`: how many events a subscriber may fall behind before it is dropped."""
    scheme = urlsplit(url).scheme
    pending = max_pending or DEFAULT_MAX_PENDING
    if scheme == "memory":
        return Broker(MemoryBackend(), max_pending=pending)
    if scheme in ("redis", "rediss", "unix"):
        return Broker(RedisBackend(url), max_pending=pending)
    raise ValueError(f"unsupported broker URL {redact(url)!r}: use memory:// or redis://")


def redact(url: str) -> str:
    """The URL without its password, for logs and errors."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


class Broker:
    """Fans each event the backend delivers out to this process's subscribers of its channel.

    - One backend subscription per channel. The first subscriber of a channel subscribes the
      backend and is registered before it does, so nothing delivered once the backend has the
      channel is dropped for want of a subscriber; others arriving meanwhile wait until it has
      (they would miss what is published right after they enter). A failed or cancelled backend
      subscribe is undone. The last subscriber to leave unsubscribes the backend, and one arriving
      meanwhile waits for that and subscribes afresh: a backend never sees a channel's subscribe
      and unsubscribe overlap, so it cannot apply them out of order.
    - Each subscriber's queue is bounded: one that has `max_pending` events waiting is dropped
      (its iteration raises TooSlow), instead of growing without end or, were delivery awaited,
      holding up every other subscriber of the process.
    - `disconnect` waits for the listener task to end, ends every subscriber's iteration, and
      raises what the listener failed with, if it did.
    """

    def __init__(self, backend: Backend, *, max_pending: int = DEFAULT_MAX_PENDING) -> None:
        self.max_pending = max_pending
        self._backend = backend
        self._subscribers: dict[str, set[Subscriber]] = {}
        # Channels whose backend subscription is being changed: set once the change is done.
        self._changing: dict[str, asyncio.Event] = {}
        self._listener: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Broker:
        await self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.disconnect()

    @property
    def healthy(self) -> bool:
        return self._backend.healthy

    async def connect(self) -> None:
        await self._backend.connect()
        self._listener = asyncio.create_task(self._listen(), name="broker-listener")

    async def disconnect(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.cancel()
            await asyncio.wait([listener])
        try:
            await self._backend.disconnect()
        finally:
            for subscribers in self._subscribers.values():
                for subscriber in subscribers:
                    subscriber._end()
        if listener is not None and not listener.cancelled():
            error = listener.exception()
            if error is not None:
                raise error

    async def publish(self, channel: str, message: str) -> None:
        await self._backend.publish(channel, message)

    @asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[Subscriber]:
        subscriber = Subscriber(channel, self.max_pending)
        while (in_flight := self._changing.get(channel)) is not None:
            await in_flight.wait()
        subscribers = self._subscribers.get(channel)
        if subscribers is None:
            self._subscribers[channel] = {subscriber}
            done = self._changing[channel] = asyncio.Event()
            try:
                await self._backend.subscribe(channel)
            except BaseException:
                del self._subscribers[channel]
                await self._backend.unsubscribe(channel)
                raise
            finally:
                del self._changing[channel]
                done.set()
        else:
            subscribers.add(subscriber)
        try:
            yield subscriber
        finally:
            subscriber._end()
            subscribers = self._subscribers.get(channel)
            if subscribers is not None:
                subscribers.discard(subscriber)
                if not subscribers:
                    del self._subscribers[channel]
                    done = self._changing[channel] = asyncio.Event()
                    try:
                        await self._backend.unsubscribe(channel)
                    finally:
                        del self._changing[channel]
                        done.set()

    async def _listen(self) -> None:
        while True:
            event = await self._backend.next_published()
            # Never awaits: one slow subscriber holds up no other.
            for subscriber in self._subscribers.get(event.channel, ()):
                subscriber._deliver(event)


class Subscriber:
    """One subscription's events in the order published. `async for` ends with the subscription;
    once the subscriber is dropped as too slow, it raises TooSlow after the events it holds."""

    def __init__(self, channel: str, max_pending: int) -> None:
        self.channel = channel
        self.max_pending = max_pending
        # max_pending events, then the None that ends them: nothing is queued after it.
        self._queue: asyncio.Queue[Event | None] = asyncio.Queue(max_pending + 1)
        self._open = True
        self._dropped = False

    def __aiter__(self) -> Subscriber:
        return self

    async def __anext__(self) -> Event:
        try:
            return await self.get()
        except SubscriptionEnded:
            raise StopAsyncIteration from None

    async def get(self) -> Event:
        """The next event. Raises SubscriptionEnded after the last one, or TooSlow if dropped."""
        event = await self._queue.get()
        if event is not None:
            return event
        self._queue.put_nowait(None)  # ended for good: every later call ends too
        if self._dropped:
            raise TooSlow(
                f"This subscription fell more than {self.max_pending} events behind and was "
                "closed; subscribe again to catch up."
            )
        raise SubscriptionEnded(f"the subscription to {self.channel!r} has ended")

    def _deliver(self, event: Event) -> None:
        if not self._open:
            return
        if self._queue.qsize() < self.max_pending:
            self._queue.put_nowait(event)
            return
        self._open, self._dropped = False, True
        self._queue.put_nowait(None)
        log.warning(
            "subscriber dropped: too slow",
            extra={"channel": self.channel, "pending": self.max_pending},
        )

    def _end(self) -> None:
        if self._open:
            self._open = False
            self._queue.put_nowait(None)


class MemoryBackend:
    """Channels within one process: an event reaches the channels subscribed when it is published."""

    healthy = True

    def __init__(self) -> None:
        self._subscribed: set[str] = set()
        self._published: asyncio.Queue[Event] = asyncio.Queue()

    async def connect(self) -> None:
        pass

    async def disconnect(self) -> None:
        pass

    async def subscribe(self, channel: str) -> None:
        self._subscribed.add(channel)

    async def unsubscribe(self, channel: str) -> None:
        self._subscribed.discard(channel)

    async def publish(self, channel: str, message: str) -> None:
        if channel in self._subscribed:
            self._published.put_nowait(Event(channel, message))

    async def next_published(self) -> Event:
        return await self._published.get()


class RedisBackend:
    """Redis pub/sub on redis.asyncio, that outlives a dropped connection.

    One pub/sub connection per process, opened in `connect()`; a reader task moves its messages to
    a queue that `next_published()` (the broker's listener) waits on. When the connection drops,
    the reader reconnects and subscribes every channel wanted at that moment, so subscribers only
    see a gap, never an error: at once after a connection that had been up for `backoff_max`
    seconds, otherwise after `backoff_first` seconds doubling up to `backoff_max` while attempts
    fail (or connections die young). A connection quiet for `ping_interval` is PINGed, so a dead
    one is noticed within two intervals. Subscribing and unsubscribing while disconnected are
    remembered and applied on reconnect. `subscribe()` returns once Redis has confirmed the
    subscription (when connected): whatever is published after that is delivered. Publishing goes
    through a separate pooled client and raises `BrokerUnavailable` when Redis is down; nothing is
    buffered.
    """

    def __init__(
        self,
        url: str,
        *,
        backoff_first: float = 0.1,
        backoff_max: float = 5.0,
        ping_interval: float = 5.0,
        confirm_timeout: float = 5.0,
        connect_timeout: float = 5.0,
    ) -> None:
        self.url = url
        self._backoff_first = backoff_first
        self._backoff_max = backoff_max
        self._ping_interval = ping_interval
        self._confirm_timeout = confirm_timeout
        # The pub/sub client never retries or reconnects by itself (no supported errors): the
        # reader alone reconnects, and then subscribes from our own list of channels.
        self._subscriber_client = aioredis.Redis.from_url(
            url,
            retry=Retry(NoBackoff(), 0, supported_errors=()),
            socket_connect_timeout=connect_timeout,
            socket_timeout=connect_timeout,
        )
        # One retry on a fresh connection covers a pooled connection left stale by a Redis restart.
        self._publisher = aioredis.Redis.from_url(
            url,
            retry=Retry(ExponentialBackoff(cap=0.2, base=0.05), 1),
            socket_connect_timeout=connect_timeout,
            socket_timeout=connect_timeout,
        )
        self._published: asyncio.Queue[Event] = asyncio.Queue()
        self._channels: set[str] = set()  # wanted by subscribers
        self._on_wire: set[str] = set()  # SUBSCRIBE sent on the current connection
        self._confirming: dict[str, asyncio.Future[None]] = {}
        self._pubsub: PubSub | None = None  # the current connection, None while down
        self._wire = asyncio.Lock()  # one writer on the pub/sub connection at a time
        self._reader: asyncio.Task[None] | None = None

    @property
    def healthy(self) -> bool:
        """The pub/sub connection is up and its subscriptions are confirmed."""
        return self._pubsub is not None

    async def connect(self) -> None:
        """Open the pub/sub connection and start the reader. Redis being down is not an error: the
        reader keeps trying, `healthy` stays False meanwhile and publishing raises."""
        if self._reader is not None:
            return
        try:
            await self._open()
        except _TRANSIENT as error:
            log.warning(
                "broker unreachable at start, retrying in the background",
                extra={"broker": redact(self.url), "error": str(error) or repr(error)},
            )
        else:
            log.info("broker connected", extra={"broker": redact(self.url)})
        self._reader = asyncio.create_task(self._read_forever(), name="broker-reader")

    async def disconnect(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.wait([self._reader])
            self._reader = None
        await self._close()
        await self._subscriber_client.aclose()
        await self._publisher.aclose()

    async def subscribe(self, channel: str) -> None:
        self._channels.add(channel)
        confirmation = await self._apply(channel)
        if confirmation is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(confirmation), self._confirm_timeout)
        except TimeoutError:
            # Still wanted, and resubscribed on the next reconnect if the connection is bad.
            log.warning(
                "broker subscription not confirmed in time",
                extra={"channel": channel, "timeout_seconds": self._confirm_timeout},
            )

    async def unsubscribe(self, channel: str) -> None:
        self._channels.discard(channel)
        await self._apply(channel)

    async def publish(self, channel: str, message: str) -> None:
        try:
            await self._publisher.publish(channel, message)
        except (RedisConnectionError, RedisTimeoutError, OSError) as error:
            raise BrokerUnavailable(
                f"cannot publish to {channel!r}: Redis at {redact(self.url)} is unreachable "
                f"({error})"
            ) from error

    async def next_published(self) -> Event:
        return await self._published.get()

    # --- the pub/sub connection ------------------------------------------------------------------

    async def _apply(self, channel: str) -> asyncio.Future[None] | None:
        """Bring the connection in line with whether `channel` is wanted. Returns the confirmation
        to wait for, if a SUBSCRIBE is on its way. While disconnected, does nothing: the reader
        subscribes every wanted channel when it reconnects."""
        async with self._wire:
            pubsub = self._pubsub
            if pubsub is None or not _connected(pubsub):
                return None
            wanted, sent = channel in self._channels, channel in self._on_wire
            try:
                if wanted and not sent:
                    confirmation = self._confirming.get(channel)
                    if confirmation is None:
                        confirmation = asyncio.get_running_loop().create_future()
                        self._confirming[channel] = confirmation
                    self._on_wire.add(channel)
                    await pubsub.subscribe(channel)
                    return confirmation
                if not wanted and sent:
                    self._on_wire.discard(channel)
                    await pubsub.unsubscribe(channel)
            except _TRANSIENT as error:
                # The connection is broken: the reader's read fails too, and it reconnects.
                log.warning(
                    "broker subscription change deferred to reconnect",
                    extra={"channel": channel, "subscribe": wanted, "error": str(error)},
                )
                return None
            return self._confirming.get(channel) if wanted else None

    async def _open(self) -> None:
        """Connect, subscribe every wanted channel and wait for Redis to confirm them all."""
        async with self._wire:
            pubsub = self._subscriber_client.pubsub()
            try:
                await pubsub.connect()  # type: ignore[no-untyped-call]  # unannotated in redis-py
                channels = set(self._channels)
                if channels:
                    await pubsub.subscribe(*sorted(channels))
                    await self._await_confirmations(pubsub, channels)
            except BaseException:
                await pubsub.aclose()  # type: ignore[no-untyped-call]  # unannotated in redis-py
                raise
            self._on_wire = channels
            self._pubsub = pubsub

    async def _await_confirmations(self, pubsub: PubSub, channels: set[str]) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._confirm_timeout
        unconfirmed = set(channels)
        while unconfirmed:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise RedisTimeoutError(
                    f"Redis confirmed {len(channels) - len(unconfirmed)} of {len(channels)} "
                    f"subscriptions within {self._confirm_timeout} s"
                )
            _check_connected(pubsub)
            message = await pubsub.get_message(timeout=remaining)
            if message is not None:
                confirmed = self._handle(message)
                if confirmed is not None:
                    unconfirmed.discard(confirmed)

    async def _close(self) -> None:
        """Drop the current connection; anyone waiting for a confirmation stops waiting."""
        pubsub, self._pubsub = self._pubsub, None
        self._on_wire = set()
        for confirmation in self._confirming.values():
            if not confirmation.done():
                confirmation.set_result(None)
        self._confirming.clear()
        if pubsub is not None:
            async with self._wire:
                await pubsub.aclose()  # type: ignore[no-untyped-call]  # unannotated in redis-py

    async def _read_forever(self) -> None:
        loop = asyncio.get_running_loop()
        # Failed attempts in a row, and connections that dropped soon after opening (a flapping
        # link or a proxy that drops us must not become a tight reconnect loop): the backoff.
        failures = 0
        attempts = 0  # in the current outage, for the logs
        down_since = up_since = loop.time()
        try:
            while True:
                pubsub = self._pubsub
                if pubsub is None:
                    attempts += 1
                    try:
                        await self._open()
                    except Exception as error:
                        failures += 1
                        delay = self._backoff(failures)
                        log.warning(
                            "broker reconnect failed",
                            extra={
                                "broker": redact(self.url),
                                "attempt": attempts,
                                "retry_in_seconds": delay,
                                "error": str(error) or repr(error),
                            },
                            exc_info=not isinstance(error, _TRANSIENT),
                        )
                        await asyncio.sleep(delay)
                        continue
                    up_since = loop.time()
                    log.info(
                        "broker reconnected",
                        extra={
                            "broker": redact(self.url),
                            "attempt": attempts,
                            "channels": len(self._on_wire),
                            "down_seconds": round(up_since - down_since, 3),
                        },
                    )
                    continue
                try:
                    await self._pump(pubsub)
                except Exception as error:
                    # Anything, not only a network error: if this task died, every subscriber
                    # would wait forever. A bug shows up as a logged traceback and a reconnect.
                    down_since, attempts = loop.time(), 0
                    stable = down_since - up_since >= self._backoff_max
                    failures = 0 if stable else failures + 1
                    delay = self._backoff(failures) if failures else 0.0
                    log.warning(
                        "broker connection lost",
                        extra={
                            "broker": redact(self.url),
                            "channels": len(self._channels),
                            "retry_in_seconds": delay,
                            "error": str(error) or repr(error),
                        },
                        exc_info=not isinstance(error, _TRANSIENT),
                    )
                    await self._close()
                    await asyncio.sleep(delay)
        finally:
            await self._close()

    def _backoff(self, failures: int) -> float:
        return float(min(self._backoff_max, self._backoff_first * 2 ** (failures - 1)))

    async def _pump(self, pubsub: PubSub) -> None:
        """Move messages to the queue until the connection fails. A connection quiet for
        `ping_interval` gets a PING; no answer within another interval counts as a failure (a
        half-open TCP connection otherwise looks like a quiet one forever)."""
        loop = asyncio.get_running_loop()
        heard, pinged = loop.time(), None
        while True:
            _check_connected(pubsub)
            message = await pubsub.get_message(timeout=self._ping_interval)
            now = loop.time()
            if message is not None:
                heard, pinged = now, None
                self._handle(message)
            elif pinged is not None:
                if now - pinged >= self._ping_interval:
                    raise RedisConnectionError(f"no reply to PING within {self._ping_interval} s")
            elif now - heard >= self._ping_interval:
                async with self._wire:
                    _check_connected(pubsub)
                    await pubsub.ping()
                pinged = now

    def _handle(self, message: dict[str, Any]) -> str | None:
        """Queue a published message; returns the channel if this confirms a subscription."""
        kind = message["type"]
        if kind not in ("message", "subscribe"):
            return None
        try:
            channel = _text(message["channel"])
        except UnicodeDecodeError:
            log.warning("broker message on a channel name that is not UTF-8 dropped")
            return None
        if kind == "subscribe":
            confirmation = self._confirming.pop(channel, None)
            if confirmation is not None and not confirmation.done():
                confirmation.set_result(None)
            return channel
        if channel not in self._channels:
            return None  # unsubscribed meanwhile
        try:
            data = _text(message["data"])
        except UnicodeDecodeError:
            log.warning("broker message that is not UTF-8 dropped", extra={"channel": channel})
            return None
        self._published.put_nowait(Event(channel=channel, message=data))
        return None


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _connected(pubsub: PubSub) -> bool:
    return pubsub.connection is not None and pubsub.connection.is_connected


def _check_connected(pubsub: PubSub) -> None:
    # redis-py reconnects a closed pub/sub connection on the next read or command and re-subscribes
    # only the channels it recorded itself: refuse, so that only the reader reconnects.
    if not _connected(pubsub):
        raise RedisConnectionError("the pub/sub connection is closed")
