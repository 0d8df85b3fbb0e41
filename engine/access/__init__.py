"""Roles: the `role` document kind and the union of the roles a user holds."""

from formloom.engine.access.grants import (
    ACTIONS,
    NO_ACCESS,
    EntityGrant,
    Grants,
    UnknownAction,
    union_of,
    widest_scope,
)
from formloom.engine.access.kind import role_dependencies, role_kind
from formloom.engine.access.model import (
    DEFAULT_ENTITY,
    FIELD_MODES,
    PERMISSIONS,
    SCOPES,
    EntityAccess,
    FieldMode,
    Permission,
    RoleDoc,
    Scope,
)

__all__ = [
    "ACTIONS",
    "DEFAULT_ENTITY",
    "FIELD_MODES",
    "NO_ACCESS",
    "PERMISSIONS",
    "SCOPES",
    "EntityAccess",
    "EntityGrant",
    "FieldMode",
    "Grants",
    "Permission",
    "RoleDoc",
    "Scope",
    "UnknownAction",
    "role_dependencies",
    "role_kind",
    "union_of",
    "widest_scope",
]
