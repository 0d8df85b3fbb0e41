"""What a principal may do in one environment, checked inside the service's transaction.

:func:`load_access` reads the principal's role assignments in the environment
with the published `role` documents they name (one statement, or a column of the
statement that authenticates a request: :func:`published_roles_column`), and unites them
(:func:`formloom.engine.access.union_of`). The result, :class:`Access`, answers
every question the services ask:

- may the principal ``create``/``read``/``update``/``delete``/``export``/``import``
  records of an entity at all (:meth:`Access.require`, else :class:`AccessDenied`, 403);
- which rows: the record scope compiles to a SQL clause on ``owner_id``
  (:meth:`Access.scope_clause`; own → ``owner_id = me``, team → ``owner_id IN
  (members of my teams and their sub-teams)``), so a list never filters in
  Python, and the same rule decides a single row (:meth:`Access.allows_row`).
  A record outside the scope is reported as not found: its existence is not leaked;
- which fields: hidden ones never leave the server (:meth:`Access.visible`), and a
  write that sends a hidden or read-only field is refused with an issue per field
  (:meth:`Access.payload_issues`), never silently dropped;
- special permissions (``manage_metadata``, ``manage_users``, ``publish_production``).

Admins (an explicit flag on the user, granted and revoked with an audit entry)
and the platform itself (:data:`~formloom.platform.principal.SYSTEM`) bypass the
checks: their :class:`Access` has no grants.

Role documents are cached per (workspace, environment, role, version): a new
version has a new key, so the cache is correct in any number of processes.
Assignments and team memberships are read on every request, so a change
applies to the very next request.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    String,
    and_,
    bindparam,
    cast,
    false,
    select,
)

from formloom.engine.access import EntityGrant, Grants, RoleDoc, union_of
from formloom.engine.errors import Issue
from formloom.platform.credentials import comma_joined
from formloom.platform.database import Workspace
from formloom.platform.entity_runtime import RuntimeEntity
from formloom.platform.environments import require_environment_in
from formloom.platform.errors import Forbidden
from formloom.platform.identity import members_of, team_and_descendants, team_ids_of
from formloom.platform.principal import Principal
from formloom.platform.record_errors import say
from formloom.platform.tables import meta_document, meta_version, user, user_role

ACTIONS = ("create", "read", "update", "delete", "export", "import")
SPECIAL_PERMISSIONS = ("manage_metadata", "manage_users", "publish_production")
CACHE_LIMIT = 1024

_ACTION_WORDS = {
    "create": ("create", "新建"),
    "read": ("read", "查看"),
    "update": ("change", "修改"),
    "delete": ("delete", "删除"),
    "export": ("export", "导出"),
    "import": ("import", "导入"),
}


class AccessDenied(Forbidden):
    """The principal's roles do not allow the action (403)."""

    code = "permission_denied"


@dataclass
class Access:
    """The permissions of ``principal`` in ``env``; ``grants`` None means no checks (admin)."""

    principal: Principal
    env: str
    grants: Grants | None
    conn: Connection | None = None
    _members: frozenset[int] | None = field(default=None, repr=False)

    @property
    def bypass(self) -> bool:
        return self.grants is None

    @property
    def user_id(self) -> int | None:
        return self.principal.user_id

    # -- entity-level ----------------------------------------------------------------------

    def grant(self, entity: str) -> EntityGrant | None:
        """The union of the principal's roles for ``entity`` (None: everything allowed)."""
        return None if self.grants is None else self.grants.entity(entity)

    def may(self, entity: str, action: str) -> bool:
        grant = self.grant(entity)
        return grant is None or grant.may(action)

    def require(self, entity: str, action: str, *, lang: str = "en") -> None:
        """Raise :class:`AccessDenied` unless the roles allow ``action`` on ``entity`` at all."""
        if self.may(entity, action):
            return
        en, zh = _ACTION_WORDS[action]
        roles = ", ".join(self.grants.roles) if self.grants and self.grants.roles else "none"
        message = say(
            lang,
            f"you may not {en} `{entity}` records in environment `{self.env}` (your roles: "
            f"{roles}); ask an administrator for a role that allows it",
            f"您无权{zh}环境 `{self.env}` 中的 `{entity}` 记录（您的角色：{roles}）；"
            "请联系管理员授予相应角色",
        )
        raise AccessDenied(message, issues=[Issue("", AccessDenied.code, message)])

    def has_permission(self, permission: str) -> bool:
        """A special permission (``manage_metadata``, ``manage_users``, ``publish_production``)."""
        return self.grants is None or permission in self.grants.permissions

    def require_permission(self, permission: str, *, lang: str = "en") -> None:
        if self.has_permission(permission):
            return
        message = say(
            lang,
            f"this needs the `{permission}` permission in environment `{self.env}`; ask an "
            "administrator for a role that grants it",
            f"此操作需要环境 `{self.env}` 中的 `{permission}` 权限；请联系管理员授予相应角色",
        )
        raise AccessDenied(message, issues=[Issue("", AccessDenied.code, message)])

    # -- rows ------------------------------------------------------------------------------

    def owners(self, entity: str, action: str) -> frozenset[int] | None:
        """The owners whose records ``action`` may touch; None for every record."""
        grant = self.grant(entity)
        if grant is None:
            return None
        scope = grant.scope(action)
        if scope == "all":
            return None
        if scope == "none" or self.user_id is None:
            return frozenset()
        if scope == "own":
            return frozenset({self.user_id})
        return self.team_members()

    def team_members(self) -> frozenset[int]:
        """The principal and every member of their teams and those teams' sub-teams."""
        if self._members is None:
            assert self.conn is not None and self.user_id is not None
            teams = team_and_descendants(self.conn, self.principal.team_ids)
            self._members = frozenset(members_of(self.conn, teams) | {self.user_id})
        return self._members

    def scope_clause(self, entity: RuntimeEntity, action: str) -> ColumnElement[bool] | None:
        """The SQL condition on rows ``action`` may touch; None when it is every row."""
        owners = self.owners(entity.name, action)
        if owners is None:
            return None
        column = entity.table.c.owner_id
        if not owners:
            return false()
        if len(owners) == 1:
            return column == next(iter(owners))
        return column.in_(sorted(owners))

    def allows_row(self, entity: str, action: str, row: Mapping[Any, Any]) -> bool:
        owners = self.owners(entity, action)
        return owners is None or row.get("owner_id") in owners

    def may_own(self, entity: str, owner_id: int | None, action: str = "update") -> bool:
        """Whether records of ``entity`` may be given to ``owner_id`` (on create or transfer)."""
        owners = self.owners(entity, action)
        if owners is None:
            return True
        return owner_id is not None and owner_id in owners

    # -- fields ----------------------------------------------------------------------------

    def hidden(self, entity: str) -> frozenset[str]:
        grant = self.grant(entity)
        return frozenset() if grant is None else grant.hidden_fields()

    def read_only(self, entity: str) -> frozenset[str]:
        grant = self.grant(entity)
        return frozenset() if grant is None else grant.read_only_fields()

    def visible(self, entity: str, record: dict[str, Any]) -> dict[str, Any]:
        """``record`` without the fields hidden from the principal."""
        hidden = self.hidden(entity)
        if not hidden:
            return record
        return {k: v for k, v in record.items() if k not in hidden}

    def visible_changes(self, entity: str, changes: dict[str, Any]) -> dict[str, Any]:
        return self.visible(entity, changes)

    def payload_issues(
        self, entity: str, payload: Any, *, at: str = "", lang: str = "en"
    ) -> list[Issue]:
        """One issue per hidden or read-only field the payload sends."""
        if not isinstance(payload, dict) or self.grants is None:
            return []
        hidden, read_only = self.hidden(entity), self.read_only(entity)
        issues = []
        for name in payload:
            if name in hidden or name in read_only:
                mode = "hidden" if name in hidden else "read-only"
                zh = "隐藏" if name in hidden else "只读"
                message = say(
                    lang,
                    f"field `{name}` is {mode} for your roles, so you cannot set it; leave it "
                    "out of the request",
                    f"字段 `{name}` 对您的角色是{zh}的，不能修改；请从请求中去掉该字段",
                )
                issues.append(Issue(f"{at}/{name}", "field_not_writable", message))
        return issues


def system_access(principal: Principal, env: str) -> Access:
    """Access without checks (admins and the platform itself)."""
    return Access(principal=principal, env=env, grants=None)


def load_access(
    conn: Connection,
    *,
    cache_key: str | None,
    env: str,
    principal: Principal,
    roles: Sequence[tuple[str, int]] | None = None,
) -> Access:
    """The principal's permissions in ``env`` (one query for the roles, one for new versions).

    ``cache_key`` (the workspace's) lets the united roles be reused; None reads them
    afresh (callers that do not know the workspace). ``roles`` are the principal's
    published roles in ``env`` with their versions when the caller read them already in
    this transaction (:func:`published_roles_column`); None reads them.
    """
    if not principal.may_enter(env):
        message = (
            f"this credential is bound to environment `{principal.environment}` and cannot be "
            f"used in `{env}`; use a credential issued for `{env}`"
        )
        raise AccessDenied(message, issues=[Issue("", "wrong_environment", message)])
    if principal.admin:
        return Access(principal=principal, env=env, grants=None, conn=conn)
    assert principal.user_id is not None
    if roles is None:
        roles = _published_roles(conn, principal.user_id, env)
    return Access(
        principal=principal,
        env=env,
        grants=_grants(conn, cache_key=cache_key, env=env, roles=roles),
        conn=conn,
    )


def published_roles_column(user_id: ColumnElement[int]) -> ColumnElement[str | None]:
    """The published roles assigned to ``user_id`` in the environment named by the bound
    parameter ``env``, as a column to select with other things: ``name:version`` items,
    comma-separated (NULL for none); :func:`roles_of_column` reads it."""
    item = meta_document.c.name + ":" + cast(meta_document.c.published_version, String)
    return (
        select(comma_joined(item))
        .select_from(_ASSIGNED_ROLES)
        .where(
            user_role.c.user_id == user_id,
            user_role.c.env == bindparam("env", type_=user_role.c.env.type),
            meta_document.c.status == "published",
        )
        .scalar_subquery()
        .label("published_roles")
    )


def roles_of_column(value: str | None) -> tuple[tuple[str, int], ...]:
    """The value of :func:`published_roles_column` as ``(name, version)`` pairs."""
    if not value:
        return ()
    pairs = (item.rpartition(":") for item in value.split(","))
    return tuple(sorted((name, int(version)) for name, _, version in pairs))


#: Role assignments with the role documents they name (role names are API names: no `:`, `,`).
_ASSIGNED_ROLES = user_role.join(
    meta_document,
    and_(meta_document.c.kind == "role", meta_document.c.name == user_role.c.role),
)
#: The published roles of ``user_id`` in ``env``, with their versions (one statement).
_PUBLISHED_ROLES = (
    select(meta_document.c.name, meta_document.c.published_version)
    .select_from(_ASSIGNED_ROLES)
    .where(
        user_role.c.user_id == bindparam("user_id"),
        user_role.c.env == bindparam("env"),
        meta_document.c.status == "published",
    )
)


def _published_roles(conn: Connection, user_id: int, env: str) -> tuple[tuple[str, int], ...]:
    found = conn.execute(_PUBLISHED_ROLES, {"user_id": user_id, "env": env}).all()
    return tuple(sorted((r.name, int(r.published_version)) for r in found))


_cache: dict[tuple[str, str, tuple[tuple[str, int], ...]], Grants] = {}
_lock = threading.Lock()


def _grants(
    conn: Connection, *, cache_key: str | None, env: str, roles: Sequence[tuple[str, int]]
) -> Grants:
    """The union of ``roles`` (published names and versions), from the cache when it can."""
    if not roles:
        return union_of(())
    versions = tuple(sorted(roles))
    key = (cache_key or "", env, versions)
    cached = _cache.get(key) if cache_key is not None else None
    if cached is not None:
        return cached
    bodies = conn.execute(
        select(meta_version.c.name, meta_version.c.version, meta_version.c.body).where(
            meta_version.c.kind == "role",
            meta_version.c.name.in_([name for name, _ in versions]),
        )
    ).all()
    wanted_versions = dict(versions)
    docs = [
        RoleDoc.model_validate(r.body) for r in bodies if wanted_versions.get(r.name) == r.version
    ]
    grants = union_of(docs)
    if cache_key is None:
        return grants
    with _lock:
        if len(_cache) >= CACHE_LIMIT:
            _cache.clear()
        _cache[key] = grants
    return grants


def require_admin(principal: Principal, *, lang: str = "en") -> None:
    """Workspace-wide operations (creating and dropping environments) are for admins."""
    if principal.admin:
        return
    message = say(
        lang,
        "only an administrator may do this; ask one to do it or to make you an administrator",
        "只有管理员可以执行此操作；请联系管理员",
    )
    raise AccessDenied(message, issues=[Issue("", AccessDenied.code, message)])


def require_permission(
    workspace: Workspace, *, env: str, principal: Principal, permission: str, lang: str = "en"
) -> None:
    """Refuse unless ``principal`` holds the special ``permission`` in ``env``."""
    with workspace.begin(env, readonly=True) as conn:
        require_environment_in(conn, env)
        access = load_access(conn, cache_key=workspace.cache_key, env=env, principal=principal)
        access.require_permission(permission, lang=lang)


def require_entry(workspace: Workspace, *, env: str, principal: Principal) -> None:
    """Refuse a credential bound to another environment (files, jobs, OpenAPI of ``env``)."""
    with workspace.begin(env, readonly=True) as conn:
        require_environment_in(conn, env)
        load_access(conn, cache_key=workspace.cache_key, env=env, principal=principal)


def active_user_ids(conn: Connection, user_ids: Iterable[int]) -> set[int]:
    """Which of ``user_ids`` are active users."""
    wanted = list(user_ids)
    if not wanted:
        return set()
    query = select(user.c.id).where(user.c.id.in_(wanted), user.c.active.is_(True))
    return set(conn.execute(query).scalars())


def access_of_user(conn: Connection, *, cache_key: str, env: str, user_id: int | None) -> Access:
    """The access of a user read again from the database (background work done for them).

    No user id: the platform itself. A user who is gone or deactivated meanwhile
    may do nothing.
    """
    if user_id is None:
        return system_access(Principal(user_id=None, login="system", admin=True), env)
    row = conn.execute(
        select(user.c.login, user.c.admin, user.c.active).where(user.c.id == user_id)
    ).first()
    if row is None or not row.active:
        principal = Principal(user_id=user_id, login=row.login if row else "?", admin=False)
        return Access(principal=principal, env=env, grants=union_of(()), conn=conn)
    principal = Principal(
        user_id=user_id,
        login=row.login,
        admin=bool(row.admin),
        credential="job",
        team_ids=team_ids_of(conn, user_id),
    )
    return load_access(conn, cache_key=cache_key, env=env, principal=principal)
