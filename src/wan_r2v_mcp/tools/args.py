"""Tools whose arguments are a pydantic model: the model is the published schema and the validator.

The SDK validates arguments against the function signature before the body runs, with pydantic's
own wording. For model-backed tools the signature is deliberately lenient, and the model validates
inside the tool, so every refusal names the field, the limit and the fix (`parse`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.tools import Tool
from mcp.types import CallToolResult, ToolAnnotations
from pydantic import BaseModel, ValidationError

from ..errors import InputError, InputErrors

M = TypeVar("M", bound=BaseModel)


def model_tool(fn: Callable[..., Any], model: type[BaseModel], output: type[BaseModel], *, name: str, title: str,
               description: str, annotations: ToolAnnotations, first: tuple[str, ...] = ()) -> Tool:
    """A Tool whose input schema is `model`'s and whose body receives the raw arguments.

    `fn` is `async def fn(ctx: Context, **arguments)`; `first` orders the schema's leading properties.
    """
    params = [inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=Context)]
    for field_name, info in model.model_fields.items():
        lenient = str if info.annotation is str else Any  # str stays str so JSON-looking text is not parsed
        default = inspect.Parameter.empty if info.is_required() else None
        params.append(inspect.Parameter(field_name, inspect.Parameter.KEYWORD_ONLY, annotation=lenient, default=default))
    fn.__signature__ = inspect.Signature(params, return_annotation=Annotated[CallToolResult, output])  # type: ignore[attr-defined]
    tool = Tool.from_function(fn, name=name, title=title, description=description, annotations=annotations)
    schema = model.model_json_schema()
    schema.pop("title", None)
    schema.pop("description", None)
    props = schema["properties"]
    schema["properties"] = {k: props[k] for k in (*first, *[p for p in props if p not in first])}
    tool.parameters = schema
    return tool


def parse(model: type[M], arguments: dict[str, Any]) -> M:
    """Validate tool arguments, turning pydantic's errors into ours (field, limit, fix)."""
    given = {k: v for k, v in arguments.items() if v is not None}
    try:
        return model.model_validate(given)
    except ValidationError as exc:
        raise InputErrors([_explain(model, e) for e in exc.errors(include_url=False)]) from None


def _field_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f"[\"{part}\"]" if out and " " in str(part) else
                                                          (f".{part}" if out else str(part)))
    return out or "arguments"


def _explain(model: type[BaseModel], err: Any) -> InputError:
    kind, ctx, value = err["type"], err.get("ctx") or {}, err.get("input")
    field = _field_path(tuple(err["loc"]))
    info = model.model_fields.get(str(err["loc"][0])) if err["loc"] else None
    shown = repr(value) if not isinstance(value, str) or len(value) <= 40 else f"{len(value)} characters"
    if kind == "string_too_long":
        return InputError(f"is {len(value)} characters", field=field, limit=f"at most {ctx['max_length']} characters",
                          fix="shorten it")
    if kind == "string_too_short":
        return InputError("is empty", field=field, limit=f"at least {ctx['min_length']} character",
                          fix="describe the video, naming references as \"Image 1\", \"Video 1\"")
    if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        lo = _bound(info, "ge")
        hi = _bound(info, "le")
        limit = f"{lo} to {hi}" if lo is not None and hi is not None else err["msg"].lower()
        return InputError(f"is {shown}", field=field, limit=limit, fix=f"use a value from {limit}")
    if kind == "literal_error":
        options = ctx.get("expected", "")
        return InputError(f"{shown} is not an accepted value", field=field, limit=f"one of {options}",
                          fix=f"use one of {options}")
    if kind == "missing":
        return InputError("is required", field=field, fix=f"pass {field}" + (f": {info.description}" if info and info.description else ""))
    if kind == "extra_forbidden":
        known = ", ".join(model.model_fields)
        return InputError("is not an argument of this tool", field=field, fix=f"remove it; the arguments are {known}")
    expected = {"int_parsing": "a whole number", "int_type": "a whole number", "int_from_float": "a whole number",
                "bool_parsing": "true or false", "bool_type": "true or false", "string_type": "a string",
                "list_type": "a list of strings", "dict_type": "an object mapping labels to files",
                "float_parsing": "a number", "float_type": "a number"}.get(kind)
    if expected:
        return InputError(f"is {shown}, not {expected}", field=field, fix=f"pass {expected}")
    return InputError(f"{err['msg']} (got {shown})", field=field, fix="correct this argument")


def _bound(info: Any, name: str) -> Any:
    for meta in getattr(info, "metadata", []) or []:
        if hasattr(meta, name):
            return getattr(meta, name)
    return None
