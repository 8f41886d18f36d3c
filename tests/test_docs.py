"""The README's configuration table names every setting there is, and nothing that is not."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel

from services.settings import Settings

README = Path(__file__).resolve().parents[1] / "README.md"


def setting_names(model: type[BaseModel], prefix: str = "AGENT_UI_") -> set[str]:
    names = set()
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names |= setting_names(annotation, f"{prefix}{name.upper()}__")
        else:
            names.add(f"{prefix}{name.upper()}")
    return names


def test_the_configuration_table_lists_every_setting() -> None:
    documented = set(re.findall(r"`(AGENT_UI_[A-Z0-9_]+)`", README.read_text()))
    assert setting_names(Settings) == documented
