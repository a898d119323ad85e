"""Shared fixtures: one real sandbox (fork server + warm kernel pool) for the session, and an
in-process fake (tests/fakes.py) for tests that are not about kernels."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fakes import FakeSandbox

from whipstudio_nb import WhipEnv, load_task
from whipstudio_nb.env import make_sandbox
from whipstudio_nb.sandbox import Sandbox


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--browser",
        action="store_true",
        help="also run the real-browser tests (JupyterLab in headless Chromium); "
        "scripts/test.sh passes it when /usr/bin/chromium exists, and always in CI",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # The browser tests take a minute and need Chromium: out of a bare `pytest` run.
    if config.getoption("--browser"):
        return
    skip = pytest.mark.skip(reason="browser test: run with --browser (scripts/test.sh does)")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    sb = make_sandbox(2)
    yield sb
    sb.close()


@pytest.fixture
def make_env(sandbox: Sandbox):
    """WhipEnv factory over the shared sandbox; every env made is closed after the test."""
    envs: list[WhipEnv] = []

    def make(**kwargs) -> WhipEnv:
        env = WhipEnv(sandbox=sandbox, **kwargs)
        envs.append(env)
        return env

    yield make
    for env in envs:
        env.close()


@pytest.fixture
def fake_sandbox() -> FakeSandbox:
    """In-process stand-in for tests that are not about kernels (tests/fakes.py)."""
    return FakeSandbox()


@pytest.fixture
def make_fake_env(fake_sandbox: FakeSandbox):
    """WhipEnv factory over ``fake_sandbox``: tools run in-process, submit_fix raises."""
    envs: list[WhipEnv] = []

    def make(**kwargs) -> WhipEnv:
        env = WhipEnv(sandbox=fake_sandbox, **kwargs)  # type: ignore[arg-type]
        envs.append(env)
        return env

    yield make
    for env in envs:
        env.close()


@pytest.fixture
def fake_env(make_fake_env) -> WhipEnv:
    e = make_fake_env(max_turns=50)
    e.reset("task1")
    return e


@pytest.fixture
def env(make_env) -> WhipEnv:
    e = make_env(max_turns=50)
    e.reset("task1")
    return e


@pytest.fixture(scope="session")
def task1():
    return load_task("task1")
