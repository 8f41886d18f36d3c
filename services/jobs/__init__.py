"""Jobs: background runs of a registered kind with parameters, progress and artifacts, in a bounded queue."""

from services.jobs.base import JobContext, JobKind, JobRead
from services.jobs.service import JobService

__all__ = ["JobContext", "JobKind", "JobRead", "JobService"]
