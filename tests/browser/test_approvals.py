"""Approvals in Chromium: the rep submits a deal from its record page, the manager approves it
from the inbox with a comment, and the record shows the outcome and the history; a reject
without the comment the step requires shows the reason next to the comment box.

The server is the conftest's pattern (uvicorn in a thread, SQLite in a temporary folder)
with the approval world of :mod:`tests.web.test_approval_pages` published. Screenshots go
to ``docs/screenshots/inbox.png`` and ``approval.png``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.conftest import Server
from tests.browser.harness import browser_app, serving, shoot
from tests.identity import PASSWORD
from tests.web.test_approval_pages import publish_approvals
from tests.web.world import ENV


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    app = browser_app(tmp_path_factory, "approvals")
    ids = publish_approvals(app.state.workspace)
    with serving(app) as url:
        yield Server(url, ids)


def sign_in(page: Any, server: Server, login: str) -> None:
    page.goto(f"{server.url}/app/login?next=/app/{ENV}/deal")
    page.get_by_label("Login").fill(login)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{server.url}/app/{ENV}/deal")


def sign_out(page: Any) -> None:
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/app/login**")


def new_submitted_deal(page: Any, server: Server, title: str) -> str:
    """As the rep: create a deal, submit it from its record page; the record page's URL."""
    sign_in(page, server, "rep")
    page.get_by_role("link", name="New", exact=True).click()
    page.get_by_label("Title").fill(title)
    page.get_by_label("Amount").fill("5000")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(f"{server.url}/app/{ENV}/deal/*")
    record_url: str = page.url
    page.locator("#submit-comment").fill("Please approve")
    page.get_by_role("button", name="Submit for approval").click()
    page.get_by_text("Submitted for approval.").wait_for()
    assert page.locator('[data-status="running"]').is_visible()
    sign_out(page)
    return record_url


def inbox_row(page: Any, record_url: str) -> Any:
    """The inbox row of the record (rows name records as "Deal #<id>")."""
    return page.locator("tr", has_text=f"Deal #{record_url.rsplit('/', 1)[1]}")


def open_task_as_manager(page: Any, server: Server, record_url: str) -> None:
    sign_in(page, server, "manager")
    page.get_by_role("link", name="Approvals").click()
    page.wait_for_url(f"{server.url}/app/{ENV}/-/inbox")
    inbox_row(page, record_url).get_by_role("link", name="Deal approval").click()
    page.wait_for_url(f"{server.url}/app/{ENV}/-/approvals/*")


def test_submit_then_the_manager_approves_from_the_inbox(page: Any, server: Server) -> None:
    record_url = new_submitted_deal(page, server, "Acme renewal")

    sign_in(page, server, "manager")
    page.locator(".ap-badge", has_text="1").wait_for()
    page.get_by_role("link", name="Approvals").click()
    page.wait_for_url(f"{server.url}/app/{ENV}/-/inbox")
    assert page.get_by_role("link", name="Deal #").first.is_visible()
    shoot(page, "inbox")
    inbox_row(page, record_url).get_by_role("link", name="Deal approval").click()
    page.wait_for_url(f"{server.url}/app/{ENV}/-/approvals/*")
    assert page.get_by_text("Acme renewal").first.is_visible()
    page.get_by_label("Comment (required to reject)").fill("Looks good")
    shoot(page, "approval")
    page.get_by_role("button", name="Approve").click()
    page.get_by_text("Approved.").wait_for()

    page.goto(record_url)
    status = page.locator("#approval [data-status]")
    assert status.get_attribute("data-status") == "approved"
    assert status.inner_text() == "Approved"
    history = page.locator(".ap-timeline")
    assert history.get_by_text("Looks good").is_visible()
    assert history.get_by_text("Please approve").is_visible()


def test_a_reject_needs_the_comment_the_step_requires(page: Any, server: Server) -> None:
    record_url = new_submitted_deal(page, server, "Risky deal")
    open_task_as_manager(page, server, record_url)

    page.get_by_role("button", name="Reject").click()

    error = page.locator("[id$='-decide-error']")
    error.wait_for()
    assert "a comment is required" in error.inner_text()
    page.get_by_label("Comment (required to reject)").fill("Too risky")
    page.get_by_role("button", name="Reject").click()
    page.get_by_text("Rejected.").first.wait_for()
    page.goto(record_url)
    assert page.locator("#approval [data-status]").get_attribute("data-status") == "rejected"
