#!/usr/bin/env bash
# What some tests need beyond PyPI, installed when missing: the real MCPB bundle validator (npm registry),
# Chromium for the player view's browser test, a CJK font for the preview's captions, a PostgreSQL server and nginx
# (Debian's packages).
# Tests that need them skip, saying so, where they cannot be installed (no npm, no root).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .ci/tools/node_modules/.bin/mcpb ] && command -v npm >/dev/null 2>&1; then
  npm install --silent --no-audit --no-fund --prefix .ci/tools @anthropic-ai/mcpb@2.1.2 >/dev/null 2>&1 \
    || echo "note: npm could not install @anthropic-ai/mcpb; the bundle validation test will skip" >&2
fi
# A real MCP Apps host library for the player's test: ext-apps' AppBridge, bundled for the browser with esbuild.
if [ ! -f .ci/tools/appbridge.js ] && command -v npm >/dev/null 2>&1; then
  { npm install --silent --no-audit --no-fund --prefix .ci/tools @modelcontextprotocol/ext-apps@2.0.4 \
      esbuild@0.28.2 >/dev/null 2>&1 \
    && printf 'export { AppBridge, PostMessageTransport } from "@modelcontextprotocol/ext-apps/app-bridge";\n' \
      > .ci/tools/appbridge-entry.js \
    && .ci/tools/node_modules/.bin/esbuild .ci/tools/appbridge-entry.js --bundle --format=esm --platform=browser \
      --log-level=error --outfile=.ci/tools/appbridge.js; } \
    || echo "note: npm could not install @modelcontextprotocol/ext-apps; the AppBridge host test will skip" >&2
fi
# The TypeScript SDK, for a test of a real TS client on its defaults.
if [ ! -d .ci/tools/node_modules/@modelcontextprotocol/sdk ] && command -v npm >/dev/null 2>&1; then
  npm install --silent --no-audit --no-fund --prefix .ci/tools @modelcontextprotocol/sdk@1.32.2 >/dev/null 2>&1 \
    || echo "note: npm could not install @modelcontextprotocol/sdk; the TypeScript client test will skip" >&2
fi
# Chromium for the player view; a CJK font so the preview's Chinese captions are drawn (and tested).
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
# A PostgreSQL server for the store contract and the replicas' tests (initdb and pg_ctl, run as `postgres`).
{ command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ]; } \
  || compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
# nginx, the balancer of the replicas' test, running the deployment's own site (deploy/nginx.conf).
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
{ command -v fc-list >/dev/null 2>&1 && [ -n "$(fc-list :lang=zh file 2>/dev/null)" ]; } || missing+=(fonts-wqy-zenhei)
if [ ${#missing[@]} -gt 0 ] && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  { apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null 2>&1; }; } \
    || echo "note: apt could not install ${missing[*]}; the tests that need them will skip" >&2
fi
