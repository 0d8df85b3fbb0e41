"""Type-check a syntax tree against the entity's fields and write it out as plain CEL.

The checker resolves every name to a declared field, every call to a supported
function, and gives every sub-expression a type, collecting *all* problems. It
also writes the CEL program the runtime compiles; that program differs from
what the user typed in these ways:

* fields are renamed ``f_<name>`` (so a field may be called ``size``, ``type``
  or ``package`` without meeting a CEL builtin or reserved word);
* an ``int`` meeting a ``double`` is converted with ``double(…)`` (CEL itself
  never converts, so ``amount * (1 - discount / 100.0)`` would fail at run time);
* ``has(field)`` becomes ``f_field != null`` and ``has(field.key)`` becomes
  ``"key" in f_field``; ``field.key`` becomes ``f_field["key"]`` (a key may be
  a CEL reserved word); ``today()`` and ``now()`` become the variables
  ``_today`` and ``_now``; ``string(bool)`` becomes a ternary;
* the size of a string is ``int(_chars(s))``: the runtime's own ``size()``
  counts UTF-8 bytes (6 for "科技") where CEL counts characters; ``_chars``
  is a Python ``len`` that gives null for null, and ``int(null)`` fails like
  any other operation on an empty field (the size of a ``dyn`` goes the same way);
* every operation is parenthesised.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from formloom.engine.expressions import types as t
from formloom.engine.expressions.errors import ExpressionIssue
from formloom.engine.expressions.syntax import (
    MAX_DEPTH,
    Binary,
    Call,
    Conditional,
    ExpressionSyntaxError,
    Index,
    ListLiteral,
    Literal,
    Name,
    Node,
    Select,
    Unary,
)

#: Most string or list concatenations in one expression (bounds the size of what it builds).
MAX_CONCATENATIONS = 20
INT_MIN, INT_MAX = -(2**63), 2**63 - 1

#: Global functions and their argument counts.
FUNCTIONS = {
    "size": 1, "has": 1, "int": 1, "double": 1, "string": 1,
    "timestamp": 1, "duration": 1, "today": 0, "now": 0,
}  # fmt: skip
#: Methods (``target.name(...)``) and their argument counts.
METHODS = {"contains": 1, "startsWith": 1, "endsWith": 1, "size": 0}
_MACROS = "list macros (`all`, `exists`, `exists_one`, `map`, `filter`) are not supported"
_DATE_PARTS = "date parts such as `getFullYear()` are not supported yet"
UNSUPPORTED = {
    "matches": "regular expressions (`matches`) are not supported; "
    "a text field's `pattern` option checks formats",
    **dict.fromkeys(("all", "exists", "exists_one", "map", "filter"), _MACROS),
    **dict.fromkeys(
        (
            "getFullYear", "getMonth", "getDate", "getDayOfMonth", "getDayOfWeek",
            "getDayOfYear", "getHours", "getMinutes", "getSeconds", "getMilliseconds",
        ),
        _DATE_PARTS,
    ),
    **{name: f"`{name}()` is not supported" for name in ("uint", "bytes", "dyn", "type")},
}  # fmt: skip
_WORD_OPERATORS = {"and": "&&", "or": "||", "not": "!"}
_RECORD_NAMES = frozenset(("record", "self", "this", "doc", "row"))
_STRING_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


class Typed(NamedTuple):
    """A checked sub-expression: its type and its CEL text."""

    type: str
    source: str


_ERROR = Typed(t.ERROR, "")


@dataclass
class Checked:
    """What the checker learnt about a whole expression."""

    type: str
    cel_source: str
    referenced_fields: frozenset[str]
    uses_now: bool
    uses_today: bool
    uses_chars: bool
    #: ``(position, CEL call)`` of ``timestamp('…')``/``duration('…')`` on literals, to try early.
    constant_calls: list[tuple[int, str]]
    issues: list[ExpressionIssue]


@dataclass
class Checker:
    """Checks one expression against ``fields`` (name → CEL type); use :func:`check`."""

    source: str
    fields: Mapping[str, str]
    issues: list[ExpressionIssue] = field(default_factory=list)
    referenced: set[str] = field(default_factory=set)
    uses_now: bool = False
    uses_today: bool = False
    uses_chars: bool = False
    concatenations: int = 0
    constant_calls: list[tuple[int, str]] = field(default_factory=list)

    def problem(self, position: int, code: str, message: str) -> Typed:
        self.issues.append(ExpressionIssue.at(self.source, position, code, message))
        return _ERROR

    def visit(self, node: Node, level: int) -> Typed:
        if level > MAX_DEPTH:
            raise ExpressionSyntaxError(
                node.position, "too_deep", f"the expression nests deeper than {MAX_DEPTH} levels"
            )
        match node:
            case Literal():
                return self.literal(node)
            case Name():
                return self.name(node)
            case Unary():
                return self.unary(node, level)
            case Binary():
                left, right = self.visit(node.left, level + 1), self.visit(node.right, level + 1)
                if t.ERROR in (left.type, right.type):
                    return _ERROR
                return self.binary(node, left, right)
            case Conditional():
                return self.conditional(node, level)
            case ListLiteral():
                return self.list_literal(node, level)
            case Index():
                return self.index(node, level)
            case Select():
                return self.select(node, level)
            case Call():
                return self.call(node, level)

    # ---- leaves ---------------------------------------------------------------------------

    def literal(self, node: Literal, *, negated: bool = False) -> Typed:
        value = node.value
        if node.kind == "int":
            assert isinstance(value, int)
            number = -value if negated else value
            if not INT_MIN <= number <= INT_MAX:
                return self.problem(
                    node.position, "out_of_range", f"{number} is outside the 64-bit integer range"
                )
            return Typed("int", str(number))
        if node.kind == "double":
            assert isinstance(value, float)
            if value == float("inf"):
                return self.problem(node.position, "out_of_range", "the number is too large")
            return Typed("double", repr(-value if negated else value))
        if node.kind == "string":
            assert isinstance(value, str)
            return Typed("string", quote(value))
        if node.kind == "bool":
            return Typed("bool", "true" if value else "false")
        return Typed(t.NULL, "null")

    def name(self, node: Name) -> Typed:
        cel_type = self.fields.get(node.name)
        if cel_type is not None:
            self.referenced.add(node.name)
            return Typed(cel_type, alias(node.name))
        if node.name in _WORD_OPERATORS:
            hint = f"; use `{_WORD_OPERATORS[node.name]}`"
        elif node.name in FUNCTIONS:
            hint = f"; `{node.name}` is a function: write `{node.name}(…)`"
        else:
            hint = suggest(node.name, self.fields)
        return self.problem(node.position, "unknown_field", f"unknown field `{node.name}`{hint}")

    # ---- operators ------------------------------------------------------------------------

    def unary(self, node: Unary, level: int) -> Typed:
        operand = node.operand
        if node.operator == "-" and isinstance(operand, Literal) and operand.kind in t.NUMERIC:
            return self.literal(operand, negated=True)
        inner = self.visit(operand, level + 1)
        if inner.type == t.ERROR:
            return _ERROR
        if node.operator == "!":
            if inner.type in ("bool", t.DYN):
                return Typed("bool", f"!{inner.source}")
            return self.problem(node.position, "type_mismatch", f"`!` needs bool, got {inner.type}")
        if inner.type == "int":  # CEL's own negation wraps around at the int64 minimum
            return Typed("int", f"(0 - {inner.source})")
        if inner.type in ("double", t.DYN):
            return Typed(inner.type, f"-{inner.source}")
        return self.problem(node.position, "type_mismatch", f"`-` needs a number, got {inner.type}")

    def binary(self, node: Binary, left: Typed, right: Typed) -> Typed:
        op, a, b = node.operator, left.type, right.type
        if op in ("&&", "||"):
            if a in ("bool", t.DYN) and b in ("bool", t.DYN):
                return Typed("bool", f"({left.source} {op} {right.source})")
            return self.problem(
                node.position, "type_mismatch", f"`{op}` needs bool operands, got {a} and {b}"
            )
        if op in ("==", "!="):
            common = t.unify(a, b)
            if common is None:
                return self.problem(node.position, "type_mismatch", mismatch(a, b))
            return Typed("bool", f"({widen(left, common)} {op} {widen(right, common)})")
        if op in ("<", "<=", ">", ">="):
            return self.ordering(node, left, right)
        if op == "in":
            return self.membership(node, left, right)
        if op in ("+", "-", "*", "/") and {a, b} == {t.DYN, "double"}:
            # A JSON number may be an int; the double beside it says which arithmetic is meant.
            sides = (f"double({x.source})" if x.type == t.DYN else x.source for x in (left, right))
            return Typed("double", f"({f' {op} '.join(sides)})")
        result = arithmetic_type(op, a, b)
        if result is None:
            return self.problem(
                node.position, "type_mismatch", f"cannot apply `{op}` to {a} and {b}"
            )
        if op == "+" and result not in t.NUMERIC and result not in ("timestamp", "duration"):
            self.concatenations += 1
        if result in t.NUMERIC:
            return Typed(result, f"({widen(left, result)} {op} {widen(right, result)})")
        return Typed(result, f"({left.source} {op} {right.source})")

    def ordering(self, node: Binary, left: Typed, right: Typed) -> Typed:
        a, b = left.type, right.type
        if t.NULL in (a, b):
            return self.problem(
                node.position,
                "type_mismatch",
                f"cannot use `{node.operator}` with null; test emptiness with `== null` or `has()`",
            )
        common = t.unify(a, b)
        if common is None or (common not in t.ORDERED and common != t.DYN):
            message = f"cannot order {a} values" if a == b else mismatch(a, b)
            return self.problem(node.position, "type_mismatch", message)
        return Typed("bool", f"({widen(left, common)} {node.operator} {widen(right, common)})")

    def membership(self, node: Binary, left: Typed, right: Typed) -> Typed:
        element = t.element_of(right.type)
        key = "string" if t.value_of(right.type) is not None else None
        wanted = element or key or (t.DYN if right.type == t.DYN else None)
        if wanted is None:
            hint = (
                "; to look for text inside text use `text.contains(part)`"
                if right.type == "string"
                else ""
            )
            return self.problem(
                node.position,
                "type_mismatch",
                f"`in` needs a list or a map on its right, got {right.type}{hint}",
            )
        if t.unify(left.type, wanted) is None:
            what = "keys" if key else "items"
            return self.problem(
                node.position,
                "type_mismatch",
                f"cannot look for {left.type} among the {what} of {right.type}",
            )
        return Typed("bool", f"({left.source} in {right.source})")

    def conditional(self, node: Conditional, level: int) -> Typed:
        condition = self.visit(node.condition, level + 1)
        then = self.visit(node.then, level + 1)
        otherwise = self.visit(node.otherwise, level + 1)
        if condition.type not in ("bool", t.DYN, t.ERROR):
            return self.problem(
                node.position,
                "type_mismatch",
                f"the condition before `?` must be bool, got {condition.type}",
            )
        if t.ERROR in (condition.type, then.type, otherwise.type):
            return _ERROR
        common = t.unify(then.type, otherwise.type)
        if common is None:
            return self.problem(
                node.position,
                "type_mismatch",
                f"the two branches of `?:` must have the same type, got {then.type} and "
                f"{otherwise.type}",
            )
        return Typed(
            common,
            f"({condition.source} ? {widen(then, common)} : {widen(otherwise, common)})",
        )

    # ---- lists and maps -------------------------------------------------------------------

    def list_literal(self, node: ListLiteral, level: int) -> Typed:
        items = [self.visit(item, level + 1) for item in node.items]
        if any(item.type == t.ERROR for item in items):
            return _ERROR
        element: str | None = None
        for item, item_node in zip(items, node.items, strict=True):
            if item.type not in t.SCALARS and item.type != t.DYN:
                what = "null" if item.type == t.NULL else item.type
                return self.problem(
                    item_node.position, "type_mismatch", f"a list item cannot be {what}"
                )
            common = item.type if element is None else t.unify(element, item.type)
            if common is None:
                return self.problem(
                    item_node.position,
                    "type_mismatch",
                    f"list items must have one type, got {element} and {item.type}",
                )
            element = common
        element = element or t.DYN
        sources = ", ".join(widen(item, element) for item in items)
        return Typed(t.list_of(element), f"[{sources}]")

    def index(self, node: Index, level: int) -> Typed:
        target, index = self.visit(node.target, level + 1), self.visit(node.index, level + 1)
        if t.ERROR in (target.type, index.type):
            return _ERROR
        element, value = t.element_of(target.type), t.value_of(target.type)
        if element is not None:
            result, key = element, "int"
        elif value is not None:
            result, key = value, "string"
        elif target.type == t.DYN:
            result, key = t.DYN, index.type if index.type in ("int", "string") else t.DYN
        else:
            return self.problem(
                node.position,
                "type_mismatch",
                f"only lists and maps can be indexed, got {target.type}",
            )
        if index.type not in (key, t.DYN):
            what = "a list index" if key == "int" else "a map key"
            return self.problem(
                node.index.position, "type_mismatch", f"{what} must be {key}, got {index.type}"
            )
        return Typed(result, f"{target.source}[{index.source}]")

    def select(self, node: Select, level: int) -> Typed:
        target = node.target
        if isinstance(target, Name) and target.name not in self.fields:
            if target.name in _RECORD_NAMES and node.name in self.fields:
                return self.problem(
                    target.position,
                    "unknown_field",
                    f"unknown field `{target.name}`; refer to fields by their name alone: "
                    f"write `{node.name}`",
                )
            return self.name(target)
        checked = self.visit(target, level + 1)
        if checked.type == t.ERROR:
            return _ERROR
        value = t.value_of(checked.type) or (t.DYN if checked.type == t.DYN else None)
        if value is None:
            return self.problem(
                node.position, "unknown_field", f"{checked.type} values have no field `{node.name}`"
            )
        # Written as an index: a key may be a CEL reserved word (`address.package`).
        return Typed(value, f"{checked.source}[{quote(node.name)}]")

    # ---- calls ----------------------------------------------------------------------------

    def call(self, node: Call, level: int) -> Typed:
        if node.target is None and node.name == "has":
            return self.has(node, level)
        if node.name in UNSUPPORTED:
            return self.problem(node.position, "unsupported", UNSUPPORTED[node.name])
        target = None if node.target is None else self.visit(node.target, level + 1)
        args = [self.visit(arg, level + 1) for arg in node.args]
        if target is not None and target.type == t.ERROR:
            return _ERROR
        known = FUNCTIONS if target is None else METHODS
        if node.name not in known:
            return self.unknown_function(node, target)
        label = f"`{node.name}()`"
        if len(args) != known[node.name]:
            count = known[node.name]
            return self.problem(
                node.position,
                "wrong_arguments",
                f"{label} takes {count} argument{'' if count == 1 else 's'}, got {len(args)}",
            )
        if any(arg.type == t.ERROR for arg in args):
            return _ERROR
        if target is not None:
            return self.method(node, target, args)
        return self.function(node, args)

    def has(self, node: Call, level: int) -> Typed:
        """``has(field)`` tests for null; ``has(map_field.key)`` tests for the key."""
        arg = node.args[0] if len(node.args) == 1 else None
        if isinstance(arg, Name):
            checked = self.name(arg)
            if checked.type == t.ERROR:
                return _ERROR
            return Typed("bool", f"({checked.source} != null)")
        if isinstance(arg, Select):
            target = self.visit(arg.target, level + 1)
            if target.type == t.ERROR:
                return _ERROR
            if t.value_of(target.type) is not None or target.type == t.DYN:
                return Typed("bool", f"({quote(arg.name)} in {target.source})")
        return self.problem(
            node.position,
            "wrong_arguments",
            "`has()` takes a field, e.g. `has(close_date)`, or a key of one, "
            "e.g. `has(address.street)`",
        )

    def function(self, node: Call, args: list[Typed]) -> Typed:
        name = node.name
        if name in ("today", "now"):
            if name == "now":
                self.uses_now = True
            else:
                self.uses_today = True
            return Typed("timestamp", f"_{name}")
        (arg,) = args
        accepted = {
            "size": ("string", "list", "map"),
            "int": ("int", "double", "string"),
            "double": ("int", "double", "string"),
            "string": ("int", "double", "string", "bool", "timestamp", "duration"),
            "timestamp": ("string",),
            "duration": ("string",),
        }[name]
        if kind(arg.type) not in (*accepted, t.DYN):
            return self.problem(
                node.position,
                "wrong_arguments",
                f"`{name}()` takes {alternatives(accepted)}, got {arg.type}",
            )
        if name == "size":
            return self.size(arg)
        if name in ("int", "double", "string") and arg.type == name:
            return arg
        if name == "string" and arg.type == "bool":
            return Typed("string", f'({arg.source} ? "true" : "false")')
        if name in ("timestamp", "duration") and isinstance(node.args[0], Literal):
            self.constant_calls.append((node.args[0].position, f"{name}({arg.source})"))
        return Typed(name, f"{name}({arg.source})")

    def size(self, sized: Typed) -> Typed:
        if sized.type in ("string", t.DYN):
            self.uses_chars = True
            return Typed("int", f"int(_chars({sized.source}))")
        return Typed("int", f"size({sized.source})")

    def method(self, node: Call, target: Typed, args: list[Typed]) -> Typed:
        if node.name == "size":
            if kind(target.type) in ("string", "list", "map", t.DYN):
                return self.size(target)
            return self.problem(
                node.position,
                "wrong_arguments",
                f"`size()` works on string, list or map, not {target.type}",
            )
        if target.type not in ("string", t.DYN):
            return self.problem(
                node.position,
                "wrong_arguments",
                f"`{node.name}()` works on string, not {target.type}",
            )
        (arg,) = args
        if arg.type not in ("string", t.DYN):
            return self.problem(
                node.position, "wrong_arguments", f"`{node.name}()` takes string, got {arg.type}"
            )
        return Typed("bool", f"{target.source}.{node.name}({arg.source})")

    def unknown_function(self, node: Call, target: Typed | None) -> Typed:
        if target is None and node.name in self.fields:
            return self.problem(
                node.position, "unknown_function", f"`{node.name}` is a field, not a function"
            )
        if target is None and node.name in METHODS:
            return self.problem(
                node.position,
                "unknown_function",
                f"`{node.name}` is a method: write `text.{node.name}(…)`",
            )
        what = "function" if target is None else "method"
        known = FUNCTIONS if target is None else METHODS
        return self.problem(
            node.position,
            "unknown_function",
            f"unknown {what} `{node.name}`{suggest(node.name, known)}",
        )


def kind(cel_type: str) -> str:
    """``list`` or ``map`` for those types, else the type itself (for argument checks)."""
    if t.element_of(cel_type) is not None:
        return "list"
    if t.value_of(cel_type) is not None:
        return "map"
    return cel_type


def arithmetic_type(op: str, a: str, b: str) -> str | None:
    """The type of ``a op b`` for ``+ - * / %``, or None when CEL does not define it."""
    if t.DYN in (a, b):
        return None if t.NULL in (a, b) else t.DYN
    if a in t.NUMERIC and b in t.NUMERIC:
        if op == "%":
            return "int" if a == b == "int" else None
        return t.unify(a, b)
    if op == "+":
        if a == b == "string":
            return "string"
        if kind(a) == kind(b) == "list":
            return t.unify(a, b)
        if {a, b} == {"timestamp", "duration"}:
            return "timestamp"
        if a == b == "duration":
            return "duration"
    if op == "-":
        if a == b == "timestamp":
            return "duration"
        if (a, b) in (("timestamp", "duration"), ("duration", "duration")):
            return a
    return None


def mismatch(a: str, b: str) -> str:
    """Why ``a`` and ``b`` cannot be compared, with the usual fix for dates typed as text."""
    message = f"cannot compare {a} with {b}"
    if {a, b} == {"timestamp", "string"}:
        return f"{message}; write a date as timestamp('2024-12-31T00:00:00Z')"
    if {a, b} == {"duration", "string"}:
        return f"{message}; write a length of time as duration('36h')"
    return message


def alternatives(names: tuple[str, ...]) -> str:
    """``a``, ``a or b``, ``a, b or c``."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def widen(typed: Typed, to: str) -> str:
    """The CEL text of ``typed`` as a value of type ``to`` (only int → double needs work)."""
    if typed.type == "int" and to == "double":
        text = typed.source
        if text.lstrip("-").isdigit():
            return text + ".0"
        return f"double({text})"
    return typed.source


def alias(field_name: str) -> str:
    """The CEL variable that holds a field's value."""
    return "f_" + field_name


def quote(text: str) -> str:
    """A CEL string literal that means ``text``."""
    escaped = "".join(
        _STRING_ESCAPES.get(c) or (f"\\u{ord(c):04x}" if ord(c) < 0x20 or ord(c) == 0x7F else c)
        for c in text
    )
    return f'"{escaped}"'


def suggest(name: str, known: Mapping[str, object]) -> str:
    """`` (did you mean `x`?)`` when a known name is close to ``name``, else ``""``."""
    matches = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f" (did you mean `{matches[0]}`?)" if matches else ""


def check(source: str, tree: Node, fields: Mapping[str, str]) -> Checked:
    """Type-check ``tree`` (parsed from ``source``); raises ExpressionSyntaxError when too deep."""
    checker = Checker(source, fields)
    typed = checker.visit(tree, 1)
    if checker.concatenations > MAX_CONCATENATIONS:
        checker.problem(
            0,
            "too_large",
            f"the expression joins text or lists more than {MAX_CONCATENATIONS} times",
        )
    return Checked(
        type=typed.type,
        cel_source=typed.source,
        referenced_fields=frozenset(checker.referenced),
        uses_now=checker.uses_now,
        uses_today=checker.uses_today,
        uses_chars=checker.uses_chars,
        constant_calls=checker.constant_calls,
        issues=checker.issues,
    )
