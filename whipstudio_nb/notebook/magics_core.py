"""The session behind the magics: the environment (warmed in the background), the views of
observations, and one way to run a step (progress, interrupts, the budget line, friendly
messages). :class:`whipstudio_nb.notebook.magics.WhipMagics` adds the magics on top."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .magic_support import NO_EPISODE, notebook_error, syntax_message

if TYPE_CHECKING:
    from ..env import WhipEnv
    from .widgets import TimelineEntry, View
    from .widgets.plots import Series

__all__ = ["EpisodeSession"]

MAX_CACHED_VIEWS = 200
MAX_OVERLAID_ATTEMPTS = 4
WARMUP_TIMEOUT_S = 60.0
# calls that run code in a sandbox kernel: they show progress and can be interrupted


def _sandboxed(kind: str) -> bool:
    """Calls that run code in a sandbox kernel: they show progress and can be interrupted."""
    from ..tools import get_tool

    return get_tool(kind).runs_code


_FORMATTED = (
    ("whipstudio_nb.models", "Observation"),
    ("whipstudio_nb.models", "ToolObservation"),
    ("whipstudio_nb.models", "State"),
    ("whipstudio_nb.agent.episode", "EpisodeResult"),
)


class EpisodeSession:
    """Mixed into ``WhipMagics``, whose traitlets (``timeout``, ``pool_size``, ...) it reads."""

    shell: Any
    timeout: float
    pool_size: int
    max_submissions: int
    max_turns: int
    debug: bool

    def _init_session(self) -> None:
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
                from ..config import SandboxConfig
                from ..env import WhipEnv

                config = SandboxConfig.from_env(
                    isolation=getattr(self, "isolation", "") or None,
                    launcher=getattr(self, "launcher", "") or None,
                    pool_size=self.pool_size,
                    tool_timeout_s=self.timeout,
                )
                self._env = WhipEnv(config=config)
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
        if not self.assignment:  # type: ignore[attr-defined]
            return None
        from ..course.assignment import load_pinned

        return load_pinned(self.assignment)  # type: ignore[attr-defined]

    def _student(self) -> str:
        from ..episode_file import student_id_from_env

        return self.student_id.strip() or student_id_from_env()  # type: ignore[attr-defined]

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
        from ..errors import WhipError

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

    def _step(
        self,
        action: dict[str, Any],
        summary: str | Callable[[Any], str] = "",
        make_view: Callable[[Any], View | None] | None = None,
        *,
        cell: str | None = None,
    ) -> Any:
        """Run one action: progress while it runs, a one-line message if it is refused or
        interrupted (no turn used), else its observation with the budget line under its view.
        ``make_view`` builds the tool's own view (None: the default); ``cell`` is the cell the
        code came from, so a SyntaxError names the line the learner sees."""
        from ..tools import action_adapter
        from ..turns import syntax_error_in
        from . import widgets as w

        env = self.env
        if env.task is None:
            return self._message(NO_EPISODE)
        try:
            found = syntax_error_in(action_adapter().validate_python(action), env.working_code)
        except Exception:  # an invalid action: the environment says what is wrong with it
            found = None
        if found is not None:
            return self._message(syntax_message(found, cell))
        kind = action["action_type"]
        turn_before = env.state().turn
        started = time.monotonic()
        try:
            res = self._run(env, action) if _sandboxed(kind) else env.step(action)
        except KeyboardInterrupt:
            elapsed = time.monotonic() - started
            return self._message(f"interrupted after {elapsed:.1f} s (no turn used)", "status")
        obs = res.observation
        view = make_view(obs) if make_view is not None else None
        state = env.state()
        friendly = obs.error and notebook_error(
            obs.error_code, obs.error, env.task.info.id, state.best_reward
        )
        if friendly:
            view = w.Message(friendly)
        elif obs.error and view is None and state.turn == turn_before and not state.episode_done:
            view = w.Message(f"{obs.error} (no turn used)")  # refused before anything ran
        elif view is None:
            view = self._default_view(obs)
        text = summary(obs) if callable(summary) else summary
        self._timeline.append(
            w.TimelineEntry(obs.turn, obs.action_type, text, view, obs.error, res.reward)
        )
        self._remember(obs, w.WithStatus(view, w.BudgetStatus(state, env.max_submissions)))
        return obs

    def _run(self, env: WhipEnv, action: dict[str, Any]) -> Any:
        """A sandboxed call with its progress line (and the live loss curve of a training run)."""
        from . import widgets as w

        kind = action["action_type"]
        assert env.task is not None
        label = kind.replace("_", " ")
        limit = env.task.time_budget_s + 30.0 if kind == "submit_fix" else self.timeout
        if kind not in ("run_training_probe", "submit_fix"):
            with w.progress(label, limit):
                return env.step(action)
        live = w.LiveLossCurve(label.capitalize(), attempts=self._overlay())
        with w.progress(label, limit, losses=lambda: live.losses), live as on_progress:
            return env.step(action, on_progress=on_progress)

    def _working_code(self) -> str:
        return (self._env.working_code or "") if self._env is not None else ""

    def _overlay(self) -> dict[str, Series]:
        return dict(self._attempts[-MAX_OVERLAID_ATTEMPTS:])
