"""Which app processes are alive: each holds a lease (a heartbeat row); recovery acts only on work of dead ones."""

from services.instances.models import Instance
from services.instances.service import InstanceLease, LiveInstances

__all__ = ["Instance", "InstanceLease", "LiveInstances"]
