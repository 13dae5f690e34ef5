"""The MCP surface: thin functions from arguments to task views."""
