"""Every GraphQL operation the consoles send is valid against the exported contract
(schema/schema.graphql): a field renamed or dropped in the API fails here, before a browser."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from graphql import GraphQLSchema, build_schema, parse, validate

from gateway.consoles import STATIC_DIR

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ("shop.js", "reservation.js", "pos.js", "ops.js")
# A module-level `const NAME = `...`;` or "...";` of the consoles' scripts.
CONSTANT = re.compile(r'^const (\w+) = (?:`([^`]*)`|"([^"\n]*)");', re.MULTILINE)
OPERATION = re.compile(r"^\s*(query|mutation|subscription)\b")


def operations(script: str) -> dict[str, str]:
    """The script's GraphQL operations by constant name, `${OTHER}` pieces filled in."""
    text = (STATIC_DIR / script).read_text()
    constants = {m[1]: m[2] if m[2] is not None else m[3] for m in CONSTANT.finditer(text)}

    def expand(body: str) -> str:
        return re.sub(r"\$\{(\w+)\}", lambda m: expand(constants[m[1]]), body)

    return {name: expand(body) for name, body in constants.items() if OPERATION.match(body)}


@pytest.fixture(scope="module")
def schema() -> GraphQLSchema:
    return build_schema((ROOT / "schema" / "schema.graphql").read_text())


ALL = [(script, name) for script in SCRIPTS for name in operations(script)]


@pytest.mark.parametrize(("script", "name"), ALL, ids=[f"{s}:{n}" for s, n in ALL])
def test_the_operation_is_valid_against_the_contract(
    schema: GraphQLSchema, script: str, name: str
) -> None:
    errors = validate(schema, parse(operations(script)[name]))
    assert [error.message for error in errors] == []


def test_each_console_is_seen_to_use_the_api() -> None:
    """The extraction finds each script's operations (a change of style cannot empty it)."""
    found = {script: set(operations(script)) for script in SCRIPTS}
    assert {"AVAILABILITY", "RESERVE", "MINE"} <= found["shop.js"]
    assert {"RESERVATION", "UPDATES", "CHECK_IN", "CANCEL"} <= found["reservation.js"]
    assert {"QUEUE", "EVENTS", "SCAN", "READY", "SHORT", "COMPLETE"} <= found["pos.js"]
    assert {"KPIS", "HEALTH", "DEAD_WEBHOOKS", "REPLAY_WEBHOOK", "UPDATE_POLICY"} <= found["ops.js"]
