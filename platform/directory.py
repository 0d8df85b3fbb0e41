"""The people and teams a signed-in user may pick in forms (user, team and approver pickers).

Every user of an environment sees the directory of colleagues: active users' ids,
logins and display names, and teams' ids and labels, searched by a few letters.
Nothing else of an account (email, mobile, roles, admin flag) is shown here; the
administration API (:mod:`formloom.platform.users`) is for user managers.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, func, or_, select

from formloom.platform.access import require_entry
from formloom.platform.database import Workspace
from formloom.platform.identity import display_name
from formloom.platform.principal import Principal
from formloom.platform.tables import team, user

#: The most entries one search returns (a picker shows a short list).
MAX_LIMIT = 50


def search_users(
    workspace: Workspace,
    *,
    env: str,
    principal: Principal,
    q: str | None = None,
    ids: list[int] | None = None,
    limit: int = 20,
    lang: str = "en",
) -> dict[str, Any]:
    """Active users whose login or name contains ``q`` (or with these ``ids``), by name.

    ``{items: [{id, name, login}]}``; ``name`` is the display name in ``lang``.
    """
    require_entry(workspace, env=env, principal=principal)
    statement = select(user.c.id, user.c.login, user.c.display_name_en, user.c.display_name_zh)
    statement = statement.where(user.c.active.is_(True))
    if ids is not None:
        statement = statement.where(user.c.id.in_(ids))
    statement = _matching(
        statement, q, user.c.login, user.c.display_name_en, user.c.display_name_zh
    )
    with workspace.begin(readonly=True) as conn:
        rows = conn.execute(statement.order_by(user.c.login).limit(_limit(limit))).all()
    items = [
        {
            "id": row.id,
            "login": row.login,
            "name": display_name(row.display_name_en, row.display_name_zh, lang) or row.login,
        }
        for row in rows
    ]
    return {"items": items}


def search_teams(
    workspace: Workspace,
    *,
    env: str,
    principal: Principal,
    q: str | None = None,
    ids: list[int] | None = None,
    limit: int = 20,
    lang: str = "en",
) -> dict[str, Any]:
    """Teams whose name or label contains ``q`` (or with these ``ids``).

    ``{items: [{id, name}]}``; ``name`` is the label in ``lang``.
    """
    require_entry(workspace, env=env, principal=principal)
    statement = select(team.c.id, team.c.name, team.c.label_en, team.c.label_zh)
    if ids is not None:
        statement = statement.where(team.c.id.in_(ids))
    statement = _matching(statement, q, team.c.name, team.c.label_en, team.c.label_zh)
    with workspace.begin(readonly=True) as conn:
        rows = conn.execute(statement.order_by(team.c.name).limit(_limit(limit))).all()
    items = [
        {"id": row.id, "name": (row.label_zh if lang == "zh" else row.label_en) or row.name}
        for row in rows
    ]
    return {"items": items}


def _matching(statement: Select[Any], q: str | None, *columns: Any) -> Select[Any]:
    """Rows where any of ``columns`` contains ``q`` (case-insensitively); all rows for no ``q``.

    ``q`` is a bound value; ``%`` and ``_`` in it are matched literally.
    """
    text = (q or "").strip().casefold()
    if not text:
        return statement
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    pattern = f"%{escaped}%"
    return statement.where(or_(*(func.lower(c).like(pattern, escape="\\") for c in columns)))


def _limit(limit: int) -> int:
    return max(1, min(limit, MAX_LIMIT))
