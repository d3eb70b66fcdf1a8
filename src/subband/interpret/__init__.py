"""Look inside any model: linear interpreters (LinearScope), ..."""

from .linear_scope import SUPPORTED_UNITS, LinearInterpreter, LinearScope

__all__ = ["LinearScope", "LinearInterpreter", "SUPPORTED_UNITS"]
