"""Role assignments: which roles a user holds in which environment.

Assignments are workspace-wide rows ``(user, environment, role name)``; the
role *documents* are metadata published in each environment, and whether a
name matches one is the access layer's concern (an assignment may name a role
that is published later). Names must be API names. Every change is audited
with the roles added and removed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime

from sqlalchemy import Connection, delete, insert, select

from formloom.engine.errors import Issue, pointer
from formloom.platform import security_audit
from formloom.platform.caller import Caller
from formloom.platform.database import Workspace
from formloom.platform.errors import Invalid, NotFound
from formloom.platform.identity import missing_users, roles_of
from formloom.platform.record_errors import say
from formloom.platform.tables import environment, user, user_role
from formloom.platform.user_managers import MANAGEMENT_ENV, require_user_manager

ROLE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


def role_issues(
    conn: Connection, roles: Mapping[str, Sequence[str]], *, lang: str, path: str = "/roles"
) -> list[Issue]:
    """Every problem with ``{environment: [role names]}``: unknown environments, bad names."""
    known = set(conn.execute(select(environment.c.name)).scalars())
    issues = []
    for env, names in roles.items():
        if env not in known:
            issues.append(
                Issue(
                    path + pointer(env),
                    "unknown_environment",
                    say(
                        lang,
                        f"environment `{env}` does not exist; list them with GET /api/environments",
                        f"环境 `{env}` 不存在；可通过 GET /api/environments 查看",
                    ),
                )
            )
        for index, name in enumerate(names):
            if not ROLE_NAME.match(name):
                issues.append(
                    Issue(
                        path + pointer(env, index),
                        "invalid_role_name",
                        say(
                            lang,
                            f"role `{name}` is not a valid role name: use 1-63 lowercase letters, "
                            "digits and underscores, starting with a letter (e.g. `sales_rep`)",
                            f"角色 `{name}` 名称无效：请使用 1-63 个小写字母、数字或下划线，"
                            "以字母开头（如 `sales_rep`）",
                        ),
                    )
                )
    return issues


def write_roles(
    conn: Connection,
    user_id: int,
    env: str,
    wanted: Iterable[str],
    *,
    caller: Caller,
    now: datetime,
) -> list[str]:
    """Make ``wanted`` the user's roles in ``env`` and audit the difference; the roles now."""
    current = set(roles_of(conn, user_id, env))
    target = set(wanted)
    added, removed = sorted(target - current), sorted(current - target)
    if removed:
        conn.execute(
            delete(user_role).where(
                user_role.c.user_id == user_id,
                user_role.c.env == env,
                user_role.c.role.in_(removed),
            )
        )
    if added:
        conn.execute(
            insert(user_role), [{"user_id": user_id, "env": env, "role": r} for r in added]
        )
    if added or removed:
        security_audit.record(
            conn,
            action="roles.changed",
            at=now,
            caller=caller,
            target=f"user:{_login(conn, user_id)}",
            details={"user_id": user_id, "env": env, "added": added, "removed": removed},
        )
    return sorted(target)


def change_roles(
    workspace: Workspace,
    user_id: int,
    env: str,
    *,
    caller: Caller,
    replace: Sequence[str] | None = None,
    add: Sequence[str] = (),
    remove: Sequence[str] = (),
    now: datetime | None = None,
) -> list[str]:
    """Set (``replace``) or change (``add``, ``remove``) a user's roles in ``env``.

    Returns the roles the user holds in ``env`` afterwards.
    """
    now = now or datetime.now(UTC)
    with workspace.begin(MANAGEMENT_ENV) as conn:
        require_user_manager(conn, caller.principal, lang=caller.lang)
        if missing_users(conn, [user_id]):
            raise NotFound(_no_user(user_id, caller))
        _require_environment(conn, env, caller)
        named = [*(replace or ()), *add, *remove]
        issues = role_issues(conn, {env: named}, lang=caller.lang)
        if issues:
            raise Invalid(issues[0].message, issues=issues)
        base = set(replace) if replace is not None else set(roles_of(conn, user_id, env))
        return write_roles(
            conn, user_id, env, (base | set(add)) - set(remove), caller=caller, now=now
        )


def roles_by_environment(conn: Connection, user_id: int) -> dict[str, list[str]]:
    """``{environment: [role names]}`` for one user."""
    query = (
        select(user_role.c.env, user_role.c.role)
        .where(user_role.c.user_id == user_id)
        .order_by(user_role.c.env, user_role.c.role)
    )
    found: dict[str, list[str]] = {}
    for env, role in conn.execute(query):
        found.setdefault(env, []).append(role)
    return found


def list_assignments(workspace: Workspace, env: str, *, caller: Caller) -> list[dict[str, str]]:
    """Every assignment in ``env``: ``{login, role}``, by login then role."""
    with workspace.begin(MANAGEMENT_ENV, readonly=True) as conn:
        require_user_manager(conn, caller.principal, lang=caller.lang)
        _require_environment(conn, env, caller)
        query = (
            select(user.c.login, user_role.c.role)
            .join(user, user.c.id == user_role.c.user_id)
            .where(user_role.c.env == env)
            .order_by(user.c.login, user_role.c.role)
        )
        return [{"login": login, "role": role} for login, role in conn.execute(query)]


def forget_environment(conn: Connection, env: str) -> None:
    """Remove the assignments of an environment being dropped (a new one of that name
    starts without them)."""
    conn.execute(delete(user_role).where(user_role.c.env == env))


def _no_user(user_id: int, caller: Caller) -> str:
    return caller.say(f"user {user_id} does not exist", f"用户 {user_id} 不存在")


def _require_environment(conn: Connection, env: str, caller: Caller) -> None:
    found = conn.execute(select(environment.c.name).where(environment.c.name == env)).first()
    if found is None:
        raise NotFound(
            caller.say(
                f"environment `{env}` does not exist; list them with `formloom env list` "
                "or GET /api/environments",
                f"环境 `{env}` 不存在；可通过 `formloom env list` 或 GET /api/environments 查看",
            )
        )


def _login(conn: Connection, user_id: int) -> str:
    found: str = conn.execute(select(user.c.login).where(user.c.id == user_id)).scalar_one()
    return found
