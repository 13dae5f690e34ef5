"""Ready-to-paste configuration for each MCP client, and the file it goes in.

Facts from each client's documentation (README's Clients section links each): Claude
Desktop, Cursor and Windsurf read `mcpServers`, VS Code reads `servers` (with `inputs` that prompt for
secrets), Zed reads `context_servers`, Claude Code reads `.mcp.json` (`type: stdio`). Desktop apps do not see
a login shell's PATH, so the command is an absolute path (`spawn uvx ENOENT` otherwise).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

CLIENTS = ("claude-desktop", "claude-code", "cursor", "vscode", "windsurf", "zed")
NAME = "wan-r2v"


def host_keys() -> list[tuple[str, str, str]]:
    """Each host's key variable, the prompt id VS Code asks it under, and how a person knows it."""
    from .providers import HOSTS

    return [(h.key_env, h.key_prompt, h.key_title) for h in HOSTS.values()
            if h.key_env and h.key_prompt and h.key_title]


def launcher() -> tuple[str, list[str]]:
    """How a client starts this server, as this machine is: uvx (by absolute path) only when this very process was
    started by uvx, so uvx demonstrably finds the package; else this installation's own script. uvx being
    installed proves nothing: it fetches from a package index, which may not have the package (or this version)."""
    uvx = shutil.which("uvx")
    if uvx and started_by_uvx():
        return str(Path(uvx).resolve()), ["wan-r2v-mcp"]
    beside = Path(sys.executable).parent / ("wan-r2v-mcp.exe" if os.name == "nt" else "wan-r2v-mcp")
    script = shutil.which("wan-r2v-mcp") or (str(beside) if beside.is_file() else None)
    if script:
        return str(Path(script).absolute()), []
    return sys.executable, ["-m", "wan_r2v_mcp"]


def started_by_uvx() -> bool:
    """uvx runs a tool from an environment it builds in uv's cache (`.../uv/archive-v0/<hash>`)."""
    parts = Path(sys.prefix).parts
    return "uv" in parts and any(p.startswith("archive-v") for p in parts)


def where(client: str) -> str:
    """The file a client reads its servers from, on this system."""
    home = Path.home()
    if client == "claude-desktop":
        if sys.platform == "darwin":
            return str(home / "Library/Application Support/Claude/claude_desktop_config.json")
        if os.name == "nt":
            return str(Path(os.environ.get("APPDATA", home)) / "Claude" / "claude_desktop_config.json")
        return str(home / ".config/Claude/claude_desktop_config.json")
    return {
        "claude-code": ".mcp.json in your project (or run: claude mcp add-json wan-r2v '<the block>')",
        "cursor": f"{home / '.cursor/mcp.json'} (or .cursor/mcp.json in a project)",
        "vscode": ".vscode/mcp.json in your workspace (or the user profile's mcp.json)",
        "windsurf": str(home / ".codeium/windsurf/mcp_config.json"),
        "zed": str(home / ".config/zed/settings.json"),
    }[client]


def block(client: str, keys: list[str], http_url: str | None = None) -> dict[str, Any]:
    """The JSON to merge into the client's file. `keys` names the host key variables to ask for; with `http_url`, a
    team server's address instead of a local process (a bearer token is asked for)."""
    wanted = [k for k in host_keys() if k[0] in keys]
    if http_url:
        token = {"vscode": "${input:r2v-token}", "cursor": "${env:R2V_TOKEN}", "windsurf": "${env:R2V_TOKEN}",
                 "claude-code": "${R2V_TOKEN}"}.get(client, "<your token>")
        server: dict[str, Any] = {"url": http_url, "headers": {"Authorization": f"Bearer {token}"}}
        if client == "windsurf":
            server = {"serverUrl": http_url, "headers": server["headers"]}
        elif client in ("vscode", "claude-code"):
            server = {"type": "http", **server}
        inputs = [{"type": "promptString", "id": "r2v-token", "description": "wan-r2v team server token",
                   "password": True}]
    else:
        command, args = launcher()
        value = {"vscode": "${{input:{id}}}", "cursor": "${{env:{var}}}", "windsurf": "${{env:{var}}}",
                 "claude-code": "${{{var}}}"}.get(client, "<{title}>")
        env = {var: value.format(var=var, id=ident, title=title) for var, ident, title in wanted}
        server = {"command": command, "args": args, **({"env": env} if env or client == "zed" else {})}
        if client in ("vscode", "claude-code"):
            server = {"type": "stdio", **server}
        inputs = [{"type": "promptString", "id": ident, "description": title, "password": True}
                  for _, ident, title in wanted]
    if client == "vscode":
        return {"inputs": inputs, "servers": {NAME: server}} if inputs else {"servers": {NAME: server}}
    if client == "zed":
        return {"context_servers": {NAME: server}}
    return {"mcpServers": {NAME: server}}
