"""Each benchmark's quick mode runs and prints every figure (never checked against its targets: speed is
measured in bench/, not asserted in tests). A benchmark the product outgrew fails here, not in a later session."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIGURES = {
    "bench.foundation": ["cold start to healthy", "GET /api/v1/health", "auth/me (session)", "auth/me (sk_ key)",
                         "ratio sk_ key / session", "server RSS"],
    "bench.chat_stream": ["added TTFT median", "total-time ratio median", "concurrent streams", "largest stall",
                          "server CPU per", "streams with all", "app RSS idle"],
    "bench.chat_eval": ["routing", "correct", "no leak", "TTFT ms", "arithmetic answers exact", "model load"],
    "bench.rag": ["ingest pages/s", "chunks embedded/s", "retrieval quality", "recall@5", "MRR@5",
                  "hybrid beats both", "first search (cold", "keyword search:", "vector search:", "hybrid search:",
                  "chosen resources (as a chat turn) search:", "where a hybrid search goes", "hybrid p95 target"],
    "bench.mcp": ["client pool in process", "through the REST API", "ratio REST / direct", "tool server call",
                  "fresh connection"],
    "bench.sandbox": ["local cold", "local warm", "docker warm", "docker cold", "local alone", "raw",
                      "create → exec → destroy", "exec round trip", "concurrent sandboxes", "local terminal",
                      "docker terminal", "keystroke echo"],
    "bench.slides": ["render a 30-slide deck", "thumbnails per slide", "one slide's thumbnail", "6-slide deck job",
                     "edit a slide's title", "6-slide deck with the local model"],
    "bench.tts": ["engine real-time factor", "API real-time factor", "ratio API / engine",
                  "mp3 encoding alone", "grammar accuracy", "free-decoding word accuracy", "default by measure",
                  "configured order", "podcast audio stage", "mix + normalise + mp3 + flac",
                  "podcast line re-spoken", "podcast with the local model"],
}  # fmt: skip


@pytest.mark.parametrize("module", sorted(FIGURES))
def test_the_quick_mode_prints_every_figure_without_errors(module: str, docker_engine: str) -> None:
    done = subprocess.run([sys.executable, "-m", module, "--quick"], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, check=False)  # fmt: skip
    output = done.stdout
    assert done.returncode == 0, f"{module} failed:\n{output}\n{done.stderr[-3000:]}"
    missing = [figure for figure in FIGURES[module] if figure not in output]
    assert missing == [], f"{module} did not print {missing}:\n{output}"
    assert "nan" not in output.lower().replace("nanos", ""), output
    assert all(count == "0" for count in re.findall(r"errors (\d+)", output)), output
