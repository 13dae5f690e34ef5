"""Build the MCP server: tools, resources and the lifespan that owns the ledger and the runner."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import anyio
from mcp.server.mcpserver import MCPServer

from . import __version__
from .config import Settings
from .errors import R2VError
from .jobs.ledger import Ledger
from .jobs.runner import Runner

log = logging.getLogger(__name__)

INSTRUCTIONS = """\
Wan 2.7 reference-to-video. Workflow: (1) list_references with the files and the prompt to learn each \
reference's label ("Image 1", "Video 1": numbered per type, in list order) and to check the files; \
(2) generate_r2v with a prompt that names them; (3) get_task(task_id, wait_seconds=50) until it \
succeeds; the video is then on disk at local_path. provider="preview" is a free offline draft, not the model."""


@dataclass
class AppState:
    settings: Settings
    ledger: Ledger
    runner: Runner


def build_server(settings: Settings | None = None) -> MCPServer:
    settings = settings or Settings()
    logging.getLogger("httpx").setLevel(logging.WARNING)  # its INFO lines carry full URLs
    current: list[AppState] = []  # for resources, which get no Context when static

    @asynccontextmanager
    async def lifespan(_: MCPServer) -> AsyncIterator[AppState]:
        ledger = Ledger(settings.ledger_path)
        try:
            async with anyio.create_task_group() as tg:
                runner = Runner(settings, ledger, tg)
                resumed = runner.start()
                if resumed:
                    log.info("taking up %d unfinished task(s) again", resumed)
                app = AppState(settings, ledger, runner)
                current.append(app)
                try:
                    yield app
                finally:
                    current.remove(app)
                    tg.cancel_scope.cancel()
                    with anyio.CancelScope(shield=True):
                        await runner.aclose()
        finally:
            ledger.close()

    from .tools import generate, references, tasks

    server = MCPServer(
        name="wan-r2v-mcp",
        title="Wan 2.7 reference-to-video",
        version=__version__,
        instructions=INSTRUCTIONS,
        website_url="https://github.com/wan-r2v-mcp/wan-r2v-mcp",
        lifespan=lifespan,
        tools=[generate.tool(), references.tool()],
    )
    for fn, title, hints in tasks.TOOLS:
        server.add_tool(fn, title=title, annotations=hints)

    @server.resource("r2v://tasks/{task_id}", name="task", title="A generation task", mime_type="application/json",
                     description="The task view of one generation, as get_task returns it.")
    async def task_resource(task_id: str) -> str:
        from mcp.server.mcpserver.exceptions import ResourceNotFoundError

        app = current[-1]
        try:
            return app.runner.view(task_id).model_dump_json(indent=2)
        except R2VError as exc:
            raise ResourceNotFoundError(exc.tool_message()) from None

    @server.resource("r2v://tasks", name="tasks", title="Recent generation tasks", mime_type="application/json",
                     description="The 50 newest tasks, newest first.")
    async def tasks_resource() -> str:
        app = current[-1]
        views, total = app.runner.list(50, None)
        return json.dumps({"total": total, "tasks": [v.model_dump(mode="json") for v in views]}, indent=2)

    @server.prompt(name="r2v_prompt", title="Write a Wan 2.7 reference-to-video prompt")
    def r2v_prompt(scene: str, images: int = 1, videos: int = 0, shots: int = 1) -> str:
        """A brief for writing the generate_r2v prompt, with the exact labels the references will get."""
        return prompt_brief(scene, images, videos, shots)

    return server


def prompt_brief(scene: str, images: int, videos: int, shots: int) -> str:
    from .references.labels import reference_labels

    labels = reference_labels(max(images, 0), max(videos, 0))
    lines = [
        f"Write a prompt for generate_r2v (Wan 2.7 reference-to-video) for this scene: {scene}",
        f"The references will be named {', '.join(labels) if labels else '(none yet: add 1 to 5 images or videos)'}"
        " - images and videos are numbered separately, each in its own list's order.",
        "Name every reference by its label where it appears (e.g. \"Image 1 hands Video 1 a cup\"), describe "
        "the action, the camera and the light, and keep it under 5000 characters.",
    ]
    if shots > 1:
        lines.append(f"Split it into {shots} shots with time ranges, e.g. \"Shot 1 [0-3s]: ...\".")
    lines.append("Check the files and the labels with list_references before generating.")
    return "\n".join(lines)
