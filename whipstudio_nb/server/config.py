"""Server settings: bind address, auth token, allowed origins, session cap, idle expiry,
request limits, connection timeouts, rate limits."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field

from ..config import SandboxConfig

__all__ = [
    "DEFAULT_RATE_LIMITS",
    "TOKEN_ENV_VAR",
    "RateLimit",
    "ServerConfig",
    "is_loopback",
    "is_loopback_origin",
    "parse_rate_limit",
]

TOKEN_ENV_VAR = "WHIP_SERVER_TOKEN"


@dataclass(frozen=True)
class RateLimit:
    """At most ``requests`` per ``per_s`` seconds, per client."""

    requests: int
    per_s: float

    def describe(self) -> str:
        return f"{self.requests} request{'s' if self.requests != 1 else ''} per {self.per_s:g} s"


# The reference's limits, keyed by route bucket.
DEFAULT_RATE_LIMITS: dict[str, RateLimit] = {
    "baseline": RateLimit(1, 180.0),
    "baseline_task": RateLimit(1, 30.0),
    "step": RateLimit(60, 60.0),  # also WebSocket step messages and MCP tools/call
    "reset": RateLimit(30, 60.0),  # also WebSocket reset messages
    "grader": RateLimit(30, 60.0),
    "mcp": RateLimit(240, 60.0),  # every POST /mcp and WebSocket mcp message
    "ws": RateLimit(240, 60.0),  # every other WebSocket message, and each new connection
}

MAX_BODY_BYTES = 1024 * 1024
MAX_JSON_DEPTH = 32


def parse_rate_limit(text: str) -> tuple[str, RateLimit | None]:
    """``step=60/60`` -> ("step", RateLimit(60, 60.0)); ``step=off`` -> ("step", None)."""
    name, sep, spec = text.partition("=")
    name = name.strip()
    if not sep or name not in DEFAULT_RATE_LIMITS:
        raise ValueError(
            f"rate limit must look like NAME=N/SECONDS with NAME one of "
            f"{', '.join(DEFAULT_RATE_LIMITS)} (got {text!r})"
        )
    if spec.strip().lower() == "off":
        return name, None
    count, slash, per = spec.partition("/")
    try:
        limit = RateLimit(int(count), float(per) if slash else 60.0)
    except ValueError:
        raise ValueError(f"rate limit {text!r}: expected N/SECONDS, e.g. {name}=60/60") from None
    if limit.requests < 1 or limit.per_s <= 0:
        raise ValueError(f"rate limit {text!r}: N must be >= 1 and SECONDS > 0")
    return name, limit


def is_loopback_origin(origin: str) -> bool:
    """``http(s)://<loopback host>[:port]``: a page served from this machine."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(origin)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or parts.path not in ("", "/"):
        return False
    return is_loopback(host) or host.endswith(".localhost")


def is_loopback(host: str) -> bool:
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 7860
    token: str | None = None
    max_sessions: int = 16
    idle_timeout_s: float = 900.0
    # The sandbox's configuration (None: SandboxConfig.from_env(), the WHIP_* variables);
    # pool_size and tool_timeout_s, when set, override it. After init they hold what is used.
    sandbox: SandboxConfig | None = None
    pool_size: int | None = None
    tool_timeout_s: float | None = None
    max_turns: int | None = None
    rate_limits: dict[str, RateLimit] = field(default_factory=lambda: dict(DEFAULT_RATE_LIMITS))
    # Browser pages allowed to open a WebSocket besides loopback ones (scheme://host[:port]).
    allow_origins: list[str] = field(default_factory=list)
    max_body_bytes: int = MAX_BODY_BYTES
    # The longest string field accepted (None: the sandbox's own limit on the code and strings
    # one action carries, max_code_bytes: WHIP_MAX_CODE_BYTES, 256 KiB unless set).
    max_string_chars: int | None = None
    max_json_depth: int = MAX_JSON_DEPTH
    # Proxies whose X-Forwarded-For is believed (uvicorn's forwarded_allow_ips); None: nobody's.
    forwarded_allow_ips: str | None = None
    header_timeout_s: float = 10.0  # a connection must send a request's headers within this
    keep_alive_timeout_s: int = 5  # idle time allowed between requests on one connection
    limit_concurrency: int = 512  # connections + tasks at once; beyond that, 503

    def __post_init__(self) -> None:
        self.sandbox = (self.sandbox or SandboxConfig.from_env()).with_overrides(
            pool_size=self.pool_size, tool_timeout_s=self.tool_timeout_s
        )
        self.pool_size = self.sandbox.pool_size
        self.tool_timeout_s = self.sandbox.tool_timeout_s
        if self.max_string_chars is None:
            self.max_string_chars = self.sandbox.max_code_bytes
        if self.token is None:
            self.token = os.environ.get(TOKEN_ENV_VAR) or None
        if self.max_sessions < 1:
            raise ValueError("max_sessions must be >= 1")
        if self.idle_timeout_s <= 0:
            raise ValueError("idle_timeout_s must be > 0")
        if min(self.max_body_bytes, self.max_string_chars, self.max_json_depth) < 1:  # type: ignore[type-var]
            raise ValueError("request limits must be >= 1")
        if self.header_timeout_s <= 0:
            raise ValueError("header_timeout_s must be > 0")
        self.allow_origins = [o.rstrip("/") for o in self.allow_origins]
        for origin in self.allow_origins:
            if "://" not in origin:
                raise ValueError(f"--allow-origin wants scheme://host[:port], got {origin!r}")

    def origin_allowed(self, origin: str) -> bool:
        return is_loopback_origin(origin) or origin.rstrip("/") in self.allow_origins
