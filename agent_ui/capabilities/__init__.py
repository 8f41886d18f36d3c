"""A capability as the web sees it: how to build its domain part, and the routers, pages, navigation and tool
cards it adds. The composition root (main.py) lists them, one line each; see docs/capabilities.md."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field

from fastapi import APIRouter, FastAPI

from agent_ui.components.tool_cards import ToolCardRenderer
from agent_ui.site import NavItem, Site
from services.capabilities import CapabilityFactory
from services.container import Services

# Mounts an ASGI app of the capability's own (before the API's JSON fallback) and returns what must run in the
# app's lifespan while it serves (a mounted app's own lifespan never runs).
Mounter = Callable[[FastAPI, Services], Callable[[], AbstractAsyncContextManager[None]]]


@dataclass(frozen=True)
class WebCapability:
    name: str
    build: CapabilityFactory  # the domain part, built on the core (services/<name>/capability.py)
    routers: Sequence[APIRouter] = ()  # mounted under /api/v1/agent
    pages: Callable[[Site], None] | None = None  # registers its NiceGUI pages
    navigation: Sequence[NavItem] = ()
    tool_cards: Mapping[str, ToolCardRenderer] = field(default_factory=dict)  # by tool name or group
    mount: Mounter | None = None
