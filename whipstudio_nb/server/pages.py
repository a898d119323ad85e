"""The original WhipStudio server's extra endpoints: ``GET /baseline/health`` (is the baseline
agent configured?), ``GET /session/state`` (an episode's state in the original's shape) and a
small ``GET /`` page for a person who opens the server's URL in a browser."""

from __future__ import annotations

import html
import os
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from .._version import __version__
from ..tasks import list_tasks
from .encoding import StrictJSONResponse
from .schemas import tool_list
from .service import WhipServer, get_server

__all__ = ["router"]

router = APIRouter()
Server = Annotated[WhipServer, Depends(get_server)]


def _baseline_health() -> dict[str, Any]:
    hf_token_present = bool(os.environ.get("HF_TOKEN") or os.environ.get("API_KEY"))
    model_error = None
    try:
        from ..agent import AgentConfig

        AgentConfig.from_env().validate()  # configuration only: no request to the endpoint
    except Exception as exc:  # a missing extra, a bad URL, no key for the default endpoint
        model_error = f"{type(exc).__name__}: {exc}"
    return {
        "status": "ok" if model_error is None else "degraded",
        "hf_token_present": hf_token_present,
        "model_ready": model_error is None,
        "model_error": model_error,
    }


def _page(server: WhipServer) -> str:
    tasks = "".join(
        f"<tr><td><code>{html.escape(t.id)}</code></td><td>{html.escape(t.name)}</td>"
        f"<td>{html.escape(t.difficulty)}</td></tr>"
        for t in list_tasks()
    )
    tools = "".join(
        f"<li><code>{html.escape(t['name'])}</code>: {html.escape(t['description'])}</li>"
        for t in tool_list()
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>WhipStudio</title>
<style>body{{font:15px/1.5 system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem}}
td{{padding:.15rem .8rem .15rem 0}}code{{background:#f3f3f3;padding:0 .2rem}}</style></head>
<body><h1>WhipStudio</h1>
<p>An ML-debugging gym: investigate a broken PyTorch training script with sandboxed debugging
tools, submit a fix, and get a reward in [0, 1] measured by running it. Version
{html.escape(__version__)}.</p>
<p><a href="/docs">API documentation (/docs)</a> &middot; <a href="/health">/health</a>
&middot; <a href="/tasks">/tasks</a> &middot; <a href="/tools">/tools</a></p>
<h2>Tasks</h2><table>{tasks}</table>
<h2>Tools</h2><ul>{tools}</ul>
<p>Start an episode with <code>POST /reset</code> (<code>{{"task_id": "task1"}}</code>), act
with <code>POST /step</code>, or connect an OpenEnv client to <code>/ws</code>.</p>
</body></html>"""


@router.get("/", include_in_schema=False)
async def index(server: Server) -> HTMLResponse:
    return HTMLResponse(await run_in_threadpool(_page, server))


@router.get("/baseline/health", tags=["Baseline"], summary="Is the baseline agent configured?")
async def baseline_health() -> StrictJSONResponse:
    return StrictJSONResponse(await run_in_threadpool(_baseline_health))


@router.get("/session/state", tags=["Episode"], summary="An episode's state (original shape)")
async def session_state(
    request: Request, server: Server, episode_id: str | None = Query(default=None, max_length=255)
) -> StrictJSONResponse:
    session = server.find_session(request.scope, episode_id or None)
    data = await run_in_threadpool(server.state_of, session)
    max_turns = data.get("max_turns") or 0
    # the original's names alongside ours
    data.update(
        step=data["turn"],
        done=data["episode_done"],
        turns_remaining=max(0, max_turns - data["turn"]),
    )
    return StrictJSONResponse(data)
