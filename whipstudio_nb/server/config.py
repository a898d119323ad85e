"""Server settings: bind address, auth token, session cap, idle expiry, rate limits."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field

__all__ = [
    "DEFAULT_RATE_LIMITS",
    "TOKEN_ENV_VAR",
    "RateLimit",
    "ServerConfig",
    "is_loopback",
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
    "step": RateLimit(60, 60.0),
    "reset": RateLimit(30, 60.0),
    "grader": RateLimit(30, 60.0),
}


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
    pool_size: int = 2
    tool_timeout_s: float = 30.0
    max_turns: int | None = None
    rate_limits: dict[str, RateLimit] = field(default_factory=lambda: dict(DEFAULT_RATE_LIMITS))

    def __post_init__(self) -> None:
        if self.token is None:
            self.token = os.environ.get(TOKEN_ENV_VAR) or None
        if self.max_sessions < 1:
            raise ValueError("max_sessions must be >= 1")
        if self.idle_timeout_s <= 0:
            raise ValueError("idle_timeout_s must be > 0")
