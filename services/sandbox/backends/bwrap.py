"""Sandboxes without an engine: bubblewrap on the same root filesystem as the Docker image.

Every exec is a fresh ``bwrap`` with every namespace unshared (no network but loopback), all
capabilities dropped, uid 1000, the image's root filesystem read-only, and the sandbox's own workspace
directory at /workspace. Memory, processes and CPU are limited through cgroups v1 (rlimits where cgroups
cannot be written, which health reports). Without bubblewrap it refuses to run rather than run unisolated.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import json
import math
import os
import shutil
import signal
import tarfile
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from services.errors import (
    ConflictError,
    DomainError,
    InvalidRequestError,
    NotFoundError,
    QuotaExceededError,
    UpstreamUnavailableError,
    ValidationFailedError,
)
from services.sandbox.base import (
    WORKSPACE,
    ExecResult,
    FileEntry,
    LabelledSandbox,
    OutputChunk,
    SandboxSpec,
    create_or_undo,
)
from services.sandbox.image import RECIPE_VERSION, SANDBOX_UID, build_rootfs
from services.sandbox.spawn import spawn

CGROUP_ROOT = Path("/sys/fs/cgroup")
# The host user sandboxes run as (inside they are uid 1000): unprivileged, owning only workspaces.
HOST_UID = HOST_GID = 65534
CONTROLLERS = ("memory", "pids", "cpu")
PATH = "/usr/local/bin:/usr/bin:/bin"
T = TypeVar("T")
GONE = "sandbox not found or no longer running"


def domain_error(exc: OSError) -> DomainError:
    """What a failed file system call means to the caller, in our words (the OS's names host paths)."""
    if exc.errno == errno.ENOENT:
        return NotFoundError("no such file or folder in the sandbox")
    if exc.errno == errno.ENAMETOOLONG:
        return ValidationFailedError("a file or folder name is too long", code="invalid_path")
    if exc.errno == errno.ELOOP:
        return ValidationFailedError("the path leads through a link", code="path_outside_workspace")
    if exc.errno in (errno.ENOTDIR, errno.EISDIR, errno.EEXIST):
        return ConflictError("a file or folder is in the way on that path", code="path_conflict")
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return QuotaExceededError("the workspace is full", code="disk_quota")
    return UpstreamUnavailableError("the local sandbox backend failed to carry out the request",
                                    code="sandbox_engine_error")  # fmt: skip


def ensure_rootfs(cache_dir: Path) -> Path:
    """The image's root filesystem unpacked once into the cache (blocking)."""
    target = cache_dir / f"rootfs-r{RECIPE_VERSION}"
    marker = target / ".complete"
    if marker.exists():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        cache_dir.chmod(0o755)  # sandboxes run as an unprivileged host user who must reach the root filesystem
    with (cache_dir / ".rootfs.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists():
            return target
        partial = cache_dir / f".rootfs-r{RECIPE_VERSION}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir()
        tar_path = cache_dir / ".rootfs.tar"
        with tar_path.open("wb") as handle:
            build_rootfs(handle)
        with tarfile.open(tar_path) as tar:
            tar.extractall(partial, filter="tar")
        tar_path.unlink()
        (partial / ".complete").touch()
        partial.chmod(0o755)
        shutil.rmtree(target, ignore_errors=True)
        partial.rename(target)
    return target


class LocalSandboxBackend:
    kind = "local"

    def __init__(self, *, root: Path, cache_dir: Path, instance: str, owner: str) -> None:
        self._root = root
        self._cache_dir = cache_dir
        self._instance = instance
        self._owner = owner
        self._rootfs: Path | None = None
        self._bwrap = shutil.which("bwrap")
        self._setpriv = shutil.which("setpriv")

    @property
    def uses_cgroups(self) -> bool:
        return os.geteuid() == 0 and all(os.access(CGROUP_ROOT / c, os.W_OK) for c in CONTROLLERS)

    def _dir(self, ref: str) -> Path:
        if not ref.isalnum():
            raise NotFoundError("sandbox not found")
        return self._root / ref

    def _host_path(self, ref: str, path: str) -> Path:
        relative = os.path.relpath(path, WORKSPACE)
        return self._dir(ref) / "workspace" / ("" if relative == "." else relative)

    @staticmethod
    async def _io(function: Callable[[], T]) -> T:
        """Blocking file work in a thread; what the OS refuses becomes our error."""
        try:
            return await asyncio.to_thread(function)
        except OSError as exc:
            raise domain_error(exc) from exc

    async def ping(self) -> str:
        if self._bwrap is None:
            raise UpstreamUnavailableError("bubblewrap is not installed (apt-get install bubblewrap): "
                                           "the local backend will not run without isolation")  # fmt: skip
        if os.geteuid() == 0 and self._setpriv is None:
            raise UpstreamUnavailableError("setpriv (util-linux) is needed to run local sandboxes as an "
                                           "unprivileged user")  # fmt: skip
        if self._rootfs is None:
            self._rootfs = await asyncio.to_thread(ensure_rootfs, self._cache_dir)
        limits = "cgroups v1" if self.uses_cgroups else "rlimits only (cgroups are not writable)"
        return f"bubblewrap, {limits}"

    async def create(self, spec: SandboxSpec) -> str:
        await self.ping()
        ref = spec.sandbox_id.replace("_", "")

        def make() -> str:
            base = self._dir(ref)
            self._root.mkdir(parents=True, exist_ok=True)
            self._root.chmod(0o755)  # the unprivileged sandbox user must reach its workspace
            try:
                base.mkdir()
            except FileExistsError as exc:  # never another's: nothing of it is touched
                raise ConflictError("a sandbox with this id exists", code="sandbox_exists") from exc
            try:
                fill(base)
            except BaseException:
                self._remove(ref)
                raise
            return ref

        def fill(base: Path) -> None:
            base.chmod(0o755)
            (base / "workspace").mkdir()
            self._own(base / "workspace")
            meta = {"instance": self._instance, "owner": self._owner, "sandbox_id": spec.sandbox_id,
                    "user_id": spec.user_id,
                    "env": spec.env, "memory_mb": spec.limits.memory_mb, "pids": spec.limits.pids,
                    "cpu": spec.limits.cpu}  # fmt: skip
            (base / "meta.json").write_text(json.dumps(meta))
            if self.uses_cgroups:
                for controller in CONTROLLERS:
                    (CGROUP_ROOT / controller / "agent-ui" / ref).mkdir(parents=True, exist_ok=True)
                memory = CGROUP_ROOT / "memory" / "agent-ui" / ref
                (memory / "memory.limit_in_bytes").write_text(str(spec.limits.memory_mb * 2**20))
                swap = memory / "memory.memsw.limit_in_bytes"
                if swap.exists():
                    swap.write_text(str(spec.limits.memory_mb * 2**20))
                (CGROUP_ROOT / "pids" / "agent-ui" / ref / "pids.max").write_text(str(spec.limits.pids))
                cpu = CGROUP_ROOT / "cpu" / "agent-ui" / ref
                (cpu / "cpu.cfs_period_us").write_text("100000")
                (cpu / "cpu.cfs_quota_us").write_text(str(int(spec.limits.cpu * 100000)))

        try:
            return await create_or_undo(asyncio.to_thread(make), self.destroy)
        except OSError as exc:
            raise UpstreamUnavailableError("the local sandbox backend could not start the sandbox",
                                           code="sandbox_engine_error") from exc  # fmt: skip

    def _argv(self, ref: str, command: str, timeout_s: float, workdir: str, env: dict[str, str]) -> list[str]:
        assert self._bwrap is not None and self._rootfs is not None
        argv = [
            self._bwrap, "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
            "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID), "--hostname", "sandbox",
            "--ro-bind", str(self._rootfs), "/", "--bind", str(self._dir(ref) / "workspace"), WORKSPACE,
            "--tmpfs", "/tmp", "--tmpfs", "/home/sandbox", "--proc", "/proc", "--dev", "/dev",  # noqa: S108
            "--chdir", workdir, "--clearenv", "--setenv", "PATH", PATH, "--setenv", "HOME", "/home/sandbox",
            "--setenv", "LANG", "C.UTF-8", "--setenv", "PYTHONDONTWRITEBYTECODE", "1",
        ]  # fmt: skip
        for name, value in env.items():
            argv += ["--setenv", name, value]
        return [*argv, "--", "timeout", "-s", "KILL", str(max(1, math.ceil(timeout_s))), "sh", "-c", command]

    @staticmethod
    def _own(path: Path) -> None:
        if os.geteuid() == 0:
            os.chown(path, HOST_UID, HOST_GID)

    def _launcher(self, ref: str, meta: dict[str, object]) -> list[str]:
        """The argv that confines a command before bwrap starts it: join the sandbox's cgroups (or set an
        rlimit), then, as root, become the unprivileged host user, so nothing in the sandbox is root on the
        host, even mapped. A shell rather than ``preexec_fn``: the spawn is a vfork that never stalls the event
        loop on copying this process. Any step that fails stops the launch (nothing runs unconfined)."""
        if self.uses_cgroups:
            steps = [f"echo $$ > {CGROUP_ROOT / c / 'agent-ui' / ref / 'cgroup.procs'}" for c in CONTROLLERS]
        else:
            address_space_kb = int(str(meta["memory_mb"])) * 4 * 1024  # address space, not RSS: a loose bound
            steps = [f"ulimit -v {address_space_kb}"]
        drop = []
        if os.geteuid() == 0:
            assert self._setpriv is not None
            drop = [self._setpriv, f"--reuid={HOST_UID}", f"--regid={HOST_GID}", "--clear-groups"]
        return ["/bin/sh", "-c", " && ".join([*steps, 'exec "$@"']), "sandbox-launch", *drop]

    async def exec_stream(
        self, ref: str, command: str, *, timeout_s: float, workdir: str, env: dict[str, str], max_output: int
    ) -> AsyncIterator[OutputChunk | ExecResult]:
        await self.ping()
        if not self._dir(ref).exists():
            raise NotFoundError(GONE, code="sandbox_not_found")
        try:
            meta = json.loads((self._dir(ref) / "meta.json").read_text())
        except OSError as exc:  # destroyed in between
            raise NotFoundError(GONE, code="sandbox_not_found") from exc
        started = time.monotonic()
        process = await spawn([*self._launcher(ref, meta), *self._argv(ref, command, timeout_s, workdir,
                                                                        {**meta.get("env", {}), **env})],
                              env={"PATH": "/usr/bin:/bin"})  # fmt: skip
        queue: asyncio.Queue[tuple[str, bytes] | None] = asyncio.Queue()
        kept = {"stdout": 0, "stderr": 0}
        out: dict[str, list[bytes]] = {"stdout": [], "stderr": []}
        truncated = False

        async def pump(name: str, stream: asyncio.StreamReader) -> None:
            while chunk := await stream.read(65536):
                await queue.put((name, chunk))
            await queue.put(None)

        pumps = [
            asyncio.ensure_future(pump("stdout", process.stdout)),
            asyncio.ensure_future(pump("stderr", process.stderr)),
        ]
        open_streams = 2
        deadline = started + timeout_s + 5  # `timeout` inside kills first; this is the backstop
        try:
            while open_streams:
                try:
                    item = await asyncio.wait_for(queue.get(), max(0.1, deadline - time.monotonic()))
                except TimeoutError:
                    process.kill_group()
                    break
                if item is None:
                    open_streams -= 1
                    continue
                name, data = item
                room = max_output - kept[name]
                if room <= 0:
                    truncated = True
                    continue
                if len(data) > room:
                    data, truncated = data[:room], True
                kept[name] += len(data)
                out[name].append(data)
                yield OutputChunk(name, data.decode(errors="replace"))  # type: ignore[arg-type]
            exit_code = await process.wait()
        finally:
            for task in pumps:
                task.cancel()
            if process.returncode is None:
                process.kill_group()
                await process.wait()
            process.close()
        if not self._dir(ref).exists():  # destroyed while it ran: bwrap's own complaint names host paths
            raise NotFoundError(GONE, code="sandbox_not_found")
        elapsed = time.monotonic() - started
        timed_out = exit_code in (137, -9) and elapsed >= timeout_s - 0.5
        yield ExecResult(
            exit_code=None if timed_out else (128 + -exit_code if exit_code < 0 else exit_code),
            stdout=b"".join(out["stdout"]).decode(errors="replace"),
            stderr=b"".join(out["stderr"]).decode(errors="replace"),
            timed_out=timed_out, truncated=truncated, elapsed_ms=round(elapsed * 1000),
        )  # fmt: skip

    async def resolve(self, ref: str, path: str) -> str:
        host_workspace, real = await self._io(
            lambda: (os.path.realpath(self._dir(ref) / "workspace"), os.path.realpath(self._host_path(ref, path)))
        )
        if real == host_workspace:
            return WORKSPACE
        if real.startswith(host_workspace + "/"):
            return WORKSPACE + real[len(host_workspace) :]
        return real  # outside: the caller refuses it

    async def put_file(self, ref: str, path: str, data: bytes) -> None:
        target = self._host_path(ref, path)

        def write() -> None:
            workspace = self._dir(ref) / "workspace"
            parents = []
            for parent in reversed(target.relative_to(workspace).parents[:-1]):
                parents.append(workspace / parent)
            for directory in parents:
                if directory.is_symlink():
                    raise InvalidRequestError("a folder on the path is a link", code="path_outside_workspace")
                if not directory.exists():
                    directory.mkdir()
                    self._own(directory)
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            self._own(target)

        await self._io(write)

    async def get_file(self, ref: str, path: str) -> bytes:
        target = self._host_path(ref, path)

        def read() -> bytes:
            if not target.exists():
                raise NotFoundError("no such file in the sandbox")
            if not target.is_file() or target.is_symlink():
                raise InvalidRequestError("not a regular file", code="not_a_file")
            return target.read_bytes()

        return await self._io(read)

    async def list_dir(self, ref: str, path: str) -> list[FileEntry]:
        target = self._host_path(ref, path)

        def listing() -> list[FileEntry]:
            if not target.exists():
                raise NotFoundError("no such directory in the sandbox")
            if not target.is_dir():
                raise InvalidRequestError("not a directory", code="not_a_directory")
            entries = []
            for entry in os.scandir(target):
                info = entry.stat(follow_symlinks=False)
                kind = (
                    "link"
                    if entry.is_symlink()
                    else "dir"
                    if entry.is_dir()
                    else "file"
                    if entry.is_file()
                    else "other"
                )
                entries.append(FileEntry(entry.name, kind, info.st_size, datetime.fromtimestamp(info.st_mtime, UTC)))  # type: ignore[arg-type]
            return sorted(entries, key=lambda e: e.name)

        return await self._io(listing)

    async def disk_usage(self, ref: str) -> int:
        def usage() -> int:
            total = 0
            for directory, _dirs, files in os.walk(self._dir(ref) / "workspace"):
                for name in files:
                    with contextlib.suppress(OSError):
                        total += (Path(directory) / name).lstat().st_blocks * 512
            return total

        return await self._io(usage)

    def _remove(self, ref: str) -> None:
        """Kill what runs in the sandbox's cgroups, remove them and its directory (blocking)."""
        for controller in CONTROLLERS:
            group = CGROUP_ROOT / controller / "agent-ui" / ref
            if not group.exists():
                continue
            with contextlib.suppress(OSError):
                for pid in (group / "cgroup.procs").read_text().split():
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(int(pid), signal.SIGKILL)
            for _ in range(50):
                try:
                    group.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)
        shutil.rmtree(self._dir(ref), ignore_errors=True)

    async def destroy(self, ref: str) -> None:
        if self._dir(ref).exists() or any((CGROUP_ROOT / c / "agent-ui" / ref).exists() for c in CONTROLLERS):
            await asyncio.to_thread(self._remove, ref)

    async def list_labelled(self) -> list[LabelledSandbox]:
        def listing() -> list[LabelledSandbox]:
            found = []
            for meta_path in self._root.glob("*/meta.json") if self._root.exists() else []:
                with contextlib.suppress(ValueError, OSError):
                    meta = json.loads(meta_path.read_text())
                    if meta.get("instance") == self._instance:
                        found.append(
                            LabelledSandbox(
                                meta_path.parent.name, meta["sandbox_id"], meta["user_id"], meta.get("owner", "")
                            )
                        )
            return found

        return await asyncio.to_thread(listing)
