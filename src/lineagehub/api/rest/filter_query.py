"""Kubeflow's ``filterQuery`` list parameter, parsed into the one :class:`Filter` tree.

The language is the SQL-like one of the Kubeflow Model Registry OpenAPI spec::

    query      := or
    or         := and ("OR" and)*                       -- AND binds tighter than OR
    and        := primary ("AND" primary)*
    primary    := "(" or ")" | comparison
    comparison := property ("=" | "!=" | "<>" | "<" | "<=" | ">" | ">=") value
                | property ("LIKE" | "ILIKE") string
                | property "IN" "(" value ("," value)* ")"
    property   := name [typed] | `any text but backticks` [typed]
    name       := [A-Za-z_][A-Za-z0-9_]* ("." [A-Za-z0-9_]+)*
    typed      := ".string_value" | ".int_value" | ".double_value" | ".bool_value"
    value      := string | number | "true" | "false"

Keywords and booleans are case-insensitive. Strings take ``"..."`` or ``'...'`` with the
escapes ``\\"``, ``\\'`` and ``\\\\`` or a doubled quote; numbers are ``42``, ``-3``,
``3.14``, ``1e-5`` (integers stay integers). ``LIKE`` patterns use ``%`` and ``_`` and have
no escape character.

A plain name that is one of the resource's :class:`RestField` names is that field; any
other name, a backticked one or one with a typed suffix is a custom property, whose value
is compared with the literal's own type (the suffix only checks that type). Errors are
:class:`ValidationFailed` naming the 1-based character position and the offending text.
Property names and values only ever end up in the :class:`Filter` tree, which the listing
compiler turns into Cypher parameters.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any, NoReturn

from lineagehub.graph.errors import ValidationFailed
from lineagehub.graph.listing import (
    CUSTOM_OPERATORS,
    OPERATORS,
    PATTERN_OPERATORS,
    Condition,
    Filter,
    Kind,
)
from lineagehub.graph.properties import INT64, KEY_PATTERN

MAX_LENGTH = 4096
MAX_DEPTH = 32  # nested parentheses


@dataclass(frozen=True)
class RestField:
    """A standard property ``filterQuery`` may name, and where it lives on our nodes.

    ``convert`` turns the literal as written (a ``str``, ``int``, ``float`` or ``bool``)
    into the stored value and raises ``ValueError`` (or ``ValidationFailed``) for one it
    does not accept; without it the literal must already have the field's type.
    """

    stored: str
    kind: Kind
    convert: Callable[[Any], Any] | None = None


# --- tokens ------------------------------------------------------------------------------


class _T(Enum):
    NAME = "name"
    QUOTED_NAME = "quoted name"
    STRING = "string"
    NUMBER = "number"
    OPERATOR = "operator"
    OPEN = "("
    CLOSE = ")"
    COMMA = ","
    END = "end"


@dataclass(frozen=True)
class _Token:
    type: _T
    text: str  # as written
    pos: int  # 0-based offset into the query
    value: Any = None  # STRING, NUMBER: the literal; QUOTED_NAME: (name, typed suffix)


_SPACE = re.compile(r"\s+")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*")
_NUMBER = re.compile(r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?(?![A-Za-z0-9_.])")
_BAD_NUMBER = re.compile(r"[-+]?[0-9.][A-Za-z0-9_.+-]*")
_SYMBOLS = ("!=", "<>", "<=", ">=", "=", "<", ">")
_PUNCTUATION = {"(": _T.OPEN, ")": _T.CLOSE, ",": _T.COMMA}
_ESCAPES = {'"', "'", "\\"}
# Typed access to a custom property: the suffix and the literals it accepts.
_TYPED = {
    "string_value": "a string",
    "int_value": "an integer",
    "double_value": "a number",
    "bool_value": "true or false",
}

_COMPARISONS = {"=": "eq", "!=": "ne", "<>": "ne", "<": "lt", "<=": "lte", ">": "gt", ">=": "gte"}
_KEYWORD_OPERATORS = {"IN": "in", "LIKE": "like", "ILIKE": "ilike"}
_KEYWORDS = {"AND", "OR", "NOT", "TRUE", "FALSE", *_KEYWORD_OPERATORS}
# How each listing operator is written here, in the order error messages list them.
_SPELLING = {
    "eq": "=",
    "ne": "!=",
    "lt": "<",
    "lte": "<=",
    "gt": ">",
    "gte": ">=",
    "in": "IN",
    "like": "LIKE",
    "ilike": "ILIKE",
}
_KIND_NAMES = {
    Kind.ID: "an id",
    Kind.STRING: "a string",
    Kind.ENUM: "one of a fixed set of values",
    Kind.TIME: "a time",
    Kind.NUMBER: "a number",
    Kind.STRING_LIST: "a list of strings",
}


def _show(text: str) -> str:
    """``text`` quoted for a message, shortened when long."""
    return repr(text if len(text) <= 40 else text[:37] + "...")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class _Lexer:
    def __init__(self, text: str, fail: Callable[[str], NoReturn]) -> None:
        self.text = text
        self.fail = fail

    def tokens(self) -> list[_Token]:
        text, pos = self.text, 0
        out: list[_Token] = []
        while True:
            space = _SPACE.match(text, pos)
            if space:
                pos = space.end()
            if pos == len(text):
                out.append(_Token(_T.END, "", pos))
                return out
            token = self._token(pos)
            out.append(token)
            pos += len(token.text)

    def _token(self, pos: int) -> _Token:
        text, ch = self.text, self.text[pos]
        if ch in _PUNCTUATION:
            return _Token(_PUNCTUATION[ch], ch, pos)
        for symbol in _SYMBOLS:
            if text.startswith(symbol, pos):
                return _Token(_T.OPERATOR, symbol, pos)
        if ch in "\"'":
            return self._string(pos)
        if ch == "`":
            return self._quoted_name(pos)
        name = _NAME.match(text, pos)
        if name:
            return _Token(_T.NAME, name.group(), pos)
        number = _NUMBER.match(text, pos)
        if number:
            return self._number(number.group(), pos)
        bad = _BAD_NUMBER.match(text, pos)
        if bad and any(c.isdigit() for c in bad.group()):
            self.fail(f"malformed number {_show(bad.group())} at position {pos + 1}")
        self.fail(f"unexpected character {ch!r} at position {pos + 1}")

    def _string(self, start: int) -> _Token:
        text, quote, pos = self.text, self.text[start], start + 1
        chars: list[str] = []
        while pos < len(text):
            ch = text[pos]
            if ch == "\\" and pos + 1 < len(text):
                escaped = text[pos + 1]
                if escaped not in _ESCAPES:
                    self.fail(
                        f"unknown escape {_show(ch + escaped)} at position {pos + 1}; "
                        "a backslash may only escape \", ' or \\"
                    )
                chars.append(escaped)
                pos += 2
            elif ch == quote and text.startswith(quote * 2, pos):
                chars.append(quote)
                pos += 2
            elif ch == quote:
                return _Token(_T.STRING, text[start : pos + 1], start, "".join(chars))
            else:
                chars.append(ch)
                pos += 1
        self.fail(f"unterminated string starting at position {start + 1}; close it with {quote}")

    def _quoted_name(self, start: int) -> _Token:
        text = self.text
        end = text.find("`", start + 1)
        if end < 0:
            self.fail(f"unterminated `name` starting at position {start + 1}; close it with `")
        name = text[start + 1 : end]
        if not name:
            self.fail(f"empty `` name at position {start + 1}")
        typed = None
        if text.startswith(".", end + 1):
            suffix = _NAME.match(text, end + 2)
            typed = suffix.group() if suffix else ""
            if typed not in _TYPED:
                self.fail(
                    f"unexpected {_show('.' + typed)} after `{name}` at position {end + 2}; "
                    f"only {', '.join('.' + t for t in _TYPED)} may follow a `name`"
                )
            end += 1 + len(typed)
        return _Token(_T.QUOTED_NAME, text[start : end + 1], start, (name, typed))

    def _number(self, written: str, pos: int) -> _Token:
        value: int | float
        if re.fullmatch(r"[-+]?[0-9]+", written):
            value = int(written)
            if not INT64[0] <= value <= INT64[1]:
                self.fail(f"integer {_show(written)} at position {pos + 1} is out of 64-bit range")
        else:
            value = float(written)
            if not math.isfinite(value):
                self.fail(f"number {_show(written)} at position {pos + 1} is out of range")
        return _Token(_T.NUMBER, written, pos, value)


# --- parsing -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Property:
    name: str
    typed: str | None  # a key of _TYPED
    custom: bool  # backticked or typed: never a standard field
    token: _Token


def _all(items: list[Filter]) -> Filter:
    """AND of ``items``, merging the conditions of plain conjunctions into one level."""
    if len(items) == 1:
        return items[0]
    conditions: list[Condition] = []
    nested: list[Filter] = []
    for item in items:
        if not item.any_of and item.none_of is None:
            conditions += item.conditions
            nested += item.all_of
        else:
            nested.append(item)
    return Filter(conditions=tuple(conditions), all_of=tuple(nested))


def _any(items: list[Filter]) -> Filter:
    """OR of ``items``, merging nested plain disjunctions into one level."""
    if len(items) == 1:
        return items[0]
    alternatives: list[Filter] = []
    for item in items:
        if item.any_of and not item.conditions and not item.all_of and item.none_of is None:
            alternatives += item.any_of
        else:
            alternatives.append(item)
    return Filter(any_of=tuple(alternatives))


class _Parser:
    def __init__(self, text: str, fields: Mapping[str, RestField], param: str) -> None:
        self.fields = fields
        self.param = param
        self.tokens = _Lexer(text, self.fail).tokens()
        self.index = 0
        self.depth = 0

    def fail(self, message: str) -> NoReturn:
        raise ValidationFailed(f"{self.param}: {message}", field=self.param)

    # token helpers

    def peek(self) -> _Token:
        return self.tokens[self.index]

    def advance(self) -> _Token:
        token = self.tokens[self.index]
        if token.type is not _T.END:
            self.index += 1
        return token

    def keyword(self, token: _Token) -> str | None:
        word = token.text.upper()
        return word if token.type is _T.NAME and word in _KEYWORDS else None

    def accept_keyword(self, word: str) -> bool:
        if self.keyword(self.peek()) == word:
            self.advance()
            return True
        return False

    @staticmethod
    def where(token: _Token) -> str:
        """Where ``token`` is, and what it is, for a message."""
        if token.type is _T.END:
            return "at the end of the query"
        return f"at position {token.pos + 1}, found {_show(token.text)}"

    # grammar

    def query(self) -> Filter:
        flt = self.disjunction()
        token = self.peek()
        if token.type is _T.CLOSE:
            self.fail(f"unmatched ')' at position {token.pos + 1}")
        if token.type is not _T.END:
            self.fail(f"expected AND, OR or the end of the query {self.where(token)}")
        return flt

    def disjunction(self) -> Filter:
        items = [self.conjunction()]
        while self.accept_keyword("OR"):
            items.append(self.conjunction())
        return _any(items)

    def conjunction(self) -> Filter:
        items = [self.primary()]
        while self.accept_keyword("AND"):
            items.append(self.primary())
        return _all(items)

    def primary(self) -> Filter:
        token = self.peek()
        if token.type is not _T.OPEN:
            return Filter(conditions=(self.comparison(),))
        if self.depth == MAX_DEPTH:
            self.fail(
                f"parentheses nest deeper than {MAX_DEPTH} levels at position {token.pos + 1}"
            )
        self.advance()
        self.depth += 1
        inner = self.disjunction()
        close = self.advance()
        if close.type is not _T.CLOSE:
            self.fail(
                f"expected ')' (closing the '(' at position {token.pos + 1}) {self.where(close)}"
            )
        self.depth -= 1
        return inner

    def property(self) -> _Property:
        token = self.advance()
        if token.type is _T.QUOTED_NAME:
            name, typed = token.value
            return _Property(name, typed, True, token)
        if token.type is _T.NAME and self.keyword(token) is None:
            head, _, last = token.text.rpartition(".")
            if head and last in _TYPED:
                return _Property(head, last, True, token)
            return _Property(token.text, None, False, token)
        hint = ""
        if self.keyword(token):
            hint = f"; write a property named like a keyword in backticks: `{token.text}`"
        self.fail(f"expected a property name {self.where(token)}{hint}")

    def operator(self, prop: _Property) -> tuple[str, _Token]:
        token = self.advance()
        if token.type is _T.OPERATOR:
            return _COMPARISONS[token.text], token
        word = self.keyword(token)
        if word in _KEYWORD_OPERATORS:
            return _KEYWORD_OPERATORS[word], token
        if word == "NOT":
            self.fail(
                f"NOT at position {token.pos + 1} is not supported; "
                "use != or <> for inequality, there is no NOT IN or NOT LIKE"
            )
        self.fail(
            f"expected an operator (=, !=, <>, <, <=, >, >=, LIKE, ILIKE or IN) after "
            f"{_show(prop.token.text)} {self.where(token)}"
        )

    def value(self, after: _Token) -> _Token:
        token = self.advance()
        if token.type in {_T.STRING, _T.NUMBER}:
            return token
        if self.keyword(token) in {"TRUE", "FALSE"}:
            return _Token(_T.NAME, token.text, token.pos, self.keyword(token) == "TRUE")
        hint = ""
        if token.type is _T.NAME and not self.keyword(token):
            hint = f"; quote text values: '{token.text}'"
        self.fail(f"expected a value after {_show(after.text)} {self.where(token)}{hint}")

    def comparison(self) -> Condition:
        prop = self.property()
        op, op_token = self.operator(prop)
        if op != "in":
            return self.condition(prop, op, op_token, [self.value(op_token)])
        opening = self.advance()
        if opening.type is not _T.OPEN:
            self.fail(f"expected '(' after IN {self.where(opening)}")
        values = [self.value(opening)]
        while True:
            token = self.advance()
            if token.type is _T.CLOSE:
                return self.condition(prop, op, op_token, values)
            if token.type is not _T.COMMA:
                self.fail(f"expected ',' or ')' in the IN list {self.where(token)}")
            values.append(self.value(token))

    # meaning

    def condition(
        self, prop: _Property, op: str, op_token: _Token, values: list[_Token]
    ) -> Condition:
        spelled = _show(op_token.text.upper())
        field = None if prop.custom else self.fields.get(prop.name)
        if field is not None:
            allowed = OPERATORS[field.kind]
            if op not in allowed:
                usable = [s for o, s in _SPELLING.items() if o in allowed]
                advice = f"use {', '.join(usable)}" if usable else "it cannot be filtered on"
                self.fail(
                    f"{spelled} is not allowed on {prop.name} ({_KIND_NAMES[field.kind]}) "
                    f"at position {op_token.pos + 1}; {advice}"
                )
            stored = [self.field_value(prop, field, op, token) for token in values]
            value = stored if op == "in" else stored[0]
            return Condition(field=field.stored, op=op, value=value, path=self.param)
        if not KEY_PATTERN.match(prop.name):
            self.fail(
                f"{_show(prop.name)} at position {prop.token.pos + 1} is not a valid custom "
                "property name: one holds at most 128 characters"
            )
        if op not in CUSTOM_OPERATORS:  # every operator here is, but keep the check honest
            self.fail(f"{spelled} is not allowed on custom properties")
        found = [self.custom_value(prop, op, op_token, token) for token in values]
        return Condition(
            field="",
            op=op,
            value=found if op == "in" else found[0],
            path=self.param,
            custom_key=prop.name,
        )

    def field_value(self, prop: _Property, field: RestField, op: str, token: _Token) -> Any:
        literal = token.value
        where = f"at position {token.pos + 1}"
        if op in PATTERN_OPERATORS:
            # A pattern is matched against the stored text as it is, never converted.
            if not isinstance(literal, str):
                self.fail(f"{op.upper()} takes a quoted pattern, found {token.text} {where}")
            return literal
        value = literal
        if field.convert is not None:
            try:
                value = field.convert(literal)
            except ValidationFailed as e:
                self.fail(f"invalid value {token.text} for {prop.name} {where}: {e.message}")
            except (ValueError, TypeError, OverflowError) as e:
                reason = f": {e}" if str(e) else ""
                self.fail(f"invalid value {token.text} for {prop.name} {where}{reason}")
        match field.kind:
            case Kind.STRING | Kind.ENUM | Kind.STRING_LIST:
                fits = isinstance(value, str)
            case Kind.ID:
                fits = isinstance(value, str) or (_is_number(value) and isinstance(value, int))
            case Kind.NUMBER:
                fits = _is_number(value)
            case Kind.TIME:
                fits = isinstance(value, datetime)
        if not fits:
            self.fail(f"{prop.name} takes {_KIND_NAMES[field.kind]}, found {token.text} {where}")
        return value

    def custom_value(self, prop: _Property, op: str, op_token: _Token, token: _Token) -> Any:
        literal = token.value
        where = f"at position {token.pos + 1}"
        shown = f"{prop.name}.{prop.typed}" if prop.typed else prop.name
        if op in PATTERN_OPERATORS:
            if prop.typed not in {None, "string_value"}:
                self.fail(
                    f"{_show(op_token.text.upper())} is not allowed on {shown} at position "
                    f"{op_token.pos + 1}; patterns match string values only"
                )
            if not isinstance(literal, str):
                self.fail(f"{op.upper()} takes a quoted pattern, found {token.text} {where}")
            return literal
        typed = prop.typed
        if typed is None:
            return literal
        match typed:
            case "string_value":
                fits = isinstance(literal, str)
            case "int_value":
                fits = isinstance(literal, int) and _is_number(literal)
            case "double_value":
                fits = _is_number(literal)
                literal = float(literal) if fits else literal
            case _:  # bool_value
                fits = isinstance(literal, bool)
        if not fits:
            self.fail(f"{shown} takes {_TYPED[typed]}, found {token.text} {where}")
        return literal


def parse_filter_query(
    text: str, fields: Mapping[str, RestField], *, param: str = "filterQuery"
) -> Filter | None:
    """The :class:`Filter` a ``filterQuery`` asks for; ``None`` when it is blank.

    ``fields`` maps the resource's standard property names to where they are stored;
    ``param`` names the parameter in errors and becomes each condition's ``path``.
    """
    if len(text) > MAX_LENGTH:
        raise ValidationFailed(
            f"{param}: the query is {len(text)} characters long; at most {MAX_LENGTH} are allowed",
            field=param,
        )
    if not text.strip():
        return None
    return _Parser(text, fields, param).query()
