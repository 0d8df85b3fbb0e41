"""Login tokens and API keys that users issue for themselves.

A login token is a bearer credential for scripts and the command line: short
lived (:data:`TOKEN_LIFETIME` by default, at most :data:`MAX_TOKEN_LIFETIME`),
optionally bound to one environment. An API key is for integrations: bound to
one environment (required), never expiring unless asked to, listed by its
prefix, name and last use, and revoked one by one. Each secret is returned
once, when issued. A credential bound to an environment can only issue
credentials bound to the same one: a key for a sandbox never yields a key for
production.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from formloom.platform import credentials, security_audit
from formloom.platform.caller import Caller
from formloom.platform.credentials import API_KEY, TOKEN, Issued
from formloom.platform.database import Workspace
from formloom.platform.environments import require_environment_in
from formloom.platform.errors import Forbidden, Invalid, NotFound
from formloom.platform.tables import credential

TOKEN_LIFETIME = timedelta(hours=24)
MAX_TOKEN_LIFETIME = timedelta(days=30)
NAME_MAX = 100


@dataclass(frozen=True)
class NewApiKey:
    name: str
    env: str
    expires_at: datetime | None = None


def create_token(
    workspace: Workspace,
    *,
    caller: Caller,
    env: str | None = None,
    lifetime: timedelta | None = None,
    name: str = "",
    now: datetime | None = None,
) -> Issued:
    """Issue a login token for the caller."""
    now = now or datetime.now(UTC)
    lifetime = lifetime or TOKEN_LIFETIME
    if not timedelta(0) < lifetime <= MAX_TOKEN_LIFETIME:
        message = caller.say(
            f"a token lives between 1 second and {MAX_TOKEN_LIFETIME.days} days",
            f"令牌有效期应在 1 秒到 {MAX_TOKEN_LIFETIME.days} 天之间",
        )
        raise Invalid(message)
    user_id = _own_user(caller)
    bound = _binding(caller, env)
    with workspace.begin() as conn:
        if bound is not None:
            require_environment_in(conn, bound)
        issued = credentials.issue(
            conn,
            kind=TOKEN,
            user_id=user_id,
            now=now,
            expires_at=now + lifetime,
            env=bound,
            name=name[:NAME_MAX],
            ip=caller.ip,
        )
        security_audit.record(
            conn,
            action="token.created",
            at=now,
            caller=caller,
            target=f"credential:{issued.id}",
            details={"prefix": issued.prefix, "env": bound, "expires_at": _iso(issued.expires_at)},
        )
    return issued


def create_api_key(
    workspace: Workspace, new: NewApiKey, *, caller: Caller, now: datetime | None = None
) -> Issued:
    """Issue an API key for the caller, bound to ``new.env``."""
    now = now or datetime.now(UTC)
    name = new.name.strip()
    if not name or len(name) > NAME_MAX:
        message = caller.say(
            f"name the key (1-{NAME_MAX} characters), e.g. `erp sync`",
            f"请为密钥命名（1-{NAME_MAX} 个字符），如 `erp sync`",
        )
        raise Invalid(message)
    if new.expires_at is not None and new.expires_at <= now:
        raise Invalid(caller.say("expires_at is in the past", "expires_at 早于当前时间"))
    user_id = _own_user(caller)
    bound = _binding(caller, new.env)
    assert bound is not None
    with workspace.begin() as conn:
        require_environment_in(conn, bound)
        issued = credentials.issue(
            conn,
            kind=API_KEY,
            user_id=user_id,
            now=now,
            expires_at=new.expires_at,
            env=bound,
            name=name,
            ip=caller.ip,
        )
        security_audit.record(
            conn,
            action="api_key.created",
            at=now,
            caller=caller,
            target=f"credential:{issued.id}",
            details={"prefix": issued.prefix, "name": name, "env": bound},
        )
    return issued


def list_api_keys(workspace: Workspace, *, caller: Caller) -> list[dict[str, Any]]:
    """The caller's API keys, newest first (revoked ones too): never the secrets."""
    user_id = _own_user(caller)
    query = (
        select(credential)
        .where(credential.c.user_id == user_id, credential.c.kind == API_KEY)
        .order_by(credential.c.id.desc())
    )
    with workspace.begin(readonly=True) as conn:
        return [credentials.credential_json(row._mapping) for row in conn.execute(query)]


def revoke_api_key(
    workspace: Workspace, key_id: int, *, caller: Caller, now: datetime | None = None
) -> None:
    """Revoke one of the caller's API keys (someone else's is :class:`NotFound`)."""
    now = now or datetime.now(UTC)
    user_id = _own_user(caller)
    with workspace.begin() as conn:
        found = conn.execute(
            select(credential.c.prefix).where(
                credential.c.id == key_id,
                credential.c.user_id == user_id,
                credential.c.kind == API_KEY,
            )
        ).first()
        if found is None:
            raise NotFound(
                caller.say(
                    f"you have no API key {key_id}; list yours with GET /api/auth/api-keys",
                    f"您没有编号为 {key_id} 的 API 密钥；可通过 GET /api/auth/api-keys 查看",
                )
            )
        if credentials.revoke(conn, key_id, now=now):
            security_audit.record(
                conn,
                action="api_key.revoked",
                at=now,
                caller=caller,
                target=f"credential:{key_id}",
                details={"prefix": found.prefix},
            )


def _own_user(caller: Caller) -> int:
    if caller.principal.user_id is None:
        raise Forbidden(
            caller.say(
                "the platform itself has no tokens or keys; act as a user",
                "平台自身没有令牌或密钥；请以用户身份操作",
            )
        )
    return caller.principal.user_id


def _binding(caller: Caller, env: str | None) -> str | None:
    """The environment a new credential is bound to: the caller's own binding wins."""
    own = caller.principal.environment
    if own is None or env in (None, own):
        return env or own
    raise Forbidden(
        caller.say(
            f"this credential is bound to environment `{own}` and cannot issue one for `{env}`",
            f"当前凭证绑定环境 `{own}`，不能为环境 `{env}` 签发凭证",
        )
    )


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()
