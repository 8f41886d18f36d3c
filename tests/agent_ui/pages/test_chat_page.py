"""The chat page through the NiceGUI `user` fixture, answering from the scripted upstream."""

from __future__ import annotations

import asyncio

from nicegui.testing import User

from tests.agent_ui.pages.test_auth_pages import register_in_ui
from tests.upstream import ScriptedUpstream, Step, words


async def signed_in(user: User) -> None:
    await register_in_ui(user, "chat@example.com")
    await user.should_see(marker="empty-thread", retries=100)


async def ask(user: User, text: str) -> None:
    user.find(marker="message").type(text)
    user.find(marker="send").click()


async def test_a_question_streams_an_answer_and_lists_the_session(
    ui_env: str, user: User, upstream: ScriptedUpstream
) -> None:
    await signed_in(user)
    upstream.push(Step(text=words("Whales are mammals.")))
    await ask(user, "Are whales fish?")
    await user.should_see("Are whales fish?", retries=50)
    await user.should_see("Whales are mammals.", retries=100)
    await user.should_see(marker="session-title", retries=50)
    await user.should_see(marker="regenerate")
    usage = next(iter(user.find(marker="usage").elements))
    for _ in range(100):  # the usage is read after the answer is shown
        if "tokens" in usage.text:  # type: ignore[attr-defined]
            break
        await asyncio.sleep(0.05)
    assert "tokens" in usage.text  # type: ignore[attr-defined]


async def test_tool_calls_show_as_cards_and_the_session_survives_a_reload(
    ui_env: str, user: User, upstream: ScriptedUpstream
) -> None:
    await signed_in(user)
    upstream.push(Step(tool_calls=[("calculator", {"expression": "6*7"})]), Step(text=words("It is 42.")))
    await ask(user, "6 times 7?")
    await user.should_see("It is 42.", retries=100)
    await user.should_see(marker="tool-card")
    await user.open("/")  # a new chat: the old one is in the sidebar
    await user.should_see(marker="empty-thread", retries=50)
    user.find(marker="session-item").click()
    await user.should_see("It is 42.", retries=100)
    await user.should_see("6 times 7?")
    await user.should_see(marker="tool-card")
    assert user.back_history[-1].startswith("/chat/chs_")


async def test_stop_keeps_the_partial_answer(ui_env: str, user: User, upstream: ScriptedUpstream) -> None:
    await signed_in(user)
    upstream.push(Step(text=[f"word{i} " for i in range(300)], rate=30))
    await ask(user, "Talk for a long time")
    await user.should_see("word1", retries=100)
    user.find(marker="stop").click()
    await user.should_see(marker="answer-status", retries=100)
    await user.should_see("Stopped.")
    await user.should_not_see("word299")


async def test_regenerate_rename_and_delete_from_the_page(ui_env: str, user: User, upstream: ScriptedUpstream) -> None:
    await signed_in(user)
    upstream.push(Step(text=["First try."]), Step(text=["Second try."]))
    await ask(user, "Say something")
    await user.should_see(marker="regenerate", retries=100)  # shown once the answer is complete
    user.find(marker="regenerate").click()
    await user.should_see("Second try.", retries=100)
    await user.should_see(marker="regenerate", retries=100)
    await user.should_not_see("First try.")  # the new branch is shown; the old one stays stored

    user.find(marker="rename-session").click()
    user.find(marker="rename-input").clear().type("Renamed chat")
    user.find(marker="rename-save").click()
    await user.should_see("Renamed chat", retries=50)
    user.find(marker="delete-session").click()
    user.find(marker="delete-confirm").click()
    await user.should_see("No chats yet.", retries=100)
