"""Identity lookups the access checks run on every request: teams, members, roles.

Each is one SQL statement on the caller's connection (a platform or an
environment transaction: the platform tables are reachable from both), so a
change of membership or assignment applies to the very next request in every
process. Teams form a tree; the sub-teams of a team come from a recursive CTE
(``WITH RECURSIVE`` works on SQLite and PostgreSQL alike; ``UNION`` rather than
``UNION ALL`` makes it stop even on a cycle).
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, select

from formloom.platform.tables import team, team_member, user, user_role


def team_and_descendants(conn: Connection, team_ids: Iterable[int]) -> set[int]:
    """``team_ids`` and every team below them, at any depth."""
    wanted = list(team_ids)
    if not wanted:
        return set()
    tree = select(team.c.id).where(team.c.id.in_(wanted)).cte("team_tree", recursive=True)
    tree = tree.union(select(team.c.id).where(team.c.parent_id == tree.c.id))
    return set(conn.execute(select(tree.c.id)).scalars())


def members_of(conn: Connection, team_ids: Iterable[int]) -> set[int]:
    """Ids of the users who are direct members of any of ``team_ids`` (active or not).

    Sub-teams are not included: pass :func:`team_and_descendants` for them.
    """
    wanted = list(team_ids)
    if not wanted:
        return set()
    query = select(team_member.c.user_id).where(team_member.c.team_id.in_(wanted)).distinct()
    return set(conn.execute(query).scalars())


def team_ids_of(conn: Connection, user_id: int) -> frozenset[int]:
    """The teams ``user_id`` is a direct member of."""
    query = select(team_member.c.team_id).where(team_member.c.user_id == user_id)
    return frozenset(conn.execute(query).scalars())


def roles_of(conn: Connection, user_id: int, env: str) -> list[str]:
    """Names of the roles assigned to ``user_id`` in environment ``env``, sorted.

    Names only: whether a role document of that name is published in ``env`` is
    the access layer's business.
    """
    query = (
        select(user_role.c.role)
        .where(user_role.c.user_id == user_id, user_role.c.env == env)
        .order_by(user_role.c.role)
    )
    return list(conn.execute(query).scalars())


def missing_users(conn: Connection, user_ids: Iterable[int]) -> list[int]:
    """The ids among ``user_ids`` that name no user, in the order given."""
    wanted = list(dict.fromkeys(user_ids))
    if not wanted:
        return []
    found = set(conn.execute(select(user.c.id).where(user.c.id.in_(wanted))).scalars())
    return [i for i in wanted if i not in found]


def display_name(english: str, chinese: str, language: str) -> str:
    """The name to show a user in ``language``, falling back to the other language's."""
    return (chinese or english) if language == "zh" else (english or chinese)
