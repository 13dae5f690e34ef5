"""The `list_references` report: labels and verdicts for what was given, and a folder's media files."""

from __future__ import annotations

from pathlib import Path

import anyio

from ..models.r2v import R2V
from ..schema import ReferenceQuery, ReferenceReport
from .folder import list_folder
from .folders import Folders
from .intake import examine


async def build_report(query: ReferenceQuery, data_dir: Path, folders: Folders) -> ReferenceReport:
    """Probing reads files (and, when asked, URLs): done off the event loop."""
    report = ReferenceReport(ok=True)
    given = bool(query.reference_images or query.reference_videos or query.first_frame or query.voices)
    if given or query.prompt:
        intake = await anyio.to_thread.run_sync(
            lambda: examine(query, query.prompt, data_dir, folders, require_references=given))
        try:
            if query.probe_urls:
                from .remote import probe_remote

                await probe_remote(intake)
            report.references = intake.views
            report.prompt_findings = intake.findings
            report.ok = not intake.all_errors
            report.problems = [e.tool_message() for e in intake.errors]
            report.billable_input_seconds = R2V.billable_input_seconds(
                [r.media.duration_seconds if r.media else None for r in intake.references
                 if r.role == "reference_video"])
        finally:
            intake.close()
            intake.discard_inline()  # a check keeps nothing
    if query.directory is not None:
        report.directory, report.candidates, report.more = await anyio.to_thread.run_sync(
            list_folder, query.directory, query.limit, folders)
    return report
