"""The FakeSandbox stays honest: each tool gives the same observation over it as over a real
kernel, so the tests moved to the fake still test what the product does."""

from __future__ import annotations

import json

import pytest
from fakes import FakeSandbox

from whipstudio_nb.tools import action_adapter, get_tool
from whipstudio_nb.tools._common import ToolContext
from whipstudio_nb.working_copy import WorkingCopy

ACTIONS = [
    {
        "action_type": "execute_snippet",
        "code": "import sys\nprint('out')\nprint('err', file=sys.stderr)\n1/0",
    },
    {"action_type": "execute_snippet", "code": "import sys\nsys.exit(3)"},
    {
        "action_type": "inspect_tensor",
        "setup_code": "import torch\nw = torch.tensor([1.0, float('nan'), 3.0])",
        "target_expression": "w",
    },
    {
        "action_type": "get_variable_state",
        "setup_code": "import torch\nm = torch.nn.Linear(2, 3)",
        "expressions": ["m.weight.shape", "m.training", "nope"],
    },
    {"action_type": "run_training_probe", "code": "TASK", "steps": 4},
    {"action_type": "run_training_probe", "code": "raise ValueError('x')", "steps": 2},
]


@pytest.mark.parametrize("action", ACTIONS, ids=lambda a: a["action_type"])
def test_the_fake_answers_like_a_real_kernel(sandbox, task1, action) -> None:
    if action.get("code") == "TASK":
        action = {**action, "code": task1.buggy_code}  # reads the episode's training data
    parsed = action_adapter().validate_python(action)

    def observe(sb) -> str:  # as JSON text: NaN equals NaN there
        ctx = ToolContext(sandbox=sb, timeout_s=30, task=task1, copy=WorkingCopy(task1.buggy_code))
        return json.dumps(get_tool(parsed.action_type).run(ctx, parsed).model_dump(), indent=1)

    fake = FakeSandbox()
    assert observe(fake) == observe(sandbox)
    assert [m for m, _ in fake.calls] == [get_tool(parsed.action_type).kernel_entry]
