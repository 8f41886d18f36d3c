"""Artifacts: files of a user's jobs and uploads, stored behind a protocol, served with Range."""

from services.artifacts.models import Artifact
from services.artifacts.schemas import ArtifactRead, Download
from services.artifacts.service import ArtifactService
from services.artifacts.store import ArtifactStore, DiskArtifactStore

__all__ = ["Artifact", "ArtifactRead", "ArtifactService", "ArtifactStore", "DiskArtifactStore", "Download"]
