"""`generate_r2v` and `generate_t2v`: validate, label, record, submit, and optionally wait with progress."""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.tools import Tool
from mcp.types import CallToolResult, ToolAnnotations

from ..errors import R2VError
from ..schema import GenerateArgs, R2VRequest, T2VArgs, T2VRequest, TaskView
from .args import model_tool, parse
from .shape import client_roots, fail, owner, patience, state, task_result

DESCRIPTION = """\
Wan 2.7 reference-to-video: a video from 1-5 reference images/videos (or saved characters) and a prompt \
naming them. Paid per output second; provider="preview" is a free offline draft. Jobs take 1-5 \
minutes: this waits up to wait_seconds with progress; then call get_task(task_id, wait_seconds=50) until \
done; the video lands on disk."""


T2V = """\
Wan 2.7 text-to-video: a video from a prompt alone (optionally following an audio track), to explore a look \
before references exist; to keep a character, use generate_r2v. Paid per output second; provider="preview" is a \
free offline title card. Waits as generate_r2v does."""


async def generate_r2v(ctx: Context, **arguments: Any) -> CallToolResult:
    return await _generate(ctx, GenerateArgs, arguments)


async def generate_t2v(ctx: Context, **arguments: Any) -> CallToolResult:
    return await _generate(ctx, T2VArgs, arguments)


async def _generate(ctx: Context, model: type[GenerateArgs] | type[T2VArgs], arguments: dict[str, Any]
                    ) -> CallToolResult:
    app = state(ctx)
    try:
        args = parse(model, arguments, ctx)
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


def t2v_tool() -> Tool:
    same = "As generate_r2v."
    return model_tool(
        generate_t2v, T2VArgs, TaskView, name="generate_t2v", title="Generate a video from a prompt",
        description=T2V, first=("prompt", *T2VRequest.model_fields),
        short={name: same for name in ("negative_prompt", "resolution", "seed", "provider", "wait_seconds", "dry_run",
                                       "allow_duplicate")},
        annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False,
                                    open_world_hint=True),
    )
