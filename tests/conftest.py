from __future__ import annotations

import itertools
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

sys.path.insert(0, str(Path(__file__).parent))

# The suite starts dozens of Python processes (its workers, servers, the command line), and each one compiles every
# module it imports again, and pytest rewrites every test module again, when bytecode is not kept: seconds of CPU
# per worker, half a second per server. Kept, each is compiled once (in __pycache__, which git ignores).
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
sys.dont_write_bytecode = False

import media  # noqa: E402

from wan_r2v_mcp.config import Settings  # noqa: E402
from wan_r2v_mcp.server import build_server  # noqa: E402

PROVIDER_ENV = ("DASHSCOPE_API_KEY", "DASHSCOPE_BASE_URL", "DASHSCOPE_REGION", "DASHSCOPE_WORKSPACE_ID",
                "REPLICATE_API_TOKEN", "INFERENCE_API_KEY", "FAL_KEY", "WAN_R2V_PROVIDER", "WAN_R2V_DATA_DIR",
                "WAN_R2V_OUTPUT_DIR", "WAN_R2V_ALLOWED_DIRS", "WAN_R2V_MAX_COST_PER_TASK", "WAN_R2V_MAX_COST_PER_DAY",
                "WAN_R2V_PRICES", "WAN_R2V_WAIT_CAP")


# The follower's own waits (poll backoff, retries, reconciliation) run 10x faster against the emulators.
TIME_SCALE = 0.1


def pytest_collection_modifyitems(config, items):
    """Tests marked `long` go first, one to each worker in turn, so the run never ends waiting on one that began
    late. pytest-xdist's worksteal hands worker k the next `pending // (workers - k)` tests in collection order (and
    lets idle workers take from the end of others' shares), so each share opens with its long tests."""
    workers = getattr(config, "workerinput", {}).get("workercount")
    long = [item for item in items if item.get_closest_marker("long")]
    if not workers or not long:
        return
    rest = iter(item for item in items if not item.get_closest_marker("long"))
    ordered, left = [], len(items)
    for k in range(workers):
        share = left // (workers - k)
        mine = long[k::workers]
        ordered += mine + list(itertools.islice(rest, max(0, share - len(mine))))
        left -= share
    items[:] = ordered + list(rest)


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in PROVIDER_ENV:
        monkeypatch.delenv(name, raising=False)
    # The tests' own clients ask for no progress, which would cap every wait at WAN_R2V_QUIET_WAIT (4 s): they wait
    # as a progress-listening client may. The quiet default is tested on its own, with openai-agents on its defaults.
    monkeypatch.setenv("WAN_R2V_QUIET_WAIT", "600")


@pytest.fixture
def dirs(tmp_path: Path) -> dict[str, Path]:
    d = {"data": tmp_path / "data", "out": tmp_path / "out", "refs": tmp_path / "refs"}
    for p in d.values():
        p.mkdir()
    return d


@pytest.fixture
def settings(dirs) -> Settings:
    return Settings(data_dir=dirs["data"], output_dir=dirs["out"], progress_interval_seconds=1.0, time_scale=TIME_SCALE,
                    allowed_dirs=str(dirs["refs"]))


@pytest.fixture
def refs(dirs) -> dict[str, Path]:
    r = dirs["refs"]
    return {
        "img1": media.image(r / "alice.png", 640, 480),
        "img2": media.image(r / "cafe.jpg", 480, 640, color=(200, 90, 40)),
        "vid1": media.video(r / "bob.mp4", 320, 240, seconds=2.0),
        "voice": media.wav(r / "alice.wav", seconds=2.0),
    }


@pytest.fixture(params=["auto", "legacy"])
async def client(request, settings):
    """An MCP client on a fresh server, in each protocol era (2026-07-28 direct, and the initialize handshake)."""
    async with Client(build_server(settings), mode=request.param) as c:
        yield c


# For a test whose point is the video the preview renders, not the wire: the client in one protocol era (each era's
# wire is checked by every other test that takes `client`), so its renders are not made twice.
ONE_ERA = pytest.mark.parametrize("client", ["auto"], indirect=True)


def wire(result: Any) -> dict[str, Any]:
    """The tool result exactly as it goes over the wire."""
    return result.model_dump(mode="json", by_alias=True, exclude_none=True)


async def call(client: Client, tool: str, args: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return wire(await client.call_tool(tool, args, **kw))


async def finish(client: Client, task_id: str) -> dict[str, Any]:
    """get_task with waits until the task or sequence ends (at most 20 calls)."""
    for _ in range(20):
        r = await call(client, "get_task", {"task_id": task_id, "wait_seconds": 50})
        if r["structuredContent"]["status"] not in ("queued", "running"):
            return r
    raise AssertionError("never finished")


def text(result: dict[str, Any]) -> str:
    return result["content"][0]["text"]


def dump(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=True)


# ---------------------------------------------------------------- host emulators

DASHSCOPE_KEY = "sk-emulated0123456789abcdef"


@pytest.fixture(scope="session")
def result_videos(tmp_path_factory):
    """Real small MP4s of any length: an emulated host serves one as long as the job asked for."""
    folder = tmp_path_factory.mktemp("results")
    return media.Results(folder)


@pytest.fixture(scope="session")
def result_mp4(result_videos) -> bytes:
    """The result of a job of the default 5 s."""
    return result_videos(5)


@pytest.fixture
def dashscope(result_videos):
    from emulators.dashscope import DashScopeEmulator

    with DashScopeEmulator(DASHSCOPE_KEY, result_videos) as emulator:
        yield emulator


@pytest.fixture
def ds_settings(dirs, dashscope) -> Settings:
    return Settings(data_dir=dirs["data"], output_dir=dirs["out"], progress_interval_seconds=1.0, time_scale=TIME_SCALE,
                    allowed_dirs=str(dirs["refs"]),
                    hosts={"dashscope": {"api_key": DASHSCOPE_KEY, "base_url": dashscope.base_url}})


REPLICATE_KEY = "r8_emulated0123456789abcdef"
INFERENCE_KEY = "inf_emulated0123456789abcdef"
FAL_KEY = "fal-emulated-0123456789abcdef"


@pytest.fixture
def replicate(result_videos):
    from emulators.replicate import ReplicateEmulator

    with ReplicateEmulator(REPLICATE_KEY, result_videos) as emulator:
        yield emulator


@pytest.fixture
def inferencesh(result_videos):
    from emulators.inferencesh import InferenceShEmulator

    with InferenceShEmulator(INFERENCE_KEY, result_videos) as emulator:
        yield emulator


@pytest.fixture
def fal(result_videos):
    from emulators.fal import FalEmulator

    with FalEmulator(FAL_KEY, result_videos) as emulator:
        yield emulator


@pytest.fixture
def hosts_settings(dirs, replicate, inferencesh, fal) -> Settings:
    return Settings(data_dir=dirs["data"], output_dir=dirs["out"], progress_interval_seconds=1.0, time_scale=TIME_SCALE,
                    allowed_dirs=str(dirs["refs"]),
                    hosts={"replicate": {"api_key": REPLICATE_KEY, "base_url": replicate.base_url},
                           "inferencesh": {"api_key": INFERENCE_KEY, "base_url": inferencesh.root},
                           "fal": {"api_key": FAL_KEY, "queue_url": fal.root, "rest_url": fal.root}})


# ---------------------------------------------------------------- PostgreSQL

@pytest.fixture(scope="session")
def pg_cluster():
    """One PostgreSQL cluster for this test process (skipped where no server binaries are installed)."""
    import pg

    if pg.binaries() is None:
        pytest.skip("no PostgreSQL server here: .ci/tools.sh installs it")
    with pg.cluster() as url:
        yield url


@pytest.fixture
def pg_url(pg_cluster) -> str:
    """A fresh, empty database of its own for one test."""
    import pg

    return pg.fresh_database(pg_cluster)

