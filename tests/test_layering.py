"""Import contracts the code must keep, found from the code itself so that a new capability is covered at once:

- a capability (a package under services/ with a ``capability.py``) knows only the core seams, never another
  capability; the seams know no capability (only the composition root and the table registry gather them);
- in the web, a capability's plug-in module (agent_ui/capabilities/<name>.py) knows no other capability's.

That nothing under services/ imports the web is an import-linter contract (pyproject.toml, run by scripts/test).
"""

from __future__ import annotations

from itertools import permutations
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[1]
CAPABILITIES = sorted(path.parent.name for path in (ROOT / "services").glob("*/capability.py"))
WEB_CAPABILITIES = sorted(path.stem for path in (ROOT / "agent_ui" / "capabilities").glob("*.py")
                          if path.stem != "__init__")  # fmt: skip
# Where capabilities meet on purpose: the composition root and the gathering of every table for migrations.
GATHERING = {"services.container", "services.db.metadata"}


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("services", "agent_ui")


def test_there_are_capabilities_to_check() -> None:
    assert {"chat", "sandbox"} <= set(CAPABILITIES)
    assert {"chat", "sandboxes"} <= set(WEB_CAPABILITIES)


def test_capabilities_never_import_each_other(graph: grimp.ImportGraph) -> None:
    chains = {
        (a, b): chain
        for a, b in permutations(CAPABILITIES, 2)
        if (chain := graph.find_shortest_chain(importer=f"services.{a}", imported=f"services.{b}", as_packages=True))
    }
    assert chains == {}


def test_the_core_seams_know_no_capability(graph: grimp.ImportGraph) -> None:
    seams = {module for module in graph.modules if module.startswith("services.")
             and module.split(".")[1] not in CAPABILITIES and not module.startswith("services.db.migrations")
             and module not in GATHERING}  # fmt: skip
    assert "services.runs.service" in seams and "services.jobs.service" in seams
    reaching = {}
    for seam in sorted(seams):
        for capability in CAPABILITIES:
            chain = graph.find_shortest_chain(importer=seam, imported=f"services.{capability}", as_packages=True)
            if chain and not set(chain) & GATHERING:
                reaching[seam] = chain
    assert reaching == {}


def test_web_capabilities_never_import_each_other(graph: grimp.ImportGraph) -> None:
    modules = [f"agent_ui.capabilities.{name}" for name in WEB_CAPABILITIES]
    chains = {
        (a, b): chain
        for a, b in permutations(modules, 2)
        if (chain := graph.find_shortest_chain(importer=a, imported=b))
    }
    assert chains == {}
