"""The house's rules, held in CI: imports run one way, SQL lives in the store, error codes in errors.py, and no
comment sends a reader outside the repository."""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "wan_r2v_mcp"

# Top to bottom: a module may import from its own layer or any layer below it, never above. Within a layer the
# units are siblings (see DESIGN.md, "Shape").
LAYERS: list[set[str]] = [
    {"__main__"},
    {"cli"},
    {"server", "http_guard", "clients", "stdio"},
    {"tools"},
    {"app", "delivery"},
    {"jobs"},
    {"providers"},
    {"access"},
    {"config", "cast"},
    {"references", "audio"},
    {"models", "store"},
    {"schema", "errors", "tls", "memory", "__init__"},
]


def _unit(module: str) -> str:
    """The top-level unit of a module of the package ("jobs" for wan_r2v_mcp.jobs.follower)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _module_or_package(package: str, name: str) -> str:
    """`from . import x`: the module x where there is one, else a name the package itself defines."""
    folder = PACKAGE.parent.joinpath(*package.split("."))
    return f"{package}.{name}" if (folder / f"{name}.py").exists() or (folder / name).is_dir() else package


def _imports() -> dict[str, set[str]]:
    """Every module of the package and the package modules it imports, at the top or inside a function."""
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        module = ".".join(parts[:-1] if is_package else parts)
        package = module if is_package else module.rpartition(".")[0]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
                found |= {target} if node.module else {_module_or_package(target, a.name) for a in node.names}
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("wan_r2v_mcp"):
                found.add(node.module)  # type: ignore[arg-type]
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name.startswith("wan_r2v_mcp")}
        graph[module] = found
    return graph


def _layer(unit: str) -> int:
    for index, layer in enumerate(LAYERS):
        if unit in layer:
            return index
    raise AssertionError(f"{unit} is in no layer: add it to LAYERS (and to DESIGN.md's Shape)")


def test_imports_run_down_the_layers():
    upward = sorted(f"{a} imports {b}" for a, targets in _imports().items() for b in targets
                    if _layer(_unit(b)) < _layer(_unit(a)))
    assert upward == []  # import cycles between units are refused by the next test


def test_no_import_cycles_between_units():
    edges: dict[str, set[str]] = {}
    for a, targets in _imports().items():
        edges.setdefault(_unit(a), set()).update(_unit(b) for b in targets if _unit(b) != _unit(a))
    cycles = []
    for start in edges:
        seen, todo = set(), list(edges[start])
        while todo:
            unit = todo.pop()
            if unit == start:
                cycles.append(start)
                break
            if unit not in seen:
                seen.add(unit)
                todo.extend(edges.get(unit, ()))
    assert sorted(cycles) == []


def _sources():
    for path in sorted(PACKAGE.rglob("*.py")):
        yield path.relative_to(PACKAGE).as_posix(), path.read_text(encoding="utf-8")


SQL = re.compile(r"\b(SELECT\s.+\sFROM|INSERT\s+(OR\s+\w+\s+)?INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|CREATE\s+(TABLE|INDEX))\b")


def test_sql_lives_only_in_the_store():
    outside = [name for name, text in _sources() if not name.startswith("store/")
               and (re.search(r"^\s*(import sqlite3|from sqlite3)", text, re.M) or SQL.search(text))]
    assert outside == []


def test_error_codes_are_written_only_in_errors_py():
    """A code is a class's `code` (errors.py); elsewhere it is named through the class, never typed as a string."""
    typed = re.compile(r"""\b(default_)?code\s*=\s*["'][a-z_]+["']|["']code["']\s*:\s*["'][a-z_]+["']""")
    found = [f"{name}: {m.group(0)}" for name, text in _sources() if name != "errors.py"
             for m in typed.finditer(text)]
    assert found == []


def test_comments_cite_only_what_any_reader_can_open():
    """Comments and docstrings cite public pages or files of this repository, never notes kept beside it."""
    outside = re.compile(r"\.\./shared|shared/reference|\b(providers|family|reliability|ecosystem|scale-out|mcp-sdk|"
                         r"peers)\.md\b")
    root = PACKAGE.parents[1]
    found = [f"{path.relative_to(root)}:{n}" for path in sorted([*PACKAGE.rglob("*.py"), *root.glob("tests/**/*.py"),
                                                               *root.glob("bench/*.py")])
             if path.name != "test_shape.py"
             for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if outside.search(line)]
    assert found == []


def test_each_host_reads_its_own_settings(monkeypatch):
    """A host's variables (its key, region, URLs) are read by its own settings class in providers/, and the
    server's Settings neither names nor reads them; what code sets over them (`hosts`) never comes from the
    environment."""
    from wan_r2v_mcp.config import Settings
    from wan_r2v_mcp.providers import HOSTS, api_key, host_settings

    variables = {a.choices[0] for h in HOSTS.values() for f in h.settings.model_fields.values()
                 if (a := f.validation_alias) is not None}
    assert {"DASHSCOPE_API_KEY", "DASHSCOPE_REGION", "REPLICATE_API_TOKEN", "FAL_QUEUE_URL"} <= variables
    config = (PACKAGE / "config.py").read_text()
    assert [v for v in variables if v in config] == []
    monkeypatch.setenv("DASHSCOPE_REGION", "beijing")
    monkeypatch.setenv("FAL_KEY", "fal-from-the-environment")
    monkeypatch.setenv("WAN_R2V_HOSTS", '{"fal": {"api_key": "fal-from-a-stray-variable"}}')
    settings = Settings()
    assert settings.hosts == {}
    assert host_settings(settings, "dashscope").region == "beijing"
    assert api_key(settings, "fal") == "fal-from-the-environment"
    over = Settings(hosts={"fal": {"api_key": "fal-set-in-code"}})
    assert api_key(over, "fal") == "fal-set-in-code"


def test_building_the_server_imports_no_job_host_or_media_code(tmp_path):
    """Start-up stays light: `initialize` is answered before the runner's code is imported (it is, off the event
    loop, beside it). A fresh interpreter builds the server and lists what came in."""
    import json
    import subprocess
    import sys

    probe = ("import json, sys\nfrom wan_r2v_mcp.config import Settings\nfrom wan_r2v_mcp.server import build_server\n"
             "build_server(Settings())\nprint(json.dumps(sorted(sys.modules)))")
    env = {"WAN_R2V_DATA_DIR": str(tmp_path / "data"), "WAN_R2V_OUTPUT_DIR": str(tmp_path / "out"),
           "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    loaded = json.loads(subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True,
                                       check=True, timeout=60).stdout)
    heavy = [m for m in loaded if m.split(".")[0] in ("httpx", "av", "PIL", "numpy", "psycopg") or
             m.startswith(("wan_r2v_mcp.jobs", "wan_r2v_mcp.references", "wan_r2v_mcp.cast", "wan_r2v_mcp.delivery",
                           "wan_r2v_mcp.providers.")) and m != "wan_r2v_mcp.providers.host_settings"]
    assert heavy == [], heavy
