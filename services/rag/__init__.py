"""Retrieval over a user's resources: extraction, chunking, embeddings and the hybrid index."""
