"""Who acts on a flow step: assignee sources turned into user ids with the organisation's data.

Each source of :mod:`formloom.engine.flows.approvers` is one small query on the
platform tables (reachable from an environment transaction): role holders in
the environment, the submitter's manager chain (``fl_user.manager_id``), the
leaders of the submitter's teams (``fl_team.leader_id``, walking up ``parent_id``
when a team has none), a user field of the record, or people chosen at submit
time or by the previous approver. The result is the union of the sources in
the order listed, each person once, deactivated users left out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, select

from formloom.engine.flows.approvers import (
    ChoiceRange,
    ManagerChainSource,
    ManagerSource,
    PreviousApproverChoiceSource,
    RecordFieldSource,
    RoleSource,
    SubmitterChoiceSource,
    SubmitterSource,
    TeamHeadSource,
    UsersSource,
)
from formloom.platform.identity import team_ids_of
from formloom.platform.tables import team, user, user_role

#: How far a manager chain or a team tree is climbed at most (a cycle stops earlier).
MAX_CLIMB = 50


@dataclass(frozen=True)
class Choices:
    """People chosen for steps: by the submitter, and by previous approvers (node → ids)."""

    submitter: Mapping[str, Sequence[int]] = field(default_factory=dict)
    previous: Mapping[str, Sequence[int]] = field(default_factory=dict)

    @classmethod
    def of(cls, stored: Mapping[str, Any]) -> Choices:
        return cls(stored.get("submitter", {}), stored.get("previous", {}))


class ChoiceMissing(Exception):
    """A choice source of ``node`` has nobody chosen yet (``kind``: submitter or previous)."""

    def __init__(self, node: str, kind: str) -> None:
        super().__init__(node, kind)
        self.node = node
        self.kind = kind


class Organisation:
    """The people queries of one environment, on the caller's connection."""

    def __init__(self, conn: Connection, env: str) -> None:
        self.conn = conn
        self.env = env

    def resolve(
        self,
        node_id: str,
        sources: Iterable[Any],
        *,
        submitter_id: int,
        record: Mapping[str, Any],
        choices: Choices,
    ) -> list[int]:
        """The active users the sources name, in order, each once.

        Raises :class:`ChoiceMissing` for a choice source nobody has filled in.
        """
        found: list[int] = []
        for source in sources:
            found += self._source(node_id, source, submitter_id, record, choices)
        return self.active(found)

    def _source(
        self,
        node_id: str,
        source: Any,
        submitter_id: int,
        record: Mapping[str, Any],
        choices: Choices,
    ) -> list[int]:
        if isinstance(source, UsersSource):
            return list(source.users)
        if isinstance(source, RoleSource):
            return self.role_holders(source.role)
        if isinstance(source, ManagerSource):
            chain = self.managers(submitter_id, source.level)
            return chain[-1:] if len(chain) == source.level else []
        if isinstance(source, ManagerChainSource):
            return self.manager_chain(submitter_id, source)
        if isinstance(source, TeamHeadSource):
            return self.team_heads(submitter_id, source.level)
        if isinstance(source, RecordFieldSource):
            value = record.get(source.field)
            return [int(value)] if isinstance(value, int) and value > 0 else []
        if isinstance(source, SubmitterSource):
            return [submitter_id]
        if isinstance(source, SubmitterChoiceSource):
            if node_id not in choices.submitter:
                raise ChoiceMissing(node_id, "submitter")
            return list(choices.submitter[node_id])
        if isinstance(source, PreviousApproverChoiceSource):
            if node_id not in choices.previous:
                raise ChoiceMissing(node_id, "previous")
            return list(choices.previous[node_id])
        raise TypeError(f"unknown assignee source {source!r}")

    # -- the organisation ----------------------------------------------------------------------

    def active(self, user_ids: Iterable[int]) -> list[int]:
        """``user_ids`` in order, each once, without unknown or deactivated users."""
        wanted = list(dict.fromkeys(user_ids))
        if not wanted:
            return []
        query = select(user.c.id).where(user.c.id.in_(wanted), user.c.active.is_(True))
        alive = set(self.conn.execute(query).scalars())
        return [i for i in wanted if i in alive]

    def role_holders(self, role: str) -> list[int]:
        query = (
            select(user_role.c.user_id)
            .where(user_role.c.env == self.env, user_role.c.role == role)
            .order_by(user_role.c.user_id)
        )
        return list(self.conn.execute(query).scalars())

    def holds_role(self, user_id: int, roles: Iterable[str]) -> bool:
        wanted = list(roles)
        if not wanted:
            return False
        query = select(user_role.c.role).where(
            user_role.c.user_id == user_id,
            user_role.c.env == self.env,
            user_role.c.role.in_(wanted),
        )
        return self.conn.execute(query.limit(1)).first() is not None

    def manager_of(self, user_id: int) -> int | None:
        found: int | None = self.conn.execute(
            select(user.c.manager_id).where(user.c.id == user_id)
        ).scalar()
        return found

    def managers(self, user_id: int, levels: int) -> list[int]:
        """The user's managers, level 1 first, at most ``levels`` of them."""
        chain: list[int] = []
        current = user_id
        while len(chain) < min(levels, MAX_CLIMB):
            manager = self.manager_of(current)
            if manager is None or manager == user_id or manager in chain:
                break
            chain.append(manager)
            current = manager
        return chain

    def manager_chain(self, user_id: int, source: ManagerChainSource) -> list[int]:
        if source.up_to_level is not None:
            return self.managers(user_id, source.up_to_level)
        chain: list[int] = []
        for manager in self.managers(user_id, MAX_CLIMB):
            chain.append(manager)
            if source.up_to_role is not None and self.holds_role(manager, [source.up_to_role]):
                break
        return chain

    def team_heads(self, user_id: int, level: int) -> list[int]:
        """The leaders of the user's teams, ``level - 1`` teams up; a team without a leader
        hands over to its parent's."""
        heads = []
        for team_id in sorted(team_ids_of(self.conn, user_id)):
            current: int | None = team_id
            for _ in range(level - 1):
                current = self._parent(current) if current is not None else None
            head = self._leader_upwards(current)
            if head is not None:
                heads.append(head)
        return heads

    def _parent(self, team_id: int) -> int | None:
        found: int | None = self.conn.execute(
            select(team.c.parent_id).where(team.c.id == team_id)
        ).scalar()
        return found

    def _leader_upwards(self, team_id: int | None) -> int | None:
        seen: set[int] = set()
        while team_id is not None and team_id not in seen and len(seen) < MAX_CLIMB:
            seen.add(team_id)
            row = self.conn.execute(
                select(team.c.leader_id, team.c.parent_id).where(team.c.id == team_id)
            ).first()
            if row is None:
                return None
            if row.leader_id is not None:
                return int(row.leader_id)
            team_id = row.parent_id
        return None

    def administrators(self) -> list[int]:
        """Active users with the ``admin`` flag, oldest first."""
        query = (
            select(user.c.id)
            .where(user.c.admin.is_(True), user.c.active.is_(True))
            .order_by(user.c.id)
        )
        return list(self.conn.execute(query).scalars())

    def outside_range(self, chosen: Sequence[int], among: ChoiceRange) -> list[int]:
        """The chosen users a choice range does not admit (an empty range admits anyone)."""
        if not among.users and not among.roles:
            return []
        allowed = set(among.users)
        return [u for u in chosen if u not in allowed and not self.holds_role(u, among.roles)]
