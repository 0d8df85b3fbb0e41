"""The `formloom` command line, on both databases."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from formloom.platform.cli import main, render_schemas
from formloom.platform.database import Workspace
from formloom.platform.settings import Settings
from tests.clients import admin_token

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = {
    "kind": "entity",
    "name": "account",
    "label": {"zh": "客户", "en": "Account"},
    "fields": [{"name": "company", "label": {"zh": "公司", "en": "Company"}, "type": "text"}],
}
CONTACT = {
    "name": "contact",
    "label": {"zh": "联系人", "en": "Contact"},
    "fields": [
        {"name": "full_name", "label": {"zh": "姓名", "en": "Name"}, "type": "text"},
        {
            "name": "account",
            "label": {"zh": "客户", "en": "Account"},
            "type": "lookup",
            "options": {"entity": "account"},
        },
    ],
}


@pytest.fixture
def cli(settings: Settings, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("FORMLOOM_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("FORMLOOM_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("FORMLOOM_NAMESPACE", settings.namespace)
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(main, list(args), catch_exceptions=False)

    return run


@pytest.fixture
def documents(tmp_path: Path) -> Path:
    folder = tmp_path / "metadata"
    (folder / "entity").mkdir(parents=True)
    (folder / "account.json").write_text(json.dumps(ACCOUNT, ensure_ascii=False))
    (folder / "entity" / "contact.json").write_text(json.dumps(CONTACT, ensure_ascii=False))
    return folder


def test_apply_export_history_round_trip(cli, documents, tmp_path):
    # when a folder is validated and applied
    assert cli("meta", "validate", str(documents)).exit_code == 0
    applied = cli("meta", "apply", str(documents), "--env", "production")
    # then both entities are published (lookup target first) and re-applying changes nothing
    assert applied.exit_code == 0, applied.output
    assert applied.output.splitlines() == ["entity account: version 1", "entity contact: version 1"]
    again = cli("meta", "apply", str(documents), "--env", "production")
    assert "entity account: unchanged" in again.output
    # export writes files that apply cleanly into another environment
    out = tmp_path / "export"
    assert cli("meta", "export", "--env", "production", str(out)).exit_code == 0
    exported = json.loads((out / "entity" / "contact.json").read_text())
    assert exported["kind"] == "entity" and exported["fields"][0]["id"].startswith("fld_")
    assert cli("env", "create", "sandbox").exit_code == 0
    assert cli("meta", "apply", str(out), "--env", "sandbox").exit_code == 0
    history = cli("meta", "history", "entity", "contact", "--env", "sandbox")
    assert history.output.startswith("1\tpublish\t")


def test_invalid_documents_exit_1_with_every_error(cli, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(
            {
                "kind": "entity",
                "name": "Bad",
                "label": {"zh": "x"},
                "fields": [{"name": "a", "label": {"zh": "a", "en": "b"}, "type": "txt"}],
            }
        )
    )
    result = cli("meta", "apply", str(bad), "--env", "production")
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert f"{bad}: /fields/0/type: unknown field type `txt` (did you mean `text`?)" in lines[0]
    assert any(line.startswith(f"{bad}: /label:") for line in lines)
    assert any(line.startswith(f"{bad}: /name:") for line in lines)
    assert len(lines) == 3


def test_unreadable_and_kindless_files_are_reported(cli, tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    kindless = tmp_path / "kindless.json"
    kindless.write_text(json.dumps({"name": "x"}))
    assert cli("meta", "validate", str(broken)).exit_code == 1
    result = cli("meta", "validate", str(kindless))
    assert result.exit_code == 1 and "cannot tell the document kind" in result.output


def test_usage_errors_exit_2(cli, documents):
    assert cli("meta", "apply", str(documents)).exit_code == 2  # --env missing
    unknown = cli("meta", "apply", str(documents), "--env", "nowhere")
    assert unknown.exit_code == 2 and "`nowhere`" in unknown.output
    assert cli("env", "drop", "production", "--yes").exit_code == 2
    assert cli("env", "create", "Bad Name").exit_code == 1


def test_env_commands(cli):
    assert cli("env", "create", "sandbox_1", "--description", "试验").exit_code == 0
    assert "sandbox_1" in cli("env", "list").output
    assert cli("env", "drop", "sandbox_1", "--yes").exit_code == 0
    assert "sandbox_1" not in cli("env", "list").output


def test_help_everywhere():
    runner = CliRunner()
    for command in (
        [],
        ["init"],
        ["serve"],
        ["env"],
        ["env", "list"],
        ["env", "create"],
        ["env", "drop"],
        ["meta"],
        ["meta", "validate"],
        ["meta", "apply"],
        ["meta", "export"],
        ["meta", "history"],
        ["meta", "schemas"],
    ):
        result = runner.invoke(main, [*command, "--help"])
        assert result.exit_code == 0, command
        assert "Usage:" in result.output


def test_published_schema_files_are_current():
    folder = ROOT / "docs" / "schemas"
    for kind, text in render_schemas().items():
        path = folder / f"{kind}.schema.json"
        assert path.exists() and path.read_text() == text, (
            f"{path} is stale: run `formloom meta schemas docs/schemas`"
        )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_serve_starts_and_answers(settings):
    port = _free_port()
    env = {
        **os.environ,
        "FORMLOOM_DATA_DIR": str(settings.data_dir),
        "FORMLOOM_DATABASE_URL": settings.database_url,
        "FORMLOOM_NAMESPACE": settings.namespace,
        "PORT": str(port),
    }
    formloom = Path(sys.executable).with_name("formloom")
    process = subprocess.Popen(
        [str(formloom), "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=1)
                break
            except httpx.TransportError:
                assert process.poll() is None, (
                    process.stdout.read().decode() if process.stdout else ""
                )
                assert time.monotonic() < deadline, "server did not start in 30 s"
                time.sleep(0.2)
        assert response.json()["status"] == "ok"
        url = f"http://127.0.0.1:{port}/api/environments"
        assert httpx.get(url).status_code == 401  # no credential, no data
        workspace = Workspace(settings)
        try:
            headers = {"Authorization": f"Bearer {admin_token(workspace)}"}
        finally:
            workspace.dispose()
        envs = httpx.get(url, headers=headers).json()
        assert [e["name"] for e in envs] == ["production"]
    finally:
        process.terminate()
        process.communicate(timeout=15)
