"""Completing plain sub-selections without graphql-core's per-field machinery.

graphql-core completes every field of every object through the same general path: a resolve-info
object, the resolver (for strawberry's attribute fields a wrapper around `getattr`), the
non-null, list, leaf, abstract and object checks, and a Path for error locations. That costs
about 12 us per field here, and an `availability` answer of 10 stores with their lines has ~140
fields: most of the request's CPU.

Most of our result types are frozen records whose fields are plain attributes. For an object
type whose selected fields are all like that (attributes with no resolver, no arguments, no
field extensions; leaves, lists and objects of the same kind below), the selection is turned
once per operation into a plan: a tuple of (response key, attribute, how to complete it), run
as a loop. The result is the same dict graphql-core would build.

Anything else takes graphql-core's path: resolvers, arguments, abstract types, types with
`is_type_of`, field middleware, deferred fragments. When a plain value does not fit its type
(None where non-null, a scalar that does not coerce, a list that is not a list) the plan gives
up on that object and graphql-core completes it from scratch, so errors, their paths and null
propagation are exactly graphql-core's own.

This leans on graphql-core internals (ExecutionContext.execute_collected_subfields and
collect_subfields, 3.3.2 is pinned) and on the name of strawberry's attribute resolver. At
start-up `execution_context` runs a probe query both ways; if a hook is missing or the answers
differ, it warns and the schema runs on graphql-core's own path. ROPOS_PLAIN_COMPLETION=false
turns it off outright.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable, Mapping
from typing import Any

import strawberry
from graphql import (
    GraphQLID,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLString,
    is_leaf_type,
)
from graphql.pyutils import Undefined
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

log = logging.getLogger(__name__)

# strawberry's resolver for a field that just reads an attribute (schema_converter.from_resolver)
_BASIC_RESOLVER_NAME = "_get_basic_result"
_DEFINITION = "strawberry-definition"
_TYPENAME = "__typename"

# How one field is completed: LEAF coerces a scalar or enum, OBJECT runs a nested plan, LIST
# completes every item by its own kind, TYPENAME is the type's name. A kind is (code, non_null,
# payload): the coercion, the plan, the items' kind, the name.
LEAF, OBJECT, LIST, TYPENAME = 0, 1, 2, 3

Kind = tuple[int, bool, Any]
Plan = tuple[tuple[str, str, Kind], ...]


class NotPlain(Exception):
    """The value does not fit the plan: let graphql-core complete it (and report the error)."""


def attribute_of(field: Any) -> str | None:
    """The attribute a GraphQL field reads, or None when it is more than an attribute."""
    resolve = field.resolve
    definition = field.extensions.get(_DEFINITION)
    if (
        resolve is None
        or getattr(resolve, "__name__", None) != _BASIC_RESOLVER_NAME
        or definition is None
        or not definition.is_basic_field
        or field.args
    ):
        return None
    name: str = definition.python_name
    return name


def kind_of(
    return_type: GraphQLOutputType, plan_of: Callable[[GraphQLObjectType], Plan | None]
) -> Kind | None:
    """How to complete a value of this type, or None when it cannot be done plainly.
    `plan_of` makes the plan of an object type for the field's own sub-selection."""
    non_null = isinstance(return_type, GraphQLNonNull)
    inner: Any = return_type.of_type if non_null else return_type  # type: ignore[union-attr]
    if isinstance(inner, GraphQLList):
        item = kind_of(inner.of_type, plan_of)
        return None if item is None else (LIST, non_null, item)
    if is_leaf_type(inner):
        if inner is GraphQLString or inner is GraphQLID:
            return (LEAF, non_null, None)  # a str is already its own output
        return (LEAF, non_null, inner.coerce_output_value)
    if isinstance(inner, GraphQLObjectType) and inner.is_type_of is None:
        plan = plan_of(inner)
        return None if plan is None else (OBJECT, non_null, plan)
    return None


def complete(kind: Kind, value: Any) -> Any:
    code, non_null, payload = kind
    if value is None or value is Undefined:
        if non_null:
            raise NotPlain
        return None
    if code == LEAF:
        if payload is None:
            if type(value) is not str:
                raise NotPlain
            return value
        try:
            coerced = payload(value)
        except Exception as error:
            raise NotPlain from error
        if coerced is None or coerced is Undefined:
            raise NotPlain
        return coerced
    if code == OBJECT:
        return run(payload, value)
    if type(value) is not list and type(value) is not tuple:
        raise NotPlain
    return [complete(payload, item) for item in value]


def run(plan: Plan, source: Any) -> dict[str, Any]:
    """The completed object, in the selection's order."""
    result: dict[str, Any] = {}
    for key, attribute, kind in plan:
        if kind[0] == TYPENAME:
            result[key] = kind[2]
            continue
        try:
            value = getattr(source, attribute)
        except AttributeError as error:
            raise NotPlain from error
        result[key] = complete(kind, value)
    return result


def make_plan(
    parent_type: GraphQLObjectType,
    grouped_field_set: Mapping[str, Any],
    sub_plan: Callable[[GraphQLObjectType, Any], Plan | None],
) -> Plan | None:
    """The plan for one object type's collected fields, or None when one of them is not plain.
    `sub_plan(type, field_details_list)` plans a field's own sub-selection."""
    steps: list[tuple[str, str, Kind]] = []
    for key, field_details_list in grouped_field_set.items():
        node = field_details_list[0].node
        if node.arguments or node.directives:
            return None
        name = node.name.value
        if name == _TYPENAME:
            steps.append((key, "", (TYPENAME, True, parent_type.name)))
            continue
        field = parent_type.fields.get(name)
        if field is None:
            return None
        attribute = attribute_of(field)
        if attribute is None:
            return None
        kind = kind_of(field.type, functools.partial(_sub_plan_of, sub_plan, field_details_list))
        if kind is None:
            return None
        steps.append((key, attribute, kind))
    return tuple(steps)


def _sub_plan_of(
    sub_plan: Callable[[GraphQLObjectType, Any], Plan | None],
    field_details_list: Any,
    object_type: GraphQLObjectType,
) -> Plan | None:
    return sub_plan(object_type, field_details_list)


# --- the execution contexts -----------------------------------------------------------------------


class RoposExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """strawberry's executor, with a fresh sub-field cache for every subscription event."""

    def build_per_event_executor(self, payload: Any) -> Any:
        executor = super().build_per_event_executor(payload)
        # graphql-core 3.3.2 copies the executor shallowly for each subscription event, so every
        # event shares the sub-field cache, keyed by lists made anew per event: a long-lived
        # subscription would grow it (and the collector's work) without end.
        if hasattr(executor, "_relevant_sub_fields"):
            executor._relevant_sub_fields = {}
        return executor


class PlainExecutionContext(RoposExecutionContext):
    """The executor that completes plain sub-selections by plan."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Plans per (type, collected field set) of this operation, the set kept alive beside its
        # plan so that its id is not reused.
        self._plans: dict[tuple[str, int], tuple[Any, Plan | None]] = {}

    def build_per_event_executor(self, payload: Any) -> Any:
        executor = super().build_per_event_executor(payload)
        executor._plans = {}
        return executor

    def execute_collected_subfields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Any,
        grouped_field_set: Any,
        new_defer_usages: Any,
        delivery_group_map: Any,
    ) -> Any:
        # Nothing deferred here or above: graphql-core would run execute_fields as it is.
        if delivery_group_map is None and not new_defer_usages:
            plan = self._plan(parent_type, grouped_field_set)
            if plan is not None:
                try:
                    return run(plan, source_value)
                except NotPlain:
                    pass  # graphql-core completes it again, with its errors and null rules
        return super().execute_collected_subfields(
            parent_type, source_value, path, grouped_field_set, new_defer_usages, delivery_group_map
        )

    def _plan(self, parent_type: GraphQLObjectType, grouped_field_set: Any) -> Plan | None:
        key = (parent_type.name, id(grouped_field_set))
        cached = self._plans.get(key)
        if cached is not None and cached[0] is grouped_field_set:
            return cached[1]
        plan = None
        manager = self.middleware_manager
        if manager is None or not manager.middlewares:
            plan = make_plan(parent_type, grouped_field_set, self._sub_plan)
        self._plans[key] = (grouped_field_set, plan)
        return plan

    def _sub_plan(self, object_type: GraphQLObjectType, field_details_list: Any) -> Plan | None:
        grouped_field_set, new_defer_usages, _ = self.collect_subfields(
            object_type, field_details_list
        )
        return None if new_defer_usages else self._plan(object_type, grouped_field_set)


# The graphql-core hook PlainExecutionContext overrides, with the parameters it is called with.
_HOOK = "execute_collected_subfields"
_HOOK_PARAMETERS = (
    "parent_type",
    "source_value",
    "path",
    "grouped_field_set",
    "new_defer_usages",
    "delivery_group_map",
)


def execution_context(*, enabled: bool = True) -> type[RoposExecutionContext]:
    """The executor for the schema: planning when enabled and this graphql-core and strawberry
    still give it what it needs; graphql-core's own path otherwise, with a warning."""
    if not enabled:
        return RoposExecutionContext
    problem = probe()
    if problem is not None:
        log.warning(
            "plain completion off: graphql-core's own path is used (slower, same answers)",
            extra={"reason": problem},
        )
        return RoposExecutionContext
    return PlainExecutionContext


@strawberry.type(name="ProbeLine")
class _ProbeLine:
    sku: str
    available: int


@strawberry.type(name="ProbeStore")
class _ProbeStore:
    id: strawberry.ID
    lines: list[_ProbeLine]


@strawberry.type(name="Query")
class _ProbeQuery:
    @strawberry.field
    def stores(self) -> list[_ProbeStore]:
        return [_ProbeStore(id=strawberry.ID("S1"), lines=[_ProbeLine(sku="A", available=2)])]


_PROBE_QUERY = "{ stores { id __typename lines { sku available } } }"


def probe() -> str | None:
    """Why plain completion cannot run here, or None when it can: the hooks it overrides and
    calls exist with the parameters it expects, strawberry's attribute fields are recognised,
    and a probe query answers the same both ways, by plan."""
    for name in (_HOOK, "collect_subfields", "build_per_event_executor"):
        if not callable(getattr(StrawberryGraphQLCoreExecutionContext, name, None)):
            return f"graphql-core's ExecutionContext has no {name}()"
    parameters = tuple(
        inspect.signature(getattr(StrawberryGraphQLCoreExecutionContext, _HOOK)).parameters
    )[1:]
    if parameters != _HOOK_PARAMETERS:
        return f"graphql-core's {_HOOK}() takes {parameters}, not {_HOOK_PARAMETERS}"
    planned: list[Plan | None] = []

    class Probe(PlainExecutionContext):
        def _plan(self, parent_type: GraphQLObjectType, grouped_field_set: Any) -> Plan | None:
            plan = super()._plan(parent_type, grouped_field_set)
            planned.append(plan)
            return plan

    by_core = strawberry.Schema(query=_ProbeQuery)
    line = by_core._schema.type_map["ProbeLine"]
    if attribute_of(line.fields["sku"]) != "sku":  # type: ignore[attr-defined]
        return "strawberry's attribute fields are no longer recognised"
    try:
        by_plan = strawberry.Schema(query=_ProbeQuery, execution_context_class=Probe)
        planned_answer = by_plan.execute_sync(_PROBE_QUERY)
    except Exception as error:  # any failure of the hooks means: do not use them
        return f"the probe query failed: {type(error).__name__}: {error}"
    core_answer = by_core.execute_sync(_PROBE_QUERY)
    if planned_answer.errors or planned_answer.data != core_answer.data:
        return "the probe query answered otherwise by plan than through graphql-core"
    if not any(plan is not None for plan in planned):
        return "no sub-selection of the probe query was planned"
    return None
