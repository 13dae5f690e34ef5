"""wan-r2v-mcp: an MCP server for Wan 2.7 reference-to-video."""

__version__ = "0.1.0"
