"""Every table of the app, gathered for migrations (autogenerate and the schema check test)."""

from sqlmodel import SQLModel

import services.auth.models  # noqa: F401  (registers tables)

metadata = SQLModel.metadata
