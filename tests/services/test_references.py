"""The core's registry of who owns another capability's ids: unknown kinds, missing and foreign ids all read 404."""

from __future__ import annotations

import pytest

from services.errors import NotFoundError
from services.references import References


async def test_an_id_is_owned_only_through_the_resolver_of_its_prefix() -> None:
    owned = {("usr_a", "chs_1"), ("usr_a", "run_2")}
    asked: list[tuple[str, str]] = []

    async def owns(user_id: str, object_id: str) -> bool:
        asked.append((user_id, object_id))
        return (user_id, object_id) in owned

    references = References()
    references.register("chs", owns)
    references.register("run", owns)
    assert references.prefixes() == ["chs", "run"]

    await references.ensure_owned("usr_a", "chs_1")
    await references.ensure_owned("usr_a", "run_2")
    for user_id, object_id in [("usr_b", "chs_1"), ("usr_a", "chs_9"), ("usr_a", "art_1"), ("usr_a", "chs_"),
                               ("usr_a", "chs"), ("usr_a", ""), ("usr_a", "_1")]:  # fmt: skip
        with pytest.raises(NotFoundError) as raised:
            await references.ensure_owned(user_id, object_id, what="session")
        assert raised.value.message == "session not found" and raised.value.code == "not_found"
    # Ids of a kind nobody resolves, or with nothing after the prefix, never reach a resolver.
    assert ("usr_a", "art_1") not in asked and ("usr_a", "chs_") not in asked


def test_a_prefix_has_one_resolver() -> None:
    async def owns(user_id: str, object_id: str) -> bool:
        return True

    references = References()
    references.register("chs", owns)
    with pytest.raises(ValueError, match="already"):
        references.register("chs", owns)
    with pytest.raises(ValueError, match="letters and digits"):
        references.register("chs_", owns)


async def test_labels_are_asked_once_per_prefix_and_only_for_ids_a_describer_knows() -> None:
    asked: list[tuple[str, list[str]]] = []

    def describer(kind: str):  # type: ignore[no-untyped-def]
        async def describe(user_id: str, object_ids: list[str]) -> dict[str, str]:
            asked.append((kind, object_ids))
            return {object_id: f"{kind} {object_id[-1]}" for object_id in object_ids if object_id != "chs_9"}

        return describe

    async def owns(user_id: str, object_id: str) -> bool:
        return True

    references = References()
    references.register("chs", owns, describe=describer("Chat"))
    references.register("sbx", describe=describer("Sandbox"))  # described, but nothing may link to it
    references.register("run", owns)  # linked to, but not described
    labels = await references.describe("usr_a", ["chs_1", "sbx_2", "chs_1", "chs_3", "chs_9", "run_4", "art_5",
                                                 "chs_", "_6"])  # fmt: skip
    assert labels == {"chs_1": "Chat 1", "sbx_2": "Sandbox 2", "chs_3": "Chat 3"}
    assert sorted(asked) == [("Chat", ["chs_1", "chs_3", "chs_9"]), ("Sandbox", ["sbx_2"])]
    assert await references.describe("usr_a", []) == {} and len(asked) == 2
    assert references.prefixes() == ["chs", "run"] and not await references.owns("usr_a", "sbx_2")


def test_a_registration_answers_something_once() -> None:
    async def describe(user_id: str, object_ids: list[str]) -> dict[str, str]:
        return {}

    references = References()
    with pytest.raises(ValueError, match="owner check, a describer or both"):
        references.register("chs")
    references.register("sbx", describe=describe)
    with pytest.raises(ValueError, match="already"):
        references.register("sbx", describe=describe)
