"""The Sandboxes pages on the local backend: create with the form, work in the sandbox's terminals (tabs, quota,
a reload that reattaches), see the files commands made, destroy. No browser here: what the page sends to its
xterms is read from the page's JavaScript calls, and typing is the xterm's data event."""

from __future__ import annotations

import asyncio
import json
import re
from collections import defaultdict
from collections.abc import Callable

import pytest
from nicegui import ui
from nicegui.testing import User

from services.sandbox import SandboxService
from services.sandbox.schemas import TerminalRead
from tests.agent_ui.pages.test_auth_pages import register_in_ui
from tests.agent_ui.pages.test_chat_page import app_services
from tests.upstream import ScriptedUpstream, Step, words

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")
# How the page writes to an xterm (agent_ui.components.terminal.WRITE), as the browser receives it.
WRITE = re.compile(r"(?s).*getElement\((\d+)\)\?\.terminal;.*terminal\.write\((\".*\"), \(\) => done\(true\)\)")

# The database plays no part in terminals (the sandbox API tests run on both).
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def local_sandboxes(ui_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENT_UI_SANDBOX__BACKEND", "local")
    monkeypatch.setenv("AGENT_UI_SANDBOX__WARM_POOL__LOCAL", "1")


class Screens:
    """Everything written to each xterm (by element id), as text without escape sequences; each write is
    answered at once, as a browser's xterm answers once it has taken the text in."""

    def __init__(self, user: User) -> None:
        self.user = user
        self.written: dict[int, str] = defaultdict(str)
        self.first_write: dict[int, str] = {}
        user.javascript_rules[WRITE] = self._write

    def _write(self, match: re.Match[str]) -> bool:
        xterm_id, text = int(match.group(1)), ANSI.sub("", json.loads(match.group(2)))
        self.first_write.setdefault(xterm_id, text)
        self.written[xterm_id] += text
        return True

    def forget(self) -> None:
        """A new page: its elements' ids are those the page before had."""
        self.written.clear()
        self.first_write.clear()

    def xterm(self, terminal_id: str | None = None) -> ui.xterm:
        found = self.user.find(marker=f"xterm-{terminal_id}" if terminal_id else "xterm").elements
        assert len(found) == 1, f"{len(found)} xterms"
        return next(iter(found))  # type: ignore[return-value]

    async def until(self, pattern: str, terminal_id: str | None = None) -> str:
        """The text written to the terminal's xterm, once it matches ``pattern``."""
        xterm = self.xterm(terminal_id)
        for _ in range(300):
            if re.search(pattern, self.written[xterm.id]):
                return self.written[xterm.id]
            await asyncio.sleep(0.05)
        raise AssertionError(f"the terminal never showed {pattern!r}: {self.written[xterm.id]!r}")

    async def prompt(self, terminal_id: str | None = None) -> None:
        """Wait for the shell's prompt; the page takes keys once the scrollback is replayed (just after)."""
        await self.until(r"\$ $", terminal_id)
        await asyncio.sleep(0.2)

    def type(self, text: str, terminal_id: str | None = None) -> None:
        """Keys as xterm sends them (Enter is a carriage return)."""
        self.user.find(marker=f"xterm-{terminal_id}" if terminal_id else "xterm").trigger("data", text)


def text(user: User, marker: str) -> str:
    return next(iter(user.find(marker=marker).elements)).text  # type: ignore[attr-defined]


def tab_ids(user: User) -> list[str]:
    """The terminals' tabs, left to right."""
    tabs = next(iter(user.find(marker="terminal-tabs").elements))
    return [tab.props["name"] for tab in tabs.default_slot.children]


async def create_in_ui(user: User) -> str:
    await user.open("/sandboxes")
    await user.should_see(marker="no-sandboxes", retries=50)
    await user.should_see("local backend")
    user.find(marker="create-sandbox").click()
    await user.should_see(marker="terminal-tab", retries=100)
    return text(user, "sandbox-id")


async def terminals_of(sandbox_id: str, ready: Callable[[list[TerminalRead]], bool]) -> list[TerminalRead]:
    """The sandbox's open terminals as the service has them, once ``ready`` holds for them."""
    found: list[TerminalRead] = []
    for _ in range(100):
        found = [terminal.read() for terminal in app_services().get(SandboxService).terminals.of_sandbox(sandbox_id)]
        if ready(found):
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"the terminals never got there: {found}")


async def test_a_new_sandbox_opens_a_terminal_whose_commands_show_their_files(
    local_sandboxes: None, user: User
) -> None:
    screens = Screens(user)
    await register_in_ui(user, "runner@example.com")
    await user.should_see(marker="empty-thread", retries=100)
    sandbox_id = await create_in_ui(user)
    assert sandbox_id.startswith("sbx_")
    assert text(user, "sandbox-status") == "running"
    assert len(tab_ids(user)) == 1  # the sandbox had no terminal: the page opened one

    await screens.prompt()
    await user.should_not_see(marker="file-made.txt")
    screens.type('python3 -c "print(6*7)"; echo hi > made.txt\r')
    await screens.until(r"\n42\n")
    await user.should_see(marker="file-made.txt", retries=50)  # the file list is read again once output pauses

    await user.open("/sandboxes")
    await user.should_see(marker=f"sandbox-{sandbox_id}", retries=50)
    user.find(marker=f"destroy-{sandbox_id}").click()
    user.find(marker="confirm-destroy").click()
    await user.should_see(marker="no-sandboxes", retries=100)
    user.find(marker="show-destroyed").click()
    await user.should_see("destroyed by user", retries=50)


async def test_reopening_the_page_shows_the_same_terminal_and_what_it_showed(local_sandboxes: None, user: User) -> None:
    screens = Screens(user)
    await register_in_ui(user, "again@example.com")
    await user.should_see(marker="empty-thread", retries=100)
    sandbox_id = await create_in_ui(user)
    [terminal_id] = tab_ids(user)
    await screens.prompt()
    screens.type("echo marker-$((6*7))\r")
    await screens.until(r"\nmarker-42\n")
    await terminals_of(sandbox_id, lambda found: [t.attached for t in found] == [1])

    first = user.client
    assert first is not None
    for socket_id in list(first._socket_to_document_id):  # the browser goes away (a reload)...
        first.handle_disconnect(socket_id)
    await terminals_of(sandbox_id, lambda found: [t.attached for t in found] == [0])  # ...and its page detached
    screens.forget()
    await user.open(f"/sandboxes/{sandbox_id}")  # ...and comes back
    assert tab_ids(user) == [terminal_id]  # the same terminal, no new one
    await screens.until(r"\nmarker-42\n", terminal_id)
    assert "marker-42" in screens.first_write[screens.xterm(terminal_id).id]  # the scrollback came first
    await terminals_of(sandbox_id, lambda found: [t.attached for t in found] == [1])

    screens.type("pwd\r", terminal_id)  # the new page types into the same shell
    await screens.until(r"pwd\n/workspace\n", terminal_id)


async def test_tabs_open_more_terminals_within_the_quota_and_close_them(local_sandboxes: None, user: User) -> None:
    screens = Screens(user)
    await register_in_ui(user, "tabs@example.com")
    await user.should_see(marker="empty-thread", retries=100)
    sandbox_id = await create_in_ui(user)
    for count in (2, 3, 4):
        user.find(marker="new-terminal").click()
        for _ in range(100):
            if len(tab_ids(user)) == count:
                break
            await asyncio.sleep(0.05)
    ids = tab_ids(user)
    assert len(ids) == 4
    assert [t.id for t in await terminals_of(sandbox_id, lambda found: len(found) == 4)] == ids
    user.find(marker="new-terminal").click()
    await user.should_see("at most 4 terminals", retries=50)  # the quota, told in a notification
    assert len(tab_ids(user)) == 4

    user.find(marker=f"close-{ids[1]}").trigger("click.stop")
    await terminals_of(sandbox_id, lambda found: [t.id for t in found] == [ids[0], *ids[2:]])
    assert tab_ids(user) == [ids[0], *ids[2:]]

    await screens.prompt(ids[3])
    screens.type("exit 3\r", ids[3])
    await screens.until(r"\[process exited: the program exited with code 3\]", ids[3])
    await user.should_see(marker="terminal-ended", retries=50)
    assert [t.id for t in await terminals_of(sandbox_id, lambda found: len(found) == 2)] == ids[0:3:2]
    user.find(marker=f"close-{ids[3]}").trigger("click.stop")
    for _ in range(100):
        if tab_ids(user) == ids[0:3:2]:
            break
        await asyncio.sleep(0.05)
    assert tab_ids(user) == ids[0:3:2]


async def test_another_users_sandbox_page_is_not_shown(local_sandboxes: None, user: User) -> None:
    await register_in_ui(user, "owner@example.com")
    await user.should_see(marker="empty-thread", retries=100)
    sandbox_id = await create_in_ui(user)

    user.http_client.cookies.clear()
    await register_in_ui(user, "other@example.com")
    await user.should_see(marker="empty-thread", retries=100)
    await user.open(f"/sandboxes/{sandbox_id}")
    await user.should_see(marker="no-sandboxes", retries=50)
    await user.should_not_see(sandbox_id)


@pytest.fixture
def no_sandboxes(ui_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENT_UI_SANDBOX__BACKEND", "none")


async def test_the_page_says_when_sandboxes_are_off(no_sandboxes: None, user: User) -> None:
    await register_in_ui(user, "nobox@example.com")
    await user.should_see(marker="empty-thread", retries=100)
    await user.open("/sandboxes")
    await user.should_see(marker="sandboxes-off", retries=50)


async def test_a_command_the_agent_runs_shows_as_a_terminal_card(
    local_sandboxes: None, user: User, upstream: ScriptedUpstream
) -> None:
    await register_in_ui(user, "asker@example.com")
    await user.should_see(marker="empty-thread", retries=100)
    upstream.push(
        Step(tool_calls=[("sandbox_exec", {"command": 'python3 -c "print(6*7)"'})]), Step(text=words("It printed 42."))
    )
    user.find(marker="message").type("Compute 6*7 in Python")
    user.find(marker="send").click()
    await user.should_see("It printed 42.", retries=100)
    await user.should_see(marker="sandbox-card", retries=50)
    card = next(iter(user.find(marker="sandbox-card").elements))
    assert card.props["label"].startswith("sandbox  ·  exit 0 · ")  # type: ignore[attr-defined]
    assert text(user, "sandbox-stdout").strip() == "42"
    assert 'python3 -c "print(6*7)"' in next(iter(user.find(marker="sandbox-command").elements)).content  # type: ignore[attr-defined]
    await user.should_see(marker="open-sandbox")
