"""Host polls per task-minute with 200 tasks in flight against the DashScope emulator; CPU and memory meanwhile.

The emulator runs in its own process; the server runs here, driven through an in-process MCP client.
Anchors, in the same run: DashScope's own advice of one poll every 15 s (4 polls per task-minute), and
this process's RSS and CPU time when the server is up but idle.
Run: python bench/polling.py [TASKS] [JOB_SECONDS]
"""

from __future__ import annotations

import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio
from mcp import Client

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

EMULATOR = f"""
import sys
sys.path.insert(0, {str(ROOT / "tests")!r})
from emulators.dashscope import DashScopeEmulator
import media, pathlib, tempfile
mp4 = media.video(pathlib.Path(tempfile.mkdtemp()) / "r.mp4", 320, 240, seconds=1).read_bytes()
with DashScopeEmulator("sk-bench0000000000000000", mp4) as e:
    e.timing.pending, e.timing.running = float(sys.argv[1]) * 0.2, float(sys.argv[1]) * 0.8
    print(e.base_url, flush=True)
    for line in sys.stdin:
        polls = sum(1 for r in e.received if r.path.startswith("/api/v1/tasks/") and r.method == "GET")
        print(polls, len(e.tasks), flush=True)
"""


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def main() -> None:
    tasks = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    job_seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 120.0
    emu = subprocess.Popen([sys.executable, "-c", EMULATOR, str(job_seconds)], stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, text=True)
    base_url = emu.stdout.readline().strip()

    def host_counts() -> tuple[int, int]:
        emu.stdin.write("\n")
        emu.stdin.flush()
        polls, created = emu.stdout.readline().split()
        return int(polls), int(created)

    from wan_r2v_mcp.config import Settings
    from wan_r2v_mcp.server import build_server

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=tmp, output_dir=tmp, dashscope_api_key="sk-bench0000000000000000",
                            dashscope_base_url=base_url)
        async with Client(build_server(settings)) as client:
            await anyio.sleep(1.0)
            idle_rss, idle_cpu, t_idle = rss_mb(), cpu_seconds(), time.monotonic()
            await anyio.sleep(5.0)
            idle_cpu_rate = (cpu_seconds() - idle_cpu) / (time.monotonic() - t_idle)

            t0, cpu0 = time.monotonic(), cpu_seconds()
            ids = []
            for i in range(tasks):
                r = await client.call_tool("generate_r2v", {"prompt": f"Image 1 waves, take {i}", "provider": "dashscope",
                                                            "reference_images": ["https://cdn.example.com/a.png"]})
                ids.append(r.structured_content["task_id"])
            submitted = time.monotonic()
            peak_rss = rss_mb()
            while True:
                listing = await client.call_tool("list_tasks", {"limit": 1, "status": "succeeded"})
                done = listing.structured_content["total"]
                peak_rss = max(peak_rss, rss_mb())
                if done >= tasks:
                    break
                await anyio.sleep(2.0)
            elapsed = time.monotonic() - t0
            cpu = cpu_seconds() - cpu0
            polls, created = host_counts()
    emu.stdin.close()
    emu.wait(timeout=10)
    # Each task is in flight from its submission until it finished (about job_seconds after), plus the poll lag.
    task_minutes = tasks * (elapsed - (submitted - t0) / 2) / 60
    per_task_minute = polls / task_minutes
    print(f"{tasks} tasks of {job_seconds:.0f} s each, {created} created at the host, all done in {elapsed:.0f} s")
    print(f"host polls: {polls} = {per_task_minute:.2f} per task-minute; anchor (one poll per 15 s as DashScope "
          f"advises) 4.00; ratio {per_task_minute / 4:.2f}x")
    print(f"server CPU: {cpu / elapsed:.1%} of one core meanwhile (idle anchor {idle_cpu_rate:.1%})")
    print(f"server RSS: peak {peak_rss:.0f} MB vs idle {idle_rss:.0f} MB (ratio {peak_rss / idle_rss:.2f}x)")


if __name__ == "__main__":
    anyio.run(main)
