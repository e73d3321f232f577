"""Start, wait for and stop the services aimass needs, recording their process ids."""

from .base import down, status, up
from .proc import ServiceError

__all__ = ["ServiceError", "down", "status", "up"]
