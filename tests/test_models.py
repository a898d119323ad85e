"""Models: the discriminated union, the reference's field names, generated JSON Schemas."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from whipstudio_nb import models as m
from whipstudio_nb.tools import action_adapter, action_models, tool_names


def test_discriminated_union_parses_each_action():
    samples = {
        "execute_snippet": {"code": "print(1)"},
        "inspect_tensor": {"setup_code": "", "target_expression": "x"},
        "run_training_probe": {"code": "pass", "steps": 3},
        "get_variable_state": {"expressions": ["1"]},
        "inspect_diff": {"proposed_code": "x"},
        "submit_fix": {"fixed_code": "x", "explanation": "e", "attempt_number": 1},
        "view_code": {},
        "replace_lines": {"start_line": 1, "end_line": 1, "new_code": ""},
        "undo_edit": {},
        "reset_to_original": {},
    }
    assert set(samples) == set(tool_names())
    for action_type, fields in samples.items():
        parsed = action_adapter().validate_python({"action_type": action_type, **fields})
        assert type(parsed) is action_models()[action_type]


def test_reference_field_names():
    assert set(m.Observation.model_fields) >= {
        "task_id",
        "task_description",
        "buggy_code",
        "error_log",
        "last_reward",
        "turn",
        "episode_done",
        "error",
    }
    assert set(m.InspectTensorObservation.model_fields) >= {
        "shape",
        "dtype",
        "requires_grad",
        "grad_is_none",
        "min_val",
        "max_val",
        "mean_val",
        "is_nan",
        "is_inf",
        "error",
    }
    assert set(m.RunTrainingProbeObservation.model_fields) >= {
        "losses",
        "grad_norms",
        "optimizer_param_count",
        "final_loss",
        "loss_is_nan",
        "loss_is_inf",
        "stderr",
        "timed_out",
    }
    assert set(m.ExecuteSnippetObservation.model_fields) >= {
        "stdout",
        "stderr",
        "exit_code",
        "timed_out",
    }
    assert set(m.InspectDiffObservation.model_fields) >= {
        "diff",
        "lines_changed",
        "additions",
        "deletions",
    }
    assert set(m.SubmitFixObservation.model_fields) >= {"reward", "error_log", "grader_details"}
    assert set(m.VariableState.model_fields) == {"repr", "type", "value", "shape", "error"}
    assert set(m.State.model_fields) >= {
        "turn",
        "task_id",
        "submitted",
        "best_reward",
        "tool_call_history",
    }
    for cls in (m.ExecuteSnippetObservation, m.SubmitFixObservation, m.ErrorObservation):
        assert "error" in cls.model_fields and "episode_done" in cls.model_fields


def test_schemas_are_generated():
    schema = action_adapter().json_schema()
    assert set(schema["discriminator"]["mapping"]) == set(tool_names())
    probe = m.RunTrainingProbeAction.model_json_schema()
    assert probe["properties"]["steps"]["minimum"] == 1
    json.dumps(m.StepResult.model_json_schema())


def test_step_result_serialises_the_concrete_observation():
    res = m.StepResult(observation=m.ExecuteSnippetObservation(stdout="hi"), reward=0.0)
    assert json.loads(res.model_dump_json())["observation"]["stdout"] == "hi"


def test_unknown_fields_are_rejected():
    with pytest.raises(ValidationError):
        action_adapter().validate_python({"action_type": "submit_fix", "fixed_cod": "x"})


def test_task_spec_hides_the_solution():
    spec = m.TaskSpec(
        info=m.TaskInfo(id="t", name="n", difficulty="easy"), buggy_code="b", solution_code="SECRET"
    )
    assert "SECRET" not in spec.model_dump_json()
    assert "SECRET" not in repr(spec)
