"""Serving over stdio, where every request that arrived is answered even if the client closes its end right after.

A client may send its last requests and close stdin at once (a pipe, `printf ... | wan-r2v-mcp`, a harness), still
reading stdout. The SDK's loop treats the end of input as the client gone and cancels the handlers still running,
so such a request got no answer at all, about one time in four for a `tools/list` sent just before the end. Here the
end of input is passed on to the server only once every request read has been answered, or after a grace period
for one that would wait long (a `get_task` wait), which then ends as the SDK ends it.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from mcp.server.mcpserver import MCPServer

EOF_GRACE_SECONDS = 10.0  # the longest a request read before the end of input keeps the process, once it has ended


async def run_stdio(server: MCPServer, grace: float = EOF_GRACE_SECONDS) -> None:
    from mcp.server.stdio import stdio_server

    lowlevel = server._lowlevel_server  # MCPServer.run_stdio_async does just this, with no way to pass the streams
    async with stdio_server() as (read, write), answered_before_eof(read, write, grace) as (inbound, outbound):
        await lowlevel.run(inbound, outbound, lowlevel.create_initialization_options())


@asynccontextmanager
async def answered_before_eof(read: Any, write: Any, grace: float) -> AsyncIterator[tuple[Any, Any]]:
    """The same message streams, with the end of `read` held back until each request read from it has had its
    response (or error) written to `write`, for at most `grace` seconds."""
    from mcp.shared._context_streams import create_context_streams
    from mcp.shared.message import SessionMessage
    from mcp.types import JSONRPCError, JSONRPCRequest, JSONRPCResponse

    unanswered: set[Any] = set()
    answered = anyio.Event()  # set whenever nothing is unanswered
    answered.set()
    in_send, in_receive = create_context_streams[Any](0)
    out_send, out_receive = create_context_streams[Any](0)

    written = anyio.Event()  # everything the server sent is on its way to stdout

    async def inward() -> None:
        nonlocal answered
        try:
            async with in_send:
                async for item in read:
                    if isinstance(item, SessionMessage) and isinstance(item.message, JSONRPCRequest):
                        unanswered.add(item.message.id)
                        if answered.is_set():
                            answered = anyio.Event()
                    await in_send.send(item)
                with anyio.move_on_after(grace):
                    await answered.wait()
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            pass  # the server stopped reading first (a shutdown): nothing is held back any more

    async def outward() -> None:
        try:
            async with write, out_receive:
                async for item in out_receive:
                    await write.send(item)
                    if isinstance(item.message, (JSONRPCResponse, JSONRPCError)):
                        unanswered.discard(item.message.id)
                        if not unanswered:
                            answered.set()
        finally:
            written.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(inward)
        tg.start_soon(outward)
        try:
            yield in_receive, out_send
        finally:
            await out_send.aclose()  # the server's loop closes it too; the last answers still go out
            await written.wait()
            tg.cancel_scope.cancel()  # a read still blocked on stdin
