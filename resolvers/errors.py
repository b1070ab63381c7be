"""Errors as clients see them: every error has `extensions.code` and a message a person can act
on; unexpected failures are logged with their traceback and reach the client only as INTERNAL."""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Iterator
from typing import Any

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from domain.errors import DomainError

log = logging.getLogger("ropos.errors")

# Messages of graphql-core that mean "the request itself is malformed".
BAD_REQUEST = "BAD_USER_INPUT"


def client_error(error: GraphQLError) -> GraphQLError:
    original = error.original_error
    if isinstance(original, DomainError):
        return _with(error, original.message, {"code": original.code, **original.details})
    if original is None or isinstance(original, GraphQLError):
        # Parse and validation errors, limits, wrong argument types: the request is at fault.
        extensions = dict(error.extensions or {})
        extensions.setdefault("code", BAD_REQUEST)
        return _with(error, error.message, extensions)
    reference = getattr(original, "ropos_reference", None) or uuid.uuid4().hex[:12]
    return _with(
        error,
        f"Something went wrong on our side; it has been logged (reference {reference}). "
        "Try again, and quote the reference if it keeps happening.",
        {"code": "INTERNAL", "reference": reference},
    )


def log_unexpected(errors: list[GraphQLError]) -> None:
    for error in errors:
        original = error.original_error
        if original is None or isinstance(original, DomainError | GraphQLError):
            continue
        reference = uuid.uuid4().hex[:12]
        with contextlib.suppress(AttributeError):
            original.ropos_reference = reference  # type: ignore[attr-defined]
        log.error(
            "unexpected error in %s",
            ".".join(str(p) for p in error.path or ()),
            exc_info=original,
            extra={"reference": reference},
        )


def _with(error: GraphQLError, message: str, extensions: dict[str, Any]) -> GraphQLError:
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=None,
        extensions=extensions,
    )


class ErrorCodes(SchemaExtension):
    """Rewrites the errors of every operation into the contract's shape."""

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if result is not None and result.errors:
            result.errors = [client_error(e) for e in result.errors]
