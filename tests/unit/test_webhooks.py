"""POS webhook rules: the signature and the retry schedule."""

from __future__ import annotations

import hashlib
import hmac
import random

import pytest

from domain.errors import BadInput
from domain.retry import MAX_RETRY_SECONDS, retry_delay
from domain.webhooks import WebhookTarget, signature


def test_the_signature_is_hmac_sha256_over_timestamp_and_body() -> None:
    body = b'{"type":"READY_FOR_PICKUP"}'
    expected = hmac.new(b"0123456789abcdef", b"1767268800." + body, hashlib.sha256).hexdigest()

    assert signature("0123456789abcdef", 1767268800, body) == f"sha256={expected}"
    assert signature("0123456789abcdef", 1767268801, body) != f"sha256={expected}"


def test_retries_back_off_exponentially_with_jitter_up_to_a_cap() -> None:
    rng = random.Random(1)
    delays = [[retry_delay(attempt, rng) for _ in range(200)] for attempt in range(1, 16)]

    for attempt, samples in enumerate(delays, start=1):
        ceiling = min(MAX_RETRY_SECONDS, 2.0 * 2 ** (attempt - 1))
        assert all(ceiling / 2 <= d <= ceiling for d in samples)
        assert len(set(samples)) > 100  # jittered, not all the same
    assert max(delays[-1]) <= MAX_RETRY_SECONDS


@pytest.mark.parametrize(
    ("url", "secret", "field"),
    [
        ("ftp://pos.example.com", "0123456789abcdef", "url"),
        ("https://", "0123456789abcdef", "url"),
        ("https://pos.example.com/hooks", "too-short", "secret"),
    ],
)
def test_a_webhook_needs_an_http_url_and_a_long_enough_secret(
    url: str, secret: str, field: str
) -> None:
    with pytest.raises(BadInput) as error:
        WebhookTarget.build(url, secret)
    assert error.value.details["field"] == field
