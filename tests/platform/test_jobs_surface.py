"""Jobs through the CLI (`formloom worker`, `formloom jobs …`) and the HTTP API."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner

from formloom.designer_api.app import create_app
from formloom.platform.cli import main
from formloom.platform.database import Workspace
from formloom.platform.environments import PRODUCTION
from formloom.platform.jobs import JobContext, JobType, enqueue, job_types
from formloom.platform.settings import Settings
from tests.clients import admin_client


class AlwaysFails(JobType):
    name = "test_always_fails"

    def run(self, ctx: JobContext, payload: dict[str, Any]) -> None:
        ctx.report_progress(1, 2, "half way")
        raise RuntimeError("the webhook answered 500")


@pytest.fixture
def failing_job(workspace: Workspace) -> Iterator[int]:
    with job_types.restored_after():
        job_types.register(AlwaysFails())
        with workspace.begin(PRODUCTION) as conn:
            job_id = enqueue(conn, job_type="test_always_fails", payload={}, max_attempts=1)
        yield job_id


@pytest.fixture
def cli(settings: Settings, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("FORMLOOM_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("FORMLOOM_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("FORMLOOM_NAMESPACE", settings.namespace)
    runner = CliRunner()
    return lambda *args: runner.invoke(main, list(args), catch_exceptions=False)


def test_worker_once_then_list_failed_and_retry(cli, failing_job):
    assert cli("worker", "--once").output.strip() == "ran 1 job(s)"
    listed = cli("jobs", "list", "--failed")
    assert listed.exit_code == 0
    assert listed.output.startswith(f"{failing_job}\ttest_always_fails\tfailed\t1/1")
    assert "the webhook answered 500" in listed.output
    assert '"status": "failed"' in cli("jobs", "show", str(failing_job)).output
    assert cli("jobs", "retry", str(failing_job)).exit_code == 0
    assert cli("jobs", "list", "--failed").output == ""
    assert cli("jobs", "retry", "999999").exit_code == 2


def test_job_progress_and_retry_over_http(settings, failing_job, workspace):
    from formloom.platform.worker import Worker

    Worker(workspace).run_once()
    with admin_client(create_app(settings, run_worker=False)) as client:
        job = client.get(f"/api/jobs/{failing_job}").json()
        assert job["status"] == "failed"
        assert job["progress"]["done"] == 1 and job["progress"]["message"] == "half way"
        listed = client.get("/api/envs/production/jobs", params={"status": "failed"}).json()
        assert [j["id"] for j in listed] == [failing_job]
        retried = client.post(f"/api/envs/production/jobs/{failing_job}/retry")
        assert retried.json()["status"] == "queued"
        assert client.get("/api/jobs/424242").status_code == 404
        assert client.get(f"/api/jobs/{failing_job}", params={"env": "nowhere"}).status_code == 404


def test_a_worker_started_on_its_own_knows_every_platform_job_type() -> None:
    import subprocess
    import sys

    code = (
        "from formloom.platform.worker import PLATFORM_JOB_MODULES, load_platform_job_types\n"
        "from formloom.platform.jobs import job_types\n"
        "load_platform_job_types()\n"
        "print(','.join(sorted(job_types.names())))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    names = set(done.stdout.strip().split(","))
    assert {"import_records", "recompute_formulas", "backfill_auto_numbers"} <= names
    assert len([n for n in names if n.startswith("approval")]) >= 3, names
