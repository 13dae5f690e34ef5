"""What users install: the registry entry, the Claude Desktop bundle and the wheel, each checked as users get it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from wan_r2v_mcp import __version__

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ["cancel_task", "delete_character", "edit_video", "generate_i2v", "generate_r2v", "generate_sequence", "generate_t2v",
         "get_task",
         "list_characters",
         "list_references", "list_tasks", "pick_take", "redo_shot", "save_character", "stitch"]


def mcpb() -> str:
    """The real bundle validator (npm @anthropic-ai/mcpb), which .ci/run installs into .ci/tools."""
    found = os.environ.get("MCPB") or str(ROOT / ".ci/tools/node_modules/.bin/mcpb")
    if not Path(found).exists():
        pytest.skip("the mcpb CLI is not installed here: .ci/run installs it (npm @anthropic-ai/mcpb)")
    return found


def test_the_packaging_files_name_every_hosts_key_as_its_record_does():
    """The bundle's env and user_config, the registry's environment variables and Smithery's per-connection
    config are held against the hosts' records (providers.HOSTS), so a new host cannot be left out of one."""
    from wan_r2v_mcp.providers import HOSTS

    hosts = [h for h in HOSTS.values() if h.key_env]
    assert len(hosts) == 4 and all(h.key_option for h in hosts)
    manifest = json.loads((ROOT / "manifest.json").read_text())
    env = manifest["server"]["mcp_config"]["env"]
    assert {h.key_env: env.get(h.key_env) for h in hosts} == {
        h.key_env: f"${{user_config.{h.key_option}}}" for h in hosts}
    assert all(manifest["user_config"][h.key_option]["sensitive"] for h in hosts)
    server = json.loads((ROOT / "server.json").read_text())
    variables = {v["name"]: v for v in server["packages"][0]["environmentVariables"]}
    assert all(variables[h.key_env]["isSecret"] for h in hosts)
    assert next(v for v in variables.values() if v["name"] == "WAN_R2V_PROVIDER")["choices"] == list(HOSTS)
    smithery = (ROOT / "smithery.yaml").read_text()
    for h in hosts:  # each key as its own property, read from the header the server reads
        assert re.search(rf"^      {h.key_query}:\n(?:        .*\n)*?        x-from: {{ header: \"{h.key_header.lower()}\" }}",
                         smithery, re.M), h.name


def test_every_version_is_the_same():
    pyproject = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M).group(1)
    server = json.loads((ROOT / "server.json").read_text())
    manifest = json.loads((ROOT / "manifest.json").read_text())
    assert pyproject == __version__ == manifest["version"] == server["version"] == server["packages"][0]["version"]


# The registry's server.json rules that matter here, as its documentation states them (schema 2025-12-11):
# required fields, the name pattern, a description of at most 100 characters, a pinned package version,
# package and remote shapes. Written from the documented facts; the schema file itself is not vendored.
SERVER_SCHEMA = {
    "type": "object",
    "required": ["name", "description", "version"],
    "properties": {
        "$schema": {"const": "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json"},
        "name": {"type": "string", "pattern": r"^[a-zA-Z0-9.-]+/[a-zA-Z0-9._-]+$", "minLength": 3, "maxLength": 200},
        "title": {"type": "string", "maxLength": 100},
        "description": {"type": "string", "minLength": 1, "maxLength": 100},
        "version": {"type": "string", "not": {"pattern": r"^[\^~<>=*]|\s|\|\||x$"}, "maxLength": 255},
        "websiteUrl": {"type": "string", "format": "uri"},
        "repository": {"type": "object", "required": ["url", "source"],
                       "properties": {"url": {"type": "string", "format": "uri"}, "source": {"type": "string"}}},
        "icons": {"type": "array", "items": {"type": "object", "required": ["src"], "properties": {
            "src": {"type": "string", "pattern": "^https://"}, "mimeType": {"enum": ["image/png", "image/jpeg",
                                                                                        "image/svg+xml", "image/webp"]},
            "sizes": {"type": "array", "items": {"type": "string", "pattern": r"^(\d+x\d+|any)$"}}}}},
        "packages": {"type": "array", "items": {
            "type": "object", "required": ["registryType", "identifier", "transport", "version"],
            "properties": {
                "registryType": {"enum": ["npm", "pypi", "oci", "nuget", "mcpb"]},
                "version": {"type": "string", "not": {"const": "latest"}},
                "runtimeHint": {"enum": ["uvx", "npx", "docker", "dnx"]},
                "transport": {"type": "object", "required": ["type"], "properties": {
                    "type": {"enum": ["stdio", "streamable-http", "sse"]}}},
                "environmentVariables": {"type": "array", "items": {
                    "type": "object", "required": ["name"], "properties": {
                        "name": {"type": "string"}, "isSecret": {"type": "boolean"}, "isRequired": {"type": "boolean"},
                        "format": {"enum": ["string", "number", "boolean", "filepath"]},
                        "choices": {"type": "array", "items": {"type": "string"}}}}}}}},
        "remotes": {"type": "array", "items": {
            "type": "object", "required": ["type", "url"], "properties": {
                "type": {"enum": ["streamable-http", "sse"]}, "url": {"type": "string", "pattern": "^https?://"},
                "headers": {"type": "array", "items": {"type": "object", "required": ["name"]}}}}},
    },
}


def test_the_registry_entry_is_valid_and_matches_the_server():
    import jsonschema

    server = json.loads((ROOT / "server.json").read_text())
    errors = [e.message for e in jsonschema.Draft7Validator(
        SERVER_SCHEMA, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER).iter_errors(server)]
    assert errors == []
    package = server["packages"][0]
    assert (package["registryType"], package["identifier"], package["runtimeHint"]) == ("pypi", "wan-r2v-mcp", "uvx")
    secrets = {v["name"] for v in package["environmentVariables"] if v.get("isSecret")}
    assert secrets == {"DASHSCOPE_API_KEY", "REPLICATE_API_TOKEN", "INFERENCE_API_KEY", "FAL_KEY"}
    assert server["remotes"][0]["type"] == "streamable-http" and server["remotes"][0]["url"].endswith("/mcp")
    # PyPI ownership: the README (the package's PyPI page) names the server, ending at a boundary.
    assert re.search(rf"mcp-name: {re.escape(server['name'])}(\s|-->)", (ROOT / "README.md").read_text())
    icon = ROOT / "src/wan_r2v_mcp/assets/icon.png"
    assert server["icons"][0]["src"].endswith("/src/wan_r2v_mcp/assets/icon.png") and icon.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.anyio
async def test_the_server_announces_its_icon(client):
    import base64

    (icon,) = client.server_info.icons
    assert (icon.mime_type, icon.sizes) == ("image/png", ["128x128"])
    assert base64.b64decode(icon.src.removeprefix("data:image/png;base64,"))[:4] == b"\x89PNG"


@pytest.mark.long
def test_the_bundle_builds_validates_unpacks_and_its_server_lists_the_tools(tmp_path):
    tool = mcpb()
    checked = subprocess.run([tool, "validate", str(ROOT / "manifest.json")], capture_output=True, text=True,
                             timeout=120, cwd=ROOT)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    built = subprocess.run([sys.executable, str(ROOT / "scripts/build_bundle.py"), str(tmp_path / "dist")],
                           capture_output=True, text=True, timeout=120)
    assert built.returncode == 0, built.stderr
    bundle = tmp_path / "dist" / f"wan-r2v-mcp-{__version__}.mcpb"
    assert bundle.stat().st_size < 1_000_000
    with zipfile.ZipFile(bundle) as archive:
        names = archive.namelist()
    assert {"manifest.json", "pyproject.toml", "README.md", "src/wan_r2v_mcp/__main__.py",
            "src/wan_r2v_mcp/assets/icon.png"} <= set(names)
    assert not [n for n in names if n.startswith(("tests/", ".venv/")) or "__pycache__" in n]
    info = subprocess.run([tool, "info", str(bundle)], capture_output=True, text=True, timeout=60)
    assert info.returncode == 0 and "wan-r2v-mcp" in info.stdout
    unpacked = tmp_path / "unpacked"
    assert subprocess.run([tool, "unpack", str(bundle), str(unpacked)], capture_output=True, timeout=60).returncode == 0
    again = subprocess.run([tool, "validate", str(unpacked / "manifest.json")], capture_output=True, text=True,
                           timeout=60, cwd=unpacked)
    assert again.returncode == 0, again.stdout + again.stderr

    # Start the bundle's own server as Claude Desktop would, with the options the user left empty still
    # unreplaced: it must treat them as unset and start on the preview.
    manifest = json.loads((unpacked / "manifest.json").read_text())
    env = {**os.environ, **manifest["server"]["mcp_config"]["env"], "PYTHONPATH": str(unpacked / "src"),
           "WAN_R2V_DATA_DIR": str(tmp_path / "data")}
    where = subprocess.run([sys.executable, "-c", "import wan_r2v_mcp; print(wan_r2v_mcp.__file__)"], env=env,
                           capture_output=True, text=True, timeout=60)
    assert where.stdout.strip() == str(unpacked / "src/wan_r2v_mcp/__init__.py")
    _list_tools(sys.executable, ["-m", "wan_r2v_mcp"], env)


@pytest.mark.long
def test_the_wheel_installs_into_a_fresh_environment_and_its_script_serves_over_stdio(tmp_path):
    wheels = tmp_path / "wheels"
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w",
                            str(wheels), str(ROOT)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = wheels.glob("wan_r2v_mcp-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        assert "wan_r2v_mcp/assets/icon-128.png" in archive.namelist()
    fresh = tmp_path / "fresh"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(fresh)], check=True, timeout=120)
    python = fresh / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    installed = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
                                "--no-index", str(wheel)], capture_output=True, text=True, timeout=300)
    assert installed.returncode == 0, installed.stderr[-2000:]
    # No test reaches the internet, so the dependencies come from this environment's site-packages (a .pth
    # file adds them after the fresh environment's own); the package itself is the wheel's copy.
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    ours = [p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir()]
    Path(site, "deps-from-test-env.pth").write_text("\n".join(ours) + "\n")
    env = {**os.environ, "WAN_R2V_DATA_DIR": str(tmp_path / "data"), "WAN_R2V_OUTPUT_DIR": str(tmp_path / "out")}
    env.pop("PYTHONPATH", None)
    where = subprocess.run([str(python), "-c", "import wan_r2v_mcp; print(wan_r2v_mcp.__file__)"], env=env,
                           capture_output=True, text=True, timeout=60)
    assert where.stdout.strip().startswith(site), where.stdout + where.stderr
    missing = subprocess.run([str(python), "-c", (
        "import importlib.metadata as m, re\n"
        "for r in m.requires('wan-r2v-mcp'):\n"
        "    if 'extra ==' not in r: m.version(re.split(r'[<>=!~ ;\\[]', r)[0])\n")], env=env, capture_output=True,
        text=True, timeout=60)
    assert missing.returncode == 0, missing.stderr  # every dependency the wheel declares is importable
    script = fresh / ("Scripts/wan-r2v-mcp.exe" if os.name == "nt" else "bin/wan-r2v-mcp")
    _list_tools(str(script), [], env)


def _list_tools(command: str, args: list[str], env: dict[str, str]) -> None:
    import anyio

    async def listing() -> list[str]:
        params = StdioServerParameters(command=command, args=args, env=env)
        async with Client(params, mode="legacy") as client:
            return sorted(t.name for t in (await client.list_tools()).tools)

    assert anyio.run(listing) == TOOLS


def test_the_bundle_holds_only_the_packages_declared_files_never_strays_beside_them(tmp_path):
    """Issue #18: every file under src/wan_r2v_mcp went into the .mcpb, a stray .env or secrets.json included."""
    import importlib.util

    repo = tmp_path / "repo"
    cloned = subprocess.run(["git", "clone", "-q", "--no-hardlinks", str(ROOT), str(repo)], capture_output=True,
                            text=True, timeout=120)
    if cloned.returncode != 0:
        pytest.skip(f"git cannot clone this checkout here: {cloned.stderr.strip()[:200]}")
    package = repo / "src" / "wan_r2v_mcp"
    strays = {".env": "DASHSCOPE_API_KEY=sk-planted0123456789", "secrets.json": "{}", "server.py.orig": "x",
              ".DS_Store": "x", "assets/notes.txt": "x"}
    for name, body in strays.items():
        (package / name).write_text(body)
    spec = importlib.util.spec_from_file_location("build_bundle", ROOT / "scripts" / "build_bundle.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    bundle = module.build(tmp_path / "dist", root=repo)
    with zipfile.ZipFile(bundle) as archive:
        names = set(archive.namelist())
        body = b"".join(archive.read(n) for n in names)
    assert not {f"src/wan_r2v_mcp/{name}" for name in strays} & names
    assert b"sk-planted" not in body
    tracked = subprocess.run(["git", "ls-files", "src/wan_r2v_mcp"], cwd=repo, capture_output=True, text=True,
                             check=True).stdout.split()
    assert {n for n in names if n.startswith("src/")} == set(tracked)
