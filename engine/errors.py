"""Errors raised by the pure engines.

Every engine error derives from :class:`EngineError`. Errors about a document
carry a list of :class:`Issue` objects (JSON pointer, machine code, message) so
that callers can show *every* problem at once, not only the first.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Issue:
    """One problem in a document: where (JSON pointer), what (code) and how to fix (message)."""

    path: str
    code: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


class EngineError(Exception):
    """Root of every error raised by ``formloom.engine``."""


class DocumentInvalid(EngineError):
    """A metadata document (or a change between two documents) breaks one or more rules."""

    def __init__(self, issues: Iterable[Issue]) -> None:
        self.issues = list(issues)
        summary = "; ".join(f"{i.path or '/'}: {i.message}" for i in self.issues[:5])
        more = f" (and {len(self.issues) - 5} more)" if len(self.issues) > 5 else ""
        super().__init__(f"{len(self.issues)} problem(s): {summary}{more}")


class RegistryError(EngineError, LookupError):
    """A name was looked up in a registry that does not hold it."""


def pointer(*parts: str | int) -> str:
    """Build a JSON pointer (RFC 6901) from path parts."""
    escaped = (str(p).replace("~", "~0").replace("/", "~1") for p in parts)
    return "".join("/" + p for p in escaped)
