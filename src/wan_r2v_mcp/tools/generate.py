"""The generate tools, one per model that has its own (`generate_r2v`, `generate_t2v`, `generate_i2v`, `edit_video`):
validate, label, record, submit, and optionally wait with progress. Each tool's name, words and arguments are its
model's spec's (`models/`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.tools import Tool
from mcp.types import CallToolResult, ToolAnnotations

from ..errors import R2VError
from ..models import known, spec
from ..models.base import ModelSpec
from ..schema import MODEL_ID
from .args import model_tool, parse
from .shape import client_roots, fail, owner, patience, state, task_result

# Said in full by generate_r2v; a sibling tool's schema shows the rest (its type, bounds and default).
SHARED = {name: "" for name in ("provider", "negative_prompt", "resolution", "seed", "wait_seconds", "dry_run",
                                 "allow_duplicate", "prompt_extend", "watermark", "variants")}
ANNOTATIONS = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False,
                              open_world_hint=True)


def _handler(made: type[ModelSpec]) -> Callable[..., Awaitable[CallToolResult]]:
    async def generate(ctx: Context, **arguments: Any) -> CallToolResult:
        app = await state(ctx)
        waiting = patience(ctx)  # the wait counts from here: the checks are part of it
        try:
            args = parse(made.args, arguments, ctx)
            folders = app.settings.folders(await client_roots(ctx))
            view = await app.runner.generate(args, folders, waiting, owner=owner(ctx))  # type: ignore[arg-type]
        except R2VError as exc:
            raise fail(exc) from None
        return task_result(view, ctx, is_error=view.status == "failed")

    return generate


def tools(configured: list[str] | None = None) -> list[Tool]:
    """A tool per model with its own; `configured` names the providers this server can use right now, for the
    default model's `provider` description (the tool that says the shared arguments in full)."""
    made = []
    for name in known():
        model = spec(name)
        if model.tool is None:
            continue
        words, full = model.tool, name == MODEL_ID
        tool = model_tool(_handler(model), model.args, None, name=words.name, title=words.title,
                          description=words.summary, first=("prompt", *model.request_model.model_fields),
                          short=None if full else SHARED, annotations=ANNOTATIONS)
        if full and configured:
            tool.parameters["properties"]["provider"]["description"] = (
                f"Configured: {', '.join(configured)} (the first is the default).")
        made.append(tool)
    return made
