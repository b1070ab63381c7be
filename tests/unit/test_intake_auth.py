"""Intake delivery signatures: each channel's own scheme and Standard Webhooks, checked against
the vectors the channels' and the spec's own libraries publish, with secret rotation."""

from __future__ import annotations

import base64
import hmac
from collections.abc import Callable

import pytest

from domain.intake import SalesChannel
from domain.intake_auth import (
    METHODS,
    TOLERANCE_SECONDS,
    AuthFailure,
    AuthMethod,
    Verified,
    secret_problem,
    sign_shopify,
    sign_square,
    sign_standard,
    sign_woocommerce,
    standard_headers,
    verify,
)

NOW = 1_767_268_800.0
CURRENT = "current-secret-0123456789"
PREVIOUS = "previous-secret-0123456789"
STRANGER = "somebody-else-0123456789"

# Computed with OpenSSL, not with the code under test:
#   printf '<body>' | openssl dgst -sha256 -hmac '<secret>' -binary | base64
SHOPIFY_SECRET = "shpss_0123456789abcdef0123456789abcdef"
SHOPIFY_BODY = b'{"id":820982911946154508,"email":"jon@example.com"}'
SHOPIFY_MAC = "8++5uqaSbZMvfZWESSDj93PLZ220nqZIKaoc0fiVLe4="
WC_SECRET = "wc-secret-0123456789abcdef"
WC_BODY = b'{"id":1001,"status":"processing"}'
WC_MAC = "D1UYVGuyw4xr78IolD49s9SpsvdMM1nKwzl+NUIZC8c="

# The vector of Square's SDKs' webhook helper tests (square-python-sdk, square-nodejs-sdk, ...).
SQUARE_KEY = "Ibxx_5AKakO-3qeNVR61Dw"
SQUARE_URL = "https://webhook.site/679a4f3a-dcfa-49ee-bac5-9d0edad886b9"
SQUARE_BODY = (
    b'{"merchant_id":"MLEFBHHSJGVHD","type":"webhooks.test_notification",'
    b'"event_id":"ac3ac95b-f97d-458c-a6e6-18981597e05f",'
    b'"created_at":"2022-07-13T20:30:59.037339943Z",'
    b'"data":{"type":"webhooks","id":"bc368e64-01aa-407e-b46e-3231809b1129"}}'
)
SQUARE_MAC = "GF4YkrJgGBDZ9NIYbNXBnMzqb2HoL4RW/S6vkZ9/2N4="

# The Standard Webhooks test vector (standard-webhooks/standard-webhooks, the libraries' tests:
# libraries/python/tests/test_webhooks.py `test_sign_function`, and the same in every language).
SW_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SW_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SW_TIMESTAMP = 1614265330
SW_BODY = b'{"test": 2432232314}'
SW_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

ORDER = b'{"id":"A-1001","lines":[{"sku":"SKU-1","quantity":2}]}'


def changed_one_byte(body: bytes) -> bytes:
    return body[:-2] + bytes([body[-2] ^ 0x01]) + body[-1:]


def failure(
    channel: SalesChannel,
    headers: dict[str, str],
    body: bytes,
    secrets: list[str],
    *,
    now: float = NOW,
    notification_url: str | None = None,
) -> str:
    with pytest.raises(AuthFailure) as raised:
        verify(channel, headers, body, secrets, now=now, notification_url=notification_url)
    return raised.value.reason


def sw_headers(secret: str, body: bytes = ORDER, timestamp: int = int(NOW)) -> dict[str, str]:
    return standard_headers(secret, "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", timestamp, body)


# Shopify


def test_shopify_signs_the_raw_body_as_openssl_does() -> None:
    assert sign_shopify(SHOPIFY_SECRET, SHOPIFY_BODY) == SHOPIFY_MAC


def test_a_shopify_delivery_verifies_and_carries_its_event_id_and_topic() -> None:
    headers = {
        "X-Shopify-Hmac-Sha256": SHOPIFY_MAC,
        "X-Shopify-Topic": "orders/create",
        "X-Shopify-Event-Id": "98880550-7158-44d4-b7cd-2c97c8a091b5",
    }

    verified = verify(SalesChannel.SHOPIFY, headers, SHOPIFY_BODY, [SHOPIFY_SECRET], now=NOW)

    assert verified == Verified(
        AuthMethod.SHOPIFY,
        0,
        event_id="98880550-7158-44d4-b7cd-2c97c8a091b5",
        topic="orders/create",
    )
    assert not verified.used_previous_secret


def test_a_shopify_delivery_signed_with_another_secret_fails() -> None:
    headers = {"X-Shopify-Hmac-Sha256": sign_shopify(STRANGER, SHOPIFY_BODY)}

    assert failure(SalesChannel.SHOPIFY, headers, SHOPIFY_BODY, [SHOPIFY_SECRET]) == (
        "BAD_SIGNATURE"
    )


def test_a_shopify_body_changed_by_one_byte_fails() -> None:
    headers = {"X-Shopify-Hmac-Sha256": SHOPIFY_MAC}

    reason = failure(
        SalesChannel.SHOPIFY, headers, changed_one_byte(SHOPIFY_BODY), [SHOPIFY_SECRET]
    )

    assert reason == "BAD_SIGNATURE"


@pytest.mark.parametrize("value", ["", "not base64!", "é" * 44, SHOPIFY_MAC.lower()])
def test_a_malformed_shopify_signature_fails(value: str) -> None:
    headers = {"X-Shopify-Hmac-Sha256": value}

    assert failure(SalesChannel.SHOPIFY, headers, SHOPIFY_BODY, [SHOPIFY_SECRET]) == (
        "BAD_SIGNATURE"
    )


def test_a_shopify_delivery_without_a_signature_is_missing_one() -> None:
    headers = {"X-Shopify-Topic": "orders/create"}

    assert failure(SalesChannel.SHOPIFY, headers, SHOPIFY_BODY, [SHOPIFY_SECRET]) == (
        "MISSING_SIGNATURE"
    )


# WooCommerce


def test_woocommerce_signs_the_raw_body_as_openssl_does() -> None:
    assert sign_woocommerce(WC_SECRET, WC_BODY) == WC_MAC


def test_a_woocommerce_delivery_verifies_with_its_topic_and_no_event_id() -> None:
    headers = {
        "X-WC-Webhook-Signature": WC_MAC,
        "X-WC-Webhook-Topic": "order.created",
        "X-WC-Webhook-ID": "12",
    }

    verified = verify(SalesChannel.WOOCOMMERCE, headers, WC_BODY, [WC_SECRET], now=NOW)

    assert verified == Verified(AuthMethod.WOOCOMMERCE, 0, event_id=None, topic="order.created")


def test_a_woocommerce_delivery_signed_with_another_secret_fails() -> None:
    headers = {"X-WC-Webhook-Signature": sign_woocommerce(STRANGER, WC_BODY)}

    assert failure(SalesChannel.WOOCOMMERCE, headers, WC_BODY, [WC_SECRET]) == "BAD_SIGNATURE"


def test_a_woocommerce_body_changed_by_one_byte_fails() -> None:
    headers = {"X-WC-Webhook-Signature": WC_MAC}

    reason = failure(SalesChannel.WOOCOMMERCE, headers, changed_one_byte(WC_BODY), [WC_SECRET])

    assert reason == "BAD_SIGNATURE"


def test_a_woocommerce_delivery_without_a_signature_is_missing_one() -> None:
    headers = {"X-WC-Webhook-Topic": "order.created"}

    assert failure(SalesChannel.WOOCOMMERCE, headers, WC_BODY, [WC_SECRET]) == ("MISSING_SIGNATURE")


# Square


def test_square_signs_the_url_then_the_body_as_its_sdks_do() -> None:
    assert sign_square(SQUARE_KEY, SQUARE_URL, SQUARE_BODY) == SQUARE_MAC


def test_the_square_sdk_vector_verifies_without_ids_in_headers() -> None:
    headers = {"X-Square-HmacSha256-Signature": SQUARE_MAC, "square-environment": "Sandbox"}

    verified = verify(
        SalesChannel.SQUARE,
        headers,
        SQUARE_BODY,
        [SQUARE_KEY],
        now=NOW,
        notification_url=SQUARE_URL,
    )

    assert verified == Verified(AuthMethod.SQUARE, 0, event_id=None, topic=None)


@pytest.mark.parametrize(
    ("key", "url", "body"),
    [
        (STRANGER, SQUARE_URL, SQUARE_BODY),
        (SQUARE_KEY, SQUARE_URL + "/", SQUARE_BODY),
        (SQUARE_KEY, SQUARE_URL.replace("https:", "http:"), SQUARE_BODY),
        (SQUARE_KEY, SQUARE_URL, changed_one_byte(SQUARE_BODY)),
    ],
    ids=["another-key", "another-url", "another-scheme", "body-changed-by-one-byte"],
)
def test_a_square_delivery_fails_unless_key_url_and_body_are_those_signed(
    key: str, url: str, body: bytes
) -> None:
    headers = {"x-square-hmacsha256-signature": SQUARE_MAC}

    assert failure(SalesChannel.SQUARE, headers, body, [key], notification_url=url) == (
        "BAD_SIGNATURE"
    )


def test_a_square_account_without_a_notification_url_cannot_verify_square_signatures() -> None:
    headers = {"x-square-hmacsha256-signature": SQUARE_MAC}

    assert failure(SalesChannel.SQUARE, headers, SQUARE_BODY, [SQUARE_KEY]) == "NO_SECRET"


def test_a_square_delivery_without_a_signature_is_missing_one() -> None:
    headers = {"x-square-signature": "legacy-sha1-is-not-accepted"}

    reason = failure(
        SalesChannel.SQUARE, headers, SQUARE_BODY, [SQUARE_KEY], notification_url=SQUARE_URL
    )

    assert reason == "MISSING_SIGNATURE"


# Standard Webhooks


def test_the_standard_webhooks_vector_signs_exactly() -> None:
    assert sign_standard(SW_SECRET, SW_ID, SW_TIMESTAMP, SW_BODY) == SW_SIGNATURE


def test_the_standard_webhooks_vector_verifies_with_its_id() -> None:
    headers = {
        "webhook-id": SW_ID,
        "webhook-timestamp": str(SW_TIMESTAMP),
        "webhook-signature": SW_SIGNATURE,
    }

    verified = verify(SalesChannel.GENERIC, headers, SW_BODY, [SW_SECRET], now=SW_TIMESTAMP)

    assert verified == Verified(AuthMethod.STANDARD_WEBHOOKS, 0, event_id=SW_ID, topic=None)


def test_a_whsec_secret_is_keyed_with_its_decoded_bytes_any_other_with_its_text() -> None:
    # The same characters without the prefix are a different key: their utf-8 bytes.
    plain = SW_SECRET.removeprefix("whsec_")
    signed_plain = sign_standard(plain, SW_ID, SW_TIMESTAMP, SW_BODY)
    expected_plain = hmac.new(
        plain.encode(), f"{SW_ID}.{SW_TIMESTAMP}.".encode() + SW_BODY, "sha256"
    ).digest()
    headers = {
        "webhook-id": SW_ID,
        "webhook-timestamp": str(SW_TIMESTAMP),
        "webhook-signature": SW_SIGNATURE,
    }

    assert signed_plain != SW_SIGNATURE
    assert signed_plain == "v1," + base64.b64encode(expected_plain).decode()
    assert failure(SalesChannel.GENERIC, headers, SW_BODY, [plain], now=SW_TIMESTAMP) == (
        "BAD_SIGNATURE"
    )


def test_a_whsec_secret_without_its_base64_padding_is_the_same_key() -> None:
    unpadded = "whsec_" + base64.b64encode(b"k" * 20).decode().rstrip("=")
    padded = "whsec_" + base64.b64encode(b"k" * 20).decode()

    assert unpadded != padded
    assert sign_standard(unpadded, SW_ID, SW_TIMESTAMP, SW_BODY) == sign_standard(
        padded, SW_ID, SW_TIMESTAMP, SW_BODY
    )


@pytest.mark.parametrize("channel", list(SalesChannel))
def test_every_channel_accepts_standard_webhooks(channel: SalesChannel) -> None:
    verified = verify(channel, sw_headers(SW_SECRET), ORDER, [SW_SECRET], now=NOW)

    assert verified.method is AuthMethod.STANDARD_WEBHOOKS
    assert verified.event_id == "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"


def test_a_standard_delivery_signed_with_another_secret_fails() -> None:
    assert failure(SalesChannel.AMAZON, sw_headers(STRANGER), ORDER, [CURRENT]) == ("BAD_SIGNATURE")


def test_a_standard_body_changed_by_one_byte_fails() -> None:
    headers = sw_headers(CURRENT)

    assert failure(SalesChannel.AMAZON, headers, changed_one_byte(ORDER), [CURRENT]) == (
        "BAD_SIGNATURE"
    )


@pytest.mark.parametrize(
    ("name", "value"), [("webhook-id", "msg_other"), ("webhook-timestamp", "1767268801")]
)
def test_the_id_and_the_timestamp_are_signed_too(name: str, value: str) -> None:
    headers = sw_headers(CURRENT) | {name: value}

    assert failure(SalesChannel.AMAZON, headers, ORDER, [CURRENT]) == "BAD_SIGNATURE"


@pytest.mark.parametrize("skew", [-TOLERANCE_SECONDS, -1, 0, 1, TOLERANCE_SECONDS])
def test_a_timestamp_within_five_minutes_either_way_verifies(skew: int) -> None:
    headers = sw_headers(CURRENT, timestamp=int(NOW) + skew)

    assert verify(SalesChannel.GENERIC, headers, ORDER, [CURRENT], now=NOW).secret_index == 0


@pytest.mark.parametrize(
    "skew", [-TOLERANCE_SECONDS - 1, TOLERANCE_SECONDS + 1, -86_400], ids=["old", "new", "day"]
)
def test_a_timestamp_beyond_five_minutes_either_way_is_stale(skew: int) -> None:
    headers = sw_headers(CURRENT, timestamp=int(NOW) + skew)

    assert failure(SalesChannel.GENERIC, headers, ORDER, [CURRENT]) == "STALE_TIMESTAMP"


def test_a_forgery_with_an_old_timestamp_is_a_bad_signature_not_a_stale_one() -> None:
    headers = sw_headers(STRANGER, timestamp=int(NOW) - 3600)

    assert failure(SalesChannel.GENERIC, headers, ORDER, [CURRENT]) == "BAD_SIGNATURE"


def test_one_valid_signature_among_several_is_enough() -> None:
    valid = sign_standard(CURRENT, "msg_1", int(NOW), ORDER)
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(int(NOW)),
        "webhook-signature": " ".join(
            [
                "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=",
                "v1a,hnO3f9T8Ytu9HwrXslvumlUpqtNVqkhqw/enGzPCXe5BdqzCInXqYXFymVJaA7AZdpXwVLPo3mNl8EM+m7TBAg==",
                "v1,bm9wZQ==",
                "garbage",
                valid,
            ]
        ),
    }

    assert verify(SalesChannel.GENERIC, headers, ORDER, [CURRENT], now=NOW).secret_index == 0


@pytest.mark.parametrize("prefix", ["v2", "v1a", "V1", ""])
def test_a_valid_mac_under_another_version_prefix_is_ignored(prefix: str) -> None:
    mac = sign_standard(CURRENT, "msg_1", int(NOW), ORDER).removeprefix("v1,")
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(int(NOW)),
        "webhook-signature": f"{prefix},{mac}",
    }

    assert failure(SalesChannel.GENERIC, headers, ORDER, [CURRENT]) == "BAD_SIGNATURE"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("webhook-id", None),
        ("webhook-timestamp", None),
        ("webhook-timestamp", "1767268800.0"),
        ("webhook-timestamp", "soon"),
        ("webhook-timestamp", "-1767268800"),
    ],
)
def test_standard_metadata_missing_or_unreadable_fails(name: str, value: str | None) -> None:
    headers = sw_headers(CURRENT)
    if value is None:
        del headers[name]
    else:
        headers[name] = value

    assert failure(SalesChannel.GENERIC, headers, ORDER, [CURRENT]) == "BAD_SIGNATURE"


def test_a_standard_delivery_without_a_signature_is_missing_one() -> None:
    headers = sw_headers(CURRENT)
    del headers["webhook-signature"]

    assert failure(SalesChannel.GENERIC, headers, ORDER, [CURRENT]) == "MISSING_SIGNATURE"


# Headers, channels, secrets


def test_header_names_are_matched_whatever_their_case() -> None:
    shopify = {"X-SHOPIFY-HMAC-SHA256": SHOPIFY_MAC, "x-shopify-TOPIC": "orders/paid"}
    standard = {name.title(): value for name, value in sw_headers(CURRENT).items()}

    by_shopify = verify(SalesChannel.SHOPIFY, shopify, SHOPIFY_BODY, [SHOPIFY_SECRET], now=NOW)
    by_standard = verify(SalesChannel.BIGCOMMERCE, standard, ORDER, [CURRENT], now=NOW)

    assert "Webhook-Signature" in standard
    assert (by_shopify.method, by_shopify.topic) == (AuthMethod.SHOPIFY, "orders/paid")
    assert by_standard.method is AuthMethod.STANDARD_WEBHOOKS


@pytest.mark.parametrize(
    ("channel", "headers"),
    [
        (SalesChannel.BIGCOMMERCE, {"X-Shopify-Hmac-Sha256": SHOPIFY_MAC}),
        (SalesChannel.GENERIC, {"X-WC-Webhook-Signature": SHOPIFY_MAC}),
        (SalesChannel.SHOPIFY, {"x-square-hmacsha256-signature": SHOPIFY_MAC}),
        (SalesChannel.WOOCOMMERCE, {"X-Shopify-Hmac-Sha256": SHOPIFY_MAC}),
    ],
)
def test_a_channel_refuses_a_method_it_does_not_accept(
    channel: SalesChannel, headers: dict[str, str]
) -> None:
    # The MAC is right for the key and the body: only the method is wrong for the channel.
    reason = failure(channel, headers, SHOPIFY_BODY, [SHOPIFY_SECRET], notification_url="x")

    assert reason == "MISSING_SIGNATURE"


def test_methods_are_those_each_channel_signs_with() -> None:
    own = {
        SalesChannel.SHOPIFY: AuthMethod.SHOPIFY,
        SalesChannel.WOOCOMMERCE: AuthMethod.WOOCOMMERCE,
        SalesChannel.SQUARE: AuthMethod.SQUARE,
    }

    for channel in SalesChannel:
        expected = (own[channel],) if channel in own else ()
        assert METHODS[channel] == (*expected, AuthMethod.STANDARD_WEBHOOKS)
    assert AuthMethod.STANDARD_WEBHOOKS.value == "standard-webhooks"


def test_the_channel_s_own_signature_failing_falls_back_to_standard_webhooks() -> None:
    headers = {"X-Shopify-Hmac-Sha256": sign_shopify(STRANGER, ORDER), **sw_headers(CURRENT)}

    verified = verify(SalesChannel.SHOPIFY, headers, ORDER, [CURRENT], now=NOW)

    assert verified.method is AuthMethod.STANDARD_WEBHOOKS


def test_when_no_method_verifies_the_most_telling_reason_is_given() -> None:
    headers = {
        "X-Shopify-Hmac-Sha256": sign_shopify(STRANGER, ORDER),
        **sw_headers(CURRENT, timestamp=int(NOW) - 3600),
    }

    assert failure(SalesChannel.SHOPIFY, headers, ORDER, [CURRENT]) == "STALE_TIMESTAMP"


@pytest.mark.parametrize("secrets", [[], [""], ["", ""]])
def test_an_account_without_a_secret_cannot_verify(secrets: list[str]) -> None:
    headers = {"X-Shopify-Hmac-Sha256": SHOPIFY_MAC}

    assert failure(SalesChannel.SHOPIFY, headers, SHOPIFY_BODY, secrets) == "NO_SECRET"


# Rotation


@pytest.mark.parametrize(
    ("channel", "sign"),
    [
        (SalesChannel.SHOPIFY, lambda s: {"X-Shopify-Hmac-Sha256": sign_shopify(s, ORDER)}),
        (
            SalesChannel.WOOCOMMERCE,
            lambda s: {"X-WC-Webhook-Signature": sign_woocommerce(s, ORDER)},
        ),
        (
            SalesChannel.SQUARE,
            lambda s: {"x-square-hmacsha256-signature": sign_square(s, SQUARE_URL, ORDER)},
        ),
        (SalesChannel.GENERIC, sw_headers),
    ],
    ids=["shopify", "woocommerce", "square", "standard-webhooks"],
)
def test_rotation_accepts_the_previous_secret_and_says_so(
    channel: SalesChannel, sign: Callable[[str], dict[str, str]]
) -> None:
    def check(secret: str, secrets: list[str]) -> Verified:
        return verify(channel, sign(secret), ORDER, secrets, now=NOW, notification_url=SQUARE_URL)

    by_current = check(CURRENT, [CURRENT, PREVIOUS])
    by_previous = check(PREVIOUS, [CURRENT, PREVIOUS])

    assert (by_current.secret_index, by_current.used_previous_secret) == (0, False)
    assert (by_previous.secret_index, by_previous.used_previous_secret) == (1, True)
    # Once the grace period is over the caller passes the current secret only.
    with pytest.raises(AuthFailure) as raised:
        check(PREVIOUS, [CURRENT])
    assert raised.value.reason == "BAD_SIGNATURE"
    with pytest.raises(AuthFailure) as raised:
        check(STRANGER, [CURRENT, PREVIOUS])
    assert raised.value.reason == "BAD_SIGNATURE"


def test_a_sender_signing_with_both_secrets_is_reported_on_the_current_one() -> None:
    headers = sw_headers(PREVIOUS)
    headers["webhook-signature"] += " " + sign_standard(
        CURRENT, headers["webhook-id"], int(NOW), ORDER
    )

    assert verify(SalesChannel.GENERIC, headers, ORDER, [CURRENT, PREVIOUS], now=NOW) == (
        Verified(AuthMethod.STANDARD_WEBHOOKS, 0, event_id=headers["webhook-id"])
    )


def test_an_empty_current_slot_keeps_the_previous_secret_s_index() -> None:
    headers = {"X-Shopify-Hmac-Sha256": sign_shopify(PREVIOUS, ORDER)}

    assert verify(SalesChannel.SHOPIFY, headers, ORDER, ["", PREVIOUS], now=NOW).secret_index == 1


def test_every_secret_and_signature_is_compared_even_after_a_match(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", counting)
    headers = sw_headers(CURRENT)
    headers["webhook-signature"] += " v1,bm9wZQ=="

    verified = verify(SalesChannel.GENERIC, headers, ORDER, [CURRENT, PREVIOUS, STRANGER], now=NOW)

    assert verified.secret_index == 0
    assert len(compared) == 3 * 2


# Secrets an account may have


@pytest.mark.parametrize(
    ("secret", "problem"),
    [
        ("x" * 15, "at least 16 characters"),
        ("x" * 501, "at most 500 characters"),
        ("0123456789abcdef\n", "printable"),
        ("0123456789abcdef\x00", "printable"),
        (" 0123456789abcdef", "space"),
        ("whsec_not*base64*at*all", "base64"),
        ("whsec_" + "a2tra2tra2tra2s=", "at least 16 bytes"),
    ],
)
def test_a_secret_problem_is_named(secret: str, problem: str) -> None:
    found = secret_problem(secret)

    assert found is not None
    assert problem in found


@pytest.mark.parametrize(
    "secret", ["x" * 16, "x" * 500, SHOPIFY_SECRET, SQUARE_KEY, SW_SECRET, "correct horse battery"]
)
def test_a_good_secret_has_no_problem(secret: str) -> None:
    assert secret_problem(secret) is None


def test_an_undecodable_whsec_secret_cannot_sign() -> None:
    with pytest.raises(ValueError, match="base64"):
        sign_standard("whsec_not*base64*at*all", SW_ID, SW_TIMESTAMP, SW_BODY)
