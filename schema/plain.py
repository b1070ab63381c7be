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
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

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
