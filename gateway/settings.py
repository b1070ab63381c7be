"""Settings, from ROPOS_* environment variables, loaded once by the app factory or the CLI."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
from functools import cached_property
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# Accepted only while ROPOS_ENV=dev, so a laptop needs no set-up; production refuses to start on it.
DEV_JWT_SECRET = "ropos-dev-secret-not-for-production-use-0123456789"
MIN_SECRET_LENGTH = 32
# The kid of ROPOS_JWT_SECRET when it is the only key (no ROPOS_JWT_KEYS); a token without a kid
# (issued before kids existed) is checked against the key of this kid.
DEFAULT_KID = "default"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ROPOS_", extra="ignore")

    env: Literal["dev", "prod"] = Field("dev", description="dev or prod")
    database_url: str = "sqlite+aiosqlite:///./ropos.db"
    broker_url: str = "memory://"
    jwt_secret: SecretStr | None = None
    jwt_issuer: str = "ropos"
    # Tokens: the audience they are issued for and must name (`aud`); the signing keys by kid,
    # as a JSON object {"kid": "secret"} (ROPOS_JWT_KEYS; none: ROPOS_JWT_SECRET under the kid
    # "default"), and the kid new tokens are signed with (ROPOS_JWT_SIGNING_KID; may be left out
    # when there is one key). Rotating: add the new key, sign with it, drop the old one once the
    # tokens it signed have expired.
    jwt_audience: str = Field("ropos", min_length=1)
    jwt_keys: Annotated[dict[str, SecretStr], NoDecode] = Field(default_factory=dict)
    jwt_signing_kid: str | None = None
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
    # Edges: introspection (None: on in dev, off in prod), the largest GraphQL request body over
    # HTTP and the largest WebSocket message (413 / close 1009 above it, before it is parsed), and
    # the longest query text (checked before it is parsed).
    introspection: bool | None = None
    graphql_max_bytes: int = Field(256 * 1024, ge=1024, le=64 * 1024 * 1024)
    max_query_chars: int = Field(20_000, ge=100, le=1024 * 1024)

    # --- rate limits per caller (gateway/rate_limits.py; README "Rate limits") ---------------
    # Requests per second once the burst is spent, and the burst, per caller and edge. GraphQL
    # (HTTP requests, WebSocket connection_init and subscribe messages): per verified token
    # subject of a customer or staff member; per subject of the service roles (ops, pos, wms,
    # channel: systems that poll or act for many people); per client address without a valid
    # token. POST /intake/{channel}/{account}: per account path. POST /wms/stock-levels: per
    # client address. A per-second figure of 0 turns that limit off. Counted in Redis when the
    # broker is redis:// (every replica shares them), in memory on memory://.
    rate_limit_graphql_per_second: float = Field(20.0, ge=0, le=100_000)
    rate_limit_graphql_burst: int = Field(200, ge=1, le=1_000_000)
    rate_limit_graphql_service_per_second: float = Field(200.0, ge=0, le=100_000)
    rate_limit_graphql_service_burst: int = Field(1_000, ge=1, le=1_000_000)
    rate_limit_graphql_anonymous_per_second: float = Field(10.0, ge=0, le=100_000)
    rate_limit_graphql_anonymous_burst: int = Field(100, ge=1, le=1_000_000)
    rate_limit_intake_per_second: float = Field(200.0, ge=0, le=100_000)
    rate_limit_intake_burst: int = Field(2_000, ge=1, le=1_000_000)
    rate_limit_wms_per_second: float = Field(50.0, ge=0, le=100_000)
    rate_limit_wms_burst: int = Field(500, ge=1, le=1_000_000)
    # The reverse proxies in front, as a JSON list of addresses or networks (["10.0.0.0/8"]).
    # Only a request from one of them is keyed by X-Forwarded-For: by its right-most entry that
    # is not a trusted proxy. Empty: the peer's address, and X-Forwarded-For is ignored.
    trusted_proxies: list[str] = Field(default_factory=list)

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies_are_networks(cls, proxies: list[str]) -> list[str]:
        for proxy in proxies:
            try:
                ipaddress.ip_network(proxy.strip(), strict=False)
            except ValueError:
                raise ValueError(
                    f"ROPOS_TRUSTED_PROXIES: {proxy!r} is not an address or a network like "
                    "10.0.0.0/8"
                ) from None
        return [proxy.strip() for proxy in proxies]

    # --- end of rate limits ------------------------------------------------------------------

    # --- /metrics (gateway/metrics.py; README "Metrics") -------------------------------------
    # Open by default: Prometheus scrapes it from inside the network. With a metrics token, a
    # scrape must send `Authorization: Bearer <it>` (an ops token does too); with require-ops,
    # an ops token (or the metrics token, when one is set). An empty variable is no token.
    metrics_token: SecretStr | None = None
    metrics_require_ops: bool = False

    @field_validator("metrics_token", mode="before")
    @classmethod
    def _no_empty_metrics_token(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("metrics_token")
    @classmethod
    def _metrics_token_long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("ROPOS_METRICS_TOKEN must be at least 16 characters")
        return value

    # --- end of /metrics ---------------------------------------------------------------------

    log_level: str = "INFO"
    log_json: bool = True

    @field_validator("wms_url", "wms_token", "wms_inbound_secret", "jwt_signing_kid", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        # An empty variable (docker compose's `${X:-}`) means "not set".
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("jwt_keys", mode="before")
    @classmethod
    def _keys_from_json(cls, value: object) -> object:
        # Read here rather than by pydantic-settings, so that an empty variable means none and a
        # malformed one is a settings error that says what is wrong.
        if not isinstance(value, str):
            return value
        if not value.strip():
            return {}
        try:
            return json.loads(value)
        except ValueError:
            raise ValueError(
                'ROPOS_JWT_KEYS must be a JSON object {"kid": "secret", ...}'
            ) from None

    @field_validator("jwt_keys")
    @classmethod
    def _kids_are_names(cls, keys: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for kid in keys:
            if not 1 <= len(kid) <= 64 or not kid.isprintable() or kid.strip() != kid:
                raise ValueError(
                    f"ROPOS_JWT_KEYS: kid {kid!r} must be 1 to 64 printable characters"
                )
        return keys

    @field_validator("allowed_origins")
    @classmethod
    def _origins_are_origins(cls, origins: list[str]) -> list[str]:
        # As browsers send them (scheme://host[:port], lower case, no path): CORS compares the
        # Origin header with these as text.
        normalized = []
        for origin in origins:
            parts = urlsplit(origin.strip())
            if origin.strip() == "*":
                normalized.append("*")
                continue
            if (
                parts.scheme not in ("http", "https")
                or not parts.netloc
                or parts.path not in ("", "/")
                or parts.query
                or parts.fragment
                or "@" in parts.netloc
            ):
                raise ValueError(
                    f"ROPOS_ALLOWED_ORIGINS: {origin!r} is not an origin like "
                    "https://shop.example.com (scheme, host, optional port)"
                )
            normalized.append(f"{parts.scheme}://{parts.netloc.lower()}")
        return normalized

    @field_validator("wms_inbound_secret")
    @classmethod
    def _inbound_secret_long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("ROPOS_WMS_INBOUND_SECRET must be at least 16 characters")
        return value

    @model_validator(mode="after")
    def _a_key_to_sign_with(self) -> Settings:
        # In every environment: tokens could be neither issued nor told apart otherwise.
        if self.jwt_keys and self.jwt_signing_kid is None and len(self.jwt_keys) > 1:
            raise ValueError(
                "ROPOS_JWT_KEYS holds several keys: name the one new tokens are signed with "
                "in ROPOS_JWT_SIGNING_KID"
            )
        if (
            self.jwt_signing_kid is not None
            and self.jwt_signing_kid not in self.jwt_verification_keys
        ):
            raise ValueError(
                f"ROPOS_JWT_SIGNING_KID {self.jwt_signing_kid!r} is not among the keys "
                f"({', '.join(sorted(self.jwt_verification_keys))})"
            )
        return self

    @model_validator(mode="after")
    def _production_needs_a_secret(self) -> Settings:
        if self.env == "prod":
            if not self.jwt_keys:
                secret = self.jwt_secret.get_secret_value() if self.jwt_secret else ""
                if _weak(secret):
                    raise ValueError(
                        f"ROPOS_ENV=prod needs ROPOS_JWT_SECRET (or ROPOS_JWT_KEYS): a secret of "
                        f"at least {MIN_SECRET_LENGTH} characters that is not the development one"
                    )
            weak = sorted(
                kid for kid, key in self.jwt_keys.items() if _weak(key.get_secret_value())
            )
            if weak:
                raise ValueError(
                    f"ROPOS_ENV=prod: ROPOS_JWT_KEYS {', '.join(map(repr, weak))} must be at "
                    f"least {MIN_SECRET_LENGTH} characters and not the development secret"
                )
            if self.jwt_keys and self.qr_secret is None and self.jwt_secret is None:
                # The QR key must outlive the rotation of the token keys: a shopper's code stays
                # valid for as long as their reservation.
                raise ValueError(
                    "ROPOS_ENV=prod with ROPOS_JWT_KEYS needs ROPOS_QR_SECRET (or ROPOS_JWT_SECRET "
                    "to derive it from) so that pickup QR codes survive a key rotation"
                )
        return self

    @cached_property
    def jwt_verification_keys(self) -> dict[str, str]:
        """Every key a token may be signed with, by kid."""
        if self.jwt_keys:
            return {kid: key.get_secret_value() for kid, key in self.jwt_keys.items()}
        secret = self.jwt_secret.get_secret_value() if self.jwt_secret else DEV_JWT_SECRET
        return {DEFAULT_KID: secret}

    @cached_property
    def signing_kid(self) -> str:
        """The kid new tokens are signed with."""
        if self.jwt_signing_kid is not None:
            return self.jwt_signing_kid
        return next(iter(self.jwt_verification_keys))

    @property
    def jwt_key(self) -> str:
        """The key new tokens are signed with."""
        return self.jwt_verification_keys[self.signing_kid]

    @property
    def qr_key(self) -> bytes:
        # Derived from ROPOS_JWT_SECRET, never from ROPOS_JWT_KEYS: rotating the token keys must
        # not turn the QR codes of reservations already made into forgeries.
        if self.qr_secret is not None:
            return self.qr_secret.get_secret_value().encode()
        seed = self.jwt_secret.get_secret_value() if self.jwt_secret else DEV_JWT_SECRET
        return hmac.new(seed.encode(), b"ropos pickup qr codes", hashlib.sha256).digest()

    @property
    def graphiql_enabled(self) -> bool:
        return self.env == "dev" if self.graphiql is None else self.graphiql

    @property
    def introspection_enabled(self) -> bool:
        return self.env == "dev" if self.introspection is None else self.introspection


def _weak(secret: str) -> bool:
    return len(secret) < MIN_SECRET_LENGTH or secret == DEV_JWT_SECRET
