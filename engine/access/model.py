"""The role document: what the users holding a role may do, per entity and field.

A role names, per entity, whether its users may create, export and import
records, how far their read, update and delete reach (a :data:`Scope`), and how
each field shows to them (a :data:`FieldMode`). The entry ``"*"`` applies to
every entity the role does not name. A named entry replaces ``"*"`` whole: keys
it leaves out take the defaults below, not the values of ``"*"``.
"""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from formloom.engine.labels import Label
from formloom.engine.names import API_NAME_PATTERN

ROLE_SCHEMA_VERSION = 1
MAX_ENTITIES = 500
MAX_FIELD_RULES = 500

#: The key of the entry that applies to every entity a role does not name.
DEFAULT_ENTITY = "*"

Scope = Literal["none", "own", "team", "all"]
"""Which records an action reaches: none, the user's own (本人), their team's and
sub-teams' (本部门), or every record (全部). Ordered from narrowest to widest."""

FieldMode = Literal["hidden", "read_only", "editable"]
"""How a field shows: not at all, shown but not writable, or writable. Ordered."""

Permission = Literal["manage_metadata", "manage_users", "publish_production"]
"""Special permissions that are not about one entity's records."""

SCOPES: tuple[Scope, ...] = get_args(Scope)
FIELD_MODES: tuple[FieldMode, ...] = get_args(FieldMode)
PERMISSIONS: tuple[Permission, ...] = get_args(Permission)

SCOPE_RANK: dict[str, int] = {scope: rank for rank, scope in enumerate(SCOPES)}
FIELD_MODE_RANK: dict[str, int] = {mode: rank for rank, mode in enumerate(FIELD_MODES)}


class EntityAccess(BaseModel):
    """What a role allows on the records of one entity (or, under ``"*"``, of the others)."""

    # `import` is a Python keyword: the attribute is `import_`, the document says `import`.
    # Strict: `"create": "yes"` is refused as the published schema refuses it, not read as true.
    model_config = ConfigDict(extra="forbid", strict=True, serialize_by_alias=True)

    create: bool = Field(default=False, description="May create records")
    read: Scope = Field(default="none", description="Which records the role may see")
    update: Scope = Field(
        default="none", description="Which records the role may change (at most `read`)"
    )
    delete: Scope = Field(
        default="none", description="Which records the role may delete (at most `read`)"
    )
    export: bool = Field(default=False, description="May export the records it may read")
    import_: bool = Field(
        default=False,
        alias="import",
        description="May import records (creating needs `create`, updating needs `update`)",
    )
    fields: dict[str, FieldMode] = Field(
        default_factory=dict,
        max_length=MAX_FIELD_RULES,
        description="Field name → `hidden` or `read_only` (fields not named are `editable`)",
    )

    def grants_access(self) -> bool:
        """Whether the entry opens the entity at all (some records to read, or creating)."""
        return self.read != "none" or self.create


#: The entry of an entity a role neither names nor covers with ``"*"``: nothing allowed.
NO_ENTITY_ACCESS = EntityAccess()


class RoleDoc(BaseModel):
    """A role: permissions on entities, records and fields, plus special permissions."""

    model_config = ConfigDict(extra="forbid", strict=True, title="role")

    schema_version: int = Field(default=ROLE_SCHEMA_VERSION, ge=1)
    name: str = Field(pattern=API_NAME_PATTERN, description="API name of the role")
    label: Label
    description: str = Field(default="", max_length=2000)
    permissions: list[Permission] = Field(
        default_factory=list, description="Special permissions beyond records (each once)"
    )
    entities: dict[str, EntityAccess] = Field(
        default_factory=dict,
        max_length=MAX_ENTITIES,
        description=(
            'Entity name → what the role allows on it; `"*"` applies to every entity '
            "the role does not name"
        ),
    )

    def access(self, entity: str) -> EntityAccess:
        """The entry that applies to ``entity``: its own, else ``"*"``, else nothing."""
        entry = self.entities.get(entity)
        if entry is None:
            entry = self.entities.get(DEFAULT_ENTITY, NO_ENTITY_ACCESS)
        return entry
