"""HTTP test clients that are signed in.

Every route but health and the meta-schemas needs a credential; tests that
exercise something other than access control use :func:`admin_client`, signed
in as an administrator (explicit bypass) with a bearer token issued by the
real credential service.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import insert, select

from formloom.platform import credentials
from formloom.platform.database import Workspace
from formloom.platform.tables import user

ADMIN_LOGIN = "test_admin"


def admin_token(workspace: Workspace) -> str:
    """A bearer token of the test administrator (created on first use)."""
    now = datetime.now(UTC)
    with workspace.begin() as conn:
        user_id = conn.execute(select(user.c.id).where(user.c.login == ADMIN_LOGIN)).scalar()
        if user_id is None:
            user_id = conn.execute(
                insert(user)
                .values(
                    login=ADMIN_LOGIN,
                    display_name_en="Test admin",
                    display_name_zh="测试管理员",
                    active=True,
                    admin=True,
                    created_at=now,
                    updated_at=now,
                )
                .returning(user.c.id)
            ).scalar_one()
        issued = credentials.issue(
            conn, kind=credentials.TOKEN, user_id=user_id, now=now, expires_at=None
        )
    return issued.secret


@contextmanager
def admin_client(app: FastAPI) -> Iterator[TestClient]:
    """A started ``TestClient`` whose requests carry an administrator's bearer token."""
    with TestClient(app) as client:
        token = admin_token(app.state.workspace)
        client.headers["Authorization"] = f"Bearer {token}"
        yield client
