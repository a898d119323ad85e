"""Random JSON at WhipEnv.step: it never raises and never hangs; every answer is a valid
observation or one with `error` set."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from whipstudio_nb.models import StepResult, ToolObservation
from whipstudio_nb.tools import action_models, tool_names

FIELDS = sorted({f for m in action_models().values() for f in m.model_fields} - {"action_type"})

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=True)
    | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
actions = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {"action_type": st.sampled_from([*tool_names(), "bogus", ""]) | json_values},
        optional={f: json_values | st.text(max_size=40) for f in FIELDS},
    ),
)


@pytest.fixture(scope="module")
def fuzz_env(sandbox):
    from whipstudio_nb import WhipEnv

    env = WhipEnv(sandbox=sandbox, max_turns=10_000, tool_timeout_s=10, max_submissions=10_000)
    env.reset("task1")
    yield env
    env.close()


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(action=actions)
def test_step_never_raises(fuzz_env, action):
    res = fuzz_env.step(action)
    assert isinstance(res, StepResult)
    obs = res.observation
    assert isinstance(obs, ToolObservation)
    assert isinstance(obs.action_type, str)
    StepResult.model_validate_json(res.model_dump_json())  # serialisable and well-formed
    if res.done:
        fuzz_env.reset("task1")
