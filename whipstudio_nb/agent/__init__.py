"""Agents: policies (LLM, scripted, oracle), the episode runner, trajectories, the baseline.

from whipstudio_nb.agent import LLMPolicy, run_episode

The openai SDK (the ``agent`` extra) is imported only when an LLMPolicy makes its first call.
"""

from __future__ import annotations

from .baseline import run_baseline, run_baseline_task
from .config import AgentConfig, AgentConfigError
from .episode import EpisodeResult, StepRecord, load_jsonl, run_episode
from .llm import LLMPolicy
from .parsing import InvalidAction
from .policies import EndpointError, OraclePolicy, Policy, ScriptedPolicy
from .render import render_observation, summarize_observation
from .schemas import action_tools

__all__ = [
    "AgentConfig",
    "AgentConfigError",
    "EndpointError",
    "EpisodeResult",
    "InvalidAction",
    "LLMPolicy",
    "OraclePolicy",
    "Policy",
    "ScriptedPolicy",
    "StepRecord",
    "action_tools",
    "load_jsonl",
    "render_observation",
    "run_baseline",
    "run_baseline_task",
    "run_episode",
    "summarize_observation",
]
