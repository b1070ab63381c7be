"""Bearer tokens and the settings behind them: issuing, verifying, refusing (the pinned
algorithm, the required claims, the audience), keys by kid and their rotation, `ropos token`,
and ROPOS_* config."""

from __future__ import annotations

import base64
import json
import os
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from pydantic import ValidationError

from domain.access import Actor, Role
from domain.errors import BadInput, Unauthenticated
from gateway import cli
from gateway.auth import LEEWAY_SECONDS, actor_from_header, actor_from_token, issue_token
from gateway.settings import DEFAULT_KID, DEV_JWT_SECRET, Settings

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


def raw_token(
    claims: dict[str, Any],
    secret: str = SECRET,
    *,
    kid: str | None = DEFAULT_KID,
    algorithm: str = "HS256",
) -> str:
    """A token with exactly these claims, signed like the service signs (unless told otherwise);
    `kid` None: a header without a kid."""
    headers = {"kid": kid} if kid is not None else None
    return jwt.encode(claims, secret, algorithm=algorithm, headers=headers)


def unsigned_token(header: dict[str, Any], claims: dict[str, Any]) -> str:
    """A token with this header and a signature of nothing: for algorithms we cannot sign with."""

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part(header)}.{part(claims)}.c2lnbmF0dXJl"


def claims(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "sub": "c1",
        "role": "customer",
        "iss": "ropos",
        "aud": "ropos",
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

    decoded = jwt.decode(
        token, SECRET, algorithms=["HS256"], audience="ropos", options={"verify_exp": False}
    )

    assert decoded == {
        "sub": "till-7",
        "role": "pos",
        "store": "S002",
        "iss": "ropos",
        "aud": "ropos",
        "iat": int(NOW.timestamp()),
        "exp": int(NOW.timestamp()) + TTL,
    }
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT", "kid": DEFAULT_KID}


def test_an_issued_token_carries_the_configured_audience() -> None:
    settings = Settings(jwt_secret=SECRET, jwt_audience="ropos-eu")
    token = issue_token(settings, role=Role.OPS, subject="ops-1", now=NOW)

    decoded = jwt.decode(
        token, SECRET, algorithms=["HS256"], audience="ropos-eu", options={"verify_exp": False}
    )

    assert decoded["aud"] == "ropos-eu"
    assert actor_from_token(settings, token, NOW) == Actor(Role.OPS, "ops-1")


def test_an_issued_token_lives_for_the_given_ttl(settings: Settings) -> None:
    token = issue_token(settings, role=Role.OPS, subject="ops-1", now=NOW, ttl_seconds=60)

    decoded = jwt.decode(
        token, SECRET, algorithms=["HS256"], audience="ropos", options={"verify_exp": False}
    )

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
    error = refused(settings, jwt.encode(claims(role="ops"), None, algorithm="none"))

    assert "'none'" in error.message
    assert "only HS256" in error.message


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
@pytest.mark.parametrize("algorithm", ["HS512", "HS384"])
def test_a_token_signed_with_another_hmac_and_the_right_secret_is_refused(
    settings: Settings, algorithm: str
) -> None:
    # The right secret, the right claims: only the algorithm is not the pinned one.
    error = refused(settings, raw_token(claims(role="ops"), algorithm=algorithm))

    assert algorithm in error.message


@pytest.mark.parametrize("algorithm", ["RS256", "ES256", "none", "NONE", ""])
def test_a_token_whose_header_names_another_algorithm_is_refused(
    settings: Settings, algorithm: str
) -> None:
    token = unsigned_token({"alg": algorithm, "kid": DEFAULT_KID}, claims(role="ops"))

    refused(settings, token)


def test_a_token_without_an_algorithm_is_refused(settings: Settings) -> None:
    refused(settings, unsigned_token({"kid": DEFAULT_KID}, claims(role="ops")))


def test_a_token_without_an_audience_is_refused(settings: Settings) -> None:
    error = refused(settings, raw_token(claims(aud=None)))

    assert "aud" in error.message


@pytest.mark.parametrize("audience", ["someone-else", ["someone-else", "another"], ""])
def test_a_token_for_another_audience_is_refused(settings: Settings, audience: object) -> None:
    refused(settings, raw_token(claims(aud=audience)))


def test_a_token_for_several_audiences_among_them_ours_is_accepted(settings: Settings) -> None:
    token = raw_token(claims(aud=["another", "ropos"]))

    assert actor_from_token(settings, token, NOW) == Actor(Role.CUSTOMER, "c1")


def test_a_token_issued_for_another_audience_is_refused(settings: Settings) -> None:
    other = Settings(jwt_secret=SECRET, jwt_audience="ropos-staging")
    token = issue_token(other, role=Role.OPS, subject="ops-1", now=NOW)

    refused(settings, token)


@pytest.mark.parametrize("exp", ["tomorrow", None])
def test_a_token_whose_expiry_is_not_a_time_is_refused(settings: Settings, exp: Any) -> None:
    refused(settings, raw_token({**claims(), "exp": exp}))


def test_garbage_is_refused(settings: Settings) -> None:
    refused(settings, "not-a-token")


# --- keys by kid, and their rotation ----------------------------------------------------------

OLD_KEY = "the-key-of-last-quarter-0123456789abcdef"
NEW_KEY = "the-key-of-this-quarter-0123456789abcdef"


def keys(*kids: str, signing: str | None = None) -> Settings:
    secrets = {"2026-q1": OLD_KEY, "2026-q2": NEW_KEY}
    return Settings(jwt_keys={kid: secrets[kid] for kid in kids}, jwt_signing_kid=signing)


def test_new_tokens_are_signed_with_the_signing_kid() -> None:
    settings = keys("2026-q1", "2026-q2", signing="2026-q2")

    token = issue_token(settings, role=Role.OPS, subject="ops-1", now=NOW)

    assert jwt.get_unverified_header(token)["kid"] == "2026-q2"
    jwt.decode(
        token, NEW_KEY, algorithms=["HS256"], audience="ropos", options={"verify_exp": False}
    )


def test_with_one_key_it_is_the_signing_key() -> None:
    token = issue_token(keys("2026-q2"), role=Role.OPS, subject="ops-1", now=NOW)

    assert jwt.get_unverified_header(token)["kid"] == "2026-q2"


def test_a_token_names_the_kid_it_was_signed_with_when_asked_for_another() -> None:
    settings = keys("2026-q1", "2026-q2", signing="2026-q2")

    token = issue_token(settings, role=Role.OPS, subject="ops-1", now=NOW, kid="2026-q1")

    assert jwt.get_unverified_header(token)["kid"] == "2026-q1"
    assert actor_from_token(settings, token, NOW) == Actor(Role.OPS, "ops-1")


def test_a_token_cannot_be_issued_with_an_unknown_kid() -> None:
    with pytest.raises(BadInput) as raised:
        issue_token(keys("2026-q2"), role=Role.OPS, subject="ops-1", now=NOW, kid="2025-q4")

    assert "2025-q4" in raised.value.message


def test_a_rotation_keeps_the_old_keys_tokens_until_the_old_key_is_removed() -> None:
    # Given a token signed last quarter
    before = keys("2026-q1")
    old_token = issue_token(before, role=Role.POS, subject="till-7", store_id="S001", now=NOW)
    till = Actor(Role.POS, "till-7", store_id="S001")

    # While both keys are configured (signing with the new one), old and new tokens work
    during = keys("2026-q1", "2026-q2", signing="2026-q2")
    new_token = issue_token(during, role=Role.POS, subject="till-7", store_id="S001", now=NOW)
    assert actor_from_token(during, old_token, NOW) == till
    assert actor_from_token(during, new_token, NOW) == till

    # Once the old key is removed, its tokens are refused (however often they were accepted
    # before: the verified-token cache does not outlive the key), and the new ones still work
    after = keys("2026-q2")
    error = refused(after, old_token)
    assert "'2026-q1'" in error.message
    assert "get a new one" in error.message
    assert actor_from_token(after, new_token, NOW) == till


def test_a_token_with_an_unknown_kid_is_refused_with_a_clear_message(settings: Settings) -> None:
    error = refused(settings, raw_token(claims(), kid="no-such-key"))

    assert error.message == (
        "Your token was signed with a key this service does not hold (kid 'no-such-key'); "
        "get a new one."
    )


def test_a_token_signed_with_another_keys_secret_is_refused() -> None:
    # The header names the new key; the signature is made with the old one.
    settings = keys("2026-q1", "2026-q2", signing="2026-q2")

    refused(settings, raw_token(claims(), OLD_KEY, kid="2026-q2"))


def test_a_kid_whose_secret_changed_no_longer_verifies_its_old_tokens() -> None:
    first = Settings(jwt_keys={"k": OLD_KEY})
    token = issue_token(first, role=Role.OPS, subject="ops-1", now=NOW)
    assert actor_from_token(first, token, NOW) == Actor(Role.OPS, "ops-1")  # now in the cache

    refused(Settings(jwt_keys={"k": NEW_KEY}), token)


def test_a_token_from_before_kids_existed_is_checked_against_the_default_key(
    settings: Settings,
) -> None:
    token = raw_token(claims(), kid=None)

    assert actor_from_token(settings, token, NOW) == Actor(Role.CUSTOMER, "c1")
    refused(keys("2026-q1"), token)  # no key "default" any more: refused


def test_the_secret_alone_is_the_key_of_the_default_kid(settings: Settings) -> None:
    assert settings.jwt_verification_keys == {DEFAULT_KID: SECRET}
    assert settings.signing_kid == DEFAULT_KID
    assert settings.jwt_key == SECRET


def test_with_keys_the_secret_is_not_a_token_key() -> None:
    settings = Settings(jwt_secret=SECRET, jwt_keys={"2026-q2": NEW_KEY})

    refused(settings, raw_token(claims(), SECRET, kid=DEFAULT_KID))
    refused(settings, raw_token(claims(), SECRET, kid="2026-q2"))


def test_the_qr_key_does_not_change_when_the_token_keys_rotate() -> None:
    plain = Settings(jwt_secret=SECRET)
    rotated = [
        Settings(jwt_secret=SECRET, jwt_keys={"2026-q1": OLD_KEY}),
        Settings(jwt_secret=SECRET, jwt_keys={"2026-q2": NEW_KEY}),
    ]

    assert {s.qr_key for s in rotated} == {plain.qr_key}


def test_the_expiry_of_a_cached_token_is_judged_on_each_request(settings: Settings) -> None:
    token = issue_token(settings, role=Role.OPS, subject="ops-1", now=NOW, ttl_seconds=60)
    assert actor_from_token(settings, token, NOW) == Actor(Role.OPS, "ops-1")

    with pytest.raises(Unauthenticated, match="expired"):
        actor_from_token(settings, token, NOW + timedelta(seconds=60 + LEEWAY_SECONDS))


# --- ropos token ------------------------------------------------------------------------------


def decoded_token(output: str, key: str) -> tuple[dict[str, Any], dict[str, Any]]:
    token = output.strip()
    claims = jwt.decode(
        token, key, algorithms=["HS256"], audience="ropos", options={"verify_exp": False}
    )
    return jwt.get_unverified_header(token), claims


def test_ropos_token_signs_with_the_signing_kid(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ROPOS_JWT_KEYS", json.dumps({"2026-q1": OLD_KEY, "2026-q2": NEW_KEY}))
    monkeypatch.setenv("ROPOS_JWT_SIGNING_KID", "2026-q2")

    cli.main(["token", "--role", "pos", "--store", "S001"])

    header, claims = decoded_token(capsys.readouterr().out, NEW_KEY)
    assert header["kid"] == "2026-q2"
    assert (claims["role"], claims["store"], claims["aud"]) == ("pos", "S001", "ropos")


def test_ropos_token_signs_with_the_kid_asked_for(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ROPOS_JWT_KEYS", json.dumps({"2026-q1": OLD_KEY, "2026-q2": NEW_KEY}))
    monkeypatch.setenv("ROPOS_JWT_SIGNING_KID", "2026-q2")

    cli.main(["token", "--role", "ops", "--kid", "2026-q1"])

    header, _ = decoded_token(capsys.readouterr().out, OLD_KEY)
    assert header["kid"] == "2026-q1"


def test_ropos_token_with_an_unknown_kid_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROPOS_JWT_SECRET", SECRET)

    with pytest.raises(SystemExit) as exited:
        cli.main(["token", "--role", "ops", "--kid", "2025-q4"])

    assert "2025-q4" in str(exited.value.code)


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
