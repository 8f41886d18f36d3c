"""Deck figures: rendering, thumbnails, an edit's round trip, and a whole deck written by the local model.

Prints: the render time of a 30-slide deck from a stored outline (every layout: bullets, two columns, table, native
chart, section; python-pptx, the model excluded; median of runs) against a 1 s target; LibreOffice's thumbnail time
per slide for a 6-slide deck and for one slide alone (what an edit redraws); through a real `uvicorn main:app` with
a scripted model, a 6-slide deck job with its stages, and an edit's round trip (PATCH a title → the new .pptx →
its new thumbnail); and, without `--quick`, a whole 6-slide deck written by the embedded local model.
Run: `.venv/bin/python -m bench.slides`; `--quick` takes fewer runs and skips the local model.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.common import signed_in
from services.generation import render, thumbnails
from services.generation.schemas import ChartData, DeckSpec, Layout, SlideContent, TableData
from tests.agent_ui.api.v1.test_slides import deck_steps
from tests.live_server import live_server
from tests.upstream import ScriptedUpstream

RENDER_TARGET_S = 1.0
LAYOUTS: tuple[Layout, ...] = ("bullets", "two_columns", "table", "chart", "section")
AGENT = "/api/v1/agent"


def outline(count: int) -> DeckSpec:
    """A deck of every layout in turn, with full slides (six bullets, a 4x6 table, a three-series chart)."""
    slides = [SlideContent(layout="title", title="Quarterly review", subtitle="Numbers, plans and people")]
    for n in range(1, count):
        kind: Layout = LAYOUTS[n % 5]
        slide = SlideContent(layout=kind, title=f"Slide {n}: {kind.replace('_', ' ')}", notes=f"Notes of slide {n}.")
        if kind in ("bullets", "two_columns"):
            slide.bullets = [f"Point {i} of slide {n}, with a few words more" for i in range(1, 7)]
            slide.right = [f"Other side {i}" for i in range(1, 5)] if kind == "two_columns" else []
        elif kind == "table":
            slide.table = TableData(columns=["Region", "Q1", "Q2", "Q3"],
                                    rows=[[f"Region {r}", f"{r}1", f"{r}2", f"{r}3"] for r in range(1, 7)])  # fmt: skip
        elif kind == "chart":
            slide.chart = ChartData(type="column", categories=["Q1", "Q2", "Q3", "Q4"],
                                    series=[{"name": f"Line {s}", "values": [s, s + 2, s + 1, s + 3]}  # type: ignore[misc]
                                            for s in range(1, 4)])  # fmt: skip
        else:
            slide.subtitle = "A new part"
        slides.append(slide)
    return DeckSpec(title="Quarterly review", slides=slides)


def _render_figures(runs: int) -> bytes:
    spec = outline(30)
    render.render_deck(spec)  # imports and caches warm
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        data = render.render_deck(spec, theme="ocean")
        times.append(time.perf_counter() - started)
    median = statistics.median(times)
    verdict = "meets" if median <= RENDER_TARGET_S else "misses"
    print(f"render a 30-slide deck from its outline (python-pptx, {runs} runs): median {median * 1000:.0f} ms, "
          f"{median * 1000 / 30:.1f} ms a slide, {len(data) / 1024:.0f} KiB ({verdict} the {RENDER_TARGET_S:.0f} s "
          "target)")  # fmt: skip
    return data


async def _thumbnail_figures(runs: int) -> None:
    reason = thumbnails.available()
    if reason is not None:
        print(f"thumbnails per slide: not measured ({reason})")
        print(f"one slide's thumbnail: not measured ({reason})")
        return
    six = render.render_deck(DeckSpec(title="Six", slides=outline(6).slides))
    one = render.render_deck(DeckSpec(title="One", slides=outline(2).slides[1:]))
    per_deck, single = [], []
    for _ in range(runs):
        started = time.perf_counter()
        pictures = await thumbnails.pptx_to_pngs(six, expected=6)
        per_deck.append(time.perf_counter() - started)
        started = time.perf_counter()
        await thumbnails.pptx_to_pngs(one, expected=1)
        single.append(time.perf_counter() - started)
    deck_s = statistics.median(per_deck)
    print(f"thumbnails per slide (LibreOffice → PDF → pdftoppm, a 6-slide deck, {runs} runs): "
          f"{deck_s / 6 * 1000:.0f} ms a slide, {deck_s:.2f} s the deck, {len(pictures[0]) / 1024:.0f} KiB a PNG")
    print(f"one slide's thumbnail (what an edit redraws): {statistics.median(single) * 1000:.0f} ms")


async def _api_figures() -> None:
    upstream = ScriptedUpstream().start()
    llm = {"providers": [{"name": "scripted", "base_url": upstream.base_url,
                          "models": [{"id": "scripted", "max_output_tokens": 1024}]}],
           "default_model": "scripted", "local": {"enabled": False}}  # fmt: skip
    try:
        with tempfile.TemporaryDirectory() as tmp, live_server(Path(tmp) / "data",
                                                               extra_env={"AGENT_UI_LLM": json.dumps(llm)}) as server:  # fmt: skip
            async with httpx.AsyncClient(base_url=server.url, timeout=120) as http:
                headers = await signed_in(http)
                upstream.push(*deck_steps(figures=False))
                started = time.perf_counter()
                job = await _deck_job(http, headers, {"topic": "lighthouses", "slide_count": 6})
                wall = time.perf_counter() - started
                stages = ", ".join(f"{name} {seconds:.2f} s" for name, seconds in job["result"]["stage_s"].items())
                print(f"6-slide deck job through the API (scripted model): {wall:.2f} s in all; {stages}")
                deck_id = job["id"]
                started = time.perf_counter()
                edited = await http.patch(f"{AGENT}/slides/{deck_id}/slides/2", json={"title": "Edited"},
                                          headers=headers)  # fmt: skip
                edited.raise_for_status()
                patched = time.perf_counter() - started
                exported = await http.get(f"{AGENT}/slides/{deck_id}/export", headers=headers)
                exported.raise_for_status()
                picture = await http.get(f"{AGENT}/slides/{deck_id}/slides/2/thumbnail", params={"wait": 60},
                                         headers=headers)  # fmt: skip
                drawn = time.perf_counter() - started
                status = "ok" if picture.status_code == 200 else f"HTTP {picture.status_code}"
                print(f"edit a slide's title: PATCH with the .pptx rendered again {patched * 1000:.0f} ms; "
                      f"its new thumbnail {drawn:.2f} s after the edit ({status})")  # fmt: skip
    finally:
        upstream.stop()


async def _deck_job(http: httpx.AsyncClient, headers: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    started = await http.post(f"{AGENT}/generation/ppt", json=body, headers=headers)
    started.raise_for_status()
    while True:
        job: dict[str, Any] = (await http.get(f"{AGENT}/generation/jobs/{started.json()['id']}", headers=headers)).json()
        if job["status"] not in ("queued", "running"):
            break
        await asyncio.sleep(0.1)
    if job["status"] != "done":
        raise RuntimeError(f"the deck job ended {job['status']}: {job.get('error')}")
    return job


async def _local_deck() -> None:
    """A whole 6-slide deck written by the embedded local model (default settings, as shipped)."""
    with tempfile.TemporaryDirectory() as tmp, live_server(Path(tmp) / "data", startup_timeout_s=120) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=900) as http:
            headers = await signed_in(http)
            started = time.perf_counter()
            job = await _deck_job(http, headers, {"topic": "why the sea is salty", "slide_count": 6})
            wall = time.perf_counter() - started
            deck = (await http.get(f"{AGENT}/slides/{job['id']}", headers=headers)).json()
    layouts = ", ".join(slide["layout"] for slide in deck["slides"])
    stages = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in job["result"]["stage_s"].items())
    print(f"6-slide deck with the local model: {wall:.1f} s in all ({stages}); layouts: {layouts}; "
          f"title: {deck['title']!r}")  # fmt: skip


def main() -> None:
    logging.getLogger("httpx").setLevel(logging.WARNING)  # the job's polls are not figures
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="few runs, no local model: check that it runs")
    quick = parser.parse_known_args()[0].quick
    _render_figures(3 if quick else 10)
    asyncio.run(_thumbnail_figures(1 if quick else 3))
    asyncio.run(_api_figures())
    if quick:
        print("6-slide deck with the local model: not run with --quick (it loads the model: about 2 minutes)")
    else:
        asyncio.run(_local_deck())


if __name__ == "__main__":
    main()
