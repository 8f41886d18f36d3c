"""Every table of the app, gathered for migrations (autogenerate and the schema check test)."""

from sqlmodel import SQLModel

import services.auth.models
import services.chat.models
import services.credits.models
import services.runs.models
import services.sandbox.models  # noqa: F401

metadata = SQLModel.metadata
