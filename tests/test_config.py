"""SandboxConfig: one place for the sandbox's configuration, read once, failing clearly.

Fast: no kernel is started here (a pool of size 0 starts none; configs are checked before any
launcher runs)."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from whipstudio_nb.config import (
    DEFAULT_TOOL_TIMEOUT_S,
    ENV_VARS,
    SUCCESS_THRESHOLD,
    SandboxConfig,
)
from whipstudio_nb.errors import ConfigError, SandboxError, WhipError
from whipstudio_nb.sandbox import Launcher, Sandbox, isolation, policy
from whipstudio_nb.sandbox.isolation import Limits, hidden_paths, resolve_level
from whipstudio_nb.sandbox.pool import KernelPool, default_launcher

PACKAGE = Path(__file__).resolve().parent.parent / "whipstudio_nb"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    """Every test starts from no WHIP_* configuration, whatever the caller's shell has."""
    for var in ENV_VARS.values():
        monkeypatch.delenv(var, raising=False)


def test_defaults_and_shared_constants():
    config = SandboxConfig.from_env({})
    assert config == SandboxConfig()
    assert (config.isolation, config.launcher) == ("auto", "auto")
    assert config.pool_size == 2 and config.tool_timeout_s == DEFAULT_TOOL_TIMEOUT_S == 30.0
    assert config.max_code_bytes == 262144 and SUCCESS_THRESHOLD == 0.9
    assert config.resolved_launcher == ("forkserver" if os.name == "posix" else "direct")


@pytest.mark.parametrize(
    "var, value, expected",
    [
        ("WHIP_MEMORY_LIMIT_MB", "abc", "WHIP_MEMORY_LIMIT_MB must be a whole number (got 'abc')"),
        ("WHIP_CPU_LIMIT_S", "1.5", "WHIP_CPU_LIMIT_S must be a whole number (got '1.5')"),
        ("WHIP_MAX_PROCS", "0", "WHIP_MAX_PROCS must be greater than 0 (got '0')"),
        ("WHIP_SCRATCH_MB", "-3", "WHIP_SCRATCH_MB must be greater than 0"),
        ("WHIP_MAX_RESULTS", "many", "WHIP_MAX_RESULTS must be a whole number"),
        ("WHIP_MAX_RESULT_BYTES", "4M", "WHIP_MAX_RESULT_BYTES must be a whole number"),
        ("WHIP_MAX_CODE_BYTES", "big", "WHIP_MAX_CODE_BYTES must be a whole number"),
        ("WHIP_POOL_SIZE", "-1", "WHIP_POOL_SIZE must be at least 0"),
        ("WHIP_TOOL_TIMEOUT_S", "soon", "WHIP_TOOL_TIMEOUT_S must be a number (got 'soon')"),
        ("WHIP_ISOLATION", "paranoid", "WHIP_ISOLATION must be one of auto, strict, basic, none"),
        ("WHIP_LAUNCHER", "docker", "WHIP_LAUNCHER must be one of forkserver, direct, auto"),
    ],
)
def test_a_bad_variable_is_a_config_error_naming_it(var, value, expected):
    with pytest.raises(ConfigError) as info:
        SandboxConfig.from_env({var: value})
    assert expected in str(info.value)
    assert info.value.code == "config" and isinstance(info.value, (ValueError, WhipError))


def test_a_bad_argument_is_named_as_an_argument():
    with pytest.raises(ConfigError, match="argument 'memory_limit_mb' must be a whole number"):
        SandboxConfig(memory_limit_mb="abc")
    with pytest.raises(ConfigError, match="argument 'cpu_limit_s' must be greater than 0"):
        SandboxConfig.from_env({"WHIP_CPU_LIMIT_S": "10"}, cpu_limit_s=0)
    with pytest.raises(ConfigError, match="no field 'memory_mb'"):
        SandboxConfig.from_env({}, memory_mb=10)


def test_overrides_win_over_the_environment_and_none_does_not_override():
    env = {"WHIP_MEMORY_LIMIT_MB": "100", "WHIP_POOL_SIZE": "5", "WHIP_ISOLATION": "basic"}
    config = SandboxConfig.from_env(env, memory_limit_mb=200, pool_size=None)
    assert config.memory_limit_mb == 200  # the argument
    assert config.pool_size == 5  # None: the variable stays
    assert config.isolation == "basic"
    assert config.with_overrides(isolation="none", scratch_mb=None).isolation == "none"
    assert config.with_overrides(isolation="none").scratch_mb == config.scratch_mb


def test_variables_are_read_at_use_not_import(monkeypatch):
    monkeypatch.setenv("WHIP_CPU_LIMIT_S", "7")
    monkeypatch.setenv("WHIP_ISOLATION", " None ")  # case and spaces are forgiven
    config = SandboxConfig.from_env()
    assert config.cpu_limit_s == 7 and config.isolation == "none"
    monkeypatch.setenv("WHIP_CPU_LIMIT_S", "")  # empty means unset
    assert SandboxConfig.from_env().cpu_limit_s == 600


def test_the_config_is_frozen():
    config = SandboxConfig()
    with pytest.raises(Exception):  # noqa: B017 (pydantic's frozen-instance error)
        config.pool_size = 3  # type: ignore[misc]


def test_importing_the_package_with_a_bad_variable_succeeds():
    """A bad value never breaks ``import whipstudio_nb``; building a sandbox names it."""
    code = (
        "import whipstudio_nb, whipstudio_nb.sandbox, whipstudio_nb.sandbox.policy\n"
        "from whipstudio_nb.sandbox import Sandbox\n"
        "try:\n"
        "    Sandbox()\n"
        "except Exception as exc:\n"
        "    print(type(exc).__name__, exc)\n"
    )
    env = {**os.environ, "WHIP_MEMORY_LIMIT_MB": "abc"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ConfigError")
    assert "WHIP_MEMORY_LIMIT_MB must be a whole number (got 'abc')" in out.stdout


@pytest.mark.parametrize("level", ["strict", "basic"])
def test_direct_launcher_with_isolation_is_impossible(level, monkeypatch):
    with pytest.raises(ConfigError, match=f"isolation '{level}'.*'direct' launcher"):
        SandboxConfig.from_env({"WHIP_LAUNCHER": "direct", "WHIP_ISOLATION": level})
    with pytest.raises(ConfigError, match="'direct' launcher"):
        SandboxConfig(launcher="direct", isolation=level)
    # through the front door, before anything is started
    monkeypatch.setenv("WHIP_LAUNCHER", "direct")
    monkeypatch.setenv("WHIP_ISOLATION", level)
    with pytest.raises(ConfigError, match="'direct' launcher"):
        Sandbox(pool_size=0)


def test_direct_launcher_without_isolation_is_fine():
    for level in ("auto", "none"):
        assert SandboxConfig(launcher="direct", isolation=level).resolved_launcher == "direct"


def test_strict_where_impossible_is_a_sandbox_error(monkeypatch):
    monkeypatch.setattr(isolation, "bwrap_problem", lambda: "bubblewrap is not installed")
    with pytest.raises(SandboxError, match="strict isolation was required"):
        resolve_level("strict")
    assert resolve_level("auto") == "basic"
    from whipstudio_nb.sandbox.forkserver import ForkServerLauncher

    with pytest.raises(SandboxError, match="bubblewrap is not installed"):
        ForkServerLauncher(config=SandboxConfig(isolation="strict"))


def test_limits_come_from_the_config():
    config = SandboxConfig.from_env(
        {"WHIP_MEMORY_LIMIT_MB": "1024", "WHIP_MAX_PROCS": "64", "WHIP_MAX_RESULTS": "3"},
        scratch_mb=128,
        cpu_limit_s=20,
    )
    limits = Limits.from_config(config)
    assert limits == Limits(
        address_space_mb=1024,
        cpu_time_s=20,
        file_size_mb=512,
        open_files=1024,
        processes=64,
        scratch_mb=128,
        max_results=3,
        max_result_bytes=4 * 2**20,
    )
    assert Limits() == Limits.from_config(SandboxConfig())  # one set of defaults


def test_launcher_selection_follows_the_config():
    from whipstudio_nb.sandbox.forkserver import ForkServerLauncher

    direct = default_launcher(SandboxConfig(launcher="direct", max_results=2))
    assert type(direct) is Launcher and direct.isolation == "none"
    assert direct.result_caps == (2, 4 * 2**20)
    fork = default_launcher(SandboxConfig(isolation="none", memory_limit_mb=300))
    assert isinstance(fork, ForkServerLauncher)  # not started until a kernel is asked for
    assert fork.isolation == "none" and fork.limits.address_space_mb == 300
    # the old keyword still overrides the config's level
    old_style = ForkServerLauncher(isolation="none", config=SandboxConfig(isolation="basic"))
    assert old_style.isolation == "none"


def test_sandbox_takes_a_config_and_the_old_keywords_override_it():
    config = SandboxConfig(launcher="direct", pool_size=3, max_code_bytes=1000)
    sb = Sandbox(config, pool_size=0)  # size 0: no kernel is started
    try:
        assert sb.config.pool_size == 0 and sb.pool.size == 0
        assert sb.config.max_code_bytes == 1000
        info = sb.info()
        assert info["launcher"] == "direct" and info["isolation"] == "none"
        assert info["config"]["launcher"] == "direct"
    finally:
        sb.close()
    sb = Sandbox(0)  # the old positional pool size still works
    try:
        assert sb.config.pool_size == 0
    finally:
        sb.close()
    sb = Sandbox(config=SandboxConfig(isolation="none"), pool_size=0, launcher=Launcher())
    try:
        assert sb.info()["launcher"] == "direct"  # an explicit launcher object wins
    finally:
        sb.close()


def test_a_launcher_weaker_than_the_asked_isolation_is_refused():
    with pytest.raises(ConfigError, match="'basic' .* isolates at 'none'"):
        Sandbox(SandboxConfig(isolation="basic"), pool_size=0, launcher=Launcher())


def test_pool_size_from_the_environment(monkeypatch):
    monkeypatch.setenv("WHIP_POOL_SIZE", "0")
    monkeypatch.setenv("WHIP_LAUNCHER", "direct")
    pool = KernelPool()
    try:
        assert pool.size == 0 and pool.config.pool_size == 0
    finally:
        pool.close()
    with pytest.raises(ConfigError, match="pool size must be >= 0"):
        KernelPool(-1)


def test_code_size_cap_from_config_or_environment(monkeypatch):
    assert policy.max_field_bytes(SandboxConfig(max_code_bytes=10)) == 10
    monkeypatch.setenv("WHIP_MAX_CODE_BYTES", "20")
    assert policy.max_field_bytes() == 20
    assert "over the limit of 20" in policy.check_code("x = 1\n" * 10)
    assert "over the limit of 20" in policy.oversized_field({"code": ["y" * 21]})
    assert policy.check_code("x = 1") is None
    assert policy.check_code("exec('x = 1')") is None  # a literal inside checked code passes
    monkeypatch.setenv("WHIP_MAX_CODE_BYTES", "lots")
    with pytest.raises(ConfigError, match="WHIP_MAX_CODE_BYTES"):
        policy.check_code("x = 1")


def test_every_task_pack_directory_is_masked(monkeypatch, tmp_path):
    """The built-in packs, each WHIP_TASKS_PATH entry (when the config was read, and now) and
    the config's extra directories are all hidden from the sandbox."""
    from whipstudio_nb.tasks import builtin_tasks_dir

    a, b, c = (tmp_path / n for n in "abc")
    config = SandboxConfig.from_env(
        {"WHIP_TASKS_PATH": f"{a}{os.pathsep}{b}"}, extra_masked_dirs=(str(c),)
    )
    assert config.masked_dirs == (str(a), str(b), str(c))
    later = tmp_path / "later"
    monkeypatch.setenv("WHIP_TASKS_PATH", str(later))
    hidden = hidden_paths(config)
    assert str(builtin_tasks_dir().resolve()) in hidden
    for path in (a, b, c, later):
        assert str(path.resolve()) in hidden


def _imports(path: Path) -> set[str]:
    """Absolute names of the modules ``path`` imports (relative ones resolved in the package)."""
    tree = ast.parse(path.read_text())
    package = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[: len(base) - node.level + 1]
                mod = ".".join([*base, node.module] if node.module else base)
            else:
                mod = node.module or ""
            names.add(mod)
            names.update(f"{mod}.{alias.name}" for alias in node.names)
    return names


def test_config_is_a_base_layer():
    allowed_first = set(sys.stdlib_module_names) | {"pydantic", "__future__"}
    for name in _imports(PACKAGE / "config.py"):
        if name.startswith("whipstudio_nb"):
            assert name.startswith("whipstudio_nb.errors"), name
        else:
            assert name.split(".")[0] in allowed_first, name


def test_the_sandbox_does_not_import_the_layers_above_it():
    """The host side of the sandbox. kernel_lib.py is the runtime inside a kernel: it loads the
    tools' and the grader's in-kernel code by design."""
    for path in (PACKAGE / "sandbox").glob("*.py"):
        if path.name == "kernel_lib.py":
            continue
        for name in _imports(path):
            for upper in ("tasks", "tools", "grading", "env", "server"):
                assert not name.startswith(f"whipstudio_nb.{upper}"), f"{path.name}: {name}"


def test_sandbox_modules_are_under_500_lines():
    for path in (PACKAGE / "sandbox").glob("*.py"):
        assert len(path.read_text().splitlines()) <= 500, path.name
    assert len((PACKAGE / "config.py").read_text().splitlines()) <= 500
