"""Tools whose arguments are a pydantic model: the model is the published schema and the validator.

The SDK validates arguments against the function signature before the body runs, with pydantic's
own wording. For model-backed tools the signature is deliberately lenient, and the model validates
inside the tool, so every refusal names the field, the limit and the fix (`parse`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Annotated, Any, TypeVar, get_args, get_origin

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase, FuncMetadata
from mcp.types import ToolAnnotations
from pydantic import BaseModel, ConfigDict, Field, ValidationError, WrapValidator, create_model

from ..errors import InputError, InputErrors
from . import schema_cache

M = TypeVar("M", bound=BaseModel)


def model_tool(fn: Callable[..., Any], model: type[BaseModel], output: type[BaseModel] | None, *, name: str, title: str,
               description: str, annotations: ToolAnnotations, first: tuple[str, ...] = (),
               short: dict[str, str] | None = None) -> Tool:
    """A Tool whose input schema is `model`'s and whose body receives the raw arguments.

    `fn` is `async def fn(ctx: Context, **arguments)`; `output` is the structured result's model (None: publish no
    output schema); `first` orders the schema's leading properties; `short`
    replaces descriptions that another tool already gives in full ("" drops one).
    """
    published = schema_cache.schema(name, lambda: {
        "input": _published(model, first, short), "output": compact_schema(output) if output is not None else None})
    tool = Tool(fn=fn, name=name, title=title, description=description, parameters=published["input"],
                is_async=True, context_kwarg="ctx", annotations=_lean_hints(annotations),
                # The structured result is a model's own dump, so it is published, not validated again per call.
                fn_metadata=FuncMetadata(arg_model=_lenient_arguments(name, model), output_schema=published["output"]))
    return tool


def _published(model: type[BaseModel], first: tuple[str, ...], short: dict[str, str] | None) -> dict[str, Any]:
    """The input schema a tool publishes: `model`'s, lean, its leading properties first."""
    # Unknown names are refused by `parse`, and additionalProperties breaks some clients' schema converters.
    schema = _inline(_lean(_without(model.model_json_schema(), ("additionalProperties", "title"))))
    schema.pop("description", None)
    for prop, text in (short or {}).items():
        for inner in schema["properties"][prop].get("items", {}).get("properties", {}).values():
            inner.pop("description", None)  # an item's fields are described where the whole is
        if text:
            schema["properties"][prop]["description"] = text
        else:  # said in full by a sibling tool, and plain from the schema itself
            schema["properties"][prop].pop("description", None)
    props = schema["properties"]
    schema["properties"] = {k: props[k] for k in (*first, *[p for p in props if p not in first])}
    return schema


@functools.cache
def _lenient_arguments(name: str, model: type[BaseModel]) -> type[ArgModelBase]:
    """What the SDK validates arguments against before the body runs: every field optional and of any type, so each
    refusal is `parse`'s, in our words. (Built here rather than from a signature: the SDK would also make, and we
    would throw away, a JSON schema of it and of the result.) Made once per tool in a process: it holds no state."""
    fields: dict[str, Any] = {}
    for field_name, info in model.model_fields.items():
        # str stays str to the SDK, so JSON-looking text is not parsed into an object; but any value passes here (a
        # wrap validator that never calls the str check), and `parse` refuses a wrong type in our own words.
        lenient = Annotated[str, WrapValidator(_as_given)] if info.annotation is str else Any
        if callable(getattr(BaseModel, field_name, None)):  # a name pydantic uses ("copy", "json"): as the SDK does
            fields[f"field_{field_name}"] = (lenient, Field(default=None, alias=field_name))
        else:
            fields[field_name] = (lenient, None)
    return create_model(f"{name}Arguments", __base__=_Lenient, **fields)


class _Lenient(ArgModelBase):
    """Its validator is built at the tool's first call, not at start-up."""

    model_config = ConfigDict(arbitrary_types_allowed=True, defer_build=True)


def _as_given(value: Any, _handler: Any) -> Any:
    return value


# What a client assumes of a tool that does not say (MCP spec, "Tool annotations"): saying it again costs bytes only.
_HINT_DEFAULTS = {"read_only_hint": False, "destructive_hint": True, "idempotent_hint": False, "open_world_hint": True}


def _lean_hints(annotations: ToolAnnotations) -> ToolAnnotations:
    values = annotations.model_dump(exclude_none=True)
    if values.get("read_only_hint"):  # the other hints are meaningless on a read-only tool
        values = {k: v for k, v in values.items() if k not in ("destructive_hint", "idempotent_hint")}
    return ToolAnnotations(**{k: v for k, v in values.items() if _HINT_DEFAULTS.get(k, object()) != v})


def _without(schema: Any, keys: tuple[str, ...]) -> Any:
    """A JSON schema without these keywords, at every level; a property that happens to bear such a name stays."""
    if isinstance(schema, list):
        return [_without(v, keys) for v in schema]
    if not isinstance(schema, dict):
        return schema
    out = {}
    for k, v in schema.items():
        if k in ("properties", "$defs"):
            out[k] = {name: _without(sub, keys) for name, sub in v.items()}
        elif k not in keys:
            out[k] = _without(v, keys)
    return out


def _lean(schema: Any) -> Any:
    """Fewer bytes, the same meaning for a client: an optional `X | None` defaulting to null is just `X` (leaving it
    out means null), `"default": null` and a boolean's `"default": false` say what leaving it out means anyway, and
    a nested model needs no description of its own."""
    if isinstance(schema, list):
        return [_lean(v) for v in schema]
    if not isinstance(schema, dict):
        return schema
    out = {}
    for k, v in schema.items():
        if k in ("properties", "$defs"):
            out[k] = {name: _lean(sub) for name, sub in v.items()}
        else:
            out[k] = _lean(v)
    options = out.get("anyOf")
    if isinstance(options, list) and len(options) == 2 and {"type": "null"} in options:
        # `X | None` is X that may be null: a strict client (which must send every field) sends null for "unset".
        other = next(o for o in options if o != {"type": "null"})
        del out["anyOf"]
        out = {**other, **out}
        if isinstance(other.get("type"), str):
            out["type"] = [other["type"], "null"]
        elif "enum" in other:
            out["enum"] = [*other["enum"], None]
    if "default" in out and (out["default"] is None or (out["default"] is False and out.get("type") == "boolean")):
        del out["default"]
    if "$defs" in out:
        for sub in out["$defs"].values():
            sub.pop("description", None)
    return out


def _inline(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with every `$ref` replaced by its definition and no `$defs`: strict converters (the OpenAI Agents
    SDK's on its MCP path) leave a schema with references non-strict."""
    defs = schema.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(v) for v in node]
        if not isinstance(node, dict):
            return node
        if "$ref" in node:
            target = walk(defs[node["$ref"].rsplit("/", 1)[-1]])
            return {**target, **{k: walk(v) for k, v in node.items() if k != "$ref"}}
        return {k: ({n: walk(sub) for n, sub in v.items()} if k == "properties" else walk(v)) for k, v in node.items()}

    return walk(schema)


@functools.cache  # one model's schema serves every tool that publishes it
def compact_schema(model: type[BaseModel]) -> dict[str, Any]:
    """An output schema that validates the same results in a fraction of the size: the required fields with their
    types (or those of them the model lists in `published`); the others are allowed as they are (no
    additionalProperties), and no descriptions (the tool's description and text explain them). Each field's schema is
    made alone: the model's whole schema (and its validator, built only when first used) is not needed for it."""
    fields = model.model_fields
    required = [k for k, f in fields.items() if f.is_required() and k in getattr(model, "published", fields)]
    return {"type": "object", "properties": {k: _field_schema(fields[k].annotation) for k in required},
            "required": required}


def _field_schema(annotation: Any) -> dict[str, Any]:
    """One field's type and enum, no more: a model is an object (its own schema is not made), a union says nothing."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return {"type": "object"}
    if get_origin(annotation) is list and (inner := get_args(annotation)):
        return {"type": "array", "items": _field_schema(inner[0])}
    from pydantic import TypeAdapter

    prop = TypeAdapter(annotation).json_schema()
    if "anyOf" in prop:
        return {}
    out = {k: prop[k] for k in ("type", "enum") if k in prop}
    if "const" in prop:
        out["enum"] = [prop["const"]]
    return out


# Names agents reach for, and the arguments each one may mean (the first the tool has is suggested).
ALIASES: dict[str, tuple[str, ...]] = {
    "aspect": ("aspect_ratio",), "ratio": ("aspect_ratio",), "length": ("duration",), "seconds": ("duration",),
    "negative": ("negative_prompt",), "images": ("reference_images",), "ref_images": ("reference_images",),
    "image": ("reference_images", "reference"), "videos": ("reference_videos", "task_ids"),
    "ref_videos": ("reference_videos",), "video": ("reference_videos", "reference"), "file": ("reference",),
    "voice": ("voices",), "audio": ("voices", "voice"), "first_image": ("first_frame",), "start_frame": ("first_frame",),
    "wait": ("wait_seconds",), "timeout": ("wait_seconds",), "id": ("task_id",), "task": ("task_id",),
    "tasks": ("task_ids",), "clips": ("task_ids",), "host": ("provider",),
    "quality": ("resolution",), "size": ("resolution",), "folder": ("directory",), "path": ("directory", "reference"),
    "dir": ("directory",), "count": ("limit",), "shots": ("shot_type",), "scenes": ("shots",),
    "cast": ("characters",), "names": ("characters",), "character": ("characters", "name"), "overwrite": ("replace",),
}


_FILES_OF_A_GENERATION = ("reference_images", "reference_videos", "first_frame", "voices")


def parse(model: type[M], arguments: dict[str, Any], ctx: Context | None = None) -> M:
    """Validate tool arguments, turning pydantic's errors into ours (field, limit, fix). With `ctx`, argument names
    the tool does not have are refused too (the SDK drops them before the tool sees them), naming the closest."""
    problems = _unknown_names(model, ctx) if ctx is not None else []
    given = _unset(model, arguments)
    if isinstance(given.get("resolution"), str):
        given["resolution"] = given["resolution"].strip().lower()  # "1080P", as DashScope writes it
    try:
        parsed = model.model_validate(given)
    except ValidationError as exc:
        problems += [_explain(model, e) for e in exc.errors(include_url=False)]
        parsed = None
    if problems or parsed is None:
        raise InputErrors(problems)
    return parsed


def _unset(model: type[BaseModel], arguments: dict[str, Any]) -> dict[str, Any]:
    """What a strict client sends for "not set" means not set: null for any optional field (nested ones too), and ""
    for an optional one whose default is none (a voice, a first frame)."""
    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items() if v is not None}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    given = {}
    for name, value in arguments.items():
        info = model.model_fields.get(name)
        if value is None or (value == "" and info is not None and not info.is_required() and info.default is None):
            continue
        given[name] = clean(value)
    return given


def _unknown_names(model: type[BaseModel], ctx: Context) -> list[InputError]:
    import difflib

    params = getattr(ctx.request_context, "params", None) or {}
    raw = params.get("arguments") or {}
    tool = params.get("name") or "this tool"
    known = list(model.model_fields)
    problems = []
    for name in raw:
        if name in known:
            continue
        if tool in ("generate_sequence", "redo_shot") and name in _FILES_OF_A_GENERATION:
            problems.append(InputError(
                f"is not an argument of {tool}: a sequence's shots take saved characters only", field=str(name),
                fix="save each file with save_character(name, reference, voice), then write @name in the shots' "
                    "prompts and list the names in characters"))
            continue
        guess = next((a for a in ALIASES.get(str(name).lower(), ()) if a in known), None)
        guess = guess or next(iter(difflib.get_close_matches(str(name), known, n=1, cutoff=0.6)), None)
        nothing = " Nothing was submitted" if tool == "generate_r2v" else ""
        problems.append(InputError(
            f"is not an argument of {tool}" + (f"; did you mean {guess}?" if guess else "") + nothing,
            field=str(name)[:60], fix=f"use {guess}" if guess else
            (f"the arguments are {', '.join(known)}" if known else f"{tool} takes no arguments")))
    return problems


def _field_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f"[\"{part}\"]" if out and " " in str(part) else
                                                          (f".{part}" if out else str(part)))
    return out or "arguments"


def _explain(model: type[BaseModel], err: Any) -> InputError:
    kind, ctx, value = err["type"], err.get("ctx") or {}, err.get("input")
    field = _field_path(tuple(err["loc"]))
    owner, info = _located(model, tuple(err["loc"]))
    shown = repr(value) if not isinstance(value, str) or len(value) <= 40 else f"{len(value)} characters"
    if kind == "string_too_long":
        return InputError(f"is {len(value)} characters", field=field, limit=f"at most {ctx['max_length']} characters",
                          fix="shorten it")
    if kind == "string_too_short":
        fix = "describe the video, naming references as \"Image 1\", \"Video 1\"" if field.endswith("prompt") else \
            "give a value"
        return InputError("is empty", field=field, limit=f"at least {ctx['min_length']} character", fix=fix)
    if kind in ("too_short", "too_long"):
        count = len(value) if isinstance(value, (list, dict)) else "?"
        bound = f"at least {ctx.get('min_length')}" if kind == "too_short" else f"at most {ctx.get('max_length')}"
        fix = "add one" if kind == "too_short" else "keep fewer" + (
            "; split a longer story into sequences and stitch them" if field == "shots" else "")
        return InputError(f"has {count} item{'s' if count != 1 else ''}", field=field, limit=bound, fix=fix)
    if kind in ("greater_than_equal", "greater_than") and field.endswith("seed") and value == -1:
        return InputError("is -1", field=field, limit=f"0 to {_bound(info, 'le')}",
                          fix="leave seed out for a random one")
    if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        lo = _bound(info, "ge")
        hi = _bound(info, "le")
        if lo is not None and hi is not None:
            limit, fix = f"{lo} to {hi}", f"use a value from {lo} to {hi}"
        elif lo is not None:
            limit, fix = f"at least {lo}", f"use {lo} or more"
        elif hi is not None:
            limit, fix = f"at most {hi}", f"use {hi} or less"
        else:
            limit, fix = err["msg"].lower(), "correct this argument"
        return InputError(f"is {shown}", field=field, limit=limit, fix=fix)
    if kind == "literal_error":
        options = ctx.get("expected", "")
        return InputError(f"{shown} is not an accepted value", field=field, limit=f"one of {options}",
                          fix=f"use one of {options}")
    if kind == "missing":
        return InputError("is required", field=field, fix=f"pass {field}" + (f": {info.description}" if info and info.description else ""))
    if kind == "extra_forbidden":
        known = ", ".join(owner.model_fields)
        what = "an argument of this tool" if owner is model else f"a field of {owner.__name__.lower()}"
        return InputError(f"is not {what}", field=field, fix=f"remove it; the fields are {known}" if owner is not model
                          else f"remove it; the arguments are {known}")
    expected = {"int_parsing": "a whole number", "int_type": "a whole number", "int_from_float": "a whole number",
                "bool_parsing": "true or false", "bool_type": "true or false", "string_type": "a string",
                "list_type": _list_of(info), "dict_type": "an object mapping labels to files",
                "float_parsing": "a number", "float_type": "a number"}.get(kind)
    if expected:
        return InputError(f"is {shown}, not {expected}", field=field, fix=f"pass {expected}")
    return InputError(f"{err['msg']} (got {shown})", field=field, fix="correct this argument")


def _located(model: type[BaseModel], loc: tuple[Any, ...]) -> tuple[type[BaseModel], Any]:
    """The model that holds the field an error is about (a shot, within a sequence's shots), and that field."""
    import typing

    owner, info = model, None
    for part in loc:
        if isinstance(part, int):
            continue
        info = owner.model_fields.get(str(part))
        if info is None:
            break
        nested = [a for a in typing.get_args(info.annotation) or (info.annotation,)
                  if isinstance(a, type) and issubclass(a, BaseModel)]
        if nested and part != loc[-1]:
            owner = nested[0]
    return owner, info


def _list_of(info: Any) -> str:
    import typing

    items = [a for a in typing.get_args(getattr(info, "annotation", None)) if isinstance(a, type)]
    if items and issubclass(items[0], BaseModel):
        fields = list(items[0].model_fields)
        return f"a list of objects with {', '.join(fields)}"
    return "a list of strings"


def _bound(info: Any, name: str) -> Any:
    for meta in getattr(info, "metadata", []) or []:
        if hasattr(meta, name):
            return getattr(meta, name)
    return None
