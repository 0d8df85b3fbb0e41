"""Tokens, syntax tree and a recursive-descent parser for the CEL subset formloom supports.

The grammar is CEL's (precedence from loosest to tightest)::

    expression  = or ["?" or ":" expression]
    or          = and {"||" and}
    and         = relation {"&&" relation}
    relation    = sum {("==" | "!=" | "<" | "<=" | ">" | ">=" | "in") sum}
    sum         = product {("+" | "-") product}
    product     = unary {("*" | "/" | "%") unary}
    unary       = {"!" | "-"} member
    member      = primary {"." IDENT ["(" [arguments] ")"] | "[" expression "]"}
    primary     = IDENT ["(" [arguments] ")"] | "(" expression ")"
                | "[" [arguments] "]" | literal

minus maps, bytes and unsigned integers. The parser only builds the tree; what
names and functions mean is the checker's business (:mod:`.checker`).
"""

from __future__ import annotations

from dataclasses import dataclass

#: Longest expression accepted, in characters.
MAX_LENGTH = 2000
#: Deepest nesting accepted (parentheses, operands of operands, arguments…).
MAX_DEPTH = 50


class ExpressionSyntaxError(Exception):
    """Raised inside the parser; :func:`.compile_expression` turns it into an issue."""

    def __init__(self, position: int, code: str, message: str) -> None:
        super().__init__(message)
        self.position, self.code, self.message = position, code, message


# ---- syntax tree -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Literal:
    """``kind`` is ``int``, ``double``, ``string``, ``bool`` or ``null``."""

    position: int
    kind: str
    value: object


@dataclass(frozen=True, slots=True)
class Name:
    position: int
    name: str


@dataclass(frozen=True, slots=True)
class Unary:
    position: int
    operator: str
    operand: Node


@dataclass(frozen=True, slots=True)
class Binary:
    """``position`` is the operator's, the place error messages point at."""

    position: int
    operator: str
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Conditional:
    position: int
    condition: Node
    then: Node
    otherwise: Node


@dataclass(frozen=True, slots=True)
class ListLiteral:
    position: int
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Index:
    position: int
    target: Node
    index: Node


@dataclass(frozen=True, slots=True)
class Select:
    """``target.name`` without a call: field selection, which formloom values do not have."""

    position: int
    target: Node
    name: str


@dataclass(frozen=True, slots=True)
class Call:
    """``name(args)``, or ``target.name(args)`` when ``target`` is set (a method call)."""

    position: int
    name: str
    args: tuple[Node, ...]
    target: Node | None = None


Node = Literal | Name | Unary | Binary | Conditional | ListLiteral | Index | Select | Call


# ---- tokens ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Token:
    """``kind`` is ``int``, ``double``, ``string``, ``ident``, ``op`` or ``end``."""

    kind: str
    text: str
    position: int
    value: object = None


_OPERATORS = (
    "==", "!=", "<=", ">=", "&&", "||",
    "<", ">", "!", "+", "-", "*", "/", "%", "?", ":", ".", ",", "(", ")", "[", "]",
)  # fmt: skip
_MISTAKES = {
    "<>": "use `!=` for 'not equal'",
    "=": "use `==` to compare",
    "&": "use `&&` for 'and'",
    "|": "use `||` for 'or'",
    "{": "maps are not supported",
    "}": "maps are not supported",
}
# Full-width punctuation typed with a Chinese input method, and its ASCII counterpart.
_FULL_WIDTH = dict(
    zip("（）【】，“”‘’！＝＞＜＋－＊／：？％", "()[],\"\"''!=><+-*/:?%", strict=True)
)
_ESCAPES = {
    "\\": "\\", "?": "?", '"': '"', "'": "'", "`": "`",
    "a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
}  # fmt: skip
_HEX_ESCAPES = {"x": 2, "u": 4, "U": 8}
_IDENT_START = frozenset("_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_IDENT_PART = _IDENT_START | frozenset("0123456789")
_DIGITS = frozenset("0123456789")
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


def tokenize(source: str) -> list[Token]:
    """Split ``source`` into tokens, ending with an ``end`` token; raises on bad characters."""
    tokens: list[Token] = []
    i, n = 0, len(source)
    while i < n:
        char = source[i]
        if char in " \t\r\n":
            i += 1
        elif source.startswith("//", i):
            end = source.find("\n", i)
            i = n if end < 0 else end
        elif char in _IDENT_START:
            start = i
            while i < n and source[i] in _IDENT_PART:
                i += 1
            word = source[start:i]
            if i < n and source[i] in "'\"" and word.lower() in ("r", "b"):
                if word.lower() == "b":
                    raise ExpressionSyntaxError(start, "unsupported", "bytes are not supported")
                token, i = _string(source, i, start, raw=True)
                tokens.append(token)
            else:
                tokens.append(Token("ident", word, start))
        elif char in _DIGITS or (char == "." and i + 1 < n and source[i + 1] in _DIGITS):
            token, i = _number(source, i)
            tokens.append(token)
        elif char in "'\"":
            token, i = _string(source, i, i, raw=False)
            tokens.append(token)
        else:
            tokens.append(_operator(source, i))
            i += len(tokens[-1].text)
    tokens.append(Token("end", "", n))
    return tokens


def _operator(source: str, i: int) -> Token:
    for mistake, hint in _MISTAKES.items():
        if source.startswith(mistake, i) and not source.startswith(("==", "&&", "||"), i):
            raise ExpressionSyntaxError(i, "syntax_error", f"unexpected `{mistake}`: {hint}")
    for operator in _OPERATORS:
        if source.startswith(operator, i):
            return Token("op", operator, i)
    char = source[i]
    if char in _FULL_WIDTH:
        hint = f" (use the ASCII `{_FULL_WIDTH[char]}`)"
    elif char.isalpha():
        hint = "; field names are API names such as `close_date`"
    else:
        hint = ""
    raise ExpressionSyntaxError(i, "syntax_error", f"unexpected character `{char}`{hint}")


def _number(source: str, start: int) -> tuple[Token, int]:
    n = len(source)
    i = start
    if source.startswith(("0x", "0X"), i):
        i += 2
        while i < n and source[i] in _HEX_DIGITS:
            i += 1
        if i == start + 2:
            raise ExpressionSyntaxError(
                start, "syntax_error", "`0x` must be followed by hex digits"
            )
        token = Token("int", source[start:i], start, int(source[start + 2 : i], 16))
    else:
        while i < n and source[i] in _DIGITS:
            i += 1
        is_double = False
        if i + 1 < n and source[i] == "." and source[i + 1] in _DIGITS:
            is_double = True
            i += 1
            while i < n and source[i] in _DIGITS:
                i += 1
        if i < n and source[i] in "eE":
            j = i + 1
            if j < n and source[j] in "+-":
                j += 1
            if j < n and source[j] in _DIGITS:
                is_double = True
                i = j
                while i < n and source[i] in _DIGITS:
                    i += 1
        text = source[start:i]
        token = (
            Token("double", text, start, float(text))
            if is_double
            else Token("int", text, start, int(text))
        )
    if i < n and source[i] in "uU":
        raise ExpressionSyntaxError(start, "unsupported", "unsigned integers are not supported")
    if i < n and source[i] in _IDENT_PART:
        raise ExpressionSyntaxError(i, "syntax_error", f"unexpected character `{source[i]}`")
    return token, i


def _string(source: str, i: int, start: int, *, raw: bool) -> tuple[Token, int]:
    """Read the string literal whose opening quote is at ``i`` (``start`` includes a prefix)."""
    quote = source[i] * 3 if source.startswith(source[i] * 3, i) else source[i]
    i += len(quote)
    n = len(source)
    chars: list[str] = []
    while True:
        if i >= n or (len(quote) == 1 and source[i] == "\n"):
            raise ExpressionSyntaxError(start, "syntax_error", "unterminated string")
        if source.startswith(quote, i):
            i += len(quote)
            break
        char = source[i]
        if char == "\\" and not raw:
            escaped, i = _escape(source, i)
            chars.append(escaped)
        else:
            chars.append(char)
            i += 1
    return Token("string", source[start:i], start, "".join(chars)), i


def _escape(source: str, i: int) -> tuple[str, int]:
    """Decode the escape sequence starting with the backslash at ``i``."""
    code = source[i + 1 : i + 2]
    if code in _ESCAPES:
        return _ESCAPES[code], i + 2
    if code in _HEX_ESCAPES:
        digits = source[i + 2 : i + 2 + _HEX_ESCAPES[code]]
        if len(digits) == _HEX_ESCAPES[code] and all(d in _HEX_DIGITS for d in digits):
            value = int(digits, 16)
            if value <= 0x10FFFF and not 0xD800 <= value <= 0xDFFF:
                return chr(value), i + 2 + len(digits)
    elif code in "0123":
        digits = source[i + 1 : i + 4]
        if len(digits) == 3 and all(d in "01234567" for d in digits):
            return chr(int(digits, 8)), i + 4
    raise ExpressionSyntaxError(i, "syntax_error", f"invalid escape sequence `\\{code}`")


# ---- parser ------------------------------------------------------------------------------

_RELATIONS = frozenset(("==", "!=", "<", "<=", ">", ">="))
_WORD_OPERATORS = {"and": "&&", "or": "||"}


class Parser:
    """Builds the syntax tree of one expression; use :func:`parse`."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.tokens = tokenize(source)
        self.index = 0
        self.nesting = 0

    @property
    def token(self) -> Token:
        return self.tokens[self.index]

    def advance(self) -> Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def at(self, text: str) -> bool:
        return self.token.kind in ("op", "ident") and self.token.text == text

    def expect(self, text: str, opened: Token | None = None) -> Token:
        if self.at(text):
            return self.advance()
        closes = ""
        if opened is not None:
            column = opened.position - self.source.rfind("\n", 0, opened.position)
            closes = f" to close the `{opened.text}` at column {column}"
        raise ExpressionSyntaxError(
            self.token.position,
            "syntax_error",
            f"expected `{text}`{closes}, found {describe(self.token)}",
        )

    def parse(self) -> Node:
        if self.token.kind == "end":
            raise ExpressionSyntaxError(0, "syntax_error", "the expression is empty")
        node = self.expression()
        if self.token.kind != "end":
            word = _WORD_OPERATORS.get(self.token.text) if self.token.kind == "ident" else None
            hint = f"; use `{word}`" if word else ""
            raise ExpressionSyntaxError(
                self.token.position, "syntax_error", f"unexpected {describe(self.token)}{hint}"
            )
        return node

    def expression(self) -> Node:
        self.nesting += 1
        if self.nesting > MAX_DEPTH:
            raise ExpressionSyntaxError(
                self.token.position,
                "too_deep",
                f"the expression nests deeper than {MAX_DEPTH} levels",
            )
        condition = self.logical_or()
        if self.at("?"):
            question = self.advance()
            then = self.logical_or()
            self.expect(":", question)
            otherwise = self.expression()
            condition = Conditional(question.position, condition, then, otherwise)
        self.nesting -= 1
        return condition

    def logical_or(self) -> Node:
        node = self.logical_and()
        while self.at("||"):
            operator = self.advance()
            node = Binary(operator.position, "||", node, self.logical_and())
        return node

    def logical_and(self) -> Node:
        node = self.relation()
        while self.at("&&"):
            operator = self.advance()
            node = Binary(operator.position, "&&", node, self.relation())
        return node

    def relation(self) -> Node:
        node = self.sum()
        while (self.token.kind == "op" and self.token.text in _RELATIONS) or self.at("in"):
            operator = self.advance()
            node = Binary(operator.position, operator.text, node, self.sum())
        return node

    def sum(self) -> Node:
        node = self.product()
        while self.token.kind == "op" and self.token.text in ("+", "-"):
            operator = self.advance()
            node = Binary(operator.position, operator.text, node, self.product())
        return node

    def product(self) -> Node:
        node = self.unary()
        while self.token.kind == "op" and self.token.text in ("*", "/", "%"):
            operator = self.advance()
            node = Binary(operator.position, operator.text, node, self.unary())
        return node

    def unary(self) -> Node:
        operators: list[Token] = []
        while self.token.kind == "op" and self.token.text in ("!", "-"):
            operators.append(self.advance())
        node = self.member()
        for operator in reversed(operators):
            node = Unary(operator.position, operator.text, node)
        return node

    def member(self) -> Node:
        node = self.primary()
        while True:
            if self.at("."):
                self.advance()
                name = self.token
                if name.kind != "ident":
                    raise ExpressionSyntaxError(
                        name.position,
                        "syntax_error",
                        f"expected a name after `.`, found {describe(name)}",
                    )
                self.advance()
                if self.at("("):
                    node = Call(name.position, name.text, self.arguments(")"), node)
                else:
                    node = Select(name.position, node, name.text)
            elif self.at("["):
                opened = self.advance()
                index = self.expression()
                self.expect("]", opened)
                node = Index(opened.position, node, index)
            else:
                return node

    def primary(self) -> Node:
        token = self.token
        if token.kind in ("int", "double", "string"):
            self.advance()
            return Literal(token.position, token.kind, token.value)
        if token.kind == "ident":
            if token.text in ("true", "false"):
                self.advance()
                return Literal(token.position, "bool", token.text == "true")
            if token.text == "null":
                self.advance()
                return Literal(token.position, "null", None)
            if token.text == "in":
                raise ExpressionSyntaxError(token.position, "syntax_error", "unexpected `in`")
            self.advance()
            if self.at("("):
                return Call(token.position, token.text, self.arguments(")"))
            return Name(token.position, token.text)
        if self.at("("):
            opened = self.advance()
            node = self.expression()
            self.expect(")", opened)
            return node
        if self.at("["):
            return ListLiteral(token.position, self.arguments("]"))
        raise ExpressionSyntaxError(token.position, "syntax_error", f"unexpected {describe(token)}")

    def arguments(self, closing: str) -> tuple[Node, ...]:
        """Comma-separated expressions after the opening bracket (the current token)."""
        opened = self.advance()
        items: list[Node] = []
        if not self.at(closing):
            items.append(self.expression())
            while self.at(","):
                self.advance()
                items.append(self.expression())
        self.expect(closing, opened)
        return tuple(items)


def describe(token: Token) -> str:
    """How an error message names a token."""
    return "end of expression" if token.kind == "end" else f"`{token.text}`"


def parse(source: str) -> Node:
    """Parse ``source``; raises :class:`ExpressionSyntaxError` on the first problem."""
    if len(source) > MAX_LENGTH:
        raise ExpressionSyntaxError(
            MAX_LENGTH, "too_long", f"the expression is longer than {MAX_LENGTH} characters"
        )
    return Parser(source).parse()
