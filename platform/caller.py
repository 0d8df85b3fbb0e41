"""Who asks for an identity change, from where, in which language.

Every identity service (users, teams, roles, credentials) takes a :class:`Caller`:
the :class:`~formloom.platform.principal.Principal` decides what the call may do,
and the caller's address and the principal are what the security audit records.
``lang`` picks the language of the messages the caller reads.
"""

from __future__ import annotations

from dataclasses import dataclass

from formloom.platform.principal import SYSTEM, Principal
from formloom.platform.record_errors import say


@dataclass(frozen=True)
class Caller:
    principal: Principal
    ip: str | None = None
    lang: str = "en"

    def say(self, en: str, zh: str) -> str:
        """The message in the caller's language."""
        return say(self.lang, en, zh)


#: The command line and other work the platform does itself.
PLATFORM_CALLER = Caller(SYSTEM)
