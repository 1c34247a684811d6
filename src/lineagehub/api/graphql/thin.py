"""Resolvers whose arguments are plain scalars, called without Strawberry's conversion.

For each field with a resolver, Strawberry's wrapper converts every argument value on
every call (walking the argument's type, importing its relay helpers, camel-casing its
name) and runs the field's extension machinery. For a ``String``, ``ID``, ``Int``,
``Float`` or ``Boolean`` argument the conversion returns the value graphql-core already
coerced, unchanged; a field with no extensions has nothing else to run. Under 100
concurrent clients that wrapper was ~6% of a worker's CPU on point lookups.

:func:`install` gives such fields a resolver that does only what remains: name the
arguments as the Python function does, add ``self`` (the parent object) and ``info`` where
the function takes them, and call it. Fields with any other argument type (enums, input
objects, lists, custom scalars), with extensions, with a root or parent parameter, or
whose field class changes how results are got, keep Strawberry's wrapper. It runs with
the fast path only (``LINEAGEHUB_FAST_PATH``), so the tests that compare a server with it
and one without (``tests/api/test_fast_path.py``) compare these resolvers too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import strawberry
from graphql import GraphQLObjectType, GraphQLResolveInfo, GraphQLSchema
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.base import StrawberryOptional
from strawberry.types.field import StrawberryField

# Python types whose Strawberry argument conversion is the identity.
_PLAIN: tuple[object, ...] = (str, int, float, bool, strawberry.ID)


def _plain(field: StrawberryField) -> bool:
    for argument in field.arguments:
        kind = argument.type
        if getattr(argument, "is_maybe", False):
            return False
        if isinstance(kind, StrawberryOptional):
            kind = kind.of_type
        if not any(kind is plain for plain in _PLAIN):
            return False
    return True


def thin_resolver(field: StrawberryField, config: StrawberryConfig) -> Callable[..., Any] | None:
    """The resolver for ``field`` without the wrapper, or None when it needs the wrapper."""
    resolver = field.base_resolver
    if resolver is None or field.extensions or not _plain(field):
        return None
    if type(field).get_result is not StrawberryField.get_result:
        return None
    if resolver.parent_parameter is not None or resolver.root_parameter is not None:
        return None
    call = cast("Callable[..., Any]", resolver.wrapped_func)
    takes_self = resolver.self_parameter is not None
    info_name = resolver.info_parameter.name if resolver.info_parameter is not None else None
    # As the wrapper names them: the GraphQL name the schema gives each argument.
    names = [
        (config.name_converter.from_argument(argument), argument.python_name)
        for argument in field.arguments
    ]
    info_class = config.info_class

    def resolve(source: Any, info: GraphQLResolveInfo[Any], **given: Any) -> Any:
        kwargs = {python: given[graphql] for graphql, python in names if graphql in given}
        if info_name is not None:
            kwargs[info_name] = info_class(_raw_info=info, _field=field)
        if takes_self:
            return call(source, **kwargs)
        return call(**kwargs)

    return resolve


def install(schema: GraphQLSchema, config: StrawberryConfig) -> None:
    """Give every eligible field of ``schema``'s object types its thin resolver."""
    for type_name, kind in schema.type_map.items():
        if not isinstance(kind, GraphQLObjectType) or type_name.startswith("__"):
            continue
        if kind is schema.subscription_type:
            continue
        for graphql_field in kind.fields.values():
            field = (graphql_field.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
            if not isinstance(field, StrawberryField):
                continue
            thin = thin_resolver(field, config)
            if thin is not None:
                graphql_field.resolve = thin
