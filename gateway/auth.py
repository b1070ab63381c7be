"""JWT bearer tokens: issuing them (`ropos token`) and turning a verified one into an Actor.

A token is HS256 (nothing else: not `none`, not another HMAC, not a public-key algorithm whose
"public key" an attacker would fill with our secret), names the key it was signed with in its
header's `kid` (several keys may be valid at once, so that a key can be rotated without signing
everybody out), and carries `sub`, `role`, `iss`, `aud` and `exp`, all required."""

from __future__ import annotations

import functools
from datetime import datetime, timedelta

import jwt

from domain.access import Actor, Role
from domain.errors import BadInput, DomainError, Unauthenticated
from gateway.settings import DEFAULT_KID, Settings

ALGORITHM = "HS256"
# Clocks of the issuer and of this service may differ a little.
LEEWAY_SECONDS = 30
REQUIRED_CLAIMS = ["sub", "role", "iss", "aud", "exp"]


def issue_token(
    settings: Settings,
    *,
    role: Role,
    subject: str,
    now: datetime,
    store_id: str | None = None,
    channel: str | None = None,
    ttl_seconds: int | None = None,
    kid: str | None = None,
) -> str:
    """A token signed with the signing key (ROPOS_JWT_SIGNING_KID), or with the key `kid`."""
    Actor(role=role, subject=subject, store_id=store_id, channel=channel)  # refuses what can't work
    kid = kid or settings.signing_kid
    keys = settings.jwt_verification_keys
    if kid not in keys:
        raise BadInput(f"No JWT key {kid!r}; the keys are: {', '.join(sorted(keys))}.", field="kid")
    claims: dict[str, object] = {
        "sub": subject,
        "role": role.value,
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "iat": int(now.timestamp()),
        "exp": int(
            (now + timedelta(seconds=ttl_seconds or settings.token_ttl_seconds)).timestamp()
        ),
    }
    if store_id:
        claims["store"] = store_id
    if channel:
        claims["channel"] = channel
    return jwt.encode(claims, keys[kid], algorithm=ALGORITHM, headers={"kid": kid})


def actor_from_token(settings: Settings, token: str, now: datetime) -> Actor:
    kid = _key_id(token)
    key = settings.jwt_verification_keys.get(kid)
    if key is None:
        raise Unauthenticated(
            f"Your token was signed with a key this service does not hold (kid {kid!r}); "
            "get a new one."
        )
    actor, expires = _verified(token, key, settings.jwt_issuer, settings.jwt_audience)
    if now.timestamp() >= expires + LEEWAY_SECONDS:
        raise Unauthenticated("Your token has expired; get a new one.")
    return actor


@functools.lru_cache(maxsize=4096)
def _key_id(token: str) -> str:
    """The kid of the token's header, once its algorithm is known to be the pinned one. A token
    without a kid was issued before kids existed: it names the default key."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError as error:
        raise Unauthenticated(f"Your token is not valid ({error}).") from None
    if header.get("alg") != ALGORITHM:
        raise Unauthenticated(
            f"Your token is signed with {str(header.get('alg'))[:20]!r}; only {ALGORITHM} is "
            "accepted."
        )
    kid = header.get("kid", DEFAULT_KID)
    if not isinstance(kid, str):
        raise Unauthenticated("Your token's kid is not a key name.")
    return kid


# Apps send the same token with every request: its signature is checked once. The cache key is
# everything the answer depends on: the token, the key its kid named (a kid whose secret changes
# or goes away misses, or is refused before this), the issuer and the audience. Expiry is not
# cached: it is judged on each request by the service's clock (the one source of time).
@functools.lru_cache(maxsize=4096)
def _verified(token: str, key: str, issuer: str, audience: str) -> tuple[Actor, float]:
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            issuer=issuer,
            audience=audience,
            options={
                "require": REQUIRED_CLAIMS,
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
