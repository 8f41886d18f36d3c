"""The chat page through the NiceGUI `user` fixture, answering from the scripted upstream."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime

import markdown2
import pytest
from nicegui import app as nicegui_app
from nicegui import background_tasks, ui
from nicegui.testing import User

from agent_ui.components.chat_assets import fence_languages, label_code_blocks
from agent_ui.components.citations import grounded_resource_ids, link_markers, sources_of
from services.auth import Principal
from services.chat import ChatService
from services.chat.citations import cited_numbers
from services.chat.schemas import MessageRead
from services.container import Services
from services.ids import new_id
from services.rag import RagService
from services.rag.models import RagResource
from services.rag.service import Upload
from tests.agent_ui.pages.test_auth_pages import PASSWORD, register_in_ui
from tests.factories import principal
from tests.services.rag.files import PAGE7_SENTENCE, ten_page_pdf
from tests.upstream import ScriptedUpstream, Step, words

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


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


@SQLITE_ONLY  # the page's behaviour; the API's tests run both databases
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


@SQLITE_ONLY  # the page's behaviour; the API's tests run both databases
async def test_the_answer_waits_with_dots_until_its_first_token(
    ui_env: str, user: User, upstream: ScriptedUpstream
) -> None:
    await signed_in(user)
    upstream.push(Step(text=words("Late but here."), stall_s=1.0))
    await ask(user, "Take your time")
    await user.should_see(marker="waiting", retries=50)
    await user.should_see("Late but here.", retries=100)
    await user.should_not_see(marker="waiting")


@SQLITE_ONLY  # the page's behaviour; the API's tests run both databases
async def test_the_model_picker_names_each_model_with_where_it_runs_and_its_price(ui_env: str, user: User) -> None:
    await signed_in(user)
    (picker,) = user.find(marker="model").elements
    assert isinstance(picker, ui.select)
    assert picker.options == {
        "scripted": "scripted · remote (scripted) · 1 in / 2 out credits per 1k tokens",
        "scripted-router": "scripted-router · remote (scripted) · 0.5 in / 0.5 out credits per 1k tokens",
    }


@SQLITE_ONLY  # the page's behaviour; the API's tests run both databases
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


@SQLITE_ONLY  # the page's behaviour; the API's tests run both databases
async def test_stop_keeps_the_partial_answer(ui_env: str, user: User, upstream: ScriptedUpstream) -> None:
    await signed_in(user)
    upstream.push(Step(text=[f"word{i} " for i in range(300)], rate=30))
    await ask(user, "Talk for a long time")
    await user.should_see("word1", retries=100)
    user.find(marker="stop").click()
    await user.should_see(marker="answer-status", retries=100)
    await user.should_see("Stopped.")
    await user.should_not_see("word299")


@SQLITE_ONLY  # the page's behaviour; the API's tests run both databases
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


@SQLITE_ONLY  # the page's behaviour; the API's tests run both databases
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


@SQLITE_ONLY  # the page's behaviour; the API's tests run both databases
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


# -- resources attached to a chat, and the sources an answer cites ----------------------------------------------------

QUESTION = "What does the heron ledger of Quillbrook record?"


def app_services() -> Services:
    """The services of the app the `user` fixture built from main.py (its REST API is not mounted there): the ones
    its NiceGUI startup hook starts."""
    owners = (getattr(handler, "__self__", None) for handler in nicegui_app._startup_handlers)
    return next(owner for owner in owners if isinstance(owner, Services))


async def me(email: str = "chat@example.com") -> Principal:
    """The signed-in user as the services see them."""
    return principal((await app_services().auth.verify_credentials(email, PASSWORD)).id, email=email)


async def ready_resource(owner: Principal, upload: Upload) -> str:
    """A resource added through the service, once ingested."""
    rag = app_services().get(RagService)
    resource_id = (await rag.upload(owner, upload)).id
    async with asyncio.timeout(60):
        while (found := await rag.get(owner, resource_id)).status == "processing":
            await asyncio.sleep(0.05)
    assert found.status == "ready", found
    return resource_id


def handbook() -> Upload:
    return Upload(filename="handbook.pdf", data=ten_page_pdf())


async def attach(user: User, resource_id: str) -> None:
    user.find(marker="attach").click()
    await user.should_see(marker=f"picker-{resource_id}", retries=50)
    user.find(marker=f"picker-{resource_id}").click()
    user.find(marker="picker-done").click()
    await user.should_see(marker=f"attachment-{resource_id}")


def one(user: User, marker: str) -> ui.element:
    (element,) = marked(user, marker)
    return element


def tool_texts(upstream: ScriptedUpstream) -> str:
    """The passages the model was given in the last request (its tool messages), whitespace evened out."""
    tools = [json.loads(m["content"]) for m in upstream.requests[-1]["messages"] if m["role"] == "tool"]
    return " ".join(" ".join(p["text"].split()) for tool in tools for p in tool.get("passages", []))


async def test_attached_resources_ground_the_turns_and_only_cited_sources_open_their_page(
    ui_env: str, user: User, upstream: ScriptedUpstream
) -> None:
    await signed_in(user)
    owner = await me()
    resource_id = await ready_resource(owner, handbook())
    await attach(user, resource_id)
    assert texts(user, "attachment") == ["handbook"]

    upstream.push(Step(text=words("It records seventeen copper bells [1].")))
    await ask(user, QUESTION)
    await answered(user, "It records seventeen copper bells")
    assert PAGE7_SENTENCE in tool_texts(upstream)  # the turn was grounded: the model read the passage
    found = sources_of((await stored_answer(owner)).content)
    assert len(found) > 1  # several passages were found; the answer cites one
    # Only the cited source gets a chip; its number in the text is a button naming it.
    assert [chip.props["aria-label"] for chip in marked(user, "source-chip")] == ["Source 1: handbook, p. 7"]
    html = str(one(user, "answer-text").props["innerHTML"])
    assert 'data-cite="1"' in html and 'aria-label="Source 1: handbook, p. 7"' in html and "[1]" not in html
    await user.should_see("Searched your documents: " + QUESTION)  # the search's own compact card

    user.find(marker="source-chip-1").click()
    await user.should_see(marker="source-text", retries=50)
    assert texts(user, "source-title") == ["handbook"] and texts(user, "source-where") == ["Page 7 of 10"]
    passage = str(one(user, "source-text").content)  # type: ignore[attr-defined]
    assert "<mark>" in passage and PAGE7_SENTENCE in " ".join(passage.split("<mark>")[1].split("</mark>")[0].split())
    user.find(marker="source-close").click()
    await eventually(lambda: not one(user, "source-panel").visible)

    # A click on the [1] badge in the text (sent by the answer's one listener) opens the same passage.
    user.find(marker="assistant-message").trigger("click", 1)
    await eventually(lambda: one(user, "source-panel").visible and texts(user, "source-where") == ["Page 7 of 10"])

    # The resource stays attached for the next turn, until removed.
    upstream.push(Step(text=words("Seventeen, all copper [1].")))
    await ask(user, "How many bells exactly?")
    await answered(user, "Seventeen, all copper")
    assert grounded_resource_ids((await stored_answer(owner)).content) == [resource_id]  # searched again
    await user.open(f"/chat/{await newest_chat(owner)}")  # a reload attaches what the latest turn was grounded in
    await user.should_see(marker=f"attachment-{resource_id}", retries=50)
    await user.should_see("Seventeen, all copper")
    assert len(marked(user, "source-chip")) == 2  # each answer has its one cited source
    chip = one(user, f"attachment-{resource_id}")
    assert isinstance(chip, ui.chip)
    chip.set_value(False)  # what its remove button does
    await user.should_not_see(marker="attachments")
    upstream.push(Step(text=words("Without documents now.")))
    await ask(user, "And without the handbook?")
    await answered(user, "Without documents now.")
    assert not [part for part in (await stored_answer(owner)).content if part["type"] != "text"]  # no search


@SQLITE_ONLY  # the page's behaviour; the database plays no part
async def test_a_citation_whose_resource_was_deleted_says_so(
    ui_env: str, user: User, upstream: ScriptedUpstream
) -> None:
    await signed_in(user)
    owner = await me()
    resource_id = await ready_resource(owner, handbook())
    await attach(user, resource_id)
    tail = " Then it goes on for a while" + " and on" * 12 + "."
    upstream.push(Step(text=words("It records seventeen copper bells [1]." + tail), rate=10))
    await ask(user, QUESTION)
    await user.should_see(marker="source-chip-1", retries=100)  # while the answer still streams
    assert one(user, "stop").visible
    await answered(user, "and on.")
    await app_services().get(RagService).delete(owner, resource_id)

    user.find(marker="source-chip-1").click()
    await user.should_see("This source was deleted.", retries=50)
    assert texts(user, "source-title") == ["handbook"] and texts(user, "source-where") == ["Page 7"]
    # Sending with it still attached detaches it and says so, rather than failing for good.
    await ask(user, "Anything else in it?")
    await user.should_see("No longer available, so detached: handbook", retries=50)
    await user.should_not_see(marker="attachments")


@SQLITE_ONLY  # the page's behaviour; the database plays no part
async def test_the_picker_filters_ready_resources_and_points_to_the_resources_page_when_there_are_none(
    ui_env: str, user: User
) -> None:
    await signed_in(user)
    owner = await me()
    async with app_services().db.transaction() as session:  # one still being indexed (its job not started)
        now = datetime.now(UTC)
        session.add(RagResource(id=new_id("rsc"), user_id=owner.user.id, title="Field diary", source="text",
                                status="processing", created_at=now, updated_at=now))  # fmt: skip
    user.find(marker="attach").click()
    await user.should_see(marker="picker-empty", retries=50)
    assert texts(user, "picker-processing") == ["1 more still being indexed: they can be attached once ready."]
    await user.should_not_see("Field diary")
    user.find(marker="picker-add").click()
    await user.should_see("Field diary", retries=50)  # on the Resources page, which lists it
    assert user.client is not None and user.client.page.path == "/resources"

    notes = [Upload(filename=f"{title}.md", data=f"# {title}\n\nKept by the warden.\n".encode(), title=title)
             for title in ("Bird notes", "Tide tables")]  # fmt: skip
    ids = [await ready_resource(owner, upload) for upload in notes]
    await user.open("/")
    await user.should_see(marker="empty-thread", retries=50)
    user.find(marker="attach").click()
    await user.should_see(marker=f"picker-{ids[1]}", retries=50)
    user.find(marker="picker-filter").type("tide")
    await user.should_not_see(marker=f"picker-{ids[0]}")
    await user.should_see(marker=f"picker-{ids[1]}")
    user.find(marker="picker-filter").clear().type("zzz")
    await user.should_see("No resource matches “zzz”.")


@pytest.fixture
def rag_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """RAG turned off in the app the `user` fixture builds (request it before `user`)."""
    monkeypatch.setenv("AGENT_UI_RAG__ENABLED", "false")


@SQLITE_ONLY  # the page's behaviour; the database plays no part
async def test_without_rag_there_is_nothing_to_attach(
    ui_env: str, rag_off: None, user: User, upstream: ScriptedUpstream
) -> None:
    await signed_in(user)
    assert app_services().find(RagService) is None
    assert not marked(user, "attach") and not marked(user, "attachments")
    upstream.push(Step(text=words("Still answering.")))
    await ask(user, "Hello?")
    await answered(user, "Still answering.")


async def newest_chat(owner: Principal) -> str:
    chats = await app_services().get(ChatService).list_sessions(owner.user.id, limit=1, cursor=None)
    return chats.items[0].id


async def stored_answer(owner: Principal) -> MessageRead:
    """The newest chat's newest message as stored."""
    chat = await app_services().get(ChatService).get_session(owner.user.id, await newest_chat(owner))
    return chat.messages[-1]


def test_citation_markers_become_buttons_outside_code_with_their_labels_escaped() -> None:
    labels = {1: 'Q&A "notes", p. 2', 2: "handbook, p. 7"}
    html = markdown2.markdown("See [1] and [2, 3].\n\n`a[1]`\n\n```\nb[2]\n```\n\n[9] is unknown.",
                              extras=["fenced-code-blocks"])  # fmt: skip
    linked = link_markers(html, labels)
    assert linked.count("<button") == 2  # 1, and 2 of [2, 3]: none in code, none for 3 or 9 (no such source)
    assert 'aria-label="Source 1: Q&amp;A &quot;notes&quot;, p. 2"' in linked
    assert '<span class="chat-cite chat-cite--none">3</span>' in linked
    assert "<code>a[1]</code>" in linked and "b[2]" in linked and "[9] is unknown" in linked
    assert link_markers(html, {}) == html


def test_the_page_reads_the_same_markers_the_answer_is_checked_for() -> None:
    for text in ["[1]", "a [2, 3] b", "[4;5]", "[12][3]", "x[1 ,2]", "[1000]", "[a]", "[ 1]", "[]"]:
        linked = {int(n) for n in re.findall(r'data-cite="(\d+)"', link_markers(text, dict.fromkeys(range(2000), "s")))}
        assert linked == cited_numbers(text), text


def test_a_grounded_turn_is_known_by_the_search_it_starts_with() -> None:
    call = {"type": "tool_call", "name": "rag_search", "arguments": '{"query": "q", "resource_ids": ["rsc_a"]}'}
    assert grounded_resource_ids([call, {"type": "citation", "n": 1}]) == ["rsc_a"]
    assert grounded_resource_ids([{"type": "text", "text": "Let me look."}, call]) == []  # the model's own search
    assert grounded_resource_ids([{"type": "text", "text": "Hi."}]) == []
