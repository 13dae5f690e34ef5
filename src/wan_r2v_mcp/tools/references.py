"""`list_references`: how each reference will be named, whether it is acceptable, and what a folder holds."""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.tools import Tool
from mcp.types import CallToolResult, TextContent, ToolAnnotations

from ..errors import R2VError
from ..schema import ReferenceQuery, ReferenceReport
from .args import model_tool, parse
from .shape import client_roots, fail, state

DESCRIPTION = """\
Check references before generating: each one's label ("Image 1"...), kind, size, length, whether it is \
taken, and prompt findings; or list a folder's media files."""


async def list_references(ctx: Context, **arguments: Any) -> CallToolResult:
    app = await state(ctx)
    try:
        query = parse(ReferenceQuery, arguments, ctx)
        folders = app.settings.folders(await client_roots(ctx))
        from ..references.report import build_report  # the media probes, imported at the first look

        report = await build_report(query, app.settings.data.root, folders)
    except R2VError as exc:
        raise fail(exc) from None
    return CallToolResult(content=[TextContent(type="text", text=_text(report))],
                          structured_content=report.model_dump(mode="json"))


def _text(report: ReferenceReport) -> str:
    lines = []
    for ref in report.references:
        facts = ", ".join(x for x in (
            ref.format, f"{ref.width}x{ref.height}" if ref.width else None,
            f"{ref.duration_seconds:g} s" if ref.duration_seconds else None) if x)
        verdict = "ok" if ref.ok else "NOT OK: " + " ".join(ref.problems)
        lines.append(f"{ref.label}: {ref.source} ({ref.kind}{', ' + facts if facts else ''}) - {verdict}")
    lines += [f"Problem: {p}" for p in report.problems]
    lines += [f"Prompt {f.severity}: {f.message}. Fix: {f.fix}." for f in report.prompt_findings
              if f.severity == "warning"]
    if report.directory is not None:
        lines.append(f"{len(report.candidates)} media file(s) in {report.directory}"
                     + (f" ({report.more} more not listed)" if report.more else "") + ":")
        for ref in report.candidates:
            lines.append(f"- {ref.source} ({ref.kind}, {ref.format or '?'}) {'ok' if ref.ok else 'NOT OK: ' + ' '.join(ref.problems)}")
    if report.billable_input_seconds:
        lines.append(f"Billable reference-video seconds: {report.billable_input_seconds:g} (plus the output duration).")
    if report.references:
        lines.insert(0, "All references are acceptable." if report.ok else "Some references need fixing:")
    return "\n".join(lines) or "Nothing to check: pass references, a prompt, or a directory."


def tool() -> Tool:
    return model_tool(
        list_references, ReferenceQuery, ReferenceReport, name="list_references", title="Check references",
        description=DESCRIPTION, first=("reference_images", "reference_videos", "first_frame", "voices", "prompt"),
        short={"reference_images": "As generate_r2v.", "reference_videos": "As generate_r2v.",
               "first_frame": "As generate_r2v.", "voices": "As generate_r2v."},
        annotations=ToolAnnotations(read_only_hint=True, open_world_hint=True),
    )
