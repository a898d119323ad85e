"""The learner's side of the magics, in a real IPython shell over real sandbox kernels: every
message a learner can trigger is one friendly line without a traceback, every tool output ends
with the budget line, mistakes and interrupts cost no turn, and re-running cells is safe."""

from __future__ import annotations

import re
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from whipstudio_nb import load_task
from whipstudio_nb.models import State
from whipstudio_nb.notebook.magics import WhipMagics
from whipstudio_nb.notebook.widgets import Message

NO_EPISODE = (
    "Error: No episode yet: start an episode with %whip_reset TASK (%whip_tasks lists them)."
)
TASK2 = load_task("task2", seed=1)


@pytest.fixture(scope="module")
def ip() -> Iterator[InteractiveShell]:
    shell = InteractiveShell.instance()
    shell.config.WhipMagics.pool_size = 1
    shell.config.WhipMagics.max_turns = 0  # the task's own limit
    shell.config.WhipMagics.max_submissions = 2
    shell.run_line_magic("load_ext", "whipstudio_nb")
    yield shell
    if getattr(shell, "_whip_magics", None) is not None:
        shell.run_line_magic("unload_ext", "whipstudio_nb")


@pytest.fixture(scope="module")
def magics(ip: InteractiveShell) -> WhipMagics:
    m = ip._whip_magics
    assert isinstance(m, WhipMagics)
    return m


def cell(ip: InteractiveShell, source: str) -> tuple[Any, str]:
    """Run a cell like a learner; (its value, the text the notebook shows for it). Fails on
    a traceback anywhere: raised, printed or displayed."""
    with capture_output() as cap:
        res = ip.run_cell(source, store_history=True)
    assert res.error_in_exec is None and res.error_before_exec is None, res
    shown = ip.display_formatter.format(res.result)[0].get("text/plain", "") if res.result else ""
    everything = cap.stdout + cap.stderr + shown + "".join(str(o.data) for o in cap.outputs)
    assert "Traceback" not in everything and "UsageError" not in everything, everything
    return res.result, shown


def one_line(ip: InteractiveShell, source: str) -> str:
    value, shown = cell(ip, source)
    assert isinstance(value, Message), (source, value)
    assert "\n" not in shown, shown
    return shown


BEFORE_RESET = [
    "%whip_submit",
    "%%whip_submit\nprint(1)",
    "%whip_probe",
    "%%whip_probe --steps 3\nprint(1)",
    "%whip_inspect x",
    "%whip_vars x",
    "%whip_diff",
    "%whip_code",
    "%whip_hint",
    "%%whip_snippet\nprint(1)",
]


@pytest.mark.parametrize("source", BEFORE_RESET)
def test_every_tool_before_reset_says_start_an_episode(ip: InteractiveShell, source: str) -> None:
    assert one_line(ip, source) == NO_EPISODE


def test_the_dashboard_before_reset_says_what_to_do(ip: InteractiveShell) -> None:
    value, shown = cell(ip, "%whip_state")
    assert isinstance(value, State) and shown == "No episode yet: start one with %whip_reset TASK."


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            "%whip_reset task2 --sed 1",
            "Error: %whip_reset: unknown option --sed; did you mean --seed? "
            "Usage: %whip_reset [--seed SEED] [--no-cell] [task]",
        ),
        (
            "%whip_reset task2 --step 3",
            "Error: %whip_reset: unknown option --step; --steps is an option of %whip_probe. "
            "Usage: %whip_reset [--seed SEED] [--no-cell] [task]",
        ),
        (
            "%whip_probe --steps many",
            "Error: %whip_probe: --steps needs a whole number, got 'many'. "
            "Usage: %whip_probe [--steps STEPS]",
        ),
        (
            "%whip_probe --steps 0",
            "Error: --steps must be at least 1, got 0: %whip_probe --steps 20",
        ),
        (
            "%whip_inspect",
            "Error: %whip_inspect: give EXPRESSION. Usage: %whip_inspect expression [expression ...]",
        ),
        (
            "%whip_code --replace 3",
            "Error: %whip_code: --replace expects 2 arguments. "
            "Usage: %whip_code [--replace START END] [--undo] [--reset]",
        ),
        (
            "%whip_agent",
            "Error: %whip_agent: give TASK. Usage: %whip_agent [--model MODEL] "
            "[--max-turns MAX_TURNS] [--seed SEED] [--no-tools] task",
        ),
        ("%whip_reset task99", "Error: Unknown task_id: task99. Available: task1"),
        (
            "%whip_reset task2 surplus",
            "Error: %whip_reset: unexpected argument 'surplus'. "
            "Usage: %whip_reset [--seed SEED] [--no-cell] [task]",
        ),
    ],
)
def test_option_mistakes_are_one_line_naming_the_fix(
    ip: InteractiveShell, source: str, expected: str
) -> None:
    assert one_line(ip, source).startswith(expected)


def test_reset_inserts_nothing_and_shows_the_budget(ip: InteractiveShell) -> None:
    ip.rl_next_input = None
    obs, shown = cell(ip, "%whip_reset task2 --seed 1")
    assert obs.task_id == "task2" and ip.rl_next_input is None
    assert shown.splitlines()[-1] == "turn 0/10 · 2 submissions left · best 0.00"
    assert "%whip_submit" in shown  # the way forward is written down instead
    # backticks in the description are code, as in Markdown
    html = ip.display_formatter.format(obs)[0]["text/html"]
    assert "<code>nan</code>" in html and "`nan`" not in html


def test_mistakes_cost_no_turn_and_name_the_line_the_learner_sees(
    ip: InteractiveShell, magics: WhipMagics
) -> None:
    # the error is on the 4th line of the cell (the 2nd of the code, after a blank line)
    shown = one_line(ip, "%%whip_snippet\n\nx = 1\nprint(x\n")
    assert shown.startswith("Error: SyntaxError at line 4 of this cell: ")
    assert shown.endswith("(no turn used): fix it and run the cell again.")
    shown = one_line(ip, "%%whip_submit\ndef broken(:\n    pass\n")
    assert shown.startswith("Error: SyntaxError at line 2 of this cell: ")
    obs, shown = cell(ip, "%%whip_snippet\nimport socket")
    assert shown.splitlines()[0].endswith("(no turn used)")
    # reading the working copy is free too
    cell(ip, "%whip_code")
    cell(ip, "%whip_diff")
    st = magics.env.state()
    assert st.turn == 0 and st.submissions == 0


def test_earlier_attempts_are_overlaid_only_on_versions_of_the_task_script(
    ip: InteractiveShell, magics: WhipMagics
) -> None:
    magics._attempts = [("submission 1", [1.0, 0.9, 0.8])]
    unrelated = "import torch\nw = torch.zeros(1, requires_grad=True)\nfor _ in range(4):\n"
    unrelated += "    (w - 3).pow(2).sum().backward()\n"
    obs, shown = cell(ip, "%%whip_probe --steps 4\n" + unrelated)
    assert len(obs.losses) == 4 and "submission 1:" not in shown
    obs, shown = cell(ip, "%whip_probe --steps 4")  # the working copy: the task's script
    assert "submission 1:" in shown
    magics._attempts = []
    cell(ip, "%whip_reset task2 --seed 1")  # a fresh episode for the budget test below


def test_budget_line_turns_amber_two_turns_before_the_end(
    ip: InteractiveShell, magics: WhipMagics
) -> None:
    for turn in range(1, 9):
        obs, shown = cell(ip, "%%whip_code --replace 1 1\nimport torch")
        assert obs.turn == turn
    status = shown.splitlines()[-1]
    assert status == (
        "turn 8/10 · 2 submissions left · best 0.00 · 2 turns left: submit your fix with %whip_submit"
    )
    html = ip.display_formatter.format(obs)[0]["text/html"]
    assert 'class="whip-budget" style="color: #ef6c00; font-weight: bold' in html


def test_interrupt_ends_the_call_at_once_without_a_turn(
    ip: InteractiveShell, magics: WhipMagics
) -> None:
    before = magics.env.state()
    sent: dict[str, float] = {}

    def press_stop() -> None:
        time.sleep(2.0)
        sent["at"] = time.monotonic()
        signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)

    threading.Thread(target=press_stop, daemon=True).start()
    shown = one_line(ip, "%%whip_snippet\nwhile True:\n    pass")
    ended_after = time.monotonic() - sent["at"]
    assert re.fullmatch(r"interrupted after \d+\.\d s \(no turn used\)", shown), shown
    print(f"ended {ended_after:.2f} s after Stop")  # under 1 s on an idle machine
    assert ended_after < 10.0, ended_after  # well before the 30 s timeout: the interrupt did it
    assert magics.env.state() == before  # the episode exactly as it was
    assert magics._timeline[-1].action_type == "replace_lines"  # nothing recorded


def test_unsolved_submission_says_what_is_missing(ip: InteractiveShell, magics) -> None:
    obs, shown = cell(ip, "%whip_submit")  # the working copy: still the buggy script
    assert obs.reward < 0.9
    verdict = shown.splitlines()[1]
    assert verdict.startswith("not solved: 0.9 needed; missing: ")
    assert "target " in verdict  # a failing component with what it needed
    assert shown.splitlines()[-1].startswith("turn 9/10 · 1 submission left")


def test_last_turn_then_a_friendly_end(ip: InteractiveShell, magics: WhipMagics) -> None:
    obs, shown = cell(ip, "%whip_probe --steps 3")
    assert "no turns left: the next call ends the episode" in shown.splitlines()[-1]
    value, shown = cell(ip, "%%whip_code --replace 1 1\nimport torch")
    first = shown.splitlines()[0]
    assert first.startswith("Error: No turns left: maximum turns (10) exceeded, so the episode")
    assert first.endswith("Start again with %whip_reset task2.")
    assert "episode over: %whip_reset task2 starts a new one" in shown.splitlines()[-1]


def test_reset_during_an_episode_says_what_was_thrown_away(ip: InteractiveShell) -> None:
    cell(ip, "%whip_reset task2 --seed 1")
    cell(ip, "%%whip_code --replace 1 1\nimport torch  # mine")
    obs, shown = cell(ip, "%whip_reset task2 --seed 1")
    assert (
        "The episode on task2 (turn 1/10) was ended: its edits to the working copy are gone."
        in shown
    )
    obs, shown = cell(ip, "%whip_reset task2 --seed 1")  # nothing done yet: nothing to say
    assert "was ended" not in shown
