"""`generate_r2v`, `generate_t2v`, `generate_i2v` and `edit_video`: validate, label, record, submit, and optionally wait with progress."""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.tools import Tool
from mcp.types import CallToolResult, ToolAnnotations

from ..errors import R2VError
from ..schema import (
    EditArgs,
    EditRequest,
    GenerateArgs,
    I2VArgs,
    I2VRequest,
    R2VRequest,
    T2VArgs,
    T2VRequest,
)
from .args import model_tool, parse
from .shape import client_roots, fail, owner, patience, state, task_result

DESCRIPTION = """\
Wan 2.7 reference-to-video: a video of 1-5 reference images/videos (or saved characters) the prompt names. \
Paid per output second; provider="preview" is a free offline draft. Jobs take 1-5 min: this waits up to \
wait_seconds, then call get_task(task_id) until done; the video lands on disk."""


T2V = """\
Wan 2.7 text-to-video: a prompt alone (and optional audio), to explore a look before references \
exist; to keep a character, generate_r2v. Paid per second; provider="preview" is a free title card. As \
generate_r2v otherwise."""


I2V = """\
Wan 2.7 image-to-video: animate a first_frame (to a last_frame, or to driving_audio) or continue a first_clip, \
to lock a look or extend a shot; to keep characters, generate_r2v. Paid per second; \
provider="preview" is a free draft. As generate_r2v otherwise."""


EDIT = """\
Wan 2.7 video editing, the last stage: restyle or change one clip as the prompt says, optionally after \
reference images. Input and output seconds are paid; provider="preview" is free. As generate_r2v otherwise."""


async def generate_r2v(ctx: Context, **arguments: Any) -> CallToolResult:
    return await _generate(ctx, GenerateArgs, arguments)


async def generate_t2v(ctx: Context, **arguments: Any) -> CallToolResult:
    return await _generate(ctx, T2VArgs, arguments)


async def generate_i2v(ctx: Context, **arguments: Any) -> CallToolResult:
    return await _generate(ctx, I2VArgs, arguments)


async def edit_video(ctx: Context, **arguments: Any) -> CallToolResult:
    return await _generate(ctx, EditArgs, arguments)


async def _generate(ctx: Context, model: type[GenerateArgs] | type[T2VArgs] | type[I2VArgs] | type[EditArgs],
                    arguments: dict[str, Any]
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
        generate_r2v, GenerateArgs, None, name="generate_r2v", title="Reference to video",
        description=DESCRIPTION, first=("prompt", *R2VRequest.model_fields),
        annotations=ToolAnnotations(read_only_hint=False,
                                    destructive_hint=False, idempotent_hint=False, open_world_hint=True),
    )
    if configured:
        made.parameters["properties"]["provider"]["description"] = (
            f"Configured: {', '.join(configured)} (the first is the default).")
    return made


# Said in full by generate_r2v; a sibling tool's schema shows the rest (its type, bounds and default).
SHARED = {name: "" for name in ("provider", "negative_prompt", "resolution", "seed", "wait_seconds", "dry_run",
                                 "allow_duplicate", "prompt_extend", "watermark", "variants")}


def t2v_tool() -> Tool:
    return model_tool(
        generate_t2v, T2VArgs, None, name="generate_t2v", title="Text to video",
        description=T2V, first=("prompt", *T2VRequest.model_fields), short=SHARED,
        annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False,
                                    open_world_hint=True),
    )


def edit_tool() -> Tool:
    return model_tool(
        edit_video, EditArgs, None, name="edit_video", title="Edit a video",
        description=EDIT, first=("prompt", *EditRequest.model_fields), short=SHARED,
        annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False,
                                    open_world_hint=True),
    )


def i2v_tool() -> Tool:
    return model_tool(
        generate_i2v, I2VArgs, None, name="generate_i2v", title="Image to video",
        description=I2V, first=("prompt", *I2VRequest.model_fields), short=SHARED,
        annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False,
                                    open_world_hint=True),
    )
