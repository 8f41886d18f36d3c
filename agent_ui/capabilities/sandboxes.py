"""Sandboxes: isolated places to run code, in the UI, over the API and as chat tools."""

from agent_ui.api.v1 import sandbox as sandbox_api
from agent_ui.api.v1 import terminals as terminal_api
from agent_ui.capabilities import WebCapability
from agent_ui.components.sandboxes import sandbox_exec_card
from agent_ui.pages import sandboxes as sandbox_pages
from agent_ui.site import NavItem
from services.sandbox.capability import SandboxCapability

CAPABILITY = WebCapability(
    name="sandboxes",
    build=SandboxCapability,
    routers=[sandbox_api.router, terminal_api.router, terminal_api.socket_router],
    pages=sandbox_pages.register,
    navigation=[NavItem("Sandboxes", "/sandboxes", "terminal", order=30)],
    tool_cards={"sandbox_exec": sandbox_exec_card},
)
