"""Bearer tokens and the settings behind them: issuing, verifying, refusing, and ROPOS_* config."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from pydantic import ValidationError

from domain.access import Actor, Role
from domain.errors import BadInput, Unauthenticated
from gateway.auth import LEEWAY_SECONDS, actor_from_header, actor_from_token, issue_token
from gateway.settings import DEV_JWT_SECRET, Settings

# Far from the wall clock on purpose: only the `now` handed in may decide expiry.
NOW = datetime(2001, 5, 4, 10, 0, tzinfo=UTC)
SECRET = "a-test-secret-that-is-long-enough-0123456789"
TTL = 3600


@pytest.fixture(autouse=True)
def no_ropos_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test decides its own ROPOS_* variables."""
    for name in list(os.environ):
        if name.upper().startswith("ROPOS_"):
            monkeypatch.delenv(name)


@pytest.fixture
def settings() -> Settings:
    return Settings(jwt_secret=SECRET, token_ttl_seconds=TTL)


def raw_token(claims: dict[str, Any], secret: str = SECRET) -> str:
    """A token with exactly these claims, signed like the service signs."""
    return jwt.encode(claims, secret, algorithm="HS256")


def claims(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "sub": "c1",
        "role": "customer",
        "iss": "ropos",
        "iat": int(NOW.timestamp()),
        "exp": int(NOW.timestamp()) + TTL,
    }
    base.update(overrides)
    return {name: value for name, value in base.items() if value is not None}


# --- round trip -------------------------------------------------------------------------------

ACTORS = [
    pytest.param(Actor(Role.CUSTOMER, "c1"), id="customer"),
    pytest.param(Actor(Role.STAFF, "staff-1", store_id="S001"), id="staff"),
    pytest.param(Actor(Role.POS, "till-7", store_id="S002"), id="pos"),
    pytest.param(Actor(Role.OPS, "ops-1"), id="ops"),
    pytest.param(Actor(Role.WMS, "wms"), id="wms"),
    pytest.param(Actor(Role.CHANNEL, "web-shop", channel="web"), id="channel"),
]


@pytest.mark.parametrize("actor", ACTORS)
def test_an_issued_token_gives_back_the_same_actor(settings: Settings, actor: Actor) -> None:
    token = issue_token(
        settings,
        role=actor.role,
        subject=actor.subject,
        store_id=actor.store_id,
        channel=actor.channel,
        now=NOW,
    )

    assert actor_from_token(settings, token, NOW) == actor


def test_an_issued_token_carries_the_expected_claims(settings: Settings) -> None:
    token = issue_token(settings, role=Role.POS, subject="till-7", store_id="S002", now=NOW)

    decoded = jwt.decode(token, SECRET, algorithms=["HS256"], options={"verify_exp": False})

    assert decoded == {
        "sub": "till-7",
        "role": "pos",
        "store": "S002",
        "iss": "ropos",
        "iat": int(NOW.timestamp()),
        "exp": int(NOW.timestamp()) + TTL,
    }


def test_an_issued_token_lives_for_the_given_ttl(settings: Settings) -> None:
    token = issue_token(settings, role=Role.OPS, subject="ops-1", now=NOW, ttl_seconds=60)

    decoded = jwt.decode(token, SECRET, algorithms=["HS256"], options={"verify_exp": False})

    assert decoded["exp"] - decoded["iat"] == 60


def test_a_staff_token_cannot_be_issued_without_a_store(settings: Settings) -> None:
    with pytest.raises(BadInput):
        issue_token(settings, role=Role.STAFF, subject="staff-1", now=NOW)


# --- expiry -----------------------------------------------------------------------------------


def test_a_token_is_valid_until_its_expiry_plus_the_leeway(settings: Settings) -> None:
    token = issue_token(settings, role=Role.CUSTOMER, subject="c1", now=NOW)
    last_moment = NOW + timedelta(seconds=TTL + LEEWAY_SECONDS - 1)

    assert actor_from_token(settings, token, last_moment) == Actor(Role.CUSTOMER, "c1")


@pytest.mark.parametrize("late", [0, 1, 86400 * 365])
def test_an_expired_token_is_refused(settings: Settings, late: int) -> None:
    token = issue_token(settings, role=Role.CUSTOMER, subject="c1", now=NOW)
    when = NOW + timedelta(seconds=TTL + LEEWAY_SECONDS + late)

    with pytest.raises(Unauthenticated) as raised:
        actor_from_token(settings, token, when)

    assert raised.value.code == "UNAUTHENTICATED"
    assert "expired" in raised.value.message


def test_a_token_still_valid_by_the_wall_clock_is_expired_by_the_services_clock(
    settings: Settings,
) -> None:
    issued = datetime.now(UTC)
    token = issue_token(settings, role=Role.CUSTOMER, subject="c1", now=issued)

    with pytest.raises(Unauthenticated):
        actor_from_token(settings, token, issued + timedelta(days=2))


# --- tokens that are refused ------------------------------------------------------------------


def refused(settings: Settings, token: str) -> Unauthenticated:
    with pytest.raises(Unauthenticated) as raised:
        actor_from_token(settings, token, NOW)
    return raised.value


def test_a_token_with_a_tampered_signature_is_refused(settings: Settings) -> None:
    token = issue_token(settings, role=Role.CUSTOMER, subject="c1", now=NOW)
    header, payload, signature = token.split(".")
    tampered = "B" if signature[0] != "B" else "C"

    refused(settings, f"{header}.{payload}.{tampered}{signature[1:]}")


def test_a_token_with_a_tampered_payload_is_refused(settings: Settings) -> None:
    token = issue_token(settings, role=Role.CUSTOMER, subject="c1", now=NOW)
    _, _, signature = token.split(".")
    forged_header, forged_payload, _ = raw_token(
        claims(role="ops"), "another-secret-that-is-long-enough-987654321"
    ).split(".")

    refused(settings, f"{forged_header}.{forged_payload}.{signature}")


def test_a_token_signed_with_another_secret_is_refused(settings: Settings) -> None:
    other = Settings(jwt_secret="another-secret-that-is-long-enough-987654321")
    token = issue_token(other, role=Role.OPS, subject="ops-1", now=NOW)

    refused(settings, token)


def test_a_token_from_another_issuer_is_refused(settings: Settings) -> None:
    other = Settings(jwt_secret=SECRET, jwt_issuer="someone-else")
    token = issue_token(other, role=Role.OPS, subject="ops-1", now=NOW)

    refused(settings, token)


def test_a_token_without_an_issuer_is_refused(settings: Settings) -> None:
    refused(settings, raw_token(claims(iss=None)))


def test_a_token_without_a_role_is_refused(settings: Settings) -> None:
    refused(settings, raw_token(claims(role=None)))


def test_a_token_without_a_subject_is_refused(settings: Settings) -> None:
    refused(settings, raw_token(claims(sub=None)))


def test_a_token_without_an_expiry_is_refused(settings: Settings) -> None:
    refused(settings, raw_token(claims(exp=None)))


def test_a_token_with_an_unknown_role_is_refused(settings: Settings) -> None:
    error = refused(settings, raw_token(claims(role="admin")))

    assert "'admin'" in error.message


def test_a_staff_token_without_a_store_is_refused(settings: Settings) -> None:
    error = refused(settings, raw_token(claims(sub="staff-1", role="staff")))

    assert "store" in error.message


def test_a_channel_token_without_a_channel_is_refused(settings: Settings) -> None:
    refused(settings, raw_token(claims(sub="web-shop", role="channel")))


def test_a_token_signed_with_none_is_refused(settings: Settings) -> None:
    refused(settings, jwt.encode(claims(role="ops"), None, algorithm="none"))


def test_garbage_is_refused(settings: Settings) -> None:
    refused(settings, "not-a-token")


# --- the Authorization header -----------------------------------------------------------------


@pytest.mark.parametrize("header", [None, ""])
def test_no_header_means_no_actor_and_no_complaint(settings: Settings, header: str | None) -> None:
    assert actor_from_header(settings, header, NOW) == (None, None)


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Token abc", "Bearer", "Bearer   "])
def test_a_header_that_is_not_a_bearer_token_is_explained(settings: Settings, header: str) -> None:
    assert actor_from_header(settings, header, NOW) == (
        None,
        "Send the token as 'Authorization: Bearer <token>'.",
    )


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
def test_a_bearer_header_gives_the_actor(settings: Settings, scheme: str) -> None:
    token = issue_token(settings, role=Role.POS, subject="till-7", store_id="S002", now=NOW)

    actor, problem = actor_from_header(settings, f"{scheme} {token}", NOW)

    assert (actor, problem) == (Actor(Role.POS, "till-7", store_id="S002"), None)


def test_a_bearer_header_with_an_expired_token_says_why(settings: Settings) -> None:
    token = issue_token(settings, role=Role.CUSTOMER, subject="c1", now=NOW)
    later = NOW + timedelta(seconds=TTL + LEEWAY_SECONDS)

    assert actor_from_header(settings, f"Bearer {token}", later) == (
        None,
        "Your token has expired; get a new one.",
    )


def test_a_bearer_header_with_a_bad_token_says_why(settings: Settings) -> None:
    actor, problem = actor_from_header(settings, "Bearer not-a-token", NOW)

    assert actor is None
    assert problem is not None
    assert problem.startswith("Your token is not valid")


# --- settings ---------------------------------------------------------------------------------


def test_production_without_a_secret_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROPOS_ENV", "prod")

    with pytest.raises(ValidationError) as raised:
        Settings()

    assert "ROPOS_JWT_SECRET" in str(raised.value)


def test_production_with_a_short_secret_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROPOS_ENV", "prod")
    monkeypatch.setenv("ROPOS_JWT_SECRET", "x" * 31)

    with pytest.raises(ValidationError):
        Settings()


def test_production_with_the_development_secret_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ROPOS_ENV", "prod")
    monkeypatch.setenv("ROPOS_JWT_SECRET", DEV_JWT_SECRET)

    with pytest.raises(ValidationError):
        Settings()


def test_production_with_a_long_enough_secret_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROPOS_ENV", "prod")
    monkeypatch.setenv("ROPOS_JWT_SECRET", "s" * 32)

    settings = Settings()

    assert settings.env == "prod"
    assert settings.jwt_key == "s" * 32
    assert settings.graphiql_enabled is False


def test_development_works_without_a_secret() -> None:
    settings = Settings()

    assert settings.env == "dev"
    assert settings.jwt_secret is None
    assert settings.jwt_key == DEV_JWT_SECRET
    assert settings.graphiql_enabled is True


def test_settings_are_read_from_ropos_prefixed_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROPOS_JWT_ISSUER", "ropos-test")
    monkeypatch.setenv("ROPOS_TOKEN_TTL_SECONDS", "600")
    monkeypatch.setenv("ROPOS_JWT_SECRET", SECRET)
    monkeypatch.setenv("ROPOS_BROKER_URL", "redis://cache:6379/0")

    settings = Settings()

    assert settings.jwt_issuer == "ropos-test"
    assert settings.token_ttl_seconds == 600
    assert settings.jwt_key == SECRET
    assert settings.broker_url == "redis://cache:6379/0"


def test_variables_without_the_prefix_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JWT_ISSUER", "not-ours")
    monkeypatch.setenv("ENV", "prod")

    settings = Settings()

    assert (settings.jwt_issuer, settings.env) == ("ropos", "dev")


def test_the_secret_is_not_shown_in_the_settings_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROPOS_JWT_SECRET", SECRET)

    assert SECRET not in repr(Settings())


def test_a_token_issued_with_settings_from_the_environment_verifies(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ROPOS_JWT_SECRET", SECRET)
    monkeypatch.setenv("ROPOS_JWT_ISSUER", "ropos-test")
    settings = Settings()
    token = issue_token(settings, role=Role.OPS, subject="ops-1", now=NOW)

    assert actor_from_token(settings, token, NOW) == Actor(Role.OPS, "ops-1")
