"""What every page and component of the UI shares: the services, the navigation and the tool cards, gathered
from the capabilities by the composition root."""

from __future__ import annotations

from dataclasses import dataclass

from agent_ui.components.tool_cards import ToolCards
from services.container import Services


@dataclass(frozen=True)
class NavItem:
    label: str
    path: str
    icon: str
    order: int = 50  # place in the drawer, smallest first
    admin_only: bool = False
    # A page under a hub (``"/generate"``): not drawn in the drawer but as a card on the hub's page, whose entry
    # stays highlighted on it; ``description`` is the card's one line.
    parent: str | None = None
    description: str = ""


@dataclass(frozen=True)
class Site:
    services: Services
    navigation: tuple[NavItem, ...]
    tool_cards: ToolCards
