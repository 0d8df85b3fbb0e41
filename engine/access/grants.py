"""What a user may do: the union of the roles they hold.

Roles only ever add access; a user with several roles gets the union:

- **scopes** (read, update, delete): the widest any role gives
  (``none`` < ``own`` < ``team`` < ``all``);
- **create, export, import**: allowed when any role allows it;
- **special permissions**: every permission of every role;
- **field modes**: only the roles that open the entity (read is not ``none``,
  or create is allowed) take part, and a field gets the most permissive mode
  among them (``hidden`` < ``read_only`` < ``editable``), a role that does not
  mention the field counting as ``editable``. So role A (read ``all``,
  ``margin`` hidden) plus role B (read ``own``, no field rules) leave
  ``margin`` editable: B shows it. A field stays hidden only when every role
  that opens the entity hides it.

Each role's entry for an entity is its own entry, else its ``"*"`` entry, else
nothing. Everything here is pure: the platform resolves the user's roles and
teams, then asks :meth:`Grants.entity` what applies.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Final

from formloom.engine.access.model import (
    DEFAULT_ENTITY,
    FIELD_MODE_RANK,
    SCOPE_RANK,
    EntityAccess,
    FieldMode,
    RoleDoc,
    Scope,
)
from formloom.engine.errors import EngineError

ACTIONS: Final = ("create", "read", "update", "delete", "export", "import")
_SCOPED = ("read", "update", "delete")


class UnknownAction(EngineError, ValueError):
    """An action name that is not one of :data:`ACTIONS` (or has no scope)."""


def _no_fields() -> Mapping[str, FieldMode]:
    return MappingProxyType({})


@dataclass(frozen=True)
class EntityGrant:
    """What a user may do on the records of one entity (the union of their roles).

    ``fields`` holds only the fields that are not editable. Field modes matter
    only when the grant opens the entity (:meth:`may` ``read`` or ``create``).
    """

    entity: str
    create: bool = False
    read: Scope = "none"
    update: Scope = "none"
    delete: Scope = "none"
    export: bool = False
    import_: bool = False
    fields: Mapping[str, FieldMode] = field(default_factory=_no_fields, hash=False)

    def field_mode(self, field: str) -> FieldMode:
        """How ``field`` shows to the user: ``hidden``, ``read_only`` or ``editable``."""
        return self.fields.get(field, "editable")

    def hidden_fields(self) -> frozenset[str]:
        return frozenset(name for name, mode in self.fields.items() if mode == "hidden")

    def read_only_fields(self) -> frozenset[str]:
        return frozenset(name for name, mode in self.fields.items() if mode == "read_only")

    def may(self, action: str) -> bool:
        """Whether ``action`` (one of :data:`ACTIONS`) is allowed on some records."""
        if action in _SCOPED:
            return self.scope(action) != "none"
        if action == "create":
            return self.create
        if action == "export":
            return self.export
        if action == "import":
            return self.import_
        raise UnknownAction(_unknown_action_message(action, ACTIONS))

    def scope(self, action: str) -> Scope:
        """Which records ``action`` reaches: ``read``, ``update``, ``delete``, or ``export``.

        An export holds the records the user may read, so its scope is the read
        scope when export is allowed. ``create`` and ``import`` have no scope.
        """
        if action == "read":
            return self.read
        if action == "update":
            return self.update
        if action == "delete":
            return self.delete
        if action == "export":
            return self.read if self.export else "none"
        if action in ACTIONS:
            raise UnknownAction(
                f"`{action}` has no scope (it is allowed or not); ask may({action!r}) instead"
            )
        raise UnknownAction(_unknown_action_message(action, ACTIONS))


@dataclass(frozen=True)
class Grants:
    """Everything a user may do: the union of their roles.

    ``entities`` holds the grants of the entities some role names; every other
    entity gets ``default`` (the union of the roles' ``"*"`` entries). Ask
    :meth:`entity` rather than reading either.
    """

    roles: tuple[str, ...]
    permissions: frozenset[str]
    entities: Mapping[str, EntityGrant] = field(
        default_factory=lambda: MappingProxyType({}), hash=False
    )
    default: EntityGrant = field(default_factory=lambda: EntityGrant(DEFAULT_ENTITY))

    def entity(self, name: str) -> EntityGrant:
        """The grant for entity ``name`` (``"*"`` entries cover the entities roles do not name)."""
        found = self.entities.get(name)
        return found if found is not None else replace(self.default, entity=name)


#: The grants of a user without roles: nothing.
NO_ACCESS: Final = Grants(roles=(), permissions=frozenset())


def union_of(roles: Iterable[RoleDoc]) -> Grants:
    """The union of ``roles`` (see the module docstring for the rules)."""
    docs = tuple(roles)
    named = sorted({name for doc in docs for name in doc.entities} - {DEFAULT_ENTITY})
    return Grants(
        roles=tuple(dict.fromkeys(doc.name for doc in docs)),
        permissions=frozenset(p for doc in docs for p in doc.permissions),
        entities=MappingProxyType(
            {name: _entity_union(name, [doc.access(name) for doc in docs]) for name in named}
        ),
        default=_entity_union(DEFAULT_ENTITY, [doc.access(DEFAULT_ENTITY) for doc in docs]),
    )


def widest_scope(scopes: Iterable[Scope]) -> Scope:
    """The widest of ``scopes`` (``none`` when there are none)."""
    return max(scopes, key=SCOPE_RANK.__getitem__, default="none")


def _entity_union(entity: str, entries: Sequence[EntityAccess]) -> EntityGrant:
    opening = [entry for entry in entries if entry.grants_access()]
    named_fields = sorted({name for entry in opening for name in entry.fields})
    fields: dict[str, FieldMode] = {}
    for name in named_fields:
        modes = (entry.fields.get(name, "editable") for entry in opening)
        mode = max(modes, key=FIELD_MODE_RANK.__getitem__)
        if mode != "editable":
            fields[name] = mode
    return EntityGrant(
        entity=entity,
        create=any(entry.create for entry in entries),
        read=widest_scope(entry.read for entry in entries),
        update=widest_scope(entry.update for entry in entries),
        delete=widest_scope(entry.delete for entry in entries),
        export=any(entry.export for entry in entries),
        import_=any(entry.import_ for entry in entries),
        fields=MappingProxyType(fields),
    )


def _unknown_action_message(action: str, allowed: Sequence[str]) -> str:
    close = difflib.get_close_matches(action, allowed, n=1)
    hint = f" (did you mean `{close[0]}`?)" if close else ""
    return f"unknown action `{action}`{hint}; use one of: {', '.join(allowed)}"
