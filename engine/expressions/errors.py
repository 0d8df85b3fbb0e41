"""Errors of the expression engine: problems found when compiling, failures when evaluating."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from formloom.engine.errors import EngineError, Issue


@dataclass(frozen=True)
class ExpressionIssue:
    """One problem in an expression: where (offset, line, column), what (code) and how to fix it.

    ``position`` is the 0-based character offset in the source; ``line`` and
    ``column`` are the same place counted from 1, for people.
    """

    position: int
    line: int
    column: int
    code: str
    message: str

    @classmethod
    def at(cls, source: str, position: int, code: str, message: str) -> ExpressionIssue:
        """An issue at ``position`` of ``source`` (line and column are worked out)."""
        position = max(0, min(position, len(source)))
        before = source[:position]
        line = before.count("\n") + 1
        column = position - (before.rfind("\n") + 1) + 1
        return cls(position, line, column, code, message)

    def to_issue(self, path: str) -> Issue:
        """The same problem as a document :class:`Issue` at JSON pointer ``path``.

        For callers that validate a metadata document holding the expression
        (a formula field's options, a validation rule): the place inside the
        expression goes into the message.
        """
        return Issue(path=path, code=self.code, message=f"{self.message} (column {self.column})")


class ExpressionInvalid(EngineError):
    """An expression does not parse or does not type-check; ``issues`` lists every problem found."""

    def __init__(self, source: str, issues: Iterable[ExpressionIssue]) -> None:
        self.source = source
        self.issues = list(issues)
        listed = "; ".join(f"{i.line}:{i.column}: {i.message}" for i in self.issues[:5])
        more = f" (and {len(self.issues) - 5} more)" if len(self.issues) > 5 else ""
        excerpt = source if len(source) <= 80 else source[:77] + "..."
        super().__init__(f"invalid expression `{excerpt}`: {listed}{more}")


class ExpressionError(EngineError):
    """Evaluating a valid expression failed for these values (division by zero, an empty field…).

    ``code`` is one of ``division_by_zero``, ``null_value``, ``null_result``,
    ``out_of_range``, ``index_out_of_range``, ``missing_key``, ``invalid_argument``,
    ``wrong_value_type`` and ``evaluation_failed``.
    """

    def __init__(self, source: str, code: str, message: str) -> None:
        self.source, self.code, self.message = source, code, message
        super().__init__(f"{message} (in `{source}`)")
