"""Accessible names for elements that show only an icon."""

from __future__ import annotations

from typing import TypeVar

from nicegui.element import Element

E = TypeVar("E", bound=Element)


def named(element: E, label: str) -> E:
    """Give ``element`` the accessible name ``label`` (``aria-label``), set as a prop value so any text is safe
    (``.props('aria-label="..."')`` parses its string, which breaks on quotes and backslashes in user text)."""
    element.props["aria-label"] = label
    return element
