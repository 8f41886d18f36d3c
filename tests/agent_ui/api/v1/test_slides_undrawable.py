"""A slide LibreOffice cannot draw (here: every conversion times out) is said to be so (503 `thumbnails_failed`),
not asked for again on every poll: the deck itself is made and stays usable."""

from __future__ import annotations

import httpx
import pytest

from services.settings import GenerationSettings, Settings
from tests.agent_ui.api.v1.test_slides import SLIDES, exported, made_deck
from tests.upstream import ScriptedUpstream


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"generation": GenerationSettings(thumbnail_timeout_s=0.01)})


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_slide_that_cannot_be_drawn_is_reported_and_not_retried(
    client: httpx.AsyncClient, make_account, upstream: ScriptedUpstream  # type: ignore[no-untyped-def]
) -> None:
    alice = await make_account()
    job = await made_deck(client, alice.headers, upstream)
    assert str(job["result"]["thumbnails"]).startswith("failed:"), job["result"]
    assert len(list((await exported(client, alice.headers, job["id"])).slides)) == 6
    for _ in range(3):  # each poll answers at once, with the reason
        answer = await client.get(f"{SLIDES}/{job['id']}/slides/0/thumbnail", params={"wait": 30},
                                  headers=alice.headers)  # fmt: skip
        assert answer.status_code == 503 and answer.json()["error"]["code"] == "thumbnails_failed", answer.text
    deck = (await client.get(f"{SLIDES}/{job['id']}", headers=alice.headers)).json()
    assert not any(slide["thumbnail_ready"] for slide in deck["slides"])
