"""The sandbox image recipe: busybox and the host's Python 3.11 with the libraries it links, imported
into the engine as an image (no registry is reachable, so nothing is pulled).

Blocking (file walking, ldd, the import): run it off the event loop or from the CLI.
"""

from __future__ import annotations

import io
import logging
import os
import re
import subprocess
import tarfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from services.sandbox.base import HOME

log = logging.getLogger(__name__)

RECIPE_VERSION = "2"  # 2: /home/sandbox is /workspace/.home
IMAGE_REPOSITORY = "localhost/agent-ui-sandbox"
IMAGE_TAG = f"python3.11-r{RECIPE_VERSION}"
IMAGE = f"{IMAGE_REPOSITORY}:{IMAGE_TAG}"
SANDBOX_UID = 1000

BUSYBOX = Path("/bin/busybox")
PYTHON = Path("/usr/bin/python3.11")
STDLIB = Path("/usr/lib/python3.11")
SKIP_STDLIB = {"test", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3", "site-packages", "dist-packages"}
LDD_PATH = re.compile(r"(/\S+)")


class ImageRecipeError(RuntimeError):
    """A part of the recipe is missing on this host (for example busybox-static)."""


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


def build_rootfs(target: io.BufferedIOBase) -> None:
    """Write the root filesystem as a tar stream to ``target``."""
    for needed, package in [(BUSYBOX, "busybox-static"), (PYTHON, "python3.11"), (STDLIB, "python3.11")]:
        if not needed.exists():
            raise ImageRecipeError(f"{needed} is missing: apt-get install {package}")
    stdlib_files = [
        path for path in STDLIB.rglob("*")
        if path.is_file() and not (set(path.relative_to(STDLIB).parts[:1]) & SKIP_STDLIB)
    ]  # fmt: skip
    extensions = [path for path in stdlib_files if path.suffix == ".so"]
    libraries = _shared_libraries([PYTHON, *extensions])
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


def build_image(client: Any, image: str = IMAGE) -> str:
    """Build the rootfs and import it as ``image`` into the engine behind ``client`` (a ``docker.DockerClient``)."""
    repository, _, tag = image.rpartition(":")
    buffer = io.BytesIO()
    build_rootfs(buffer)
    log.info("importing sandbox image %s (%d MB)", image, buffer.tell() // 2**20)
    client.api.import_image_from_data(
        buffer.getvalue(),
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
