"""`generate_sequence`, `redo_shot` and `stitch`: stories of several shots joined into one video."""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.tools import Tool
from mcp.types import CallToolResult, ToolAnnotations

from ..errors import R2VError
from ..schema import PickTakeArgs, RedoShotArgs, SequenceArgs, StitchArgs
from .args import model_tool, parse
from .shape import fail, owner, patience, state, task_result

SEQUENCE = """\
A story: shots (each a generation; saved characters only, as @name, counting toward a shot's 5 references) \
joined into one MP4, made in turn where continuous. Its task_id (seq_...) serves get_task, \
cancel_task, redo_shot, pick_take."""


async def generate_sequence(ctx: Context, **arguments: Any) -> CallToolResult:
    app = await state(ctx)
    try:
        args = parse(SequenceArgs, arguments, ctx)
        view = await app.runner.sequence(args, patience(ctx), owner=owner(ctx))
    except R2VError as exc:
        raise fail(exc) from None
    return task_result(view, ctx, is_error=view.status == "failed")


async def redo_shot(ctx: Context, **arguments: Any) -> CallToolResult:
    app = await state(ctx)
    try:
        args = parse(RedoShotArgs, arguments, ctx)
        view = await app.runner.redo_shot(args.task_id, args.shot, args.prompt, args.seed, args.wait_seconds,
                                          patience(ctx), owner=owner(ctx))
    except R2VError as exc:
        raise fail(exc) from None
    return task_result(view, ctx)


async def pick_take(ctx: Context, **arguments: Any) -> CallToolResult:
    app = await state(ctx)
    try:
        args = parse(PickTakeArgs, arguments, ctx)
        view = await app.runner.pick_take(args.task_id, args.take, args.shot, patience(ctx), owner=owner(ctx))
    except R2VError as exc:
        raise fail(exc) from None
    return task_result(view, ctx, is_error=view.status == "failed")


async def stitch(ctx: Context, **arguments: Any) -> CallToolResult:
    app = await state(ctx)
    try:
        args = parse(StitchArgs, arguments, ctx)
        view = await app.runner.stitch(args.task_ids, patience(ctx), owner=owner(ctx))
    except R2VError as exc:
        raise fail(exc) from None
    return task_result(view, ctx, is_error=view.status == "failed")


def tools() -> list[Tool]:
    paid = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=True)
    return [
        model_tool(generate_sequence, SequenceArgs, None, name="generate_sequence", title="Make a story",
                   description=SEQUENCE, annotations=paid, first=("shots", "characters", "continuity"),
                   short={"provider": "As generate_r2v.", "wait_seconds": "", "dry_run": "", "negative_prompt": "",
                          "characters": "As generate_r2v.",
                          "seed": "For shots without their own."}),
        model_tool(redo_shot, RedoShotArgs, None, name="redo_shot", title="Redo a shot", short={"wait_seconds": ""},
                   description="Remake one shot of a sequence (new prompt or seed), keep the others, join again.", annotations=paid),
        model_tool(pick_take, PickTakeArgs, None, name="pick_take", title="Pick a take",
                   description="Choose a group's take (variants), or a sequence shot's; the sequence joins again.",
                   annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True,
                                               open_world_hint=False)),
        model_tool(stitch, StitchArgs, None, name="stitch", title="Join videos",
                   description="Join finished videos of one aspect ratio, in order, into one MP4.",
                   annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False,
                                               open_world_hint=False)),
    ]
