"""Domain code stays free of the web: nothing under services/ imports fastapi, starlette, nicegui or agent_ui."""

from __future__ import annotations

import ast
from pathlib import Path

FORBIDDEN = ("fastapi", "starlette", "nicegui", "agent_ui", "main")
SERVICES = Path(__file__).resolve().parents[2] / "services"


def test_services_do_not_import_the_web_layer() -> None:
    offenders = []
    files = list(SERVICES.rglob("*.py"))
    assert len(files) > 10
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [f"{path.relative_to(SERVICES)}: {name}" for name in names if name.split(".")[0] in FORBIDDEN]
    assert offenders == []
