"""IPython magics: ``%load_ext whipstudio_nb``, then ``%whip_reset task1`` and friends.

One ``Magics`` subclass. Options are parsed by ``IPython.core.magic_arguments`` (so ``%magic?``
shows real help), user defaults are traitlets with ``config=True``
(``%config WhipMagics.timeout = 60``), and every magic returns its observation, so ``obs = _``
works. Observations render through IPython's display formatters as the widgets in
:mod:`whipstudio_nb.widgets`. Loading is fast: the sandbox pool (jupyter_client, torch in the
kernels) starts in a background thread, and ``%unload_ext whipstudio_nb`` shuts it down.
"""

from __future__ import annotations

import functools
import threading
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from IPython.core.magic import Magics, line_cell_magic, line_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from traitlets import Bool, Float, Integer, Unicode

if TYPE_CHECKING:
    from .env import WhipEnv
    from .widgets import TimelineEntry, View
    from .widgets.plots import Series

__all__ = ["WhipMagics", "load_ipython_extension", "unload_ipython_extension"]

MAX_CACHED_VIEWS = 200
MAX_OVERLAID_ATTEMPTS = 4
WARMUP_TIMEOUT_S = 60.0
_FORMATTED = (
    ("whipstudio_nb.models", "Observation"),
    ("whipstudio_nb.models", "ToolObservation"),
    ("whipstudio_nb.models", "State"),
    ("whipstudio_nb.agent.episode", "EpisodeResult"),
)


def _friendly(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn any exception (other than a usage error) into a short message, never a traceback."""

    @functools.wraps(func)
    def wrapper(self: WhipMagics, *args: Any, **kwargs: Any) -> Any:
        from IPython.core.error import UsageError

        try:
            return func(self, *args, **kwargs)
        except UsageError:
            raise
        except Exception as exc:
            if self.debug:
                raise
            return self._report(exc)

    return wrapper


def _strip_quotes(token: str) -> str:
    if len(token) >= 2 and token[0] == token[-1] and token[0] in "'\"":
        return token[1:-1]
    return token


def _cell(cell: str | None) -> str:
    return (cell or "").strip("\n") + "\n" if (cell or "").strip() else ""


@magics_class
class WhipMagics(Magics):
    """WhipStudio debugging magics. Configure with ``%config WhipMagics.<name> = value``."""

    timeout = Float(30.0, help="Seconds a tool call may run before its kernel is killed.").tag(
        config=True
    )
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
        self._env: WhipEnv | None = None
        self._env_error: BaseException | None = None
        self._env_lock = threading.Lock()
        self._warmer: threading.Thread | None = None
        self._views: dict[int, tuple[Any, View]] = {}
        self._timeline: list[TimelineEntry] = []
        # earlier probes and submissions, overlaid faded on the next loss curve
        self._attempts: list[tuple[str, Series]] = []
        self._best: dict[str, float] = {}
        self._hint_index = 0
        self.last_exception: BaseException | None = None
        self.last_traceback: str = ""

    # ------------------------------------------------------------------ environment

    def start_background(self) -> None:
        """Create the environment (fork server + warm kernel pool) in a background thread."""
        if self._warmer is None and self._env is None:
            self._warmer = threading.Thread(target=self._make_env, name="whip-warmup", daemon=True)
            self._warmer.start()

    def _make_env(self) -> None:
        with self._env_lock:
            if self._env is not None:
                return
            try:
                from .env import WhipEnv

                self._env = WhipEnv(tool_timeout_s=self.timeout, pool_size=self.pool_size)
                self._env_error = None
            except Exception as exc:  # reported on first use
                self._env_error = exc

    @property
    def env(self) -> WhipEnv:
        """The session's WhipEnv, created on first use (or joined from the warm-up)."""
        if self._warmer is not None:
            if self._warmer.is_alive():
                from .widgets import progress

                with progress("starting the sandbox kernels", WARMUP_TIMEOUT_S):
                    self._warmer.join()
            self._warmer = None
        if self._env is None:
            self._make_env()
        if self._env is None:
            raise RuntimeError(f"the sandbox could not start: {self._env_error}")
        env = self._env
        env.tool_timeout_s = self.timeout
        pin = self._pinned()
        env.max_submissions = pin.max_submissions if pin else self.max_submissions
        env.max_turns_override = pin.max_turns if pin else (self.max_turns or None)
        return env

    def _pinned(self) -> Any:
        """The Assignment this session is pinned to (``assignment`` traitlet), or None."""
        if not self.assignment:
            return None
        from .course.assignment import load_pinned

        return load_pinned(self.assignment)

    def _student(self) -> str:
        from .episode_file import student_id_from_env

        return self.student_id.strip() or student_id_from_env()

    def shutdown(self) -> None:
        """Close the environment and its sandbox pool (``%unload_ext``)."""
        if self._warmer is not None:
            self._warmer.join()
            self._warmer = None
        if self._env is not None:
            self._env.close()
            self._env = None

    @property
    def _shell(self) -> Any:
        return self.shell

    # ------------------------------------------------------------------ rendering

    def _remember(self, obj: Any, view: View) -> Any:
        self._views[id(obj)] = (obj, view)  # the object is kept so its id stays unique
        while len(self._views) > MAX_CACHED_VIEWS:
            self._views.pop(next(iter(self._views)))
        return obj

    def _report(self, exc: Exception) -> View:
        """A short message for an exception; the traceback is kept in ``last_traceback``."""
        from .errors import WhipError

        self.last_exception = exc
        self.last_traceback = traceback.format_exc()
        if isinstance(exc, (WhipError, ValueError)):
            return self._message(str(exc))
        return self._message(
            f"{type(exc).__name__}: {exc} (%config WhipMagics.debug = True shows the traceback)"
        )

    def _message(self, text: str, kind: str = "error") -> View:
        from .widgets import Message

        return Message(text, kind)

    def view_for(self, obj: Any) -> View:
        """The view of an observation or State: the one built when it was made, or a default."""
        cached = self._views.get(id(obj))
        if cached is not None and cached[0] is obj:
            return cached[1]
        return self._default_view(obj)

    def _default_view(self, obj: Any) -> View:
        from .widgets import AgentRunView, observation_view

        if type(obj).__name__ == "EpisodeResult":
            return AgentRunView.from_result(obj)
        return observation_view(obj)

    def _format(self, obj: Any) -> dict[str, Any]:
        return self.view_for(obj)._repr_mimebundle_()

    def register_formatters(self) -> None:
        fmt = self._shell.display_formatter.mimebundle_formatter
        for module, name in _FORMATTED:
            fmt.for_type_by_name(module, name, self._format)

    def unregister_formatters(self) -> None:
        fmt = self._shell.display_formatter.mimebundle_formatter
        for module, name in _FORMATTED:
            try:
                fmt.pop(f"{module}.{name}")
            except KeyError:
                pass

    # ------------------------------------------------------------------ stepping

    def _step(self, action: dict[str, Any], summary: str = "", view: View | None = None) -> Any:
        from . import widgets as w

        env = self.env
        if env.task is None:
            return self._message(
                "No episode in progress: start one with %whip_reset TASK (see %whip_tasks)."
            )
        label = action["action_type"].replace("_", " ")
        slow = action["action_type"] in ("run_training_probe", "submit_fix")
        limit = env.task.time_budget_s + 30.0 if action["action_type"] == "submit_fix" else (
            self.timeout
        )  # fmt: skip
        if slow:
            live = w.LiveLossCurve(label.capitalize(), attempts=self._overlay())
            with w.progress(label, limit), live as on_progress:
                res = env.step(action, on_progress=on_progress)
        else:
            res = env.step(action)
        obs = res.observation
        if view is None or obs.error:
            view = self._default_view(obs)
        if obs.error and "Call /reset" in obs.error:  # the API's words; say it the notebook way
            view = w.Message(obs.error.replace("Call /reset", "Run %whip_reset TASK"))
        self._remember(obs, view)
        self._timeline.append(
            w.TimelineEntry(obs.turn, obs.action_type, summary, view, obs.error, res.reward)
        )
        return obs

    def _working_code(self) -> str:
        return (self._env.working_code or "") if self._env is not None else ""

    def _overlay(self) -> dict[str, Series]:
        return dict(self._attempts[-MAX_OVERLAID_ATTEMPTS:])

    # ------------------------------------------------------------------ magics

    @line_magic
    @_friendly
    def whip_tasks(self, line: str = "") -> Any:
        """A table of the tasks: id, name, difficulty, category, best score this session."""
        from .tasks import list_tasks
        from .widgets import TaskTable

        pin = self._pinned()
        tasks = [t for t in list_tasks() if pin is None or t.id in pin.tasks]
        return TaskTable(tasks, self._best)

    @magic_arguments()
    @argument("task", nargs="?", default=None, help="Task id, e.g. task1 (see %%whip_tasks).")
    @argument("--seed", type=int, default=None, help="Pick a variant of the task.")
    @argument(
        "--no-cell", action="store_true", help="Do not insert a pre-filled %%%%whip_submit cell."
    )
    @line_magic
    @_friendly
    def whip_reset(self, line: str = "") -> Any:
        """Start an episode: show the task and its buggy code (with line numbers), and insert a
        new cell below, pre-filled with ``%%whip_submit`` and the buggy code, ready to edit."""
        args = parse_argstring(self.whip_reset, line)
        from . import widgets as w

        task_id, seed = args.task or self.default_task, args.seed
        if (pin := self._pinned()) is not None:  # course mode: the assignment's task and variant
            task_id = args.task or (self.default_task if self.default_task in pin.tasks
                                    else pin.tasks[0])  # fmt: skip
            pin.check_task(task_id)
            seed = pin.seed_for(task_id, self._student())
            if args.seed is not None and args.seed != seed:
                return self._message(f"The assignment '{pin.name}' sets the variant: run "
                                     f"%whip_reset {task_id} without --seed.")  # fmt: skip
        obs = self.env.reset(task_id, seed=seed)
        self._timeline = []
        self._attempts = []
        self._hint_index = 0
        note = "A cell pre-filled with %%whip_submit and this code was inserted below: edit it."
        if args.no_cell:
            note = "Submit a fix with %%whip_submit (the cell body is the whole fixed script)."
        if obs.error_log:
            note = f"{obs.error_log}\n{note}"
        assert self.env.task is not None
        heading = f"{obs.task_id}: {self.env.task.info.name} (up to {obs.max_turns} turns)"
        self._remember(obs, w.CodeView(obs.buggy_code, heading, obs.task_description, note))
        if not args.no_cell:
            self._shell.set_next_input("%%whip_submit\n" + obs.buggy_code.rstrip("\n"))
        return obs

    @line_cell_magic
    @no_var_expand
    @_friendly
    def whip_snippet(self, line: str = "", cell: str | None = None) -> Any:
        """Run the cell in a fresh sandbox kernel (``execute_snippet``); shows stdout/stderr."""
        code = _cell(cell) or line
        if not code.strip():
            return self._message("Nothing to run: put the code in the cell body.")
        return self._step({"action_type": "execute_snippet", "code": code}, _first_line(code))

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
        obs = self._step(action, expr)
        if getattr(obs, "shape", None) is not None and not obs.error:
            self._views[id(obs)] = (obs, TensorInspector(obs, expr))
            self._timeline[-1].view = self._views[id(obs)][1]
        return obs

    @magic_arguments()
    @argument("--steps", type=int, default=None, help="Stop after N backward() calls.")
    @line_cell_magic
    @no_var_expand
    @_friendly
    def whip_probe(self, line: str = "", cell: str | None = None) -> Any:
        """Run the cell as a training script for at most N steps: loss curve (earlier probes and
        submissions overlaid) and per-parameter gradient norms."""
        from . import widgets as w

        args = parse_argstring(self.whip_probe, line)
        steps = args.steps or self.probe_steps
        code = _cell(cell)
        if not code:
            if self._env is None or self._env.working_code is None:
                return self._message("Nothing to probe: put a training script in the cell body.")
            code = self._env.working_code
        action = {"action_type": "run_training_probe", "code": code, "steps": steps}
        attempts = self._overlay()
        obs = self._step(action, f"{steps} steps")
        if not obs.error or getattr(obs, "losses", None):
            curve = w.LossCurve(obs.losses, attempts=attempts, title="Probe: training loss")
            views: list[View] = [curve, w.GradNorms(obs.grad_norms, obs.params_without_grad)]
            if obs.error:
                views.insert(0, w.Message(obs.error))
            if obs.stderr:
                views.append(w.SnippetOutput(obs.stdout, obs.stderr, 1, obs.timed_out))
            view = w.Stack(views)
            self._remember(obs, view)
            self._timeline[-1].view = view
            self._attempts.append((f"probe, turn {obs.turn}", list(obs.losses)))
        return obs

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
        return self._step(action, ", ".join(exprs))

    @line_cell_magic
    @no_var_expand
    @_friendly
    def whip_diff(self, line: str = "", cell: str | None = None) -> Any:
        """Diff the cell (or, as a line magic, the working copy) against the original buggy code:
        unified and side by side, with line numbers."""
        from .widgets import DiffViewer

        env = self.env
        if env.task is None:
            return self._message("No episode in progress: start one with %whip_reset TASK.")
        proposed = _cell(cell) or (env.working_code or "")
        obs = self._step({"action_type": "inspect_diff", "proposed_code": proposed})
        if not obs.error:
            view = DiffViewer(env.task.buggy_code, proposed)
            self._remember(obs, view)
            self._timeline[-1].view = view
            self._timeline[-1].summary = f"+{obs.additions} -{obs.deletions}"
        return obs

    @magic_arguments()
    @argument("-m", "--explanation", default=None, help="What was wrong and what you changed.")
    @line_cell_magic
    @no_var_expand
    @_friendly
    def whip_submit(self, line: str = "", cell: str | None = None) -> Any:
        """Grade a fix: ``%%whip_submit`` submits the cell (the whole fixed script),
        ``%whip_submit`` the working copy. Shows the grade report with the training loss,
        earlier attempts overlaid."""
        from .series import loss_series
        from .widgets import GradeReport

        args = parse_argstring(self.whip_submit, line)
        action: dict[str, Any] = {"action_type": "submit_fix"}
        code = _cell(cell)
        if code:
            action["fixed_code"] = code
        if args.explanation:
            action["explanation"] = _strip_quotes(args.explanation)
        attempts = self._overlay()
        obs = self._step(action, "cell" if code else "working copy")
        if obs.action_type == "submit_fix" and not obs.error:
            d = obs.grader_details
            report = GradeReport(obs.reward, d, obs.error_log, attempts=attempts)
            self._remember(obs, report)
            self._timeline[-1].view = report
            self._timeline[-1].summary = f"score {obs.reward:.3f}"
            task_id = self.env.state().task_id or ""
            self._best[task_id] = max(self._best.get(task_id, 0.0), obs.reward)
            n = sum(1 for e in self._timeline if e.action_type == "submit_fix")
            self._attempts.append((f"submission {n}", loss_series(d)))
        return obs

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
            return self._message("No episode in progress: start one with %whip_reset TASK.")
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
        args = parse_argstring(self.whip_agent, line)
        if (pin := self._pinned()) is not None:
            pin.check_task(args.task)
        from IPython.display import display

        from . import widgets as w
        from .agent import AgentConfig, LLMPolicy, StepRecord, run_episode

        if args.max_turns is not None and args.max_turns < 1:
            return self._message(f"--max-turns must be >= 1, got {args.max_turns}")
        cfg = AgentConfig.from_env(model=args.model, max_steps=args.max_turns).validate()
        policy = LLMPolicy(config=cfg, use_tools=not args.no_tools)
        env = self.env
        env.max_submissions = 1  # as the agent is told: submit_fix ends the episode
        steps: list[StepRecord] = []
        live: dict[str, Any] = {}

        def redraw(view: w.AgentRunView) -> None:
            if "handle" in live:
                live["handle"].update(view.bundle(), raw=True)
            else:
                live["handle"] = display(view.bundle(), raw=True, display_id=True)

        def on_reset(obs: Any) -> None:
            self._timeline, self._attempts, self._hint_index = [], [], 0
            live["view"] = w.AgentRunView(obs.task_id, cfg.model, steps, obs.max_turns)
            redraw(live["view"])

        def on_step(rec: StepRecord) -> None:
            steps.append(rec)
            turn = int(rec.observation.get("turn") or 0)
            self._timeline.append(w.TimelineEntry(turn, rec.action_type, rec.summary,
                                                  None, rec.error, rec.reward))  # fmt: skip
            view = live["view"]
            view.steps = list(steps)
            redraw(view)

        try:
            result = run_episode(
                env,
                policy,
                args.task,
                seed=args.seed,
                on_step=on_step,
                on_reset=on_reset,
                max_turns=cfg.max_steps,
                success_threshold=cfg.success_threshold,
            )
        finally:
            env.max_submissions = self.max_submissions
        if "view" in live:  # the final state: score, stop reason, error
            redraw(w.AgentRunView.from_result(result))
        if env.state().submitted:
            self._best[result.task_id] = max(self._best.get(result.task_id, 0.0), result.score)
        # the full dashboard is on screen already: the cell's value shows its head line
        return self._remember(result, w.AgentRunView.from_result(result, compact=True))

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

_MAGIC_NAMES = {
    "line": (
        "whip_tasks", "whip_reset", "whip_snippet", "whip_inspect", "whip_probe", "whip_vars",
        "whip_diff", "whip_submit", "whip_state", "whip_hint", "whip_code", "whip_agent",
        "whip_save",
    ),
    "cell": (
        "whip_snippet", "whip_inspect", "whip_probe", "whip_vars", "whip_diff", "whip_submit",
        "whip_code",
    ),
}  # fmt: skip


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
    for kind, names in _MAGIC_NAMES.items():
        for name in names:
            table[kind].pop(name, None)
    ipython.magics_manager.registry.pop(type(magics).__name__, None)
    while magics in ipython.configurables:
        ipython.configurables.remove(magics)
    ipython._whip_magics = None
