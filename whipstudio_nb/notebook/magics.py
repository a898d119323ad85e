"""IPython magics: ``%load_ext whipstudio_nb``, then ``%whip_reset task1`` and friends.

Every tool output ends with the budget line (turn, submissions left, best score); a mistake or
an interrupt is one friendly line (see :mod:`whipstudio_nb.notebook.magic_support`).

One ``Magics`` subclass. Options are parsed by ``IPython.core.magic_arguments`` (so ``%magic?``
shows real help), user defaults are traitlets with ``config=True``
(``%config WhipMagics.timeout = 60``), and every magic returns its observation, so ``obs = _``
works. Observations render through IPython's display formatters as the widgets in
:mod:`whipstudio_nb.notebook.widgets`. Loading is fast: the sandbox pool (jupyter_client,
torch in the kernels) starts in a background thread; ``%unload_ext whipstudio_nb`` shuts it down.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, get_args

from IPython.core.magic import Magics, line_cell_magic, line_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from traitlets import Bool, Enum, Float, Integer, Unicode

from ..config import DEFAULT_TOOL_TIMEOUT_S, IsolationLevel, LauncherName
from .magic_support import NO_EPISODE, related_to
from .magic_support import friendly as _friendly
from .magics_core import EpisodeSession

if TYPE_CHECKING:
    from .widgets import View

__all__ = ["WhipMagics", "load_ipython_extension", "unload_ipython_extension"]


def _strip_quotes(token: str) -> str:
    if len(token) >= 2 and token[0] == token[-1] and token[0] in "'\"":
        return token[1:-1]
    return token


def _cell(cell: str | None) -> str:
    return (cell or "").strip("\n") + "\n" if (cell or "").strip() else ""


@magics_class
class WhipMagics(EpisodeSession, Magics):
    """WhipStudio debugging magics. Configure with ``%config WhipMagics.<name> = value``."""

    timeout = Float(
        DEFAULT_TOOL_TIMEOUT_S, help="Seconds a tool call may run before its kernel is killed."
    ).tag(config=True)
    isolation = Enum(
        ["", *get_args(IsolationLevel)],
        "",
        help="Sandbox isolation: auto, strict, basic or none ('' uses $WHIP_ISOLATION, else "
        "auto). Takes effect when the pool (re)starts.",
    ).tag(config=True)
    launcher = Enum(
        ["", *get_args(LauncherName)],
        "",
        help="How sandbox kernels start: forkserver, direct or auto ('' uses $WHIP_LAUNCHER).",
    ).tag(config=True)
    pool_size = Integer(
        2, help="Warm sandbox kernels kept ready (takes effect when the pool (re)starts)."
    ).tag(config=True)
    default_task = Unicode("task1", help="Task started by %whip_reset without an argument.").tag(
        config=True
    )
    probe_steps = Integer(20, help="Default --steps of %%whip_probe.").tag(config=True)
    max_submissions = Integer(
        5, help="Submissions per episode (a learner may improve a partial fix)."
    ).tag(config=True)
    max_turns = Integer(0, help="Turn limit per episode; 0 uses the task's own.").tag(config=True)
    debug = Bool(
        False, help="Let unexpected errors raise with their traceback (for bug reports)."
    ).tag(config=True)
    warm_start = Bool(
        True, help="Start the sandbox pool in the background when the extension loads."
    ).tag(config=True)
    assignment = Unicode(
        "",
        help="An assignment.toml pinning this session (course mode): only its tasks, the "
        "variant it gives this student, its turn, submission and hint limits.",
    ).tag(config=True)
    student_id = Unicode(
        "", help="Student id saved by %whip_save; empty: $WHIP_STUDENT_ID or $JUPYTERHUB_USER."
    ).tag(config=True)

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        super().__init__(shell=shell, **kwargs)
        self._init_session()

    # ------------------------------------------------------------------ magics

    @line_magic
    @_friendly
    def whip_tasks(self, line: str = "") -> Any:
        """A table of the tasks: id, name, difficulty, category, best score this session."""
        from ..tasks import list_tasks
        from .widgets import TaskTable

        pin = self._pinned()
        tasks = [t for t in list_tasks() if pin is None or t.id in pin.tasks]
        return TaskTable(tasks, self._best)

    @magic_arguments()
    @argument("task", nargs="?", default=None, help="Task id, e.g. task1 (see %%whip_tasks).")
    @argument("--seed", type=int, default=None, help="Pick a variant of the task.")
    @argument("--no-cell", action="store_true", help="Accepted for old notebooks; does nothing.")
    @line_magic
    @_friendly
    def whip_reset(self, line: str = "") -> Any:
        """Start an episode: show the task and its buggy code (with line numbers). Nothing is
        inserted into the notebook, so running the cell again only restarts the episode."""
        args = parse_argstring(self.whip_reset, line)
        from . import widgets as w

        task_id, seed = args.task or self.default_task, args.seed
        if (pin := self._pinned()) is not None:  # course mode: the assignment's task and variant
            task_id = args.task or (
                self.default_task if self.default_task in pin.tasks else pin.tasks[0]
            )
            pin.check_task(task_id)
            seed = pin.seed_for(task_id, self._student())
            if args.seed is not None and args.seed != seed:
                return self._message(
                    f"The assignment '{pin.name}' sets the variant: run "
                    f"%whip_reset {task_id} without --seed."
                )
        replaced = self._replaced_episode()
        obs = self.env.reset(task_id, seed=seed)
        self._timeline = []
        self._attempts = []
        self._hint_index = 0
        note = (
            "Investigate with %%whip_snippet, %whip_probe, %whip_inspect, %whip_vars; edit the "
            "working copy with %%whip_code --replace START END; submit it with %whip_submit "
            "(or a whole fixed script with %%whip_submit)."
        )
        if replaced:
            note = f"{replaced}\n{note}"
        if obs.error_log:
            note = f"{obs.error_log}\n{note}"
        assert self.env.task is not None
        heading = f"{obs.task_id}: {self.env.task.info.name} (up to {obs.max_turns} turns)"
        status = w.BudgetStatus(self.env.state(), self.env.max_submissions)
        view = w.CodeView(obs.buggy_code, heading, obs.task_description, note)
        self._remember(obs, w.WithStatus(view, status))
        return obs

    def _replaced_episode(self) -> str:
        """A word about the episode a reset throws away, if it had any work in it."""
        env = self._env
        if env is None or env.task is None:
            return ""
        st = env.state()
        edited = env.working_code != env.task.buggy_code
        if st.episode_done or not (st.turn or edited):
            return ""
        what = "its edits to the working copy are gone" if edited else "its turns are reset"
        return f"The episode on {st.task_id} (turn {st.turn}/{st.max_turns}) was ended: {what}."

    @line_cell_magic
    @no_var_expand
    @_friendly
    def whip_snippet(self, line: str = "", cell: str | None = None) -> Any:
        """Run the cell in a fresh sandbox kernel (``execute_snippet``); shows stdout/stderr."""
        code = _cell(cell) or line
        if not code.strip():
            return self._message("Nothing to run: put the code in the cell body (%%whip_snippet).")
        action = {"action_type": "execute_snippet", "code": code}
        return self._step(action, _first_line(code), cell=cell if _cell(cell) else None)

    @magic_arguments()
    @argument("expression", nargs="+", help="Expression that evaluates to a tensor.")
    @line_cell_magic
    @no_var_expand
    @_friendly
    def whip_inspect(self, line: str = "", cell: str | None = None) -> Any:
        """Run the cell as setup code (the line form: the working copy), then inspect EXPR, a
        tensor: shape, dtype, gradient, statistics, NaN/Inf and a histogram."""
        from .widgets import TensorInspector

        args = parse_argstring(self.whip_inspect, line)
        expr = " ".join(_strip_quotes(t) for t in args.expression)
        setup = _cell(cell) if cell is not None else self._working_code()
        action = {
            "action_type": "inspect_tensor",
            "setup_code": setup,
            "target_expression": expr,
        }

        def view(obs: Any) -> View | None:
            ok = getattr(obs, "shape", None) is not None and not obs.error
            return TensorInspector(obs, expr) if ok else None

        return self._step(action, expr, view, cell=cell)

    @magic_arguments()
    @argument("--steps", type=int, default=None, help="Stop after N backward() calls.")
    @line_cell_magic
    @no_var_expand
    @_friendly
    def whip_probe(self, line: str = "", cell: str | None = None) -> Any:
        """Run the cell as a training script for at most N steps (the line form: the working
        copy): loss curve (earlier attempts at the task overlaid) and per-parameter gradient
        norms."""
        from . import widgets as w

        args = parse_argstring(self.whip_probe, line)
        steps = self.probe_steps if args.steps is None else args.steps
        if steps < 1:
            return self._message(f"--steps must be at least 1, got {steps}: %whip_probe --steps 20")
        if self._env is None or self._env.task is None:
            return self._message(NO_EPISODE)
        code = _cell(cell) or (self._env.working_code or "")
        # earlier attempts belong on the chart only when this is a version of the task's script
        related = related_to(code, self._env.task.buggy_code)
        attempts = self._overlay() if related else {}
        action = {"action_type": "run_training_probe", "code": code, "steps": steps}

        def view(obs: Any) -> View | None:
            if obs.error and not getattr(obs, "losses", None):
                return None
            curve = w.LossCurve(obs.losses, attempts=attempts, title="Probe: training loss")
            views: list[View] = [curve, w.GradNorms(obs.grad_norms, obs.params_without_grad)]
            if obs.error:
                views.insert(0, w.Message(obs.error))
            if obs.stderr:
                views.append(w.SnippetOutput(obs.stdout, obs.stderr, 1, obs.timed_out))
            if related:
                self._attempts.append((f"probe, turn {obs.turn}", list(obs.losses)))
            return w.Stack(views)

        return self._step(action, f"{steps} steps", view, cell=cell if _cell(cell) else None)

    @magic_arguments()
    @argument("expressions", nargs="+", help="Expressions to evaluate after the setup code.")
    @line_cell_magic
    @no_var_expand
    @_friendly
    def whip_vars(self, line: str = "", cell: str | None = None) -> Any:
        """Run the cell as setup code (the line form: the working copy), then evaluate each EXPR:
        a table of value, type, shape and error per expression. Quote an EXPR with spaces."""
        args = parse_argstring(self.whip_vars, line)
        exprs = [_strip_quotes(t) for t in args.expressions]
        setup = _cell(cell) if cell is not None else self._working_code()
        action = {
            "action_type": "get_variable_state",
            "setup_code": setup,
            "expressions": exprs,
        }
        return self._step(action, ", ".join(exprs), cell=cell)

    @line_cell_magic
    @no_var_expand
    @_friendly
    def whip_diff(self, line: str = "", cell: str | None = None) -> Any:
        """Diff the cell (or, as a line magic, the working copy) against the original buggy code:
        unified and side by side, with line numbers. Free: it uses no turn."""
        from .widgets import DiffViewer

        env = self.env
        if env.task is None:
            return self._message(NO_EPISODE)
        original = env.task.buggy_code
        proposed = _cell(cell) or (env.working_code or "")

        def view(obs: Any) -> View | None:
            return None if obs.error else DiffViewer(original, proposed)

        def summary(obs: Any) -> str:
            return "" if obs.error else f"+{obs.additions} -{obs.deletions}"

        return self._step({"action_type": "inspect_diff", "proposed_code": proposed}, summary, view)

    @magic_arguments()
    @argument("-m", "--explanation", default=None, help="What was wrong and what you changed.")
    @line_cell_magic
    @no_var_expand
    @_friendly
    def whip_submit(self, line: str = "", cell: str | None = None) -> Any:
        """Grade a fix: ``%%whip_submit`` submits the cell (the whole fixed script),
        ``%whip_submit`` the working copy. Shows the grade report with the training loss,
        earlier attempts overlaid."""
        from ..series import loss_series
        from .widgets import GradeReport
        from .widgets.report import component_targets

        args = parse_argstring(self.whip_submit, line)
        action: dict[str, Any] = {"action_type": "submit_fix"}
        code = _cell(cell)
        if code:
            action["fixed_code"] = code
        if args.explanation:
            action["explanation"] = _strip_quotes(args.explanation)
        attempts = self._overlay()

        def view(obs: Any) -> View | None:
            if obs.action_type != "submit_fix" or obs.error:
                return None
            d = obs.grader_details
            task = self.env.task
            targets = component_targets(task.grading if task else {}, d)
            task_id = self.env.state().task_id or ""
            self._best[task_id] = max(self._best.get(task_id, 0.0), obs.reward)
            n = 1 + sum(1 for e in self._timeline if e.action_type == "submit_fix" and not e.error)
            self._attempts.append((f"submission {n}", loss_series(d)))
            return GradeReport(obs.reward, d, obs.error_log, attempts=attempts, targets=targets)

        def summary(obs: Any) -> str:
            if obs.action_type == "submit_fix" and not obs.error:
                return f"score {obs.reward:.3f}"
            return "cell" if code else "working copy"

        return self._step(action, summary, view, cell=cell if code else None)

    @line_magic
    @_friendly
    def whip_state(self, line: str = "") -> Any:
        """The episode dashboard: task, turn k of N, best reward, and the timeline of tool calls
        (each expandable to its observation)."""
        from .widgets import EpisodeDashboard

        env = self.env
        state = env.state()
        name = env.task.info.name if env.task else ""
        return self._remember(state, EpisodeDashboard(state, self._timeline, name))

    @magic_arguments()
    @argument("--all", action="store_true", help="Show every hint revealed so far, not the last.")
    @line_magic
    @_friendly
    def whip_hint(self, line: str = "") -> Any:
        """The next progressive hint for the current task (each call reveals one more)."""
        args = parse_argstring(self.whip_hint, line)
        env = self.env
        if env.task is None:
            return self._message(NO_EPISODE)
        hints = env.task.hints
        if (pin := self._pinned()) is not None and pin.hint_limit is not None:
            if pin.hint_limit == 0:
                return self._message(f"The assignment '{pin.name}' allows no hints.", "info")
            hints = hints[: pin.hint_limit]
        if not hints:
            return self._message("This task has no hints.", "info")
        if args.all:
            shown = hints[: max(1, self._hint_index)]
            text = "\n\n".join(f"Hint {i} of {len(hints)}: {h}" for i, h in enumerate(shown, 1))
            return self._message(text, "info")
        i = min(self._hint_index, len(hints) - 1)
        self._hint_index = min(self._hint_index + 1, len(hints))
        last = " (that was the last one)" if i == len(hints) - 1 else ""
        return self._message(f"Hint {i + 1} of {len(hints)}{last}: {hints[i]}", "info")

    @magic_arguments()
    @argument(
        "--replace",
        nargs=2,
        type=int,
        metavar=("START", "END"),
        help="Replace lines START..END (1-based, inclusive) with the cell body (empty: delete).",
    )
    @argument("--undo", action="store_true", help="Undo the last edit.")
    @argument("--reset", action="store_true", help="Restore the original buggy code.")
    @line_cell_magic
    @no_var_expand
    @_friendly
    def whip_code(self, line: str = "", cell: str | None = None) -> Any:
        """Show the episode's working copy (what ``%whip_submit`` submits), or edit it:
        ``%%whip_code --replace 18 20`` (new lines in the cell body), ``--undo``, ``--reset``."""
        args = parse_argstring(self.whip_code, line)
        chosen = [bool(args.replace), args.undo, args.reset]
        if sum(chosen) > 1:
            return self._message("Choose one of --replace, --undo and --reset.")
        if args.replace:
            if cell is None:
                return self._message(
                    "Give the new lines as the cell body: %%whip_code --replace START END "
                    "(an empty body deletes the lines)."
                )
            start, end = args.replace
            action: dict[str, Any] = {
                "action_type": "replace_lines",
                "start_line": start,
                "end_line": end,
                "new_code": cell,
            }
            summary = f"lines {start}-{end}"
        elif args.undo:
            action, summary = {"action_type": "undo_edit"}, ""
        elif args.reset:
            action, summary = {"action_type": "reset_to_original"}, ""
        else:
            action, summary = {"action_type": "view_code"}, ""
        return self._step(action, summary)

    @magic_arguments()
    @argument("task", help="Task id, e.g. task1 (see %%whip_tasks).")
    @argument("--model", default=None, help="Model name (default: MODEL_NAME).")
    @argument(
        "--max-turns", type=int, default=None, help="Stop after N steps (default: the task's)."
    )
    @argument("--seed", type=int, default=None, help="Pick a variant of the task.")
    @argument(
        "--no-tools", action="store_true", help="No function calling: the model answers a fix."
    )
    @line_magic
    @_friendly
    def whip_agent(self, line: str = "") -> Any:
        """Let an LLM agent (any OpenAI-compatible endpoint: API_BASE_URL, MODEL_NAME, HF_TOKEN)
        play an episode, with a dashboard updated after each step: thought, action, observation
        summary, reward. Interrupt the kernel (Ctrl-C) to stop it; the steps so far are kept.
        Returns the EpisodeResult (``res = _``); ``%whip_state`` shows the episode afterwards."""
        from .magics_agent import run_agent_magic

        args = parse_argstring(self.whip_agent, line)
        if (pin := self._pinned()) is not None:
            pin.check_task(args.task)
        return run_agent_magic(self, args)

    @magic_arguments()
    @argument("path", nargs="?", default=None, help="File to write (default: TASK.episode.json).")
    @line_magic
    @_friendly
    def whip_save(self, line: str = "") -> Any:
        """Save the episode as one JSON file (WhipEnv.export): the task, variant seed, student
        id, final submitted code, working copy, score and components, and the turn-by-turn trail.
        This is the file a course collects; ``load_episode`` reads it back."""
        args = parse_argstring(self.whip_save, line)
        env = self.env
        if env.task is None:
            return self._message("No episode to save: start one with %whip_reset TASK.")
        pin = self._pinned()
        path = _strip_quotes(args.path) if args.path else f"{env.task.info.id}.episode.json"
        student = self._student()
        rec = env.export(path, student_id=student, assignment=pin.name if pin else None)
        score = "not submitted yet" if rec.score is None else f"last score {rec.score:.3f}"
        who = f" for {student}" if student else " (no student id: set WhipMagics.student_id)"
        return self._message(
            f"Saved {rec.task_id}{who} to {path}: turn {rec.turns}, {rec.submissions} "
            f"submission{'s' if rec.submissions != 1 else ''}, {score}.",
            "info" if student or pin is None else "error",
        )


def _first_line(code: str) -> str:
    first = next((ln.strip() for ln in code.splitlines() if ln.strip()), "")
    return first if len(first) <= 60 else first[:59] + "…"


# ---------------------------------------------------------------------- extension hooks


def load_ipython_extension(ipython: Any) -> None:
    """Register the magics and the observation formatters; warm the sandbox in the background."""
    if getattr(ipython, "_whip_magics", None) is not None:
        return
    magics = WhipMagics(shell=ipython, config=ipython.config)
    ipython.register_magics(magics)
    if magics not in ipython.configurables:  # so that %config WhipMagics... finds it
        ipython.configurables.append(magics)
    magics.register_formatters()
    ipython._whip_magics = magics
    if magics.warm_start:
        magics.start_background()


def unload_ipython_extension(ipython: Any) -> None:
    """Shut the sandbox pool down and remove the magics and formatters."""
    magics: WhipMagics | None = getattr(ipython, "_whip_magics", None)
    if magics is None:
        return
    magics.shutdown()
    magics.unregister_formatters()
    table = ipython.magics_manager.magics
    for kind, names in WhipMagics.magics.items():  # what @magics_class registered
        for name in names:
            table[kind].pop(name, None)
    ipython.magics_manager.registry.pop(type(magics).__name__, None)
    while magics in ipython.configurables:
        ipython.configurables.remove(magics)
    ipython._whip_magics = None
