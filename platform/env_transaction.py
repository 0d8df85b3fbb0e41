"""One transaction in an environment for whoever acts, authenticated inside it.

Services of the records runtime take ``principal`` as either a
:class:`~formloom.platform.principal.Principal` (Python callers, the CLI, jobs)
or the :class:`~formloom.platform.auth.RequestCredential` an HTTP request
presented. :func:`env_transaction` opens the service's transaction and yields
the connection with the principal's :class:`~formloom.platform.access.Access`.

For a credential, one statement authenticates it and, in the same round trip,
reads what the service needs next: whether the environment exists, the
principal's published roles there and (with ``entity``) the entity's published
version. A request then costs one connection, one transaction and one statement
before its own work, instead of a transaction for authentication and three more
statements. A principal gets the environment checked and its access loaded as
before. The credential's use is recorded afterwards (at most once a minute),
whatever the outcome of the work.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select
from sqlalchemy.exc import ProgrammingError

from formloom.platform import credentials
from formloom.platform.access import (
    Access,
    load_access,
    published_roles_column,
    roles_of_column,
)
from formloom.platform.auth import RequestCredential
from formloom.platform.database import Workspace
from formloom.platform.entity_runtime import note_published, published_version_column
from formloom.platform.environments import (
    environment_not_found,
    exists_column,
    require_environment_in,
)
from formloom.platform.principal import Principal
from formloom.platform.tables import credential

#: Who acts in a service call: a principal, or a request's credential not checked yet.
Actor = Principal | RequestCredential
#: PostgreSQL's "undefined table" and "invalid schema name": the environment's schema is gone.
_NO_SCHEMA = ("42P01", "3F000")


@contextmanager
def env_transaction(
    workspace: Workspace,
    env: str,
    actor: Actor,
    *,
    readonly: bool = False,
    entity: str | None = None,
) -> Iterator[tuple[Connection, Access]]:
    """A transaction in ``env`` and the access of the principal acting in it.

    ``entity`` names the entity the work is about, so that a credential's statement
    reads its published version too. Raises
    :class:`~formloom.platform.auth.Unauthenticated` (or ``CsrfFailed``) for a credential
    that does not authenticate, then ``NotFound`` for a missing environment.
    """
    try:
        with workspace.begin(env, readonly=readonly) as conn:
            if isinstance(actor, Principal):
                require_environment_in(conn, env)
                yield (
                    conn,
                    load_access(conn, cache_key=workspace.cache_key, env=env, principal=actor),
                )
            else:
                yield conn, _check_in(workspace, conn, env, actor, entity)
    finally:
        if isinstance(actor, RequestCredential):
            actor.touch_if_due(workspace)


def _check_in(
    workspace: Workspace, conn: Connection, env: str, actor: RequestCredential, entity: str | None
) -> Access:
    params: dict[str, Any] = {"env": env}
    if entity is not None:
        params["entity"] = entity
    try:
        row = actor.check_in(conn, statement=_statement(entity is not None), **params)
    except ProgrammingError as exc:
        # The statement reads the environment's tables: on PostgreSQL it fails when the
        # environment's schema does not exist (the credential is then checked on its own
        # before the error is answered, see ``auth_deps.unchecked_credential_error``).
        if getattr(exc.orig, "sqlstate", None) in _NO_SCHEMA:
            raise environment_not_found(env) from None
        raise
    if not row["environment_exists"]:
        raise environment_not_found(env)
    if entity is not None:
        note_published(conn, entity, row["entity_version"])
    assert actor.authenticated is not None
    return load_access(
        conn,
        cache_key=workspace.cache_key,
        env=env,
        principal=actor.authenticated.principal,
        roles=roles_of_column(row["published_roles"]),
    )


@functools.cache
def _statement(with_entity: bool) -> Select[Any]:
    """The credential's statement with the environment's answers (built once per shape)."""
    extra: list[ColumnElement[Any]] = [
        exists_column(),
        published_roles_column(credential.c.user_id),
    ]
    if with_entity:
        extra.append(published_version_column())
    return credentials.request_statement(*extra)
