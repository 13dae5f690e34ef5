"""What a client receives: structured content, a short text for older clients, a link to the file."""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, ImageContent, ResourceLink, TextContent

from ..app import AppState, Starting
from ..errors import R2VError
from ..schema import TaskView


async def state(ctx: Context) -> AppState:
    """The running server's state, as the lifespan made it (`server.build_server`): a call that comes while the
    server is still starting waits for it."""
    starting: Starting = ctx.request_context.lifespan_context
    try:
        return await starting.ready()
    except R2VError as exc:  # the ledger could not be opened: said to every call
        raise fail(exc) from None


def made(ctx: Context) -> AppState:
    """The state, in what a tool calls after `state`."""
    app = ctx.request_context.lifespan_context.app
    assert app is not None, "made(ctx) before state(ctx)"
    return app


def owner(ctx: Context) -> str:
    """Who is calling (the token's caller over HTTP, "" on stdio); the host keys its request carries are kept for it."""
    from ..access import current_caller

    caller = current_caller()
    made(ctx).runner.providers.keys.remember(caller, getattr(ctx.request_context, "request", None))
    return caller


def patience(ctx: Context):  # -> jobs.runner.Patience
    """How long this call may wait. A client that sent a progress token listens to progress (the SDKs reset their
    timeouts on it when asked to; Claude Code shows it), so it may wait up to the cap. One that sent none may give up
    after a few seconds (openai-agents' default is 5 s; the TypeScript SDK's 60 s does not reset unless asked), so it
    is answered within WAN_R2V_QUIET_WAIT: more calls, but none that times out unanswered."""
    from ..jobs.runner import Patience

    settings = made(ctx).settings
    if listens_to_progress(ctx):
        return Patience(ctx.report_progress, settings.wait_cap_seconds)
    return Patience(None, min(settings.wait_cap_seconds, settings.quiet_wait_seconds))


def listens_to_progress(ctx: Context) -> bool:
    """Whether the caller asked for progress on this request: a `_meta.progressToken`, or, where the SDK has already
    taken it off the request, the request's outbound channel holding a token or (in-process) a callback. The names
    are the `mcp` 2.3 SDK's three channels (JSON-RPC, the 2026 HTTP entry, the direct in-process dispatcher)."""
    request = ctx.request_context
    params = getattr(request, "params", None)
    meta = params.get("_meta") if isinstance(params, dict) else None
    if isinstance(meta, dict) and meta.get("progressToken") is not None:
        return True
    outbound = getattr(getattr(request, "session", None), "_request_outbound", None)
    for _ in range(3):  # a wrapper (the 2026 era's context without server requests) holds the channel inside
        if any(getattr(outbound, name, None) is not None for name in ("_progress_token", "progress_token",
                                                                       "_on_progress")):
            return True
        outbound = getattr(outbound, "_inner", None)
    return False


async def client_roots(ctx: Context) -> list[Path]:
    """The folders the client offers as roots, when it offers any (legacy-era sessions with the roots capability)."""
    import warnings
    from urllib.parse import unquote, urlparse

    import anyio

    caps = getattr(ctx, "client_capabilities", None)
    if caps is None or getattr(caps, "roots", None) is None:
        return []
    try:
        with warnings.catch_warnings(), anyio.fail_after(3):
            warnings.simplefilter("ignore")  # roots are deprecated in the newest protocol era, still useful in older
            listed = await ctx.session.list_roots()
    except Exception:  # a client that declares roots but cannot list them: go on without
        return []
    return [Path(unquote(urlparse(str(r.uri)).path)) for r in listed.roots if str(r.uri).startswith("file://")]


def fail(exc: R2VError) -> ToolError:
    return ToolError(exc.tool_message())


def _sequence_text(view: TaskView) -> str:
    t, shots = view.task_id, view.shots or []
    if view.dry_run:
        cost = f"${view.cost_estimate_usd:.2f}" if view.cost_estimate_usd is not None else "unknown"
        lines = [f"Dry run of a {len(shots)}-shot sequence on {view.provider}: nothing uploaded or submitted. "
                 f"{view.request.duration} s in all, billable {view.billable_seconds:g} s, estimated cost {cost} for "
                 "the whole. Each shot's exact payload is in shot_payloads."]
        lines += [f"- Shot {s.shot} ({s.duration} s): {s.prompt}" for s in shots]
        return "\n".join(lines)
    states = "; ".join(f"shot {s.shot} {s.status}" for s in shots)
    cost = ""
    if view.cost_made_usd is not None:
        cost = f" Estimated cost ${view.cost_made_usd:.2f} for the takes made (redos included)"
        cost += f", ${view.cost_planned_usd:.2f} more planned." if view.cost_planned_usd else "."
    elif view.cost_estimate_usd is not None:
        cost = f" Estimated cost ${view.cost_estimate_usd:.2f}."
    if view.status == "succeeded":
        what = "videos stitched" if view.stitched else "shots joined"
        text = (f"Sequence {t} succeeded on {view.provider}: {len(shots)} {what} into one video "
                f"({_what(view)}) saved to {view.local_path or 'the server'}.")
        if view.download_url:
            text += f" Download it (this link expires): {view.download_url}."
        text += cost
        if not view.stitched:
            text += " redo_shot(task_id, shot=N) remakes one shot and joins again."
        if view.contact_sheet_path:
            text += (f" Contact sheet (the takes side by side): {view.contact_sheet_path}. pick_take(task_id, shot=N, "
                     "take=K) makes a shot use another take.")
    elif view.status == "failed":
        err = view.error
        text = f"Sequence {t} stopped" + (f" [{err.code}]: {err.message} Hint: {err.hint}" if err else ".")
        text += f" Shots: {states}.{cost}"
    elif view.status == "canceled":
        text = f"Sequence {t} was canceled. Shots: {states}."
    else:
        pct = f" ({view.progress:.0%})" if view.progress is not None else ""
        text = (f"Sequence {t} is running on {view.provider}{pct}: {view.stage}. Shots: {states}.{cost} Call "
                f"get_task(task_id=\"{t}\", wait_seconds=50) now: it waits with progress.")
    if view.warnings:
        text += " Warnings: " + " ".join(view.warnings)
    if view.notice and view.status not in ("failed", "canceled"):
        text += f" Note: {view.notice}"
    return text


def _what(view: TaskView) -> str:
    req = view.request
    if view.output:  # what really came back
        return f"{int(view.output['width'])}x{int(view.output['height'])}, {view.output['seconds']:g} s"
    return f"{req.width}x{req.height}, {req.duration} s"


def _takes_text(view: TaskView) -> str:
    t, takes = view.task_id, view.takes or []
    cost = f"${view.cost_estimate_usd:.2f}" if view.cost_estimate_usd is not None else "unknown"
    listed = "; ".join(f"take {k.take} (seed {k.seed}) {k.status}" + (f" ${k.cost_estimate_usd:.2f}" if
                       k.cost_estimate_usd is not None else "") + (", picked" if k.picked else "") for k in takes)
    if view.dry_run:
        return (f"Dry run of {len(takes)} takes on {view.provider}: nothing uploaded or submitted. Estimated cost "
                f"{cost} for all of them; each take's payload is in shot_payloads. Takes: {listed}.")
    if view.status == "succeeded":
        text = (f"Group {t} succeeded on {view.provider}: takes {listed}. The picked take's video ({_what(view)}) is "
                f"the group's, saved to {view.local_path or 'the server'}.")
        if view.download_url:
            text += f" Download it (this link expires): {view.download_url}."
        if view.contact_sheet_path:
            text += f" Contact sheet (the takes side by side): {view.contact_sheet_path}."
        text += f" Estimated cost {cost}. pick_take(task_id, take=N) makes another take the group's video."
    elif view.status in ("failed", "canceled"):
        err = view.error
        text = f"Group {t} {view.status}" + (f" [{err.code}]: {err.message}" if err else "") + f". Takes: {listed}."
    else:
        text = (f"Group {t} is running on {view.provider}: {view.stage}. Takes: {listed}. Estimated cost {cost}. "
                f"Call get_task(task_id=\"{t}\", wait_seconds=50) now: it waits for every take with progress.")
    if view.duplicate:
        text = ("An identical request was already made, so its group is returned instead of paying again "
                "(pass allow_duplicate=true to generate anew). " + text)
    if view.warnings:
        text += " Prompt warnings: " + " ".join(view.warnings)
    return text


def summary(view: TaskView) -> str:
    if view.takes is not None:
        return _takes_text(view)
    if view.shots is not None:
        return _sequence_text(view)
    t = view.task_id
    req = view.request
    what = _what(view)
    if not view.output and any(r.role == "first_frame" for r in view.references):
        what = f"{req.duration} s, shaped like the first frame (aspect_ratio does not apply)"
    if view.dry_run:
        refs = ", ".join(f"{r.label} = {r.source}" for r in view.references) or "none"
        cost = f"${view.cost_estimate_usd:.2f}" if view.cost_estimate_usd is not None else "unknown"
        text = (f"Dry run on {view.provider}: nothing uploaded or submitted. References: {refs}. Output {what}. "
                f"Billable {view.billable_seconds:g} s, estimated cost {cost}. The exact payload is in `payload`.")
    elif view.status == "succeeded":
        text = f"Task {t} succeeded on {view.provider}: video ({what}) saved to {view.local_path or 'the server'}."
        if view.download_url:
            text += f" Download it (this link expires): {view.download_url}."
        if view.poster_path:
            text += f" Poster frame: {view.poster_path}."
        if view.cost_estimate_usd is not None:
            text += f" Billable {view.billable_seconds:g} s, estimated cost ${view.cost_estimate_usd:.2f}."
    elif view.status == "failed":
        err = view.error
        text = f"Task {t} failed on {view.provider}" + (f" [{err.code}]: {err.message} Hint: {err.hint}" if err else ".")
    elif view.status == "canceled":
        text = f"Task {t} was canceled" + (f" ({view.stage})." if view.stage != "canceled" else ".")
    else:
        pct = f" ({view.progress:.0%})" if view.progress is not None else ""
        left = f" About {view.estimated_seconds_left:.0f} s left (an estimate)." if view.estimated_seconds_left else ""
        text = (f"Task {t} is {view.status} on {view.provider}: {view.stage}{pct}.{left} Call "
                f"get_task(task_id=\"{t}\", wait_seconds=50) now: it waits for the end with progress, and "
                "nothing is lost if you call it later.")
    if view.request.characters:
        cast = ", ".join(f"@{n} = {label}" for n, label in view.request.characters.items())
        text += f" Characters: {cast}; the prompt as sent: \"{view.request.prompt}\"."
    if view.duplicate:
        text = ("An identical request was already made, so its task is returned instead of paying again "
                "(pass allow_duplicate=true to generate anew). " + text)
    if view.warnings:
        text += " Prompt warnings: " + " ".join(view.warnings)
    if view.notice and view.status not in ("failed", "canceled"):
        text += f" Note: {view.notice}"
    return text


def without_server_paths(view: TaskView) -> TaskView:
    """The view a remote caller gets: the server's own paths are no business of a caller on another machine (it has
    download_url, poster_url and the r2v://tasks/{id}/video resource instead)."""
    shots = [s.model_copy(update={"local_path": None}) for s in view.shots] if view.shots is not None else None
    takes = [t.model_copy(update={"local_path": None}) for t in view.takes] if view.takes is not None else None
    return view.model_copy(update={"local_path": None, "poster_path": None, "sidecar_path": None, "shots": shots,
                                   "takes": takes, "contact_sheet_path": None})


def delivered(view: TaskView, ctx: Context) -> TaskView:
    """Over HTTP, a finished task's video and poster as signed URLs of this server, for this caller only, and no
    server paths."""
    request = getattr(ctx.request_context, "request", None)
    if request is None:
        return view
    if not view.local_path:
        return without_server_paths(view)
    from ..access import current_caller

    app = made(ctx)
    base = app.settings.public_url or str(request.base_url)
    caller = current_caller()
    video = app.signer.url(base, caller, view.task_id, "mp4")[0]
    poster = app.signer.url(base, caller, view.task_id, "jpg")[0] if view.poster_path else None
    return without_server_paths(view.model_copy(update={"download_url": video, "poster_url": poster}))


def task_result(view: TaskView, ctx: Context | None = None, *, is_error: bool = False, lead: str = "") -> CallToolResult:
    local, poster, sheet = view.local_path, view.poster_path, view.contact_sheet_path
    if ctx is not None:
        view = delivered(view, ctx)
    content: list[TextContent | ResourceLink | ImageContent] = [TextContent(type="text", text=lead + summary(view))]
    size = _size(local)
    if local and size is not None:
        content.append(ResourceLink(type="resource_link", uri=f"r2v://tasks/{view.task_id}/video",
                                    name=Path(local).name, title=f"Video of task {view.task_id}", mime_type="video/mp4",
                                    size=size))
        thumbnail = _thumbnail(poster)
        if thumbnail is not None:
            content.append(ImageContent(type="image", data=thumbnail, mime_type="image/jpeg"))
    if sheet and Path(sheet).is_file():  # the takes side by side, whole (at most 1 MB): to compare, not a thumbnail
        import base64

        content.append(ImageContent(type="image", data=base64.b64encode(Path(sheet).read_bytes()).decode(),
                                    mime_type="image/jpeg"))
    return CallToolResult(content=content, structured_content=view.model_dump(mode="json"), is_error=is_error)


def _size(path: str | None) -> int | None:
    """A file's size, None when there is none (one stat)."""
    try:
        return os.stat(path).st_size if path else None
    except OSError:
        return None


_THUMBNAILS: OrderedDict[tuple[str, int, int], str] = OrderedDict()  # (poster, mtime, size) -> base64 JPEG
_THUMBNAILS_KEPT = 512


def _thumbnail(poster: str | None) -> str | None:
    """The poster, at most 320 px wide, as base64 JPEG: small enough to show inline in any client. A saved poster
    never changes, so each is made once (a get_task over HTTP spent most of its time re-making it)."""
    if not poster:
        return None
    import base64
    import io
    import os

    try:
        st = os.stat(poster)
    except OSError:
        return None
    key = (poster, st.st_mtime_ns, st.st_size)
    if (hit := _THUMBNAILS.get(key)) is not None:
        _THUMBNAILS.move_to_end(key)
        return hit
    from PIL import Image

    try:
        with Image.open(poster) as im:
            im.thumbnail((320, 320))
            out = io.BytesIO()
            im.convert("RGB").save(out, format="JPEG", quality=70)
    except OSError:
        return None
    made = base64.b64encode(out.getvalue()).decode()
    _THUMBNAILS[key] = made
    while len(_THUMBNAILS) > _THUMBNAILS_KEPT:
        _THUMBNAILS.popitem(last=False)
    return made
