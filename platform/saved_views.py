"""Saved views of a records list: a name for a filter, a sort, columns and a search.

A view belongs to the user who saved it (``owner_id``). A private view is visible to its
owner only (administrators included: it is someone's own working list, not shared data);
a shared view is visible to everyone who may read the entity, and only its owner or an
administrator may change or delete it. Every function checks this itself, inside its
own transaction, whoever calls it.

A view can never hold a request the list would refuse: its definition is checked by
the list's own planner (:func:`~formloom.platform.record_query.plan_list`) with the
saving user's access, so an unknown field, an operator the field's type does not
support or a field hidden from the user is refused when the view is saved, with the
same issues as a list request. (A shared view opened by someone who may see fewer
fields is refused by their list in the same way.)

The stored ``definition`` carries ``version`` (:data:`DEFINITION_VERSION`) so that a
later format can migrate older rows.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Row, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from formloom.engine.errors import Issue
from formloom.platform.access import Access, load_access
from formloom.platform.database import Workspace
from formloom.platform.entity_runtime import load_entity
from formloom.platform.environments import require_environment_in
from formloom.platform.errors import Conflict, Forbidden, Invalid, NotFound
from formloom.platform.list_request import ListRequest
from formloom.platform.principal import Principal
from formloom.platform.record_errors import say
from formloom.platform.record_query import plan_list
from formloom.platform.tables import saved_view

DEFINITION_VERSION = 1
MAX_NAME = 100
#: Views one user may keep per entity (a menu, not a database of queries).
MAX_VIEWS_PER_OWNER = 100


@dataclass(frozen=True)
class ViewDefinition:
    """What a view shows: a structured filter (the list's ``where``), sort keys, columns, search.

    ``columns`` None means the list's default columns.
    """

    filter: Any = None
    sort: list[str] = field(default_factory=list)
    columns: list[str] | None = None
    search: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": DEFINITION_VERSION,
            "filter": self.filter,
            "sort": list(self.sort),
            "columns": None if self.columns is None else list(self.columns),
            "search": self.search,
        }

    @classmethod
    def from_stored(cls, stored: Mapping[str, Any]) -> ViewDefinition:
        """A stored definition (version 1, the only one so far)."""
        columns = stored.get("columns")
        return cls(
            filter=stored.get("filter"),
            sort=list(stored.get("sort") or []),
            columns=None if columns is None else list(columns),
            search=stored.get("search") or None,
        )


@dataclass(frozen=True)
class SavedView:
    """One saved view as a reader sees it; ``mine`` says whether the reader owns it."""

    id: int
    entity: str
    name: str
    owner_id: int
    shared: bool
    definition: ViewDefinition
    created_at: datetime
    updated_at: datetime
    mine: bool
    may_change: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "entity": self.entity,
            "name": self.name,
            "owner_id": self.owner_id,
            "shared": self.shared,
            "definition": self.definition.as_dict(),
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


def list_views(
    workspace: Workspace, *, env: str, entity: str, principal: Principal, lang: str = "en"
) -> list[SavedView]:
    """The views of ``entity`` the principal may use: their own, then the shared ones, by name."""
    with _reading(workspace, env, entity, principal, lang) as conn:
        rows = conn.execute(
            select(saved_view)
            .where(saved_view.c.entity == entity, _visible_to(principal))
            .order_by(saved_view.c.name, saved_view.c.id)
        ).all()
    views = [_view(row, principal) for row in rows]
    return sorted(views, key=lambda view: (not view.mine, view.name))


def get_view(
    workspace: Workspace,
    *,
    env: str,
    entity: str,
    view_id: int,
    principal: Principal,
    lang: str = "en",
) -> SavedView:
    """One view the principal may use; :class:`NotFound` for another user's private view."""
    with _reading(workspace, env, entity, principal, lang) as conn:
        return _view(_visible_row(conn, entity, view_id, principal, lang), principal)


def save_view(
    workspace: Workspace,
    *,
    env: str,
    entity: str,
    name: str,
    definition: ViewDefinition,
    shared: bool = False,
    principal: Principal,
    lang: str = "en",
) -> SavedView:
    """Save the principal's view ``name`` of ``entity``; a view of theirs with that name is
    replaced. :class:`Invalid` when the name or the definition is not valid."""
    owner_id = _owner(principal, lang)
    cleaned = _clean_name(name, lang)
    now = datetime.now(UTC)
    with _writing(workspace, env, entity, principal, lang) as (conn, access):
        stored = _checked(conn, workspace, env, entity, definition, access, lang)
        existing = conn.execute(
            select(saved_view.c.id).where(
                saved_view.c.entity == entity,
                saved_view.c.owner_id == owner_id,
                saved_view.c.name == cleaned,
            )
        ).first()
        values = {"definition": stored, "shared": shared, "updated_at": now}
        if existing is not None:
            conn.execute(update(saved_view).where(saved_view.c.id == existing.id).values(values))
            view_id = int(existing.id)
        else:
            _check_room(conn, entity, owner_id, lang)
            created = conn.execute(
                insert(saved_view)
                .values(entity=entity, name=cleaned, owner_id=owner_id, created_at=now, **values)
                .returning(saved_view.c.id)
            )
            view_id = int(created.scalar_one())
        row = conn.execute(select(saved_view).where(saved_view.c.id == view_id)).one()
        return _view(row, principal)


def update_view(
    workspace: Workspace,
    *,
    env: str,
    entity: str,
    view_id: int,
    principal: Principal,
    name: str | None = None,
    definition: ViewDefinition | None = None,
    shared: bool | None = None,
    lang: str = "en",
) -> SavedView:
    """Rename, redefine or (un)share a view: its owner may, and an administrator a shared one."""
    with _writing(workspace, env, entity, principal, lang) as (conn, access):
        row = _visible_row(conn, entity, view_id, principal, lang)
        _require_change(row, principal, lang)
        values: dict[str, Any] = {"updated_at": datetime.now(UTC)}
        if name is not None:
            values["name"] = _clean_name(name, lang)
        if definition is not None:
            values["definition"] = _checked(conn, workspace, env, entity, definition, access, lang)
        if shared is not None:
            values["shared"] = shared
        conn.execute(update(saved_view).where(saved_view.c.id == view_id).values(values))
        changed = conn.execute(select(saved_view).where(saved_view.c.id == view_id)).one()
        return _view(changed, principal)


def delete_view(
    workspace: Workspace,
    *,
    env: str,
    entity: str,
    view_id: int,
    principal: Principal,
    lang: str = "en",
) -> None:
    """Delete a view: its owner may, and an administrator a shared one."""
    with _writing(workspace, env, entity, principal, lang) as (conn, _access):
        row = _visible_row(conn, entity, view_id, principal, lang)
        _require_change(row, principal, lang)
        conn.execute(delete(saved_view).where(saved_view.c.id == view_id))


# -- transactions --------------------------------------------------------------------------------


@contextmanager
def _reading(
    workspace: Workspace, env: str, entity: str, principal: Principal, lang: str
) -> Iterator[Connection]:
    """A read transaction in ``env`` once the principal may read ``entity``."""
    with workspace.begin(env, readonly=True) as conn:
        _access(conn, workspace, env, entity, principal, lang)
        yield conn


@contextmanager
def _writing(
    workspace: Workspace, env: str, entity: str, principal: Principal, lang: str
) -> Iterator[tuple[Connection, Access]]:
    """A write transaction in ``env`` once the principal may read ``entity``; a concurrent
    save of the same name (the unique index refuses it) is a :class:`Conflict`."""
    try:
        with workspace.begin(env) as conn:
            yield conn, _access(conn, workspace, env, entity, principal, lang)
    except IntegrityError:
        message = say(
            lang,
            "you already have a view with this name (saved at the same moment); choose "
            "another name or save again to replace it",
            "您已有同名视图（刚刚同时保存）；请换一个名称，或再次保存以替换它",
        )
        raise Conflict(message, issues=[Issue("/name", "duplicate", message)]) from None


def _access(
    conn: Connection, workspace: Workspace, env: str, entity: str, principal: Principal, lang: str
) -> Access:
    require_environment_in(conn, env)
    access = load_access(conn, cache_key=workspace.cache_key, env=env, principal=principal)
    access.require(entity, "read", lang=lang)
    return access


# -- checks --------------------------------------------------------------------------------------


def _visible_to(principal: Principal) -> Any:
    """Rows the principal may see: their own views and shared ones."""
    if principal.user_id is None:
        return saved_view.c.shared.is_(True)
    return or_(saved_view.c.owner_id == principal.user_id, saved_view.c.shared.is_(True))


def _visible_row(
    conn: Connection, entity: str, view_id: int, principal: Principal, lang: str
) -> Row[Any]:
    row = conn.execute(
        select(saved_view).where(
            saved_view.c.id == view_id, saved_view.c.entity == entity, _visible_to(principal)
        )
    ).first()
    if row is None:
        raise NotFound(
            say(
                lang,
                f"there is no saved view {view_id} of `{entity}` you may use; it may have been "
                "deleted, or it is another user's private view",
                f"没有您可使用的 `{entity}` 视图 {view_id}；它可能已被删除，或是其他用户的私有视图",
            )
        )
    return row


def _may_change(row: Row[Any], principal: Principal) -> bool:
    """The owner may change their view; an administrator may change a shared one."""
    return bool(row.owner_id == principal.user_id or (row.shared and principal.admin))


def _require_change(row: Row[Any], principal: Principal, lang: str) -> None:
    if _may_change(row, principal):
        return
    message = say(
        lang,
        f"the view `{row.name}` belongs to another user; only they or an administrator may "
        "change or delete it (save your own copy under a new name instead)",
        f"视图 `{row.name}` 属于其他用户，只有其所有者或管理员可以修改或删除；"
        "您可以用新名称另存一份自己的视图",
    )
    raise Forbidden(message, issues=[Issue("", "not_owner", message)])


def _owner(principal: Principal, lang: str) -> int:
    if principal.user_id is None:
        message = say(
            lang,
            "views belong to users; the platform itself cannot save one",
            "视图属于用户，平台自身不能保存视图",
        )
        raise Invalid(message, issues=[Issue("", "no_user", message)])
    return principal.user_id


def _clean_name(name: str, lang: str) -> str:
    cleaned = " ".join(name.split())
    if not 1 <= len(cleaned) <= MAX_NAME:
        message = say(
            lang,
            f"give the view a name of 1 to {MAX_NAME} characters",
            f"请为视图填写 1 到 {MAX_NAME} 个字符的名称",
        )
        raise Invalid(message, issues=[Issue("/name", "invalid_name", message)])
    return cleaned


def _check_room(conn: Connection, entity: str, owner_id: int, lang: str) -> None:
    count = conn.execute(
        select(func.count())
        .select_from(saved_view)
        .where(saved_view.c.entity == entity, saved_view.c.owner_id == owner_id)
    ).scalar_one()
    if count >= MAX_VIEWS_PER_OWNER:
        message = say(
            lang,
            f"you have {count} views of `{entity}`, the most one user may keep; delete some "
            "or replace one by saving under its name",
            f"您已有 {count} 个 `{entity}` 视图，已达上限；请删除一些，或用相同名称保存以替换",
        )
        raise Invalid(message, issues=[Issue("/name", "too_many_views", message)])


def _checked(
    conn: Connection,
    workspace: Workspace,
    env: str,
    entity: str,
    definition: ViewDefinition,
    access: Access,
    lang: str,
) -> dict[str, Any]:
    """The definition to store, once the list's planner accepts it for this principal."""
    issues = _shape_issues(definition, lang)
    if not issues:
        runtime = load_entity(conn, namespace=workspace.cache_key, env=env, name=entity)
        request = ListRequest(
            where=definition.filter,
            sort=list(definition.sort),
            fields=None if definition.columns is None else list(definition.columns),
            search=definition.search,
            at="/definition",
        )
        try:
            plan_list(runtime, request, now=datetime.now(UTC), access=access)
        except Invalid as exc:
            issues = exc.issues
    if issues:
        message = say(
            lang,
            f"the view cannot be saved: {issues[0].message}",
            f"无法保存视图：{issues[0].message}",
        )
        raise Invalid(message, issues=issues)
    return definition.as_dict()


def _shape_issues(definition: ViewDefinition, lang: str) -> list[Issue]:
    """Problems of shape the planner does not look at (it trusts its callers' types)."""
    issues: list[Issue] = []
    if definition.filter is not None and not isinstance(definition.filter, dict):
        message = say(
            lang,
            'the filter must be a condition object such as {"field": "stage", "op": "eq", '
            '"value": "won"}',
            '筛选条件应为条件对象，例如 {"field": "stage", "op": "eq", "value": "won"}',
        )
        issues.append(Issue("/definition/filter", "type", message))
    return issues


def _view(row: Row[Any], principal: Principal) -> SavedView:
    return SavedView(
        id=int(row.id),
        entity=row.entity,
        name=row.name,
        owner_id=int(row.owner_id),
        shared=bool(row.shared),
        definition=ViewDefinition.from_stored(row.definition),
        created_at=row.created_at,
        updated_at=row.updated_at,
        mine=row.owner_id == principal.user_id,
        may_change=_may_change(row, principal),
    )
