"""JWT bearer tokens: issuing them (`ropos token`) and turning a verified one into an Actor."""

from __future__ import annotations

import functools
from datetime import datetime, timedelta

import jwt

from domain.access import Actor, Role
from domain.errors import BadInput, DomainError, Unauthenticated
from gateway.settings import Settings

ALGORITHM = "HS256"
# Clocks of the issuer and of this service may differ a little.
LEEWAY_SECONDS = 30


def issue_token(
    settings: Settings,
    *,
    role: Role,
    subject: str,
    now: datetime,
    store_id: str | None = None,
    channel: str | None = None,
    ttl_seconds: int | None = None,
) -> str:
    Actor(role=role, subject=subject, store_id=store_id, channel=channel)  # refuses what can't work
    claims: dict[str, object] = {
        "sub": subject,
        "role": role.value,
        "iss": settings.jwt_issuer,
        "iat": int(now.timestamp()),
        "exp": int(
            (now + timedelta(seconds=ttl_seconds or settings.token_ttl_seconds)).timestamp()
        ),
    }
    if store_id:
        claims["store"] = store_id
    if channel:
        claims["channel"] = channel
    return jwt.encode(claims, settings.jwt_key, algorithm=ALGORITHM)


def actor_from_token(settings: Settings, token: str, now: datetime) -> Actor:
    actor, expires = _verified(token, settings.jwt_key, settings.jwt_issuer)
    if now.timestamp() >= expires + LEEWAY_SECONDS:
        raise Unauthenticated("Your token has expired; get a new one.")
    return actor


# Apps send the same token with every request: its signature is checked once. Expiry is not
# cached: it is judged on each request by the service's clock (the one source of time).
@functools.lru_cache(maxsize=4096)
def _verified(token: str, key: str, issuer: str) -> tuple[Actor, float]:
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            issuer=issuer,
            options={
                "require": ["sub", "role", "exp"],
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
            },
        )
    except jwt.InvalidTokenError as error:
        raise Unauthenticated(f"Your token is not valid ({error}).") from None
    if not isinstance(claims["exp"], int | float):
        raise Unauthenticated("Your token's exp claim is not a time.")
    try:
        role = Role(claims["role"])
    except ValueError:
        raise Unauthenticated(f"Your token names an unknown role {claims['role']!r}.") from None
    try:
        actor = Actor(
            role=role,
            subject=str(claims["sub"]),
            store_id=claims.get("store"),
            channel=claims.get("channel"),
        )
    except BadInput as error:
        raise Unauthenticated(f"Your token is incomplete: {error.message}") from None
    return actor, float(claims["exp"])


def actor_from_header(
    settings: Settings, header: str | None, now: datetime
) -> tuple[Actor | None, str | None]:
    """The caller behind an Authorization header: (actor, None), (None, why not), or (None, None)
    when no header was sent."""
    if not header:
        return None, None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None, "Send the token as 'Authorization: Bearer <token>'."
    try:
        return actor_from_token(settings, token.strip(), now), None
    except DomainError as error:
        return None, error.message
