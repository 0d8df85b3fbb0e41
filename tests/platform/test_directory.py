"""The pickers' directory: colleagues and teams by a few letters, names only, for any user."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from formloom.platform import users as user_service
from formloom.platform.app import build_app
from formloom.platform.caller import PLATFORM_CALLER
from formloom.platform.database import Workspace
from formloom.platform.environments import create_environment
from formloom.platform.settings import Settings
from tests.identity import bearer_headers, create_team, create_user


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(build_app(settings, run_worker=False)) as test_client:
        yield test_client


@pytest.fixture
def workspace(client: TestClient) -> Workspace:
    found: Workspace = client.app.state.workspace  # type: ignore[attr-defined]
    return found


def test_a_user_without_roles_finds_colleagues_by_letters_of_their_name(
    client: TestClient, workspace: Workspace
) -> None:
    # given
    me = create_user(workspace, "plain")
    create_user(workspace, "zhang.wei", display_name="张伟", email="zw@example.com")
    create_user(workspace, "li.na", display_name="Li Na")

    # when
    found = client.get(
        "/api/envs/production/users", params={"q": "张"}, headers=bearer_headers(workspace, me)
    )

    # then: names and logins only, nothing else of the account
    assert found.status_code == 200
    assert found.json()["items"] == [
        {"id": found.json()["items"][0]["id"], "login": "zhang.wei", "name": "张伟"}
    ]


def test_deactivated_users_are_not_offered(client: TestClient, workspace: Workspace) -> None:
    me = create_user(workspace, "plain")
    gone = create_user(workspace, "gone.user")
    user_service.set_active(workspace, gone, False, caller=PLATFORM_CALLER)

    found = client.get(
        "/api/envs/production/users", params={"q": "gone"}, headers=bearer_headers(workspace, me)
    )

    assert found.json()["items"] == []


def test_known_ids_get_their_names(client: TestClient, workspace: Workspace) -> None:
    me = create_user(workspace, "plain")
    other = create_user(workspace, "other", display_name="Other One")

    found = client.get(
        "/api/envs/production/users", params={"id": [other]}, headers=bearer_headers(workspace, me)
    )

    assert [item["name"] for item in found.json()["items"]] == ["Other One"]


def test_like_wildcards_in_the_letters_match_literally(
    client: TestClient, workspace: Workspace
) -> None:
    me = create_user(workspace, "plain")
    create_user(workspace, "a_b")
    create_user(workspace, "axb")

    found = client.get(
        "/api/envs/production/users", params={"q": "a_b"}, headers=bearer_headers(workspace, me)
    )

    assert [item["login"] for item in found.json()["items"]] == ["a_b"]


def test_teams_by_letters_of_their_name(client: TestClient, workspace: Workspace) -> None:
    me = create_user(workspace, "plain")
    create_team(workspace, "east_sales")
    create_team(workspace, "support")

    found = client.get(
        "/api/envs/production/teams", params={"q": "east"}, headers=bearer_headers(workspace, me)
    )

    assert [item["name"] for item in found.json()["items"]] == ["east_sales"]


def test_the_directory_needs_a_credential_for_the_environment(
    client: TestClient, workspace: Workspace
) -> None:
    create_environment(workspace, "sandbox")
    me = create_user(workspace, "plain")

    anonymous = client.get("/api/envs/production/users")
    bound = client.get(
        "/api/envs/production/users", headers=bearer_headers(workspace, me, env="sandbox")
    )
    too_many = client.get(
        "/api/envs/production/users", params={"limit": 500}, headers=bearer_headers(workspace, me)
    )

    assert anonymous.status_code == 401
    assert bound.status_code == 403
    assert too_many.status_code == 422
