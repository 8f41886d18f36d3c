"""What a page shows while the embedded model loads: the runner reports its phases on a real first start."""

from __future__ import annotations

import asyncio
from pathlib import Path

from services.llm.local import LoadProgress, LocalModelRunner
from services.llm.weights import QWEN_05B
from services.settings import LocalModelSettings


async def test_a_first_start_reports_joining_then_starting_then_ready(tmp_path: Path) -> None:
    settings = LocalModelSettings(model_dir=tmp_path / "models", threads=2, parallel=1, context_size=1024)
    runner = LocalModelRunner(settings, run_dir=tmp_path / "run")
    assert runner.progress() == LoadProgress(phase="idle", typical_s=QWEN_05B.typical_load_s)
    seen: list[LoadProgress] = []
    start = asyncio.create_task(runner.base_url())
    try:
        while not start.done():
            seen.append(runner.progress())
            await asyncio.sleep(0.01)  # sampling the phases as they pass, not waiting for one
        await start
        phases = [p.phase for p in seen]
        assert "joining" in phases and "starting" in phases
        assert phases.index("joining") < len(phases) - 1 - phases[::-1].index("starting")  # joining comes first
        joined = [(p.parts_done, p.parts_total) for p in seen if p.phase == "joining"]
        assert all(total == len(QWEN_05B.distributions) for _, total in joined)
        assert [done for done, _ in joined] == sorted(done for done, _ in joined)  # parts only ever go up
        elapsed = [p.elapsed_s for p in seen if p.loading]
        assert elapsed == sorted(elapsed) and all(p.loading for p in seen if p.phase in ("joining", "starting"))
        ready = runner.progress()
        assert ready.phase == "ready" and not ready.loading
        assert 0 < ready.typical_s != QWEN_05B.typical_load_s  # the next wait is told from this load
    finally:
        await runner.stop()
