"""The `agent-ui` command: serve the app, or run the migrations alone."""

from __future__ import annotations

import argparse
import asyncio
import os
from pathlib import Path

from services.sandbox.image import TEMPLATES
from services.settings import Settings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="agent-ui", description="A self-hostable AI agent workspace.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the web UI and the REST API")
    serve.add_argument("--host", help="bind address (default: AGENT_UI_SERVER__HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default: AGENT_UI_SERVER__PORT or 8080)")
    commands.add_parser("migrate", help="bring the database schema up to date and exit")
    sandbox = commands.add_parser("sandbox", help="sandbox engine tasks")
    sandbox.add_argument("action", choices=["build-image"], help="build the sandbox image on the engine")
    sandbox.add_argument("--if-missing", action="store_true", help="only when the engine does not have it yet")
    sandbox.add_argument("--template", choices=list(TEMPLATES), default="python",
                         help="python (default), or agents: python with the Codex and Claude Code CLIs and the MCP "
                              "bridge (fetched from the npm registry the first time)")  # fmt: skip
    args = parser.parse_args(argv)

    settings = Settings()
    if args.command == "serve":
        import uvicorn

        uvicorn.run(
            "main:app",
            host=args.host or settings.server.host,
            port=args.port or settings.server.port,
            log_level=settings.log_level,
            proxy_headers=True,
        )
    elif args.command == "migrate":
        from services.db import Database

        db = Database(settings.resolved_database_url(), settings.db)

        async def migrate() -> None:
            await db.start()
            await db.stop()

        asyncio.run(migrate())
        print(f"schema is up to date ({db.backend})")
    elif args.command == "sandbox":
        import docker

        from services.sandbox import docker_host
        from services.sandbox.image import build_image

        host = docker_host(settings.sandbox)
        client = docker.DockerClient(base_url=host) if host else docker.from_env()
        where = host or "the default Docker engine"
        # The python image may be renamed in the settings; the others are named by what they hold.
        image = settings.sandbox.image if args.template == "python" else TEMPLATES[args.template].image
        if args.if_missing:
            try:
                client.images.get(image)
                print(f"{image} is on {where}")
                return
            except docker.errors.ImageNotFound:
                pass
        # npm downloads are kept beside the local backend's root filesystems
        local_dir = settings.sandbox.local_dir or (
            Path("/var/lib/agent-ui-sandbox") if os.geteuid() == 0 else settings.data_dir / "sandboxes"
        )
        built = build_image(client, image, args.template, download_dir=local_dir / "downloads")
        print(f"built {built} on {where}")


if __name__ == "__main__":
    main()
