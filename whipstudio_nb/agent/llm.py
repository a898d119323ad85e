"""LLMPolicy: a chat model behind any OpenAI-compatible endpoint, through the openai SDK.

Function calling with one tool per action (named as its ``action_type``); without a tool call
the reply's content must hold one JSON action object, bare or fenced. Temperature 0. Parse and
validation errors go back to the model as a short message naming the field. HTTP 5xx, 408, 429,
timeouts and refused connections are retried with exponential backoff, a bounded number of
times, then raise EndpointError (which ``run_episode`` turns into a clean stop).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from pydantic import BaseModel

from .config import AgentConfig
from .parsing import InvalidAction, parse_content, parse_fix, parse_tool_call
from .policies import EndpointError
from .render import render_observation, render_reset
from .schemas import action_tools

__all__ = ["LLMPolicy", "system_prompt"]

log = logging.getLogger("whipstudio_nb.agent")

_RETRY_STATUS = (408, 409, 429)


def system_prompt(use_tools: bool = True) -> str:
    from ..sandbox.policy import ALLOWED_IMPORTS

    imports = ", ".join(ALLOWED_IMPORTS)
    if not use_tools:
        return (
            "You fix broken PyTorch training scripts. You get a task and its buggy script. "
            "Answer with the whole fixed script in one ```python code block. The grader runs "
            "your script, then measures the trained model on held-out data; printed metrics "
            f"count for nothing. The script may import only: {imports}."
        )
    return (
        "You debug a broken PyTorch training script in WhipStudio. Each turn, call exactly one "
        "tool; its result comes back as the tool's reply.\n"
        "- execute_snippet, inspect_tensor, run_training_probe, get_variable_state: "
        "investigate. Each call runs in a fresh sandbox, so include every line of setup it "
        "needs (the buggy script itself, for example).\n"
        "- view_code, replace_lines, undo_edit, reset_to_original: edit your working copy "
        "(line numbers as shown; they are not part of the code).\n"
        "- inspect_diff: compare a whole proposed script with the original.\n"
        "- submit_fix: grade fixed_code (the whole script), or your working copy when "
        "fixed_code is omitted. It ends the episode: submit once, when confident, before the "
        "turns run out.\n"
        "The grader runs the whole script and measures the trained model on held-out data; "
        f"printed metrics count for nothing. Code may import only: {imports}.\n"
        "If you cannot call tools, answer with exactly one JSON object instead, for example "
        '{"action_type": "run_training_probe", "code": "...", "steps": 5}.'
    )


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:300] if text else type(exc).__name__


def _status_detail(exc: Any) -> str:
    """The server's own error message when its body has one (``{"error": {"message": ...}}``)."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        msg = inner.get("message") if isinstance(inner, dict) else inner
        if isinstance(msg, str) and msg.strip():
            return " ".join(msg.split())[:300]
    return _short(exc)


class LLMPolicy:
    """An LLM agent. Arguments that are None come from the environment (``AgentConfig``)."""

    def __init__(
        self,
        model: str | None = None,
        *,
        api_base_url: str | None = None,
        api_key: str | None = None,
        use_tools: bool = True,
        config: AgentConfig | None = None,
        max_retries: int | None = None,
        backoff_s: float | None = None,
        timeout_s: float | None = None,
        client: Any = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        cfg = config or AgentConfig.from_env()
        overrides: dict[str, Any] = {
            "model": model,
            "api_base_url": api_base_url,
            "api_key": api_key,
            "max_retries": max_retries,
            "backoff_s": backoff_s,
            "timeout_s": timeout_s,
        }
        cfg = replace(cfg, **{k: v for k, v in overrides.items() if v is not None})
        self.config = cfg
        self.model = cfg.model
        self.use_tools = use_tools
        self._client = client
        self._sleep = sleep
        self._tools_supported = True
        self.messages: list[dict[str, Any]] = []
        self._pending_tool_call: str | None = None
        self._max_turns: int | None = None
        self.requests = 0  # HTTP requests made, retries included
        self.retries = 0

    # ------------------------------------------------------------------ policy protocol

    def start(self, task_id: str, seed: int | None) -> None:
        self.messages = []
        self._pending_tool_call = None

    def __call__(self, observation: Any, history: Sequence[Any]) -> Any:
        if not self.messages or not history:
            self._begin(observation)
        else:
            self._reply(observation)
        message = self._complete()
        return self._interpret(message)

    # ------------------------------------------------------------------ conversation

    def _begin(self, observation: Any) -> None:
        self.messages = [{"role": "system", "content": system_prompt(self.use_tools)}]
        self._pending_tool_call = None
        self._max_turns = getattr(observation, "max_turns", None)
        if not hasattr(observation, "buggy_code"):  # started mid-episode
            self.messages.append({"role": "user", "content": render_observation(observation)})
            return
        if self.use_tools:
            text = render_reset(observation) + "\nInvestigate, fix, then call submit_fix."
        else:
            text = (
                f"Task {observation.task_id}: {' '.join(observation.task_description.split())}"
                f"\n\nBuggy script:\n```python\n{observation.buggy_code.rstrip()}\n```\n"
                "Answer with the whole fixed script in one ```python code block."
            )
        self.messages.append({"role": "user", "content": text})

    def _reply(self, observation: Any) -> None:
        text = render_observation(observation, max_turns=self._max_turns)
        if self._pending_tool_call is not None:
            self.messages.append(
                {"role": "tool", "tool_call_id": self._pending_tool_call, "content": text}
            )
        else:
            self.messages.append({"role": "user", "content": text})
        self._pending_tool_call = None

    def _interpret(self, message: Any) -> Any:
        if message is None:
            self.messages.append({"role": "assistant", "content": ""})
            return InvalidAction("empty reply: the endpoint returned no choices")
        content = message.content if isinstance(message.content, str) else None
        calls = [c for c in (getattr(message, "tool_calls", None) or []) if hasattr(c, "function")]
        if self.use_tools and calls:
            call = calls[0]  # one action per turn: further calls are dropped from the history
            self.messages.append(
                {
                    "role": "assistant",
                    "content": content,
                    "tool_calls": [
                        {
                            "id": call.id,
                            "type": "function",
                            "function": {
                                "name": call.function.name,
                                "arguments": call.function.arguments,
                            },
                        }
                    ],
                }
            )
            self._pending_tool_call = call.id
            action = parse_tool_call(call.function.name, call.function.arguments)
            if isinstance(action, BaseModel) and not getattr(action, "thought", None):
                if content and content.strip():
                    action = action.model_copy(update={"thought": content.strip()})
            return action
        self.messages.append({"role": "assistant", "content": content or ""})
        return parse_content(content) if self.use_tools else parse_fix(content)

    # ------------------------------------------------------------------ HTTP

    @property
    def client(self) -> Any:
        if self._client is None:
            from openai import OpenAI

            self._client = OpenAI(
                base_url=self.config.api_base_url,
                api_key=self.config.resolved_api_key,
                timeout=self.config.timeout_s,
                max_retries=0,  # retries are ours: bounded, logged, then a clean failure
            )
        return self._client

    def _request(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": self.messages,
            "temperature": 0.0,
        }
        if self.use_tools and self._tools_supported:
            kwargs["tools"] = action_tools()
            kwargs["tool_choice"] = "auto"
        return kwargs

    def _complete(self) -> Any:
        import openai

        attempt = 0
        while True:
            kwargs = self._request()
            self.requests += 1
            try:
                completion = self.client.chat.completions.create(**kwargs)
                choices = getattr(completion, "choices", None) or []
                return choices[0].message if choices else None
            except openai.APIStatusError as exc:
                status = exc.status_code
                if (
                    status == 400
                    and "tools" in kwargs
                    and not any(m.get("tool_calls") for m in self.messages)
                ):
                    log.warning(
                        "endpoint rejected function calling (HTTP 400: %s); "
                        "continuing with JSON actions in the content",
                        _status_detail(exc),
                    )
                    self._tools_supported = False
                    continue
                if status < 500 and status not in _RETRY_STATUS:
                    raise EndpointError(
                        f"HTTP {status} from the endpoint: {_status_detail(exc)}"
                    ) from exc
                problem = f"HTTP {status}: {_status_detail(exc)}"
            except openai.APITimeoutError:
                problem = f"timed out after {self.config.timeout_s:g} s"
            except openai.APIConnectionError as exc:
                problem = f"connection failed ({_short(exc.__cause__ or exc)})"
            except openai.OpenAIError as exc:
                raise EndpointError(f"endpoint error: {_short(exc)}") from exc
            if attempt >= self.config.max_retries:
                raise EndpointError(
                    f"the endpoint {self.config.api_base_url} failed {attempt + 1} times; "
                    f"last: {problem}"
                )
            delay = self.config.backoff_s * (2**attempt)
            attempt += 1
            self.retries += 1
            log.warning(
                "endpoint %s: %s; retry %d/%d in %.2f s",
                self.config.api_base_url,
                problem,
                attempt,
                self.config.max_retries,
                delay,
            )
            self._sleep(delay)

    def __repr__(self) -> str:
        return (
            f"LLMPolicy(model={self.model!r}, api_base_url={self.config.api_base_url!r}, "
            f"use_tools={self.use_tools})"
        )
