"""A Gemini API emulator: `generateContent` answering first with a call of one tool, then with text, recording what
the google-genai SDK sent (the function declarations it made from MCP tools, and the function's response)."""

from __future__ import annotations

from typing import Any

from .base import Emulator, Received, Reply


class GeminiEmulator(Emulator):
    def __init__(self, call: dict[str, Any]) -> None:
        super().__init__()
        self.call = call  # {"name": ..., "args": {...}}: the function call the "model" answers with first
        self.requests: list[dict[str, Any]] = []

    def name_of(self, req: Received) -> str:
        return "generate" if req.path.endswith(":generateContent") else "other"

    def handle(self, req: Received) -> Reply:
        if self.name_of(req) != "generate":
            return Reply(404, {"error": {"code": 404, "message": "not found", "status": "NOT_FOUND"}})
        self.requests.append(req.json or {})
        answered = any("functionResponse" in part for content in (req.json or {}).get("contents", [])
                       for part in content.get("parts", []))
        part = {"text": "Done."} if answered else {"functionCall": self.call}
        return Reply(200, {"candidates": [{"content": {"role": "model", "parts": [part]}, "finishReason": "STOP",
                                           "index": 0}],
                           "usageMetadata": {"promptTokenCount": 1, "candidatesTokenCount": 1, "totalTokenCount": 2}})
