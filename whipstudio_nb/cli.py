"""The ``whip`` command: tasks, grade, demo, baseline, serve, doctor, course."""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import WhipError

if TYPE_CHECKING:
    from .config import SandboxConfig

__all__ = ["main"]


def _err(msg: str) -> None:
    print(f"whip: error: {msg}", file=sys.stderr)


def cmd_tasks(args: argparse.Namespace) -> int:
    from .tasks import list_tasks

    tasks = list_tasks()
    if args.json:
        print(json.dumps({"tasks": [t.model_dump() for t in tasks]}, indent=2))
        return 0
    rows = [("ID", "NAME", "DIFFICULTY", "CATEGORY", "TURNS")]
    rows += [(t.id, t.name, t.difficulty, t.category, str(t.max_turns)) for t in tasks]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    return 0


def cmd_grade(args: argparse.Namespace) -> int:
    from . import grade
    from .tasks import load_task

    load_task(args.task)  # an unknown id fails before any kernel starts
    if args.file == "-":
        code = sys.stdin.read()
    else:
        path = Path(args.file)
        if not path.is_file():
            _err(f"no such file: {args.file}")
            return 2
        code = path.read_text(encoding="utf-8")
    print(f"Grading {args.file} as a fix for {args.task}...", file=sys.stderr)
    result = grade(args.task, code, seed=args.seed, config=_sandbox_config(args))
    if args.json:
        print(result.model_dump_json(indent=2))
        return 0
    d = result.details
    print(f"score: {result.score:.3f}")
    for key in ("error", "model_error", "script_error", "reference_error"):
        if d.get(key):
            print(f"{key.replace('_', ' ')}: {d[key]}")
    for name, value in d.get("components", {}).items():
        print(f"  {name:<16} {value:.2f}  (weight {d['weights'][name]:.2f})")
    for key in ("val_acc", "heldout_loss", "final_loss", "optimizer_steps", "grading_time_s"):
        if d.get(key) is not None:
            print(f"  {key}: {d[key]}")
    return 0


def cmd_validate_task(args: argparse.Namespace) -> int:
    from .env import make_sandbox
    from .errors import TaskPackError
    from .grading.calibration import calibrate
    from .tasks import load_task_dir

    try:
        task = load_task_dir(args.path)
    except TaskPackError as exc:
        print(f"FAIL  schema: {exc}")
        return 1
    print(
        f"PASS  schema: {task.info.id} '{task.info.name}' ({task.info.difficulty}, "
        f"{task.info.category or 'no category'})"
    )
    seeds = args.seeds if args.seeds is not None else ([1, 2, 3] if task.variants else [])
    sandbox = make_sandbox(2, config=_sandbox_config(args))
    try:
        checks = calibrate(
            task, sandbox, seeds=seeds, on_check=lambda c: print(c.line(), flush=True)
        )
    finally:
        sandbox.close()
    failed = [c for c in checks if not c.ok and not c.warning]
    print(
        f"\n{task.info.id}: {len(checks) - len(failed)}/{len(checks)} checks passed"
        + (f", {len(failed)} failed" if failed else "")
    )
    return 1 if failed else 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    reward = run_demo(args.task)
    print(f"\nDemo finished: the fix scored {reward:.2f}.")
    return 0


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def cmd_doctor(args: argparse.Namespace) -> int:
    from ._version import __version__
    from .env import make_sandbox
    from .sandbox.doctor import deployment_hint, sandbox_view
    from .sandbox.isolation import warning_for
    from .tasks import builtin_tasks_dir, find_task_dirs

    print(f"whipstudio_nb  {__version__}")
    print(f"python         {platform.python_version()} ({sys.executable})")
    for dist in ("torch", "numpy", "pydantic", "jupyter_client", "ipykernel"):
        print(f"{dist:<14} {_version(dist)}")
    print(f"tasks          {len(find_task_dirs())} found (built-in packs: {builtin_tasks_dir()})")
    t0 = time.monotonic()
    sandbox = make_sandbox(1, config=_sandbox_config(args))
    try:
        with sandbox.kernel() as k:
            ready = time.monotonic() - t0
            res = k.execute("import torch; print(torch.__version__)", timeout=30)
            view = sandbox_view(k, sandbox.isolation, sandbox.config)
        info = sandbox.info()
    finally:
        sandbox.close()
    ok = res.stdout.strip() != "" and not res.error
    print(
        f"sandbox        backend={info['backend']} launcher={info['launcher']} "
        f"isolation={info['isolation']}"
    )
    if warning := warning_for(info["isolation"]):
        print(f"  warning: {warning}")
    if hint := deployment_hint():
        print(f"  to get strict: {hint}")
    print("\n".join(view))
    print(
        f"pool           first kernel ready in {ready:.2f} s; test call "
        f"{'ok' if ok else 'FAILED'} (torch {res.stdout.strip() or '?'})"
    )
    print(f"pool state     {json.dumps(info['pool'])}")
    return 0 if ok else 1


def cmd_baseline(args: argparse.Namespace) -> int:
    from .agent.baseline import baseline_cli

    return baseline_cli(
        args.tasks,
        model=args.model,
        api_base_url=args.api_base_url,
        use_tools=not args.no_tools,
        max_turns=args.max_turns,
        as_json=args.json,
        save_dir=args.save_trajectories,
    )


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        from .server import ServerConfig, serve
        from .server.config import DEFAULT_RATE_LIMITS, parse_rate_limit
    except ImportError as exc:
        _err(f"whip serve needs the server extra: pip install 'whipstudio-nb[server]' ({exc})")
        return 2
    limits = {} if args.no_rate_limit else dict(DEFAULT_RATE_LIMITS)
    try:
        for text in args.rate_limit or []:
            name, limit = parse_rate_limit(text)
            if limit is None:
                limits.pop(name, None)
            else:
                limits[name] = limit
        config = ServerConfig(
            host=args.host,
            port=args.port,
            token=args.token,
            max_sessions=args.max_sessions,
            idle_timeout_s=args.idle_timeout,
            sandbox=_sandbox_config(args),
            rate_limits=limits,
            allow_origins=args.allow_origin or [],
            forwarded_allow_ips=args.forwarded_allow_ips,
            max_body_bytes=args.max_body,
            header_timeout_s=args.header_timeout,
            limit_concurrency=args.limit_concurrency,
            **({"max_string_chars": args.max_string} if args.max_string else {}),
        )
    except ValueError as exc:
        _err(str(exc))
        return 2
    try:
        serve(config)
    except KeyboardInterrupt:  # uvicorn re-raises Ctrl-C after its clean shutdown
        pass
    return 0


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _sandbox_options(s: argparse.ArgumentParser) -> None:
    """The SandboxConfig flags; each overrides its WHIP_* variable."""
    from typing import get_args

    from .config import IsolationLevel, LauncherName

    s.add_argument(
        "--isolation",
        choices=get_args(IsolationLevel),
        default=None,
        help="sandbox isolation (default $WHIP_ISOLATION or auto)",
    )
    s.add_argument(
        "--launcher",
        choices=get_args(LauncherName),
        default=None,
        help="how kernels start (default $WHIP_LAUNCHER or auto)",
    )


def _sandbox_config(args: argparse.Namespace) -> SandboxConfig:
    """The WHIP_* variables, overridden by the flags given (a bad value: ConfigError)."""
    from .config import SandboxConfig

    return SandboxConfig.from_env(
        isolation=getattr(args, "isolation", None),
        launcher=getattr(args, "launcher", None),
        pool_size=getattr(args, "pool_size", None),
        tool_timeout_s=getattr(args, "tool_timeout", None),
    )


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="whip", description="WhipStudio: an ML-debugging gym.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("tasks", help="list the debugging tasks")
    s.add_argument("--json", action="store_true", help="print JSON")
    s.set_defaults(func=cmd_tasks)

    s = sub.add_parser("grade", help="grade a fixed script for a task")
    s.add_argument("task", help="task id, e.g. task1")
    s.add_argument("file", help="path of the fixed script, or - for standard input")
    s.add_argument("--json", action="store_true", help="print the full GradeResult as JSON")
    s.add_argument("--seed", type=int, default=None, help="grade against this task variant")
    _sandbox_options(s)
    s.set_defaults(func=cmd_grade)

    s = sub.add_parser("validate-task", help="check a task pack: schema, scores, cheats, timing")
    s.add_argument("path", help="the pack directory (holding task.toml)")
    s.add_argument("--seeds", type=int, nargs="*", help="variant seeds to check (default 1 2 3)")
    _sandbox_options(s)
    s.set_defaults(func=cmd_validate_task)

    s = sub.add_parser("demo", help="play a short scripted debugging episode")
    s.add_argument("--task", default="task1", help=argparse.SUPPRESS)
    s.set_defaults(func=cmd_demo)

    s = sub.add_parser(
        "baseline",
        help="run the LLM agent over tasks (OpenAI-compatible endpoint: API_BASE_URL, "
        "MODEL_NAME, HF_TOKEN or API_KEY)",
    )
    s.add_argument(
        "--task",
        dest="tasks",
        action="append",
        metavar="ID",
        help="a task to run (repeatable; default: task1..task6)",
    )
    s.add_argument("--model", help="model name (default: $MODEL_NAME)")
    s.add_argument("--api-base-url", help="endpoint URL (default: $API_BASE_URL)")
    s.add_argument("--no-tools", action="store_true", help="no tools: the model answers with a fix")
    s.add_argument("--max-turns", type=_positive_int, metavar="N", help="turn limit per task")
    s.add_argument("--json", action="store_true", help="print the /baseline JSON instead")
    s.add_argument("--save-trajectories", metavar="DIR", help="write DIR/<task>.jsonl per task")
    s.set_defaults(func=cmd_baseline)

    s = sub.add_parser("doctor", help="check versions, the sandbox and the kernel pool")
    _sandbox_options(s)
    s.set_defaults(func=cmd_doctor)

    s = sub.add_parser("serve", help="serve the HTTP/WebSocket API (reference REST + OpenEnv)")
    s.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    s.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    s.add_argument(
        "--token", default=None, help="require 'Authorization: Bearer T' (or $WHIP_SERVER_TOKEN)"
    )
    s.add_argument(
        "--max-sessions",
        type=_positive_int,
        default=16,
        metavar="N",
        help="cap on concurrent episodes (default 16)",
    )
    s.add_argument(
        "--idle-timeout",
        type=float,
        default=900.0,
        metavar="S",
        help="close episodes idle for S seconds (default 900)",
    )
    s.add_argument(
        "--pool-size",
        type=int,
        default=None,
        metavar="N",
        help="warm kernels (default $WHIP_POOL_SIZE or 2)",
    )
    s.add_argument(
        "--tool-timeout",
        type=float,
        default=None,
        metavar="S",
        help="seconds a tool call may run (default $WHIP_TOOL_TIMEOUT_S or 30)",
    )
    s.add_argument(
        "--rate-limit",
        action="append",
        metavar="NAME=N/S",
        help="override a per-client limit, e.g. step=120/60 or reset=off "
        "(names: baseline, baseline_task, step, reset, grader, mcp, ws)",
    )
    s.add_argument("--no-rate-limit", action="store_true", help="disable every rate limit")
    s.add_argument(
        "--allow-origin",
        action="append",
        metavar="URL",
        help="a web page origin (scheme://host[:port]) allowed to open /ws, besides "
        "loopback ones (repeatable)",
    )
    s.add_argument(
        "--forwarded-allow-ips",
        metavar="IPS",
        default=None,
        help="believe X-Forwarded-For only from these proxies (uvicorn's option; "
        "default: from nobody)",
    )
    s.add_argument(
        "--max-body",
        type=_positive_int,
        default=1024 * 1024,
        metavar="BYTES",
        help="largest request body or WebSocket message (default 1 MiB)",
    )
    s.add_argument(
        "--max-string",
        type=_positive_int,
        default=None,
        metavar="CHARS",
        help="longest string field, e.g. code (default: the sandbox's limit, "
        "$WHIP_MAX_CODE_BYTES or 262144)",
    )
    s.add_argument(
        "--header-timeout",
        type=float,
        default=10.0,
        metavar="S",
        help="drop connections that send no complete request head in S s",
    )
    s.add_argument(
        "--limit-concurrency",
        type=_positive_int,
        default=512,
        metavar="N",
        help="connections at once before answering 503 (default 512)",
    )
    _sandbox_options(s)
    s.set_defaults(func=cmd_serve)

    from .course.cli import add_course_parser  # course mode: a layer of its own

    add_course_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except WhipError as exc:
        _err(str(exc))
        return 2
    except KeyboardInterrupt:
        _err("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
