"""`save_character`, `list_characters` and `delete_character`: a cast kept by name, used as @name in prompts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.tools import Tool
from mcp.types import CallToolResult, ImageContent, TextContent, ToolAnnotations

from ..errors import NotFoundError, R2VError
from ..schema import CharacterList, CharacterRef, CharacterView, ListCharactersArgs, SaveCharacterArgs
from .args import model_tool, parse
from .shape import client_roots, fail, owner, state

if TYPE_CHECKING:
    from ..cast.roster import Cast, Character


def character_view(cast: Cast, c: Character) -> CharacterView:
    from ..jobs.results import iso

    thumb = cast.path(c.thumbnail)
    return CharacterView(
        name=c.name, kind=c.kind, format=c.format, size_bytes=c.size_bytes, width=c.width, height=c.height,  # type: ignore[arg-type]
        duration_seconds=c.seconds, voice=c.voice is not None, voice_seconds=c.voice_seconds,
        description=c.description, thumbnail_path=str(thumb) if thumb and thumb.is_file() else None,
        created_at=iso(c.created_at) or "", last_used_at=iso(c.last_used_at), uses=c.uses)


def _line(v: CharacterView) -> str:
    shape = f"{v.kind} {v.width}x{v.height}" + (f", {v.duration_seconds:g} s" if v.duration_seconds else "")
    voice = f", voice {v.voice_seconds:g} s" if v.voice else ", no voice"
    used = f", used {v.uses}x (last {v.last_used_at})" if v.uses else ", not used yet"
    note = f" - {v.description}" if v.description else ""
    return f"@{v.name}: {shape}{voice}{used}{note}"


def _thumbnail(path: str | None) -> ImageContent | None:
    import base64

    if not path:
        return None
    try:
        with open(path, "rb") as fh:
            return ImageContent(type="image", data=base64.b64encode(fh.read()).decode(), mime_type="image/jpeg")
    except OSError:
        return None


async def save_character(ctx: Context, **arguments: Any) -> CallToolResult:
    app = await state(ctx)
    try:
        args = parse(SaveCharacterArgs, arguments, ctx)
        folders = app.settings.folders(await client_roots(ctx))
        cast = app.runner.cast
        from ..cast.save import save_character as save

        character, replaced = await save(cast, owner(ctx), args, folders, app.settings.data.root)
    except R2VError as exc:
        raise fail(exc) from None
    view = character_view(cast, character)
    text = (f"{'Replaced' if replaced else 'Saved'} character @{view.name} ({_line(view).split(': ', 1)[1]}). The "
            f"server keeps its own copy. Use it with generate_r2v(characters=[\"{view.name}\"], prompt=\"@{view.name} "
            "...\") or in generate_sequence.")
    content: list[TextContent | ImageContent] = [TextContent(type="text", text=text)]
    if (thumb := _thumbnail(view.thumbnail_path)) is not None:
        content.append(thumb)
    return CallToolResult(content=content, structured_content=view.model_dump(mode="json"))


async def list_characters(ctx: Context, **arguments: Any) -> CallToolResult:
    app = await state(ctx)
    try:
        args = parse(ListCharactersArgs, arguments, ctx)
    except R2VError as exc:
        raise fail(exc) from None
    cast = app.runner.cast
    views = [character_view(cast, c) for c in cast.list(owner(ctx))[:args.limit]]
    if views:
        text = f"{len(views)} character(s); name them @name in a prompt and list them in characters:\n" + \
            "\n".join(f"- {_line(v)}" for v in views)
    else:
        text = "No characters yet: save_character(name, reference, voice=None) keeps one."
    content: list[TextContent | ImageContent] = [TextContent(type="text", text=text)]
    for v in views[:10]:  # thumbnails of the first ten: enough to recognise them, small enough for any client
        if (thumb := _thumbnail(v.thumbnail_path)) is not None:
            content.append(thumb)
    return CallToolResult(content=content, structured_content=CharacterList(characters=views).model_dump(mode="json"))


async def delete_character(ctx: Context, **arguments: Any) -> CallToolResult:
    app = await state(ctx)
    try:
        args = parse(CharacterRef, arguments, ctx)
        gone = app.runner.cast.delete(owner(ctx), args.name.strip().removeprefix("@"))
        if gone is None:
            names = ", ".join(c.name for c in app.runner.cast.list(owner(ctx))[:20]) or "none"
            raise NotFoundError(f"no character is named '{args.name}'", field="name", limit=f"saved: {names}",
                                fix="list_characters shows the cast")
    except R2VError as exc:
        raise fail(exc) from None
    view = character_view(app.runner.cast, gone)
    return CallToolResult(content=[TextContent(type="text", text=f"Deleted character @{gone.name}. Tasks already "
                                               "made with it keep their videos.")],
                          structured_content=view.model_dump(mode="json"))


def tools() -> list[Tool]:
    write = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=False)
    return [
        model_tool(save_character, SaveCharacterArgs, CharacterView, name="save_character", title="Save a character",
                   description="Keep a character (an image or clip, and a voice) by name for reuse: prompts write "
                   "@name and pass characters=[name].",
                   annotations=write),
        model_tool(list_characters, ListCharactersArgs, CharacterList, name="list_characters", title="Saved characters",
                   description="Saved characters, with thumbnails.",
                   annotations=ToolAnnotations(read_only_hint=True, open_world_hint=False)),
        model_tool(delete_character, CharacterRef, None, name="delete_character", title="Delete a character",
                   description="Forget a saved character and its files.",
                   annotations=ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True,
                                               open_world_hint=False)),
    ]
