"""Build the MCP server: tools, resources and the lifespan that owns the ledger and the runner."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

import anyio
from mcp.server.mcpserver import MCPServer

if TYPE_CHECKING:
    from anyio.abc import TaskGroup
    from mcp.server.auth.settings import AuthSettings

from . import __version__
from .access import CallerVerifier, current_caller
from .app import AppState, Starting
from .config import Settings
from .errors import LedgerUnavailable, R2VError
from .models import r2v

log = logging.getLogger(__name__)

INSTRUCTIONS = """\
Wan 2.7 reference-to-video. Call generate_r2v with 1-5 reference images/videos and a prompt that names \
them "Image 1", "Video 1" (numbered per type, in list order); it checks the files and the prompt before \
anything is paid (list_references is an optional look first) and waits up to 50 s with progress. If the \
task is still running, call get_task(task_id, wait_seconds=50) until it ends: a 3-minute job takes four \
calls. The video is then on disk at local_path (over HTTP: download_url). provider="preview" is a free \
offline draft, not the model. save_character keeps a character for reuse as @name; generate_sequence makes \
several shots joined into one video; stitch joins finished ones. generate_t2v makes a video from a prompt \
alone (no references), to explore a look first; generate_i2v animates one image or continues a clip; edit_video restyles a finished clip."""


PLAYER = "ui://wan-r2v/player"
PLAYER_TOOLS = ("generate_r2v", "generate_t2v", "generate_i2v", "edit_video", "get_task", "generate_sequence", "stitch")


def _player(settings: Settings, tools: list):  # -> mcp.server.apps.Apps
    """The MCP Apps view (SEP-1865) that plays a finished video in the conversation, bound to the task tools. The
    text result stands alone in clients without apps; this is an enhancement for those that have them."""
    from mcp.server.apps import Apps, ResourceCsp

    apps = Apps()
    from .providers import result_origins

    origins = result_origins()  # where the hosts serve finished videos, from their records
    if settings.public_url:  # over HTTP the view plays this server's own signed download_url
        parsed = urlparse(settings.public_url)
        origins.append(f"{parsed.scheme}://{parsed.netloc}")
    apps.add_html_resource(PLAYER, (Path(__file__).parent / "assets" / "player.html").read_text(encoding="utf-8"),
                           name="player", title="Video player", prefers_border=True,
                           description="Plays a finished generation, with its prompt, references and shots.",
                           csp=ResourceCsp(resource_domains=origins))
    for tool in tools:
        if tool.name in PLAYER_TOOLS:
            tool.meta = {**(tool.meta or {}), "ui": {"resourceUri": PLAYER}}
    return apps


def _icon():  # -> mcp.types.Icon
    """The server's icon for clients that show one (a 128 px PNG, about 1.5 KB as a data URI)."""
    import base64

    from mcp.types import Icon

    data = (Path(__file__).parent / "assets" / "icon-128.png").read_bytes()
    return Icon(src=f"data:image/png;base64,{base64.b64encode(data).decode()}", mime_type="image/png",
                sizes=["128x128"])


def build_server(settings: Settings | None = None) -> MCPServer:
    settings = settings or Settings()
    logging.getLogger("httpx").setLevel(logging.WARNING)  # its INFO lines carry full URLs
    current: list[Starting] = []  # for resources, which get no Context when static

    async def running() -> AppState:
        """The state, for a resource or a route; ResourceError (with the reason) when the ledger could not open."""
        from mcp.server.mcpserver.exceptions import ResourceError

        try:
            return await current[-1].ready()
        except LedgerUnavailable as exc:
            raise ResourceError(exc.tool_message()) from None

    async def make(starting: Starting, tg: TaskGroup) -> None:
        """Open the ledger and start the runner (taking up unfinished tasks), its code imported off the event loop so
        that `initialize` is answered meanwhile."""
        await anyio.to_thread.run_sync(_import_the_runner)
        from .delivery import Signer
        from .jobs.runner import Runner
        from .store import open_store

        try:
            ledger = open_store(settings.data, settings.database_url.get_secret_value() if settings.database_url
                                else None)
        except Exception as exc:  # noqa: BLE001 - whatever the database or the file says, it is said to every call
            error = _ledger_unavailable(settings, exc)
            log.error("%s", error.tool_message())
            starting.failed(error)
            return
        try:
            runner = Runner(settings, ledger, tg)
            await anyio.to_thread.run_sync(runner.providers.warm, _configured(settings))
            resumed = runner.start()
        except BaseException:
            ledger.close()
            raise
        if resumed:
            log.info("taking up %d unfinished task(s) again", resumed)
        starting.made(AppState(settings, ledger, runner, Signer(settings, ledger)))

    @asynccontextmanager
    async def lifespan(_: MCPServer) -> AsyncIterator[Starting]:
        starting = Starting()
        current.append(starting)
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(make, starting, tg)
                calm = False  # the server stops because its client left or it was told to, not interrupted
                try:
                    yield starting
                    calm = True
                finally:
                    app = starting.app
                    if calm and app is not None:  # a task answered before its create went out still reaches its host
                        from .jobs.submit import SEND_GRACE_SECONDS

                        with anyio.move_on_after(SEND_GRACE_SECONDS, shield=True):
                            await app.runner.all_sent()
                    tg.cancel_scope.cancel()
                    if app is not None:
                        with anyio.CancelScope(shield=True):
                            await app.runner.aclose()
        finally:
            current.remove(starting)
            if starting.app is not None:
                starting.app.ledger.close()

    from .tools import cast, generate, references, sequences, tasks
    from .tools.schema_cache import kept_in
    from .tools.shape import without_server_paths

    verifier, auth = _auth(settings)
    with kept_in(settings.data.tool_schemas):  # made once for this code, read at each start after
        tools = [*generate.tools(_configured(settings)), references.tool(), *tasks.tools(), *cast.tools(),
                 *sequences.tools()]
    apps = _player(settings, tools)
    server = MCPServer(
        name="wan-r2v-mcp",
        title="Wan 2.7 reference-to-video",
        version=__version__,
        instructions=INSTRUCTIONS,
        website_url="https://github.com/wan-r2v-mcp/wan-r2v-mcp",
        icons=[_icon()],
        lifespan=lifespan,
        tools=tools,
        extensions=[apps],
        token_verifier=verifier,
        auth=auth,
    )

    @server.resource("r2v://tasks/{task_id}", name="task", title="A generation task", mime_type="application/json",
                     description="The task view of one generation, as get_task returns it.")
    async def task_resource(task_id: str) -> str:
        from mcp.server.mcpserver.exceptions import ResourceNotFoundError

        try:
            app = await running()
            view = app.runner.view(task_id, current_caller())
            return (without_server_paths(view) if app.settings.remote else view).model_dump_json(indent=2)
        except R2VError as exc:
            raise ResourceNotFoundError(exc.tool_message()) from None

    @server.resource("r2v://tasks/{task_id}/video", name="task-video", title="A generation's video",
                     mime_type="video/mp4", description="The finished MP4 of one generation, when it is small enough "
                     "to send inline (WAN_R2V_RESOURCE_MAX_BYTES); otherwise use the task's download_url or local_path.")
    async def video_resource(task_id: str) -> bytes:
        from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError

        app = await running()
        try:
            view = app.runner.view(task_id, current_caller())
        except R2VError as exc:
            raise ResourceNotFoundError(exc.tool_message()) from None
        path = Path(view.local_path) if view.local_path else None
        if path is None or not path.is_file():
            raise ResourceNotFoundError(f"task {task_id} has no video yet ({view.status}: {view.stage}); "
                                        f"get_task(task_id, wait_seconds=50) waits for it")
        size = path.stat().st_size
        if size > app.settings.resource_max_bytes:
            raise ResourceError(f"the video is {size:,} bytes, over the {app.settings.resource_max_bytes:,}-byte cap "
                                "for reading it inline; fetch the task's download_url (over HTTP) or open its "
                                "local_path instead")
        return await anyio.Path(path).read_bytes()

    @server.resource("r2v://tasks", name="tasks", title="Recent generation tasks", mime_type="application/json",
                     description="The caller's 50 newest tasks, newest first.")
    async def tasks_resource() -> str:
        app = await running()
        views, total = app.runner.list(50, None, current_caller())
        if app.settings.remote:
            views = [without_server_paths(v) for v in views]
        return json.dumps({"total": total, "tasks": [v.model_dump(mode="json") for v in views]}, indent=2)

    @server.resource("r2v://characters", name="characters", title="Saved characters", mime_type="application/json",
                     description="The caller's saved characters (save_character), as list_characters returns them.")
    async def characters_resource() -> str:
        from .tools.cast import character_view

        cast = (await running()).runner.cast
        views = [character_view(cast, c).model_dump(mode="json") for c in cast.list(current_caller())]
        return json.dumps({"characters": views}, indent=2)

    @server.custom_route("/health", methods=["GET"], include_in_schema=False)
    async def health(_request):  # noqa: ANN001 - a Starlette request
        from starlette.responses import JSONResponse

        failure = current[-1].failure if current else None
        if failure is not None:  # a load balancer takes this replica out; each call says why (this asks no token)
            return JSONResponse({"status": "unavailable", "error": failure.code, "version": __version__},
                                status_code=503)
        return JSONResponse({"status": "ok", "version": __version__})

    @server.custom_route("/videos/{name}", methods=["GET", "HEAD"], include_in_schema=False)
    async def video_file(request):  # noqa: ANN001 - a Starlette request
        from .delivery import serve_file

        if current[-1].failure is not None:
            from starlette.responses import PlainTextResponse

            return PlainTextResponse("the server's task ledger is unavailable", status_code=503)
        app = await current[-1].ready()
        return await serve_file(request, app.signer, app.runner.saved)

    # An explicit description: Python 3.13 strips docstring indentation at compile time (What's New in 3.13), so a
    # docstring would read differently there than on 3.10-3.12.
    @server.prompt(name=r2v.BRIEF_NAME, title=r2v.BRIEF_TITLE, description=r2v.BRIEF_DESCRIPTION)
    def r2v_prompt(scene: str = "", images: str = "1", videos: str = "0", shots: str = "1",
                   duration: str = "5") -> str:
        return r2v.brief(scene, images, videos, shots, duration)

    return server


def _ledger_unavailable(settings: Settings, exc: Exception) -> LedgerUnavailable:
    from .errors import redact

    detail = redact(f"{type(exc).__name__}: {exc}".strip())
    if settings.database_url:
        url = settings.database_url.get_secret_value()
        detail = detail.replace(url, "WAN_R2V_DATABASE_URL")
        password = urlparse(url).password
        if password:
            detail = detail.replace(password, "***")
        return LedgerUnavailable(f"the task ledger could not be opened: the database at WAN_R2V_DATABASE_URL did "
                                 f"not let this server in ({detail[:300]})",
                                 fix="check that PostgreSQL is running and that the URL's host, port, user, password "
                                     "and database are right, then restart the server")
    return LedgerUnavailable(f"the task ledger {settings.data.ledger} could not be opened ({detail[:300]})",
                             fix="check that the data folder (WAN_R2V_DATA_DIR) is writable and on a local disk; move a "
                                 "damaged ledger file aside, then restart the server")


def _import_the_runner() -> None:
    import importlib

    for name in ("jobs.runner", "delivery", "store"):
        importlib.import_module(f"{__package__}.{name}")


def _configured(settings: Settings) -> list[str]:
    """The providers with a key here (the default first), then the preview; a caller may still bring its own key."""
    from .providers import api_key, default_provider, keyed

    names = [default_provider(settings)] + [n for n in keyed() if api_key(settings, n)] + ["preview"]
    return list(dict.fromkeys(names))


def _auth(settings: Settings) -> tuple[CallerVerifier | None, AuthSettings | None]:
    """Bearer tokens and OAuth, when configured: the SDK then refuses any HTTP request without a valid token (401
    with the WWW-Authenticate header the MCP authorization spec asks for)."""
    if not (settings.callers or settings.oauth_issuer):
        return None, None
    from mcp.server.auth.settings import AuthSettings

    public = (settings.public_url or "http://127.0.0.1:8000").rstrip("/")
    oauth = bool(settings.oauth_issuer)
    return CallerVerifier(settings), AuthSettings(
        issuer_url=settings.oauth_issuer or public,
        resource_server_url=f"{public}/mcp" if oauth else None,  # protected-resource metadata, for OAuth clients
        required_scopes=(settings.oauth_scopes or "").split() or None,
        validate_token_resource=False,  # the verifier checks the audience itself
    )


def http_app(settings: Settings, host: str = "127.0.0.1"):  # -> Starlette
    """The streamable HTTP app, safe by default: with no tokens and no OAuth it serves loopback only; on any
    other address the Host and Origin checks stay on, and request bodies are capped."""
    from mcp.server.transport_security import TransportSecuritySettings

    from .http_guard import HostGuard

    loopback = host in ("127.0.0.1", "localhost", "::1")
    if not loopback and not (settings.callers or settings.oauth_issuer):
        raise ValueError(f"refusing to serve on {host} with no caller identities: set WAN_R2V_HTTP_TOKENS (or "
                         "WAN_R2V_OAUTH_ISSUER), or serve on 127.0.0.1")
    public_host = urlparse(settings.public_url).netloc if settings.public_url else ""
    hosts = [h.strip() for h in (settings.allowed_hosts or "").split(",") if h.strip()] or [
        h for h in (public_host, "127.0.0.1:*", "localhost:*", "[::1]:*") if h]
    origins = [o.strip() for o in (settings.allowed_origins or "").split(",") if o.strip()] or [
        o for o in ((f"{urlparse(settings.public_url).scheme}://{public_host}" if public_host else ""),
                    "http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*") if o]
    # The SDK's own check compares by prefix (a Host of "127.0.0.1:8000@evil.example" passes "127.0.0.1:*"):
    # HostGuard parses and compares whole, on every route, in its place.
    security = TransportSecuritySettings(enable_dns_rebinding_protection=False)
    server = build_server(settings.model_copy(update={"remote": True}))
    # Replicas on one database: no session ties a client to the replica that opened it, so a load balancer may send
    # each request anywhere (a handshake-era client's second call would otherwise get 404 "Session not found").
    # Progress still streams on each call's own response; nothing here needs a back-channel to the client.
    app = server.streamable_http_app(transport_security=security, host=host,
                                     max_request_body_size=settings.max_body_bytes,
                                     stateless_http=settings.database_url is not None)
    app.add_middleware(HostGuard, hosts=hosts, origins=origins, embeddable=("/videos/",))
    return app
