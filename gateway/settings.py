"""Settings, from ROPOS_* environment variables, loaded once by the app factory or the CLI."""

from __future__ import annotations

import hashlib
import hmac
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Accepted only while ROPOS_ENV=dev, so a laptop needs no set-up; production refuses to start on it.
DEV_JWT_SECRET = "ropos-dev-secret-not-for-production-use-0123456789"
MIN_SECRET_LENGTH = 32


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ROPOS_", extra="ignore")

    env: Literal["dev", "prod"] = Field("dev", description="dev or prod")
    database_url: str = "sqlite+aiosqlite:///./ropos.db"
    broker_url: str = "memory://"
    jwt_secret: SecretStr | None = None
    jwt_issuer: str = "ropos"
    # Signs pickup QR codes; by default derived from the JWT secret.
    qr_secret: SecretStr | None = None
    token_ttl_seconds: int = Field(24 * 3600, ge=60)

    subscription_buffer: int = Field(1000, ge=1, le=1_000_000)
    relay_interval_seconds: float = Field(1.0, gt=0, le=60)
    relay_batch_size: int = Field(500, ge=1, le=10_000)

    webhook_interval_seconds: float = Field(1.0, gt=0, le=60)
    webhook_max_attempts: int = Field(8, ge=1, le=100)
    webhook_timeout_seconds: float = Field(5.0, gt=0, le=60)

    # The WMS: where ROPOS sends every lock, release and consumption (none: nothing is sent),
    # the bearer token it expects, and how hard to try.
    wms_url: str | None = None
    wms_token: SecretStr | None = None
    wms_timeout_seconds: float = Field(5.0, gt=0, le=120)
    wms_interval_seconds: float = Field(0.5, gt=0, le=60)
    wms_batch_size: int = Field(500, ge=1, le=10_000)
    wms_max_attempts: int = Field(20, ge=1, le=1000)
    wms_breaker_threshold: int = Field(5, ge=1, le=1000)
    wms_breaker_cooldown_seconds: float = Field(5.0, gt=0, le=3600)
    # How often stock is compared with the WMS (0: never on a timer; ops can still run it).
    reconcile_interval_seconds: float = Field(300.0, ge=0)
    # The WMS may sign POST /wms/stock-levels with this secret instead of sending a wms token.
    wms_inbound_secret: SecretStr | None = None
    wms_inbound_max_bytes: int = Field(8 * 1024 * 1024, ge=1024)
    # How far from a store that ran short another store may be to take its reservations over.
    resource_radius_km: float = Field(25.0, ge=0, le=500)

    # The order intake: the largest body the edge stores, how often the worker sweeps for
    # messages (it is also woken by every delivery), tries before a message is DEAD, and how
    # far from the customer a pickup store may be when the channel names none.
    intake_max_bytes: int = Field(1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    intake_interval_seconds: float = Field(1.0, gt=0, le=60)
    intake_max_attempts: int = Field(8, ge=1, le=100)
    intake_batch_size: int = Field(50, ge=1, le=1000)
    intake_concurrency: int = Field(8, ge=1, le=64)
    # A message a worker took is not taken again for this long, unless it finishes it.
    intake_lease_seconds: float = Field(60.0, ge=0.5, le=3600)
    intake_radius_km: float = Field(50.0, gt=0, le=1000)
    # Fetching back the orders thin webhooks name: per request, and per account and process.
    intake_fetch_timeout_seconds: float = Field(10.0, gt=0, le=120)
    intake_fetch_per_second: float = Field(5.0, gt=0, le=1000)
    intake_fetch_burst: int = Field(10, ge=1, le=10_000)
    # How often the gap sweep asks each account's API for orders changed since (0: never).
    intake_sweep_interval_seconds: float = Field(300.0, ge=0, le=86_400)
    # How long the edge keeps a channel account (its secrets, enabled) before reading it again.
    intake_account_cache_seconds: float = Field(1.0, ge=0, le=60)

    # Bookkeeping older than this many days is deleted (0: keep everything); see README.
    retention_days: float = Field(30.0, ge=0)
    retention_interval_seconds: float = Field(3600.0, gt=0)

    run_workers: bool = True
    sweep_interval_seconds: float = Field(0.5, gt=0, le=60)
    sweep_batch_size: int = Field(200, ge=1, le=10_000)

    policy_cache_seconds: float = Field(2.0, ge=0)
    store_cache_seconds: float = Field(30.0, ge=0)

    # Measured (bench/reserve.py, 2 cores): more concurrent transactions than this only queue
    # inside PostgreSQL, on row locks and CPU, where waiting costs more than in the process.
    db_pool_size: int = Field(16, ge=1)
    db_max_overflow: int = Field(0, ge=0)
    sqlite_busy_timeout_ms: int = Field(30_000, ge=0)

    # Complete plain sub-selections by plan (schema/plain.py): half of availability's CPU. Off:
    # graphql-core's own path, same answers.
    plain_completion: bool = True
    max_query_depth: int = Field(10, ge=2)
    max_aliases: int = Field(15, ge=1)
    max_tokens: int = Field(2_000, ge=100)
    graphiql: bool | None = None
    allowed_origins: list[str] = Field(default_factory=list)

    log_level: str = "INFO"
    log_json: bool = True

    @field_validator("wms_url", "wms_token", "wms_inbound_secret", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        # An empty variable (docker compose's `${X:-}`) means "not set".
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("wms_inbound_secret")
    @classmethod
    def _inbound_secret_long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("ROPOS_WMS_INBOUND_SECRET must be at least 16 characters")
        return value

    @model_validator(mode="after")
    def _production_needs_a_secret(self) -> Settings:
        if self.env == "prod":
            secret = self.jwt_secret.get_secret_value() if self.jwt_secret else ""
            if len(secret) < MIN_SECRET_LENGTH or secret == DEV_JWT_SECRET:
                raise ValueError(
                    f"ROPOS_ENV=prod needs ROPOS_JWT_SECRET: a secret of at least "
                    f"{MIN_SECRET_LENGTH} characters that is not the development one"
                )
        return self

    @property
    def jwt_key(self) -> str:
        return self.jwt_secret.get_secret_value() if self.jwt_secret else DEV_JWT_SECRET

    @property
    def qr_key(self) -> bytes:
        if self.qr_secret is not None:
            return self.qr_secret.get_secret_value().encode()
        return hmac.new(self.jwt_key.encode(), b"ropos pickup qr codes", hashlib.sha256).digest()

    @property
    def graphiql_enabled(self) -> bool:
        return self.env == "dev" if self.graphiql is None else self.graphiql
