"""Build the Claude Desktop bundle: `python scripts/build_bundle.py` writes dist/wan-r2v-mcp-<version>.mcpb.

A bundle is a zip of manifest.json and what its server needs (the MCPB format, manifest 0.4). This one is
of type "uv": it carries pyproject.toml and the package's source, and Claude Desktop installs Python and
the dependencies with uv on first start. Only what the server runs is packed: the package's files as git tracks
them (no stray files beside the code), no tests, caches or venvs.
The archive is reproducible (sorted entries, fixed timestamps), so the same tree gives the same sha256.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXED_TIME = (2026, 1, 1, 0, 0, 0)


# What the package is made of when git cannot say (a source tarball): its code and its declared assets.
PACKAGE_SUFFIXES = (".py", ".html", ".png")


def files(root: Path = ROOT) -> list[Path]:
    """The package's declared files: those git tracks under src/wan_r2v_mcp (else its code and assets), so a stray
    .env, secrets.json or .orig beside the code never goes into the bundle."""
    package = root / "src" / "wan_r2v_mcp"
    chosen = [root / "manifest.json", root / "pyproject.toml", root / "README.md"]
    try:
        listed = subprocess.run(["git", "ls-files", "-z", "--", "src/wan_r2v_mcp"], cwd=root, capture_output=True,
                                check=True, timeout=60).stdout.decode().split("\0")
        tracked = sorted(root / name for name in listed if name and (root / name).is_file())
    except (OSError, subprocess.SubprocessError):
        tracked = sorted(p for p in package.rglob("*") if p.is_file() and p.suffix in PACKAGE_SUFFIXES
                         and "__pycache__" not in p.parts and not any(part.startswith(".") for part in p.parts))
    chosen += tracked
    if (root / "LICENSE").is_file():
        chosen.append(root / "LICENSE")
    return chosen


def build(out_dir: Path = ROOT / "dist", root: Path = ROOT) -> Path:
    manifest = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
    out_dir.mkdir(parents=True, exist_ok=True)
    bundle = out_dir / f"{manifest['name']}-{manifest['version']}.mcpb"
    part = bundle.with_suffix(".mcpb.part")
    with zipfile.ZipFile(part, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for path in files(root):
            info = zipfile.ZipInfo(path.relative_to(root).as_posix(), FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, path.read_bytes())
    part.replace(bundle)
    return bundle


def main() -> None:
    bundle = build(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "dist")
    digest = hashlib.sha256(bundle.read_bytes()).hexdigest()
    print(f"{bundle} ({bundle.stat().st_size:,} bytes, sha256 {digest})")


if __name__ == "__main__":
    main()
