"""An agent on the OpenAI Agents SDK's defaults (5 s per call, no progress), following only our words, through a
job of a given length at the DashScope emulator: how many calls it makes, how long it takes, and whether any call
timed out.

Run it (as long as the job, three minutes by default):

    .venv/bin/python tests/harness/agent_defaults.py --job-seconds 180

The agent calls generate_r2v, then get_task(task_id, wait_seconds=50) until the task is done, as the tools'
descriptions say; the SDK's stdio client starts the real server (`python -m wan_r2v_mcp`).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import media  # noqa: E402
from emulators.dashscope import DashScopeEmulator, Timing  # noqa: E402

KEY = "sk-agent0000000000000000"


async def run(job_seconds: float) -> dict:
    from agents import Agent, RunContextWrapper
    from agents.mcp import MCPServerStdio
    from agents.tool_context import ToolContext

    with tempfile.TemporaryDirectory() as tmp, DashScopeEmulator(KEY, media.Results(Path(tmp) / "results")) as host:
        host.timing = Timing(pending=job_seconds * 0.2, running=job_seconds * 0.8)
        env = {**{k: v for k, v in os.environ.items() if not k.startswith(("WAN_R2V_", "DASHSCOPE_"))},
               "WAN_R2V_DATA_DIR": f"{tmp}/data", "WAN_R2V_OUTPUT_DIR": f"{tmp}/out",
               "DASHSCOPE_API_KEY": KEY, "DASHSCOPE_BASE_URL": host.base_url}
        server = MCPServerStdio(params={"command": sys.executable, "args": ["-m", "wan_r2v_mcp"], "env": env},
                                name="wan-r2v")  # client_session_timeout_seconds: its default, 5 s
        calls: list[dict] = []
        start = time.monotonic()
        async with server:
            agent = Agent(name="director", mcp_servers=[server])
            tools = {t.name: t for t in await agent.get_all_tools(RunContextWrapper(None))}

            async def invoke(tool: str, args: dict) -> str:
                raw = json.dumps(args)
                began = time.monotonic()
                context = ToolContext(context=None, tool_name=tool, tool_call_id=f"call-{len(calls)}",
                                      tool_arguments=raw)
                answer = str(await tools[tool].on_invoke_tool(context, raw))
                calls.append({"tool": tool, "seconds": round(time.monotonic() - began, 2),
                              "timed_out": "timed out" in answer.lower()})
                return answer

            answer = await invoke("generate_r2v", {"prompt": "Image 1 waves", "provider": "dashscope",
                                                   "reference_images": ["https://cdn.example.com/a.png"],
                                                   "resolution": "720p", "duration": 2})
            task_id = re.search(r"r2v_[A-Za-z0-9_-]+", answer).group(0)
            while "succeeded" not in answer.split(".")[0] and time.monotonic() - start < job_seconds + 120:
                answer = await invoke("get_task", {"task_id": task_id, "wait_seconds": 50})
        creates = len(host.calls("/api/v1/services/aigc/video-generation/video-synthesis", "POST"))
    return {"job_seconds": job_seconds, "calls": len(calls), "seconds": round(time.monotonic() - start, 1),
            "longest_call_seconds": max(c["seconds"] for c in calls),
            "timed_out_calls": sum(c["timed_out"] for c in calls), "creates_at_host": creates,
            "video_saved": "saved to" in answer}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--job-seconds", type=float, default=180.0)
    figures = anyio.run(run, parser.parse_args().job_seconds)
    print(json.dumps(figures, indent=2))
    return 0 if figures["video_saved"] and not figures["timed_out_calls"] and figures["creates_at_host"] == 1 else 1


if __name__ == "__main__":
    sys.exit(main())
