"""Decks over the API with no network: the scripted model plans and writes the slides, python-pptx renders them,
LibreOffice opens the file and draws the thumbnails. Every file is opened for real: slide count, titles, bullets,
notes, the native chart and table; edits, reorders, restores and rewrites show in the export; another user sees
nothing; bad input gets a clear error and never a broken file."""

from __future__ import annotations

import asyncio
import io
import json
from typing import Any

import httpx
import pytest
from pptx import Presentation
from pptx.enum.chart import XL_CHART_TYPE
from pypdf import PdfReader

from services.generation.thumbnails import pptx_to_pdf
from tests.agent_ui.api.v1.test_jobs import until
from tests.agent_ui.api.v1.test_rag import ready
from tests.upstream import ScriptedUpstream, Step

AGENT = "/api/v1/agent"
GEN = f"{AGENT}/generation"
SLIDES = f"{AGENT}/slides"
Json = dict[str, Any]
PNG = b"\x89PNG\r\n\x1a\n"

OUTLINE = {
    "title": "Lighthouses",
    "subtitle": "Lamps, keepers and light",
    "slides": [
        {"title": "How a lamp works", "layout": "bullets"},
        {"title": "Oil or gas", "layout": "two_columns"},
        {"title": "Famous lights", "layout": "table"},
        {"title": "Range by era", "layout": "chart"},
        {"title": "The keepers", "layout": "section"},
    ],
}
WRITTEN: list[Json] = [
    {"title": "How a lamp works", "bullets": ["A wick burns oil", "A lens bends the light [1]", "A clock turns it"],
     "notes": "The lamp is simple.", "sources": [1]},
    {"title": "Oil or gas", "left": ["Colza oil", "Smoky flame"], "right": ["Coal gas", "Bright flame"],
     "notes": "Gas won.", "sources": []},
    {"title": "Famous lights", "columns": ["Name", "Year"], "rows": [["Pharos", "280 BC"], ["Eddystone", "1698"]],
     "notes": "Two famous ones.", "sources": []},
    {"title": "Range by era", "chart_type": "column", "categories": ["1800", "1900", "2000"],
     "series": [{"name": "Range (nm)", "values": [10, 20, 25]}], "notes": "Lights reach further.", "sources": []},
    {"title": "The keepers", "subtitle": "Life on the rock", "notes": "Now the people."},
]  # fmt: skip
TITLES = ["Lighthouses", *[slide["title"] for slide in WRITTEN]]
# Material with figures: a table or a chart is offered only when there are figures to show.
NUMBERS = "Range in nautical miles: 10 in 1800, 20 in 1900, 25 in 2000."
# What those two slides say as bullets, for a deck from a topic alone.
AS_BULLETS = {
    "Famous lights": {"title": "Famous lights", "bullets": ["Pharos of Alexandria", "Eddystone", "Bell Rock"],
                      "notes": "Two famous ones.", "sources": []},
    "Range by era": {"title": "Range by era", "bullets": ["Oil lamps: ten miles", "Gas: twenty", "Electric: more"],
                     "notes": "Lights reach further.", "sources": []},
}  # fmt: skip


def deck_steps(*, grounded: bool = False, figures: bool = True) -> list[Step]:
    """The outline and each slide as the model answers them (with no resources the schema allows no sources; with
    no figures in the material, no table or chart: those slides are bullets)."""
    outline = OUTLINE if figures else {**OUTLINE, "slides": [
        {**s, "layout": "bullets"} if s["title"] in AS_BULLETS else s for s in OUTLINE["slides"]]}  # type: ignore[attr-defined]
    written = WRITTEN if figures else [AS_BULLETS.get(s["title"], s) for s in WRITTEN]
    slides = [dict(s, sources=s["sources"] if grounded else []) if "sources" in s else s for s in written]
    return [Step(text=[json.dumps(outline)]), *[Step(text=[json.dumps(slide)]) for slide in slides]]


async def made_deck(client: httpx.AsyncClient, headers: dict[str, str], upstream: ScriptedUpstream,
                    **body: Any) -> Json:  # fmt: skip
    upstream.push(*deck_steps(grounded=bool(body.get("rag_resource_ids"))))
    started = await client.post(f"{GEN}/ppt", json={"topic": "lighthouses", "text": NUMBERS, "slide_count": 6,
                                                    **body}, headers=headers)  # fmt: skip
    assert started.status_code == 202, started.text
    job = await until(client, headers, started.json()["id"], "done", "failed")
    assert job["status"] == "done", job
    return job


async def exported(client: httpx.AsyncClient, headers: dict[str, str], deck_id: str) -> Any:
    answer = await client.get(f"{SLIDES}/{deck_id}/export", headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/vnd.openxmlformats-officedocument.presentationml")
    return Presentation(io.BytesIO(answer.content))


def titles_of(presentation: Any) -> list[str]:
    return [slide.shapes.title.text if slide.shapes.title is not None else "" for slide in presentation.slides]


def texts_of(slide: Any) -> list[str]:
    """Every paragraph of the slide's text frames but the title."""
    found = []
    for shape in slide.shapes:
        if shape.has_text_frame and shape != slide.shapes.title:
            found += [p.text for p in shape.text_frame.paragraphs if p.text]
    return found


async def thumbnail(client: httpx.AsyncClient, headers: dict[str, str], deck_id: str, index: int) -> bytes:
    answer = await client.get(f"{SLIDES}/{deck_id}/slides/{index}/thumbnail", params={"wait": 60}, headers=headers)
    assert answer.status_code == 200 and answer.content.startswith(PNG), answer.text[:200]
    return answer.content


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_deck_from_a_topic_is_a_real_pptx_with_thumbnails_and_its_slides_can_be_managed(
    client: httpx.AsyncClient, make_account, upstream: ScriptedUpstream  # type: ignore[no-untyped-def]
) -> None:
    alice, bob = await make_account(), await make_account()
    job = await made_deck(client, alice.headers, upstream, theme="ocean")
    assert job["result"]["slides"] == 6 and job["result"]["thumbnails"] == 6, job["result"]
    assert [a["kind"] for a in job["artifacts"]] == ["pptx"]
    # the model was asked for exactly five planned slides, then each slide in its layout's shape
    outline_schema = json.dumps(upstream.requests[0]["response_format"]["json_schema"]["schema"])
    assert '"maxItems": 5' in outline_schema and '"minItems": 5' in outline_schema
    assert '"chart"' in outline_schema and '"table"' in outline_schema  # the material has figures
    chart_request = upstream.requests[4]["messages"][-1]["content"]
    assert 'Write the slide "Range by era" as a chart' in chart_request

    deck_id = job["result"]["deck_id"]
    deck = (await client.get(f"{SLIDES}/{deck_id}", headers=alice.headers)).json()
    assert [s["title"] for s in deck["slides"]] == TITLES
    assert [s["layout"] for s in deck["slides"]] == ["title", "bullets", "two_columns", "table", "chart", "section"]
    assert deck["slides"][1]["bullets"] == ["A wick burns oil", "A lens bends the light", "A clock turns it"]
    assert all(s["thumbnail_ready"] for s in deck["slides"]) and deck["theme"] == "ocean"

    pptx = await exported(client, alice.headers, deck_id)
    assert titles_of(pptx) == TITLES
    slides = list(pptx.slides)
    assert texts_of(slides[1]) == ["A wick burns oil", "A lens bends the light", "A clock turns it"]
    assert "The lamp is simple." in slides[1].notes_slide.notes_text_frame.text
    assert {"Colza oil", "Coal gas"} <= set(texts_of(slides[2]))
    table = next(shape.table for shape in slides[3].shapes if shape.has_table)
    assert [[cell.text for cell in row.cells] for row in table.rows] == [["Name", "Year"], ["Pharos", "280 BC"],
                                                                        ["Eddystone", "1698"]]  # fmt: skip
    chart = next(shape.chart for shape in slides[4].shapes if shape.has_chart)
    assert chart.chart_type == XL_CHART_TYPE.COLUMN_CLUSTERED
    assert list(chart.plots[0].categories) == ["1800", "1900", "2000"]
    assert list(chart.plots[0].series[0].values) == [10, 20, 25]
    assert "Life on the rock" in texts_of(slides[5])

    # LibreOffice opens it: one page per slide
    pdf = PdfReader(io.BytesIO(await pptx_to_pdf((await client.get(f"{SLIDES}/{deck_id}/export",
                                                                   headers=alice.headers)).content)))  # fmt: skip
    assert len(pdf.pages) == 6

    first_pictures = [await thumbnail(client, alice.headers, deck_id, n) for n in range(6)]
    assert len(set(first_pictures)) == 6

    # edit slide 3's title: a new version, the export and the thumbnail follow
    edited = await client.patch(f"{SLIDES}/{deck_id}/slides/2", json={"title": "Oil against gas", "version": 1},
                                headers=alice.headers)  # fmt: skip
    assert edited.status_code == 200, edited.text
    assert edited.json()["slides"][2]["title"] == "Oil against gas" and edited.json()["slides"][2]["version"] == 2
    stale = await client.patch(f"{SLIDES}/{deck_id}/slides/2", json={"title": "Late", "version": 1},
                               headers=alice.headers)  # fmt: skip
    assert stale.status_code == 409 and stale.json()["error"]["code"] == "edit_conflict"
    assert titles_of(await exported(client, alice.headers, deck_id))[2] == "Oil against gas"
    assert await thumbnail(client, alice.headers, deck_id, 2) != first_pictures[2]
    assert await thumbnail(client, alice.headers, deck_id, 1) == first_pictures[1]  # the others were not drawn again

    # reorder: swap slides 2 and 3; the export has the new order, the slides keep their ids
    ids = [s["id"] for s in edited.json()["slides"]]
    reordered = await client.post(f"{SLIDES}/{deck_id}/reorder", json={"order": [0, 2, 1, 3, 4, 5]},
                                  headers=alice.headers)  # fmt: skip
    assert reordered.status_code == 200, reordered.text
    assert [s["id"] for s in reordered.json()["slides"]] == [ids[0], ids[2], ids[1], *ids[3:]]
    assert titles_of(await exported(client, alice.headers, deck_id))[1:3] == ["Oil against gas", "How a lamp works"]

    # versions and undo: the edited slide (now at position 1) goes back to its first title
    versions = (await client.get(f"{SLIDES}/{deck_id}/slides/1/versions", headers=alice.headers)).json()["items"]
    assert [(v["version"], v["cause"], v["current"]) for v in versions] == [(2, "edited", True),
                                                                           (1, "generated", False)]  # fmt: skip
    restored = await client.post(f"{SLIDES}/{deck_id}/slides/1/versions/1/restore", headers=alice.headers)
    assert restored.status_code == 200 and restored.json()["slides"][1]["title"] == "Oil or gas", restored.text
    assert titles_of(await exported(client, alice.headers, deck_id))[1] == "Oil or gas"

    # regenerate one slide: only it changes
    before = restored.json()["slides"]
    upstream.push(Step(text=[json.dumps({"title": "Lamps in short", "bullets": ["Oil", "Lens", "Clock"],
                                         "notes": "Shorter.", "sources": []})]))  # fmt: skip
    rewritten = await client.post(f"{SLIDES}/{deck_id}/slides/2/regenerate", json={"instructions": "shorter"},
                                  headers=alice.headers)  # fmt: skip
    assert rewritten.status_code == 200, rewritten.text
    after = rewritten.json()["slides"]
    assert after[2]["title"] == "Lamps in short" and after[2]["bullets"] == ["Oil", "Lens", "Clock"]
    assert [s for n, s in enumerate(after) if n != 2] == [s for n, s in enumerate(before) if n != 2]
    assert "shorter" in upstream.requests[-1]["messages"][-1]["content"]

    # add and delete
    added = await client.post(f"{SLIDES}/{deck_id}/slides", json={"title": "Questions?", "layout": "section",
                                                                   "position": 6}, headers=alice.headers)  # fmt: skip
    assert added.status_code == 201 and added.json()["slide_count"] == 7, added.text
    removed = await client.delete(f"{SLIDES}/{deck_id}/slides/5", headers=alice.headers)
    assert removed.status_code == 200, removed.text
    assert [s["title"] for s in removed.json()["slides"]][-2:] == ["Range by era", "Questions?"]
    final = await exported(client, alice.headers, deck_id)
    assert titles_of(final) == ["Lighthouses", "Oil or gas", "Lamps in short", "Famous lights", "Range by era",
                                "Questions?"]  # fmt: skip

    # bob sees none of it
    for method, path, body in [
        ("GET", f"{SLIDES}/{deck_id}", None), ("GET", f"{SLIDES}/{deck_id}/export", None),
        ("GET", f"{SLIDES}/{deck_id}/slides/0/thumbnail", None), ("GET", f"{SLIDES}/{deck_id}/slides/0/versions", None),
        ("PATCH", f"{SLIDES}/{deck_id}/slides/0", {"title": "mine"}), ("DELETE", f"{SLIDES}/{deck_id}/slides/0", None),
        ("POST", f"{SLIDES}/{deck_id}/reorder", {"order": [1, 0, 2, 3, 4, 5]}),
        ("POST", f"{SLIDES}/{deck_id}/slides", {"title": "mine"}), ("DELETE", f"{SLIDES}/{deck_id}", None),
    ]:  # fmt: skip
        answer = await client.request(method, path, json=body, headers=bob.headers)
        assert answer.status_code == 404, (method, path, answer.text)
    assert (await client.get(SLIDES, headers=bob.headers)).json()["items"] == []
    assert [d["id"] for d in (await client.get(SLIDES, headers=alice.headers)).json()["items"]] == [deck_id]

    # deleting the deck deletes its job and file
    assert (await client.delete(f"{SLIDES}/{deck_id}", headers=alice.headers)).status_code == 204
    for path in (f"{SLIDES}/{deck_id}", f"{AGENT}/artifacts/{deck['pptx']['id']}", f"{GEN}/jobs/{deck_id}"):
        assert (await client.get(path, headers=alice.headers)).status_code == 404, path


async def test_slide_management_keeps_order_and_versions_on_both_databases(
    client: httpx.AsyncClient, make_account, upstream: ScriptedUpstream  # type: ignore[no-untyped-def]
) -> None:
    alice = await make_account()
    upstream.push(Step(text=[json.dumps({"title": "Tides", "subtitle": "", "slides": [
        {"title": "Moon", "layout": "bullets"}, {"title": "Sun", "layout": "bullets"}]})]),
        *[Step(text=[json.dumps({"title": t, "bullets": ["a", "b", "c"], "notes": "", "sources": []})])
          for t in ("Moon", "Sun")])  # fmt: skip
    started = await client.post(f"{GEN}/ppt", json={"topic": "tides", "slide_count": 2}, headers=alice.headers)
    job = await until(client, alice.headers, started.json()["id"], "done", "failed")
    assert job["status"] == "done", job
    deck_id = job["id"]
    deck = (await client.get(f"{SLIDES}/{deck_id}", headers=alice.headers)).json()
    assert [s["layout"] for s in deck["slides"]] == ["bullets", "bullets"]  # under three slides: no title slide

    edits = [client.patch(f"{SLIDES}/{deck_id}/slides/0", json={"bullets": [f"edit {n}"]}, headers=alice.headers)
             for n in range(4)]  # fmt: skip
    answers = await asyncio.gather(*edits)
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    versions = (await client.get(f"{SLIDES}/{deck_id}/slides/0/versions", headers=alice.headers)).json()["items"]
    assert [v["version"] for v in versions] == [5, 4, 3, 2, 1]  # four edits, none lost
    moved = await client.post(f"{SLIDES}/{deck_id}/reorder", json={"order": [1, 0]}, headers=alice.headers)
    assert [s["title"] for s in moved.json()["slides"]] == ["Sun", "Moon"]
    pptx = await exported(client, alice.headers, deck_id)
    assert titles_of(pptx) == ["Sun", "Moon"]
    current = versions[0]["content"]["bullets"]
    assert texts_of(list(pptx.slides)[1]) == current


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_bad_input_gets_a_clear_error_and_never_a_broken_file(
    client: httpx.AsyncClient, make_account, upstream: ScriptedUpstream  # type: ignore[no-untyped-def]
) -> None:
    alice, bob = await make_account(), await make_account()
    for body, code, error in [
        ({}, 422, "validation_error"),
        ({"topic": "x", "slide_count": 0}, 422, "validation_error"),
        ({"topic": "x", "slide_count": 51}, 422, "validation_error"),
        ({"topic": "x", "theme": "neon"}, 422, "validation_error"),
        ({"topic": "x", "model": "no-such-model"}, 422, "unknown_model"),
        ({"topic": "x", "template_id": "tpl_nope"}, 404, "not_found"),
    ]:
        answer = await client.post(f"{GEN}/ppt", json=body, headers=alice.headers)
        assert answer.status_code == code and answer.json()["error"]["code"] == error, (body, answer.text)

    # a model that never writes valid JSON: retried, then the job fails with the reason and no file
    upstream.push(*[Step(text=["not json"]) for _ in range(3)])
    started = await client.post(f"{GEN}/ppt", json={"topic": "x", "slide_count": 3}, headers=alice.headers)
    job = await until(client, alice.headers, started.json()["id"], "done", "failed")
    assert job["status"] == "failed" and job["error"]["code"] == "malformed_output" and job["artifacts"] == []
    assert len(upstream.requests) == 3  # asked again twice, with the problem
    assert "not valid" in upstream.requests[-1]["messages"][-1]["content"]
    assert (await client.get(f"{SLIDES}/{job['id']}", headers=alice.headers)).status_code == 404

    job = await made_deck(client, alice.headers, upstream)
    deck_id = job["id"]
    for method, path, body, code, error in [
        ("PATCH", f"{SLIDES}/{deck_id}/slides/6", {"title": "x"}, 404, "slide_not_found"),
        ("GET", f"{SLIDES}/{deck_id}/slides/9/thumbnail", None, 404, "slide_not_found"),
        ("DELETE", f"{SLIDES}/{deck_id}/slides/6", None, 404, "slide_not_found"),
        ("POST", f"{SLIDES}/{deck_id}/reorder", {"order": [0, 1, 2, 3, 4]}, 422, "not_a_permutation"),
        ("POST", f"{SLIDES}/{deck_id}/reorder", {"order": [0, 1, 2, 3, 4, 4]}, 422, "not_a_permutation"),
        ("POST", f"{SLIDES}/{deck_id}/reorder", {"order": [0, 1, 2, 3, 4, 6]}, 422, "not_a_permutation"),
        ("PATCH", f"{SLIDES}/{deck_id}/slides/0", {"layout": "hologram"}, 422, "validation_error"),
        ("PATCH", f"{SLIDES}/{deck_id}/slides/0", {"bullets": ["x"] * 13}, 422, "validation_error"),
        ("POST", f"{SLIDES}/{deck_id}/slides/0/versions/7/restore", None, 404, "not_found"),
        ("GET", f"{SLIDES}/sld_nope", None, 404, "not_found"),
    ]:
        answer = await client.request(method, path, json=body, headers=alice.headers)
        assert answer.status_code == code and answer.json()["error"]["code"] == error, (method, path, answer.text)
    # NaN is not JSON: refused, never stored (it would read back as null and break the deck)
    nan = b'{"chart": {"categories": ["a"], "series": [{"name": "x", "values": [NaN]}]}}'
    refused = await client.patch(f"{SLIDES}/{deck_id}/slides/4", content=nan,
                                 headers={**alice.headers, "Content-Type": "application/json"})  # fmt: skip
    assert refused.status_code == 422, refused.text
    # null for a field that cannot be absent leaves it as it is
    kept = await client.patch(f"{SLIDES}/{deck_id}/slides/1", json={"title": None, "layout": None},
                              headers=alice.headers)  # fmt: skip
    assert kept.status_code == 200 and kept.json()["slides"][1]["version"] == 1, kept.text
    assert titles_of(await exported(client, alice.headers, deck_id)) == TITLES  # nothing changed

    # a template that is not a .pptx, by its content (a name and a type that say otherwise do not count)
    for content in (b"%PDF-1.4 not a deck", b"PK\x03\x04 broken zip", _zip({"word/document.xml": "<w/>"})):
        upload = await client.post(f"{SLIDES}/templates", headers=alice.headers,
                                   files={"file": ("deck.pptx", content, "application/vnd.openxmlformats-"
                                                   "officedocument.presentationml.presentation")})  # fmt: skip
        assert upload.status_code == 415 and upload.json()["error"]["code"] == "not_a_pptx", upload.text
    assert (await client.get(f"{SLIDES}/templates", headers=alice.headers)).json()["items"] == []
    # a foreign deck id in a body or path is a 404, never a hint it exists
    assert (await client.get(f"{SLIDES}/{deck_id}/export", headers=bob.headers)).status_code == 404


def _zip(files: dict[str, str]) -> bytes:
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return out.getvalue()


def template_pptx() -> bytes:
    """A template made like a user's: the default master with a renamed layout and its own title font."""
    presentation = Presentation()
    presentation.slide_layouts[1].name = "Harbour Content"
    presentation.slide_master.placeholders[0].text_frame.paragraphs[0].font.name = "DejaVu Serif"
    presentation.slides.add_slide(presentation.slide_layouts[0]).shapes.title.text = "Old slide of the template"
    out = io.BytesIO()
    presentation.save(out)
    return out.getvalue()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_deck_made_with_an_uploaded_template_uses_its_layouts(
    client: httpx.AsyncClient, make_account, upstream: ScriptedUpstream  # type: ignore[no-untyped-def]
) -> None:
    alice, bob = await make_account(), await make_account()
    file = ("harbour.pptx", template_pptx(), "application/octet-stream")
    upload = await client.post(f"{SLIDES}/templates", headers=alice.headers, data={"name": "Harbour"},
                               files={"file": file})
    assert upload.status_code == 201, upload.text
    template = upload.json()
    assert template["name"] == "Harbour" and "Harbour Content" in template["layouts"]
    listed = (await client.get(f"{SLIDES}/templates", headers=alice.headers)).json()["items"]
    assert [t["id"] for t in listed] == [template["id"]]
    assert (await client.get(f"{SLIDES}/templates", headers=bob.headers)).json()["items"] == []
    refused = await client.post(f"{GEN}/ppt", json={"topic": "x", "template_id": template["id"]}, headers=bob.headers)
    assert refused.status_code == 404

    job = await made_deck(client, alice.headers, upstream, template_id=template["id"])
    pptx = await exported(client, alice.headers, job["id"])
    assert titles_of(pptx) == TITLES  # the template's own slide is gone
    layouts = [slide.slide_layout.name for slide in pptx.slides]
    assert layouts[0] == "Title Slide" and layouts[1] == "Harbour Content", layouts
    assert pptx.slide_master.placeholders[0].text_frame.paragraphs[0].font.name == "DejaVu Serif"

    # deleting the template leaves the deck, which takes its theme from then on
    assert (await client.delete(f"{SLIDES}/templates/{template['id']}", headers=alice.headers)).status_code == 204
    await client.patch(f"{SLIDES}/{job['id']}/slides/1", json={"title": "After"}, headers=alice.headers)
    assert titles_of(await exported(client, alice.headers, job["id"]))[1] == "After"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_deck_grounded_in_a_resource_cites_it_in_the_notes(
    client: httpx.AsyncClient, make_account, upstream: ScriptedUpstream  # type: ignore[no-untyped-def]
) -> None:
    alice = await make_account()
    created = await client.post(f"{AGENT}/rag/resources", headers=alice.headers,
                                json={"text": "The lamp burned colza oil. A Fresnel lens bends the light.",
                                      "title": "Lamp notes"})  # fmt: skip
    resource = (await ready(client, alice.headers, created))["id"]
    job = await made_deck(client, alice.headers, upstream, rag_resource_ids=[resource])
    assert "[1] (Lamp notes)" in upstream.requests[1]["messages"][-1]["content"]
    deck = (await client.get(f"{SLIDES}/{job['id']}", headers=alice.headers)).json()
    assert deck["sources"][0]["resource_id"] == resource
    assert deck["slides"][1]["citations"][0]["title"] == "Lamp notes"
    notes = list((await exported(client, alice.headers, job["id"])).slides)[1].notes_slide.notes_text_frame.text
    assert "Sources:" in notes and "[1] Lamp notes" in notes
