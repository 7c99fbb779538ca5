"""The server benchmark's smoke run: `make -C tests/bench run SMOKE=1`.

It measures one stage, nginx and the ceiling for a second per cell, into a temporary
directory (never over docs/benchmarks.md), and this test checks that the run completes and
that what it wrote is well formed: every server measured in every cell with positive
numbers, a report with its tables, the plots, and the raw results as JSON. It asserts
nothing about speed: the numbers of a one-second run on a busy machine mean nothing.
It uses no server fixture, so it runs once whatever --stage says. About 25 seconds.
"""

import json
import math
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
REQUIRED = ("wrk", "nginx", "h2load", "gnuplot")


def numbers(value):
    """Every number inside a JSON value."""
    if isinstance(value, bool):
        return
    if isinstance(value, (int, float)):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from numbers(v)
    elif isinstance(value, list):
        for v in value:
            yield from numbers(v)


def test_bench_smoke_run(tmp_path):
    missing = [tool for tool in REQUIRED if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"the benchmark needs {', '.join(missing)}: `make deps` installs them")
    report_in_docs = REPO / "docs" / "benchmarks.md"
    before = report_in_docs.stat().st_mtime_ns if report_in_docs.exists() else None

    run = subprocess.run(
        ["make", "-s", "-C", str(REPO / "tests" / "bench"), "run", "SMOKE=1", f"OUT={tmp_path}"],
        capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, f"the smoke run failed:\n{run.stdout[-3000:]}{run.stderr[-3000:]}"

    # It wrote to the directory it was given, not over the committed results.
    after = report_in_docs.stat().st_mtime_ns if report_in_docs.exists() else None
    assert after == before, "the smoke run rewrote docs/benchmarks.md"

    results = json.loads((tmp_path / "bench" / "results.json").read_text())
    assert results["mode"] == "smoke"
    assert all(math.isfinite(x) for x in numbers(results)), "NaN or infinity in results.json"
    [group] = results["groups"]
    kinds = set(group["servers"])
    assert {"ceiling", "nginx"} <= kinds and any(k.startswith("stage") for k in kinds), kinds
    for key, server in group["servers"].items():
        assert server["failure"] is None, f"{key}: {server['failure']}"

    # Every cell measured every server (stage 3 has no files; the smoke stage is 4 or later).
    assert group["wrk"], "no wrk measurements"
    for cell, by_server in group["wrk"].items():
        assert set(by_server) == kinds, f"{cell}: measured {sorted(by_server)}"
        for key, runs in by_server.items():
            assert runs and all(r["rps"] > 0 for r in runs), f"{cell} {key}: {runs}"
        stage_rows = [row for k, row in group["summary"][cell].items() if k.startswith("stage")]
        assert all(row["vs_nginx"] and row["vs_ceiling"] for row in stage_rows), cell
    for key in kinds:
        assert all(x > 0 for x in group["h2load"][key]["h2load"]), key
        assert group["memory"][key]["connections"] > 0, key

    report = (tmp_path / "benchmarks.md").read_text()
    for heading in ("## Machine", "## Method", "## Throughput and latency: 1 thread",
                    "### Cross-check with h2load", "### Memory per idle keep-alive connection",
                    "## Echo throughput"):
        assert heading in report, f"no '{heading}' in the report"
    assert not re.search(r"\b(None|nan|inf)\b", report), "a missing number in the report"
    # System calls: measured, or a clear reason why not (strace may not be allowed in CI).
    if group["syscalls"]:
        for key in kinds:
            per_request = [m["per_request"] for m in group["syscalls"][key].values()]
            assert all(x and x > 0 for x in per_request), key
    else:
        assert "System calls per request\n\n*Not measured:" in report

    for plot in ("throughput-1t.svg", "latency-p99-1t.svg"):
        text = (tmp_path / "bench" / plot).read_text()
        assert "<svg" in text and "</svg>" in text, plot
        assert f"(bench/{plot})" in report, f"the report does not show {plot}"
