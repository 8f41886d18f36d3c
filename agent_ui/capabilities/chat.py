"""Chat: streaming turns with tools, sessions, stop and resume."""

from agent_ui.api.v1 import chat as chat_api
from agent_ui.capabilities import WebCapability
from agent_ui.pages import chat as chat_pages
from agent_ui.site import NavItem
from services.chat import ChatCapability

CAPABILITY = WebCapability(
    name="chat",
    build=ChatCapability,
    routers=[chat_api.router],
    pages=chat_pages.register,
    navigation=[NavItem("Chat", "/", "chat", order=10)],
)
