"""Field types that point at people and groups of the platform: user and team.

Values are platform ids (positive integers). Users and teams arrive with access
control; until then the column is a plain integer without a foreign key, and the
engine checks only the shape of the id. The records service checks that the
user or team exists once those tables exist.
"""

from __future__ import annotations

from typing import Any, ClassVar

from formloom.engine.fields import values
from formloom.engine.fields.base import BASIC_OPERATORS, FieldType, FieldValueError, register
from formloom.engine.fields.storage import Storage


class _PlatformReference(FieldType):
    """The id of a platform principal (a user or a team)."""

    operators = BASIC_OPERATORS
    cel_type = "int"
    #: What the id names, in English and Chinese.
    what_en: ClassVar[str]
    what_zh: ClassVar[str]

    def storage(self, options: dict[str, Any]) -> Storage:
        return Storage("integer")

    def value_schema(self, options: Any) -> dict[str, Any]:
        return {"type": "integer", "minimum": 1, "description": f"id of a platform {self.what_en}"}

    def normalise(self, value: Any, options: Any) -> int:
        principal_id = values.integer(value)
        if principal_id < 1:
            raise FieldValueError(
                "invalid_id",
                f"{principal_id} is not a {self.what_en} id: ids are whole numbers from 1",
                f"{principal_id} 不是有效的{self.what_zh}编号：编号是从 1 开始的整数",
            )
        return principal_id


@register
class UserType(_PlatformReference):
    """A platform user (e.g. an owner or an account manager), by id."""

    name = "user"
    what_en = "user"
    what_zh = "用户"


@register
class TeamType(_PlatformReference):
    """A platform team (e.g. a sales team or a territory), by id."""

    name = "team"
    what_en = "team"
    what_zh = "团队"
