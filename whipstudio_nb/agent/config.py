"""Agent configuration from the reference's environment variables, with overrides in code.

``API_BASE_URL`` (default ``https://router.huggingface.co/v1``), ``MODEL_NAME`` (default
``openai/gpt-oss-20b``), ``HF_TOKEN`` or ``API_KEY`` (default ``lm-studio`` for a local
endpoint), ``SUCCESS_SCORE_THRESHOLD`` (default 0.9) and ``MAX_STEPS`` (default: the task's
turn limit). Retries: ``WHIP_AGENT_MAX_RETRIES`` (3), ``WHIP_AGENT_BACKOFF_S`` (1.0) and
``WHIP_AGENT_TIMEOUT_S`` (120).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlparse

from ..config import SUCCESS_THRESHOLD
from ..errors import WhipError

__all__ = [
    "DEFAULT_API_BASE_URL",
    "DEFAULT_MODEL_NAME",
    "DEFAULT_SUCCESS_THRESHOLD",
    "AgentConfig",
    "AgentConfigError",
    "success_threshold",
]

DEFAULT_API_BASE_URL = "https://router.huggingface.co/v1"
DEFAULT_MODEL_NAME = "openai/gpt-oss-20b"
LOCAL_API_KEY = "lm-studio"  # what the reference sends when no token is set
DEFAULT_SUCCESS_THRESHOLD = SUCCESS_THRESHOLD


class AgentConfigError(WhipError, ValueError):
    """The agent cannot run as configured (no endpoint, a malformed variable...)."""


def _env_float(env: Mapping[str, str], name: str, default: float, lo: float, hi: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise AgentConfigError(f"{name} must be a number, got {raw!r}") from None
    if not lo <= value <= hi:
        raise AgentConfigError(f"{name} must be between {lo:g} and {hi:g}, got {raw}")
    return value


def _env_int(env: Mapping[str, str], name: str, default: int | None, lo: int) -> int | None:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise AgentConfigError(f"{name} must be an integer, got {raw!r}") from None
    if value < lo:
        raise AgentConfigError(f"{name} must be >= {lo}, got {raw}")
    return value


def success_threshold(env: Mapping[str, str] | None = None) -> float:
    """``SUCCESS_SCORE_THRESHOLD`` (default 0.9): a score at or above it is a success."""
    env = os.environ if env is None else env
    return _env_float(env, "SUCCESS_SCORE_THRESHOLD", DEFAULT_SUCCESS_THRESHOLD, 0.0, 1.0)


@dataclass(frozen=True)
class AgentConfig:
    """Where the LLM lives and how patiently we talk to it."""

    api_base_url: str = DEFAULT_API_BASE_URL
    model: str = DEFAULT_MODEL_NAME
    api_key: str | None = None
    max_retries: int = 3
    backoff_s: float = 1.0
    timeout_s: float = 120.0
    max_steps: int | None = None  # None: the task's turn limit
    success_threshold: float = DEFAULT_SUCCESS_THRESHOLD

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        api_base_url: str | None = None,
        model: str | None = None,
        api_key: str | None = None,
        max_steps: int | None = None,
    ) -> AgentConfig:
        """The environment's configuration; keyword arguments that are not None override it."""
        env = os.environ if env is None else env
        cfg = cls(
            api_base_url=(env.get("API_BASE_URL") or DEFAULT_API_BASE_URL).strip(),
            model=(env.get("MODEL_NAME") or DEFAULT_MODEL_NAME).strip(),
            api_key=(env.get("HF_TOKEN") or env.get("API_KEY") or None),
            max_retries=_env_int(env, "WHIP_AGENT_MAX_RETRIES", 3, 0) or 0,
            backoff_s=_env_float(env, "WHIP_AGENT_BACKOFF_S", 1.0, 0.0, 600.0),
            timeout_s=_env_float(env, "WHIP_AGENT_TIMEOUT_S", 120.0, 0.01, 3600.0),
            max_steps=_env_int(env, "MAX_STEPS", None, 1),
            success_threshold=success_threshold(env),
        )
        overrides: dict[str, Any] = {
            k: v
            for k, v in (
                ("api_base_url", api_base_url),
                ("model", model),
                ("api_key", api_key),
                ("max_steps", max_steps),
            )
            if v is not None
        }
        return replace(cfg, **overrides)

    @property
    def resolved_api_key(self) -> str:
        return self.api_key or LOCAL_API_KEY

    def validate(self) -> AgentConfig:
        """Raise AgentConfigError with a clear message when the agent cannot run."""
        url = urlparse(self.api_base_url)
        if url.scheme not in ("http", "https") or not url.netloc:
            raise AgentConfigError(
                f"API_BASE_URL must be an http(s) URL of an OpenAI-compatible endpoint, "
                f"got {self.api_base_url!r}"
            )
        if not self.model:
            raise AgentConfigError("no model: set MODEL_NAME or pass --model")
        if self.api_key is None and self.api_base_url.rstrip("/") == DEFAULT_API_BASE_URL:
            raise AgentConfigError(
                "no endpoint configured: set HF_TOKEN (or API_KEY) for the default endpoint "
                f"{DEFAULT_API_BASE_URL}, or API_BASE_URL to your own OpenAI-compatible "
                "endpoint (e.g. http://localhost:1234/v1)"
            )
        if importlib.util.find_spec("openai") is None:
            raise AgentConfigError(
                "the LLM agent needs the openai package: pip install 'whipstudio-nb[agent]'"
            )
        if self.max_steps is not None and self.max_steps < 1:
            raise AgentConfigError(f"max turns must be >= 1, got {self.max_steps}")
        return self
