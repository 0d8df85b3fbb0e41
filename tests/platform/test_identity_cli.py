"""`formloom users|roles|teams` and the first administrator made by `formloom init`."""

from __future__ import annotations

import stat

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from formloom.platform.cli import main
from formloom.platform.cli_identity import CREDENTIALS_FILE
from formloom.platform.database import Workspace
from formloom.platform.login import log_in
from formloom.platform.settings import Settings
from formloom.platform.tables import security_audit, user


@pytest.fixture
def cli(settings: Settings, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("FORMLOOM_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("FORMLOOM_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("FORMLOOM_NAMESPACE", settings.namespace)
    monkeypatch.setenv("FORMLOOM_PASSWORD_HASHING", "fast")
    monkeypatch.delenv("FORMLOOM_ADMIN_PASSWORD", raising=False)
    runner = CliRunner()

    def run(*args: str, input: str | None = None):
        return runner.invoke(main, list(args), input=input, catch_exceptions=False)

    return run


@pytest.fixture
def workspace_of(settings: Settings):
    opened: list[Workspace] = []

    def open_it() -> Workspace:
        opened.append(Workspace(settings))
        return opened[-1]

    yield open_it
    for workspace in opened:
        workspace.dispose()


def test_init_creates_the_first_admin_once(cli, settings, workspace_of):
    # when
    first = cli("init")
    second = cli("init")

    # then
    assert first.exit_code == 0, first.output
    assert "created the first administrator: login `admin`, password " in first.output
    path = settings.data_dir / CREDENTIALS_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    written = dict(
        line.split(": ", 1)
        for line in path.read_text().splitlines()
        if line.startswith(("login", "password"))
    )
    assert written["login"] == "admin" and written["password"] in first.output
    assert second.exit_code == 0 and "administrator" not in second.output
    workspace = workspace_of()
    assert log_in(workspace, login="admin", password=written["password"]).user["admin"]
    with workspace.begin(readonly=True) as conn:
        assert conn.execute(select(user.c.login)).scalars().all() == ["admin"]


def test_init_takes_the_admin_password_from_the_environment(
    cli, settings, workspace_of, monkeypatch
):
    monkeypatch.setenv("FORMLOOM_ADMIN_PASSWORD", "chosen secret 1")

    result = cli("init")

    assert result.exit_code == 0
    assert "from $FORMLOOM_ADMIN_PASSWORD" in result.output
    assert "chosen secret 1" not in result.output
    assert not (settings.data_dir / CREDENTIALS_FILE).exists()
    assert log_in(workspace_of(), login="admin", password="chosen secret 1")


def test_users_commands(cli, workspace_of):
    cli("init")

    created = cli(
        "users",
        "create",
        "Zhang.Wei",
        "--password",
        "zhang wei 2026",
        "--display-name",
        "Zhang Wei",
        "--email",
        "zw@example.com",
    )
    generated = cli("users", "create", "li.na", "--manager", "zhang.wei")
    prompted = cli("users", "create", "wang", "--prompt", input="wang fang 88\nwang fang 88\n")

    assert created.exit_code == 0 and "created user zhang.wei" in created.output
    assert "password: " in generated.output
    assert prompted.exit_code == 0, prompted.output
    listed = cli("users", "list").output.splitlines()
    assert [line.split("\t")[1] for line in listed] == ["admin", "zhang.wei", "li.na", "wang"]
    assert "Zhang Wei\tzw@example.com" in listed[1]
    assert cli("users", "deactivate", "wang").exit_code == 0
    assert "wang\tdeactivated" in cli("users", "list").output
    assert cli("users", "activate", "WANG").exit_code == 0
    assert cli("users", "set-password", "wang", "--password", "new secret 77").exit_code == 0
    assert cli("users", "grant-admin", "wang").exit_code == 0
    assert "wang\tactive\tadmin" in cli("users", "list").output
    assert cli("users", "revoke-admin", "wang").exit_code == 0
    assert cli("users", "unlock", "wang").exit_code == 0
    assert log_in(workspace_of(), login="wang", password="new secret 77")


def test_users_command_errors(cli):
    cli("init")

    unknown = cli("users", "deactivate", "nobody")
    weak = cli("users", "create", "sam", "--password", "short")
    last_admin = cli("users", "deactivate", "admin")

    assert unknown.exit_code == 2 and "no user has the login `nobody`" in unknown.output
    assert weak.exit_code == 1 and "/password: the password has 5 characters" in weak.output
    assert last_admin.exit_code == 2 and "last active administrator" in last_admin.output


def test_roles_commands(cli, workspace_of):
    cli("init")
    cli("users", "create", "sam", "--password", "sam sam 2026")

    assigned = cli("roles", "assign", "sam", "sales_rep", "manager", "--env", "production")
    revoked = cli("roles", "revoke", "sam", "manager", "--env", "production")
    listed = cli("roles", "list", "--env", "production")

    assert assigned.exit_code == 0 and "manager, sales_rep" in assigned.output
    assert revoked.exit_code == 0 and "sam in production: sales_rep" in revoked.output
    assert listed.output == "sam\tsales_rep\n"
    assert cli("roles", "assign", "sam", "Bad-Role", "--env", "production").exit_code == 1
    assert cli("roles", "list", "--env", "nowhere").exit_code == 2
    with workspace_of().begin(readonly=True) as conn:
        actions = conn.execute(select(security_audit.c.action)).scalars().all()
    assert actions.count("roles.changed") == 2


def test_teams_commands(cli):
    cli("init")
    cli("users", "create", "sam", "--password", "sam sam 2026")
    cli("users", "create", "ann", "--password", "ann ann 2026")

    assert (
        cli("teams", "create", "sales", "--label", "Sales", "--label-zh", "销售部").exit_code == 0
    )
    assert cli("teams", "create", "east", "--parent", "sales", "--leader", "sam").exit_code == 0
    added = cli("teams", "add-member", "east", "sam", "ann")
    assert added.exit_code == 0
    assert cli("teams", "remove-member", "east", "ann").exit_code == 0
    listed = cli("teams", "list").output.splitlines()

    assert [line.split("\t")[1:3] for line in listed] == [["east", "sales"], ["sales", "-"]]
    assert listed[0].endswith("1 member(s)")
    assert cli("teams", "add-member", "nowhere", "sam").exit_code == 2
    assert cli("teams", "create", "Bad Name").exit_code == 1


def test_help_of_identity_commands():
    runner = CliRunner()
    for command in (
        ["users"],
        ["users", "create"],
        ["users", "set-password"],
        ["roles", "assign"],
        ["roles", "list"],
        ["teams", "create"],
        ["teams", "add-member"],
    ):
        result = runner.invoke(main, [*command, "--help"])
        assert result.exit_code == 0 and "Usage:" in result.output, command
