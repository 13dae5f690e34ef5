"""The MCP Apps player in a real browser: headless Chromium loads the view the server serves, inside a small
stand-in for a host that speaks the view protocol (ui/initialize, tool-input, tool-result) and passes the
view's tools/call and resources/read on to the real server. The test reads the page's state, clicks its
buttons and keeps a screenshot of it playing."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import anyio
import pytest
from conftest import call, wire
from mcp import Client

from wan_r2v_mcp.server import PLAYER, build_server

pytestmark = pytest.mark.anyio

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

HOST_PAGE = """<!doctype html><meta charset="utf-8"><title>host stand-in</title>
<body style="margin:0"><iframe id="view" src="/view.html" sandbox="allow-scripts" style="width:720px;height:760px;border:0">
</iframe><script>
// A stand-in for an MCP Apps host (SEP-1865): answers the view's handshake, hands it the tool's input and result,
// and proxies its tools/call and resources/read to the server (through the test's /rpc).
window.hostLog = [];
const frame = document.getElementById("view");
const toView = (msg) => frame.contentWindow.postMessage(msg, "*");
window.addEventListener("message", async (event) => {
  const msg = event.data;
  if (!msg || msg.jsonrpc !== "2.0" || !msg.method) return;
  hostLog.push(msg.method);
  if (msg.method === "ui/initialize") {
    toView({jsonrpc: "2.0", id: msg.id, result: {protocolVersion: "2026-01-26", hostInfo: {name: "stand-in",
            version: "1"}, hostCapabilities: {serverTools: {}, serverResources: {}}, hostContext: {theme: "dark"}}});
  } else if (msg.method === "ui/notifications/initialized") {
    const call = await (await fetch("/call.json")).json();
    toView({jsonrpc: "2.0", method: "ui/notifications/tool-input", params: {arguments: call.arguments}});
    toView({jsonrpc: "2.0", method: "ui/notifications/tool-result", params: call.result});
  } else if (msg.method === "tools/call" || msg.method === "resources/read") {
    hostLog.push(msg.method === "tools/call" ? "call:" + msg.params.name : "read:" + msg.params.uri);
    const answer = await (await fetch("/rpc", {method: "POST", body: JSON.stringify(msg)})).json();
    toView({jsonrpc: "2.0", id: msg.id, ...answer});
  }
});
</script></body>"""


class Stand_in:
    """The host's web side on loopback: the page, the view the server serves, the call to show, and /rpc."""

    def __init__(self, view_html: str, call_json: dict, rpc):
        pages = {"/host.html": HOST_PAGE.encode(), "/view.html": view_html.encode()}
        self.call = call_json
        self.rpc = rpc

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _send(self, body: bytes, kind: str) -> None:
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):  # the page went away (a test that ended) first
                    pass

            def do_GET(self):  # noqa: N802 - http.server's name
                if self.path == "/call.json":
                    return self._send(json.dumps(outer.call).encode(), "application/json")
                body = pages.get(self.path)
                if body is None:
                    self.send_error(404)
                    return None
                return self._send(body, "text/html; charset=utf-8")

            def do_POST(self):  # noqa: N802
                message = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                self._send(json.dumps(rpc(message)).encode(), "application/json")

        outer = self
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/host.html"

    async def aclose(self) -> None:
        """Stop serving, and wait for the view's requests in flight (see `proxy`)."""
        self.server.shutdown()
        settled = getattr(self.rpc, "settled", None)
        if settled is not None:
            await settled()


def proxy(client: Client, wait_cap: float | None = None):
    """The host passing a view's request on to the server, from the stand-in's HTTP thread to this test's loop.
    `await rpc.settled()` refuses any further request and waits for those in flight, so the client is never closed
    under a request the view made (its late answer would land on a closed stream)."""
    token = anyio.lowlevel.current_token()
    flight = threading.Condition()
    state = {"open": 0, "closing": False}

    async def forward(message: dict) -> dict:
        params = message["params"]
        if message["method"] == "resources/read":
            return {"result": wire(await client.read_resource(params["uri"]))}
        args = dict(params["arguments"])
        if wait_cap is not None and "wait_seconds" in args:  # keep a follow loop short while the test clicks
            args["wait_seconds"] = min(args["wait_seconds"], wait_cap)
        return {"result": wire(await client.call_tool(params["name"], args))}

    def rpc(message: dict) -> dict:
        with flight:
            if state["closing"]:
                return {"error": {"code": -32603, "message": "the host's server is gone (the test is ending)"}}
            state["open"] += 1
        try:
            return anyio.from_thread.run(forward, message, token=token)
        except BaseException as exc:  # the test ended while the view still asked (a follow loop): answer, not crash
            return {"error": {"code": -32603, "message": f"the host's server is gone ({type(exc).__name__})"}}
        finally:
            with flight:
                state["open"] -= 1
                flight.notify_all()

    async def settled() -> None:
        def drained() -> None:
            with flight:
                state["closing"] = True
                flight.wait_for(lambda: state["open"] == 0, timeout=60)

        await anyio.to_thread.run_sync(drained)

    rpc.settled = settled
    return rpc


async def _chromium():
    from playwright.async_api import async_playwright

    manager = async_playwright()
    playwright = await manager.start()
    # The tests serve the "public" server on loopback, which Chromium's Local Network Access would refuse to a view
    # (an opaque origin) as it refuses a public page; a real deployment's WAN_R2V_PUBLIC_URL is not loopback.
    browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=[
        "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--autoplay-policy=no-user-gesture-required",
        "--disable-features=LocalNetworkAccessChecks,BlockInsecurePrivateNetworkRequests"])
    return manager, playwright, browser


@contextlib.asynccontextmanager
async def in_stand_in(client: Client, arguments: dict, result: dict, wait_cap: float | None = None,
                      viewport: dict | None = None):
    """The view the server serves, opened in Chromium behind the stand-in host showing this call and result;
    yields the host (its `call` may be changed), the page, the view's frame and a locator into it, and closes all
    of it after."""
    html = (await client.read_resource(PLAYER)).contents[0].text
    host = Stand_in(html, {"arguments": arguments, "result": result}, proxy(client, wait_cap))
    manager, playwright, browser = await _chromium()
    try:
        page = await browser.new_page(viewport=viewport or {"width": 740, "height": 780})
        await page.goto(host.url)
        yield host, page, page.frames[1], page.frame_locator("#view")
    finally:
        await browser.close()
        await manager.__aexit__(None, None, None)
        await host.aclose()


@pytest.mark.long
@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed here: .ci/tools.sh installs Debian's")
async def test_the_player_plays_the_video_shows_the_prompt_and_makes_it_again(settings, refs, tmp_path):
    async with Client(build_server(settings)) as client:
        await call(client, "save_character", {"name": "alice", "reference": str(refs["img1"])})
        arguments = {"prompt": "@alice waves at Video 1", "characters": ["alice"],
                     "reference_videos": [str(refs["vid1"])], "resolution": "720p", "duration": 2,
                     "wait_seconds": 45}
        first = await client.call_tool("generate_r2v", arguments)
        assert first.structured_content["status"] == "succeeded"
        async with in_stand_in(client, arguments, wire(first)) as (host, page, frame, view):
            await frame.wait_for_function("window.playerState && window.playerState.playing", timeout=30_000)
            state = await frame.evaluate("window.playerState")
            assert (state["status"], state["source"], state["error"]) == ("succeeded", "resource", None)
            played = await frame.evaluate("(() => { const v = document.getElementById('video'); "
                                          "return {t: v.currentTime, w: v.videoWidth, h: v.videoHeight}; })()")
            assert played["t"] > 0 and (played["w"], played["h"]) == (1280, 720)
            assert await view.locator("#prompt").inner_text() == "Image 1 waves at Video 1"
            assert await view.locator("#prompt .label").all_inner_texts() == ["Image 1", "Video 1"]
            assert await view.locator("#characters").inner_text() == "Characters: @alice = Image 1"
            assert await view.locator("#references li").all_inner_texts() == ["Image 1: @alice",
                                                                               f"Video 1: {refs['vid1']}"]
            assert await view.locator("#cancel").is_hidden()
            keep = Path(os.environ.get("WAN_R2V_SCREENSHOT_DIR") or tmp_path)  # to look at it: set the variable
            keep.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=str(keep / "player.png"))

            # "Make it again with another seed": the same request through the host, then followed to its end.
            await view.locator("#again").click()
            await frame.wait_for_function("window.playerState.calls.length >= 2 && window.playerState.status === "
                                          "'succeeded' && window.playerState.taskId !== "
                                          f"{json.dumps(first.structured_content['task_id'])}", timeout=60_000)
            calls = await frame.evaluate("window.playerState.calls")
            again = calls[0]
            assert again["name"] == "generate_r2v" and again["arguments"]["allow_duplicate"] is True
            assert again["arguments"]["prompt"] == arguments["prompt"] and 0 <= again["arguments"]["seed"]
            assert {c["name"] for c in calls[1:]} == {"get_task"}
            log = await page.evaluate("window.hostLog")
            assert log[:2] == ["ui/initialize", "ui/notifications/initialized"]
            assert "read:r2v://tasks/" + first.structured_content["task_id"] + "/video" in log
            await frame.wait_for_function("window.playerState.playing", timeout=30_000)
    tasks = await _tasks(settings)
    assert len(tasks) == 2 and tasks[0]["request"]["seed"] != tasks[1]["request"]["seed"]


@pytest.mark.long
@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed here: .ci/tools.sh installs Debian's")
async def test_the_player_cancels_a_running_task_and_lists_a_sequences_shots(settings, refs):
    async with Client(build_server(settings)) as client:
        await call(client, "save_character", {"name": "alice", "reference": str(refs["img1"])})
        running = await client.call_tool("generate_r2v", {"prompt": "@alice sleeps", "characters": ["alice"],
                                                          "duration": 15, "wait_seconds": 0})
        async with in_stand_in(client, {"task_id": running.structured_content["task_id"]}, wire(running),
                               wait_cap=1, viewport={"width": 1280, "height": 720}) as (host, page, frame, view):
            await view.locator("#cancel").wait_for(state="visible", timeout=30_000)
            await view.locator("#cancel").click()
            await frame.wait_for_function("window.playerState.status === 'canceled'", timeout=30_000)
            assert "cancel_task" in [c["name"] for c in await frame.evaluate("window.playerState.calls")]

            sequence = await client.call_tool("generate_sequence", {
                "shots": [{"prompt": "@alice walks in", "duration": 2}, {"prompt": "@alice sits", "duration": 2}],
                "characters": ["alice"], "resolution": "720p", "wait_seconds": 45})
            assert sequence.structured_content["status"] == "succeeded"
            host.call = {"arguments": {}, "result": wire(sequence)}
            await page.reload()
            frame = page.frames[1]
            await frame.wait_for_function("window.playerState && window.playerState.playing", timeout=30_000)
            items = await page.frame_locator("#view").locator("#shots li").all_inner_texts()
            assert [i.split(" (")[0] for i in items] == ["succeeded: Image 1 walks in", "succeeded: Image 1 sits"]
            assert all("Redo with another seed" in i for i in items)
            assert await page.frame_locator("#view").locator("#again").is_hidden()  # a sequence redoes shots instead


async def _tasks(settings) -> list[dict]:
    async with Client(build_server(settings)) as client:
        return (await call(client, "list_tasks", {}))["structuredContent"]["tasks"]


SIBLING = """<script>
// A hostile sibling frame: it forges what the host would say, to the player beside it.
const player = window.parent.frames[0];
const forged = {task_id: "r2v_forged", status: "succeeded", stage: "saved", provider: "dashscope",
                request: {prompt: "forged"}, references: [], video_url: "javascript:alert(1)",
                download_url: "javascript:alert(1)"};
let n = 0;
const timer = setInterval(() => {
  for (const id of [1, 2, 3, 4, 5]) player.postMessage({jsonrpc: "2.0", id, result: {isError: false,
    structuredContent: forged}}, "*");
  player.postMessage({jsonrpc: "2.0", method: "ui/notifications/tool-input", params: {arguments: {prompt: "x"}}}, "*");
  player.postMessage({jsonrpc: "2.0", method: "ui/notifications/tool-result", params: {structuredContent: forged}},
                     "*");
  if (++n > 40) clearInterval(timer);
}, 25);
</script>"""


@pytest.mark.long
@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed here: .ci/tools.sh installs Debian's")
async def test_the_player_shows_the_takes_side_by_side_plays_each_and_uses_the_one_chosen(settings, refs):
    """Issue #23: a group of takes shows as cards, one per take (its seed and state), each playable on its own, and
    "Use this take" picks it through the client; the picked take is the group's video."""
    async with Client(build_server(settings)) as client:
        arguments = {"prompt": "Image 1 waves", "reference_images": [str(refs["img1"])], "resolution": "720p",
                     "duration": 2, "variants": 2, "seed": 3, "wait_seconds": 45}
        first = wire(await client.call_tool("generate_r2v", arguments))
        assert first["structuredContent"]["status"] == "succeeded"
        async with in_stand_in(client, arguments, first) as (host, page, frame, view):
            await frame.wait_for_function("window.playerState && window.playerState.playing", timeout=30_000)
            cards = await view.locator(".take > div").all_inner_texts()
            assert cards == ["Take 1 · seed 3 · succeeded · picked", "Take 2 · seed 4 · succeeded"]
            assert await view.locator("#again").is_hidden()
            await view.locator(".take[data-take='2'] .play").click()
            await frame.wait_for_function("window.playerState.takePlaying === 2", timeout=30_000)
            await view.locator(".take[data-take='2'] .use").click()
            await frame.wait_for_function("document.querySelector('.take.picked') && "
                                          "document.querySelector('.take.picked').dataset.take === '2'",
                                          timeout=30_000)
            calls = await frame.evaluate("window.playerState.calls")
            assert calls[-1] == {"name": "pick_take", "arguments": {"task_id": first["structuredContent"]["task_id"],
                                                                    "take": 2}}
        after = (await client.call_tool("get_task", {"task_id": first["structuredContent"]["task_id"],
                                                     "wait_seconds": 0})).structured_content
    assert after["local_path"] == after["takes"][1]["local_path"] and after["takes"][1]["picked"]


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed here: .ci/tools.sh installs Debian's")
async def test_a_hostile_sibling_frame_cannot_steer_the_player(settings, refs):
    """Issue #18: the player took tool-input, tool-result and answers from any window, and set video.src from any
    URL. Now only its host window is heard, and only https, data and local http sources are played."""
    async with Client(build_server(settings)) as client:
        arguments = {"prompt": "Image 1 waves", "reference_images": [str(refs["img1"])], "resolution": "720p",
                     "duration": 2, "wait_seconds": 45}
        first = await client.call_tool("generate_r2v", arguments)
        html = (await client.read_resource(PLAYER)).contents[0].text
        host = Stand_in(html, {"arguments": arguments, "result": wire(first)}, proxy(client))
        sibling_page = HOST_PAGE.replace(
            '</iframe><script>', '</iframe><iframe id="sibling" sandbox="allow-scripts" srcdoc="'
            + SIBLING.replace('"', "&quot;") + '"></iframe><script>')
        manager, playwright, browser = await _chromium()
        try:
            page = await browser.new_page(viewport={"width": 740, "height": 780})
            await page.route("**/host.html", lambda route: route.fulfill(body=sibling_page,
                                                                         content_type="text/html"))
            await page.goto(host.url)
            frame = page.frames[1]
            await frame.wait_for_function("window.playerState && window.playerState.playing", timeout=30_000)
            await frame.wait_for_function("window.playerState.dropped >= 40", timeout=30_000)
            state = await frame.evaluate("window.playerState")
            assert state["taskId"] == first.structured_content["task_id"] and state["calls"] == []
            src = await frame.evaluate("document.getElementById('video').src")
            assert src.startswith("data:video/mp4;base64,")
            refused = await frame.evaluate("playable('javascript:alert(1)') || playable('http://evil.example/v.mp4')"
                                           " || playable('data:text/html;base64,PHNjcmlwdD4=')")
            assert refused is False
            assert await frame.evaluate("playable('https://cdn.example.com/v.mp4') && "
                                        "playable('http://127.0.0.1:8000/videos/x.mp4')")
        finally:
            await browser.close()
            await manager.__aexit__(None, None, None)
            await host.aclose()


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed here: .ci/tools.sh installs Debian's")
async def test_a_download_url_that_cannot_load_falls_back_to_the_resource_and_no_empty_player_shows(settings, refs):
    """Issue #19: over HTTP without WAN_R2V_PUBLIC_URL the view's CSP blocked the download_url, and the player stayed
    black at 0:00 with no fallback; `video { display: block }` showed an empty player while a task waited."""
    async with Client(build_server(settings)) as client:
        arguments = {"prompt": "Image 1 waves", "reference_images": [str(refs["img1"])], "resolution": "720p",
                     "duration": 2, "wait_seconds": 45}
        first = wire(await client.call_tool("generate_r2v", arguments))
        first["structuredContent"]["download_url"] = "http://127.0.0.1:9/videos/blocked.mp4"  # nothing answers there
        async with in_stand_in(client, arguments, first) as (host, page, frame, view):
            await frame.wait_for_function("window.playerState && window.playerState.playing", timeout=30_000)
            assert await frame.evaluate("window.playerState.source") == "resource"
            box = await frame.evaluate("(() => { const r = document.getElementById('video').getBoundingClientRect();"
                                       " return [r.width, r.height]; })()")
            assert box[0] > 100 and box[1] > 50  # visible
            # A waiting task shows no player at all.
            await frame.evaluate("show({task_id: 'r2v_waiting', status: 'running', stage: 'queued', request: "
                                 "{prompt: 'x'}, references: []})")
            assert await frame.evaluate("getComputedStyle(document.getElementById('video')).display") == "none"


APPBRIDGE = Path(__file__).resolve().parent.parent / ".ci" / "tools" / "appbridge.js"

BRIDGE_PAGE = """<!doctype html><meta charset="utf-8"><title>AppBridge host</title>
<body style="margin:0"><iframe id="view" sandbox="allow-scripts" style="width:720px;height:760px;border:0"></iframe>
<script type="module">
// A host built on the real MCP Apps host library (@modelcontextprotocol/ext-apps AppBridge): it answers the view's
// handshake, sends the tool's input and result, and passes its tools/call and resources/read to the server.
import { AppBridge, PostMessageTransport } from "/appbridge.js";
window.hostLog = [];
const frame = document.getElementById("view");
const rpc = async (method, params) => {
  window.hostLog.push(method === "tools/call" ? "call:" + params.name : "read:" + params.uri);
  const answer = await (await fetch("/rpc", {method: "POST", body: JSON.stringify({method, params})})).json();
  return answer.result;
};
const bridge = new AppBridge(null, {name: "appbridge-test-host", version: "1"},
                             {serverTools: {}, serverResources: {}});
bridge.oncalltool = (params) => rpc("tools/call", params);
bridge.onreadresource = (params) => rpc("resources/read", params);
bridge.oninitialized = async () => {
  window.hostLog.push("initialized");
  const call = await (await fetch("/call.json")).json();
  await bridge.sendToolInput({arguments: call.arguments});
  await bridge.sendToolResult(call.result);
};
await bridge.connect(new PostMessageTransport(frame.contentWindow, frame.contentWindow));
frame.src = "/view.html";  // only once the bridge listens for the view's first message
</script></body>"""


def _csp(meta: dict) -> str:
    """The Content-Security-Policy a host derives from the view's declared `ui.csp` (ext-apps spec.types: connect
    domains -> connect-src, resource domains -> img/script/style/font/media-src)."""
    csp = (meta or {}).get("ui", {}).get("csp", {})
    resources = " ".join(csp.get("resourceDomains", []))
    connect = " ".join(csp.get("connectDomains", [])) or "'none'"
    return (f"default-src 'none'; script-src 'unsafe-inline' {resources}; style-src 'unsafe-inline' {resources}; "
            f"img-src data: blob: {resources}; media-src data: blob: {resources}; font-src {resources}; "
            f"connect-src {connect}")


@contextlib.asynccontextmanager
async def _in_appbridge(resource: dict, arguments: dict, first: dict, rpc, video_bytes: bytes | None = None):
    """The view in a page hosted by the real AppBridge, served with the CSP the view declares, once it plays; yields
    the page, the view's frame and the URLs of the download_url the browser fetched. With `video_bytes` the page
    answers the download_url itself; without, the request goes to the real server on loopback."""
    host = Stand_in(resource["text"], {"arguments": arguments, "result": first}, rpc)
    fetched: list[str] = []
    policy = _csp(resource.get("_meta") or {})
    manager, playwright, browser = await _chromium()
    try:
        page = await browser.new_page(viewport={"width": 740, "height": 780})
        bridge = APPBRIDGE.read_text()

        async def serve(route):
            url = route.request.url
            if url.endswith("/host.html"):
                return await route.fulfill(body=BRIDGE_PAGE, content_type="text/html")
            if url.endswith("/appbridge.js"):
                return await route.fulfill(body=bridge, content_type="text/javascript")
            if "/videos/" in url:
                fetched.append(url)
                if video_bytes is not None:
                    return await route.fulfill(body=video_bytes, content_type="video/mp4")
            if url.endswith("/view.html"):  # as a host serves a view: with the CSP the view declared
                return await route.fulfill(body=resource["text"], content_type="text/html",
                                           headers={"Content-Security-Policy": policy})
            return await route.continue_()

        await page.route("**/*", serve)
        await page.goto(host.url)
        for _ in range(100):
            frame = next((f for f in page.frames if f.url.endswith("/view.html")), None)
            if frame is not None:
                break
            await anyio.sleep(0.05)
        assert frame is not None
        await frame.wait_for_function("() => window.playerState && window.playerState.playing", timeout=30_000)
        yield page, frame, fetched
    finally:
        await browser.close()
        await manager.__aexit__(None, None, None)
        await host.aclose()


async def _play_in_appbridge(resource: dict, arguments: dict, first: dict, rpc, video_bytes: bytes | None = None):
    """In the AppBridge host: waits until the video is visible and playing, clicks "another seed"; returns the
    player's state, the text it shows, the URLs of the download_url the browser fetched and the host's log."""
    async with _in_appbridge(resource, arguments, first, rpc, video_bytes) as (page, frame, fetched):
        await frame.wait_for_function("() => document.getElementById('video').currentTime > 0", timeout=30_000)
        state = await frame.evaluate("() => window.playerState")
        visible = await frame.evaluate("() => { const v = document.getElementById('video'); const r = "
                                       "v.getBoundingClientRect(); return [r.width, r.height, v.currentTime]; }")
        assert visible[0] > 100 and visible[1] > 50 and visible[2] > 0  # visible and playing
        shown = await frame.evaluate("() => document.body.innerText")
        await frame.locator("#again").click()
        await frame.wait_for_function("() => window.playerState.calls.length >= 1", timeout=30_000)
        state["calls"] = await frame.evaluate("() => window.playerState.calls")
        log = await page.evaluate("() => window.hostLog")
        return state, shown, fetched, log


@pytest.mark.skipif(CHROMIUM is None or not APPBRIDGE.is_file(),
                    reason="Chromium or the bundled ext-apps AppBridge is missing: .ci/tools.sh installs them")
@pytest.mark.long
async def test_take_cards_play_each_take_and_pick_one_in_a_real_appbridge_host_under_its_csp(settings, refs):
    """Issue #23 in the real host: a group's cards show each take's seed and state, a take plays visibly (read as
    a resource through the bridge, which the view's CSP allows) and "Use this take" reaches pick_take through the
    host; the picked take becomes the group's video."""
    async with Client(build_server(settings)) as client:
        arguments = {"prompt": "Image 1 waves", "reference_images": [str(refs["img1"])], "resolution": "720p",
                     "duration": 2, "variants": 2, "seed": 11, "wait_seconds": 45}
        first = wire(await client.call_tool("generate_r2v", arguments))
        assert first["structuredContent"]["status"] == "succeeded"
        resource = wire(await client.read_resource(PLAYER))["contents"][0]
        async with _in_appbridge(resource, arguments, first, proxy(client, wait_cap=2)) as (page, frame, fetched):
            cards = await frame.locator(".take > div").all_inner_texts()
            assert cards == ["Take 1 · seed 11 · succeeded · picked", "Take 2 · seed 12 · succeeded"]
            await frame.locator(".take[data-take='2'] .play").click()
            await frame.wait_for_function("() => window.playerState.takePlaying === 2", timeout=30_000)
            shown = await frame.evaluate("() => { const v = document.querySelector(\".take[data-take='2'] video\"); "
                                         "const r = v.getBoundingClientRect(); return [r.width, r.height, "
                                         "v.currentTime, v.src.slice(0, 5)]; }")
            assert shown[0] > 50 and shown[1] > 20 and shown[2] > 0 and shown[3] in ("blob:", "data:"), shown
            await frame.locator(".take[data-take='2'] .use").click()
            await frame.wait_for_function("() => document.querySelector('.take.picked') && "
                                          "document.querySelector('.take.picked').dataset.take === '2'",
                                          timeout=30_000)
            log = await page.evaluate("() => window.hostLog")
        after = (await client.call_tool("get_task", {"task_id": first["structuredContent"]["task_id"],
                                                     "wait_seconds": 0})).structured_content
    assert log[0] == "initialized" and "call:pick_take" in log and fetched == []
    assert [t["picked"] for t in after["takes"]] == [False, True]
    assert after["local_path"] == after["takes"][1]["local_path"]


@pytest.mark.skipif(CHROMIUM is None or not APPBRIDGE.is_file(),
                    reason="Chromium or the bundled ext-apps AppBridge is missing: .ci/tools.sh installs them")
async def test_the_player_plays_in_a_real_appbridge_host_under_the_csp_it_declares(settings, refs):
    """Issue #19: the stand-in host had no CSP; here the real AppBridge hosts the view, which is served with the CSP
    its resource declares, and the video must be visible and playing, with "another seed" working. In process the
    view reads the video as a resource (the stdio delivery)."""
    async with Client(build_server(settings)) as client:
        arguments = {"prompt": "Image 1 waves", "reference_images": [str(refs["img1"])], "resolution": "720p",
                     "duration": 2, "wait_seconds": 45}
        first = wire(await client.call_tool("generate_r2v", arguments))
        resource = wire(await client.read_resource(PLAYER))["contents"][0]
        # A download_url that works, on an origin the view's CSP does not list.
        video_bytes = Path(first["structuredContent"]["local_path"]).read_bytes()
        first["structuredContent"]["download_url"] = "http://127.0.0.1:9/videos/real.mp4"
        state, _, fetched, log = await _play_in_appbridge(resource, arguments, first, proxy(client, wait_cap=2),
                                                          video_bytes)
    # The CSP blocked the download_url before any request left, and the player fell back to the resource.
    assert state["source"] == "resource" and state["status"] == "succeeded" and fetched == []
    assert state["calls"][0]["name"] == "generate_r2v" and state["calls"][0]["arguments"]["allow_duplicate"] is True
    assert log[0] == "initialized" and "call:generate_r2v" in log


@pytest.mark.skipif(CHROMIUM is None or not APPBRIDGE.is_file(),
                    reason="Chromium or the bundled ext-apps AppBridge is missing: .ci/tools.sh installs them")
@pytest.mark.parametrize("public", [True, False], ids=["WAN_R2V_PUBLIC_URL", "no public URL"])
async def test_over_http_the_player_plays_the_servers_own_link_or_the_resource_and_shows_no_server_path(
        dirs, refs, public):
    """Issue #19, the two HTTP deliveries: with WAN_R2V_PUBLIC_URL the view declares the server's origin and plays
    its signed download_url, fetched by the browser from the real server; without it the view's CSP blocks the link
    and the video comes through resources/read over the same HTTP session. A remote caller sees no server path."""
    from test_remote import ALICE, TOKENS, URL_REF, _free_port, serving
    from test_remote import client as remote

    from wan_r2v_mcp.config import Settings

    port = _free_port()
    settings = Settings(data_dir=dirs["data"], output_dir=dirs["out"], allowed_dirs=str(dirs["refs"]),
                        http_tokens=TOKENS, time_scale=0.1, progress_interval_seconds=1.0,
                        public_url=f"http://127.0.0.1:{port}" if public else None)
    with serving(settings, port=port) as url:
        async with remote(url, ALICE) as alice:
            arguments = {"prompt": "Image 1 waves", "reference_images": URL_REF, "resolution": "720p",
                         "duration": 2, "wait_seconds": 45}
            first = wire(await alice.call_tool("generate_r2v", arguments))
            resource = wire(await alice.read_resource(PLAYER))["contents"][0]
            link = first["structuredContent"]["download_url"]
            assert link.startswith(f"http://127.0.0.1:{port}/videos/")
            state, shown, fetched, log = await _play_in_appbridge(resource, arguments, first,
                                                                  proxy(alice, wait_cap=2))
    assert state["status"] == "succeeded" and state["calls"][0]["name"] == "generate_r2v"
    if public:
        assert state["source"] == "download_url" and fetched and fetched[0] == link
        assert not any(entry.startswith("read:") for entry in log)
    else:
        assert state["source"] == "resource" and fetched == []
        assert f"read:r2v://tasks/{first['structuredContent']['task_id']}/video" in log
    assert str(dirs["out"]) not in shown and str(dirs["data"]) not in shown and "Saved at" not in shown
