"""Channel accounts: ops create and change them; secrets and API tokens are write-only.

Rotating a secret keeps the previous one verifying for a grace period ops set (a day unless
they say otherwise), so senders can switch without a delivery refused."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from domain.clock import Clock
from domain.errors import BadInput, NotFound
from domain.intake import (
    DEFAULT_MAX_BACKLOG,
    MAX_ACCOUNT_CODE,
    MAX_GRACE_SECONDS,
    ChannelAccount,
    RuleAction,
    SalesChannel,
)
from domain.intake_auth import secret_problem
from domain.intake_rules import profile
from services.intake.edge import AccountCache
from services.unit_of_work import UnitOfWorkFactory

log = logging.getLogger(__name__)

DEFAULT_GRACE_SECONDS = 86_400
MAX_MAPPINGS = 10_000
_ACCOUNT_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True, slots=True)
class AccountChange:
    """What ops send. None means "keep what the account has" (or the default for a new one)."""

    channel: SalesChannel
    account: str
    secret: str | None = None
    secret_grace_seconds: int | None = None
    default_store_id: str | None = None
    locations: Mapping[str, str] | None = None
    products: Mapping[str, str] | None = None
    rules: Mapping[str, RuleAction] | None = None
    api_base_url: str | None = None
    api_token: str | None = None
    assume_pickup: bool | None = None
    notification_url: str | None = None
    max_backlog: int | None = None
    weight: int | None = None
    enabled: bool | None = None


def check_code(account: str) -> str:
    code = account.strip()
    if not (0 < len(code) <= MAX_ACCOUNT_CODE and _ACCOUNT_CODE.fullmatch(code)):
        raise BadInput(
            f"account must be 1 to {MAX_ACCOUNT_CODE} letters, digits, '.', '_' or '-', "
            "starting with a letter or digit.",
            field="account",
        )
    return code


def _check_url(value: str, field: str) -> str:
    url = value.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.netloc or len(url) > 500:
        raise BadInput(f"{field} must be an http(s) URL of at most 500 characters.", field=field)
    return url


def _check_map(values: Mapping[str, str], field: str) -> dict[str, str]:
    if len(values) > MAX_MAPPINGS:
        raise BadInput(f"{field} holds at most {MAX_MAPPINGS} entries.", field=field)
    cleaned: dict[str, str] = {}
    for key, value in values.items():
        k, v = key.strip(), value.strip()
        if not k or not v or len(k) > 128 or len(v) > 64:
            raise BadInput(f"{field} entries need a key (<= 128) and a value (<= 64).", field=field)
        if k in cleaned and cleaned[k] != v:
            raise BadInput(f"{field} maps {k!r} twice, to different values.", field=field)
        cleaned[k] = v
    return cleaned


def _with_secret(current: ChannelAccount, change: AccountChange, clock: Clock) -> ChannelAccount:
    if change.secret is None or change.secret == current.secret:
        return current
    problem = secret_problem(change.secret)
    if problem is not None:
        raise BadInput(f"secret: {problem}", field="secret")
    grace = (
        DEFAULT_GRACE_SECONDS
        if change.secret_grace_seconds is None
        else (change.secret_grace_seconds)
    )
    if not 0 <= grace <= MAX_GRACE_SECONDS:
        raise BadInput(
            f"secretGraceSeconds must be 0 to {MAX_GRACE_SECONDS}.", field="secretGraceSeconds"
        )
    if current.secret is None or grace == 0:
        return replace(
            current, secret=change.secret, previous_secret=None, previous_secret_until=None
        )
    return replace(
        current,
        secret=change.secret,
        previous_secret=current.secret,
        previous_secret_until=clock.now() + timedelta(seconds=grace),
    )


def _merged(current: ChannelAccount, change: AccountChange) -> ChannelAccount:
    """The account with every field `change` names, each checked."""
    merged = replace(current, **_checked_maps(current, change), **_checked_links(change))
    if change.max_backlog is not None:
        if not 1 <= change.max_backlog <= 1_000_000:
            raise BadInput("maxBacklog must be 1 to 1,000,000.", field="maxBacklog")
        merged = replace(merged, max_backlog=change.max_backlog)
    if change.weight is not None:
        if not 1 <= change.weight <= 100:
            raise BadInput("weight must be 1 to 100.", field="weight")
        merged = replace(merged, weight=change.weight)
    if change.default_store_id is not None:
        merged = replace(merged, default_store_id=change.default_store_id.strip() or None)
    if change.assume_pickup is not None:
        merged = replace(merged, assume_pickup=change.assume_pickup)
    if change.enabled is not None:
        merged = replace(merged, enabled=change.enabled)
    return merged


def _checked_maps(current: ChannelAccount, change: AccountChange) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if change.locations is not None:
        fields["locations"] = _check_map(change.locations, "locations")
    if change.products is not None:
        fields["products"] = _check_map(change.products, "products")
    if change.rules is not None:
        profile(current.channel, change.rules)  # raises on an unknown rule or a wrong action
        fields["rules"] = dict(change.rules)
    return fields


def _checked_links(change: AccountChange) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if change.api_base_url is not None:
        fields["api_base_url"] = _check_url(change.api_base_url, "apiBaseUrl")
    if change.notification_url is not None:
        fields["notification_url"] = _check_url(change.notification_url, "notificationUrl")
    if change.api_token is not None:
        if not 0 < len(change.api_token) <= 2000 or not change.api_token.isprintable():
            raise BadInput("apiToken must be 1 to 2000 printable characters.", field="apiToken")
        fields["api_token"] = change.api_token
    return fields


async def upsert_account(
    change: AccountChange,
    *,
    uow: UnitOfWorkFactory,
    clock: Clock,
    cache: AccountCache | None = None,
) -> ChannelAccount:
    """Create the account or change the fields `change` names; the stores it names must
    exist. Bad input changes nothing."""
    code = check_code(change.account)
    async with uow() as tx:
        current = await tx.channel_accounts.get(change.channel, code) or ChannelAccount(
            channel=change.channel, account=code, max_backlog=DEFAULT_MAX_BACKLOG
        )
        updated = _with_secret(_merged(current, change), change, clock)
        if (
            updated.channel is SalesChannel.SQUARE
            and updated.secret
            and not (updated.notification_url)
        ):
            raise BadInput(
                "A Square account needs its notificationUrl: Square signs it with the body.",
                field="notificationUrl",
            )
        wanted = set(updated.locations.values())
        if updated.default_store_id:
            wanted.add(updated.default_store_id)
        missing = sorted(wanted - await tx.catalog.existing_stores(wanted)) if wanted else []
        if missing:
            raise NotFound(f"Unknown store: {', '.join(missing)}", storeIds=missing)
        saved = await tx.channel_accounts.upsert(updated, clock.now())
        await tx.commit()
    if cache is not None:
        cache.clear()  # this process's edge sees the change at once
    log.info(
        "channel account saved",
        extra={
            "channel": saved.channel.value,
            "account": saved.account,
            "enabled": saved.enabled,
            "rotated": change.secret is not None,
        },
    )
    return saved


async def list_accounts(
    channel: SalesChannel | None, *, uow: UnitOfWorkFactory
) -> list[ChannelAccount]:
    async with uow() as tx:
        return await tx.channel_accounts.list(channel)
