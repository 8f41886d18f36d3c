"""A full turn against the real embedded model (no network, no provider), a restart, then a kill -9 of the app.

Asserts structure only, never wording: event order, a routed tool call, non-empty text; and that the
model process never outlives the app.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import time
from pathlib import Path

import httpx

from tests.live_server import live_server
from tests.services.rag.files import ten_page_pdf
from tests.sse import parse, text_of, types


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


async def test_the_local_model_answers_restarts_and_dies_with_the_app(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = {"AGENT_UI_LLM": json.dumps({"local": {"enabled": True, "threads": 2, "parallel": 1}})}
    with live_server(data_dir, extra_env=env) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=300) as http:
            body = {"email": "local@example.com", "password": "correct horse battery"}
            await http.post("/api/v1/auth/register", json=body)
            await http.post("/api/v1/auth/login", json=body)
            health = (await http.get("/api/v1/health")).json()
            assert health["dependencies"]["llm"]["status"] == "idle"  # health never starts the model

            response = await http.post(
                "/api/v1/agent/chat/stream",
                json={"message": "Use the calculator: what is 1234 * 5678?", "tools": ["builtin"]},
            )
            assert response.status_code == 200
            events = parse(response.text)
            sequence = types(events)
            assert sequence[0] == "run" and sequence[-1] == "done", sequence
            assert events[0].data["model"] == "qwen2.5-coder-0.5b"
            assert "tool_call" in sequence and sequence.index("tool_call") < sequence.index("tool_result")
            call = next(e.data for e in events if e.type == "tool_call")
            assert call["name"] == "calculator" and call["source"] == "builtin"
            assert text_of(events).strip()
            usage = [e.data for e in events if e.type == "usage" and e.data["scope"] == "call"]
            assert usage and all(u["prompt_tokens"] > 0 for u in usage) and sum(u["credits"] for u in usage) > 0
            assert (await http.get("/api/v1/health")).json()["dependencies"]["llm"]["status"] == "ok"

            # Grounded in a PDF whose answer is only on page 7: the answer cites a passage of page 7.
            created = await http.post("/api/v1/agent/rag/resources",
                                      files={"file": ("handbook.pdf", ten_page_pdf(), "application/pdf")})  # fmt: skip
            resource_id = created.json()["id"]
            async with asyncio.timeout(120):
                while (await http.get(f"/api/v1/agent/rag/resources/{resource_id}")).json()["status"] == "processing":
                    await asyncio.sleep(0.1)
            grounded = parse((await http.post("/api/v1/agent/chat/stream", json={
                "message": "What does the heron ledger of Quillbrook record?", "rag_resource_ids": [resource_id],
            })).text)  # fmt: skip
            assert types(grounded)[-1] == "done"
            pages = {e.data["n"]: e.data["position"]["page"] for e in grounded if e.type == "citation"}
            cited = {int(n) for n in re.findall(r"\[(\d+)\]", text_of(grounded))}
            assert 7 in {pages.get(n) for n in cited}, (text_of(grounded), pages)

            # The model process dies: health says so, and the next turn starts it again.
            first_worker = int((data_dir / "run" / "local-llm.pid").read_text())
            os.kill(first_worker, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                if (await http.get("/api/v1/health")).json()["dependencies"]["llm"]["status"] == "down":
                    break
                await asyncio.sleep(0.1)
            assert (await http.get("/api/v1/health")).json()["dependencies"]["llm"]["status"] == "down"
            again = await http.post("/api/v1/agent/chat/stream", json={"message": "Say hello.", "tools": []})
            assert types(parse(again.text))[-1] == "done" and text_of(parse(again.text)).strip()

        worker = int((data_dir / "run" / "local-llm.pid").read_text())
        assert worker != first_worker and alive(worker)
        os.kill(server.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while alive(worker) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not alive(worker), "the local model process outlived the app"
