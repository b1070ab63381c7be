"""Is an intake delivery from the channel account it claims to be? Checks its signature exactly
as each channel signs (HMAC-SHA256 with the account's secret), before anything reads the body.

Pure: the caller passes the raw body, the headers, the account's secrets and the clock. The
signing helpers exist for tests, the README's example and the benchmark."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from domain.intake import SalesChannel


class AuthMethod(StrEnum):
    """A way a channel signs its deliveries."""

    SHOPIFY = "shopify"
    WOOCOMMERCE = "woocommerce"
    SQUARE = "square"
    STANDARD_WEBHOOKS = "standard-webhooks"


# Which methods each channel may sign with, tried in this order. Standard Webhooks is open to
# every channel (a connector in front of any of them can use it) and is the only way for the
# channels that have no signature of their own that ROPOS accepts.
METHODS: Mapping[SalesChannel, tuple[AuthMethod, ...]] = {
    SalesChannel.SHOPIFY: (AuthMethod.SHOPIFY, AuthMethod.STANDARD_WEBHOOKS),
    SalesChannel.WOOCOMMERCE: (AuthMethod.WOOCOMMERCE, AuthMethod.STANDARD_WEBHOOKS),
    SalesChannel.SQUARE: (AuthMethod.SQUARE, AuthMethod.STANDARD_WEBHOOKS),
    SalesChannel.BIGCOMMERCE: (AuthMethod.STANDARD_WEBHOOKS,),
    SalesChannel.AMAZON: (AuthMethod.STANDARD_WEBHOOKS,),
    SalesChannel.ADOBE_COMMERCE: (AuthMethod.STANDARD_WEBHOOKS,),
    SalesChannel.GENERIC: (AuthMethod.STANDARD_WEBHOOKS,),
}

SHOPIFY_SIGNATURE = "x-shopify-hmac-sha256"
SHOPIFY_TOPIC = "x-shopify-topic"
SHOPIFY_EVENT_ID = "x-shopify-event-id"
WOOCOMMERCE_SIGNATURE = "x-wc-webhook-signature"
WOOCOMMERCE_TOPIC = "x-wc-webhook-topic"
SQUARE_SIGNATURE = "x-square-hmacsha256-signature"
STANDARD_ID = "webhook-id"
STANDARD_TIMESTAMP = "webhook-timestamp"
STANDARD_SIGNATURE = "webhook-signature"

# The header whose presence says a delivery claims to be signed that way.
SIGNATURE_HEADERS: Mapping[AuthMethod, str] = {
    AuthMethod.SHOPIFY: SHOPIFY_SIGNATURE,
    AuthMethod.WOOCOMMERCE: WOOCOMMERCE_SIGNATURE,
    AuthMethod.SQUARE: SQUARE_SIGNATURE,
    AuthMethod.STANDARD_WEBHOOKS: STANDARD_SIGNATURE,
}

# How far a Standard Webhooks timestamp may be from now, either way (the spec's libraries' value).
TOLERANCE_SECONDS = 5 * 60

STANDARD_SECRET_PREFIX = "whsec_"
MIN_SECRET_CHARS = 16
MAX_SECRET_CHARS = 500
MIN_SECRET_BYTES = 16

FailureReason = Literal["MISSING_SIGNATURE", "BAD_SIGNATURE", "STALE_TIMESTAMP", "NO_SECRET"]

# When several methods were tried and none verified, the most telling reason is reported: an
# authentic but old delivery (replay or a sender's clock) over a configuration gap over a plain
# mismatch.
_PRECEDENCE: tuple[FailureReason, ...] = ("STALE_TIMESTAMP", "NO_SECRET", "BAD_SIGNATURE")


@dataclass(frozen=True)
class Verified:
    """A delivery whose signature holds: how it was signed, with which of the account's secrets
    (0 the current one, 1 the previous one during a rotation), and the event id and topic its
    headers carry (None when the method has none in headers)."""

    method: AuthMethod
    secret_index: int
    event_id: str | None = None
    topic: str | None = None

    @property
    def used_previous_secret(self) -> bool:
        return self.secret_index > 0


class AuthFailure(Exception):
    """A delivery that cannot be shown to come from the account: no signature of a method its
    channel accepts (MISSING_SIGNATURE), a signature that does not verify (BAD_SIGNATURE), a
    Standard Webhooks delivery signed too far from now (STALE_TIMESTAMP), or an account with
    nothing to verify against (NO_SECRET)."""

    def __init__(self, reason: FailureReason, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason: FailureReason = reason
        self.message = message


# Signing


def _mac(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _standard_key(secret: str) -> bytes | None:
    """The key a Standard Webhooks secret stands for: the decoded bytes of a `whsec_<base64>`
    secret (as the spec's libraries key it, padding optional), else the secret's utf-8 bytes.
    None for a `whsec_` secret that is not base64: it cannot be the key the sender holds."""
    if not secret.startswith(STANDARD_SECRET_PREFIX):
        return secret.encode("utf-8")
    encoded = secret[len(STANDARD_SECRET_PREFIX) :]
    try:
        return base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


def _standard_content(msg_id: str, timestamp: int, body: bytes) -> bytes:
    return f"{msg_id}.{timestamp}.".encode() + body


def sign_shopify(secret: str, body: bytes) -> str:
    """The `X-Shopify-Hmac-Sha256` value Shopify sends with `body`."""
    return _b64(_mac(secret.encode("utf-8"), body))


def sign_woocommerce(secret: str, body: bytes) -> str:
    """The `X-WC-Webhook-Signature` value WooCommerce sends with `body`."""
    return _b64(_mac(secret.encode("utf-8"), body))


def sign_square(secret: str, notification_url: str, body: bytes) -> str:
    """The `x-square-hmacsha256-signature` value Square sends with `body` to `notification_url`
    (the URL exactly as registered in the Square subscription)."""
    return _b64(_mac(secret.encode("utf-8"), notification_url.encode("utf-8") + body))


def sign_standard(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """One Standard Webhooks `webhook-signature` entry, `v1,<base64>`."""
    key = _standard_key(secret)
    if key is None:
        raise ValueError("a whsec_ secret must be base64 after its prefix")
    return "v1," + _b64(_mac(key, _standard_content(msg_id, timestamp, body)))


def standard_headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three headers of a Standard Webhooks delivery signed with `secret`."""
    return {
        STANDARD_ID: msg_id,
        STANDARD_TIMESTAMP: str(timestamp),
        STANDARD_SIGNATURE: sign_standard(secret, msg_id, timestamp, body),
    }


def secret_problem(secret: str) -> str | None:
    """Why `secret` cannot be an account's signing secret, or None when it can."""
    if len(secret) < MIN_SECRET_CHARS:
        return f"a signing secret has at least {MIN_SECRET_CHARS} characters"
    if len(secret) > MAX_SECRET_CHARS:
        return f"a signing secret has at most {MAX_SECRET_CHARS} characters"
    if not secret.isprintable():
        return "a signing secret has only printable characters"
    if secret != secret.strip():
        return "a signing secret does not start or end with a space (a pasting slip?)"
    if secret.startswith(STANDARD_SECRET_PREFIX):
        key = _standard_key(secret)
        if key is None:
            return "a whsec_ secret is base64 after its prefix"
        if len(key) < MIN_SECRET_BYTES:
            return f"a whsec_ secret decodes to at least {MIN_SECRET_BYTES} bytes"
    return None


# Verifying


def _decode_signature(value: str) -> bytes | None:
    try:
        return base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None


def _matching_secret(expected: Sequence[bytes | None], given: Sequence[bytes]) -> int | None:
    """The index of the first secret whose MAC is among the given signatures. Every pair is
    compared in constant time before deciding, so the time taken does not say which secret or
    which signature matched; a None (unusable secret) is never compared."""
    matched: int | None = None
    for index, mac in enumerate(expected):
        hit = False
        for signature in given:
            # `|=` rather than `any()`: no short cut once a pair has matched.
            hit |= mac is not None and hmac.compare_digest(mac, signature)
        if hit and matched is None:
            matched = index
    return matched


def _body_mac(
    secrets: Sequence[str | None], header: str, content: bytes, method: AuthMethod
) -> int:
    """The secret index for a method that signs `content` with the secret's utf-8 bytes and
    sends one base64 MAC."""
    given = _decode_signature(header)
    expected = [None if s is None else _mac(s.encode("utf-8"), content) for s in secrets]
    index = _matching_secret(expected, [] if given is None else [given])
    if index is None:
        raise AuthFailure("BAD_SIGNATURE", f"the {method} signature does not verify")
    return index


@dataclass(frozen=True)
class _Delivery:
    headers: Mapping[str, str]  # lower-cased names
    body: bytes
    secrets: Sequence[str | None]  # None where the account's slot holds no secret
    now: float
    notification_url: str | None


def _verify_shopify(d: _Delivery) -> Verified:
    index = _body_mac(d.secrets, d.headers[SHOPIFY_SIGNATURE], d.body, AuthMethod.SHOPIFY)
    return Verified(
        AuthMethod.SHOPIFY,
        index,
        event_id=d.headers.get(SHOPIFY_EVENT_ID),
        topic=d.headers.get(SHOPIFY_TOPIC),
    )


def _verify_woocommerce(d: _Delivery) -> Verified:
    header = d.headers[WOOCOMMERCE_SIGNATURE]
    index = _body_mac(d.secrets, header, d.body, AuthMethod.WOOCOMMERCE)
    return Verified(AuthMethod.WOOCOMMERCE, index, topic=d.headers.get(WOOCOMMERCE_TOPIC))


def _verify_square(d: _Delivery) -> Verified:
    if not d.notification_url:
        # The URL is half of what Square signs: without it nothing can verify.
        raise AuthFailure("NO_SECRET", "the Square account has no notification URL configured")
    content = d.notification_url.encode("utf-8") + d.body
    index = _body_mac(d.secrets, d.headers[SQUARE_SIGNATURE], content, AuthMethod.SQUARE)
    return Verified(AuthMethod.SQUARE, index)


def _standard_signatures(header: str) -> list[bytes]:
    """The `v1` signatures of a `webhook-signature` header; other versions (`v1a`, future ones)
    and entries that are not base64 are left out."""
    found: list[bytes] = []
    for entry in header.split():
        version, _, value = entry.partition(",")
        signature = _decode_signature(value) if version == "v1" else None
        if signature is not None:
            found.append(signature)
    return found


def _verify_standard(d: _Delivery) -> Verified:
    msg_id = d.headers.get(STANDARD_ID)
    stamp = d.headers.get(STANDARD_TIMESTAMP, "").strip()
    if not msg_id or not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 15):
        raise AuthFailure(
            "BAD_SIGNATURE", "webhook-id or webhook-timestamp is missing or unreadable"
        )
    timestamp = int(stamp)
    content = _standard_content(msg_id, timestamp, d.body)
    keys = [None if s is None else _standard_key(s) for s in d.secrets]
    expected = [None if key is None else _mac(key, content) for key in keys]
    index = _matching_secret(expected, _standard_signatures(d.headers[STANDARD_SIGNATURE]))
    if index is None:
        raise AuthFailure("BAD_SIGNATURE", "no webhook-signature verifies")
    # Checked after the signature so that STALE_TIMESTAMP means "authentic but too old or too
    # new" (a replay, or a sender's clock), never a forgery.
    if abs(d.now - timestamp) > TOLERANCE_SECONDS:
        raise AuthFailure(
            "STALE_TIMESTAMP",
            f"webhook-timestamp is {d.now - timestamp:.0f}s from now "
            f"(tolerance {TOLERANCE_SECONDS}s)",
        )
    return Verified(AuthMethod.STANDARD_WEBHOOKS, index, event_id=msg_id)


_VERIFIERS: Mapping[AuthMethod, Callable[[_Delivery], Verified]] = {
    AuthMethod.SHOPIFY: _verify_shopify,
    AuthMethod.WOOCOMMERCE: _verify_woocommerce,
    AuthMethod.SQUARE: _verify_square,
    AuthMethod.STANDARD_WEBHOOKS: _verify_standard,
}


def verify(
    channel: SalesChannel,
    headers: Mapping[str, str],
    body: bytes,
    secrets: Sequence[str],
    *,
    now: float,
    notification_url: str | None = None,
) -> Verified:
    """Verify a delivery to `channel` before its body is read.

    `secrets` are the account's valid secrets, current first, then the previous one while its
    grace period lasts (the caller decides which are still valid); an empty string is no secret.
    Every method of the channel whose signature header is present is tried, in `METHODS` order,
    and the first that verifies wins. `now` is unix seconds; `notification_url` is the Square
    subscription's URL, needed only for Square's own signature. Raises `AuthFailure`."""
    slots = [secret or None for secret in secrets]
    if all(slot is None for slot in slots):
        raise AuthFailure("NO_SECRET", f"the {channel} account has no signing secret configured")
    lowered = {name.lower(): value for name, value in headers.items()}
    present = [m for m in METHODS[channel] if SIGNATURE_HEADERS[m] in lowered]
    if not present:
        accepted = ", ".join(SIGNATURE_HEADERS[m] for m in METHODS[channel])
        raise AuthFailure("MISSING_SIGNATURE", f"a {channel} delivery is signed with {accepted}")
    delivery = _Delivery(lowered, body, slots, now, notification_url)
    failures: list[AuthFailure] = []
    for method in present:
        try:
            return _VERIFIERS[method](delivery)
        except AuthFailure as failure:
            failures.append(failure)
    raise min(failures, key=lambda failure: _PRECEDENCE.index(failure.reason))
