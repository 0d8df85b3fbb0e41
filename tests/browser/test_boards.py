"""The kanban board in Chromium: drag a card, see the figures change, see a refusal's reason.

The server is started here (the pattern of ``conftest.server``) because the board
needs more metadata than the shared world: the validation rule that refuses a won
deal without an amount (``tests.web.test_boards.publish_board_rules``). The tests
share the server and run in order: the first moves `Acme` to `won`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from formloom.platform import records
from formloom.platform.database import Workspace
from tests.browser.harness import SCREENSHOTS, browser_app, serving, shoot
from tests.identity import PASSWORD, principal_of
from tests.web.test_boards import publish_board_rules
from tests.web.world import ENV, publish_world

DEALS: dict[str, dict[str, Any]] = {
    "Acme": {"stage": "new", "amount": 100},
    "Beta": {"stage": "new", "amount": 50},
    "No amount": {"stage": "new"},
    "Old win": {"stage": "won", "amount": 1000},
}


@dataclass
class BoardServer:
    url: str
    deals: dict[str, int]

    @property
    def board(self) -> str:
        return f"{self.url}/app/{ENV}/deal/board"


def _create_deals(workspace: Workspace, rep: int) -> dict[str, int]:
    principal = principal_of(workspace, rep)
    return {
        title: int(
            records.create_record(
                workspace,
                env=ENV,
                entity="deal",
                payload={"title": title, **values},
                principal=principal,
            )["id"]
        )
        for title, values in DEALS.items()
    }


@pytest.fixture(scope="module")
def board_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BoardServer]:
    app = browser_app(tmp_path_factory, "boards")
    workspace = app.state.workspace
    ids = publish_world(workspace)
    publish_board_rules(workspace)
    deals = _create_deals(workspace, ids["rep"])
    with serving(app) as url:
        yield BoardServer(url, deals)


def sign_in(page: Any, server: BoardServer) -> None:
    page.goto(server.board)
    page.get_by_label("Login").fill("rep")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(server.board)


def column(page: Any, value: str) -> Any:
    return page.locator(f'.board-column[data-value="{value}"]')


def card(page: Any, server: BoardServer, title: str) -> Any:
    return page.locator(f"#board-card-{server.deals[title]}")


def test_drag_a_card_to_won_and_the_figures_follow(page: Any, board_server: BoardServer) -> None:
    sign_in(page, board_server)
    assert column(page, "new").locator(".board-count").inner_text() == "3 records"
    assert column(page, "won").locator(".board-total").inner_text() == "Amount total: 1,000"

    card(page, board_server, "Acme").drag_to(column(page, "won"))

    notice = page.locator("#board-notice")
    notice.get_by_text("“Acme” moved to won.").wait_for()
    assert column(page, "won").locator(".board-card", has_text="Acme").is_visible()
    assert column(page, "won").locator(".board-count").inner_text() == "2 records"
    assert column(page, "won").locator(".board-total").inner_text() == "Amount total: 1,100"
    assert column(page, "new").locator(".board-count").inner_text() == "2 records"
    assert column(page, "new").locator(".board-total").inner_text() == "Amount total: 50"
    shoot(page, "board")
    page.reload()
    assert column(page, "won").locator(".board-card", has_text="Acme").is_visible()
    assert column(page, "new").locator(".board-card", has_text="Acme").count() == 0


def test_a_refused_drag_shows_the_reason_and_the_card_goes_back(
    page: Any, board_server: BoardServer
) -> None:
    from playwright.sync_api import expect

    sign_in(page, board_server)

    card(page, board_server, "No amount").drag_to(column(page, "won"))

    notice = page.locator("#board-notice")
    notice.get_by_text("“No amount” was not moved: A won deal needs an amount").wait_for()
    expect(notice).to_have_class(re.compile(r"\berror\b"))
    assert column(page, "new").locator(".board-card", has_text="No amount").is_visible()
    assert column(page, "won").locator(".board-card", has_text="No amount").count() == 0
    assert column(page, "won").locator(".board-count").inner_text() == "2 records"


def test_a_phone_scrolls_the_columns_and_moves_with_the_list(
    browser: Any, board_server: BoardServer
) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 800}, locale="en-US")
    page = context.new_page()
    page.set_default_timeout(10_000)
    try:
        sign_in(page, board_server)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        board = page.locator(".board")
        assert board.evaluate("el => el.scrollWidth > el.clientWidth")

        beta = card(page, board_server, "Beta")
        beta.get_by_label("Move to").select_option("lost")
        beta.get_by_role("button", name="Move").click()

        page.locator("#board-notice").get_by_text("“Beta” moved to lost.").wait_for()
        assert column(page, "lost").locator(".board-card", has_text="Beta").count() == 1
        assert column(page, "lost").locator(".board-total").inner_text() == "Amount total: 50"
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "board-phone.png"))
        beta.get_by_label("Move to").select_option("new")  # the swapped-in board works too
        beta.get_by_role("button", name="Move").click()
        page.locator("#board-notice").get_by_text("“Beta” moved to new.").wait_for()
        assert column(page, "new").locator(".board-card", has_text="Beta").count() == 1
    finally:
        context.close()
