"""The reference's other endpoints: /tasks, /tools, /grader, /baseline, /baseline/task/{id}
and /metrics."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from starlette.concurrency import run_in_threadpool

from ..tasks import list_tasks, load_task
from .encoding import StrictJSONResponse
from .errors import error_response
from .schemas import GraderRequest, tool_list
from .service import WhipServer, get_server

__all__ = ["router"]

log = logging.getLogger("whipstudio_nb.server")

router = APIRouter()
Server = Annotated[WhipServer, Depends(get_server)]
ModelId = Annotated[str | None, Query(min_length=1, max_length=200)]
UseTools = Annotated[bool, Query()]


@router.get("/tasks", tags=["Info"], summary="List the debugging tasks")
async def tasks() -> StrictJSONResponse:
    infos = await run_in_threadpool(list_tasks)
    return StrictJSONResponse({"tasks": [t.model_dump(mode="json") for t in infos]})


@router.get("/tools", tags=["Info"], summary="List the debugging tools with their schemas")
async def tools() -> StrictJSONResponse:
    return StrictJSONResponse({"tools": tool_list()})


@router.post("/grader", tags=["Grading"], summary="Grade a code submission by running it")
async def grader(server: Server, body: GraderRequest) -> StrictJSONResponse:
    task = load_task(body.task_id, seed=body.seed)
    from ..grading import grade_code

    result = await run_in_threadpool(grade_code, task, body.code, server.sessions.sandbox)
    server.metrics.grade()
    return StrictJSONResponse(
        {"task_id": task.info.id, "score": result.score, "details": result.details}
    )


@router.get("/baseline", tags=["Baseline"], summary="Run the baseline agent on every task")
async def baseline(
    server: Server, model_id: ModelId = None, use_tools: UseTools = True
) -> StrictJSONResponse:
    try:
        from ..agent import run_baseline
    except ImportError as exc:
        return _agent_missing(exc)
    try:
        result = await run_in_threadpool(
            lambda: run_baseline(
                model=model_id, use_tools=use_tools, env_factory=server.sessions.new_env
            )
        )
    except Exception as exc:
        return _agent_failed(exc)
    return StrictJSONResponse(result)


@router.get(
    "/baseline/task/{task_id}",
    tags=["Baseline"],
    summary="Run the baseline agent on one task, with details",
)
async def baseline_task(
    server: Server,
    task_id: Annotated[str, Path(max_length=200)],
    model_id: ModelId = None,
    use_tools: UseTools = True,
) -> StrictJSONResponse:
    load_task(task_id)
    try:
        from ..agent import run_baseline_task
    except ImportError as exc:
        return _agent_missing(exc)
    try:
        result = await run_in_threadpool(
            lambda: run_baseline_task(
                task_id, model=model_id, use_tools=use_tools, env_factory=server.sessions.new_env
            )
        )
    except Exception as exc:
        return _agent_failed(exc)
    return StrictJSONResponse(result)


@router.get("/metrics", tags=["Health"], summary="Runtime metrics")
async def metrics(server: Server) -> StrictJSONResponse:
    data = server.metrics.snapshot()
    data["active_sessions"] = server.sessions.counts()["active"]
    return StrictJSONResponse(data)


def _agent_missing(exc: ImportError) -> StrictJSONResponse:
    return error_response(501, f"The baseline agent is not available in this installation: {exc}")


def _agent_failed(exc: Exception) -> StrictJSONResponse:
    log.warning("baseline agent failed: %s", exc)
    return error_response(502, f"The baseline agent failed: {type(exc).__name__}: {exc}")
