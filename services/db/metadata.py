"""Every table of the app, gathered for migrations (autogenerate and the schema check test): the ``models``
module of every package under services/ is imported, so a new capability's tables need no edit here."""

import importlib
import pkgutil

from sqlmodel import SQLModel

import services

for package in pkgutil.iter_modules(services.__path__):
    if package.ispkg and importlib.util.find_spec(f"services.{package.name}.models") is not None:
        importlib.import_module(f"services.{package.name}.models")

metadata = SQLModel.metadata
