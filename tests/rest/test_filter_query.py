"""The ``filterQuery`` parser, and the LIKE/ILIKE predicates it compiles to on a real Neo4j."""

from __future__ import annotations

import random
import re
import time
from datetime import UTC, datetime
from functools import cache
from typing import Any

import neo4j
import pytest

from lineagehub.api.rest.filter_query import (
    MAX_DEPTH,
    MAX_LENGTH,
    RestField,
    parse_filter_query,
)
from lineagehub.graph.errors import ValidationFailed
from lineagehub.graph.listing import (
    Condition,
    Filter,
    Kind,
    ListSpec,
    Params,
    compile_filter,
    like_regex,
)


def _id(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError("an id is a number")
    return int(value)  # int("x") raises ValueError with its own message


def _epoch_ms(value: Any) -> datetime:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationFailed("give epoch milliseconds as a number", field="ignored")
    return datetime.fromtimestamp(value / 1000, UTC)


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


FIELDS = {
    "id": RestField("restId", Kind.NUMBER, _id),
    "name": RestField("name", Kind.STRING),
    "state": RestField("state", Kind.ENUM),
    "size": RestField("size", Kind.NUMBER),
    "externalId": RestField("externalId", Kind.ID),
    "createTimeSinceEpoch": RestField("createdAt", Kind.TIME, _epoch_ms),
    "lastUpdateTimeSinceEpoch": RestField("updatedAt", Kind.TIME),
    "tags": RestField("tags", Kind.STRING_LIST),
    "email": RestField("email", Kind.STRING, _lower),
}
P = "filterQuery"


def parse(text: str) -> Filter | None:
    return parse_filter_query(text, FIELDS)


def field(name: str, op: str, value: Any) -> Condition:
    return Condition(field=name, op=op, value=value, path=P)


def custom(key: str, op: str, value: Any) -> Condition:
    return Condition(field="", op=op, value=value, path=P, custom_key=key)


def leaf(cond: Condition) -> Filter:
    return Filter(conditions=(cond,))


def only(text: str) -> Condition:
    """The one condition ``text`` parses to."""
    flt = parse(text)
    assert flt is not None
    assert not flt.all_of and not flt.any_of and flt.none_of is None, flt
    assert len(flt.conditions) == 1, flt
    return flt.conditions[0]


def error(text: str, fields: dict[str, RestField] = FIELDS, param: str = P) -> str:
    with pytest.raises(ValidationFailed) as info:
        parse_filter_query(text, fields, param=param)
    assert info.value.field == param
    assert info.value.code == "VALIDATION"
    return info.value.message


# --- structure ---------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", " ", "\n\t  "])
def test_blank_query_is_no_filter(text: str) -> None:
    assert parse(text) is None


def test_spec_example() -> None:
    assert parse("name='my-model' AND state='LIVE'") == Filter(
        conditions=(field("name", "eq", "my-model"), field("state", "eq", "LIVE"))
    )


def test_and_binds_tighter_than_or() -> None:
    a, b, c = custom("a", "eq", 1), custom("b", "eq", 2), custom("c", "eq", 3)
    assert parse("a = 1 OR b = 2 AND c = 3") == Filter(any_of=(leaf(a), Filter(conditions=(b, c))))
    assert parse("a = 1 AND b = 2 OR c = 3") == Filter(any_of=(Filter(conditions=(a, b)), leaf(c)))


def test_parentheses_group() -> None:
    a, b, c = custom("a", "eq", 1), custom("b", "eq", 2), custom("c", "eq", 3)
    assert parse("(a = 1 OR b = 2) AND c = 3") == Filter(
        conditions=(c,), all_of=(Filter(any_of=(leaf(a), leaf(b))),)
    )
    assert parse("a = 1 AND (b = 2 OR c = 3)") == Filter(
        conditions=(a,), all_of=(Filter(any_of=(leaf(b), leaf(c))),)
    )
    assert parse("((((a = 1))))") == leaf(a)


def test_chains_and_redundant_groups_flatten() -> None:
    conds = [custom(k, "eq", i) for i, k in enumerate("abcd")]
    assert parse("a = 0 AND b = 1 AND c = 2 AND d = 3") == Filter(conditions=tuple(conds))
    assert parse("a = 0 AND (b = 1 AND c = 2) AND d = 3") == Filter(conditions=tuple(conds))
    assert parse("a = 0 OR (b = 1 OR c = 2) OR d = 3") == Filter(
        any_of=tuple(leaf(c) for c in conds)
    )


def test_spec_complex_example() -> None:
    assert parse('(name = "model-a" OR name = "model-b") AND state = "LIVE"') == Filter(
        conditions=(field("state", "eq", "LIVE"),),
        all_of=(
            Filter(
                any_of=(leaf(field("name", "eq", "model-a")), leaf(field("name", "eq", "model-b")))
            ),
        ),
    )


# --- operators ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("symbol", "op"),
    [
        ("=", "eq"),
        ("!=", "ne"),
        ("<>", "ne"),
        (">", "gt"),
        (">=", "gte"),
        ("<", "lt"),
        ("<=", "lte"),
    ],
)
def test_comparison_operators(symbol: str, op: str) -> None:
    assert only(f"size {symbol} 3") == field("size", op, 3)
    assert only(f"size{symbol}-3") == field("size", op, -3)
    assert only(f"accuracy {symbol} 0.5") == custom("accuracy", op, 0.5)


def test_in() -> None:
    assert only("size IN (1, 2,3)") == field("size", "in", [1, 2, 3])
    assert only("size IN (7)") == field("size", "in", [7])
    assert only("state in ('LIVE', \"ARCHIVED\")") == field("state", "in", ["LIVE", "ARCHIVED"])
    assert only("x IN ('a', 1, 2.5, true)") == custom("x", "in", ["a", 1, 2.5, True])


def test_like_and_ilike() -> None:
    assert only('name LIKE "%tensorflow%"') == field("name", "like", "%tensorflow%")
    assert only("name ILIKE 'Ten_or%'") == field("name", "ilike", "Ten_or%")
    assert only("framework like 'py%'") == custom("framework", "like", "py%")
    assert only("framework.string_value ILIKE 'py%'") == custom("framework", "ilike", "py%")


def test_keywords_are_case_insensitive() -> None:
    assert parse("a = 1 and b = 2 Or c In (3) AND d iLiKe 'x' AND e = TRUE AND f = fAlSe") == (
        Filter(
            any_of=(
                Filter(conditions=(custom("a", "eq", 1), custom("b", "eq", 2))),
                Filter(
                    conditions=(
                        custom("c", "in", [3]),
                        custom("d", "ilike", "x"),
                        custom("e", "eq", True),
                        custom("f", "eq", False),
                    )
                ),
            )
        )
    )


# --- literals ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        ('"value"', "value"),
        ("'value'", "value"),
        ('""', ""),
        ("''", ""),
        (r'"say \"hi\""', 'say "hi"'),
        (r"'it\'s'", "it's"),
        ("'it''s'", "it's"),
        ('"say ""hi"""', 'say "hi"'),
        ("''''", "'"),
        (r"'back\\slash'", "back\\slash"),
        (r"'c:\\dir\\'", "c:\\dir\\"),
        ("'\"'", '"'),
        ('"\'"', "'"),
        ("'a AND b = (c)'", "a AND b = (c)"),
        ("'École ✓'", "École ✓"),
        ("'%_'", "%_"),
    ],
)
def test_string_literals(literal: str, value: str) -> None:
    assert only(f"name = {literal}") == field("name", "eq", value)


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        ("42", 42),
        ("-3", -3),
        ("+7", 7),
        ("0", 0),
        ("3.14", 3.14),
        ("-0.5", -0.5),
        (".5", 0.5),
        ("5.", 5.0),
        ("1e-5", 1e-5),
        ("1E5", 1e5),
        ("2.5e+3", 2500.0),
        ("9223372036854775807", 2**63 - 1),
        ("-9223372036854775808", -(2**63)),
    ],
)
def test_number_literals_keep_int_and_float_apart(literal: str, value: int | float) -> None:
    cond = only(f"x = {literal}")
    assert cond == custom("x", "eq", value)
    assert type(cond.value) is type(value)


@pytest.mark.parametrize(("literal", "value"), [("true", True), ("FALSE", False), ("True", True)])
def test_boolean_literals(literal: str, value: bool) -> None:
    cond = only(f"flag = {literal}")
    assert cond == custom("flag", "eq", value)
    assert cond.value is value


# --- properties --------------------------------------------------------------------------


def test_standard_fields_map_to_stored_names() -> None:
    assert only("name = 'a'") == field("name", "eq", "a")
    assert only("externalId = 'e-1'") == field("externalId", "eq", "e-1")
    assert only("externalId = 12") == field("externalId", "eq", 12)


def test_other_names_are_custom_properties() -> None:
    assert only("framework = 'pytorch'") == custom("framework", "eq", "pytorch")
    assert only("mlflow.source.type = 'x'") == custom("mlflow.source.type", "eq", "x")
    assert only("_private.v2 = 1") == custom("_private.v2", "eq", 1)
    assert only("Name = 'a'") == custom("Name", "eq", "a")  # names are case-sensitive


def test_backticked_names_are_custom_properties() -> None:
    assert only('`mlflow.source.type` = "notebook"') == custom(
        "mlflow.source.type", "eq", "notebook"
    )
    assert only("`custom-property` != 'x'") == custom("custom-property", "ne", "x")
    assert only("`a:b/c-d` = 1") == custom("a:b/c-d", "eq", 1)
    # A field's name in backticks reaches the custom property of that name.
    assert only("`name` = 'a'") == custom("name", "eq", "a")


@pytest.mark.parametrize(
    ("text", "cond"),
    [
        ('framework.string_value = "pytorch"', custom("framework", "eq", "pytorch")),
        ("epochs.int_value > 3", custom("epochs", "gt", 3)),
        ("acc.double_value >= 0.9", custom("acc", "gte", 0.9)),
        ("flag.bool_value = true", custom("flag", "eq", True)),
        ("`my.key`.int_value > 3", custom("my.key", "gt", 3)),
        ("`my-key`.string_value LIKE 'a%'", custom("my-key", "like", "a%")),
        ("a.b.c.string_value = 'x'", custom("a.b.c", "eq", "x")),
        ("epochs.int_value IN (1, 2)", custom("epochs", "in", [1, 2])),
        # A typed suffix always means a custom property, even named like a field.
        ("name.string_value = 'a'", custom("name", "eq", "a")),
        # Bare, the suffix words are ordinary names.
        ("string_value = 'a'", custom("string_value", "eq", "a")),
        ("x.float_value = 'a'", custom("x.float_value", "eq", "a")),
    ],
)
def test_typed_access(text: str, cond: Condition) -> None:
    assert only(text) == cond


def test_double_value_takes_integers_as_floats() -> None:
    cond = only("acc.double_value > 1")
    assert cond == custom("acc", "gt", 1.0)
    assert type(cond.value) is float
    assert only("acc.double_value IN (1, 2.5)").value == [1.0, 2.5]


# --- conversions -------------------------------------------------------------------------


def test_converters_turn_literals_into_stored_values() -> None:
    assert only("id = 5") == field("restId", "eq", 5)
    assert only('id = "7"') == field("restId", "eq", 7)
    assert only("id IN ('1', 2)") == field("restId", "in", [1, 2])
    assert only("createTimeSinceEpoch > 1700000000000") == field(
        "createdAt", "gt", datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    )
    assert only("email = 'Ann@Example.com'") == field("email", "eq", "ann@example.com")


def test_like_patterns_are_not_converted() -> None:
    assert only("email LIKE 'Ann%'") == field("email", "like", "Ann%")


def test_converter_failures_name_the_property() -> None:
    assert error("id = 'x5'") == (
        "filterQuery: invalid value 'x5' for id at position 6: "
        "invalid literal for int() with base 10: 'x5'"
    )
    assert (
        error("id = true")
        == "filterQuery: invalid value true for id at position 6: an id is a number"
    )
    assert error("size = 1 AND createTimeSinceEpoch < '2024'") == (
        "filterQuery: invalid value '2024' for createTimeSinceEpoch at position 37: "
        "give epoch milliseconds as a number"
    )
    assert error("id IN (1, 'two')") == (
        "filterQuery: invalid value 'two' for id at position 11: "
        "invalid literal for int() with base 10: 'two'"
    )


# --- errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # values
        ("name = ", "expected a value after '=' at the end of the query"),
        ("name = AND x = 1", "expected a value after '=' at position 8, found 'AND'"),
        (
            "name = foo",
            "expected a value after '=' at position 8, found 'foo'; quote text values: 'foo'",
        ),
        ("name = (1)", "expected a value after '=' at position 8, found '('"),
        ("name = `x`", "expected a value after '=' at position 8, found '`x`'"),
        (
            "name = null",
            "expected a value after '=' at position 8, found 'null'; quote text values: 'null'",
        ),
        # properties
        ("= 1", "expected a property name at position 1, found '='"),
        ("'a' = 1", "expected a property name at position 1, found \"'a'\""),
        ("()", "expected a property name at position 2, found ')'"),
        ("x = 1 AND", "expected a property name at the end of the query"),
        (
            "x = 1 OR OR y = 2",
            "expected a property name at position 10, found 'OR'; write a property named like a keyword in backticks: `OR`",
        ),
        (
            "and = 1",
            "expected a property name at position 1, found 'and'; write a property named like a keyword in backticks: `and`",
        ),
        (
            "true = 1",
            "expected a property name at position 1, found 'true'; write a property named like a keyword in backticks: `true`",
        ),
        (
            f"{'k' * 129} = 1",
            f"{'k' * 37 + '...'!r} at position 1 is not a valid custom property name: one holds at most 128 characters",
        ),
        ("``= 1", "empty `` name at position 1"),
        ("`abc = 1", "unterminated `name` starting at position 1; close it with `"),
        (
            "`x`.foo = 1",
            "unexpected '.foo' after `x` at position 4; only .string_value, .int_value, .double_value, .bool_value may follow a `name`",
        ),
        (
            "`x`. = 1",
            "unexpected '.' after `x` at position 4; only .string_value, .int_value, .double_value, .bool_value may follow a `name`",
        ),
        ("x. = 1", "unexpected character '.' at position 2"),
        # operators
        (
            "name 'a'",
            "expected an operator (=, !=, <>, <, <=, >, >=, LIKE, ILIKE or IN) after 'name' at position 6, found \"'a'\"",
        ),
        (
            "name",
            "expected an operator (=, !=, <>, <, <=, >, >=, LIKE, ILIKE or IN) after 'name' at the end of the query",
        ),
        ("name == 'a'", "expected a value after '=' at position 7, found '='"),
        ("name ! 'a'", "unexpected character '!' at position 6"),
        (
            "name NOT LIKE 'a'",
            "NOT at position 6 is not supported; use != or <> for inequality, there is no NOT IN or NOT LIKE",
        ),
        (
            "name NOT IN ('a')",
            "NOT at position 6 is not supported; use != or <> for inequality, there is no NOT IN or NOT LIKE",
        ),
        (
            "NOT name = 'a'",
            "expected a property name at position 1, found 'NOT'; write a property named like a keyword in backticks: `NOT`",
        ),
        # IN lists
        ("size IN 1", "expected '(' after IN at position 9, found '1'"),
        ("size IN ()", "expected a value after '(' at position 10, found ')'"),
        ("size IN (1,)", "expected a value after ',' at position 12, found ')'"),
        ("size IN (1 2)", "expected ',' or ')' in the IN list at position 12, found '2'"),
        ("size IN (1, 2", "expected ',' or ')' in the IN list at the end of the query"),
        # structure
        ("(x = 1", "expected ')' (closing the '(' at position 1) at the end of the query"),
        (
            "((x = 1) AND (y = 2)",
            "expected ')' (closing the '(' at position 1) at the end of the query",
        ),
        ("(x = 1 y = 2)", "expected ')' (closing the '(' at position 1) at position 8, found 'y'"),
        ("x = 1)", "unmatched ')' at position 6"),
        ("x = 1 y = 2", "expected AND, OR or the end of the query at position 7, found 'y'"),
        ("x = 1, y = 2", "expected AND, OR or the end of the query at position 6, found ','"),
        # strings
        ("name = 'abc", "unterminated string starting at position 8; close it with '"),
        ("name = \"abc'", 'unterminated string starting at position 8; close it with "'),
        ("name = 'abc\\'", "unterminated string starting at position 8; close it with '"),
        (
            "name = 'a\\nb'",
            "unknown escape '\\\\n' at position 10; a backslash may only escape \", ' or \\",
        ),
        (
            "name LIKE '100\\%'",
            "unknown escape '\\\\%' at position 15; a backslash may only escape \", ' or \\",
        ),
        # numbers
        ("x = 12abc", "malformed number '12abc' at position 5"),
        ("x = 1.2.3", "malformed number '1.2.3' at position 5"),
        ("x = 1e", "malformed number '1e' at position 5"),
        ("x = --1", "unexpected character '-' at position 5"),
        ("x = 1e999", "number '1e999' at position 5 is out of range"),
        (
            "x = 9223372036854775808",
            "integer '9223372036854775808' at position 5 is out of 64-bit range",
        ),
        (
            "x = -9223372036854775809",
            "integer '-9223372036854775809' at position 5 is out of 64-bit range",
        ),
        # characters
        ("x = 1 # comment", "unexpected character '#' at position 7"),
        ("x = 1 && y = 2", "unexpected character '&' at position 7"),
        ("x\x00 = 1", "unexpected character '\\x00' at position 2"),
        ("x = ;", "unexpected character ';' at position 5"),
    ],
)
def test_syntax_errors(text: str, message: str) -> None:
    assert error(text) == f"filterQuery: {message}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "name > 'x'",
            "'>' is not allowed on name (a string) at position 6; use =, !=, IN, LIKE, ILIKE",
        ),
        (
            "state LIKE 'L%'",
            "'LIKE' is not allowed on state (one of a fixed set of values) at position 7; use =, !=, IN",
        ),
        (
            "size like '1%'",
            "'LIKE' is not allowed on size (a number) at position 6; use =, !=, <, <=, >, >=, IN",
        ),
        (
            "createTimeSinceEpoch ILIKE '1%'",
            "'ILIKE' is not allowed on createTimeSinceEpoch (a time) at position 22; use =, <, <=, >, >=",
        ),
        (
            "createTimeSinceEpoch != 1",
            "'!=' is not allowed on createTimeSinceEpoch (a time) at position 22; use =, <, <=, >, >=",
        ),
        (
            "createTimeSinceEpoch IN (1)",
            "'IN' is not allowed on createTimeSinceEpoch (a time) at position 22; use =, <, <=, >, >=",
        ),
        (
            "externalId < 'x'",
            "'<' is not allowed on externalId (an id) at position 12; use =, !=, IN",
        ),
        (
            "tags = 'a'",
            "'=' is not allowed on tags (a list of strings) at position 6; it cannot be filtered on",
        ),
        (
            "epochs.int_value LIKE '1%'",
            "'LIKE' is not allowed on epochs.int_value at position 18; patterns match string values only",
        ),
        (
            "flag.bool_value ilike 't%'",
            "'ILIKE' is not allowed on flag.bool_value at position 17; patterns match string values only",
        ),
    ],
)
def test_operators_must_suit_the_property(text: str, message: str) -> None:
    assert error(text) == f"filterQuery: {message}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name = 3", "name takes a string, found 3 at position 8"),
        ("name = true", "name takes a string, found true at position 8"),
        ("name IN ('a', 2)", "name takes a string, found 2 at position 15"),
        ("state = 1", "state takes one of a fixed set of values, found 1 at position 9"),
        ("size = '3'", "size takes a number, found '3' at position 8"),
        ("size = false", "size takes a number, found false at position 8"),
        ('size IN (1, "2")', 'size takes a number, found "2" at position 13'),
        ("externalId = 1.5", "externalId takes an id, found 1.5 at position 14"),
        # Without a converter nothing written here is a time.
        (
            "lastUpdateTimeSinceEpoch > '2024-01-01'",
            "lastUpdateTimeSinceEpoch takes a time, found '2024-01-01' at position 28",
        ),
        (
            "lastUpdateTimeSinceEpoch > 1700000000000",
            "lastUpdateTimeSinceEpoch takes a time, found 1700000000000 at position 28",
        ),
        ("name LIKE 3", "LIKE takes a quoted pattern, found 3 at position 11"),
        ("x ILIKE true", "ILIKE takes a quoted pattern, found true at position 9"),
        (
            "id LIKE '1%'",
            "'LIKE' is not allowed on id (a number) at position 4; use =, !=, <, <=, >, >=, IN",
        ),
        ("x.string_value = 1", "x.string_value takes a string, found 1 at position 18"),
        ("x.int_value = 'a'", "x.int_value takes an integer, found 'a' at position 15"),
        ("x.int_value = 1.0", "x.int_value takes an integer, found 1.0 at position 15"),
        ("x.int_value = true", "x.int_value takes an integer, found true at position 15"),
        ("x.double_value = '1'", "x.double_value takes a number, found '1' at position 18"),
        ("x.double_value = false", "x.double_value takes a number, found false at position 18"),
        ("x.bool_value = 1", "x.bool_value takes true or false, found 1 at position 16"),
        (
            "`a.b`.bool_value IN (true, 'no')",
            "a.b.bool_value takes true or false, found 'no' at position 28",
        ),
    ],
)
def test_values_must_suit_the_property(text: str, message: str) -> None:
    assert error(text) == f"filterQuery: {message}"


def test_errors_name_the_parameter_given() -> None:
    assert error("x = ", param="q") == "q: expected a value after '=' at the end of the query"
    flt = parse_filter_query("x = 1", FIELDS, param="q")
    assert flt == Filter(conditions=(Condition("", "eq", 1, "q", custom_key="x"),))


def test_length_is_capped() -> None:
    clause = "x = 1"
    query = clause + " AND x = 1" * ((MAX_LENGTH - len(clause)) // len(" AND x = 1"))
    query += " " * (MAX_LENGTH - len(query))
    assert len(query) == MAX_LENGTH
    assert parse(query) is not None
    assert error(query + " ") == (
        f"filterQuery: the query is {MAX_LENGTH + 1} characters long; at most 4096 are allowed"
    )
    assert error(" " * 10_000).startswith("filterQuery: the query is 10000 characters long")


def test_nesting_is_capped() -> None:
    deepest = "(" * MAX_DEPTH + "x = 1" + ")" * MAX_DEPTH
    assert parse(deepest) == leaf(custom("x", "eq", 1))
    too_deep = "(" * (MAX_DEPTH + 1) + "x = 1" + ")" * (MAX_DEPTH + 1)
    assert error(too_deep) == (
        f"filterQuery: parentheses nest deeper than 32 levels at position {MAX_DEPTH + 1}"
    )
    assert error("(" * 4000).startswith("filterQuery: parentheses nest deeper than 32 levels")


def test_a_long_flat_query_parses() -> None:
    query = " OR ".join(f"(k{i} = {i} AND name LIKE 'n{i}%')" for i in range(100))
    assert len(query) <= MAX_LENGTH
    flt = parse(query)
    assert flt is not None
    assert len(flt.any_of) == 100
    params = Params()
    compile_filter(flt, ListSpec("T", "MATCH (n:T)", {"name": Kind.STRING}), params)
    assert len(params.values) == 300


# --- robustness --------------------------------------------------------------------------

_PIECES = [
    "name", "size", "x", "a.b", "x.int_value", ".string_value", "`k`", "`a b`", "`", "=", "!=",
    "<>", "<", "<=", ">", ">=", "==", "!", "LIKE", "ilike", "IN", "in", "NOT", "AND", "or",
    "(", ")", "(", ")", ",", "'s'", '"d"', "'", '"', "''", "\\", "\\'", "1", "-2.5", "1e-5",
    "1e999", "99999999999999999999", "true", "FALSE", "null", ".", "-", "%", "_", " ", " ",
    "\t", "\n", "\x00", "é", "✓", "#", ";",
]  # fmt: skip
_SPEC = ListSpec(
    "T",
    "MATCH (n:T)",
    {f.stored: f.kind for f in FIELDS.values()},
)


def _outcome(text: str) -> Filter | ValidationFailed | None:
    try:
        return parse(text)
    except ValidationFailed as e:
        return e


def _check_outcome(text: str) -> None:
    flt = _outcome(text)
    if isinstance(flt, ValidationFailed):
        assert flt.field == P, text
        assert flt.message.startswith("filterQuery: "), (text, flt.message)
        return
    if flt is None:
        assert not text.strip()
        return
    try:
        compile_filter(flt, _SPEC, Params())
    except ValidationFailed as e:  # a valid parse may still be refused by the compiler
        raise AssertionError(f"{text!r} parsed but did not compile: {e.message}") from e


def test_garbage_only_ever_gives_a_filter_or_a_validation_error() -> None:
    rng = random.Random(20250101)
    alphabet = [chr(c) for c in range(32, 127)] + ["\x00", "\n", "é", "\u212a", "😀"]
    for _ in range(3000):
        pieces = [rng.choice(_PIECES) for _ in range(rng.randint(1, 25))]
        _check_outcome(rng.choice(["", " "]).join(pieces))
        _check_outcome("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40))))


def test_mutated_valid_queries_only_ever_give_a_filter_or_a_validation_error() -> None:
    rng = random.Random(7)
    seeds = [
        "(name = 'model-a' OR name = \"model-b\") AND state = 'LIVE'",
        "`mlflow.source.type` = 'notebook' AND acc.double_value >= 0.9",
        "id IN (1, '2', 3) OR size <> -4 AND name ILIKE 'a\\'b''c%'",
        "createTimeSinceEpoch > 1700000000000 AND flag.bool_value = TRUE",
    ]
    for seed in seeds:
        _check_outcome(seed)
        for _ in range(1500):
            chars = list(seed)
            for _ in range(rng.randint(1, 4)):
                i = rng.randrange(len(chars))
                match rng.randrange(3):
                    case 0:
                        del chars[i]
                    case 1:
                        chars.insert(i, rng.choice("()'\"`\\,=<>!.-% aZ09"))
                    case _:
                        j = rng.randrange(len(chars))
                        chars[i], chars[j] = chars[j], chars[i]
                if not chars:
                    break
            _check_outcome("".join(chars))


def _expression(rng: random.Random, depth: int = 0) -> tuple[str, str]:
    """A random AND/OR query over ``kN = 1`` and the same expression in Python."""
    if depth > 4 or rng.random() < 0.3:
        key = f"k{rng.randrange(6)}"
        return f"{key} = 1", key
    op = rng.choice(["AND", "OR"])
    parts = [_expression(rng, depth + 1) for _ in range(rng.randint(2, 4))]
    spelled = rng.choice([op, op.lower(), op.title()])
    query = (rng.choice([" ", "  ", "\n"]) + spelled + " ").join(q for q, _ in parts)
    python = f" {op.lower()} ".join(py for _, py in parts)  # Python's and also binds tighter
    return (f"({query})", f"({python})") if rng.random() < 0.5 else (query, python)


def _holds(flt: Filter, record: dict[str, bool]) -> bool:
    """Whether ``record`` (which ``kN`` equal 1) passes ``flt``, as the compiler means it."""
    assert flt.none_of is None
    return (
        all(record[c.custom_key or ""] for c in flt.conditions)
        and all(_holds(f, record) for f in flt.all_of)
        and (not flt.any_of or any(_holds(f, record) for f in flt.any_of))
    )


def test_random_valid_queries_mean_what_they_say() -> None:
    rng = random.Random(11)
    for _ in range(400):
        query, python = _expression(rng)
        flt = parse(query)
        assert flt is not None
        compile_filter(flt, _SPEC, Params())
        for _ in range(8):
            record = {f"k{i}": rng.random() < 0.5 for i in range(6)}
            assert _holds(flt, record) == eval(python, {}, record), (query, record)


# --- LIKE as a regex ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "regex"),
    [
        ("abc", "(?s)abc"),
        ("", "(?s)"),
        ("%", "(?s).*"),
        ("a%", "(?s)a.*"),
        ("%a", "(?s).*a"),
        ("%abc%", "(?s)(?>.*?abc).*"),
        ("a%b%%c%d", "(?s)a(?>.*?b)(?>.*?c).*d"),
        ("a_c", "(?s)a.c"),
        ("v1.0 (rc)$", r"(?s)v1\.0\ \(rc\)\$"),
        (r"c:\x", r"(?s)c\:\\x"),
        ("[^]{}|?*+", r"(?s)\[\^\]\{\}\|\?\*\+"),
        ("é€", "(?s)\\é\\€"),
    ],
)
def test_like_regex(pattern: str, regex: str) -> None:
    assert like_regex(pattern) == regex
    assert like_regex(pattern, ignore_case=True) == regex.replace("(?s)", "(?siu)", 1)


@cache
def _like_reference(pattern: str, text: str) -> bool:
    """SQL LIKE by plain recursion: the meaning like_regex must keep."""
    if not pattern:
        return not text
    head, rest = pattern[0], pattern[1:]
    if head == "%":
        return any(_like_reference(rest, text[i:]) for i in range(len(text) + 1))
    return bool(text) and head in {"_", text[0]} and _like_reference(rest, text[1:])


def test_like_regex_means_sql_like() -> None:
    # Python's re (3.11+) reads atomic groups like Java's, so the translation can be
    # checked against the reference on many small cases here and on Neo4j below.
    rng = random.Random(3)
    for _ in range(4000):
        pattern = "".join(rng.choice("ab%_.") for _ in range(rng.randint(0, 7)))
        text = "".join(rng.choice("ab.\n") for _ in range(rng.randint(0, 9)))
        found = re.fullmatch(like_regex(pattern), text) is not None
        assert found == _like_reference(pattern, text), (pattern, text, like_regex(pattern))


def test_compiled_like_keeps_the_pattern_out_of_the_cypher() -> None:
    spec = ListSpec("T", "MATCH (n:T)", {"name": Kind.STRING})
    params = Params()
    flt = parse("name LIKE '%}) DETACH DELETE n //%' OR `k` ILIKE 'A'")
    assert flt is not None
    cypher = compile_filter(flt, spec, params)
    assert cypher == "((n.`name` =~ $f0) OR (n[$f1] =~ $f2))"
    assert params.values == {
        "f0": r"(?s)(?>.*?\}\)\ DETACH\ DELETE\ n\ \/\/).*",
        "f1": "cp.k",
        "f2": "(?siu)A",
    }


@pytest.mark.parametrize("op", ["like", "ilike"])
def test_compiler_refuses_a_pattern_that_is_not_a_string(op: str) -> None:
    spec = ListSpec("T", "MATCH (n:T)", {"name": Kind.STRING})
    for cond in (field("name", op, 3), custom("k", op, ["a"])):
        with pytest.raises(ValidationFailed, match=f"{op} takes a string"):
            compile_filter(leaf(cond), spec, Params())


# --- on a real Neo4j ---------------------------------------------------------------------

_PROBES: list[dict[str, Any]] = [
    {
        "name": "alpha.v1",
        "size": 100,
        "state": "LIVE",
        "cp.framework": "pytorch",
        "cp.accuracy": 0.97,
        "cp.epochs": 10,
        "cp.mlflow.source.type": "notebook",
    },
    {
        "name": "alphaXv1",
        "size": 5,
        "state": "ARCHIVED",
        "cp.framework": "PyTorch",
        "cp.accuracy": 0.90,
        "cp.epochs": 3,
    },
    {
        "name": "beta (rc)$",
        "size": 50,
        "state": "LIVE",
        "cp.framework": "tensorflow",
        "cp.accuracy": 0.95,
        "cp.epochs": 20,
        "cp.flag": True,
    },
    {
        "name": "c:\\dir\\file",
        "size": 7,
        "cp.framework": "jax",
        "cp.epochs": "7",
        "cp.note": "100%",
    },
    {"name": "École-1", "size": 1, "cp.my-key": "Ünïcode"},
    {"name": "line1\nline2", "size": 2},
]
_PROBE_SPEC = ListSpec(
    "FilterProbe",
    "MATCH (n:FilterProbe)",
    {"name": Kind.STRING, "size": Kind.NUMBER, "state": Kind.ENUM},
)
_PROBE_FIELDS = {
    "name": RestField("name", Kind.STRING),
    "size": RestField("size", Kind.NUMBER),
    "state": RestField("state", Kind.ENUM),
}
ALL = sorted(p["name"] for p in _PROBES)


def _select(db: neo4j.Driver, query: str) -> list[str]:
    flt = parse_filter_query(query, _PROBE_FIELDS)
    params = Params()
    where = compile_filter(flt, _PROBE_SPEC, params)
    records, _, _ = db.execute_query(
        f"MATCH (n:FilterProbe) WHERE {where} RETURN n.name AS name ORDER BY name",
        params.values,
    )
    return [r["name"] for r in records]


@pytest.fixture
def probes(db: neo4j.Driver) -> neo4j.Driver:
    db.execute_query("UNWIND $rows AS row CREATE (n:FilterProbe) SET n = row", {"rows": _PROBES})
    return db


@pytest.mark.parametrize(
    ("query", "names"),
    [
        # LIKE: regex metacharacters are literal, _ and % are wildcards
        ("name LIKE 'alpha.v1'", ["alpha.v1"]),
        ("name LIKE 'alpha_v1'", ["alpha.v1", "alphaXv1"]),
        ("name LIKE 'alpha%'", ["alpha.v1", "alphaXv1"]),
        ("name LIKE 'alpha'", []),
        ("name LIKE 'beta (rc)$'", ["beta (rc)$"]),
        ("name LIKE '%(rc)_'", ["beta (rc)$"]),
        ("name LIKE '%)%'", ["beta (rc)$"]),
        ("name LIKE '.*'", []),
        (r"name LIKE 'c:\\dir\\%'", ["c:\\dir\\file"]),
        (r"name LIKE '%\\%\\%'", ["c:\\dir\\file"]),
        ("name LIKE 'line1_line2'", ["line1\nline2"]),
        ("name LIKE 'line1%2'", ["line1\nline2"]),
        ("name LIKE '%'", ALL),
        ("name LIKE '%a%a%'", ["alpha.v1", "alphaXv1"]),
        ("name LIKE '%a%a%a%'", []),
        # ILIKE folds case, also beyond ASCII
        ("name LIKE 'ALPHA%'", []),
        ("name ILIKE 'ALPHA%'", ["alpha.v1", "alphaXv1"]),
        ("name ILIKE 'alphax%'", ["alphaXv1"]),
        ("name ILIKE 'école%'", ["École-1"]),
        ("name LIKE 'école%'", []),
        ("`my-key` ILIKE 'üNÏCODE'", ["École-1"]),
        # on custom properties; values that are not strings never match a pattern
        ("framework LIKE 'py%'", ["alpha.v1"]),
        ("framework ILIKE 'pytorch'", ["alpha.v1", "alphaXv1"]),
        ("framework.string_value ILIKE '%OR%'", ["alpha.v1", "alphaXv1", "beta (rc)$"]),
        ("note LIKE '100%'", ["c:\\dir\\file"]),
        ("note LIKE '100_'", ["c:\\dir\\file"]),
        ("epochs LIKE '%'", ["c:\\dir\\file"]),
        # IN
        ("name IN ('alpha.v1', 'nope')", ["alpha.v1"]),
        ("framework IN ('jax', 'tensorflow')", ["beta (rc)$", "c:\\dir\\file"]),
        ("epochs IN (3, 20)", ["alphaXv1", "beta (rc)$"]),
        ("epochs IN ('7')", ["c:\\dir\\file"]),
        ("state IN ('LIVE')", ["alpha.v1", "beta (rc)$"]),
        # numeric comparisons on custom properties compare numbers only
        ("epochs > 5", ["alpha.v1", "beta (rc)$"]),
        ("epochs.int_value >= 10", ["alpha.v1", "beta (rc)$"]),
        ("epochs <= 3", ["alphaXv1"]),
        ("epochs.int_value = 7", []),
        ("epochs = '7'", ["c:\\dir\\file"]),
        ("accuracy > 0.9", ["alpha.v1", "beta (rc)$"]),
        ("accuracy.double_value >= 0.9", ["alpha.v1", "alphaXv1", "beta (rc)$"]),
        ("accuracy < 1", ["alpha.v1", "alphaXv1", "beta (rc)$"]),
        ("size >= 50 AND size <= 100", ["alpha.v1", "beta (rc)$"]),
        ("size <> 5 AND size != 7 AND size > 1", ["alpha.v1", "beta (rc)$", "line1\nline2"]),
        ("flag = true", ["beta (rc)$"]),
        ("flag.bool_value = FALSE", []),
        ("`mlflow.source.type` = 'notebook'", ["alpha.v1"]),
        ("mlflow.source.type.string_value = 'notebook'", ["alpha.v1"]),
        # precedence and grouping
        ("framework = 'jax' OR framework = 'pytorch' AND size > 1000", ["c:\\dir\\file"]),
        ("(framework = 'jax' OR framework = 'pytorch') AND size > 50", ["alpha.v1"]),
        (
            "(framework = 'jax' OR framework = 'pytorch') AND size >= 7",
            ["alpha.v1", "c:\\dir\\file"],
        ),
        ("size = 1 OR size = 2 OR state = 'ARCHIVED'", ["alphaXv1", "line1\nline2", "École-1"]),
        ("state = 'LIVE' AND (name LIKE '%a%' OR size < 3) AND epochs >= 20", ["beta (rc)$"]),
    ],
)
def test_compiled_predicates_select_the_right_nodes(
    probes: neo4j.Driver, query: str, names: list[str]
) -> None:
    assert _select(probes, query) == sorted(names)


def test_like_does_not_backtrack_catastrophically(db: neo4j.Driver) -> None:
    """Plain ``.*`` runs for ``%a%a%a%a%a%a%b`` against a long run of ``a`` take forever."""
    db.execute_query("CREATE (:FilterProbe {name: $name})", {"name": "a" * 5000})
    started = time.monotonic()
    assert _select(db, "name LIKE '%a%a%a%a%a%a%b' OR name ILIKE '%A%A%A%A%A%A%B'") == []
    assert _select(db, "name LIKE '%a%a%a%a%a%a%a'") == ["a" * 5000]
    assert time.monotonic() - started < 10
