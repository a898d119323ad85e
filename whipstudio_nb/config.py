"""One configuration object for the sandbox, and the package's shared defaults.

``SandboxConfig`` holds every knob of the sandbox (isolation level, launcher, resource limits,
pool size, tool timeout, code size cap). It is built once, when a sandbox is built, from
arguments and ``WHIP_*`` variables (``SandboxConfig.from_env``); nothing reads the environment
at import, so a bad value can never break ``import whipstudio_nb``. Every bad or impossible value
raises ``ConfigError`` naming the variable or argument and what was expected.

A base-layer module: it imports only the standard library, pydantic and ``errors``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .errors import ConfigError

__all__ = [
    "DEFAULT_MAX_CODE_BYTES",
    "DEFAULT_POOL_SIZE",
    "DEFAULT_TOOL_TIMEOUT_S",
    "ENV_VARS",
    "SUCCESS_THRESHOLD",
    "IsolationLevel",
    "LauncherName",
    "SandboxConfig",
]

DEFAULT_TOOL_TIMEOUT_S = 30.0  # seconds a tool call may run before its kernel is killed
SUCCESS_THRESHOLD = 0.9  # a grade at or above this solves the task
DEFAULT_POOL_SIZE = 2
DEFAULT_POOL_MAX = 16  # a pool of 16 ready kernels stays well under 2 GiB PSS (README)
DEFAULT_MAX_CODE_BYTES = 256 * 1024

IsolationLevel = Literal["auto", "strict", "basic", "none"]
# "auto": the fork server on POSIX, direct launches elsewhere.
LauncherName = Literal["forkserver", "direct", "auto"]

# Field -> the variable that sets it. WHIP_TASKS_PATH is os.pathsep separated.
ENV_VARS: dict[str, str] = {
    "isolation": "WHIP_ISOLATION",
    "launcher": "WHIP_LAUNCHER",
    "memory_limit_mb": "WHIP_MEMORY_LIMIT_MB",
    "cpu_limit_s": "WHIP_CPU_LIMIT_S",
    "max_procs": "WHIP_MAX_PROCS",
    "scratch_mb": "WHIP_SCRATCH_MB",
    "max_results": "WHIP_MAX_RESULTS",
    "max_result_bytes": "WHIP_MAX_RESULT_BYTES",
    "sandbox_user": "WHIP_SANDBOX_USER",
    "pool_size": "WHIP_POOL_SIZE",
    "pool_max": "WHIP_POOL_MAX",
    "pool_starts": "WHIP_POOL_STARTS",
    "tool_timeout_s": "WHIP_TOOL_TIMEOUT_S",
    "max_code_bytes": "WHIP_MAX_CODE_BYTES",
    "tasks_path": "WHIP_TASKS_PATH",
}

# What a value must be, by pydantic error type, for messages a person can act on.
_EXPECTED = {
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "int_type": "a whole number",
    "float_parsing": "a number",
    "float_type": "a number",
    "string_type": "a string",
    "tuple_type": "a list of paths",
}


class SandboxConfig(BaseModel):
    """Everything a sandbox is built from. Frozen: change it with ``with_overrides``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    isolation: IsolationLevel = "auto"  # auto: strict where bubblewrap works, else basic
    launcher: LauncherName = "auto"
    memory_limit_mb: int = Field(4096, gt=0)  # address-space rlimit of each kernel
    cpu_limit_s: int = Field(600, gt=0)  # CPU-time rlimit of each kernel
    max_procs: int = Field(512, gt=0)  # processes per pool (cgroup), else per user (rlimit)
    scratch_mb: int = Field(512, gt=0)  # one tmpfs for /tmp, /dev/shm and the work dir
    max_results: int = Field(16, gt=0)  # result messages the host keeps per call
    max_result_bytes: int = Field(4 * 2**20, gt=0)  # size of each kept result message
    file_size_mb: int = Field(512, gt=0)  # file-size rlimit
    open_files: int = Field(1024, gt=0)  # open-files rlimit
    sandbox_user: str = Field("nobody", min_length=1)  # who the sandbox runs as under root
    pool_size: int = Field(DEFAULT_POOL_SIZE, ge=0)  # kernels kept warm when idle
    # The pool grows with demand up to this many ready kernels, and shrinks back when idle.
    pool_max: int = Field(DEFAULT_POOL_MAX, ge=0)
    pool_starts: int = Field(5, gt=0)  # kernels started at once while the pool refills
    tool_timeout_s: float = Field(DEFAULT_TOOL_TIMEOUT_S, gt=0)
    max_code_bytes: int = Field(DEFAULT_MAX_CODE_BYTES, gt=0)  # cap on every action string
    # Task-pack directories the sandbox must mask (WHIP_TASKS_PATH, plus any a caller adds):
    # solutions and graders live there. The packs shipped with the package are always masked.
    tasks_path: tuple[str, ...] = ()
    extra_masked_dirs: tuple[str, ...] = ()

    def __init__(self, **data: Any) -> None:
        # pydantic's ValidationError becomes ConfigError here, for every way of building one;
        # ``_from_var`` (from ``from_env``) says which fields came from which variable.
        from_var = data.pop("_from_var", None) or {}
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise ConfigError(_describe(exc, data, from_var)) from None

    @model_validator(mode="after")
    def _possible(self) -> SandboxConfig:
        launcher = self.resolved_launcher
        if launcher == "direct" and self.isolation in ("strict", "basic"):
            raise ValueError(
                f"isolation {self.isolation!r} (WHIP_ISOLATION) is impossible with the 'direct' "
                "launcher (WHIP_LAUNCHER), which runs kernels without isolation or limits: use "
                "launcher 'forkserver' (or 'auto'), or isolation 'none' or 'auto'"
            )
        if launcher == "forkserver" and os.name != "posix":
            raise ValueError(
                "launcher 'forkserver' (WHIP_LAUNCHER) needs a POSIX system: use 'direct' or 'auto'"
            )
        return self

    # ------------------------------------------------------------------ building

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> SandboxConfig:
        """The configuration from ``WHIP_*`` variables (``env``, default ``os.environ``), read
        now; each override that is not None wins over its variable. Raises ``ConfigError``
        naming the variable or argument for a bad value or an impossible combination."""
        env = os.environ if env is None else env
        unknown = sorted(set(overrides) - set(cls.model_fields))
        if unknown:
            raise ConfigError(f"SandboxConfig has no field {', '.join(map(repr, unknown))}")
        data: dict[str, Any] = {}
        from_var: dict[str, str] = {}
        for name, var in ENV_VARS.items():
            raw = env.get(var)
            if raw is None or raw.strip() == "":
                continue
            if name == "tasks_path":
                data[name] = tuple(p for p in raw.split(os.pathsep) if p)
            elif name in ("isolation", "launcher"):
                data[name] = raw.strip().lower()
            else:
                data[name] = raw.strip()
            from_var[name] = var
        for name, value in overrides.items():
            if value is not None:
                data[name] = value
                from_var.pop(name, None)
        return cls(_from_var=from_var, **data)

    def with_overrides(self, **overrides: Any) -> SandboxConfig:
        """A copy with the given fields replaced (None leaves a field as it is), validated."""
        data = self.model_dump()
        data.update({k: v for k, v in overrides.items() if v is not None})
        return type(self)(**data)

    # ------------------------------------------------------------------ derived values

    @property
    def resolved_launcher(self) -> Literal["forkserver", "direct"]:
        """The launcher ``auto`` stands for here: the fork server on POSIX, else direct."""
        if self.launcher == "auto":
            return "forkserver" if os.name == "posix" else "direct"
        return self.launcher

    @property
    def masked_dirs(self) -> tuple[str, ...]:
        """Task-pack directories beyond the built-in ones that the sandbox must not show."""
        return self.tasks_path + self.extra_masked_dirs

    def summary(self) -> dict[str, Any]:
        """The configuration as plain data (for ``Sandbox.info()`` and ``whip doctor``)."""
        return self.model_dump(mode="json")


def _describe(exc: ValidationError, data: Mapping[str, Any], from_var: Mapping[str, str]) -> str:
    """One ``ConfigError`` message: each problem names its variable (or argument), what was
    expected and what it got."""
    parts = []
    for err in exc.errors():
        loc = [str(x) for x in err.get("loc", ())]
        field = loc[0] if loc else ""
        label = from_var.get(field) or (f"argument {field!r}" if field else "")
        kind = err.get("type", "")
        ctx = err.get("ctx") or {}
        if not field:  # the model validator: an impossible combination
            parts.append(str(ctx.get("error", err.get("msg", ""))))
            continue
        got = f" (got {data.get(field)!r})" if field in data else ""
        if kind == "literal_error":
            choices = get_args(SandboxConfig.model_fields[field].annotation)
            if not choices:  # the annotation is a string under postponed evaluation
                choices = get_args(IsolationLevel if field == "isolation" else LauncherName)
            parts.append(f"{label} must be one of {', '.join(choices)}{got}")
        elif kind in ("greater_than", "greater_than_equal"):
            word = "greater than" if kind == "greater_than" else "at least"
            bound = ctx.get("gt", ctx.get("ge"))
            parts.append(f"{label} must be {word} {bound}{got}")
        elif kind == "extra_forbidden":
            parts.append(f"SandboxConfig has no field {field!r}")
        elif kind in _EXPECTED:
            parts.append(f"{label} must be {_EXPECTED[kind]}{got}")
        else:
            parts.append(f"{label}: {err.get('msg')}{got}")
    return "Invalid sandbox configuration: " + "; ".join(parts)
