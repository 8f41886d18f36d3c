"""The chat page through the NiceGUI `user` fixture, answering from the scripted upstream."""

from __future__ import annotations

import asyncio

import markdown2
from nicegui import background_tasks, ui
from nicegui.testing import User

from agent_ui.components.chat_assets import fence_languages, label_code_blocks
from tests.agent_ui.pages.test_auth_pages import register_in_ui
from tests.upstream import ScriptedUpstream, Step, words


async def signed_in(user: User) -> None:
    await register_in_ui(user, "chat@example.com")
    await user.should_see(marker="empty-thread", retries=100)


async def ask(user: User, text: str) -> None:
    user.find(marker="message").type(text)
    user.find(marker="send").click()


def marked(user: User, marker: str) -> list[ui.element]:
    """Every element with ``marker`` now on the page, shown or hidden (``user.find`` sees only shown ones)."""
    assert user.client is not None
    return [element for element in user.client.elements.values() if marker in element._markers]


def texts(user: User, marker: str) -> list[str]:
    return [element.text for element in marked(user, marker)]  # type: ignore[attr-defined]


async def eventually(condition, retries: int = 100) -> None:  # type: ignore[no-untyped-def]
    for _ in range(retries):
        if condition():
            return
        await asyncio.sleep(0.05)
    assert condition()


async def answered(user: User, text: str) -> None:
    """``text`` is on the page and the answer is over (the composer can send again)."""
    await user.should_see(text, retries=100)
    (send,) = marked(user, "send")
    await eventually(lambda: send.visible)


def sent_texts(upstream: ScriptedUpstream) -> list[str]:
    """What the last request to the model held (its messages' text)."""
    return [str(m.get("content")) for m in upstream.requests[-1]["messages"]]


async def test_a_question_streams_an_answer_and_lists_the_session(
    ui_env: str, user: User, upstream: ScriptedUpstream
) -> None:
    await signed_in(user)
    assert user.client is not None and user.client.title == "New chat · agent-ui"
    upstream.push(Step(text=words("Whales are mammals.")))
    await ask(user, "Are whales fish?")
    await user.should_see("Are whales fish?", retries=50)
    await answered(user, "Whales are mammals.")
    await user.should_see(marker="session-title", retries=50)
    await user.should_see(marker="regenerate")
    await eventually(lambda: user.client is not None and user.client.title == "Are whales fish? · agent-ui")
    usage = next(iter(user.find(marker="usage").elements))
    await eventually(lambda: "tokens" in usage.text)  # type: ignore[attr-defined]


async def test_the_answer_waits_with_dots_until_its_first_token(
    ui_env: str, user: User, upstream: ScriptedUpstream
) -> None:
    await signed_in(user)
    upstream.push(Step(text=words("Late but here."), stall_s=1.0))
    await ask(user, "Take your time")
    await user.should_see(marker="waiting", retries=50)
    await user.should_see("Late but here.", retries=100)
    await user.should_not_see(marker="waiting")


async def test_the_model_picker_names_each_model_with_where_it_runs_and_its_price(ui_env: str, user: User) -> None:
    await signed_in(user)
    (picker,) = user.find(marker="model").elements
    assert isinstance(picker, ui.select)
    assert picker.options == {
        "scripted": "scripted · remote (scripted) · 1 in / 2 out credits per 1k tokens",
        "scripted-router": "scripted-router · remote (scripted) · 0.5 in / 0.5 out credits per 1k tokens",
    }


async def test_a_tool_answer_a_plain_answer_and_a_follow_up_share_one_chat_that_survives_a_reload(
    ui_env: str, user: User, upstream: ScriptedUpstream
) -> None:
    await signed_in(user)
    upstream.push(Step(tool_calls=[("calculator", {"expression": "6*7"})]), Step(text=words("It is 42.")))
    await ask(user, "6 times 7?")
    await answered(user, "It is 42.")
    await user.should_see(marker="tool-card")
    upstream.push(Step(text=words("Octopuses have three hearts.")))
    await ask(user, "An octopus fact, please")
    await answered(user, "Octopuses have three hearts.")
    upstream.push(Step(text=words("Then 42 plus 1 is 43.")))
    await ask(user, "And plus one?")
    await answered(user, "Then 42 plus 1 is 43.")
    assert "It is 42." in " ".join(sent_texts(upstream))  # the follow-up was asked with the tool answer before it

    await user.open("/")  # a new chat: the old one is in the list
    await user.should_see(marker="empty-thread", retries=50)
    user.find(marker="session-item").click()
    await answered(user, "It is 42.")
    for text in ["6 times 7?", "Octopuses have three hearts.", "Then 42 plus 1 is 43."]:
        await user.should_see(text)
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


async def test_a_page_that_is_gone_stops_following_its_answer(
    ui_env: str, user: User, upstream: ScriptedUpstream
) -> None:
    await signed_in(user)
    upstream.push(Step(text=[f"word{i} " for i in range(300)], rate=30))
    await ask(user, "Talk for a long time")
    await user.should_see("word1", retries=100)
    following = [task for task in background_tasks.running_tasks if task.get_name().startswith("follow-")]
    assert len(following) == 1
    assert user.client is not None
    user.client.delete()  # what NiceGUI does once a closed browser has not come back
    await eventually(following[0].done)
    assert following[0].cancelled()


async def test_regenerate_keeps_both_answers_as_branches(ui_env: str, user: User, upstream: ScriptedUpstream) -> None:
    await signed_in(user)
    upstream.push(Step(text=["First try."]), Step(text=["Second try."]))
    await ask(user, "Say something")
    await user.should_see(marker="regenerate", retries=100)  # shown once the answer is complete
    user.find(marker="regenerate").click()
    await answered(user, "Second try.")
    await user.should_see(marker="regenerate", retries=100)
    await user.should_not_see("First try.")
    assert texts(user, "branch-position") == ["2/2"]

    user.find(marker="branch-prev").click()
    await answered(user, "First try.")
    await user.should_not_see("Second try.")
    assert texts(user, "branch-position") == ["1/2"]

    upstream.push(Step(text=["More of the first."]))
    await ask(user, "Go on")  # continues the branch on screen, not the newest one
    await answered(user, "More of the first.")
    assert "First try." in sent_texts(upstream) and "Second try." not in sent_texts(upstream)
    user.find(marker="branch-next").click()
    await answered(user, "Second try.")
    await user.should_not_see("More of the first.")


async def test_editing_a_question_asks_it_anew_beside_the_old_one(
    ui_env: str, user: User, upstream: ScriptedUpstream
) -> None:
    await signed_in(user)
    upstream.push(Step(text=["Paris."]), Step(text=["Berlin."]))
    await ask(user, "Capital of France?")
    await answered(user, "Paris.")
    user.find(marker="edit").click()
    user.find(marker="edit-input").clear().type("Capital of Germany?")
    user.find(marker="edit-save").click()
    await answered(user, "Berlin.")
    assert texts(user, "user-message") == ["Capital of Germany?"]
    assert texts(user, "branch-position") == ["2/2"]  # on the question; its answer has no siblings
    assert sent_texts(upstream)[1:] == ["Capital of Germany?"]  # the old question is not in the new branch

    user.find(marker="branch-prev").click()
    await answered(user, "Paris.")
    assert texts(user, "user-message") == ["Capital of France?"]
    await user.should_not_see("Berlin.")

    user.find(marker="edit").click()  # cancelling an edit changes nothing
    user.find(marker="edit-input").clear().type("Never sent")
    user.find(marker="edit-cancel").click()
    await user.should_not_see(marker="edit-input")
    assert texts(user, "user-message") == ["Capital of France?"]


async def test_rename_with_enter_search_and_delete(ui_env: str, user: User, upstream: ScriptedUpstream) -> None:
    await signed_in(user)
    upstream.push(Step(text=words("Bananas are berries.")), Step(text=words("Tomatoes are fruit.")))
    await ask(user, "Tell me about bananas")
    await answered(user, "Bananas are berries.")
    await user.open("/")
    await user.should_see(marker="empty-thread", retries=50)
    await ask(user, "Tell me about tomatoes")
    await answered(user, "Tomatoes are fruit.")
    await eventually(lambda: len(texts(user, "session-title")) == 2)

    user.find(marker="session-search").type("berries")  # a word of an answer, not of a title
    await eventually(lambda: texts(user, "session-title") == ["Tell me about bananas"])
    user.find(marker="session-search").clear().type("zzz")
    await user.should_see("No chat matches.", retries=100)
    user.find(marker="session-search").clear()  # back to every chat, never "No chats yet."
    await eventually(lambda: len(texts(user, "session-title")) == 2)
    await user.should_not_see(marker="sessions-empty")

    user.find(marker="rename-session").click()  # the newest chat (this one) is first
    user.find(marker="rename-input").clear().type("Renamed chat").trigger("keydown.enter")
    await user.should_see("Renamed chat", retries=50)
    await eventually(lambda: user.client is not None and user.client.title == "Renamed chat · agent-ui")
    user.find(marker="delete-session").click()
    user.find(marker="delete-confirm").click()
    await user.should_see(marker="empty-thread", retries=100)  # the open chat was deleted: back to a new one
    await eventually(lambda: texts(user, "session-title") == ["Tell me about bananas"])


def test_code_blocks_carry_their_language_for_the_code_box() -> None:
    text = "Try:\n\n```python\nprint(1)\n```\n\n```\nplain\n```\n\n```js\nstill streaming"
    assert fence_languages(text) == ["python", ""]
    html = markdown2.markdown(text, extras=["fenced-code-blocks", "tables"])
    labelled = label_code_blocks(html, fence_languages(text))
    assert labelled.count('<pre data-lang="python"') == 1 and labelled.count('<pre data-lang=""') == 1
    indented = "    indented code\n\n```python\nx\n```\n"  # blocks and fences do not pair up: no label is a guess
    html = markdown2.markdown(indented, extras=["fenced-code-blocks"])
    assert label_code_blocks(html, fence_languages(indented)) == html
