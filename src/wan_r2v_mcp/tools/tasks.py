"""`get_task`, `cancel_task` and `list_tasks`: following what `generate_r2v` started."""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.tools import Tool
from mcp.types import CallToolResult, TextContent, ToolAnnotations

from ..errors import R2VError
from ..schema import GetTaskArgs, ListTasksArgs, TaskList, TaskRef, TaskView
from .args import model_tool, parse
from .shape import fail, owner, patience, state, task_result, without_server_paths

READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=True)


async def get_task(ctx: Context, **arguments: Any) -> CallToolResult:
    app = await state(ctx)
    try:
        args = parse(GetTaskArgs, arguments, ctx)
        view = await app.runner.wait(args.task_id, args.wait_seconds, patience(ctx), owner=owner(ctx))
    except R2VError as exc:
        raise fail(exc) from None
    return task_result(view, ctx)


async def cancel_task(ctx: Context, **arguments: Any) -> CallToolResult:
    app = await state(ctx)
    try:
        args = parse(TaskRef, arguments, ctx)
        who = owner(ctx)
        ended = app.runner.view(args.task_id, who).status in ("succeeded", "failed", "canceled")
        view = await app.runner.cancel(args.task_id, patience(ctx), owner=who)
    except R2VError as exc:
        raise fail(exc) from None
    lead = f"Task {view.task_id} had already ended ({view.status}): there is nothing to cancel. " if ended else ""
    return task_result(view, ctx, lead=lead)


async def list_tasks(ctx: Context, **arguments: Any) -> CallToolResult:
    app = await state(ctx)
    try:
        args = parse(ListTasksArgs, arguments, ctx)
    except R2VError as exc:
        raise fail(exc) from None
    status = None if args.status == "all" else args.status
    views, total = app.runner.list(args.limit, status, owner=owner(ctx))
    if app.settings.remote:
        views = [without_server_paths(v) for v in views]
    if views:
        lines = [f"{len(views)} of {total} task(s), newest first:"]
        for v in views:
            where = f" -> {v.local_path}" if v.local_path else ""
            lines.append(f"- {v.task_id} [{v.status}] {v.provider}, {v.created_at}: {v.request.prompt[:60]!r}{where}")
        text = "\n".join(lines)
    else:
        text = "No tasks yet." if status is None else f"No {status} tasks."
    result = TaskList(tasks=views, total=total)
    return CallToolResult(content=[TextContent(type="text", text=text)],
                          structured_content=result.model_dump(mode="json"))


def tools() -> list[Tool]:
    return [
        model_tool(get_task, GetTaskArgs, TaskView, name="get_task", title="Task status",
                   description="A task's state, after waiting for its end; when done, its "
                   "video (local_path; over HTTP download_url).", annotations=READ_ONLY),
        model_tool(cancel_task, TaskRef, None, name="cancel_task", title="Cancel a task",
                   description="Cancel a task, group or sequence still running; a finished one stays.",
                   annotations=ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True,
                                               open_world_hint=True)),
        model_tool(list_tasks, ListTasksArgs, TaskList, name="list_tasks", title="Recent tasks",
                   description="Recent tasks, newest first.", annotations=READ_ONLY),
    ]
