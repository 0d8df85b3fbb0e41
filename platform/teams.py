"""Teams: a tree of groups of users, each with an optional leader.

``name`` is a slug (an API name) that metadata and the command line refer to;
labels are shown to people in Chinese and English. A team's parent can change
as long as the tree stays a tree: a change that would make a team its own
ancestor is refused with the loop spelled out. The lookups access checks use on
every request (sub-teams, members) are in :mod:`formloom.platform.identity`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypedDict

from sqlalchemy import Connection, Row, delete, insert, literal, select, update

from formloom.engine.errors import Issue
from formloom.platform import security_audit
from formloom.platform.caller import Caller
from formloom.platform.database import Workspace
from formloom.platform.errors import Conflict, Invalid, NotFound
from formloom.platform.identity import display_name, missing_users
from formloom.platform.record_errors import say
from formloom.platform.tables import team, team_member, user
from formloom.platform.user_managers import MANAGEMENT_ENV, require_user_manager

TEAM_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
LABEL_MAX = 100
MAX_DEPTH = 1000


@dataclass(frozen=True)
class NewTeam:
    name: str
    label_en: str = ""
    label_zh: str = ""
    parent_id: int | None = None
    leader_id: int | None = None


class TeamChanges(TypedDict, total=False):
    """Fields a PATCH may change (a missing key leaves the field alone)."""

    label_en: str
    label_zh: str
    parent_id: int | None
    leader_id: int | None


def create_team(
    workspace: Workspace, new: NewTeam, *, caller: Caller, now: datetime | None = None
) -> dict[str, Any]:
    """Create a team (labels default to the name); its JSON."""
    now = now or datetime.now(UTC)
    values = {
        "label_en": new.label_en.strip() or new.name,
        "label_zh": new.label_zh.strip() or new.label_en.strip() or new.name,
        "parent_id": new.parent_id,
        "leader_id": new.leader_id,
    }
    with workspace.begin(MANAGEMENT_ENV) as conn:
        require_user_manager(conn, caller.principal, lang=caller.lang)
        issues = _name_issues(new.name, caller) + _field_issues(conn, values, None, caller)
        if issues:
            raise Invalid(issues[0].message, issues=issues)
        if _team_id(conn, new.name) is not None:
            message = caller.say(
                f"team `{new.name}` already exists; choose another name",
                f"团队 `{new.name}` 已存在；请换一个名称",
            )
            raise Conflict(message, issues=[Issue("/name", "team_exists", message)])
        team_id = conn.execute(
            insert(team)
            .values(name=new.name, created_at=now, updated_at=now, **values)
            .returning(team.c.id)
        ).scalar_one()
        security_audit.record(
            conn,
            action="team.created",
            at=now,
            caller=caller,
            target=f"team:{new.name}",
            details={"id": team_id, **values},
        )
        return _team_json(conn, _row(conn, team_id, caller))


def update_team(
    workspace: Workspace,
    team_id: int,
    changes: TeamChanges,
    *,
    caller: Caller,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Change labels, parent or leader; refuses a parent that would close a loop."""
    now = now or datetime.now(UTC)
    with workspace.begin(MANAGEMENT_ENV) as conn:
        require_user_manager(conn, caller.principal, lang=caller.lang)
        before = _row(conn, team_id, caller)
        values: dict[str, Any] = {k: v for k, v in changes.items()}
        for label in ("label_en", "label_zh"):
            if label in values:
                values[label] = str(values[label]).strip() or before.name
        issues = _field_issues(conn, values, before, caller)
        if issues:
            raise Invalid(issues[0].message, issues=issues)
        changed = {k: [before._mapping[k], v] for k, v in values.items() if before._mapping[k] != v}
        if changed:
            conn.execute(
                update(team)
                .where(team.c.id == team_id)
                .values(updated_at=now, **{k: v for k, (_, v) in changed.items()})
            )
            security_audit.record(
                conn,
                action="team.updated",
                at=now,
                caller=caller,
                target=f"team:{before.name}",
                details={"changes": changed},
            )
        return _team_json(conn, _row(conn, team_id, caller))


def add_members(
    workspace: Workspace,
    team_id: int,
    user_ids: Iterable[int],
    *,
    caller: Caller,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Add users to a team (members already in it are left alone); the team's JSON."""
    now = now or datetime.now(UTC)
    wanted = list(dict.fromkeys(user_ids))
    with workspace.begin(MANAGEMENT_ENV) as conn:
        require_user_manager(conn, caller.principal, lang=caller.lang)
        found = _row(conn, team_id, caller)
        issues = _user_issues(conn, wanted, "/user_ids", caller)
        if issues:
            raise Invalid(issues[0].message, issues=issues)
        present = _member_ids(conn, team_id)
        added = [u for u in wanted if u not in present]
        if added:
            conn.execute(insert(team_member), [{"team_id": team_id, "user_id": u} for u in added])
            security_audit.record(
                conn,
                action="team.members_added",
                at=now,
                caller=caller,
                target=f"team:{found.name}",
                details={"user_ids": added},
            )
        return _team_json(conn, found)


def remove_member(
    workspace: Workspace,
    team_id: int,
    user_id: int,
    *,
    caller: Caller,
    now: datetime | None = None,
) -> None:
    """Take a user out of a team (:class:`NotFound` when not a member)."""
    now = now or datetime.now(UTC)
    with workspace.begin(MANAGEMENT_ENV) as conn:
        require_user_manager(conn, caller.principal, lang=caller.lang)
        found = _row(conn, team_id, caller)
        removed = conn.execute(
            delete(team_member).where(
                team_member.c.team_id == team_id, team_member.c.user_id == user_id
            )
        )
        if removed.rowcount == 0:
            raise NotFound(
                caller.say(
                    f"user {user_id} is not a member of team `{found.name}`",
                    f"用户 {user_id} 不是团队 `{found.name}` 的成员",
                )
            )
        security_audit.record(
            conn,
            action="team.member_removed",
            at=now,
            caller=caller,
            target=f"team:{found.name}",
            details={"user_id": user_id},
        )


def list_teams(workspace: Workspace, *, caller: Caller) -> list[dict[str, Any]]:
    """Every team, by name, with its member ids."""
    with workspace.begin(MANAGEMENT_ENV, readonly=True) as conn:
        require_user_manager(conn, caller.principal, lang=caller.lang)
        members: dict[int, list[int]] = {}
        for team_id, user_id in conn.execute(
            select(team_member.c.team_id, team_member.c.user_id).order_by(team_member.c.user_id)
        ):
            members.setdefault(team_id, []).append(user_id)
        rows = conn.execute(select(team).order_by(team.c.name)).all()
        return [_team_json(conn, row, members.get(row.id, [])) for row in rows]


def get_team(workspace: Workspace, team_id: int, *, caller: Caller) -> dict[str, Any]:
    """One team with its members' logins and names."""
    with workspace.begin(MANAGEMENT_ENV, readonly=True) as conn:
        require_user_manager(conn, caller.principal, lang=caller.lang)
        found = _team_json(conn, _row(conn, team_id, caller))
        query = (
            select(user)
            .join(team_member, team_member.c.user_id == user.c.id)
            .where(team_member.c.team_id == team_id)
            .order_by(user.c.login)
        )
        found["members"] = [
            {
                "id": u.id,
                "login": u.login,
                "display_name": display_name(u.display_name_en, u.display_name_zh, caller.lang)
                or u.login,
                "active": u.active,
            }
            for u in conn.execute(query)
        ]
        return found


def team_id_named(conn: Connection, name: str, *, lang: str = "en") -> int:
    """The id of team ``name`` (:class:`NotFound` naming it otherwise)."""
    found = _team_id(conn, name)
    if found is None:
        raise NotFound(
            say(
                lang,
                f"team `{name}` does not exist; list teams with `formloom teams list`",
                f"团队 `{name}` 不存在；可通过 `formloom teams list` 查看",
            )
        )
    return found


def missing_teams(conn: Connection, team_ids: Iterable[int]) -> list[int]:
    """The ids among ``team_ids`` that name no team, in the order given."""
    wanted = list(dict.fromkeys(team_ids))
    if not wanted:
        return []
    found = set(conn.execute(select(team.c.id).where(team.c.id.in_(wanted))).scalars())
    return [i for i in wanted if i not in found]


def set_user_teams(
    conn: Connection, user_id: int, team_ids: Iterable[int]
) -> tuple[list[int], list[int]]:
    """Make ``team_ids`` the user's direct teams; the ids added and removed."""
    current = set(
        conn.execute(
            select(team_member.c.team_id).where(team_member.c.user_id == user_id)
        ).scalars()
    )
    target = set(team_ids)
    added, removed = sorted(target - current), sorted(current - target)
    if removed:
        conn.execute(
            delete(team_member).where(
                team_member.c.user_id == user_id, team_member.c.team_id.in_(removed)
            )
        )
    if added:
        conn.execute(insert(team_member), [{"team_id": t, "user_id": user_id} for t in added])
    return added, removed


def _field_issues(
    conn: Connection, values: Mapping[str, Any], before: Row[Any] | None, caller: Caller
) -> list[Issue]:
    issues = []
    for label in ("label_en", "label_zh"):
        if label in values and len(values[label]) > LABEL_MAX:
            issues.append(
                Issue(
                    f"/{label}",
                    "too_long",
                    caller.say(
                        f"the label is longer than {LABEL_MAX} characters",
                        f"标签超过 {LABEL_MAX} 个字符",
                    ),
                )
            )
    if values.get("leader_id") is not None:
        issues += _user_issues(conn, [values["leader_id"]], "/leader_id", caller)
    parent_id = values.get("parent_id")
    if parent_id is not None:
        if missing_teams(conn, [parent_id]):
            issues.append(
                Issue(
                    "/parent_id",
                    "unknown_team",
                    caller.say(f"team {parent_id} does not exist", f"团队 {parent_id} 不存在"),
                )
            )
        elif before is not None:
            issues += _cycle_issues(conn, before, parent_id, caller)
    return issues


def _cycle_issues(conn: Connection, moved: Row[Any], parent_id: int, caller: Caller) -> list[Issue]:
    """A loop if ``moved`` went under ``parent_id``: the parent's ancestry contains ``moved``."""
    chain = _ancestry(conn, parent_id)
    ids = [team_id for team_id, _ in chain]
    if moved.id not in ids:
        return []
    below = [name for _, name in chain[: ids.index(moved.id) + 1]]
    loop = " → ".join(reversed(below))
    parent = chain[0][1]
    if moved.id == parent_id:
        message = caller.say(
            f"team `{moved.name}` cannot be its own parent",
            f"团队 `{moved.name}` 不能作为自己的上级团队",
        )
    else:
        message = caller.say(
            f"team `{moved.name}` cannot be placed under `{parent}`: `{parent}` is already "
            f"below it ({loop}), so the teams would form a loop; move `{parent}` first",
            f"团队 `{moved.name}` 不能放在 `{parent}` 之下：`{parent}` 已经在它下面（{loop}），"
            f"会形成循环；请先移动 `{parent}`",
        )
    return [Issue("/parent_id", "team_cycle", message)]


def _ancestry(conn: Connection, team_id: int) -> list[tuple[int, str]]:
    """``team_id`` and its ancestors up to the root: ``[(id, name), …]``."""
    chain = (
        select(team.c.id, team.c.name, team.c.parent_id, literal(0).label("depth"))
        .where(team.c.id == team_id)
        .cte("ancestry", recursive=True)
    )
    chain = chain.union_all(
        select(team.c.id, team.c.name, team.c.parent_id, chain.c.depth + 1).where(
            team.c.id == chain.c.parent_id, chain.c.depth < MAX_DEPTH
        )
    )
    rows = conn.execute(select(chain.c.id, chain.c.name).order_by(chain.c.depth)).all()
    return [(row.id, row.name) for row in rows]


def _name_issues(name: str, caller: Caller) -> list[Issue]:
    if TEAM_NAME.match(name):
        return []
    message = caller.say(
        f"team name `{name}` is not valid: use 1-63 lowercase letters, digits and underscores, "
        "starting with a letter (e.g. `east_sales`)",
        f"团队名称 `{name}` 无效：请使用 1-63 个小写字母、数字或下划线，"
        "以字母开头（如 `east_sales`）",
    )
    return [Issue("/name", "invalid_name", message)]


def _user_issues(conn: Connection, user_ids: list[int], path: str, caller: Caller) -> list[Issue]:
    return [
        Issue(path, "unknown_user", caller.say(f"user {u} does not exist", f"用户 {u} 不存在"))
        for u in missing_users(conn, user_ids)
    ]


def _team_id(conn: Connection, name: str) -> int | None:
    found: int | None = conn.execute(select(team.c.id).where(team.c.name == name)).scalar()
    return found


def _row(conn: Connection, team_id: int, caller: Caller) -> Row[Any]:
    found = conn.execute(select(team).where(team.c.id == team_id)).first()
    if found is None:
        raise NotFound(caller.say(f"team {team_id} does not exist", f"团队 {team_id} 不存在"))
    return found


def _member_ids(conn: Connection, team_id: int) -> set[int]:
    query = select(team_member.c.user_id).where(team_member.c.team_id == team_id)
    return set(conn.execute(query).scalars())


def _team_json(
    conn: Connection, row: Row[Any], member_ids: list[int] | None = None
) -> dict[str, Any]:
    members = sorted(_member_ids(conn, row.id)) if member_ids is None else member_ids
    return {
        "id": row.id,
        "name": row.name,
        "label": {"en": row.label_en, "zh": row.label_zh},
        "parent_id": row.parent_id,
        "leader_id": row.leader_id,
        "member_ids": members,
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
    }
