"""Settings that come from the environment: an empty WMS variable means not set, and the WMS's
signing secret must be long enough; the token keys (by kid) and what production demands of
them; the edges' settings."""

from __future__ import annotations

import json
import os

import pytest
from pydantic import ValidationError

from gateway.settings import DEV_JWT_SECRET, Settings


def test_empty_wms_variables_mean_not_set() -> None:
    # docker compose passes `${ROPOS_WMS_URL:-}` as an empty string
    settings = Settings(wms_url="", wms_token=" ", wms_inbound_secret="")
    assert (settings.wms_url, settings.wms_token, settings.wms_inbound_secret) == (None, None, None)


def test_a_short_inbound_secret_is_refused() -> None:
    with pytest.raises(ValidationError, match="at least 16 characters"):
        Settings(wms_inbound_secret="short")
    assert Settings(wms_inbound_secret="x" * 16).wms_inbound_secret is not None


# --- token keys, in production and everywhere ---------------------------------------------------

LONG = "a-production-key-that-is-long-enough-0123"
OTHER = "another-production-key-long-enough-45678"


@pytest.fixture
def no_ropos_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("ROPOS_"):
            monkeypatch.delenv(name)


def test_production_starts_with_keys_a_signing_kid_and_a_qr_secret() -> None:
    settings = Settings(
        env="prod",
        jwt_keys={"2026-q1": LONG, "2026-q2": OTHER},
        jwt_signing_kid="2026-q2",
        qr_secret="a-qr-secret-of-its-own-0123456789",
    )

    assert settings.signing_kid == "2026-q2"
    assert settings.jwt_verification_keys == {"2026-q1": LONG, "2026-q2": OTHER}


@pytest.mark.parametrize(
    "weak", [pytest.param("k" * 31, id="short"), pytest.param(DEV_JWT_SECRET, id="dev-secret")]
)
def test_production_refuses_a_weak_key_among_the_keys(weak: str) -> None:
    with pytest.raises(ValidationError, match="'2026-q1'"):
        Settings(
            env="prod",
            jwt_keys={"2026-q1": weak, "2026-q2": OTHER},
            jwt_signing_kid="2026-q2",
            qr_secret="a-qr-secret-of-its-own-0123456789",
        )


def test_development_accepts_short_keys() -> None:
    assert Settings(jwt_keys={"k": "short"}).jwt_key == "short"


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_a_signing_kid_that_is_not_among_the_keys_is_refused(env: str) -> None:
    with pytest.raises(ValidationError, match="ROPOS_JWT_SIGNING_KID '2026-q3' is not among"):
        Settings(
            env=env,
            jwt_keys={"2026-q1": LONG, "2026-q2": OTHER},
            jwt_signing_kid="2026-q3",
            qr_secret="a-qr-secret-of-its-own-0123456789",
        )


def test_a_signing_kid_must_name_the_default_key_when_the_secret_is_alone() -> None:
    with pytest.raises(ValidationError, match="not among the keys"):
        Settings(jwt_secret=LONG, jwt_signing_kid="2026-q2")
    assert Settings(jwt_secret=LONG, jwt_signing_kid="default").jwt_key == LONG


def test_several_keys_need_a_signing_kid() -> None:
    with pytest.raises(ValidationError, match="ROPOS_JWT_SIGNING_KID"):
        Settings(jwt_keys={"2026-q1": LONG, "2026-q2": OTHER})


def test_production_with_keys_needs_a_qr_key_that_outlives_them() -> None:
    with pytest.raises(ValidationError, match="ROPOS_QR_SECRET"):
        Settings(env="prod", jwt_keys={"2026-q2": OTHER})
    # ROPOS_JWT_SECRET, kept, derives it
    assert Settings(env="prod", jwt_keys={"2026-q2": OTHER}, jwt_secret=LONG).qr_key


def test_production_without_any_key_names_both_variables() -> None:
    with pytest.raises(ValidationError) as raised:
        Settings(env="prod")

    assert "ROPOS_JWT_SECRET" in str(raised.value)
    assert "ROPOS_JWT_KEYS" in str(raised.value)


@pytest.mark.usefixtures("no_ropos_environment")
def test_keys_are_read_from_a_json_object(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROPOS_JWT_KEYS", json.dumps({"2026-q1": LONG, "2026-q2": OTHER}))
    monkeypatch.setenv("ROPOS_JWT_SIGNING_KID", "2026-q2")

    settings = Settings()

    assert settings.jwt_verification_keys == {"2026-q1": LONG, "2026-q2": OTHER}
    assert LONG not in repr(settings)
    assert OTHER not in repr(settings)


@pytest.mark.usefixtures("no_ropos_environment")
def test_empty_key_variables_mean_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROPOS_JWT_KEYS", "")
    monkeypatch.setenv("ROPOS_JWT_SIGNING_KID", " ")

    settings = Settings()

    assert settings.jwt_verification_keys == {"default": DEV_JWT_SECRET}


@pytest.mark.usefixtures("no_ropos_environment")
@pytest.mark.parametrize(
    "value", ["2026-q1:secret", '["secret"]', '{"2026-q1": 7}', '{"": "secret"}']
)
def test_malformed_keys_are_a_settings_error(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("ROPOS_JWT_KEYS", value)

    with pytest.raises(ValidationError, match="jwt_keys"):
        Settings()


# --- the edges --------------------------------------------------------------------------------


def test_introspection_is_on_in_development_and_off_in_production() -> None:
    assert Settings().introspection_enabled is True
    assert Settings(env="prod", jwt_secret=LONG).introspection_enabled is False
    assert Settings(env="prod", jwt_secret=LONG, introspection=True).introspection_enabled
    assert Settings(introspection=False).introspection_enabled is False


def test_allowed_origins_are_kept_as_browsers_send_them() -> None:
    settings = Settings(allowed_origins=["https://Shop.Example.com/", "http://localhost:3000"])

    assert settings.allowed_origins == ["https://shop.example.com", "http://localhost:3000"]


@pytest.mark.parametrize(
    "origin", ["shop.example.com", "https://shop.example.com/app", "ftp://shop.example.com"]
)
def test_an_allowed_origin_that_is_not_an_origin_is_refused(origin: str) -> None:
    with pytest.raises(ValidationError, match="is not an origin"):
        Settings(allowed_origins=[origin])
