"""The orphan-upload cleanup job on both databases, run by a worker on a fake clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from formloom.designer_api import meta_routes
from formloom.platform import orphan_files
from formloom.platform.app import build_app
from formloom.platform.database import Workspace
from formloom.platform.files import file_path
from formloom.platform.jobs import list_jobs
from formloom.platform.settings import Settings
from formloom.platform.tables import uploaded_file
from formloom.platform.worker import Worker
from tests.clients import admin_client
from tests.platform.crm_entities import ENV, field, label, publish

RECORDS = f"/api/envs/{ENV}/records/dossier"
PDF = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"

DOSSIER = {
    "name": "dossier",
    "label": label("Dossier", "档案"),
    "fields": [
        field("title"),
        field("contract", "file"),
        field("scans", "file", options={"multiple": True, "max_files": 5}),
    ],
}


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    app = build_app(settings, routers=[meta_routes.router], run_worker=False)
    publish(app.state.workspace, DOSSIER)
    with admin_client(app) as test_client:
        yield test_client


def workspace_of(client: TestClient) -> Workspace:
    workspace: Workspace = client.app.state.workspace  # type: ignore[attr-defined]
    return workspace


def upload(client: TestClient, name: str) -> str:
    response = client.post(
        f"/api/envs/{ENV}/files", files={"file": (name, PDF + name.encode(), "application/pdf")}
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def ok(response: Any) -> Any:
    assert response.status_code < 300, response.text
    return response.json() if response.status_code != 204 else None


def stored_ids(workspace: Workspace) -> set[str]:
    with workspace.begin(ENV, readonly=True) as conn:
        return set(conn.execute(select(uploaded_file.c.id)).scalars())


def on_disk(workspace: Workspace, file_id: str) -> bool:
    return file_path(workspace, ENV, file_id).exists()


def test_the_worker_removes_unreferenced_uploads_after_the_grace_period(
    client: TestClient,
) -> None:
    # given
    ws = workspace_of(client)
    kept, listed, never, replaced, replacement, binned = (
        upload(client, n) for n in ("kept", "listed", "never", "replaced", "new", "binned")
    )
    ok(client.post(RECORDS, json={"contract": {"id": kept}, "scans": [{"id": listed}]}))
    record = ok(client.post(RECORDS, json={"contract": {"id": replaced}}))
    ok(
        client.patch(
            f"{RECORDS}/{record['id']}",
            json={"version": record["version"], "contract": {"id": replacement}},
        )
    )
    deleted = ok(client.post(RECORDS, json={"title": "bin", "scans": [{"id": binned}]}))
    ok(client.delete(f"{RECORDS}/{deleted['id']}"))
    start = datetime.now(UTC)

    # when
    early = Worker(ws, clock=lambda: start + timedelta(minutes=30)).run_once()
    too_soon = orphan_files.remove_orphan_files(ws, ENV, now=start + timedelta(hours=23))
    ran = Worker(ws, clock=lambda: start + timedelta(hours=25)).run_once()

    # then
    assert (early, too_soon, ran) == (0, [], 1)
    assert stored_ids(ws) == {kept, listed, replacement, binned}
    assert not on_disk(ws, never) and not on_disk(ws, replaced)
    assert all(on_disk(ws, f) for f in (kept, listed, replacement, binned))
    assert client.get(f"/api/envs/{ENV}/files/{never}").status_code == 404
    jobs = list_jobs(ws, ENV)
    assert [(j["job_type"], j["status"]) for j in jobs] == [(orphan_files.JOB_TYPE, "queued")]


def test_a_file_in_the_recycle_bin_goes_when_its_record_is_purged(client: TestClient) -> None:
    # given
    ws = workspace_of(client)
    binned = upload(client, "binned")
    record = ok(client.post(RECORDS, json={"contract": {"id": binned}}))
    ok(client.delete(f"{RECORDS}/{record['id']}"))
    later = datetime.now(UTC) + timedelta(days=2)

    # when
    while_binned = orphan_files.remove_orphan_files(ws, ENV, now=later)
    restored = ok(client.post(f"{RECORDS}/{record['id']}/restore"))
    ok(client.delete(f"{RECORDS}/{record['id']}"))
    ok(client.delete(f"{RECORDS}/{record['id']}", params={"purge": "true"}))
    after_purge = orphan_files.remove_orphan_files(ws, ENV, now=later)
    again = orphan_files.remove_orphan_files(ws, ENV, now=later)

    # then
    assert while_binned == []
    assert restored["contract"]["id"] == binned
    assert after_purge == [binned]
    assert again == []
    assert stored_ids(ws) == set()


def test_files_of_a_removed_field_are_kept_until_it_is_purged(client: TestClient) -> None:
    # given
    ws = workspace_of(client)
    held = upload(client, "held")
    ok(client.post(RECORDS, json={"contract": {"id": held}}))
    publish(ws, {**DOSSIER, "fields": [field("title")]})
    later = datetime.now(UTC) + timedelta(days=2)

    # when
    removed = orphan_files.remove_orphan_files(ws, ENV, now=later)

    # then
    assert removed == []
    assert stored_ids(ws) == {held}


def test_uploads_schedule_one_cleanup_job(client: TestClient) -> None:
    ws = workspace_of(client)

    upload(client, "a")
    upload(client, "b")

    jobs = list_jobs(ws, ENV)
    assert [j["job_type"] for j in jobs] == [orphan_files.JOB_TYPE]
    assert jobs[0]["repeat_seconds"] == orphan_files.EVERY_SECONDS
