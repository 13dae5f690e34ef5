#!/usr/bin/env bash
# What some tests need beyond PyPI, installed when missing: the real MCPB bundle validator (npm registry) and
# Chromium for the player view's browser test (Debian's package). Tests that need them skip, saying so, where
# they cannot be installed (no npm, no root).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .ci/tools/node_modules/.bin/mcpb ] && command -v npm >/dev/null 2>&1; then
  npm install --silent --no-audit --no-fund --prefix .ci/tools @anthropic-ai/mcpb@2.1.2 >/dev/null 2>&1 \
    || echo "note: npm could not install @anthropic-ai/mcpb; the bundle validation test will skip" >&2
fi
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  { apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1; }; } \
    || echo "note: apt could not install chromium; the browser test will skip" >&2
fi
