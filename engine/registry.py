"""A small typed registry of named classes (field types, document kinds, job types).

Lookups of unknown names fail loudly with the names that do exist; tests can
take a snapshot and restore it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Generic, Protocol, TypeVar

from formloom.engine.errors import RegistryError


class Named(Protocol):
    @property
    def name(self) -> str: ...


T = TypeVar("T", bound=Named)


class Registry(Generic[T]):
    """Holds one instance per name; ``what`` names the kind of thing in error messages."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._items: dict[str, T] = {}

    def register(self, item: T) -> T:
        if item.name in self._items:
            raise RegistryError(f"{self.what} `{item.name}` is already registered")
        self._items[item.name] = item
        return item

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise RegistryError(self.unknown_message(name)) from None

    def unknown_message(self, name: str) -> str:
        close = difflib.get_close_matches(name, self._items, n=1)
        hint = f" (did you mean `{close[0]}`?)" if close else ""
        known = ", ".join(sorted(self._items))
        return f"unknown {self.what} `{name}`{hint}; known: {known}"

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def names(self) -> list[str]:
        return sorted(self._items)

    def __iter__(self) -> Iterator[T]:
        return iter(list(self._items.values()))

    @contextmanager
    def restored_after(self) -> Iterator[Registry[T]]:
        """Let a test register extra items; the registry is restored when the block ends."""
        saved = dict(self._items)
        try:
            yield self
        finally:
            self._items = saved
