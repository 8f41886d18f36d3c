"""The vector codec, the exact cosine index against brute force, and reciprocal rank fusion."""

from __future__ import annotations

import numpy as np
import pytest

from services.rag.vectors import VectorIndex, from_blob, reciprocal_rank_fusion, to_blob

DIM = 384


def unit_vectors(rng: np.random.Generator, n: int, dim: int = DIM) -> np.ndarray:
    rows = rng.standard_normal((n, dim)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def brute_force(ids: list[str], matrix: np.ndarray, query: np.ndarray, k: int) -> list[str]:
    scores = matrix @ (query / np.linalg.norm(query))
    return [ids[i] for i in np.argsort(-scores, kind="stable")[:k]]


def test_blob_round_trip_is_little_endian_float32() -> None:
    vec = np.array([1.5, -2.25, 0.0, 3.0e-8], dtype=np.float64)
    blob = to_blob(vec)
    assert blob == np.array(vec, dtype="<f4").tobytes() and len(blob) == 16
    assert blob[:4] == b"\x00\x00\xc0\x3f"  # 1.5, least significant byte first
    back = from_blob(blob, 4)
    assert back.dtype == np.float32 and back.flags.writeable
    np.testing.assert_array_equal(back, vec.astype(np.float32))


@pytest.mark.parametrize("bad", [b"", b"\x00" * 15, b"\x00" * 20])
def test_a_blob_of_the_wrong_length_is_refused(bad: bytes) -> None:
    with pytest.raises(ValueError, match="4-dim float32 vector is 16 bytes"):
        from_blob(bad, 4)


@pytest.mark.parametrize("bad", [np.zeros((2, 2)), np.zeros(0), np.array([1.0, np.nan])])
def test_only_finite_flat_vectors_are_encoded(bad: np.ndarray) -> None:
    with pytest.raises(ValueError):
        to_blob(bad)


def test_top_k_equals_brute_force_on_random_unit_vectors() -> None:
    rng = np.random.default_rng(7)
    ids = [f"c{i}" for i in range(2000)]
    matrix = unit_vectors(rng, len(ids))
    index = VectorIndex(DIM, version=3)
    for start in range(0, len(ids), 300):  # several adds grow the matrix
        index.add(ids[start:start + 300], matrix[start:start + 300])
    assert len(index) == 2000 and index.version == 3
    for query in rng.standard_normal((10, DIM)).astype(np.float32):  # not unit: the index normalises it
        found = index.search(query, 10)
        assert [i for i, _ in found] == brute_force(ids, matrix, query, 10)
        expected = matrix[[ids.index(i) for i, _ in found]] @ (query / np.linalg.norm(query))
        np.testing.assert_allclose([score for _, score in found], expected, rtol=1e-5, atol=1e-6)
    assert len(index.search(matrix[0], 5000)) == 2000
    assert index.search(matrix[0], 0) == []
    assert index.search(matrix[0], 1) == [("c0", pytest.approx(1.0, abs=1e-5))]


def test_building_from_blobs_gives_the_same_index() -> None:
    rng = np.random.default_rng(1)
    matrix = unit_vectors(rng, 50)
    ids = [f"c{i}" for i in range(50)]
    index = VectorIndex.from_blobs(DIM, zip(ids, (to_blob(row) for row in matrix), strict=True), version=9)
    assert index.version == 9 and index.ids == ids
    query = unit_vectors(rng, 1)[0]
    assert [i for i, _ in index.search(query, 7)] == brute_force(ids, matrix, query, 7)
    with pytest.raises(ValueError, match="'bad' is 8 bytes"):
        VectorIndex.from_blobs(DIM, [("bad", b"\x00" * 8)])
    assert len(VectorIndex.from_blobs(DIM, [])) == 0


def test_removed_ids_never_come_back_and_the_rest_still_rank_exactly() -> None:
    rng = np.random.default_rng(2)
    ids = [f"c{i}" for i in range(500)]
    matrix = unit_vectors(rng, 500)
    index = VectorIndex(DIM)
    index.add(ids, matrix)
    gone = set(ids[::3]) | {"c499"}  # includes the last row, which other removals move
    assert index.remove([*gone, "never-added"]) == len(gone)
    assert index.remove(["c0"]) == 0
    kept = [i for i in ids if i not in gone]
    kept_matrix = matrix[[ids.index(i) for i in kept]]
    assert sorted(index.ids) == sorted(kept) and "c0" not in index and "c1" in index
    for row in matrix[:20]:  # queries equal to removed vectors must not find them
        found = [i for i, _ in index.search(row, 15)]
        assert not gone & set(found)
        assert found == brute_force(kept, kept_matrix, row, 15)
    index.add(["c0"], matrix[0])  # re-added after removal
    assert index.search(matrix[0], 1)[0][0] == "c0"


def test_adding_an_existing_id_replaces_its_vector() -> None:
    index = VectorIndex(3)
    index.add(["a", "b"], np.array([[1, 0, 0], [0, 1, 0]], dtype=np.float32))
    index.add(["a"], np.array([0, 0, 5], dtype=np.float32))  # also normalised
    assert len(index) == 2
    assert index.search([0, 0, 1], 2) == [("a", pytest.approx(1.0)), ("b", pytest.approx(0.0))]
    with pytest.raises(ValueError, match="unique"):
        index.add(["c", "c"], np.eye(3, dtype=np.float32)[:2])
    with pytest.raises(ValueError, match="expected 1 × 3"):
        index.add(["c"], np.zeros((1, 4), dtype=np.float32))
    with pytest.raises(ValueError, match="3 values"):
        index.search([1, 0], 1)


def test_allowed_ids_restrict_the_search() -> None:
    rng = np.random.default_rng(3)
    ids = [f"c{i}" for i in range(300)]
    matrix = unit_vectors(rng, 300)
    index = VectorIndex(DIM)
    index.add(ids, matrix)
    allowed = ids[100:140]
    query = matrix[5]  # the best match overall (itself) is not allowed
    found = index.search(query, 8, allowed_ids=[*allowed, "not-indexed", allowed[0]])
    assert [i for i, _ in found] == brute_force(allowed, matrix[100:140], query, 8)
    assert index.search(query, 8, allowed_ids=[]) == []
    assert index.search(query, 8, allowed_ids=["not-indexed"]) == []
    assert [i for i, _ in index.search(query, 1, allowed_ids=iter(["c5"]))] == ["c5"]


def test_rrf_keeps_an_item_found_by_one_method_and_puts_agreement_first() -> None:
    keyword = ["k-only", "both", "k2", "k3"]
    vector = ["v-only", "v2", "both", "v3"]
    fused = reciprocal_rank_fusion([keyword, vector])
    order = [item for item, _ in fused]
    assert order[0] == "both"  # 1/62 + 1/63 beats 1/61
    assert set(order) == set(keyword) | set(vector)
    assert order.index("k-only") < order.index("k2") and "v3" in order
    scores = dict(fused)
    assert scores["both"] == pytest.approx(1 / 62 + 1 / 63)
    assert scores["v-only"] == pytest.approx(1 / 61)


def test_rrf_ties_are_stable_and_weights_count() -> None:
    # Equal scores: the order lists are read rank by rank, earlier lists first.
    assert [i for i, _ in reciprocal_rank_fusion([["a", "c"], ["b", "d"]])] == ["a", "b", "c", "d"]
    assert [i for i, _ in reciprocal_rank_fusion([["b", "d"], ["a", "c"]])] == ["b", "a", "d", "c"]
    weighted = reciprocal_rank_fusion([["a"], ["b"]], weights=[1.0, 2.0])
    assert [i for i, _ in weighted] == ["b", "a"]
    repeated = dict(reciprocal_rank_fusion([["a", "a", "b"]], k=0))
    assert repeated == {"a": 1.0, "b": pytest.approx(1 / 3)}  # a counts once, b keeps its position
    assert reciprocal_rank_fusion([]) == [] and reciprocal_rank_fusion([[], []]) == []
    with pytest.raises(ValueError, match="2 weights for 1 rankings"):
        reciprocal_rank_fusion([["a"]], weights=[1, 1])


def test_a_changed_copy_leaves_the_original_untouched_for_searches_running_on_it() -> None:
    rng = np.random.default_rng(7)
    vectors = rng.normal(size=(5, 8)).astype(np.float32)
    original = VectorIndex(8, version=3)
    original.add([f"c{i}" for i in range(5)], vectors)
    newer = rng.normal(size=(2, 8)).astype(np.float32)
    changed = original.changed(add_ids=["n0", "n1"], add_vectors=newer, remove_ids=["c1", "c4"], version=4)
    assert (original.version, sorted(original.ids)) == (3, ["c0", "c1", "c2", "c3", "c4"])
    assert (changed.version, sorted(changed.ids)) == (4, ["c0", "c2", "c3", "n0", "n1"])
    assert original.search(vectors[1], 1)[0][0] == "c1"
    assert changed.search(newer[0], 1)[0][0] == "n0"
    assert changed.search(vectors[1], 5)[0][0] != "c1"
    emptied = changed.changed(add_ids=[], add_vectors=None, remove_ids=changed.ids, version=5)
    assert len(emptied) == 0 and emptied.search(vectors[0], 3) == []
