"""Users: the people who log in, and what administrators change about them.

Logins are stored case-folded (``Alice`` and ``alice`` are one user). Users are
deactivated, never deleted: audit entries and record owners keep pointing at
them, and deactivation revokes every session, token and key at once (the
authentication also checks ``active`` on every request). The last active
administrator can be neither deactivated nor demoted, and nobody deactivates or
demotes themselves, so a workspace cannot lock its administrators out.
Every change is audited (:mod:`formloom.platform.security_audit`) with the
values before and after, never a password.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypedDict

from sqlalchemy import Connection, Row, func, insert, literal, or_, select, update

from formloom.engine.errors import Issue
from formloom.engine.fields.base import FieldValueError
from formloom.engine.fields.values import email as normalise_email
from formloom.engine.fields.values import phone as normalise_phone
from formloom.platform import credentials, login_throttle, security_audit
from formloom.platform.caller import Caller
from formloom.platform.database import Workspace
from formloom.platform.errors import Conflict, Invalid, NotFound
from formloom.platform.passwords import hash_password, password_issues
from formloom.platform.record_errors import say
from formloom.platform.role_assignments import role_issues, roles_by_environment, write_roles
from formloom.platform.tables import team_member, user
from formloom.platform.teams import missing_teams, set_user_teams
from formloom.platform.user_managers import MANAGEMENT_ENV, require_user_manager

LOGIN_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._@-]{0,99}$")
LANGUAGES = ("en", "zh")
NAME_MAX = 100
MAX_LIMIT = 500
PROFILE_FIELDS = ("display_name_en", "display_name_zh", "email", "mobile", "manager_id", "language")


@dataclass(frozen=True)
class NewUser:
    """A user to create; without a password the user cannot log in until one is set."""

    login: str
    password: str | None = field(default=None, repr=False)
    display_name_en: str = ""
    display_name_zh: str = ""
    email: str | None = None
    mobile: str | None = None
    manager_id: int | None = None
    language: str = "en"
    admin: bool = False
    team_ids: Sequence[int] = ()
    roles: Mapping[str, Sequence[str]] = field(default_factory=dict)


class UserChanges(TypedDict, total=False):
    """Fields a PATCH may change (a missing key leaves the field alone)."""

    display_name_en: str
    display_name_zh: str
    email: str | None
    mobile: str | None
    manager_id: int | None
    language: str
    team_ids: list[int]


@dataclass(frozen=True)
class UserQuery:
    """Filters of the user list; ``q`` matches login, names and email (substring)."""

    q: str | None = None
    active: bool | None = None
    admin: bool | None = None
    team_id: int | None = None
    limit: int = 100
    after: int | None = None


def normalise_login(login: str) -> str:
    """The stored form of a login: trimmed and case-folded."""
    return login.strip().casefold()


def create_user(
    workspace: Workspace, new: NewUser, *, caller: Caller, now: datetime | None = None
) -> dict[str, Any]:
    """Create a user with teams and role assignments; the user's JSON (with roles)."""
    now = now or datetime.now(UTC)
    login = normalise_login(new.login)
    profile = {name: getattr(new, name) for name in PROFILE_FIELDS}
    with workspace.begin(MANAGEMENT_ENV) as conn:
        require_user_manager(conn, caller.principal, lang=caller.lang)
        cleaned, issues = _clean_profile(conn, profile, None, caller)
        issues = _login_issues(login, caller) + issues
        if new.password is not None:
            issues += password_issues(new.password, login=login, lang=caller.lang)
        issues += _team_issues(conn, new.team_ids, caller)
        issues += role_issues(conn, new.roles, lang=caller.lang)
        if issues:
            raise Invalid(issues[0].message, issues=issues)
        if _user_id(conn, login) is not None:
            message = caller.say(
                f"login `{login}` is taken; choose another", f"登录名 `{login}` 已被使用；请换一个"
            )
            raise Conflict(message, issues=[Issue("/login", "login_taken", message)])
        password_hash = None
        if new.password is not None:
            password_hash = hash_password(new.password, profile=workspace.settings.password_hashing)
        user_id = conn.execute(
            insert(user)
            .values(
                login=login,
                active=True,
                admin=new.admin,
                password_hash=password_hash,
                password_changed_at=now if password_hash else None,
                created_at=now,
                updated_at=now,
                **cleaned,
            )
            .returning(user.c.id)
        ).scalar_one()
        set_user_teams(conn, user_id, new.team_ids)
        security_audit.record(
            conn,
            action="user.created",
            at=now,
            caller=caller,
            target=f"user:{login}",
            details={
                "id": user_id,
                **cleaned,
                "admin": new.admin,
                "team_ids": sorted(set(new.team_ids)),
                "password_set": password_hash is not None,
            },
        )
        if new.admin:
            _audit_admin(conn, user_id, login, True, caller, now)
        for env, names in new.roles.items():
            write_roles(conn, user_id, env, names, caller=caller, now=now)
        return user_json(conn, _row(conn, user_id, caller), with_roles=True)


def get_user(workspace: Workspace, user_id: int, *, caller: Caller) -> dict[str, Any]:
    """One user's JSON with teams and role assignments."""
    with workspace.begin(MANAGEMENT_ENV, readonly=True) as conn:
        require_user_manager(conn, caller.principal, lang=caller.lang)
        return user_json(conn, _row(conn, user_id, caller), with_roles=True)


def get_own_user(workspace: Workspace, *, caller: Caller) -> dict[str, Any] | None:
    """The caller's own JSON with teams and roles (None for the platform itself)."""
    if caller.principal.user_id is None:
        return None
    with workspace.begin(readonly=True) as conn:
        return user_json(conn, _row(conn, caller.principal.user_id, caller), with_roles=True)


def list_users(workspace: Workspace, query: UserQuery, *, caller: Caller) -> dict[str, Any]:
    """A page of users by id: ``{items, next}`` (``next``: pass as ``after``)."""
    limit = max(1, min(query.limit, MAX_LIMIT))
    statement = select(user).order_by(user.c.id).limit(limit + 1)
    if query.q:
        pattern = f"%{query.q.strip().casefold()}%"
        statement = statement.where(
            or_(
                user.c.login.like(pattern),
                func.lower(user.c.display_name_en).like(pattern),
                user.c.display_name_zh.like(f"%{query.q.strip()}%"),
                func.lower(user.c.email).like(pattern),
            )
        )
    if query.active is not None:
        statement = statement.where(user.c.active == query.active)
    if query.admin is not None:
        statement = statement.where(user.c.admin == query.admin)
    if query.team_id is not None:
        members = select(team_member.c.user_id).where(team_member.c.team_id == query.team_id)
        statement = statement.where(user.c.id.in_(members))
    if query.after is not None:
        statement = statement.where(user.c.id > query.after)
    with workspace.begin(MANAGEMENT_ENV, readonly=True) as conn:
        require_user_manager(conn, caller.principal, lang=caller.lang)
        rows = conn.execute(statement).all()
        shown = rows[:limit]
        teams: dict[int, list[int]] = {row.id: [] for row in shown}
        memberships = select(team_member.c.user_id, team_member.c.team_id).where(
            team_member.c.user_id.in_(list(teams))
        )
        for member_id, team_id in conn.execute(memberships.order_by(team_member.c.team_id)):
            teams[member_id].append(team_id)
        items = [user_json(conn, row, team_ids=teams[row.id]) for row in shown]
    more = len(rows) > limit
    return {"items": items, "next": str(items[-1]["id"]) if more else None}


def update_user(
    workspace: Workspace,
    user_id: int,
    changes: UserChanges,
    *,
    caller: Caller,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Change a user's profile and teams; audits every changed value."""
    now = now or datetime.now(UTC)
    with workspace.begin(MANAGEMENT_ENV) as conn:
        require_user_manager(conn, caller.principal, lang=caller.lang)
        before = _row(conn, user_id, caller)
        given = {k: v for k, v in changes.items() if k in PROFILE_FIELDS}
        cleaned, issues = _clean_profile(conn, given, user_id, caller)
        team_ids = changes.get("team_ids")
        if team_ids is not None:
            issues += _team_issues(conn, team_ids, caller)
        if issues:
            raise Invalid(issues[0].message, issues=issues)
        changed = {
            k: [before._mapping[k], v] for k, v in cleaned.items() if before._mapping[k] != v
        }
        details: dict[str, Any] = {"changes": changed}
        if team_ids is not None:
            added, removed = set_user_teams(conn, user_id, team_ids)
            if added or removed:
                details["teams"] = {"added": added, "removed": removed}
        if changed or len(details) > 1:
            conn.execute(
                update(user)
                .where(user.c.id == user_id)
                .values(updated_at=now, **{k: v for k, (_, v) in changed.items()})
            )
            security_audit.record(
                conn,
                action="user.updated",
                at=now,
                caller=caller,
                target=f"user:{before.login}",
                details=details,
            )
        return user_json(conn, _row(conn, user_id, caller), with_roles=True)


def set_active(
    workspace: Workspace,
    user_id: int,
    active: bool,
    *,
    caller: Caller,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Activate or deactivate a user. Deactivation revokes every credential of the user."""
    now = now or datetime.now(UTC)
    with workspace.begin(MANAGEMENT_ENV) as conn:
        require_user_manager(conn, caller.principal, lang=caller.lang)
        found = _row(conn, user_id, caller)
        if found.active != active:
            details: dict[str, Any] = {}
            if not active:
                _refuse_self(found, caller, "deactivate yourself", "停用自己")
                if found.admin:
                    _refuse_last_admin(conn, found, caller)
                details["credentials_revoked"] = credentials.revoke_all(conn, user_id, now=now)
            else:
                login_throttle.record_attempt(
                    conn, login=found.login, ip=caller.ip, outcome="reset", now=now
                )
            conn.execute(
                update(user).where(user.c.id == user_id).values(active=active, updated_at=now)
            )
            security_audit.record(
                conn,
                action="user.activated" if active else "user.deactivated",
                at=now,
                caller=caller,
                target=f"user:{found.login}",
                details=details,
            )
        return user_json(conn, _row(conn, user_id, caller), with_roles=True)


def set_admin(
    workspace: Workspace,
    user_id: int,
    admin: bool,
    *,
    caller: Caller,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Grant or revoke the administrator flag (audited as ``admin.granted``/``admin.revoked``)."""
    now = now or datetime.now(UTC)
    with workspace.begin(MANAGEMENT_ENV) as conn:
        require_user_manager(conn, caller.principal, lang=caller.lang)
        found = _row(conn, user_id, caller)
        if found.admin != admin:
            if not admin:
                _refuse_self(found, caller, "revoke your own admin", "撤销自己的管理员权限")
                if found.active:
                    _refuse_last_admin(conn, found, caller)
            conn.execute(
                update(user).where(user.c.id == user_id).values(admin=admin, updated_at=now)
            )
            _audit_admin(conn, user_id, found.login, admin, caller, now)
        return user_json(conn, _row(conn, user_id, caller), with_roles=True)


def user_id_for_login(conn: Connection, login: str, *, lang: str = "en") -> int:
    """The id of the user with ``login`` (any case); :class:`NotFound` naming it otherwise."""
    found = _user_id(conn, normalise_login(login))
    if found is None:
        raise NotFound(
            say(
                lang,
                f"no user has the login `{login}`; list users with `formloom users list`",
                f"没有登录名为 `{login}` 的用户；可通过 `formloom users list` 查看",
            )
        )
    return found


def count_users(workspace: Workspace) -> int:
    """How many users exist (active or not)."""
    with workspace.begin(readonly=True) as conn:
        return int(conn.execute(select(func.count()).select_from(user)).scalar_one())


def user_json(
    conn: Connection,
    row: Row[Any],
    *,
    with_roles: bool = False,
    team_ids: list[int] | None = None,
) -> dict[str, Any]:
    """A user as the API shows it: never the password hash."""
    if team_ids is None:
        teams = select(team_member.c.team_id).where(team_member.c.user_id == row.id)
        team_ids = sorted(conn.execute(teams).scalars())
    found: dict[str, Any] = {
        "id": row.id,
        "login": row.login,
        "display_name": {"en": row.display_name_en, "zh": row.display_name_zh},
        "email": row.email,
        "mobile": row.mobile,
        "manager_id": row.manager_id,
        "language": row.language,
        "active": row.active,
        "admin": row.admin,
        "password_set": row.password_hash is not None,
        "team_ids": team_ids,
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
        "password_changed_at": (
            row.password_changed_at.isoformat() if row.password_changed_at else None
        ),
    }
    if with_roles:
        found["roles"] = roles_by_environment(conn, row.id)
    return found


def load_user(conn: Connection, user_id: int, caller: Caller) -> Row[Any]:
    """The user's row; :class:`NotFound` when there is none."""
    return _row(conn, user_id, caller)


def _clean_profile(
    conn: Connection, values: Mapping[str, Any], user_id: int | None, caller: Caller
) -> tuple[dict[str, Any], list[Issue]]:
    """Normalised profile values and every problem with them."""
    cleaned: dict[str, Any] = {}
    issues: list[Issue] = []
    for name in ("display_name_en", "display_name_zh"):
        if name in values:
            text = (values[name] or "").strip()
            if len(text) > NAME_MAX:
                issues.append(
                    Issue(
                        f"/{name}",
                        "too_long",
                        caller.say(
                            f"the name has {len(text)} characters; at most {NAME_MAX} allowed",
                            f"名称有 {len(text)} 个字符；最多 {NAME_MAX} 个",
                        ),
                    )
                )
            cleaned[name] = text
    for name, normalise in (("email", normalise_email), ("mobile", _mobile)):
        if name in values:
            raw = values[name]
            if raw is None or (isinstance(raw, str) and not raw.strip()):
                cleaned[name] = None
                continue
            try:
                cleaned[name] = normalise(raw)
            except FieldValueError as exc:
                issues.append(Issue(f"/{name}", exc.code, exc.message(caller.lang)))
    if "language" in values:
        if values["language"] not in LANGUAGES:
            issues.append(
                Issue(
                    "/language",
                    "unknown_language",
                    caller.say(
                        f"language `{values['language']}` is not one of {', '.join(LANGUAGES)}",
                        f"语言 `{values['language']}` 不是 {', '.join(LANGUAGES)} 之一",
                    ),
                )
            )
        cleaned["language"] = values["language"]
    if "manager_id" in values:
        cleaned["manager_id"] = values["manager_id"]
        if values["manager_id"] is not None:
            issues += _manager_issues(conn, values["manager_id"], user_id, caller)
    return cleaned, issues


def _mobile(value: Any) -> str:
    return normalise_phone(value, region="CN")


def _manager_issues(
    conn: Connection, manager_id: int, user_id: int | None, caller: Caller
) -> list[Issue]:
    chain = _manager_chain(conn, manager_id)
    if not chain:
        message = caller.say(f"user {manager_id} does not exist", f"用户 {manager_id} 不存在")
        return [Issue("/manager_id", "unknown_user", message)]
    ids = [i for i, _ in chain]
    if user_id is None or user_id not in ids:
        return []
    loop = " → ".join(login for _, login in chain[: ids.index(user_id) + 1])
    message = caller.say(
        f"user {user_id} cannot report to {manager_id}: the managers would form a loop ({loop})",
        f"用户 {user_id} 不能以 {manager_id} 为上级：上级关系会形成循环（{loop}）",
    )
    return [Issue("/manager_id", "manager_cycle", message)]


def _manager_chain(conn: Connection, user_id: int) -> list[tuple[int, str]]:
    """``user_id`` and its managers up the chain: ``[(id, login), …]`` (empty: no such user)."""
    chain = (
        select(user.c.id, user.c.login, user.c.manager_id, literal(0).label("depth"))
        .where(user.c.id == user_id)
        .cte("managers", recursive=True)
    )
    chain = chain.union_all(
        select(user.c.id, user.c.login, user.c.manager_id, chain.c.depth + 1).where(
            user.c.id == chain.c.manager_id, chain.c.depth < 1000
        )
    )
    rows = conn.execute(select(chain.c.id, chain.c.login).order_by(chain.c.depth)).all()
    return [(row.id, row.login) for row in rows]


def _login_issues(login: str, caller: Caller) -> list[Issue]:
    if LOGIN_PATTERN.match(login):
        return []
    message = caller.say(
        f"login `{login}` is not valid: use 1-100 letters, digits, dots, dashes, underscores "
        "or @, starting with a letter or digit (e.g. `zhang.wei`)",
        f"登录名 `{login}` 无效：请使用 1-100 个字母、数字、点、连字符、下划线或 @，"
        "以字母或数字开头（如 `zhang.wei`）",
    )
    return [Issue("/login", "invalid_login", message)]


def _team_issues(conn: Connection, team_ids: Sequence[int], caller: Caller) -> list[Issue]:
    return [
        Issue(
            "/team_ids", "unknown_team", caller.say(f"team {t} does not exist", f"团队 {t} 不存在")
        )
        for t in missing_teams(conn, team_ids)
    ]


def _refuse_self(found: Row[Any], caller: Caller, what_en: str, what_zh: str) -> None:
    if caller.principal.user_id == found.id:
        raise Conflict(
            caller.say(
                f"you cannot {what_en}; ask another administrator",
                f"不能{what_zh}；请联系其他管理员",
            )
        )


def _refuse_last_admin(conn: Connection, found: Row[Any], caller: Caller) -> None:
    others = select(func.count()).where(
        user.c.admin.is_(True), user.c.active.is_(True), user.c.id != found.id
    )
    if conn.execute(others).scalar_one() == 0:
        raise Conflict(
            caller.say(
                f"`{found.login}` is the last active administrator; grant admin to another user "
                "first",
                f"`{found.login}` 是最后一位在用的管理员；请先授予其他用户管理员权限",
            )
        )


def _audit_admin(
    conn: Connection, user_id: int, login: str, admin: bool, caller: Caller, now: datetime
) -> None:
    security_audit.record(
        conn,
        action="admin.granted" if admin else "admin.revoked",
        at=now,
        caller=caller,
        target=f"user:{login}",
        details={"id": user_id},
    )


def _user_id(conn: Connection, login: str) -> int | None:
    found: int | None = conn.execute(select(user.c.id).where(user.c.login == login)).scalar()
    return found


def _row(conn: Connection, user_id: int, caller: Caller) -> Row[Any]:
    found = conn.execute(select(user).where(user.c.id == user_id)).first()
    if found is None:
        raise NotFound(caller.say(f"user {user_id} does not exist", f"用户 {user_id} 不存在"))
    return found
