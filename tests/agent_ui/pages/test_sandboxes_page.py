"""The Sandboxes pages on the local backend: create with the form, run a command, see files, destroy."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from nicegui.testing import User

from tests.agent_ui.pages.test_auth_pages import register_in_ui
from tests.upstream import ScriptedUpstream, Step, words


@pytest.fixture
def local_sandboxes(ui_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENT_UI_SANDBOX__BACKEND", "local")
    monkeypatch.setenv("AGENT_UI_SANDBOX__WARM_POOL__LOCAL", "1")


def text(user: User, marker: str) -> str:
    return next(iter(user.find(marker=marker).elements)).text  # type: ignore[attr-defined]


async def terminal_when(user: User, ready: Callable[[list[str]], bool]) -> list[str]:
    """The terminal's lines, once ``ready`` holds for them."""
    shown: list[str] = []
    for _ in range(200):
        log = next(iter(user.find(marker="terminal-output").elements))
        shown = [child.text for child in log.default_slot.children]  # type: ignore[attr-defined]
        if ready(shown):
            return shown
        await asyncio.sleep(0.05)
    raise AssertionError(f"the terminal never got there: {shown}")


async def create_in_ui(user: User) -> str:
    await user.open("/sandboxes")
    await user.should_see(marker="no-sandboxes", retries=50)
    await user.should_see("local backend")
    user.find(marker="create-sandbox").click()
    await user.should_see(marker="terminal-output", retries=100)
    return text(user, "sandbox-id")


async def test_create_run_a_command_see_its_files_and_destroy(local_sandboxes: None, user: User) -> None:
    await register_in_ui(user, "runner@example.com")
    await user.should_see(marker="empty-thread", retries=100)
    sandbox_id = await create_in_ui(user)
    assert sandbox_id.startswith("sbx_")
    assert text(user, "sandbox-status") == "running"
    await user.should_see(marker="files-empty", retries=50)

    user.find(marker="command").type('python3 -c "print(6*7)"; echo oops >&2; echo hi > made.txt; exit 3')
    user.find(marker="run").click()
    shown = await terminal_when(user, lambda lines: bool(lines) and lines[-1].startswith("exit "))
    assert shown[0].startswith('$ python3 -c "print(6*7)"') and shown[-1].startswith("exit 3 · ")
    assert sorted(shown[1:-1]) == ["42", "oops"]  # stdout and stderr, each as whole lines
    await user.should_see(marker="file-made.txt", retries=50)  # the file list follows the command

    await user.open("/sandboxes")
    await user.should_see(marker=f"sandbox-{sandbox_id}", retries=50)
    user.find(marker=f"destroy-{sandbox_id}").click()
    user.find(marker="confirm-destroy").click()
    await user.should_see(marker="no-sandboxes", retries=100)
    user.find(marker="show-destroyed").click()
    await user.should_see("destroyed by user", retries=50)


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


async def test_stop_kills_the_running_command(local_sandboxes: None, user: User) -> None:
    await register_in_ui(user, "stopper@example.com")
    await user.should_see(marker="empty-thread", retries=100)
    await create_in_ui(user)
    user.find(marker="command").type("echo started; sleep 2; touch late.txt")
    user.find(marker="run").click()
    await terminal_when(user, lambda lines: "started" in lines)
    user.find(marker="stop").click()
    await terminal_when(user, lambda lines: lines[-1] == "stopped")
    await asyncio.sleep(2.5)  # past the moment the command would have written its file
    user.find(marker="command").type("ls -A")
    user.find(marker="run").click()
    shown = await terminal_when(user, lambda lines: lines[-1].startswith("exit "))
    assert "late.txt" not in shown and shown[-2] == "$ ls -A"
