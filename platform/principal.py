"""Who is acting: the identity every service call carries.

A :class:`Principal` is resolved once per request (from a session cookie, a
bearer token or an API key, see :mod:`formloom.platform.auth`) or built by the
platform itself for work it does on its own behalf (:data:`SYSTEM`: the CLI,
background jobs). Services receive it as the keyword argument ``principal``
and check what it may do inside their own transaction
(:mod:`formloom.platform.access`), so a permission holds on every path, not
only in the UI.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Principal:
    """An authenticated user (or the platform itself when ``user_id`` is None).

    ``admin`` is the explicit bypass: an admin passes every permission check
    (the grant and revocation of ``admin`` are audited). ``environment`` is
    set when the credential is bound to one environment (API keys are): the
    principal can then reach no other. ``credential`` names how the request
    authenticated (``session``, ``token``, ``api_key``, ``system``), for the audit.
    """

    user_id: int | None
    login: str
    admin: bool = False
    environment: str | None = None
    credential: str = "system"
    display_name: str = ""
    language: str = "en"
    team_ids: frozenset[int] = field(default_factory=frozenset)

    @property
    def is_system(self) -> bool:
        return self.user_id is None

    def may_enter(self, env: str) -> bool:
        """False when the credential is bound to another environment."""
        return self.environment is None or self.environment == env


#: The platform acting on its own behalf (CLI commands, background jobs): bypasses checks.
SYSTEM = Principal(user_id=None, login="system", admin=True)
