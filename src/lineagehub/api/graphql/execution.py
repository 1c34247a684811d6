"""Resolver-free completion of plain data: the executor's fast path.

graphql-core completes every field of an answer through the same machinery: a resolve
info, a path, the middleware chain, the resolver, then ``complete_value``. That costs
7-12 µs a field, which is most of a lineage answer's time (a 200-node subgraph has about
2,000 fields), although nearly all of those fields only read an attribute of a plain
object that is already in memory.

``Executor.complete_object_value`` first compiles the selection made on an object type
into a *plan*, once per selection (cached like graphql-core's own ``collect_subfields``,
whose grouping it reuses, so fragments, aliases, merging and ``@skip``/``@include``
behave exactly as in graphql-core). A plan exists only when every selected field, all the
way down, is a *plain* field: a Strawberry field with no resolver, arguments,
permissions or field extensions, whose value is its attribute. A plan then builds the
answer directly: attributes are read, leaves coerced by the schema's own scalar and enum
types (``coerce_output_value``, as graphql-core does), objects and interface values
recursed into (the runtime type found as Strawberry finds it).

Anything the plan does not reproduce exactly makes it give up, and the value is completed
by graphql-core as before: a field with a resolver anywhere below (no plan at all), a
``@defer``, a null in a non-null position, a value a scalar refuses, an object whose
type is not the expected one, any exception. Since plain fields only read attributes,
completing again from the start has no side effects, and graphql-core then reports any
error with its usual path and message. So the answer is always identical to the normal
executor's (``tests/api/test_fast_path.py`` checks that on every ``queries/`` document and
on random selections); only the time differs.

Field middleware is skipped on the fast path: the schema's only ``resolve`` hook,
``Authorization``, acts on root fields alone, and a plan never completes a root field.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator
from operator import attrgetter
from threading import Lock
from typing import Any

from graphql import (
    GraphQLAbstractType,
    GraphQLID,
    GraphQLInt,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLResolveInfo,
    GraphQLString,
    Undefined,
    VariableNode,
    Visitor,
    is_abstract_type,
    is_leaf_type,
    is_list_type,
    is_non_null_type,
    is_object_type,
    visit,
)
from graphql.execution.collect_fields import FieldDetailsList
from graphql.pyutils import Path
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema_converter import CustomGraphQLEnumType
from strawberry.types.cast import get_strawberry_type_cast

_DEFINITION = "strawberry-definition"

Plan = Callable[[Any], dict[str, Any]]
Complete = Callable[[Any], Any]
# A field of a plan: response key, how to get its value from the source (None for a
# constant), and how to complete the value (or the constant).
Slot = tuple[str, Complete | None, Any]


def filler(slots: list[Slot]) -> Plan:
    """A function completing an object: each slot's value got from the source, then
    completed, in slot order. It is generated as one dict display per plan (a loop over
    the slots costs about a third more); the generated text holds only slot numbers,
    never a key, so no response key or alias is ever part of code."""
    namespace: dict[str, Any] = {}
    items = []
    for i, (key, get, complete) in enumerate(slots):
        namespace[f"k{i}"], namespace[f"c{i}"] = key, complete
        if get is None:
            items.append(f"k{i}: c{i}")
        else:
            namespace[f"g{i}"] = get
            items.append(f"k{i}: c{i}(g{i}(source))")
    exec(f"def filled(source):\n    return {{{', '.join(items)}}}\n", namespace)  # noqa: S102
    filled: Plan = namespace["filled"]
    return filled


class GiveUp(Exception):
    """The plan cannot reproduce graphql-core's answer for this value."""


class Prepared:
    """A resolver's answer that knows how to complete itself faster than its objects
    would (e.g. a lineage answer straight from the properties read). ``render`` gives
    exactly what graphql-core would give for ``fallback()``, or raises ``GiveUp``; the
    executor then completes ``fallback()`` as usual. Only ``Executor`` knows this type:
    resolvers return one only when the fast path is on."""

    def render(self, executor: Executor, return_type: Any, fields: FieldDetailsList) -> Any:
        raise GiveUp

    def fallback(self) -> Any:
        raise NotImplementedError


def plain_attribute(parent: GraphQLObjectType, name: str, field_nodes: Any) -> str | None:
    """The attribute a field of ``parent`` reads when it is plain, else None."""
    if field_nodes[0].node.arguments:
        return None
    return plain_field(parent, name)


def plain_field(parent: GraphQLObjectType, name: str) -> str | None:
    """The attribute field ``name`` of ``parent`` reads when it is plain (a Strawberry
    field with no resolver, arguments, permissions or extensions), else None."""
    field_def = parent.fields.get(name)
    if field_def is None or field_def.args:
        return None
    strawberry_field = (field_def.extensions or {}).get(_DEFINITION)
    if strawberry_field is None or not getattr(field_def.resolve, "_is_default", False):
        return None
    if not strawberry_field.is_basic_field:
        return None
    name_: str = strawberry_field.python_name
    return name_


_MIN_INT, _MAX_INT = -(2**31), 2**31 - 1


def _leaf_completer(leaf: Any, *, non_null: bool) -> Complete:
    """Completes a value of scalar or enum ``leaf`` as graphql-core does (its own
    coercion), with the common cases answered without a call: a str as a String or ID,
    an int in range as an Int, a member of a Strawberry enum (a table of its names)."""
    coerce = leaf.coerce_output_value

    def complete_leaf(value: Any) -> Any:
        if value is None:
            if non_null:
                raise GiveUp
            return None
        coerced = coerce(value)
        if coerced is None or coerced is Undefined:
            raise GiveUp
        return coerced

    if leaf is GraphQLString or leaf is GraphQLID:

        def complete_text(value: Any) -> Any:
            return value if type(value) is str else complete_leaf(value)

        return complete_text
    if leaf is GraphQLInt:

        def complete_int(value: Any) -> Any:
            if type(value) is int and _MIN_INT <= value <= _MAX_INT:
                return value
            return complete_leaf(value)

        return complete_int
    if isinstance(leaf, CustomGraphQLEnumType):
        members: Any = leaf.wrapped_cls
        names = {member: coerce(member) for member in members}

        def complete_enum(value: Any) -> Any:
            return names[value] if type(value) is members else complete_leaf(value)

        return complete_enum
    return complete_leaf


class _Shared:
    """Plans kept across requests. Clients send the same documents again (the document
    cache hands back the very same parsed document for the same text), and a plan
    depends only on the schema, the field nodes it was compiled for, the document's
    fragments and the values of the variables its ``@skip``/``@include``/``@defer``
    directives read. So a plan is kept under (operation, those values, plan name, field
    nodes); each entry holds its operation, which keeps the nodes alive and their ids
    unique. Fields with fragment variables are never shared. A bounded LRU."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._plans: OrderedDict[tuple[Any, ...], tuple[Any, Any]] = OrderedDict()
        self._variables: OrderedDict[int, tuple[Any, tuple[str, ...]]] = OrderedDict()
        self._lock = Lock()  # the test server runs in a thread of the test process

    def scope(self, operation: Any, fragments: Any, variables: dict[str, Any]) -> Any:
        """What a plan of this request depends on beyond its field nodes (None: unsharable:
        fragments with arguments, an experimental graphql-core feature, make a request's
        plans depend on more than this key says, so none of them is shared)."""
        if any(getattr(f, "variable_signatures", None) for f in (fragments or {}).values()):
            return None
        with self._lock:
            known = self._variables.get(id(operation))
        if known is None or known[0] is not operation:
            known = (operation, _directive_variables(operation, fragments))
            with self._lock:
                self._variables[id(operation)] = known
                while len(self._variables) > self.size:
                    self._variables.popitem(last=False)
        try:
            values = tuple((name, variables.get(name)) for name in known[1])
            hash(values)
        except TypeError:
            return None
        return (id(operation), values)

    def compiled(
        self, operation: Any, scope: Any, name: str, fields: FieldDetailsList, compile: Any
    ) -> Any:
        if scope is None or any(f.fragment_variable_values is not None for f in fields):
            return compile()
        return self.kept(operation, (scope, name, tuple(id(f.node) for f in fields)), compile)

    def memo(self, operation: Any, scope: Any, name: Any, nodes: Any, compute: Any) -> Any:
        """``compute()`` for what depends only on the selection made with these field
        ``nodes`` (their ids) under ``scope``: kept as plans are."""
        if scope is None:
            return compute()
        return self.kept(operation, (scope, name, tuple(id(node) for node in nodes)), compute)

    def kept(self, operation: Any, key: tuple[Any, ...], compile: Any) -> Any:
        with self._lock:
            found = self._plans.get(key)
            if found is not None:
                self._plans.move_to_end(key)
                return found[1]
        # The operation rides along: alive with the plan, its id can't name another.
        plan = compile()
        with self._lock:
            self._plans[key] = (operation, plan)
            while len(self._plans) > self.size:
                self._plans.popitem(last=False)
        return plan


def _directive_variables(operation: Any, fragments: Any) -> tuple[str, ...]:
    """Names of the variables any directive of the operation or its fragments reads."""
    names: set[str] = set()

    class Directives(Visitor):
        def enter_directive(self, node: Any, *_: Any) -> None:
            for argument in node.arguments or ():
                for variable in _variables_in(argument.value):
                    names.add(variable)

    visit(operation, Directives())
    for fragment in (fragments or {}).values():
        visit(getattr(fragment, "definition", fragment), Directives())
    return tuple(sorted(names))


def _variables_in(value: Any) -> Iterator[str]:
    if isinstance(value, VariableNode):
        yield value.name.value
    for item in getattr(value, "values", None) or ():
        yield from _variables_in(item)
    for field in getattr(value, "fields", None) or ():
        yield from _variables_in(field.value)


_SHARED = _Shared(size=2048)


class Executor(StrawberryGraphQLCoreExecutionContext):
    """graphql-core's executor, completing plain subtrees without per-field resolution."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # (type name, id of the field details list) -> (the list, kept alive; plan or None)
        self._plans: dict[tuple[str, int], tuple[FieldDetailsList, Plan | None]] = {}
        self._scope = _SHARED.scope(self.operation, self.fragments, self.variable_values.coerced)
        if hasattr(self.context_value, "prepared_ok"):
            self.context_value.prepared_ok = True
            # For ``Context.release`` to undo this executor's reference cycles once the
            # request is answered (the warm lane does; the view leaves them to the collector).
            self.context_value.executor = self

    def complete_value(
        self,
        return_type: GraphQLOutputType,
        field_details_list: FieldDetailsList,
        info: GraphQLResolveInfo[Any],
        path: Path,
        result: Any,
        position_context: Any,
    ) -> Any:
        if isinstance(result, Prepared):
            try:
                return result.render(self, return_type, field_details_list)
            except Exception:
                result = result.fallback()
        return super().complete_value(
            return_type, field_details_list, info, path, result, position_context
        )

    def complete_object_value(
        self,
        return_type: GraphQLObjectType,
        field_details_list: FieldDetailsList,
        info: GraphQLResolveInfo[Any],
        path: Path,
        result: Any,
        position_context: Any,
    ) -> Any:
        plan = self.plan(return_type, field_details_list)
        if plan is not None:
            try:
                return plan(result)
            except Exception:  # noqa: S110 - graphql-core completes it and reports
                pass
        return super().complete_object_value(
            return_type, field_details_list, info, path, result, position_context
        )

    # --- compiling plans -----------------------------------------------------------------

    def memo(self, name: Any, nodes: Any, compute: Callable[[], Any]) -> Any:
        """``compute()``, for what depends only on the selection made with these field
        ``nodes`` (what is below them, through fragments and ``@skip``/``@include``):
        once per document and directive variables, as plans are (``_Shared.memo``)."""
        return _SHARED.memo(self.operation, self._scope, name, nodes, compute)

    def compiled(self, key: tuple[str, int], fields: FieldDetailsList, compile: Any) -> Any:
        """``compile()``, once per ``key`` (a name and the id of ``fields``) per request,
        and once per document and directive variables across requests (``_Shared``)."""
        cached = self._plans.get(key)
        if cached is None:
            shared = _SHARED.compiled(self.operation, self._scope, key[0], fields, compile)
            cached = (fields, shared)
            self._plans[key] = cached
        return cached[1]

    def grouped(
        self, object_type: GraphQLObjectType, field_details_list: FieldDetailsList
    ) -> dict[str, FieldDetailsList] | None:
        """The fields selected on ``object_type`` by response key, as graphql-core groups
        them; None when any is deferred (the fast path leaves those to graphql-core)."""
        grouped, new_defers, forbidden = self.collect_subfields(object_type, field_details_list)
        if new_defers or forbidden:
            return None
        for fields in grouped.values():
            if any(f.defer_usage is not None for f in fields):
                return None
        return grouped

    def plan(
        self, object_type: GraphQLObjectType, field_details_list: FieldDetailsList
    ) -> Plan | None:
        """How to complete a plain object of ``object_type`` (None: it isn't plain)."""
        plan: Plan | None = self.compiled(
            (object_type.name, id(field_details_list)),
            field_details_list,
            lambda: self._compile(object_type, field_details_list),
        )
        return plan

    def slots(
        self,
        object_type: GraphQLObjectType,
        field_details_list: FieldDetailsList,
        field: Callable[[str, FieldDetailsList], tuple[Complete, Complete] | None],
    ) -> list[Slot] | None:
        """(response key, getter, completer) for each field selected on ``object_type``,
        ``field(name, group)`` giving the last two (None: the selection isn't plain).
        ``__typename`` is a constant (getter None)."""
        grouped = self.grouped(object_type, field_details_list)
        if grouped is None:
            return None
        slots: list[Slot] = []
        for key, group in grouped.items():
            name = group[0].node.name.value
            if name == "__typename":
                slots.append((key, None, object_type.name))
                continue
            found = field(name, group)
            if found is None:
                return None
            slots.append((key, *found))
        return slots

    def _compile(
        self, object_type: GraphQLObjectType, field_details_list: FieldDetailsList
    ) -> Plan | None:
        definition = (object_type.extensions or {}).get(_DEFINITION)
        if definition is None:
            return None
        origin = definition.origin

        def field(name: str, group: FieldDetailsList) -> tuple[Complete, Complete] | None:
            attribute = plain_attribute(object_type, name, group)
            complete = self.completer(object_type.fields[name].type, group) if attribute else None
            if attribute is None or complete is None:
                return None
            return attrgetter(attribute), complete

        slots = self.slots(object_type, field_details_list, field)
        if slots is None:
            return None
        filled = filler(slots)

        def plan(source: Any) -> dict[str, Any]:
            # The exact class graphql-core's is_type_of / resolve_type would accept.
            if type(source) is not origin or get_strawberry_type_cast(source) is not None:
                raise GiveUp
            return filled(source)

        return plan

    def completer(self, field_type: GraphQLOutputType, fields: FieldDetailsList) -> Complete | None:
        """A function completing a value of ``field_type`` as graphql-core would (raising
        ``GiveUp`` where graphql-core would report an error), or None if it can't."""
        if is_non_null_type(field_type):
            assert isinstance(field_type, GraphQLNonNull)
            if is_leaf_type(field_type.of_type):
                return _leaf_completer(field_type.of_type, non_null=True)
            inner = self._nullable_completer(field_type.of_type, fields)
            if inner is None:
                return None

            def complete_non_null(value: Any) -> Any:
                if value is None:
                    raise GiveUp
                return inner(value)

            return complete_non_null
        nullable = self._nullable_completer(field_type, fields)
        if nullable is None:
            return None

        def complete_nullable(value: Any) -> Any:
            return None if value is None else nullable(value)

        return complete_nullable

    def _nullable_completer(
        self, field_type: GraphQLOutputType, fields: FieldDetailsList
    ) -> Complete | None:
        if is_list_type(field_type):
            assert isinstance(field_type, GraphQLList)
            item = self.completer(field_type.of_type, fields)
            if item is None:
                return None

            def complete_list(value: Any) -> list[Any]:
                if not isinstance(value, list | tuple):
                    raise GiveUp
                return [item(v) for v in value]

            return complete_list
        if is_leaf_type(field_type):
            return _leaf_completer(field_type, non_null=False)
        if is_object_type(field_type):
            assert isinstance(field_type, GraphQLObjectType)
            plan: Plan | None = self.plan(field_type, fields)
            return plan
        if is_abstract_type(field_type):
            return self._abstract_completer(field_type, fields)
        return None

    def _abstract_completer(
        self, abstract: GraphQLAbstractType, fields: FieldDetailsList
    ) -> Complete | None:
        """Values of an interface or union: a plan for every possible type, chosen by the
        value's Strawberry type (what Strawberry's ``resolve_type`` answers)."""
        plans: dict[type, Plan] = {}
        for possible in self.schema.get_possible_types(abstract):
            plan = self.plan(possible, fields)
            definition = (possible.extensions or {}).get(_DEFINITION)
            if plan is None or definition is None or definition.is_graphql_generic:
                return None
            plans[definition.origin] = plan

        def complete_abstract(value: Any) -> Any:
            plan = plans.get(type(value))
            if plan is None or get_strawberry_type_cast(value) is not None:
                raise GiveUp
            return plan(value)

        return complete_abstract
