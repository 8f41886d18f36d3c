"""The database: engine, unit-of-work sessions, migrations."""

from services.db.database import Database
from services.db.pagination import Page

__all__ = ["Database", "Page"]
