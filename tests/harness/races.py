"""Race soak: the whole default suite, several rounds in a row, each with a second copy of it running beside it.

Run it (about four minutes a round on 2 cores):

    .venv/bin/python tests/harness/races.py --rounds 5

Each round starts two `pytest` runs of the README's test command at once, each in its own temporary folder,
and waits for both. A test that depends on the machine's speed, or on running alone, fails here. It prints
each run's counts and exits 0 only if every run of every round passed.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SUMMARY = re.compile(r"(\d+) (passed|failed|error|errors|skipped)")


def one_round(copies: int) -> list[dict]:
    runs = []
    for _ in range(copies):
        folder = Path(tempfile.mkdtemp(prefix="r2v-races-"))
        log = open(folder / "pytest.log", "w")
        proc = subprocess.Popen([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                                 f"--basetemp={folder / 'tmp'}"], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        runs.append((proc, folder, log, time.monotonic()))
    results = []
    for proc, folder, log, started in runs:
        code = proc.wait()
        log.close()
        text = (folder / "pytest.log").read_text(errors="replace")
        counts = {kind.rstrip("s") if kind.startswith("error") else kind: int(n)
                  for n, kind in SUMMARY.findall(text.strip().splitlines()[-1] if text.strip() else "")}
        failed = [line.split(" ", 1)[1].split(" - ")[0] for line in text.splitlines()
                  if line.startswith(("FAILED ", "ERROR "))]
        results.append({"exit": code, **counts, "failed_tests": failed, "seconds": round(time.monotonic() - started),
                        "log": str(folder / "pytest.log")})
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--copies", type=int, default=2, help="suites running at once in each round")
    args = parser.parse_args()
    rounds = []
    for n in range(args.rounds):
        rounds.append(one_round(args.copies))
        print(json.dumps({"round": n + 1, "runs": rounds[-1]}), flush=True)
    ok = all(run["exit"] == 0 for runs in rounds for run in runs)
    print(json.dumps({"rounds": args.rounds, "copies": args.copies, "runs_passed": sum(
        run["exit"] == 0 for runs in rounds for run in runs), "runs": args.rounds * args.copies, "ok": ok}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
