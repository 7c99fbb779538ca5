"""The server benchmark's smoke run: `make -C tests/bench run SMOKE=1`.

It measures stage 5 (or the newest stage), the peers (nginx, h2o, lighttpd and the hyper
server, 2 workers each) and the ceiling for a second per cell, into a temporary directory
(never over docs/benchmarks.md), and this test checks that the run completes and that what
it wrote is well formed: every server measured in every cell it can serve, with positive
numbers, or left out with its reason; every stage's ratio to the cell's best peer; a report
with its tables, the plots and the latency distributions, a flame graph of the stage that
works offline, and the raw results as JSON. It asserts nothing about speed: the numbers of
a one-second run on a busy machine mean nothing. The system call counts are counts, though,
and must make sense on a busy machine too: every process of a server traced (nginx's
workers as well as its master), so at least a read and a write per request one at a time,
unless the server uses io_uring. It uses no server fixture, so it runs once whatever
--stage says. About a minute, and a minute more the first time, when cargo builds the
hyper peer (kept in tests/bench/build/; minutes on a busy machine).
"""

import json
import math
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
REQUIRED = ("wrk", "nginx", "h2o", "lighttpd", "h2load", "gnuplot", "/usr/bin/cargo")
PEERS = {"nginx", "h2o", "lighttpd", "hyper"}
# The cells a peer cannot be asked (bench.py, Server.cannot): nothing else may be left out.
CANNOT = {("upload-1m", "ceiling"), ("upload-1m", "nginx"), ("upload-1m", "lighttpd"),
          ("close-c100", "ceiling")}


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
        # A cold build of the hyper peer took 4 minutes on a machine loaded 12 deep.
        capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, f"the smoke run failed:\n{run.stdout[-3000:]}{run.stderr[-3000:]}"

    # It wrote to the directory it was given, not over the committed results.
    after = report_in_docs.stat().st_mtime_ns if report_in_docs.exists() else None
    assert after == before, "the smoke run rewrote docs/benchmarks.md"

    results = json.loads((tmp_path / "bench" / "results.json").read_text())
    assert results["mode"] == "smoke"
    assert all(math.isfinite(x) for x in numbers(results)), "NaN or infinity in results.json"
    [group] = results["groups"]
    kinds = set(group["servers"])
    stages = {k for k in kinds if k.startswith("stage")}
    assert {"ceiling"} | PEERS <= kinds and stages, kinds
    for key, server in group["servers"].items():
        assert server["failure"] is None, f"{key}: {server['failure']}"
        assert not server["notes"], f"{key}: {server['notes']}"

    # Every cell measured every server that can serve it; the others say why not.
    assert group["wrk"], "no wrk measurements"
    for cell, by_server in group["wrk"].items():
        expected = {k for k in kinds if (cell, k) not in CANNOT}
        assert set(by_server) == expected, f"{cell}: measured {sorted(by_server)}"
        assert set(group["failures"].get(cell, {})) == kinds - expected, (
            f"{cell}: {group['failures'].get(cell)}")
        for key, runs in by_server.items():
            assert runs and all(r["rps"] > 0 for r in runs), f"{cell} {key}: {runs}"
        # wrk's latency distribution (none when it pipelines, and none from a run whose
        # percentiles wrk got wrong, which happens now and then: bench.py, wrk()).
        if "pipelined" not in cell:
            assert any(r["percentiles"] for runs in by_server.values() for r in runs), cell
        for key in stages:
            row = group["summary"][cell][key]
            assert row["best_peer"] in PEERS and row["vs_best_peer"], (cell, row)
            assert row["vs_ceiling"] or (cell, "ceiling") in CANNOT, cell
    for key in kinds:
        assert all(x > 0 for x in group["h2load"][key]["h2load"]), key
        assert group["memory"][key]["connections"] > 0, key

    report = (tmp_path / "benchmarks.md").read_text()
    for heading in ("## Machine", "## Method", "## Throughput and latency: 2 threads",
                    "#### Latency distributions", "### Cross-check with h2load",
                    "### Memory per idle keep-alive connection", "## Echo throughput"):
        assert heading in report, f"no '{heading}' in the report"
    assert not re.search(r"\b(None|nan|inf)\b", report), "a missing number in the report"
    assert "| the best peer |" in report
    # System calls: measured, or a clear reason why not (strace may not be allowed in CI).
    # One at a time, a request costs at least a read and a write, except with io_uring;
    # fewer means strace missed the processes that answered (nginx's workers, say).
    if group["syscalls"]:
        assert set(group["syscalls"]) == kinds
        for key, by_mode in group["syscalls"].items():
            one = by_mode["one at a time"]
            least = 0 if "io_uring_enter" in one["by_call"] else 1
            assert one["per_request"] > least, f"{key}: {one['per_request']:.2f} per request"
            assert by_mode["pipelined 16"]["per_request"] > 0, key
    else:
        assert "System calls per request\n\n*Not measured:" in report

    for plot in ("throughput-2t.svg", "latency-p99-2t.svg", "latency-plaintext-c100-2t.svg",
                 "latency-upload-1m-2t.svg"):
        text = (tmp_path / "bench" / plot).read_text()
        assert "<svg" in text and "</svg>" in text, plot
        assert f"(bench/{plot})" in report, f"the report does not show {plot}"

    # A flame graph of the stage, linked, with everything it needs inline: no script
    # fetched from elsewhere when it is opened.
    if group["profiles"]:
        for key in stages:
            name = group["flame_graphs"][key]
            html = (tmp_path / "bench" / name).read_text()
            assert f"(bench/{name})" in report
            assert "flamegraph(stacks[0], options[0])" in html and '"n": "all"' in html
            assert not re.search(r"<script[^>]*\ssrc=", html), "the flame graph fetches a script"
