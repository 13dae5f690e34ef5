"""`generate_r2v`: validate, label, record, submit, and optionally wait with progress."""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.tools import Tool
from mcp.types import CallToolResult, ToolAnnotations

from ..errors import R2VError
from ..schema import GenerateArgs, R2VRequest, TaskView
from .args import model_tool, parse
from .shape import client_roots, fail, owner, patience, state, task_result

DESCRIPTION = """\
Wan 2.7 reference-to-video: a video from 1-5 reference images/videos (or saved characters) and a prompt \
naming them. Paid per output second; provider="preview" is a free offline draft. Jobs take 1-5 \
minutes: this waits up to wait_seconds with progress; then call get_task(task_id, wait_seconds=50) until \
done; the video lands on disk."""


async def generate_r2v(ctx: Context, **arguments: Any) -> CallToolResult:
    app = state(ctx)
    try:
        args = parse(GenerateArgs, arguments, ctx)
        folders = app.settings.folders(await client_roots(ctx))
        view = await app.runner.generate(args, folders, patience(ctx), owner=owner(ctx))
    except R2VError as exc:
        raise fail(exc) from None
    return task_result(view, ctx, is_error=view.status == "failed")


def tool(configured: list[str] | None = None) -> Tool:
    """The tool; `configured` names the providers this server can use right now, for the `provider` description."""
    made = model_tool(
        generate_r2v, GenerateArgs, TaskView, name="generate_r2v", title="Generate a video from references",
        description=DESCRIPTION, first=("prompt", *R2VRequest.model_fields),
        annotations=ToolAnnotations(read_only_hint=False,
                                    destructive_hint=False, idempotent_hint=False, open_world_hint=True),
    )
    if configured:
        made.parameters["properties"]["provider"]["description"] = (
            f"Configured: {', '.join(configured)} (the first is the default).")
    return made
