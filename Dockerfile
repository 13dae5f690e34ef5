# wan-r2v-mcp for a team: streamable HTTP on $PORT at /mcp, a health check at /health. Several replicas over one
# PostgreSQL: compose.yaml.
#   docker build -t wan-r2v-mcp .
#   docker run -p 8000:8000 -v r2v-data:/data -e WAN_R2V_HTTP_TOKENS='{"<token>": "alice"}' \
#              -e WAN_R2V_PUBLIC_URL=https://r2v.example.com -e DASHSCOPE_API_KEY=sk-... wan-r2v-mcp
FROM python:3.12-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PORT=8000 \
    WAN_R2V_DATA_DIR=/data/state \
    WAN_R2V_OUTPUT_DIR=/data/videos

WORKDIR /app
COPY pyproject.toml README.md LICENSE ./
COPY src ./src
RUN pip install '.[postgres]' && useradd --create-home --uid 10001 r2v && mkdir -p /data && chown r2v:r2v /data

USER r2v
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s \
    CMD python -c "import os, urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ[\"PORT\"]}/health', timeout=4)"
# Refuses to start without WAN_R2V_HTTP_TOKENS or WAN_R2V_OAUTH_ISSUER: a public address needs caller identities.
CMD ["sh", "-c", "exec wan-r2v-mcp serve --transport http --host 0.0.0.0 --port \"$PORT\""]
