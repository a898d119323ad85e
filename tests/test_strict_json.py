"""The one strict JSON encoder (``whipstudio_nb.models.dumps``): never a bare NaN/Infinity,
nothing lost (``non_finite`` says which nulls were which), and a result with no JSON form is an
in-band error that keeps the turn's outcome."""

from __future__ import annotations

import json
import math

from hypothesis import given
from hypothesis import strategies as st

from whipstudio_nb.agent.episode import EpisodeResult, StepRecord, StepTiming, load_jsonl
from whipstudio_nb.agent.render import render_observation
from whipstudio_nb.models import (
    NON_FINITE_KEY,
    GetVariableStateObservation,
    RunTrainingProbeObservation,
    StepResult,
    VariableState,
    dumps,
    restore_non_finite,
    to_strict_json,
)


def strict_loads(text: str) -> object:
    def refuse(token: str) -> object:
        raise AssertionError(f"bare {token}")

    return json.loads(text, parse_constant=refuse)


def same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
    lambda kids: (
        st.lists(kids, max_size=4)
        | st.dictionaries(
            st.text(max_size=6).filter(lambda k: k != NON_FINITE_KEY), kids, max_size=4
        )
    ),
    max_leaves=20,
)


@given(st.dictionaries(st.text(max_size=6).filter(lambda k: k != NON_FINITE_KEY), values))
def test_strict_and_lossless(doc: dict) -> None:
    text = dumps(doc)
    back = strict_loads(text)
    assert isinstance(back, dict)
    assert same(restore_non_finite(back), doc)


def test_observation_says_which_values_were_not_finite() -> None:
    obs = RunTrainingProbeObservation(
        losses=[0.5, math.nan, math.inf], final_loss=-math.inf, grad_norms={"fc/w": math.nan}
    )
    data = to_strict_json(obs)
    assert data["losses"] == [0.5, None, None] and data["final_loss"] is None
    assert data[NON_FINITE_KEY] == {
        "/losses/1": "NaN",
        "/losses/2": "Infinity",
        "/final_loss": "-Infinity",
        "/grad_norms/fc~1w": "NaN",
    }
    assert "non_finite" in RunTrainingProbeObservation.model_json_schema()["properties"]
    assert NON_FINITE_KEY not in to_strict_json(RunTrainingProbeObservation(losses=[1.0]))


def test_an_unencodable_result_is_an_in_band_error_that_keeps_the_turn() -> None:
    from whipstudio_nb.server.encoding import step_payload

    deep: list = []
    for _ in range(1000):
        deep = [deep]
    obs = GetVariableStateObservation(
        turn=4, reward=0.0, results={"x": VariableState(type="list", value=deep)}
    )
    payload = step_payload(StepResult(observation=obs, reward=0.0, done=False))
    assert payload["observation"]["turn"] == 4 and payload["done"] is False
    assert "could not be encoded" in payload["observation"]["error"]
    strict_loads(dumps(payload))


def test_trajectory_keeps_nan_for_the_model_and_the_file(tmp_path) -> None:
    obs = to_strict_json(RunTrainingProbeObservation(losses=[1.0, math.nan], loss_is_nan=True))
    rec = StepRecord(
        step=1,
        action_type="run_training_probe",
        observation=obs,
        timing=StepTiming(started_at=0.0, policy_s=0.0),
    )
    res = EpisodeResult(task_id="task2", max_turns=10, steps=[rec])
    path = res.save_jsonl(tmp_path / "t.jsonl")
    for line in path.read_text().splitlines():
        strict_loads(line)
    back = load_jsonl(path).steps[0].observation
    assert back[NON_FINITE_KEY] == {"/losses/1": "NaN"}
    assert "nan" in render_observation(back)  # the model is told NaN, not None
