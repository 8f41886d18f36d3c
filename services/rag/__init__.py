"""Retrieval over a user's resources: extraction, chunking, embeddings, the hybrid index, search and its tool."""

from services.rag.capability import RagCapability
from services.rag.service import RagService

__all__ = ["RagCapability", "RagService"]
