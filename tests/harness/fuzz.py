"""Fuzz soak: every tool called with inputs drawn from its published schema, and with inputs beyond it.

Run it (a few minutes at the default):

    .venv/bin/python tests/harness/fuzz.py --examples 200

For each tool in `tools/list`, hypothesis-jsonschema draws arguments that satisfy the tool's input schema;
then arguments of the right names with values of any JSON type, and unknown names. Each call goes through an
in-process MCP client to a server with the offline preview (a wait cap of 0.2 s: a valid generate is answered
soon, its render left to run; no network: a name that is not loopback does not resolve here). It counts the
unhandled errors: a result without our `[code]` words (the SDK's bare "Error executing tool ..."), or a call
that raised. Must be 0.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import socket
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import anyio

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from mcp import Client  # noqa: E402

from wan_r2v_mcp.config import Settings  # noqa: E402
from wan_r2v_mcp.server import build_server  # noqa: E402

LOOPBACK = ("127.0.0.1", "::1", "localhost")


@dataclass
class Figures:
    calls: int = 0
    refused: int = 0  # answered with our [code] words
    answered: int = 0  # a normal result
    unhandled: int = 0  # must be 0
    by_tool: dict[str, int] = field(default_factory=dict)
    samples: list[str] = field(default_factory=list)  # the first few unhandled, to reproduce

    @property
    def ok(self) -> bool:
        return self.unhandled == 0 and self.calls > 0


@contextlib.contextmanager
def _offline() -> Iterator[None]:
    """While it runs, no address but loopback resolves: a fuzzed https URL is refused as unresolvable, never
    fetched."""
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in LOOPBACK:
            raise socket.gaierror(socket.EAI_NONAME, "the fuzz soak resolves loopback only")
        return real(host, *args, **kwargs)

    socket.getaddrinfo = getaddrinfo  # type: ignore[assignment]
    try:
        yield
    finally:
        socket.getaddrinfo = real  # type: ignore[assignment]


def _draw(schema: dict[str, Any], examples: int) -> list[dict[str, Any]]:
    """Arguments within the schema, then the schema's names with any JSON values, then unknown names."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
    from hypothesis_jsonschema import from_schema

    def nested(kids: Any) -> Any:
        return st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=10), kids, max_size=4)

    json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) |
                               st.text(max_size=60), nested, max_leaves=8)
    names = sorted((schema.get("properties") or {}).keys()) or ["x"]
    beyond = st.dictionaries(st.sampled_from(names) | st.text(max_size=12), json_values, max_size=6)
    drawn: list[dict[str, Any]] = []
    for strategy, count in ((from_schema(schema), examples), (beyond, examples)):
        @settings(max_examples=count, database=None, derandomize=True, deadline=None,
                  suppress_health_check=list(HealthCheck))
        @given(strategy)
        def collect(value: Any) -> None:
            drawn.append(value if isinstance(value, dict) else {"value": value})

        collect()
    return drawn


async def run(examples: int = 200, *, folder: Path | None = None) -> Figures:
    """Deterministic (hypothesis derandomized): the same examples every run, so a failure reproduces."""
    with _offline():
        return await _run(examples, folder)


async def _run(examples: int, folder: Path | None) -> Figures:
    root = folder or Path(tempfile.mkdtemp(prefix="r2v-fuzz-"))
    settings = Settings(data_dir=root / "data", output_dir=root / "out", allowed_dirs=str(root), wait_cap_seconds=0.2,
                        progress_interval_seconds=0.5, time_scale=0.05)
    figures = Figures()
    by_tool: Counter[str] = Counter()
    async with Client(build_server(settings)) as client:
        tools = (await client.list_tools()).tools
        for tool in tools:
            for args in _draw(tool.input_schema, examples):
                figures.calls += 1
                try:
                    with anyio.fail_after(30):
                        result = await client.call_tool(tool.name, args)
                except Exception as exc:  # a protocol error or a hang is unhandled too
                    words = f"raised {type(exc).__name__}: {exc}"
                else:
                    texts = " ".join(getattr(c, "text", "") for c in result.content)
                    if not result.is_error:
                        figures.answered += 1
                        await _cancel_what_it_started(client, result.structured_content)
                        continue
                    if "[" in texts and "] " in texts and "Traceback" not in texts:
                        figures.refused += 1
                        continue
                    words = texts
                figures.unhandled += 1
                by_tool[tool.name] += 1
                if len(figures.samples) < 10:
                    figures.samples.append(f"{tool.name}({json.dumps(args)[:300]}) -> {words[:300]}")
    figures.by_tool = dict(by_tool)
    return figures


async def _cancel_what_it_started(client: Client, answer: Any) -> None:
    """A valid generate starts preview renders (a task's, its takes', a sequence's shots'): each is canceled at once,
    and that answer scored too, so renders of drawn lengths and sizes do not pile up behind the calls; what is being
    checked is the answer, not the video."""
    for task_id in sorted(_unfinished_tasks(answer)):
        with anyio.fail_after(30):
            canceled = await client.call_tool("cancel_task", {"task_id": task_id})
        if canceled.is_error:
            raise AssertionError(f"cancelling {task_id}, which a call had just started: {canceled.content}")


def _unfinished_tasks(answer: Any) -> set[str]:
    """The ids of the unfinished tasks anywhere in an answer (a task, its takes, a sequence's shots)."""
    found: set[str] = set()
    if isinstance(answer, dict):
        if isinstance(answer.get("task_id"), str) and answer.get("status") in ("queued", "running"):
            found.add(answer["task_id"])
        answer = list(answer.values())
    if isinstance(answer, list):
        for value in answer:
            found |= _unfinished_tasks(value)
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=200, help="per tool, within the schema and beyond it each")
    args = parser.parse_args()
    logging.basicConfig(level=logging.CRITICAL)  # refusals are the point; the figures say what matters
    figures = anyio.run(run, args.examples)
    print(json.dumps({**asdict(figures), "ok": figures.ok}, indent=2))
    return 0 if figures.ok else 1


if __name__ == "__main__":
    sys.exit(main())
