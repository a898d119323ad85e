"""The HTTP/WebSocket server (``whip serve``): the WhipStudio reference REST API plus the
OpenEnv protocol (``/ws``, ``/schema``, ``/metadata``, ``/mcp``), over the embedded WhipEnv.

Needs the ``server`` extra: ``pip install 'whipstudio-nb[server]'``.
"""

from __future__ import annotations

from .app import create_app
from .config import DEFAULT_RATE_LIMITS, TOKEN_ENV_VAR, RateLimit, ServerConfig
from .run import serve

__all__ = [
    "DEFAULT_RATE_LIMITS",
    "TOKEN_ENV_VAR",
    "RateLimit",
    "ServerConfig",
    "create_app",
    "serve",
]
