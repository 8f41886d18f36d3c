"""The sandbox image recipes: busybox and the host's Python 3.11 with the libraries it links, imported
into the engine as an image (no registry is reachable, so nothing is pulled).

Templates: ``python`` is that alone; ``agents`` adds the Codex and Claude Code CLIs (native binaries from
their npm packages, pinned, fetched with the machine's npm into a download cache when the image is first built)
and agent-ui's MCP stdio bridge, through which the CLIs reach agent-ui's tool server from a sandbox without
network.

Blocking (npm, file walking, ldd, the import): run it off the event loop or from the CLI.
"""

from __future__ import annotations

import base64
import fcntl
import functools
import hashlib
import io
import json
import logging
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from services.sandbox.base import HOME

log = logging.getLogger(__name__)

RECIPE_VERSION = "2"  # 2: /home/sandbox is /workspace/.home
IMAGE_REPOSITORY = "localhost/agent-ui-sandbox"
IMAGE_TAG = f"python3.11-r{RECIPE_VERSION}"
IMAGE = f"{IMAGE_REPOSITORY}:{IMAGE_TAG}"
SANDBOX_UID = 1000


class ImageRecipeError(RuntimeError):
    """A part of the recipe is missing on this host (for example busybox-static), or a download failed."""


BUSYBOX = Path("/bin/busybox")
PYTHON = Path("/usr/bin/python3.11")
STDLIB = Path("/usr/lib/python3.11")
SKIP_STDLIB = {"test", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3", "site-packages", "dist-packages"}
LDD_PATH = re.compile(r"(/\S+)")
BRIDGE = Path(__file__).resolve().parent / "bridge" / "mcp_bridge.py"
# Inside the agents image: the bridge the CLIs' MCP config launches, and where the tool server's socket is mounted.
BRIDGE_IN_IMAGE = "/usr/local/bin/agent-ui-mcp-bridge"
SOCKET_DIR = "/run/agent-ui"
CODEX_VERSION = "0.171.0"
CLAUDE_CODE_VERSION = "2.1.332"
CODEX_TARGET = "x86_64-unknown-linux-musl"


@dataclass(frozen=True)
class NpmPackage:
    """A package fetched with ``npm pack`` at a pinned version and checked against its pinned integrity, and
    what of it goes where in the image."""

    name: str
    version: str
    integrity: str  # npm's sha512 of the tarball
    files: tuple[tuple[str, str], ...]  # a file or folder in the package → its path in the image
    links: tuple[tuple[str, str], ...] = ()  # a symlink in the image → what it points to
    dynamic: tuple[str, ...] = ()  # files in the package whose shared libraries the image must hold

    @property
    def spec(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def directory(self) -> str:
        """Its folder in the download cache."""
        return f"{self.name.lstrip('@').replace('/', '-')}-{self.version}"


# The linux-x64 builds the launcher packages (@openai/codex, @anthropic-ai/claude-code) pick at install time: the
# native binaries alone, no Node at run time. Codex's is a static musl binary; Claude Code's links glibc.
# Codex keeps its package's layout (it finds its helpers, ripgrep among them, beside its own binary).
CODEX = NpmPackage(
    "@openai/codex",
    f"{CODEX_VERSION}-linux-x64",
    "sha512-l66NZkQgdk2C3pbcfULDz42yEUB581MVA6I+Y43Wp4OIqEy73HCdmZ0GTjeAHY2ycuH4N00d9VsLrwT1jxshTw==",
    files=((f"vendor/{CODEX_TARGET}", "usr/local/lib/codex"),),
    links=(("usr/local/bin/codex", "/usr/local/lib/codex/bin/codex"),),
)
CLAUDE_CODE = NpmPackage(
    "@anthropic-ai/claude-code-linux-x64",
    CLAUDE_CODE_VERSION,
    "sha512-f4JWhzwYutJIHScC7/dYOPX6s28tt7ZADhsOi8zwOHq5fFPEuUeChh2NMfinSg0GrUckYxaeebC4h0DqiKzLcw==",
    files=(("claude", "usr/local/bin/claude"),),
    dynamic=("claude",),
)


@functools.cache
def _bridge_digest() -> str:
    return hashlib.sha256(BRIDGE.read_bytes()).hexdigest()[:8]


@dataclass(frozen=True)
class Template:
    """What a sandbox starts from: an image on an engine, a root filesystem on the local backend."""

    name: str
    base_tag: str
    packages: tuple[NpmPackage, ...] = ()
    bridge: bool = False

    @property
    def tag(self) -> str:
        """The image's tag; with the bridge's digest in it where the bridge is in the image, so a changed bridge
        makes a new image rather than reusing a stale one."""
        return f"{self.base_tag}-bridge{_bridge_digest()}" if self.bridge else self.base_tag

    @property
    def image(self) -> str:
        return f"{IMAGE_REPOSITORY}:{self.tag}"

    @property
    def rootfs(self) -> str:
        """The local backend's unpacked root filesystem, by this name in its cache."""
        return f"rootfs-r{RECIPE_VERSION}" if self.name == "python" else f"rootfs-{self.tag}"


# The agents tag names what is in it (the CLIs' versions, the bridge's digest): a change of any makes a new image
# and root filesystem.
TEMPLATES: dict[str, Template] = {
    "python": Template("python", IMAGE_TAG),
    "agents": Template("agents", f"agents-r{RECIPE_VERSION}-codex{CODEX_VERSION}-claude{CLAUDE_CODE_VERSION}",
                       (CODEX, CLAUDE_CODE), bridge=True),
}  # fmt: skip


def template_named(name: str) -> Template:
    try:
        return TEMPLATES[name]
    except KeyError:
        raise ImageRecipeError(f"no sandbox template {name!r} (there are {', '.join(TEMPLATES)})") from None


def template_of_image(image: str) -> str:
    """The template an image was built from; ``python`` for any image no template names (a configured one)."""
    return next((template.name for template in TEMPLATES.values() if template.image == image), "python")


def _shared_libraries(binaries: Iterable[Path]) -> set[Path]:
    libraries: set[Path] = set()
    for binary in binaries:
        result = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=False)  # noqa: S603, S607
        for line in result.stdout.splitlines():
            match = LDD_PATH.search(line.split("=>")[-1])
            if match and Path(match.group(1)).exists():
                libraries.add(Path(match.group(1)))
    return libraries


def _canonical(path: Path) -> Path:
    """The path with its directories resolved but not its last part (merged /usr: /lib is usr/lib)."""
    return Path(os.path.realpath(path.parent)) / path.name


def _add_file(tar: tarfile.TarFile, path: Path, added: set[str]) -> None:
    """The file under its canonical path; a symlink as a symlink, followed to its target."""
    path = _canonical(path)
    name = str(path).lstrip("/")
    if name in added:
        return
    added.add(name)
    if path.is_symlink():
        link = path.readlink()
        info = tarfile.TarInfo(name)
        info.type, info.linkname = tarfile.SYMTYPE, str(link)
        tar.addfile(info)
        _add_file(tar, link if link.is_absolute() else path.parent / link, added)
        return
    tar.add(path, arcname=name, recursive=False)


def _add_dir(tar: tarfile.TarFile, name: str, *, mode: int = 0o755, uid: int = 0) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.uid, info.gid = tarfile.DIRTYPE, mode, uid, uid
    tar.addfile(info)


def _add_text(tar: tarfile.TarFile, name: str, text: str, mode: int = 0o644) -> None:
    data = text.encode()
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), mode
    tar.addfile(info, io.BytesIO(data))


def fetch_package(package: NpmPackage, download_dir: Path) -> Path:
    """The package unpacked under ``download_dir/npm`` (its ``package/`` folder), fetched with the machine's npm
    the first time and checked against its pinned integrity (blocking; safe across processes)."""
    cache = download_dir / "npm"
    target = cache / package.directory
    if (target / ".complete").exists():
        return target / "package"
    npm = shutil.which("npm")
    if npm is None:
        raise ImageRecipeError(f"npm is missing (apt-get install npm): it fetches {package.spec}")
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / f".{package.directory}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / ".complete").exists():
            return target / "package"
        with tempfile.TemporaryDirectory(dir=cache, prefix=".fetch-") as work_dir:
            work = Path(work_dir)
            log.info("fetching %s from the npm registry", package.spec)
            result = subprocess.run(  # noqa: S603
                [npm, "pack", package.spec, "--json", "--ignore-scripts", "--pack-destination", str(work),
                 "--cache", str(work / "npm-cache")],
                cwd=work, capture_output=True, text=True, check=False, timeout=1800,
            )  # fmt: skip
            if result.returncode != 0:
                said = (result.stderr.strip().splitlines() or ["no output"])[-1]
                raise ImageRecipeError(f"npm could not fetch {package.spec}: {said}")
            tarball = work / json.loads(result.stdout)[0]["filename"]
            with tarball.open("rb") as handle:
                digest = base64.b64encode(hashlib.file_digest(handle, "sha512").digest()).decode()
            if f"sha512-{digest}" != package.integrity:
                raise ImageRecipeError(f"{package.spec} from the registry does not match its pinned integrity")
            unpacked = work / "unpacked"
            with tarfile.open(tarball) as tar:
                tar.extractall(unpacked, filter="data")
            (unpacked / ".complete").touch()
            shutil.rmtree(target, ignore_errors=True)
            unpacked.rename(target)
    return target / "package"


def _add_tree(tar: tarfile.TarFile, source: Path, name: str, added: set[str]) -> None:
    """A file or folder from outside the host's system (an unpacked package) under ``name``, owned by root."""

    def add(path: Path, arcname: str) -> None:
        info = tar.gettarinfo(str(path), arcname)
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        info.mode = 0o755 if info.isdir() or info.mode & 0o111 else 0o644
        added.add(arcname)
        if info.isreg():
            with path.open("rb") as handle:
                tar.addfile(info, handle)
        else:
            tar.addfile(info)

    add(source, name)
    if source.is_dir() and not source.is_symlink():
        for path in sorted(source.rglob("*")):
            add(path, f"{name}/{path.relative_to(source)}")


def _add_link(tar: tarfile.TarFile, name: str, points_to: str, added: set[str]) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.SYMTYPE, points_to
    tar.addfile(info)
    added.add(name)


def build_rootfs(target: IO[bytes], template: str = "python", *, download_dir: Path | None = None) -> None:
    """Write the template's root filesystem as a tar stream to ``target``. A template with npm packages
    (``agents``) fetches them into ``download_dir`` the first time."""
    recipe = template_named(template)
    if recipe.packages and download_dir is None:
        raise ImageRecipeError(f"the {template} template needs a download directory for its npm packages")
    packages = {package: fetch_package(package, download_dir) for package in recipe.packages} if download_dir else {}
    for needed, package in [(BUSYBOX, "busybox-static"), (PYTHON, "python3.11"), (STDLIB, "python3.11")]:
        if not needed.exists():
            raise ImageRecipeError(f"{needed} is missing: apt-get install {package}")
    stdlib_files = [
        path for path in STDLIB.rglob("*")
        if path.is_file() and not (set(path.relative_to(STDLIB).parts[:1]) & SKIP_STDLIB)
    ]  # fmt: skip
    extensions = [path for path in stdlib_files if path.suffix == ".so"]
    libraries = _shared_libraries([PYTHON, *extensions])
    libraries |= _shared_libraries([root / file for fetched, root in packages.items() for file in fetched.dynamic])
    applets = subprocess.run([str(BUSYBOX), "--list"], capture_output=True, text=True, check=True).stdout.split()  # noqa: S603

    added: set[str] = set()
    with tarfile.open(fileobj=target, mode="w|") as tar:
        for directory, mode, uid in [("bin", 0o755, 0), ("etc", 0o755, 0), ("usr", 0o755, 0), ("usr/bin", 0o755, 0),
                                     ("usr/local", 0o755, 0), ("usr/local/bin", 0o755, 0), ("tmp", 0o1777, 0),
                                     ("proc", 0o555, 0), ("sys", 0o555, 0), ("dev", 0o755, 0),
                                     ("home", 0o755, 0), ("workspace", 0o755, SANDBOX_UID)]:  # fmt: skip
            _add_dir(tar, directory, mode=mode, uid=uid)
            added.add(directory)
        # merged /usr, as on the host; the home lives in the workspace (config files and history last with it)
        for link, points_to in [("lib", "usr/lib"), ("lib64", "usr/lib64"), ("home/sandbox", HOME)]:
            info = tarfile.TarInfo(link)
            info.type, info.linkname = tarfile.SYMTYPE, points_to
            tar.addfile(info)
            added.add(link)
        info = tarfile.TarInfo("bin/busybox")
        info.size, info.mode = BUSYBOX.stat().st_size, 0o755
        with BUSYBOX.open("rb") as handle:
            tar.addfile(info, handle)
        added.add("bin/busybox")
        for applet in applets:
            name = f"bin/{applet}"
            if name not in added:
                info = tarfile.TarInfo(name)
                info.type, info.linkname = tarfile.SYMTYPE, "/bin/busybox"
                tar.addfile(info)
                added.add(name)
        _add_file(tar, PYTHON, added)
        for alias in ("python3", "python"):
            info = tarfile.TarInfo(f"usr/bin/{alias}")
            info.type, info.linkname = tarfile.SYMTYPE, "python3.11"
            tar.addfile(info)
        for path in sorted(stdlib_files):
            _add_file(tar, path, added)
        for library in sorted(libraries):
            _add_file(tar, library, added)
        _add_text(tar, "etc/passwd", f"root:x:0:0:root:/root:/bin/sh\nsandbox:x:{SANDBOX_UID}:{SANDBOX_UID}:"
                                     "sandbox:/home/sandbox:/bin/sh\n")  # fmt: skip
        _add_text(tar, "etc/group", f"root:x:0:\nsandbox:x:{SANDBOX_UID}:\n")
        _add_text(tar, "etc/hostname", "sandbox\n")
        if recipe.packages or recipe.bridge:
            # /run/agent-ui: where a sandbox gets the tool server's socket (a mount point in a read-only root)
            for directory in ("usr/local/lib", "run", SOCKET_DIR.lstrip("/")):
                if directory not in added:
                    _add_dir(tar, directory)
                    added.add(directory)
        for fetched, root in packages.items():
            for source, name in fetched.files:
                _add_tree(tar, root / source, name, added)
            for name, points_to in fetched.links:
                _add_link(tar, name, points_to, added)
        if recipe.bridge:
            info = tarfile.TarInfo(BRIDGE_IN_IMAGE.lstrip("/"))
            info.size, info.mode = BRIDGE.stat().st_size, 0o755
            with BRIDGE.open("rb") as handle:
                tar.addfile(info, handle)


def build_image(client: Any, image: str | None = None, template: str = "python", *,
                download_dir: Path | None = None) -> str:  # fmt: skip
    """Build the template's rootfs and import it as ``image`` (by default the template's) into the engine behind
    ``client`` (a ``docker.DockerClient``). The tar goes through a temporary file in ``download_dir`` (the
    agents rootfs is over a gigabyte), which also holds the npm downloads a template needs."""
    image = image or template_named(template).image
    repository, _, tag = image.rpartition(":")
    if download_dir is not None:
        download_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=download_dir, prefix=".image-", suffix=".tar") as handle:
        build_rootfs(handle, template, download_dir=download_dir)
        handle.flush()
        log.info("importing sandbox image %s (%d MB)", image, handle.tell() // 2**20)
        client.api.import_image_from_file(
            handle.name,
            repository=repository,
            tag=tag,
            changes=[
                f"USER {SANDBOX_UID}:{SANDBOX_UID}",
                "WORKDIR /workspace",
                "ENV PATH=/usr/local/bin:/usr/bin:/bin HOME=/home/sandbox LANG=C.UTF-8 PYTHONDONTWRITEBYTECODE=1",
                'CMD ["/bin/sh"]',
            ],
        )
    return image
