"""`get_task`, `cancel_task` and `list_tasks`: following what `generate_r2v` started."""

from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import Context
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import Field

from ..errors import R2VError
from ..schema import Status, TaskList, TaskView
from .shape import fail, owner, state, task_result

TaskId = Annotated[str, Field(description="The task_id that generate_r2v returned.", min_length=1, max_length=100)]

READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=True)


async def get_task(
    task_id: TaskId,
    ctx: Context,
    wait_seconds: Annotated[float, Field(
        ge=0, description="Wait server-side up to this long (capped, 50 s by default) for the task to end, "
        "sending progress; 0 answers at once.")] = 0,
) -> Annotated[CallToolResult, TaskView]:
    """The state of a generation: status, progress, and when done the video's local_path. With wait_seconds it
    waits for the end (one call instead of many polls). Tasks survive server restarts."""
    app = state(ctx)
    try:
        view = await app.runner.wait(task_id, wait_seconds, ctx.report_progress, owner=owner(ctx))
    except R2VError as exc:
        raise fail(exc) from None
    return task_result(view, ctx)


async def cancel_task(task_id: TaskId, ctx: Context) -> Annotated[CallToolResult, TaskView]:
    """Cancel a queued or running generation at its host. Cancelling a finished task changes nothing."""
    app = state(ctx)
    try:
        view = await app.runner.cancel(task_id, owner=owner(ctx))
    except R2VError as exc:
        raise fail(exc) from None
    return task_result(view, ctx)


async def list_tasks(
    ctx: Context,
    limit: Annotated[int, Field(ge=1, le=100, description="How many of the newest tasks to return.")] = 20,
    status: Annotated[Status | None, Field(description="Only tasks in this status.")] = None,
) -> Annotated[CallToolResult, TaskList]:
    """Recent generations, newest first, with their status and local files; kept across restarts."""
    app = state(ctx)
    views, total = app.runner.list(limit, status, owner=owner(ctx))
    if views:
        lines = [f"{len(views)} of {total} task(s), newest first:"]
        for v in views:
            where = f" -> {v.local_path}" if v.local_path else ""
            lines.append(f"- {v.task_id} [{v.status}] {v.provider}, {v.created_at}: {v.request.prompt[:60]!r}{where}")
        text = "\n".join(lines)
    else:
        text = "No tasks yet." if not status else f"No {status} tasks."
    result = TaskList(tasks=views, total=total)
    return CallToolResult(content=[TextContent(type="text", text=text)],
                          structured_content=result.model_dump(mode="json"))


TOOLS = [
    (get_task, "Get a generation's status", READ_ONLY),
    (cancel_task, "Cancel a generation",
     ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=True)),
    (list_tasks, "List recent generations", READ_ONLY),
]
