"""Who may manage users, teams and role assignments.

One function, :func:`require_user_manager`, called by every service that
changes (or lists) users, teams and role assignments, inside its own
transaction. Administrators (and the platform itself) pass, and so does a user
whose roles in the ``production`` environment grant ``manage_users``: users
are workspace-wide, so the permission to manage them is read where the company
really runs. The services open their transactions with :data:`MANAGEMENT_ENV`
so its role documents are reachable.
"""

from __future__ import annotations

from sqlalchemy import Connection

from formloom.platform.errors import Forbidden
from formloom.platform.principal import Principal
from formloom.platform.record_errors import say

#: The environment whose roles may grant ``manage_users`` (``environments.PRODUCTION``).
MANAGEMENT_ENV = "production"


def require_user_manager(conn: Connection, principal: Principal, *, lang: str = "en") -> None:
    """Raise :class:`Forbidden` unless ``principal`` may manage users, teams and roles.

    ``conn`` must be a transaction of :data:`MANAGEMENT_ENV`.
    """
    if principal.admin:
        return
    from formloom.platform.access import load_access

    access = load_access(conn, cache_key=None, env=MANAGEMENT_ENV, principal=principal)
    if access.has_permission("manage_users"):
        return
    raise Forbidden(
        say(
            lang,
            f"`{principal.login}` may not manage users, teams or role assignments: that needs "
            "an administrator or a role with the `manage_users` permission in production; "
            "ask an administrator to make the change or to grant you one",
            f"`{principal.login}` 无权管理用户、团队或角色分配：需要管理员权限，"
            "或在生产环境中拥有 `manage_users` 权限的角色；请联系管理员代为操作或授予相应角色",
        )
    )


def require_audit_reader(conn: Connection, principal: Principal, *, lang: str = "en") -> None:
    """Raise :class:`Forbidden` unless ``principal`` may read the security audit log (admins)."""
    if principal.admin:
        return
    raise Forbidden(
        say(
            lang,
            f"`{principal.login}` may not read the security audit log: that needs an administrator",
            f"`{principal.login}` 无权查看安全审计日志：需要管理员权限",
        )
    )
