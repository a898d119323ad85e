"""The reference's /metrics counters."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

from ..models import StepResult

__all__ = ["Metrics"]


class Metrics:
    """The reference's /metrics counters (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.started = time.time()
        self.total_resets = 0
        self.total_steps = 0
        self.total_grades = 0
        self.rewards: list[float] = []
        self.task_distribution: Counter[str] = Counter()
        self.tool_usage: Counter[str] = Counter()

    def reset(self, task_id: str) -> None:
        with self._lock:
            self.total_resets += 1
            self.task_distribution[task_id] += 1

    def step(self, action_type: str, result: StepResult) -> None:
        with self._lock:
            self.total_steps += 1
            self.tool_usage[action_type] += 1
            if action_type == "submit_fix" and result.observation.error is None:
                self.rewards.append(result.reward)

    def grade(self) -> None:
        with self._lock:
            self.total_grades += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            avg = sum(self.rewards) / len(self.rewards) if self.rewards else 0.0
            return {
                "total_resets": self.total_resets,
                "total_steps": self.total_steps,
                "avg_reward": round(avg, 4),
                "task_distribution": dict(self.task_distribution),
                "tool_usage": dict(self.tool_usage),
                # additions
                "total_submissions": len(self.rewards),
                "total_grades": self.total_grades,
                "uptime_s": round(time.time() - self.started, 1),
            }
