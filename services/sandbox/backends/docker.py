"""Sandboxes as containers on a Docker engine, through the docker SDK (blocking: every call runs in a thread)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import math
import posixpath
import queue
import secrets
import socket
import tarfile
import threading
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from services.errors import (
    ConflictError,
    DomainError,
    InvalidRequestError,
    NotFoundError,
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
    PtyProcess,
    PtySpec,
    SandboxSpec,
    create_or_undo,
)
from services.sandbox.image import SANDBOX_UID, template_of_image

T = TypeVar("T")
# How the engine words a container that is on its way out, whatever status it answers with.
GONE_STATES = ("is not running", "removal in progress", "marked for removal", "is paused", "is restarting", "is dead")
# The value is the instance's id: instances sharing an engine never touch each other's sandboxes.
LABEL_APP = "agent-ui.sandbox"
LABEL_OWNER = "agent-ui.owner"
# A sandbox's container and volume are both named this and its id.
NAME_PREFIX = "agent-ui-"
# Kills an exec's wrapper and every process it started (the tree under the pid the wrapper wrote down). With a
# second argument "hangup" (a terminal closed), what ignores SIGHUP (as nohup makes it) lives on, as after closing a
# real terminal; the program itself never does.
KILL_TREE = (
    "import os, signal, sys, time\n"
    "path = '/tmp/.agent-ui-exec-' + sys.argv[1]\n"
    "hangup = sys.argv[2:] == ['hangup']\n"
    "def ignores_hangup(pid):\n"
    "    try:\n"
    "        for line in open('/proc/%d/status' % pid):\n"
    "            if line.startswith('SigIgn:'):\n"
    "                return bool(int(line.split()[1], 16) & 1)\n"
    "    except (OSError, ValueError, IndexError):\n"
    "        pass\n"
    "    return False\n"
    "for _ in range(50):\n"
    "    try:\n"
    "        root = int(open(path).read()); break\n"
    "    except (OSError, ValueError):\n"
    "        time.sleep(0.02)\n"
    "else:\n"
    "    sys.exit(0)\n"
    "children = {}\n"
    "for name in os.listdir('/proc'):\n"
    "    if not name.isdigit():\n"
    "        continue\n"
    "    try:\n"
    "        ppid = int(open('/proc/%s/stat' % name).read().rsplit(')', 1)[1].split()[1])\n"
    "    except (OSError, ValueError, IndexError):\n"
    "        continue\n"
    "    children.setdefault(ppid, []).append(int(name))\n"
    "todo, doomed = [root], []\n"
    "while todo:\n"
    "    pid = todo.pop(); doomed.append(pid); todo += children.get(pid, [])\n"
    "for pid in doomed:\n"
    "    if hangup and pid != root and ignores_hangup(pid):\n"
    "        continue\n"
    "    try:\n"
    "        os.kill(pid, signal.SIGKILL)\n"
    "    except OSError:\n"
    "        pass\n"
    "try:\n"
    "    os.unlink(path)\n"
    "except OSError:\n"
    "    pass\n"
)
# A terminal's output is read in chunks of up to this many bytes, at most PTY_QUEUED of them waiting for the reader.
PTY_CHUNK = 65536
PTY_QUEUED = 16
LIST_DIR = (
    "import json, os, sys\n"
    "out = []\n"
    "for e in os.scandir(sys.argv[1]):\n"
    "    s = e.stat(follow_symlinks=False)\n"
    "    k = 'link' if e.is_symlink() else 'dir' if e.is_dir() else 'file' if e.is_file() else 'other'\n"
    "    out.append([e.name, k, s.st_size, s.st_mtime])\n"
    "print(json.dumps(out))\n"
)


class DockerSandboxBackend:
    kind = "docker"

    def __init__(self, *, docker_host: str | None, instance: str, owner: str) -> None:
        """``instance`` labels this deployment's sandboxes (apart from others sharing the engine); ``owner`` is
        the process that starts them, so that another instance recovers them only once that process is gone."""
        self._docker_host = docker_host
        self._instance = instance
        self._owner = owner
        self._client: Any = None

    @property
    def address(self) -> str:
        return self._docker_host or "the default Docker socket"

    def _docker(self) -> Any:
        if self._client is None:
            import docker

            self._client = (
                docker.DockerClient(base_url=self._docker_host, timeout=30)
                if self._docker_host
                else docker.from_env(timeout=30)
            )
        return self._client

    async def _call(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking SDK call in a thread, turning what the engine says into our errors."""
        try:
            return await asyncio.to_thread(function, *args, **kwargs)
        except Exception as exc:
            mapped = self._domain_error(exc)
            if mapped is exc:
                raise
            raise mapped from exc

    def _domain_error(self, exc: Exception) -> Exception:
        """The one place engine errors become ours. The engine's text names containers, volumes and host paths,
        so none of it reaches the caller (it stays in the chained exception, for the logs)."""
        import docker.errors
        import requests.exceptions

        if isinstance(exc, DomainError):  # ours already (raised inside the thread)
            return exc
        if isinstance(exc, docker.errors.ImageNotFound):
            return UpstreamUnavailableError(
                "the sandbox image is not built on this engine: run `agent-ui sandbox build-image`",
                code="sandbox_image_missing",
            )
        if isinstance(exc, docker.errors.NotFound):
            return NotFoundError("sandbox not found or no longer running", code="sandbox_not_found")
        if isinstance(exc, docker.errors.APIError) and exc.response is not None:  # the engine answered
            status, said = exc.status_code or 500, str(exc.explanation or "").lower()
            # Stopped, paused or being removed: a destroy got there first. The engine says so with a 409, or with a
            # 500 ("is not running: Removal In Progress") when the removal began under the call.
            if status == 409 or any(state in said for state in GONE_STATES):
                return ConflictError("the sandbox is not running", code="sandbox_not_running")
            if "no such container" in said:
                return NotFoundError("sandbox not found or no longer running", code="sandbox_not_found")
            if status < 500:
                return ValidationFailedError("the sandbox engine refused the request", code="sandbox_refused")
            return UpstreamUnavailableError("the sandbox engine failed to carry out the request",
                                            code="sandbox_engine_error")  # fmt: skip
        if isinstance(exc, docker.errors.InvalidArgument):  # the SDK refused it before sending
            return ValidationFailedError("the sandbox engine refused the request", code="sandbox_refused")
        if isinstance(exc, requests.exceptions.RequestException | docker.errors.DockerException):
            self._client = None
            return UpstreamUnavailableError(f"the Docker engine at {self.address} does not answer")
        return exc

    async def ping(self) -> str:
        return await self._call(lambda: self._docker().version()["Version"])

    async def create(self, spec: SandboxSpec) -> str:
        labels = {LABEL_APP: self._instance, LABEL_OWNER: self._owner, "agent-ui.sandbox-id": spec.sandbox_id,
                  "agent-ui.user-id": spec.user_id}  # fmt: skip
        name = NAME_PREFIX + spec.sandbox_id

        def create() -> str:
            import docker.errors

            client = self._docker()
            try:
                client.images.get(spec.image)  # never pulled: no registry is assumed reachable
            except docker.errors.ImageNotFound as exc:
                template = template_of_image(spec.image)
                build = "agent-ui sandbox build-image" + ("" if template == "python" else f" --template {template}")
                raise UpstreamUnavailableError(f"the sandbox image is not built on this engine: run `{build}`",
                                               code="sandbox_image_missing") from exc  # fmt: skip
            try:
                container = make(client)
            except docker.errors.APIError as exc:
                if exc.status_code == 409:  # the name is taken: that sandbox is another's, nothing of it is touched
                    raise ConflictError("a sandbox with this id exists", code="sandbox_exists") from exc
                self._remove_named(client, name)
                raise
            except BaseException:  # a volume, perhaps a container (a create that timed out may have made it)
                self._remove_named(client, name)
                raise
            try:
                container.start()
            except BaseException:  # created, then refused to start (limits, env): the container and volume go
                self._remove_named(client, name)
                raise
            return str(container.id)

        def make(client: Any) -> Any:
            volume = client.volumes.create(name=name, labels=labels)
            return client.containers.create(
                spec.image,
                command=["sh", "-c", f"mkdir -p {HOME}; exec sleep 2147483647"],  # the home lives in the workspace
                name=name,
                init=True,
                user=f"{SANDBOX_UID}:{SANDBOX_UID}",
                working_dir=WORKSPACE,
                environment=spec.env,
                labels=labels,
                network_mode="bridge" if spec.network else "none",
                read_only=True,
                tmpfs={"/tmp": "rw,nosuid,nodev,size=64m"},  # noqa: S108
                volumes={volume.name: {"bind": WORKSPACE, "mode": "rw"}, **self._binds(spec)},
                mem_limit=f"{spec.limits.memory_mb}m",
                memswap_limit=f"{spec.limits.memory_mb}m",
                nano_cpus=int(spec.limits.cpu * 1e9),
                pids_limit=spec.limits.pids,
                cap_drop=["ALL"],
                security_opt=["no-new-privileges"],
                ulimits=[{"Name": "nofile", "Soft": 1024, "Hard": 1024}],
            )

        return await create_or_undo(self._call(create), self.destroy)

    def _binds(self, spec: SandboxSpec) -> dict[str, dict[str, str]]:
        """The spec's host folders, read-only; only on an engine on this machine (a remote one has other
        folders under the same paths)."""
        if not (self._docker_host or "unix://").startswith("unix://"):
            return {}
        return {mount.host_path: {"bind": mount.sandbox_path, "mode": "ro"} for mount in spec.mounts}

    @staticmethod
    def _remove_named(client: Any, name: str) -> None:
        """Remove a sandbox's container and volume by their name, whatever of them is there (the name holds the
        sandbox's random id, and a create whose name was taken never gets here); never raises, so the create's
        own error is the one reported."""
        with contextlib.suppress(Exception):
            client.api.remove_container(name, force=True)
        with contextlib.suppress(Exception):
            client.api.remove_volume(name, force=True)

    def _exec_command(self, command: str, timeout_s: float, nonce: str, tag: str) -> list[str]:
        """exec has no timeout of its own: busybox `timeout` kills the command (exit 137) when it runs over.
        After it, the same exec reports the workspace's size on stderr behind ``nonce`` (see DiskTrailer):
        the disk quota check costs no second exec. The wrapper writes its pid under ``tag`` so that a stopped
        exec can be killed (the engine cannot kill an exec)."""
        script = ('echo $$ > "/tmp/.agent-ui-exec-$4"; timeout -s KILL "$1" sh -c "$2"; rc=$?; '
                  'rm -f "/tmp/.agent-ui-exec-$4"; '
                  f'printf "\\n%s %s\\n" "$3" "$(du -sk {WORKSPACE} | cut -f1)" >&2; exit $rc')  # fmt: skip
        return ["sh", "-c", script, "agent-ui-exec", str(max(1, math.ceil(timeout_s))), command, nonce, tag]

    async def exec_stream(
        self, ref: str, command: str, *, timeout_s: float, workdir: str, env: dict[str, str], max_output: int
    ) -> AsyncIterator[OutputChunk | ExecResult]:
        chunks: queue.Queue[tuple[str, bytes] | ExecResult | BaseException] = queue.Queue()
        loop = asyncio.get_running_loop()
        ready = asyncio.Event()
        tag = secrets.token_hex(8)

        def run() -> None:
            started = time.monotonic()
            try:
                api = self._docker().api
                trailer = DiskTrailer()
                exec_id = api.exec_create(ref, self._exec_command(command, timeout_s, trailer.nonce, tag),
                                          workdir=workdir, environment=env,
                                          user=f"{SANDBOX_UID}:{SANDBOX_UID}")["Id"]  # fmt: skip
                kept = {"stdout": 0, "stderr": 0}
                truncated = False
                out: dict[str, list[bytes]] = {"stdout": [], "stderr": []}

                def keep(name: str, data: bytes) -> None:
                    nonlocal truncated
                    room = max_output - kept[name]
                    if not data or room <= 0:
                        truncated = truncated or bool(data)
                        return
                    if len(data) > room:
                        data, truncated = data[:room], True
                    kept[name] += len(data)
                    out[name].append(data)
                    chunks.put((name, data))
                    loop.call_soon_threadsafe(ready.set)

                for stdout, stderr in api.exec_start(exec_id, stream=True, demux=True):
                    keep("stdout", stdout or b"")
                    keep("stderr", trailer.feed(stderr or b""))
                rest, disk_used = trailer.finish()
                keep("stderr", rest)
                exit_code = api.exec_inspect(exec_id)["ExitCode"]
                elapsed = time.monotonic() - started
                timed_out = exit_code == 137 and elapsed >= timeout_s - 0.5
                chunks.put(ExecResult(
                    exit_code=None if timed_out else exit_code,
                    stdout=b"".join(out["stdout"]).decode(errors="replace"),
                    stderr=b"".join(out["stderr"]).decode(errors="replace"),
                    timed_out=timed_out, truncated=truncated, elapsed_ms=round(elapsed * 1000),
                    disk_used_bytes=disk_used,
                ))  # fmt: skip
            except BaseException as exc:  # handed to the event loop, raised there
                chunks.put(exc)
            loop.call_soon_threadsafe(ready.set)

        thread = threading.Thread(target=run, name=f"exec-{ref[:12]}", daemon=True)
        thread.start()
        ended = False
        try:
            while True:
                await ready.wait()
                ready.clear()
                while not chunks.empty():
                    item = chunks.get_nowait()
                    if isinstance(item, BaseException):
                        ended = True
                        await self._call(_raise, item)  # the same error mapping as every other call
                    if isinstance(item, ExecResult):
                        ended = True
                        yield item
                        return
                    yield OutputChunk(item[0], item[1].decode(errors="replace"))  # type: ignore[index, arg-type]
        finally:
            if not ended:  # the reader left or the run was stopped: the command must not run on
                with contextlib.suppress(Exception):
                    await self._sh(ref, "python3", "-c", KILL_TREE, tag)

    async def open_pty(self, ref: str, spec: PtySpec) -> PtyProcess:
        """An exec with a TTY whose hijacked connection carries the terminal both ways. Its wrapper writes its pid
        under a tag (the engine cannot kill an exec: closing kills the tree under it) and sets the window size
        before the program starts (the engine's resize comes after the start, too late for the program's first
        look)."""
        tag = secrets.token_hex(8)
        script = ('echo $$ > "/tmp/.agent-ui-exec-$1"; mkdir -p "$5" 2>/dev/null; '
                  'stty rows "$3" cols "$4" 2>/dev/null; '
                  f'cd "$2" 2>/dev/null || cd {WORKSPACE}; shift 5; exec "$@"')  # fmt: skip
        command = ["sh", "-c", script, "agent-ui-terminal", tag, spec.workdir, str(spec.rows), str(spec.cols), HOME,
                   *spec.argv]  # fmt: skip

        def start() -> tuple[str, Any]:
            api = self._docker().api
            exec_id = api.exec_create(ref, command, stdin=True, tty=True, user=f"{SANDBOX_UID}:{SANDBOX_UID}",
                                      environment={**TERMINAL_ENV, **spec.env}, workdir=WORKSPACE)["Id"]  # fmt: skip
            return exec_id, api.exec_start(exec_id, socket=True, tty=True)

        starting = asyncio.ensure_future(self._call(start))
        try:
            exec_id, connection = await asyncio.shield(starting)
        except asyncio.CancelledError:  # the start runs on in its thread: what it started is hung up

            async def hang_up() -> None:
                with contextlib.suppress(Exception):
                    await DockerPty(self, ref, tag, *await starting).close()

            await asyncio.shield(asyncio.ensure_future(hang_up()))
            raise
        pty = DockerPty(self, ref, tag, exec_id, connection)
        try:
            await pty.resize(spec.rows, spec.cols)
        except BaseException:
            await asyncio.shield(pty.close())
            raise
        return pty

    async def _sh(self, ref: str, *argv: str) -> tuple[int, str, str]:
        def run() -> tuple[int, str, str]:
            api = self._docker().api
            exec_id = api.exec_create(ref, list(argv), user=f"{SANDBOX_UID}:{SANDBOX_UID}")["Id"]
            stdout, stderr = api.exec_start(exec_id, demux=True)
            return (api.exec_inspect(exec_id)["ExitCode"], (stdout or b"").decode(errors="replace"),
                    (stderr or b"").decode(errors="replace"))  # fmt: skip

        return await self._call(run)

    async def resolve(self, ref: str, path: str) -> str:
        code, stdout, _ = await self._sh(ref, "readlink", "-f", path)
        return stdout.strip() if code == 0 and stdout.strip() else path

    async def put_file(self, ref: str, path: str, data: bytes) -> None:
        relative = posixpath.relpath(path, WORKSPACE)
        buffer = io.BytesIO()
        now = time.time()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            parts = relative.split("/")
            for depth in range(1, len(parts)):
                info = tarfile.TarInfo("/".join(parts[:depth]))
                info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, now
                info.uid = info.gid = SANDBOX_UID
                tar.addfile(info)
            info = tarfile.TarInfo(relative)
            info.size, info.mode, info.uid, info.gid, info.mtime = len(data), 0o644, SANDBOX_UID, SANDBOX_UID, now
            tar.addfile(info, io.BytesIO(data))
        await self._call(lambda: self._docker().api.put_archive(ref, WORKSPACE, buffer.getvalue()))

    async def get_file(self, ref: str, path: str) -> bytes:
        def read() -> bytes:
            stream, _stat = self._docker().api.get_archive(ref, path)
            with tarfile.open(fileobj=io.BytesIO(b"".join(stream)), mode="r") as tar:
                member = tar.next()
                if member is None or not member.isfile():
                    raise InvalidRequestError("not a regular file", code="not_a_file")
                handle = tar.extractfile(member)
                assert handle is not None
                return handle.read()

        return await self._call(read)

    async def list_dir(self, ref: str, path: str) -> list[FileEntry]:
        code, stdout, stderr = await self._sh(ref, "python3", "-c", LIST_DIR, path)
        if code != 0:
            if "NotADirectoryError" in stderr:
                raise InvalidRequestError("not a directory", code="not_a_directory")
            raise NotFoundError("no such directory in the sandbox")
        return [
            FileEntry(name=name, type=kind, size=size, modified=datetime.fromtimestamp(mtime, UTC))
            for name, kind, size, mtime in sorted(json.loads(stdout))
        ]

    async def disk_usage(self, ref: str) -> int:
        code, stdout, _ = await self._sh(ref, "du", "-sk", WORKSPACE)
        return int(stdout.split()[0]) * 1024 if code == 0 and stdout.split() else 0

    async def destroy(self, ref: str) -> None:
        """Remove the container and its volume. ``ref`` is a container id, or the name of a volume that lost its
        container (as :meth:`list_labelled` reports one)."""
        import docker.errors

        def remove() -> None:
            client = self._docker()
            if ref.startswith(NAME_PREFIX):
                name = ref
                with contextlib.suppress(docker.errors.NotFound):
                    client.api.remove_container(name, force=True)
            else:
                try:
                    container = client.containers.get(ref)
                except docker.errors.NotFound:
                    return
                name = NAME_PREFIX + container.labels.get("agent-ui.sandbox-id", "")
                try:
                    container.remove(force=True)
                except docker.errors.NotFound:
                    pass
                except docker.errors.APIError as exc:  # another destroy is removing it: wait for it to be gone
                    if not (exc.status_code == 409 or "removal" in str(exc.explanation or "").lower()):
                        raise
            # The volume goes once no container uses it: the one being removed, by us or by another destroy.
            deadline = time.monotonic() + 10
            while True:
                try:
                    client.api.remove_volume(name, force=True)
                    return
                except docker.errors.NotFound:
                    return
                except docker.errors.APIError as exc:
                    if exc.status_code != 409 or time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)

        await self._call(remove)

    async def list_labelled(self) -> list[LabelledSandbox]:
        """This deployment's containers, and its volumes that have no container (a destroy that removed the
        container and then failed): those are reported by the volume's name, which :meth:`destroy` takes."""

        def listing() -> list[LabelledSandbox]:
            client = self._docker()
            ours = {"label": f"{LABEL_APP}={self._instance}"}
            containers = client.containers.list(all=True, filters=ours)
            named = {c.name for c in containers}
            found = [(c.id, c.labels) for c in containers]
            found += [(v.name, v.attrs.get("Labels") or {}) for v in client.volumes.list(filters=ours)
                      if v.name not in named]  # fmt: skip
            return [LabelledSandbox(ref, labels.get("agent-ui.sandbox-id", ""), labels.get("agent-ui.user-id", ""),
                                    labels.get(LABEL_OWNER, "")) for ref, labels in found]  # fmt: skip

        return await self._call(listing)


class DockerPty:
    """A program on a terminal in a container: an exec with a TTY and its hijacked connection. One thread per
    terminal reads the connection (a blocking read) into a small queue the event loop takes from: a program that
    writes faster than its reader waits, as on a real terminal, instead of filling memory."""

    def __init__(self, backend: DockerSandboxBackend, ref: str, tag: str, exec_id: str, connection: Any) -> None:
        self.exit_code: int | None = None
        self._backend = backend
        self._ref = ref
        self._tag = tag
        self._exec_id = exec_id
        self._connection = connection
        # A SocketIO over the engine's socket (its raw socket in ``_sock``), or the socket itself (TLS).
        self._socket: socket.socket = getattr(connection, "_sock", connection)
        self._socket.settimeout(None)  # the client's timeout would end a terminal left idle for 30 s
        self._chunks: queue.Queue[bytes] = queue.Queue(maxsize=PTY_QUEUED)
        self._loop = asyncio.get_running_loop()
        self._ready = asyncio.Event()
        self._write_lock = asyncio.Lock()
        self._ended = False  # the program's output is all read
        self._closed = False
        threading.Thread(target=self._pump, name=f"pty-{ref[:12]}", daemon=True).start()

    def _receiver(self) -> Callable[[int], bytes]:
        """What reads the connection. The HTTP response the connection was upgraded from is read through a buffer
        that may already hold the program's first output: it is read through that buffer when there is one."""
        try:
            buffered = self._connection._response.raw._fp.fp
            if buffered.raw is self._connection:
                return buffered.read1
        except AttributeError:
            pass
        return self._socket.recv

    def _pump(self) -> None:
        """The reading thread: the output in chunks, ``b""`` at the end (the program exited, or close())."""
        receive = self._receiver()
        try:
            while not self._closed:
                data = receive(PTY_CHUNK)
                if not data or not self._hand_over(data):
                    break
        except (OSError, ValueError):  # the connection shut under the read by close(), or the engine went away
            pass
        finally:
            self._hand_over(b"")
            for closable in (getattr(self._connection, "_response", self._socket), self._connection, self._socket):
                with contextlib.suppress(Exception):
                    closable.close()

    def _hand_over(self, data: bytes) -> bool:
        """Queue ``data`` for read(), waiting while the queue is full; False once nobody will read it."""
        while not self._closed and not self._loop.is_closed():
            try:
                self._chunks.put(data, timeout=0.5)
            except queue.Full:
                continue
            with contextlib.suppress(RuntimeError):  # the event loop closed meanwhile
                self._loop.call_soon_threadsafe(self._ready.set)
            return True
        return False

    async def read(self) -> bytes:
        while not self._ended and not self._closed:
            try:
                data = self._chunks.get_nowait()
            except queue.Empty:
                self._ready.clear()  # a chunk queued from now on sets it again
                if self._chunks.empty():
                    await self._ready.wait()
                continue
            if data:
                return data
            self._ended = True
            await self._inspect()
        return b""

    async def write(self, data: bytes) -> None:
        async with self._write_lock:  # two writes never interleave
            if self._ended or self._closed:
                raise ConflictError("the terminal has ended", code="terminal_closed")
            try:
                await asyncio.to_thread(self._socket.sendall, data)
            except OSError as exc:
                raise ConflictError("the terminal has ended", code="terminal_closed") from exc

    async def resize(self, rows: int, cols: int) -> None:
        """The engine resizes the terminal and the kernel tells the program (SIGWINCH). A program that ended meanwhile
        has nothing to resize."""
        if self._ended or self._closed:
            return
        api = self._backend._docker().api
        try:
            await self._backend._call(api.exec_resize, self._exec_id, height=rows, width=cols)
        except DomainError:
            if await self._inspect():
                raise

    async def _inspect(self) -> bool:
        """Whether the program still runs; once it has exited, its exit code is kept. The engine marks the exec ended
        a moment after its output ends: an exec still running is asked again, for a second at most."""
        api = self._backend._docker().api
        for _ in range(20):
            try:
                info = await self._backend._call(api.exec_inspect, self._exec_id)
            except DomainError:  # the container went with the program: no code to know
                return False
            if not info.get("Running"):
                self.exit_code = info.get("ExitCode")
                return False
            if not self._ended:
                return True
            await asyncio.sleep(0.05)
        return True

    async def close(self) -> None:
        """The hang-up: the program and what it started are killed (except what ignores SIGHUP) and the
        connection is shut, which ends the reading thread. Nothing is raised for a sandbox already gone."""
        if self._closed:
            return
        self._closed = True
        self._ready.set()
        try:
            with contextlib.suppress(Exception):
                if await self._inspect():
                    await self._backend._sh(self._ref, "python3", "-c", KILL_TREE, self._tag, "hangup")
                else:  # its pid may be another process's by now: only the note of it goes
                    await self._backend._sh(self._ref, "rm", "-f", f"/tmp/.agent-ui-exec-{self._tag}")  # noqa: S108
        finally:
            with contextlib.suppress(OSError):
                self._socket.shutdown(socket.SHUT_RDWR)


class DiskTrailer:
    """Splits the workspace size the exec wrapper prints last on stderr (``\\n<nonce> <KB>\\n``) from the
    command's own stderr. Bytes that could start the trailer are held back until it is clear they do not."""

    def __init__(self) -> None:
        self.nonce = "agent-ui-du-" + secrets.token_hex(16)
        self._marker = ("\n" + self.nonce + " ").encode()
        self._pending = b""
        self._trailer: bytes | None = None

    def feed(self, data: bytes) -> bytes:
        if self._trailer is not None:
            self._trailer += data
            return b""
        self._pending += data
        found = self._pending.find(self._marker)
        if found >= 0:
            self._trailer, passed = self._pending[found:], self._pending[:found]
            self._pending = b""
            return passed
        held = next((n for n in range(min(len(self._marker) - 1, len(self._pending)), 0, -1)
                     if self._marker.startswith(self._pending[-n:])), 0)  # fmt: skip
        passed, self._pending = self._pending[: len(self._pending) - held], self._pending[len(self._pending) - held :]
        return passed

    def finish(self) -> tuple[bytes, int | None]:
        """What is left of the command's stderr, and the workspace's size in bytes (None without a trailer)."""
        if self._trailer is None:
            return self._pending, None
        size = self._trailer[len(self._marker) :].split(b"\n")[0].strip()
        return b"", int(size) * 1024 if size.isdigit() else None


def _raise(error: BaseException) -> None:
    raise error
