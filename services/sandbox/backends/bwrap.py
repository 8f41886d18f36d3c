"""Sandboxes without an engine: bubblewrap on the same root filesystem as the Docker image.

Each sandbox has one long-lived ``bwrap`` (its init) with every namespace unshared (no network but loopback),
all capabilities dropped, uid 1000, the image's root filesystem read-only, the sandbox's own workspace
directory at /workspace and its own /tmp. Commands and terminals join the init's namespaces with ``nsenter``
(as the unprivileged host user, with no new privileges), so a server or a REPL one of them starts is there for
the next, until the sandbox is destroyed or this process exits (the init dies with it). Memory, processes and
CPU are limited through cgroups v1 (rlimits where cgroups cannot be written, which health reports). Without
bubblewrap it refuses to run rather than run unisolated.

The init's /dev holds only null, zero, full, random, urandom and tty: a devpts of its own would need root
mapped inside, which makes bubblewrap nest a second user namespace that nothing can join. Terminals are
therefore pseudo-terminals of the host, handed to the program inside as its controlling terminal.
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
import struct
import tarfile
import termios
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
    HOME,
    TERMINAL_ENV,
    WORKSPACE,
    ExecResult,
    FileEntry,
    LabelledSandbox,
    OutputChunk,
    PtySpec,
    SandboxSpec,
    create_or_undo,
)
from services.sandbox.image import SANDBOX_UID, build_rootfs, template_named, template_of_image
from services.sandbox.spawn import Child, spawn, spawn_child

CGROUP_ROOT = Path("/sys/fs/cgroup")
# The host user sandboxes run as (inside they are uid 1000): unprivileged, owning only workspaces.
HOST_UID = HOST_GID = 65534
CONTROLLERS = ("memory", "pids", "cpu")
PATH = "/usr/local/bin:/usr/bin:/bin"
T = TypeVar("T")
GONE = "sandbox not found or no longer running"
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
# Inside a joined sandbox: go to the folder (``$1``), then run the rest.
IN_FOLDER = 'cd "$1" || exit 126; shift; exec "$@"'
# A terminal's program: its home made again if it was removed, then the folder, falling back to /workspace.
ON_TERMINAL = f'mkdir -p {HOME} 2>/dev/null; cd "$1" 2>/dev/null || cd {WORKSPACE}; shift; exec "$@"'


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


def _read_info(fd: int) -> str:
    """What a starting init writes on ``fd``: JSON read until it parses, or a line (blocking; closes ``fd``)."""
    data = b""
    try:
        while chunk := os.read(fd, 4096):
            data += chunk
            if data.endswith(b"\n") and not data.startswith(b"{"):
                break
            with contextlib.suppress(ValueError):
                json.loads(data)
                break
        return data.decode(errors="replace")
    finally:
        os.close(fd)


def ensure_rootfs(cache_dir: Path, template: str = "python") -> Path:
    """The template's root filesystem unpacked once into the cache (blocking; the agents template fetches its
    npm packages into ``cache_dir/downloads`` the first time)."""
    target = cache_dir / template_named(template).rootfs
    marker = target / ".complete"
    if marker.exists():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        cache_dir.chmod(0o755)  # sandboxes run as an unprivileged host user who must reach the root filesystem
    with (cache_dir / f".{target.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists():
            return target
        partial = cache_dir / f".{target.name}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir()
        tar_path = cache_dir / f".{target.name}.tar"
        with tar_path.open("wb") as handle:
            build_rootfs(handle, template, download_dir=cache_dir / "downloads")
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
        self._rootfs: dict[str, Path] = {}  # by template, unpacked on first use
        self._bwrap = shutil.which("bwrap")
        self._setpriv = shutil.which("setpriv")
        self._nsenter = shutil.which("nsenter")
        # Each sandbox's init (the outer bwrap) and the host pid of the process whose namespaces commands join.
        self._inits: dict[str, tuple[Child, int]] = {}
        self._init_locks: dict[str, asyncio.Lock] = {}

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
        if self._setpriv is None or self._nsenter is None:
            raise UpstreamUnavailableError("setpriv and nsenter (util-linux) are needed to run local sandboxes "
                                           "unprivileged and to keep their processes")  # fmt: skip
        await self._rootfs_of("python")
        limits = "cgroups v1" if self.uses_cgroups else "rlimits only (cgroups are not writable)"
        return f"bubblewrap, {limits}"

    async def _rootfs_of(self, template: str) -> Path:
        """The template's root filesystem, unpacked the first time (the agents one takes a while)."""
        if template not in self._rootfs:
            self._rootfs[template] = await asyncio.to_thread(ensure_rootfs, self._cache_dir, template)
        return self._rootfs[template]

    async def create(self, spec: SandboxSpec) -> str:
        await self.ping()
        template = template_of_image(spec.image)  # the spec names the template's image; ours is its rootfs
        await self._rootfs_of(template)
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
            (base / "workspace" / ".home").mkdir()
            self._own(base / "workspace" / ".home")
            meta = {"instance": self._instance, "owner": self._owner, "sandbox_id": spec.sandbox_id,
                    "user_id": spec.user_id, "template": template,
                    "mounts": [[mount.host_path, mount.sandbox_path] for mount in spec.mounts],
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

        async def make_and_start() -> str:
            made = await asyncio.to_thread(make)
            try:
                await self._init(made)
            except BaseException:
                await self.destroy(made)
                raise
            return made

        try:
            return await create_or_undo(make_and_start(), self.destroy)
        except OSError as exc:
            raise UpstreamUnavailableError("the local sandbox backend could not start the sandbox",
                                           code="sandbox_engine_error") from exc  # fmt: skip

    def _init_argv(self, ref: str, rootfs: Path, mounts: list[list[str]]) -> list[str]:
        """The sandbox's init: bwrap holding the namespaces, its own /tmp, a minimal /dev. bwrap writes the pid
        on fd 3 as soon as it has cloned, before the sandbox is set up; the program inside says "ready" on fd 4
        once it runs, so nothing joins a sandbox half made (whose mounts would still be the host's)."""
        assert self._bwrap is not None
        devices = [arg for name in DEVICES for arg in ("--dev-bind", f"/dev/{name}", f"/dev/{name}")]
        # Read-only host folders (the MCP tool server's socket); "try": one gone since leaves no hole.
        binds = [arg for host, inside in mounts for arg in ("--ro-bind-try", host, inside)]
        return [
            self._bwrap, "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
            "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID), "--hostname", "sandbox",
            "--ro-bind", str(rootfs), "/", "--bind", str(self._dir(ref) / "workspace"), WORKSPACE,
            "--tmpfs", "/tmp", *binds, "--proc", "/proc", "--tmpfs", "/dev", *devices,  # noqa: S108
            "--chdir", WORKSPACE, "--clearenv", "--info-fd", "3", "--",
            "/bin/sh", "-c", "echo ready >&4; exec 3>&- 4>&- sleep 2147483647",
        ]  # fmt: skip

    async def _init(self, ref: str) -> int:
        """The host pid whose namespaces the sandbox's commands join, starting its init if none runs (at create,
        or again after something inside killed it: the workspace is kept, processes are not)."""
        lock = self._init_locks.setdefault(ref, asyncio.Lock())
        async with lock:
            known = self._inits.get(ref)
            if known is not None and known[0].running:
                return known[1]
            await self.ping()
            meta = await self._meta(ref)
            rootfs = await self._rootfs_of(str(meta.get("template", "python")))
            listed = meta.get("mounts")
            mounts = [[str(host), str(inside)] for host, inside in listed] if isinstance(listed, list) else []
            devnull = os.open(os.devnull, os.O_RDWR)
            info_read, info_write = os.pipe()
            ready_read, ready_write = os.pipe()
            try:
                init = spawn_child([*self._launcher(ref, meta), *self._init_argv(ref, rootfs, mounts)],
                                   env={"PATH": "/usr/bin:/bin"},
                                   fds={0: devnull, 1: devnull, 2: devnull, 3: info_write, 4: ready_write})  # fmt: skip
            finally:
                for fd in (devnull, info_write, ready_write):
                    os.close(fd)
            try:
                async with asyncio.timeout(30):
                    info = await asyncio.to_thread(_read_info, info_read)
                    ready = await asyncio.to_thread(_read_info, ready_read)
                if ready != "ready\n":
                    raise ValueError("the sandbox's init did not start")
                pid = int(json.loads(info)["child-pid"])
            except (TimeoutError, ValueError, KeyError) as exc:
                init.kill_group()
                await init.wait()
                raise UpstreamUnavailableError("the local sandbox backend could not start the sandbox",
                                               code="sandbox_engine_error") from exc  # fmt: skip
            self._inits[ref] = (init, pid)
            return pid

    async def _meta(self, ref: str) -> dict[str, object]:
        try:
            return json.loads(await asyncio.to_thread((self._dir(ref) / "meta.json").read_text))
        except (OSError, ValueError) as exc:  # destroyed in between
            raise NotFoundError(GONE, code="sandbox_not_found") from exc

    async def _joined(self, ref: str, meta: dict[str, object], inner: list[str]) -> list[str]:
        """argv that runs ``inner`` inside the sandbox (``meta`` read from it): confined (see :meth:`_launcher`),
        then joined to the init's namespaces as uid 1000 with no capabilities and no new privileges."""
        pid = await self._init(ref)
        assert self._nsenter is not None
        join = [self._nsenter, "-t", str(pid), "-U", "-m", "-p", "-n", "-i", "-u", "-C", "--preserve-credentials",
                "--"]  # fmt: skip
        return [*self._launcher(ref, meta, no_new_privs=True), *join, *inner]

    @staticmethod
    def _environment(env: dict[str, str]) -> list[str]:
        """``env -i`` and the assignments: nothing of this process's environment reaches the sandbox."""
        return ["env", "-i", *(f"{name}={value}" for name, value in env.items())]

    @staticmethod
    def _own(path: Path) -> None:
        if os.geteuid() == 0:
            os.chown(path, HOST_UID, HOST_GID)

    def _launcher(self, ref: str, meta: dict[str, object], *, no_new_privs: bool = False) -> list[str]:
        """The argv that confines a command before bwrap starts it: join the sandbox's cgroups (or set an
        rlimit), then, as root, become the unprivileged host user, so nothing in the sandbox is root on the
        host, even mapped. A shell rather than ``preexec_fn``: the spawn is a vfork that never stalls the event
        loop on copying this process. Any step that fails stops the launch (nothing runs unconfined)."""
        if self.uses_cgroups:
            steps = [f"echo $$ > {CGROUP_ROOT / c / 'agent-ui' / ref / 'cgroup.procs'}" for c in CONTROLLERS]
        else:
            address_space_kb = int(str(meta["memory_mb"])) * 4 * 1024  # address space, not RSS: a loose bound
            steps = [f"ulimit -v {address_space_kb}"]
        assert self._setpriv is not None
        drop = [self._setpriv, *(["--no-new-privs"] if no_new_privs else [])]
        if os.geteuid() == 0:
            drop += [f"--reuid={HOST_UID}", f"--regid={HOST_GID}", "--clear-groups"]
        return ["/bin/sh", "-c", " && ".join([*steps, 'exec "$@"']), "sandbox-launch", *drop]

    async def exec_stream(
        self, ref: str, command: str, *, timeout_s: float, workdir: str, env: dict[str, str], max_output: int
    ) -> AsyncIterator[OutputChunk | ExecResult]:
        meta = await self._meta(ref)
        environment = {"PATH": PATH, "HOME": "/home/sandbox", "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1",
                       **meta.get("env", {}), **env}  # type: ignore[dict-item]  # fmt: skip
        inner = ["/bin/sh", "-c", IN_FOLDER, "sandbox-exec", workdir, *self._environment(environment),
                 "timeout", "-s", "KILL", str(max(1, math.ceil(timeout_s))), "sh", "-c", command]  # fmt: skip
        argv = await self._joined(ref, meta, inner)
        started = time.monotonic()
        process = await spawn(argv, env={"PATH": "/usr/bin:/bin"})
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
        init = self._inits.pop(ref, (None, 0))[0]
        self._init_locks.pop(ref, None)
        if init is not None:  # its pid namespace goes with it: every command and terminal inside is killed
            init.kill_group()
            await init.wait()
        if self._dir(ref).exists() or any((CGROUP_ROOT / c / "agent-ui" / ref).exists() for c in CONTROLLERS):
            await asyncio.to_thread(self._remove, ref)

    async def open_pty(self, ref: str, spec: PtySpec) -> LocalPty:
        environment = {"PATH": PATH, **TERMINAL_ENV, **spec.env}
        inner = ["/bin/setsid", "-c", *self._environment(environment), "sh", "-c", ON_TERMINAL, "agent-ui-terminal",
                 spec.workdir, *spec.argv]  # fmt: skip
        argv = await self._joined(ref, await self._meta(ref), inner)
        master, slave = os.openpty()
        try:
            os.set_blocking(master, False)
            _set_size(master, spec.rows, spec.cols)
            child = spawn_child(argv, env={"PATH": "/usr/bin:/bin"}, fds={0: slave, 1: slave, 2: slave})
        except BaseException:
            os.close(master)
            raise
        finally:
            os.close(slave)
        return LocalPty(master, child)

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


def _set_size(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


class LocalPty:
    """A host pseudo-terminal whose other side is the controlling terminal of a program inside the sandbox.
    Its master is read and written by the event loop (non-blocking); closing it hangs the terminal up."""

    def __init__(self, master: int, child: Child) -> None:
        self._master = master
        self._child = child
        self._closed = False
        self._waiting: set[Callable[[], None]] = set()
        self.exit_code: int | None = None

    async def _ready(self, add: Callable[..., None], remove: Callable[[int], object]) -> None:
        """Until the master can be read (or written), or the terminal is closed."""
        loop = asyncio.get_running_loop()
        ready = loop.create_future()

        def wake() -> None:
            if not ready.done():
                ready.set_result(None)

        add(self._master, wake)
        self._waiting.add(wake)
        try:
            await ready
        finally:
            self._waiting.discard(wake)
            if not self._closed:
                remove(self._master)

    async def read(self) -> bytes:
        loop = asyncio.get_running_loop()
        while not self._closed:
            try:
                data = os.read(self._master, 65536)
            except BlockingIOError:
                await self._ready(loop.add_reader, loop.remove_reader)
                continue
            except OSError:  # EIO: the program and everything holding the terminal are gone
                data = b""
            if data:
                return data
            break
        await self._reap()
        return b""

    async def write(self, data: bytes) -> None:
        loop = asyncio.get_running_loop()
        view = memoryview(data)
        while view:
            if self._closed:
                raise ConflictError("the terminal has ended", code="terminal_closed")
            try:
                view = view[os.write(self._master, view) :]
            except BlockingIOError:
                await self._ready(loop.add_writer, loop.remove_writer)
            except OSError as exc:
                raise ConflictError("the terminal has ended", code="terminal_closed") from exc

    async def resize(self, rows: int, cols: int) -> None:
        if not self._closed:
            _set_size(self._master, rows, cols)  # the kernel tells the foreground program (SIGWINCH)

    async def _reap(self) -> None:
        """Wait for the joining process; one the hang-up did not end within a second is killed."""
        try:
            code = await asyncio.wait_for(asyncio.shield(self._child.wait()), 1)
        except TimeoutError:
            self._child.kill_group()
            code = await self._child.wait()
        self.exit_code = code if code >= 0 else 128 - code

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        loop = asyncio.get_running_loop()
        loop.remove_reader(self._master)
        loop.remove_writer(self._master)
        for wake in list(self._waiting):  # a read or write waiting on the master ends (read gives b"")
            wake()
        os.close(self._master)  # the hang-up: SIGHUP to the program's session
        await self._reap()
