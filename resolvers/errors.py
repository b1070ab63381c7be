"""Errors as clients see them: every error has `extensions.code` and a message a person can act
on; unexpected failures are logged with their traceback and reach the client only as INTERNAL."""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

from graphql import ASTValidationRule, GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.types import StreamExecutionResult

from domain.errors import DomainError

log = logging.getLogger("ropos.errors")

# The code for requests that are malformed: parse and validation errors, limits, wrong types.
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


class OperationRules(SchemaExtension):
    """One extension for what every operation gets: fresh DataLoaders, the token limit for the
    parser, the depth and alias rules for validation, and errors rewritten into the contract's
    shape afterwards. (One extension instead of four: strawberry's per-extension overhead is paid
    on every request.)"""

    def __init__(
        self, max_tokens: int, validation_rules: Sequence[type[ASTValidationRule]]
    ) -> None:
        self.max_tokens = max_tokens
        self.validation_rules = tuple(validation_rules)

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context
        if hasattr(context.context, "fresh_loaders"):
            context.context.fresh_loaders()
        context.parse_options["max_tokens"] = self.max_tokens
        context.validation_rules = context.validation_rules + self.validation_rules
        yield
        result = context.result
        if result is not None and result.errors:
            result.errors = [client_error(e) for e in result.errors]

    def on_stream_result(self, result: StreamExecutionResult) -> Iterator[None]:
        # A subscription's results go to the client while the operation still runs.
        errors = getattr(result, "errors", None)
        if errors:
            result.errors = [client_error(e) for e in errors]  # type: ignore[union-attr]
        yield
