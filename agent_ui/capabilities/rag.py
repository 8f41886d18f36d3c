"""RAG: resources to search, in the UI, over the API and as a chat tool."""

from agent_ui.api.v1 import rag as rag_api
from agent_ui.capabilities import WebCapability
from agent_ui.components.citations import rag_search_card
from agent_ui.pages import resources as resource_pages
from agent_ui.site import NavItem
from services.rag import RagCapability

CAPABILITY = WebCapability(
    name="rag",
    build=RagCapability,
    routers=[rag_api.router],
    pages=resource_pages.register,
    navigation=[NavItem("Resources", "/resources", "folder", order=40)],
    tool_cards={"rag_search": rag_search_card},
)
