"""Platform migrations: a workspace at the newest revision is recognised without Alembic."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.script import ScriptDirectory

from formloom.platform.database import Workspace
from formloom.platform.migrate import (
    alembic_config,
    current_revisions,
    head_revision,
    upgrade_platform,
)


def test_the_head_revision_is_the_one_alembic_finds(workspace: Workspace) -> None:
    script = ScriptDirectory.from_config(alembic_config(workspace))

    assert [head_revision()] == script.get_heads()


def test_a_workspace_at_the_newest_revision_is_left_alone(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: the fixture's workspace is initialised
    assert current_revisions(workspace) == {head_revision()}

    def must_not_run(*_: object, **__: object) -> None:
        raise AssertionError("Alembic ran on a workspace at the newest revision")

    monkeypatch.setattr(command, "upgrade", must_not_run)

    # when / then
    upgrade_platform(workspace)


def test_an_older_workspace_is_upgraded(workspace: Workspace) -> None:
    # given: back at the first revision
    config = alembic_config(workspace)
    with workspace.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0001")
    assert current_revisions(workspace) == {"0001"}

    # when
    upgrade_platform(workspace)

    # then
    assert current_revisions(workspace) == {head_revision()}
