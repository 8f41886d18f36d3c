"""Dense vectors without a vector database: a byte codec for storing them, an exact in-memory cosine index,
and reciprocal rank fusion to merge the dense ranking with the full-text one.

Exact search is a single matrix-vector product: for one user's chunks (up to ~100k × 384) it takes
milliseconds and needs no approximate index to build, tune or keep consistent.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

Matrix = npt.NDArray[np.float32]

_FLOAT32_LE = np.dtype("<f4")


def to_blob(vec: npt.ArrayLike) -> bytes:
    """One vector as little-endian float32 bytes (4 × dim), the same on every machine and database."""
    array = np.asarray(vec)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"a vector must be one non-empty dimension, not shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError("a vector must be finite")
    return array.astype(_FLOAT32_LE, copy=False).tobytes()


def from_blob(blob: bytes, dim: int) -> Matrix:
    """The vector :func:`to_blob` stored; a blob of the wrong length (another model, truncation) is refused."""
    if dim < 1:
        raise ValueError("dim must be at least 1")
    if len(blob) != 4 * dim:
        raise ValueError(f"a {dim}-dim float32 vector is {4 * dim} bytes, this blob is {len(blob)}")
    return np.frombuffer(blob, dtype=_FLOAT32_LE).astype(np.float32)


class VectorIndex:
    """Exact top-k cosine over one user's vectors of one embedding model, kept in memory.

    Meant to be cached per (user, embedding model) and rebuilt when the database's version counter moves past
    ``version`` (another process changed the vectors). Vectors are normalised on the way in, so a score is the
    cosine in [-1, 1]. Rows live in one growable float32 matrix; removing swaps the last row into the hole, so
    add and remove cost O(dim) per vector. Not thread-safe: mutate it on one thread (the event loop), or build a
    new index and swap it in; ``search`` on an index nobody mutates may run in a worker thread.
    """

    def __init__(self, dim: int, *, version: int = 0) -> None:
        if dim < 1:
            raise ValueError("dim must be at least 1")
        self.dim = dim
        self.version = version
        self._ids: list[str] = []
        self._rows: dict[str, int] = {}
        self._matrix: Matrix = np.zeros((0, dim), dtype=np.float32)

    @classmethod
    def from_blobs(cls, dim: int, items: Iterable[tuple[str, bytes]], *, version: int = 0) -> VectorIndex:
        """Build from ``(id, blob)`` pairs as read from the database, in one pass (no per-row numpy calls)."""
        pairs = list(items)
        index = cls(dim, version=version)
        if not pairs:
            return index
        for chunk_id, blob in pairs:
            if len(blob) != 4 * dim:
                raise ValueError(f"vector {chunk_id!r} is {len(blob)} bytes, not {4 * dim}")
        raw = np.frombuffer(b"".join(blob for _, blob in pairs), dtype=_FLOAT32_LE).reshape(len(pairs), dim)
        index.add([chunk_id for chunk_id, _ in pairs], raw)
        return index

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._rows

    @property
    def ids(self) -> list[str]:
        """The ids in row order (a copy)."""
        return list(self._ids)

    @property
    def nbytes(self) -> int:
        """Memory held by the vectors, for a cache that wants a budget."""
        return int(self._matrix.nbytes)

    def changed(self, *, add_ids: Sequence[str], add_vectors: npt.ArrayLike, remove_ids: Iterable[str],
                version: int) -> VectorIndex:  # fmt: skip
        """A new index: this one with ``remove_ids`` gone and ``add_ids`` added, at ``version``. This one is left as
        it is, so searches running on it in other threads are undisturbed; build the new one in a worker thread."""
        fresh = VectorIndex(self.dim, version=version)
        fresh._ids = list(self._ids)
        fresh._rows = dict(self._rows)
        fresh._matrix = self._matrix[:max(len(self._ids), 1)].copy()
        fresh.remove(remove_ids)
        if len(add_ids):
            fresh.add(add_ids, add_vectors)
        return fresh

    def add(self, ids: Sequence[str], vectors: npt.ArrayLike) -> None:
        """Insert or replace: an id already present gets the new vector. Ids must be unique within one call."""
        matrix = np.asarray(vectors, dtype=np.float32)
        if matrix.ndim == 1:
            matrix = matrix.reshape(1, -1)
        if matrix.shape != (len(ids), self.dim):
            raise ValueError(f"expected {len(ids)} × {self.dim} vectors, got shape {matrix.shape}")
        if len(set(ids)) != len(ids):
            raise ValueError("ids must be unique within one add")
        if not np.isfinite(matrix).all():
            raise ValueError("vectors must be finite")
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        matrix = np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)
        if self._rows.keys().isdisjoint(ids):  # the usual case: all new, no per-id work but the dict
            new_ids, new_rows = list(ids), matrix
        else:
            fresh = [i for i, item_id in enumerate(ids) if item_id not in self._rows]
            for i, item_id in enumerate(ids):
                if (row := self._rows.get(item_id)) is not None:
                    self._matrix[row] = matrix[i]
            new_ids, new_rows = [ids[i] for i in fresh], matrix[fresh]
        if not new_ids:
            return
        start = len(self._ids)
        self._reserve(start + len(new_ids))
        self._matrix[start:start + len(new_ids)] = new_rows
        self._rows.update(zip(new_ids, range(start, start + len(new_ids)), strict=True))
        self._ids.extend(new_ids)

    def remove(self, ids: Iterable[str]) -> int:
        """Drop these ids (unknown ones are ignored); returns how many were removed."""
        removed = 0
        for item_id in ids:
            row = self._rows.pop(item_id, None)
            if row is None:
                continue
            last = len(self._ids) - 1
            if row != last:
                moved = self._ids[last]
                self._matrix[row] = self._matrix[last]
                self._ids[row] = moved
                self._rows[moved] = row
            self._ids.pop()
            removed += 1
        return removed

    def search(self, query_vec: npt.ArrayLike, k: int, allowed_ids: Iterable[str] | None = None,
               ) -> list[tuple[str, float]]:
        """The ``k`` ids most similar to the query, best first, as ``(id, cosine)``; ties by id.

        ``allowed_ids`` restricts the search (chosen resources' chunks); ids not in the index are ignored.
        """
        query = np.asarray(query_vec, dtype=np.float32).reshape(-1)
        if query.shape != (self.dim,):
            raise ValueError(f"the query must have {self.dim} values, not {query.size}")
        if k < 1 or not self._ids:
            return []
        norm = float(np.linalg.norm(query))
        if not np.isfinite(norm) or norm == 0:
            return []
        matrix = self._matrix[:len(self._ids)]
        if allowed_ids is None:
            rows = None
            scores = matrix @ (query / norm)
        else:
            rows = np.fromiter((row for i in allowed_ids if (row := self._rows.get(i)) is not None), dtype=np.intp)
            if rows.size == 0:
                return []
            rows = np.unique(rows)
            scores = matrix[rows] @ (query / norm)
        k = min(k, scores.size)
        top = np.argpartition(-scores, k - 1)[:k] if k < scores.size else np.arange(scores.size)
        found = [(self._ids[int(rows[t] if rows is not None else t)], float(scores[t])) for t in top]
        found.sort(key=lambda pair: (-pair[1], pair[0]))
        return found

    def _reserve(self, size: int) -> None:
        """Grow the matrix geometrically so a run of adds copies O(n) rows in total."""
        if size <= self._matrix.shape[0]:
            return
        grown = np.zeros((max(size, 2 * self._matrix.shape[0], 64), self.dim), dtype=np.float32)
        grown[:len(self._ids)] = self._matrix[:len(self._ids)]
        self._matrix = grown


def reciprocal_rank_fusion(rankings: Sequence[Sequence[str]], *, k: int = 60,
                           weights: Sequence[float] | None = None) -> list[tuple[str, float]]:
    """Merge ranked id lists (e.g. full text and vectors) into one, best first, as ``(id, fused score)``.

    Each list contributes ``weight / (k + rank)`` (rank from 1) for every id it holds, so an id found by one
    method only still appears, and an id high in several lists beats one that tops a single list. Only ranks
    count, never raw scores, which is why bm25 and cosine can be fused without calibrating them; ``k`` = 60
    (Cormack et al., 2009) damps the difference between the first few ranks. A repeated id within one list counts
    at its best rank only. Ties keep a stable order: the id reached first when the lists are read rank by rank,
    earlier lists first.
    """
    if k < 0:
        raise ValueError("k must not be negative")
    if weights is None:
        weights = [1.0] * len(rankings)
    elif len(weights) != len(rankings):
        raise ValueError(f"{len(weights)} weights for {len(rankings)} rankings")
    elif any(w < 0 for w in weights):
        raise ValueError("weights must not be negative")
    scores: dict[str, float] = {}
    first_seen: dict[str, int] = {}
    seen_in = [set[str]() for _ in rankings]
    depth = max((len(r) for r in rankings), default=0)
    for position in range(depth):
        for which, ranking in enumerate(rankings):
            if position >= len(ranking) or (item := ranking[position]) in seen_in[which]:
                continue
            seen_in[which].add(item)
            first_seen.setdefault(item, len(first_seen))
            scores[item] = scores.get(item, 0.0) + weights[which] / (k + position + 1)
    return sorted(scores.items(), key=lambda pair: (-pair[1], first_seen[pair[0]]))
