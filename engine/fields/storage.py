"""How a field is stored, as plain data the platform maps to database column types.

The engine never names SQLAlchemy types; it describes storage with
:class:`Storage` and leaves the mapping to ``formloom.platform``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

StorageKind = Literal["string", "text", "integer", "decimal", "boolean", "date", "datetime", "json"]


@dataclass(frozen=True)
class Storage:
    """The physical type of one column.

    ``length`` applies to ``string``; ``precision``/``scale`` to ``decimal``;
    ``references`` names the entity a lookup column points at.
    """

    kind: StorageKind
    length: int | None = None
    precision: int | None = None
    scale: int | None = None
    references: str | None = None

    def describe(self) -> str:
        if self.kind == "string":
            return f"string({self.length})"
        if self.kind == "decimal":
            return f"decimal({self.precision},{self.scale})"
        if self.references:
            return f"reference to `{self.references}`"
        return self.kind
