#!/usr/bin/python3
"""The server benchmark: every stage against nginx and a ceiling, in one run.

    bench.py              full run, writes docs/benchmarks.md and docs/bench/ (15-20 min)
    bench.py --quick      the same, reduced (about a minute)
    bench.py --smoke      a second per cell, one stage; results in a temporary directory
    bench.py --out DIR    write DIR/benchmarks.md and DIR/bench/ instead

`make bench` (the top Makefile) and `make -C tests/bench run [QUICK=1] [SMOKE=1]` call it.

What it measures, on one machine, load generator and servers side by side:

* HTTP throughput and latency with wrk: plaintext at 100 and 1000 connections, plaintext
  pipelined 16 deep, static files of 4 KiB and 1 MiB. Every stage from 3 on, nginx (from
  a configuration generated here) and the ceiling (ceiling/ceiling.c: counts request ends
  and answers each with a canned response, no HTTP at all) are started once and measured
  in turns: each repetition goes round all servers, starting one further along each time,
  so slow drift in the machine spreads over all of them. Servers are compared in groups
  with the same number of threads: stages 3-4 with nginx `worker_processes 1` and a
  one-thread ceiling, stages 5-6 (`--threads 2`) with 2 workers and a two-thread ceiling.
  Each figure is reported as its median over the repetitions, with its spread, and as a
  ratio to nginx and to the ceiling (the median of the ratios taken repetition by
  repetition, since those were measured moments apart).
* A cross-check of one cell (plaintext, 100 connections) with h2load instead of wrk.
* Echo throughput of stages 1 and 2 in MB/s with echoload/echoload.c.
* System calls per request (strace -c on the running server while h2load sends a fixed
  number of requests, pipelined and not) and server memory per idle keep-alive connection
  (VmRSS before and after 10,000 connections that made one request each and stay open).
* Where the CPU time goes: perf's flat profile under load (flame graphs need a renderer
  that Debian 12 does not package; the report says so).

Everything it writes comes from this run's measurements: the markdown report, the SVG
plots (gnuplot) and results.json with every repetition's raw numbers.
"""

import argparse
import datetime
import http.client
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
CEILING = HERE / "ceiling" / "ceiling"
ECHOLOAD = HERE / "echoload" / "echoload"
PIPELINE_LUA = HERE / "pipeline.lua"
HOST = "127.0.0.1"
PIPELINE_DEPTH = 16


# --- How much to measure ------------------------------------------------------------------


@dataclass
class Mode:
    name: str
    seconds: int  # one wrk or h2load measurement
    reps: int  # repetitions of every (cell, server)
    warmup: int  # seconds of unrecorded load per server and cell before the first repetition
    h2load_reps: int
    echo_seconds: int
    echo_reps: int
    strace_requests: int  # h2load -n under strace
    idle_connections: int
    perf_seconds: int
    profile_references: bool  # profile the ceiling and nginx too, not only the stages
    cells: tuple  # names of the HTTP cells measured


ALL_CELLS = ("plaintext-c100", "plaintext-c1000", "pipelined-c100", "static-4k", "static-1m")

MODES = {
    "full": Mode("full", seconds=4, reps=5, warmup=1, h2load_reps=2, echo_seconds=3,
                 echo_reps=3, strace_requests=20000, idle_connections=10000,
                 perf_seconds=5, profile_references=True, cells=ALL_CELLS),
    "quick": Mode("quick", seconds=1, reps=1, warmup=0, h2load_reps=0, echo_seconds=1,
                  echo_reps=1, strace_requests=2000, idle_connections=1000,
                  perf_seconds=1, profile_references=False, cells=ALL_CELLS),
    "smoke": Mode("smoke", seconds=1, reps=1, warmup=0, h2load_reps=1, echo_seconds=1,
                  echo_reps=1, strace_requests=1000, idle_connections=200,
                  perf_seconds=1, profile_references=False,
                  cells=("plaintext-c100", "pipelined-c100", "static-4k")),
}


@dataclass
class Cell:
    name: str
    title: str
    short: str  # a column heading
    path: str
    connections: int
    pipeline: int = 0  # requests per batch; 0 = one at a time
    body_size: int | None = None  # None: the plaintext body; else a static file of this size


CELLS = {
    c.name: c
    for c in [
        Cell("plaintext-c100", "plaintext, 100 connections", "plaintext c=100", "/plaintext",
             100),
        Cell("plaintext-c1000", "plaintext, 1000 connections", "plaintext c=1000",
             "/plaintext", 1000),
        Cell("pipelined-c100", f"plaintext pipelined {PIPELINE_DEPTH} deep, 100 connections",
             f"pipelined {PIPELINE_DEPTH}, c=100", "/plaintext", 100, pipeline=PIPELINE_DEPTH),
        Cell("static-4k", "static file of 4 KiB, 100 connections", "4 KiB file, c=100",
             "/4k.bin", 100, body_size=4096),
        Cell("static-1m", "static file of 1 MiB, 100 connections", "1 MiB file, c=100",
             "/1m.bin", 100, body_size=1 << 20),
    ]
}
PLAINTEXT_BODY = b"Hello, World!"


# --- Small helpers ------------------------------------------------------------------------


def log(message):
    print(message, file=sys.stderr, flush=True)


def run(argv, timeout=120, check=True, **kwargs):
    """Runs a command to completion and returns its stdout (text)."""
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kwargs)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, argv))} exited with {result.returncode}:\n"
                           f"{result.stdout[-2000:]}{result.stderr[-2000:]}")
    return result.stdout


def first_line(argv):
    """The first line a tool prints about itself (its version), or 'unavailable'."""
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        text = (result.stdout + result.stderr).strip()
        return text.splitlines()[0] if text else "unavailable"
    except (OSError, subprocess.SubprocessError):
        return "unavailable"


def median(values):
    return statistics.median(values) if values else None


def spread(values):
    """(max - min) / median, in percent: how far apart the repetitions were."""
    if len(values) < 2 or not median(values):
        return 0.0
    return (max(values) - min(values)) / median(values) * 100


def raise_nofile_limit():
    """Raises this process's descriptor limit to the hard limit; children inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def free_port():
    """A port the kernel considers free now (for nginx, which cannot take --port 0)."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def process_tree(pid):
    """pid and all its descendants (nginx: the master and its workers)."""
    children = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo.extend(children.get(p, []))
    return tree


def rss_bytes(pids):
    """The sum of VmRSS over the processes (bytes)."""
    total = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
    return total


# --- Servers --------------------------------------------------------------------------------


@dataclass
class Server:
    """One server in the benchmark: how to start it and what it can be asked."""

    key: str  # "stage4", "nginx", "ceiling" (unique within a group)
    label: str  # as the report names it
    kind: str  # "stage", "nginx" or "ceiling"
    threads: int
    number: int = 0  # a stage's number
    binary: Path | None = None  # a stage's server, built from a copy of its sources
    static: bool = True  # serves files under a root
    failure: str | None = None  # why it could not be measured
    notes: list = field(default_factory=list)  # trouble worth reporting, e.g. at exit


class Running:
    """A started server process; stop() ends it with SIGTERM and checks it exits with 0."""

    def __init__(self, server, argv, proc, port, log_path):
        self.server, self.argv, self.proc, self.port, self.log_path = (
            server, argv, proc, port, log_path)

    def pids(self):
        return process_tree(self.proc.pid)

    def url(self, path):
        return f"http://{HOST}:{self.port}{path}"

    def stop(self):
        problem = None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()  # only the process this script started
                self.proc.wait()
                problem = "did not stop within 10 s of SIGTERM"
        if problem is None and self.proc.returncode != 0:
            problem = f"exited with status {self.proc.returncode} after SIGTERM"
        if problem and problem not in self.server.notes:
            self.server.notes.append(problem)
            log(f"  {self.server.label}: {problem}")


class Lab:
    """The run's working directory: the files served, nginx's configurations, server logs."""

    def __init__(self, workdir):
        self.dir = workdir
        self.www = workdir / "www"
        self.www.mkdir()
        # nginx's workers run as nobody when it starts as root: make the files readable.
        os.chmod(workdir, 0o755)
        os.chmod(self.www, 0o755)
        for cell in CELLS.values():
            if cell.body_size:
                pattern = bytes(range(256)) * (cell.body_size // 256 + 1)
                (self.www / cell.path.lstrip("/")).write_bytes(pattern[: cell.body_size])
                os.chmod(self.www / cell.path.lstrip("/"), 0o644)
        self.count = 0
        self.nginx_conf_text = {}  # workers -> the configuration, for the report
        self.commands = {}  # server label -> its command line, for the report

    def _spawn(self, server, argv, port=None):
        """Starts argv and waits until it accepts connections. Returns a Running."""
        self.count += 1
        out_path = self.dir / f"{server.key}-{self.count}.out"
        log_path = self.dir / f"{server.key}-{self.count}.log"
        with open(out_path, "w") as out, open(log_path, "w") as err:
            proc = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{argv[0]} exited with {proc.returncode}: "
                                   f"{log_path.read_text()[-500:]}")
            if port is None:  # our programs print "listening on HOST:PORT"
                m = re.search(r"listening on \S+:(\d+)", out_path.read_text())
                if m:
                    return Running(server, argv, proc, int(m.group(1)), log_path)
            else:  # nginx: ready once it accepts
                try:
                    socket.create_connection((HOST, port), timeout=1).close()
                    return Running(server, argv, proc, port, log_path)
                except OSError:
                    pass
            time.sleep(0.02)
        proc.kill()
        proc.wait()
        raise RuntimeError(f"{argv[0]} did not start listening within 10 s")

    def start(self, server, body_size=None):
        """Starts a server; for the ceiling, body_size picks its canned response."""
        if server.kind == "stage":
            argv = [str(server.binary), "--host", HOST, "--port", "0"]
            if server.static:
                argv += ["--root", str(self.www)]
            if server.number >= 5:
                argv += ["--threads", str(server.threads)]
            port = None
        elif server.kind == "ceiling":
            argv = [str(CEILING), "--host", HOST, "--port", "0", "--threads", str(server.threads)]
            if body_size:
                argv += ["--body", str(body_size)]
            port = None
        else:
            port = free_port()
            conf = self.nginx_conf(server.threads, port)
            argv = ["nginx", "-p", str(self.dir), "-e", str(self.dir / "nginx-error.log"),
                    "-c", str(conf)]
        self.commands.setdefault(server.label, []).append(argv)
        return self._spawn(server, argv, port)

    def nginx_conf(self, workers, port):
        """Writes an nginx configuration for one instance and returns its path."""
        self.count += 1
        tmp = self.dir / f"nginx-{self.count}"
        tmp.mkdir()
        text = f"""\
# Generated for one benchmark run: a loopback port, no daemon, no logs on the fast path.
daemon off;
worker_processes {workers};
pid {tmp}/nginx.pid;
events {{
    worker_connections 20000;
}}
http {{
    access_log off;
    types {{ text/plain txt; application/octet-stream bin; }}
    default_type application/octet-stream;
    sendfile on;
    tcp_nodelay on;
    keepalive_requests 1000000000;
    keepalive_timeout 120s;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        # backlog as the stages' listen(); several workers each get their own socket
        # (reuseport), as the ceiling's threads do
        listen {HOST}:{port} backlog=4096{' reuseport' if workers > 1 else ''};
        root {self.www};
        location = /plaintext {{
            default_type text/plain;
            return 200 "Hello, World!";
        }}
    }}
}}
"""
        path = tmp / "nginx.conf"
        path.write_text(text)
        shown = text.replace(str(tmp), "$RUN").replace(str(self.www), "$RUN/www")
        self.nginx_conf_text[workers] = shown.replace(f":{port} ", ":$PORT ")
        return path


def check_answer(running, cell):
    """One request by hand before measuring: the right status and body length, or why not."""
    conn = http.client.HTTPConnection(HOST, running.port, timeout=10)
    try:
        conn.request("GET", cell.path)
        response = conn.getresponse()
        body = response.read()
    except (OSError, http.client.HTTPException) as e:
        return f"GET {cell.path}: {e}"
    finally:
        conn.close()
    expected = len(PLAINTEXT_BODY) if cell.body_size is None else cell.body_size
    if response.status != 200 or len(body) != expected:
        return f"GET {cell.path} answered {response.status} with {len(body)} bytes"
    return None


# --- Load generators ----------------------------------------------------------------------


def parse_duration_ms(text):
    """wrk's latencies: '435.00us', '1.23ms', '2.00s', '1.00m'."""
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[m.group(2)]
    return float(m.group(1)) * scale


def wrk_argv(running, cell, seconds, threads):
    argv = ["wrk", "-t", str(threads), "-c", str(cell.connections), "-d", f"{seconds}s",
            "--latency"]
    if cell.pipeline:
        argv += ["-s", str(PIPELINE_LUA)]
    argv.append(running.url(cell.path))
    if cell.pipeline:
        argv += ["--", str(cell.pipeline)]
    return argv


def wrk(running, cell, seconds, threads):
    """One wrk measurement: requests/s, p50 and p99 latency (ms), errors."""
    out = run(wrk_argv(running, cell, seconds, threads), timeout=seconds + 60)
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    if not (m and p50 and p99) or float(m.group(1)) == 0:
        raise RuntimeError(f"wrk measured nothing: {out[-300:]}")
    result = {"rps": float(m.group(1)), "p50_ms": parse_duration_ms(p50.group(1)),
              "p99_ms": parse_duration_ms(p99.group(1))}
    # wrk's percentiles are broken when it pipelines (zeros: github.com/wg/wrk/issues/236)
    # and now and then otherwise (issue 354); such a run reports no latency.
    if cell.pipeline or not 0 < result["p50_ms"] <= result["p99_ms"]:
        result["p50_ms"] = result["p99_ms"] = None
    errors = 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        errors += sum(int(g) for g in m.groups())
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        errors += int(m.group(1))
    result["errors"] = errors
    return result


def h2load_argv(running, path, threads, connections, seconds=None, requests=None,
                pipeline=1):
    argv = ["h2load", "--h1", "-t", str(threads), "-c", str(connections)]
    argv += ["-D", str(seconds)] if seconds else ["-n", str(requests)]
    if pipeline > 1:
        argv += ["-m", str(pipeline)]  # for HTTP/1.1: requests in flight per connection
    return argv + [running.url(path)]


def h2load(argv, timeout):
    """Runs h2load; returns (requests/s, requests that succeeded, requests that failed)."""
    out = run(argv, timeout=timeout)
    rps = re.search(r"finished in [\d.]+m?s, ([\d.]+) req/s", out)
    m = re.search(r"requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed,"
                  r" (\d+) errored", out)
    if not (rps and m) or int(m.group(1)) == 0:
        raise RuntimeError(f"h2load measured nothing: {out[-300:]}")
    return float(rps.group(1)), int(m.group(1)), int(m.group(2)) + int(m.group(3))


# --- The measurements -----------------------------------------------------------------------


@dataclass
class Group:
    """Servers compared with one another: the same number of threads."""

    threads: int
    servers: list  # Server; the first is the ceiling, the second nginx
    wrk: dict = field(default_factory=dict)  # cell -> server key -> [runs]
    failures: dict = field(default_factory=dict)  # cell -> server key -> reason
    h2load: dict = field(default_factory=dict)  # server key -> {"wrk": [...], "h2load": [...]}
    syscalls: dict = field(default_factory=dict)  # server key -> mode -> result
    memory: dict = field(default_factory=dict)  # server key -> result
    profiles: dict = field(default_factory=dict)  # server key -> result
    summary: dict = field(default_factory=dict)  # summarise(): cell -> server key -> figures


def attempt(server, what, measure):
    """Runs one server's measurement; if it fails, notes why and lets the others go on."""
    try:
        measure()
    except (RuntimeError, OSError, subprocess.SubprocessError) as e:
        note = f"{what} failed: {str(e)[:200]}"
        server.notes.append(note)
        log(f"  {server.label}: {note}")


def measure_wrk(lab, group, mode):
    """Every cell: all servers in turn, mode.reps times, each repetition in a new order."""
    ceilings, others = {}, []
    try:
        for server in group.servers:
            if server.kind == "ceiling":
                # One ceiling per response size; they wait idle while the others are measured.
                for size in {CELLS[c].body_size for c in mode.cells}:
                    ceilings[size] = lab.start(server, body_size=size)
            elif server.failure is None:
                try:
                    others.append(lab.start(server))
                except RuntimeError as e:
                    server.failure = str(e)
                    log(f"  {server.label} did not start: {e}")
        for cell_name in mode.cells:
            cell = CELLS[cell_name]
            runnings = []
            for r in [ceilings[cell.body_size]] + others:
                if cell.body_size and not r.server.static:
                    continue  # stage 3 has no files: it would say hello to any path
                problem = check_answer(r, cell)
                if problem:
                    group.failures.setdefault(cell_name, {})[r.server.key] = problem
                    log(f"  {cell_name} {r.server.label}: {problem}; not measured")
                else:
                    runnings.append(r)
            if mode.warmup:
                for r in runnings:
                    wrk(r, cell, mode.warmup, group.threads)
            for rep in range(mode.reps):
                order = runnings[rep % len(runnings):] + runnings[: rep % len(runnings)]
                for r in order:
                    try:
                        result = wrk(r, cell, mode.seconds, group.threads)
                    except (RuntimeError, subprocess.SubprocessError) as e:
                        # A server that stops answering leaves this cell; the others go on.
                        group.failures.setdefault(cell_name, {})[r.server.key] = str(e)[:200]
                        group.wrk.get(cell_name, {}).pop(r.server.key, None)
                        runnings.remove(r)
                        log(f"  {cell_name} {r.server.label}: {e}")
                        continue
                    group.wrk.setdefault(cell_name, {}).setdefault(r.server.key, []).append(result)
                    log(f"  {cell_name} rep {rep + 1}/{mode.reps} {r.server.label}: "
                        f"{result['rps']:,.0f} req/s, p99 {fmt_ms(result['p99_ms'])} ms")
    finally:
        for r in list(ceilings.values()) + others:
            r.stop()


def measure_h2load(lab, group, mode):
    """The plaintext c=100 cell again, wrk and h2load back to back, to see the ratios agree."""
    cell = CELLS["plaintext-c100"]
    runnings = []

    def pair(r):
        entry = group.h2load.setdefault(r.server.key, {"wrk": [], "h2load": [], "failed": 0})
        by_wrk = wrk(r, cell, mode.seconds, group.threads)["rps"]
        argv = h2load_argv(r, cell.path, group.threads, cell.connections, seconds=mode.seconds)
        by_h2load, _, failed = h2load(argv, timeout=mode.seconds + 60)
        entry["wrk"].append(by_wrk)
        entry["h2load"].append(by_h2load)
        entry["failed"] += failed
        log(f"  h2load {r.server.label}: {by_h2load:,.0f} req/s (wrk {by_wrk:,.0f})")

    try:
        for server in group.servers:
            if server.failure is None:
                attempt(server, "h2load", lambda: runnings.append(lab.start(server)))
        for rep in range(mode.h2load_reps):
            order = runnings[rep % len(runnings):] + runnings[: rep % len(runnings)]
            for r in order:
                attempt(r.server, "h2load", lambda: pair(r))
    finally:
        for r in runnings:
            r.stop()


def parse_strace_summary(text):
    """strace -c's table: {syscall: calls} and the total."""
    calls, total = {}, 0
    for line in text.splitlines():
        fields = line.split()
        # % time, seconds, usecs/call, calls, [errors,] syscall
        if len(fields) >= 5 and re.fullmatch(r"[\d.]+", fields[0]) and fields[3].isdigit():
            if fields[-1] == "total":
                total = int(fields[3])
            else:
                calls[fields[-1]] = int(fields[3])
    return calls, total


def measure_syscalls(lab, group, mode):
    """strace -c -f attached to each server while h2load sends a fixed number of requests."""
    for server in group.servers:
        if not server.failure:
            attempt(server, "strace", lambda: syscalls_of(lab, group, mode, server))


def syscalls_of(lab, group, mode, server):
    """System calls per request of one server, one request at a time and pipelined."""
    cell = CELLS["plaintext-c100"]
    for label, pipeline in (("one at a time", 1), (f"pipelined {PIPELINE_DEPTH}", PIPELINE_DEPTH)):
        r = lab.start(server)  # afresh: nothing left over from the last load
        out = lab.dir / f"strace-{server.key}-{pipeline}.txt"
        argv = ["strace", "-c", "-f", "-o", str(out)]
        pids = r.pids()
        for pid in pids:
            argv += ["-p", str(pid)]
        tracer = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True)
        try:
            # strace says "Process N attached" for each process once it traces it.
            attached = 0
            while attached < len(pids):
                line = tracer.stderr.readline()
                if not line:
                    raise RuntimeError("strace could not attach")
                attached += "attached" in line
            h2 = h2load_argv(r, cell.path, 1, 10, requests=mode.strace_requests,
                             pipeline=pipeline)
            _, succeeded, failed = h2load(h2, timeout=300)
        finally:
            tracer.send_signal(signal.SIGINT)  # detach and write the summary
            tracer.wait(timeout=30)
            r.stop()
        calls, total = parse_strace_summary(out.read_text())
        group.syscalls.setdefault(server.key, {})[label] = {
            "requests": succeeded, "failed": failed, "total_calls": total,
            "per_request": total / succeeded,
            "by_call": {k: v / succeeded for k, v in calls.items()},
            "command": h2,
        }
        log(f"  strace {server.label} {label}: {total / succeeded:.2f} syscalls per request")


IDLE_REQUEST = b"GET /plaintext HTTP/1.1\r\nHost: bench\r\n\r\n"


def idle_connection(port):
    """A connection that made one request, got its answer and stays open."""
    s = socket.create_connection((HOST, port))
    s.sendall(IDLE_REQUEST)
    data = b""
    while not data.endswith(PLAINTEXT_BODY):
        chunk = s.recv(4096)
        if not chunk:
            raise RuntimeError("the server closed a connection before answering")
        data += chunk
    return s


def measure_memory(lab, group, mode, nofile):
    """VmRSS before and after N idle keep-alive connections, each after one request."""
    count = min(mode.idle_connections, nofile - 500)  # this process holds them all
    for server in group.servers:
        if not server.failure:
            attempt(server, "memory", lambda: memory_of(lab, group, server, count))


def memory_of(lab, group, server, count):
    r = lab.start(server)
    sockets = []
    try:
        idle_connection(r.port).close()  # whatever the first request allocates once
        time.sleep(0.3)
        before = rss_bytes(r.pids())
        for _ in range(count):
            sockets.append(idle_connection(r.port))
        time.sleep(0.5)
        after = rss_bytes(r.pids())
    finally:
        for s in sockets:
            s.close()
        r.stop()
    group.memory[server.key] = {"connections": count, "rss_before": before, "rss_after": after,
                                "per_connection": (after - before) / count}
    log(f"  memory {server.label}: {(after - before) / count:,.0f} bytes per idle "
        f"connection ({before / 1e6:.1f} -> {after / 1e6:.1f} MB)")


def measure_profiles(lab, group, mode):
    """perf record -e cpu-clock on each server under the plaintext c=100 load."""
    for server in group.servers:
        if not server.failure and (server.kind == "stage" or mode.profile_references):
            attempt(server, "perf", lambda: profile_of(lab, group, mode, server))


def profile_of(lab, group, mode, server):
    cell = CELLS["plaintext-c100"]
    r = lab.start(server)
    data = lab.dir / f"perf-{server.key}.data"
    try:
        load = subprocess.Popen(wrk_argv(r, cell, mode.perf_seconds + 1, group.threads),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.3)  # wrk's connections are up
        pids = ",".join(map(str, r.pids()))
        run(["perf", "record", "-q", "-e", "cpu-clock", "-F", "999", "-o", str(data),
             "-p", pids, "--", "sleep", str(mode.perf_seconds)], timeout=60)
        load.wait(timeout=60)
    finally:
        r.stop()
    report = run(["perf", "report", "-i", str(data), "--stdio", "--no-children",
                  "--sort", "sym", "--percent-limit", "0"], timeout=120)
    symbols = []  # (percent, "k" for the kernel or "." for user space, symbol)
    for line in report.splitlines():
        m = re.match(r"^\s+([\d.]+)%\s+\[(.)\]\s+(.+?)\s*$", line)
        if m:
            symbols.append((float(m.group(1)), m.group(2), m.group(3)))
    kernel = sum(p for p, where, _ in symbols if where == "k")
    group.profiles[server.key] = {"kernel_percent": kernel, "top": symbols[:8]}
    log(f"  perf {server.label}: {kernel:.0f}% of its CPU time in the kernel")


def measure_echo(lab, stages, mode):
    """MB/s echoed by stages 1 and 2, through 1 and through 100 connections."""
    results = {}
    runnings = []

    def one(r, connections):
        argv = [str(ECHOLOAD), "--host", HOST, "--port", str(r.port), "--connections",
                str(connections), "--seconds", str(mode.echo_seconds)]
        lab.commands.setdefault("echoload", []).append(argv)
        out = run(argv, timeout=mode.echo_seconds + 30)  # fails if a byte came back wrong
        mbps = float(re.search(r"mbps ([\d.]+)", out).group(1))
        results.setdefault(r.server.key, {}).setdefault(connections, []).append(mbps)
        log(f"  echo {r.server.label} c={connections}: {mbps:,.0f} MB/s")

    try:
        for server in stages:
            if not server.failure:
                attempt(server, "echo", lambda: runnings.append(lab.start(server)))
        for connections in (1, 100):
            for rep in range(mode.echo_reps):
                order = runnings[rep % len(runnings):] + runnings[: rep % len(runnings)]
                for r in order:
                    attempt(r.server, "echo", lambda: one(r, connections))
    finally:
        for r in runnings:
            r.stop()
    return results


# --- The report -------------------------------------------------------------------------------


def threads_label(n):
    return f"{n} thread{'s' if n > 1 else ''}"


def fmt_int(x):
    return "-" if x is None else f"{x:,.0f}"


def fmt_ms(x):
    return "-" if x is None else (f"{x:.2f}" if x < 10 else f"{x:.1f}")


def fmt_spread(value, reps):
    """The spread, or '-' when there was only one repetition to spread."""
    return "-" if reps < 2 else f"{value:.0f}%"


def fmt_ratio(values):
    """Median of the per-repetition ratios, and their range when there are several."""
    if not values:
        return "-"
    m = median(values)
    if len(values) == 1:
        return f"{m:.2f}"
    return f"{m:.2f} ({min(values):.2f}-{max(values):.2f})"


def paired_ratios(runs, reference, key, invert=False):
    """Ratios repetition by repetition (measured moments apart), run / reference."""
    out = []
    for a, b in zip(runs, reference):
        if a[key] and b[key]:
            out.append(b[key] / a[key] if invert else a[key] / b[key])
    return out


def summarise(group):
    """Per cell and server: medians, spread and the ratios to nginx and to the ceiling."""
    table = {}
    for cell_name, by_server in group.wrk.items():
        ceiling = by_server.get("ceiling", [])
        nginx = by_server.get("nginx", [])
        for key, runs in by_server.items():
            rps = [x["rps"] for x in runs]
            table.setdefault(cell_name, {})[key] = {
                "rps": median(rps), "spread": spread(rps),
                "p50_ms": median([x["p50_ms"] for x in runs if x["p50_ms"] is not None]),
                "p99_ms": median([x["p99_ms"] for x in runs if x["p99_ms"] is not None]),
                "errors": sum(x["errors"] for x in runs),
                "vs_nginx": paired_ratios(runs, nginx, "rps"),
                "vs_ceiling": paired_ratios(runs, ceiling, "rps"),
                "p50_vs_nginx": paired_ratios(runs, nginx, "p50_ms"),
                "p99_vs_nginx": paired_ratios(runs, nginx, "p99_ms"),
            }
    return table


def machine_facts():
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    debian = Path("/etc/debian_version").read_text().strip() if Path(
        "/etc/debian_version").exists() else "not Debian"
    commit = first_line(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
    # --no-optional-locks: only read, never refresh the index
    dirty = run(["git", "--no-optional-locks", "-C", str(REPO), "status", "--porcelain",
                 "--untracked-files=no"], check=False) if shutil.which("git") else ""
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "debian": debian,
        "memory": f"{int(Path('/proc/meminfo').read_text().split()[1]) / 2**20:.1f} GiB",
        "gcc": first_line(["gcc", "--version"]),
        "wrk": first_line(["wrk", "-v"]).split(" Copyright")[0],
        "h2load": first_line(["h2load", "--version"]),
        "nginx": first_line(["nginx", "-v"]),
        "strace": first_line(["strace", "-V"]),
        "perf": first_line(["perf", "version"]),
        "gnuplot": first_line(["gnuplot", "--version"]),
        "python": platform.python_version(),
        "commit": commit + (" (with uncommitted changes)" if dirty.strip() else ""),
    }


def plot(out_dir, name, title, ylabel, clusters, series, values, errors=None, logscale=False,
         hline=None):
    """A clustered bar chart (SVG) with gnuplot: values[cluster][series], None = absent;
    errors[cluster][series] = (low, high) for the error bars; hline: a dashed line there."""
    data = out_dir / f".{name}.dat"
    with open(data, "w") as f:
        for ci, (c, row) in enumerate(zip(clusters, values)):
            cols = [f'"{c}"']
            for si, v in enumerate(row):
                if v is None:
                    cols += ["?", "?", "?"]  # gnuplot's missing value: no bar
                else:
                    lo, hi = errors[ci][si] if errors else (v, v)
                    cols += [f"{v:.6g}", f"{lo:.6g}", f"{hi:.6g}"]
            f.write(" ".join(cols) + "\n")
    columns = ", ".join(
        f"'{data}' using {3 * i + 2}:{3 * i + 3}:{3 * i + 4}:xtic(1) title '{s}'"
        for i, s in enumerate(series))
    arrow = (f"set arrow from graph 0, first {hline} to graph 1, first {hline} nohead dt 2 lw 2"
             if hline else "")
    script = f"""
set terminal svg size 960,440 dynamic font 'sans,13' background '#ffffff'
set output '{out_dir / (name + ".svg")}'
set title "{title}"
set ylabel "{ylabel}"
set datafile missing '?'
set style data histograms
set style histogram errorbars gap 2 lw 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set grid ytics
set key top right
set xtics nomirror
set yrange [{'' if logscale else '0'}:*]
{'set logscale y' if logscale else ''}
{arrow}
plot {columns}
"""
    result = subprocess.run(["gnuplot"], input=script, text=True, capture_output=True)
    data.unlink()
    if result.returncode != 0:
        raise RuntimeError(f"gnuplot: {result.stderr[-500:]}")
    return f"bench/{name}.svg"


def write_summary(w, mode, groups):
    """The headline: each stage against nginx and the ceiling, then its costs."""
    w("## Summary\n")
    w("Requests per second of each stage relative to nginx and to the ceiling (the "
      "median of the per-repetition ratios; the sections below have the spreads, the "
      "latencies and the absolute figures):\n")
    w("| stage | relative to | " + " | ".join(CELLS[c].short for c in mode.cells) + " |")
    w("|---|---|" + "--:|" * len(mode.cells))
    for group in groups:
        for s in group.servers:
            if s.kind != "stage":
                continue
            for ref, key in (("nginx", "vs_nginx"), ("ceiling", "vs_ceiling")):
                ref_label = next(x.label for x in group.servers if x.key == ref)
                cols = []
                for c in mode.cells:
                    row = group.summary.get(c, {}).get(s.key)
                    ratios = row[key] if row else []
                    cols.append(f"{median(ratios):.2f}" if ratios else "-")
                w(f"| {s.label} | {ref_label} | " + " | ".join(cols) + " |")
    w("")
    w("What a request costs the server, and what an idle connection does:\n")
    w("| stage | system calls per request, one at a time | pipelined 16 deep | "
      "nginx, one at a time / pipelined | bytes per idle connection | nginx |")
    w("|---|--:|--:|--:|--:|--:|")
    for group in groups:
        for s in group.servers:
            if s.kind != "stage":
                continue
            calls = [group.syscalls.get(k, {}) for k in (s.key, "nginx")]
            per = [[(c.get(m) or {}).get("per_request") for m in
                    ("one at a time", f"pipelined {PIPELINE_DEPTH}")] for c in calls]
            mem = [(group.memory.get(k) or {}).get("per_connection") for k in (s.key, "nginx")]
            f2 = lambda x: "-" if x is None else f"{x:.2f}"
            w(f"| {s.label} | {f2(per[0][0])} | {f2(per[0][1])} | {f2(per[1][0])} / "
              f"{f2(per[1][1])} | {fmt_int(mem[0])} | {fmt_int(mem[1])} |")
    w("")


def write_report(out_dir, ctx):
    """benchmarks.md, the plots and results.json, from this run's numbers only."""
    mode, groups, facts = ctx["mode"], ctx["groups"], ctx["facts"]
    plots_dir = out_dir / "bench"
    plots_dir.mkdir(parents=True, exist_ok=True)
    for old in list(plots_dir.glob("throughput-*.svg")) + list(plots_dir.glob("latency-*.svg")):
        old.unlink()  # an earlier run's plots, perhaps for groups this run does not have
    md = []
    w = md.append

    w("# Benchmarks\n")
    command = "make bench" + ("" if mode.name == "full" else f" {mode.name.upper()}=1")
    w(f"Generated by `tests/bench/bench.py` (`{command}`) on {ctx['started']} UTC, "
      f"a **{mode.name}** run that took {ctx['minutes']:.1f} minutes. "
      "Every number below was measured in that run; rerun `make bench` to replace them all.\n")
    w("**Read the ratios, not the absolute numbers.** The load generator (wrk or h2load) and "
      f"the server under test share this machine's {facts['cores']} cores, so every figure is "
      "what the pair manages together, and a faster server also leaves less CPU to wrk. "
      "Only ratios from one run compare; absolute figures from different runs or machines "
      "do not.\n")
    for group in groups:
        group.summary = summarise(group)
    write_summary(w, mode, groups)
    for s in ctx["unmeasured"] + [s for s in ctx.get("echo_servers", []) if s.failure]:
        w(f"*Not measured: {s.label}: {s.failure}*\n")
    w("## Machine\n")
    w("| | |\n|---|---|")
    for key, label in (("cpu", "CPU"), ("cores", "cores"), ("memory", "memory"),
                       ("kernel", "kernel"), ("debian", "Debian"), ("gcc", "compiler"),
                       ("wrk", "wrk"), ("h2load", "h2load"), ("nginx", "nginx"),
                       ("strace", "strace"), ("perf", "perf"), ("gnuplot", "gnuplot"),
                       ("python", "Python"), ("commit", "commit measured")):
        w(f"| {label} | {facts[key]} |")
    w(f"| load average (1, 5, 15 min) | before the run: {ctx['load_before']}; "
      f"after: {ctx['load_after']} |")
    w("")
    w("The load average before the run shows what else the machine was doing; during the "
      "run the benchmark itself keeps about two cores busy.\n")

    w("## Method\n")
    times = "once" if mode.reps == 1 else f"{mode.reps} times"
    warmup = f" after {mode.warmup} s of unrecorded warm-up" if mode.warmup else ""
    w(f"* Each wrk measurement lasts {mode.seconds} s; each (cell, server) is measured "
      f"{times}{warmup}. "
      "The servers of a group run side by side, each on its own port, and each "
      "repetition goes round all of them, starting one further along each time.")
    w("* A figure is the median over the repetitions; *spread* is (max - min) / median. "
      "The ratios are the median of the ratios taken repetition by repetition (those "
      "measurements were moments apart), with their range in brackets. Above 1 is faster "
      "for throughput; for latency, above 1 is slower.")
    w("* Servers are compared with those that have the same number of threads: stages 3 "
      "and 4 (one thread) with nginx `worker_processes 1` and a one-thread ceiling; stages "
      "5 and 6 (`--threads 2`) with 2 nginx workers and a two-thread ceiling. wrk runs as "
      "many threads as the servers of the group (`-t`).")
    w("* **The ceiling** (`tests/bench/ceiling/ceiling.c`) parses nothing: it counts the "
      "empty lines that end requests and writes a canned response for each, from one "
      "epoll loop per thread with SO_REUSEPORT (writev for small responses, sendfile from a "
      "memory file for the 1 MiB one). It is what the kernel and its TCP stack allow on "
      "this machine; `/ceiling` is each server's fraction of it.")
    w("* Stage 3 has no static files (it answers any GET with hello), so it is measured on "
      "the plaintext cells only. Before measuring, each server answers one request of the "
      "cell by hand; a wrong status or length excludes it from that cell.")
    files = ", ".join(f"`{c.path}` ({c.body_size} bytes)" for c in CELLS.values() if c.body_size)
    w(f"* The files are {files}, "
      "served from one directory by nginx and by the stages (`--root`), from the page "
      "cache. The ceiling answers them from memory (no open, no stat): in those cells its "
      "margin over a server also holds the file system's cost.")
    w("* Each stage is built at the start of the run from a copy of its directory and "
      "`shared/`, with its own Makefile (`make -C stageN-name SANITIZE=`), so that the "
      "working tree and any tests running in it meanwhile are left alone. The flags:\n")
    w("  | stage | flags |\n  |---|---|")
    for name, flags in sorted(ctx["build_flags"].items()):
        w(f"  | {name} | `{flags}` |")
    w("")
    w(f"* The script raises its descriptor limit (RLIMIT_NOFILE) to the hard limit, "
      f"{ctx['nofile']:,} here; the servers, wrk and h2load inherit it.")
    w("* nginx is Debian's, started by the script with this configuration ($RUN is the "
      "run's temporary directory, $PORT a free loopback port):\n")
    for workers, text in sorted(ctx["nginx_conf"].items()):
        w(f"```nginx\n{text}```\n")
    w("Commands (PORT is the server's port; ceilings, nginx and stages are run the same way):\n")
    w("```sh")
    for label, argvs in ctx["commands"].items():
        seen = []
        for argv in argvs:
            text = shown(argv, ctx)
            if text not in seen:
                seen.append(text)
                w(text)
    for cell_name in mode.cells:
        w(shown(ctx["wrk_commands"][cell_name], ctx) + f"    # {cell_name}")
    if len(groups) > 1:
        w("# wrk -t 2 (and h2load -t 2) for the servers with two threads")
    w("```\n")

    results = {"mode": mode.name, "started": ctx["started"], "facts": facts, "groups": []}
    for group in groups:
        summary = group.summary
        w(f"## Throughput and latency: {threads_label(group.threads)}\n")
        for s in group.servers:
            if s.failure:
                w(f"*{s.label}: {s.failure}*\n")
            for note in s.notes:
                w(f"*{s.label}: {note}*\n")
        w("| cell | server | req/s | spread | p50 ms | p99 ms | errors | /nginx | /ceiling "
          "| p50 /nginx | p99 /nginx |")
        w("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
        for cell_name in mode.cells:
            for s in group.servers:
                row = summary.get(cell_name, {}).get(s.key)
                failure = group.failures.get(cell_name, {}).get(s.key)
                if row is None:
                    if failure:
                        w(f"| {cell_name} | {s.label} | not measured: {failure} |"
                          " | | | | | | | |")
                    continue
                nginx_cols = ["-", "-", "-"] if s.key == "nginx" else [
                    fmt_ratio(row["vs_nginx"]), fmt_ratio(row["p50_vs_nginx"]),
                    fmt_ratio(row["p99_vs_nginx"])]
                w(f"| {cell_name} | {s.label} | {fmt_int(row['rps'])} "
                  f"| {fmt_spread(row['spread'], mode.reps)} "
                  f"| {fmt_ms(row['p50_ms'])} | {fmt_ms(row['p99_ms'])} | {row['errors']} "
                  f"| {nginx_cols[0]} "
                  f"| {'-' if s.key == 'ceiling' else fmt_ratio(row['vs_ceiling'])} "
                  f"| {nginx_cols[1]} | {nginx_cols[2]} |")
        w("")
        w("*errors*: wrk's socket errors and non-2xx answers, summed over the repetitions. "
          "No latency for the pipelined cell: wrk's percentiles are broken when it pipelines "
          "(zeros; https://github.com/wg/wrk/issues/236). A repetition whose percentiles "
          "are otherwise impossible (p50 of 0, p99 below p50) counts for throughput only.\n")

        # The plots: throughput relative to nginx, and p99 latency.
        if ctx["gnuplot"]:
            series = [s for s in group.servers if s.key != "nginx"]
            clusters = list(mode.cells)
            vals, errs, p99s = [], [], []
            for c in clusters:
                row_v, row_e, row_p = [], [], []
                for s in series:
                    r = summary.get(c, {}).get(s.key)
                    ratios = r["vs_nginx"] if r else []
                    row_v.append(median(ratios) if ratios else None)
                    row_e.append((min(ratios), max(ratios)) if ratios else None)
                    row_p.append(r["p99_ms"] if r else None)
                vals.append(row_v)
                errs.append(row_e)
                p99s.append(row_p)
            t = group.threads
            png1 = plot(plots_dir, f"throughput-{t}t", f"Requests per second relative to nginx "
                        f"({threads_label(t)}; nginx = 1; bars: range over "
                        "repetitions)", "x nginx, log scale", clusters, [s.label for s in series],
                        vals, errs, logscale=True, hline=1)
            all_series = group.servers
            # No latency for the pipelined cell (see above): leave it out of this plot.
            lat_clusters = [c for c in clusters if not CELLS[c].pipeline]
            p99_all = [[(summary.get(c, {}).get(s.key) or {}).get("p99_ms") for s in all_series]
                       for c in lat_clusters]
            png2 = plot(plots_dir, f"latency-p99-{t}t", f"p99 latency, ms, log scale "
                        f"({threads_label(t)}; median over repetitions)", "ms",
                        lat_clusters, [s.label for s in all_series], p99_all, None,
                        logscale=True)
            w(f"![throughput relative to nginx]({png1})\n")
            w(f"![p99 latency]({png2})\n")

        if group.h2load:
            w(f"### Cross-check with h2load ({threads_label(group.threads)})\n")
            w("The plaintext cell at 100 connections measured again with h2load right after "
              "wrk, server by server in turns: if the two tools agree on the ratios, the "
              "ratios are the server's and not the load generator's.\n")
            w("| server | wrk req/s | h2load req/s | wrk /nginx | h2load /nginx | h2load failed |")
            w("|---|--:|--:|--:|--:|--:|")
            ng = group.h2load.get("nginx")
            for s in group.servers:
                e = group.h2load.get(s.key)
                if not e:
                    continue
                rw = fmt_ratio([a / b for a, b in zip(e["wrk"], ng["wrk"])]) if ng else "-"
                rh = fmt_ratio([a / b for a, b in zip(e["h2load"], ng["h2load"])]) if ng else "-"
                w(f"| {s.label} | {fmt_int(median(e['wrk']))} | {fmt_int(median(e['h2load']))} "
                  f"| {rw} | {rh} | {e.get('failed', 0)} |")
            w("")
            w("```sh\n" + " ".join(h2load_argv_example(group, mode)) + "\n```\n")

        if not mode.h2load_reps:
            w("*No h2load cross-check in a quick run.*\n")

        if group.syscalls:
            w(f"### System calls per request ({threads_label(group.threads)})\n")
            any_entry = next(iter(group.syscalls.values()))
            first = next(iter(any_entry.values()))
            w(f"`strace -c -f` attached to the running server (all its processes and threads) "
              f"while h2load sends {first['requests']:,} requests over 10 connections, one at a "
              f"time per connection and then {PIPELINE_DEPTH} in flight (`-m {PIPELINE_DEPTH}`). "
              "The count includes accepting and closing the 10 connections.\n")
            w("| server | per request, one at a time | per request, pipelined | /nginx | "
              "/ceiling | the most frequent, one at a time (per request) |")
            w("|---|--:|--:|--:|--:|---|")
            modes = ("one at a time", f"pipelined {PIPELINE_DEPTH}")

            def per_request(key, m):
                return (group.syscalls.get(key, {}).get(m) or {}).get("per_request")

            def ratios(key, ref):
                if key == ref:
                    return "-"
                pairs = [(per_request(key, m), per_request(ref, m)) for m in modes]
                return " / ".join(f"{a / b:.2f}" if a and b else "-" for a, b in pairs)

            for s in group.servers:
                if s.key not in group.syscalls:
                    continue
                single = group.syscalls[s.key].get(modes[0]) or {"by_call": {}}
                top = sorted(single["by_call"].items(), key=lambda kv: -kv[1])[:4]
                cols = [per_request(s.key, m) for m in modes]
                w(f"| {s.label} | "
                  + " | ".join("-" if x is None else f"{x:.2f}" for x in cols)
                  + f" | {ratios(s.key, 'nginx')} | {ratios(s.key, 'ceiling')} | "
                  + ", ".join(f"{k} {v:.2f}" for k, v in top) + " |")
            w("")
            w("The ratios are given as one at a time / pipelined.\n")
            if any("io_uring_enter" in (e.get(modes[0]) or {}).get("by_call", {})
                   for e in group.syscalls.values()):
                w("With io_uring the reads, writes and accepts are requests in a ring shared "
                  "with the kernel, not system calls: strace sees only `io_uring_enter`, so "
                  "for such a server this counts kernel entries, not operations.\n")
            w("```sh\nstrace -c -f -o FILE -p SERVER_PID    # every process of the server\n"
              + shown(first["command"], ctx) + f"    # and with -m {PIPELINE_DEPTH}\n```\n")
        elif ctx.get("strace_skipped"):
            w(f"### System calls per request\n\n*Not measured: {ctx['strace_skipped']}*\n")

        if group.memory:
            n = next(iter(group.memory.values()))["connections"]
            w(f"### Memory per idle keep-alive connection ({threads_label(group.threads)})\n")
            w(f"A client opens {n:,} connections to a freshly started server, makes one "
              "request on each and keeps them all open; the server's resident memory "
              "(VmRSS from /proc, summed over its processes) before and after, divided by "
              "the connections. This is the server's own memory: the kernel's socket "
              "buffers are not in it. nginx allocates and fills its table of "
              "`worker_connections` (20,000) at start, so its RSS before already holds "
              "that part of a connection's cost; the stages size theirs by RLIMIT_NOFILE "
              "with calloc, whose pages cost nothing until a connection touches them, so "
              "their figure includes it.\n")
            w("| server | RSS before | RSS after | bytes per connection | /nginx |")
            w("|---|--:|--:|--:|--:|")
            ng = group.memory.get("nginx")
            for s in group.servers:
                e = group.memory.get(s.key)
                if not e:
                    continue
                ratio = "-" if s.key == "nginx" or not ng or ng["per_connection"] <= 0 else \
                    f"{e['per_connection'] / ng['per_connection']:.2f}"
                w(f"| {s.label} | {e['rss_before'] / 1e6:.1f} MB | {e['rss_after'] / 1e6:.1f} MB "
                  f"| {fmt_int(e['per_connection'])} | {ratio} |")
            w("")

        w(f"### Where the CPU time goes ({threads_label(group.threads)})\n")
        w(ctx["flame_message"] + "\n")
        if group.profiles:
            w(f"Instead, perf's flat profile: `perf record -e cpu-clock -F 999 -p PIDS -- sleep "
              f"{mode.perf_seconds}` on the server while wrk loads the plaintext cell at 100 "
              "connections, then `perf report --no-children --sort sym`. `[k]` is the kernel.\n")
            w("| server | kernel share | the top symbols (self time) |")
            w("|---|--:|---|")
            for s in group.servers:
                e = group.profiles.get(s.key)
                if e:
                    top = "; ".join(f"{p:.1f}% [{where}] {sym}" for p, where, sym in e["top"])
                    w(f"| {s.label} | {e['kernel_percent']:.0f}% | {top} |")
            w("")
        elif ctx.get("perf_skipped"):
            w(f"*No profiles: {ctx['perf_skipped']}*\n")

        results["groups"].append({
            "threads": group.threads,
            "servers": {s.key: {"label": s.label, "failure": s.failure, "notes": s.notes}
                        for s in group.servers},
            "wrk": group.wrk, "summary": summary, "failures": group.failures,
            "h2load": group.h2load, "syscalls": group.syscalls, "memory": group.memory,
            "profiles": group.profiles,
        })

    w("## Echo throughput: stages 1 and 2\n")
    if ctx.get("echo_servers"):
        w(f"`tests/bench/echoload/echoload.c` streams a known byte pattern through each "
          f"connection, at most 64 KiB in flight per connection, for {mode.echo_seconds} s, "
          "checks every byte that comes back, and counts them: MB/s echoed (10^6 bytes "
          "per second; each byte also crossed the loopback on the way in). No Debian tool "
          "fits: wrk, h2load and ab speak HTTP, iperf3 and netperf only their own protocol "
          f"to their own server. Median over {mode.echo_reps} repetition(s), alternating "
          "the stages. Stage 1 serves one connection at a time: through 100 connections it "
          "still moves only one.\n")
        w("| stage | 1 connection, MB/s | spread | 100 connections, MB/s | spread |")
        w("|---|--:|--:|--:|--:|")
        for server in ctx["echo_servers"]:
            by_c = ctx["echo"].get(server.key, {})
            w(f"| {server.label} | {fmt_int(median(by_c.get(1, [])))} "
              f"| {fmt_spread(spread(by_c.get(1, [])), mode.echo_reps)} "
              f"| {fmt_int(median(by_c.get(100, [])))} "
              f"| {fmt_spread(spread(by_c.get(100, [])), mode.echo_reps)} |")
        w("")
        for server in ctx["echo_servers"]:
            for note in server.notes:
                w(f"*{server.label}: {note}*\n")
    else:
        w(f"*Not measured in this run: {ctx['echo_skipped']}*\n")
    results["echo"] = ctx["echo"]

    (out_dir / "benchmarks.md").write_text("\n".join(md).rstrip() + "\n")
    (plots_dir / "results.json").write_text(json.dumps(results, indent=1, default=str) + "\n")


def shown(argv, ctx):
    """A command line as the report prints it: paths relative to the repository, the run's
    temporary directory as $RUN, ports as PORT."""
    text = " ".join(map(str, argv)).replace(str(REPO) + "/", "")
    text = re.sub(re.escape(ctx["workdir"]) + r"/src/(stage\d-[\w-]+)/server", r"\1/server", text)
    text = text.replace(ctx["workdir"], "$RUN")
    text = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", text)
    text = re.sub(r"--port \d+", "--port PORT", text)
    return re.sub(r"nginx-\d+/", "nginx-N/", text)


def h2load_argv_example(group, mode):
    return ["h2load", "--h1", "-t", str(group.threads), "-c", "100", "-D", str(mode.seconds),
            "http://127.0.0.1:PORT/plaintext"]


# --- The run ----------------------------------------------------------------------------------


def find_stages():
    """(number, directory) of every stage with a Makefile."""
    found = []
    for makefile in sorted(REPO.glob("stage[0-9]-*/Makefile")):
        found.append((int(makefile.parent.name[5]), makefile.parent))
    return found


def build(stage_dir, src_dir):
    """Builds a stage from a copy of its sources; returns (its server, the build flags).

    The stage directory and shared/ are copied into src_dir and built there with the
    stage's own Makefile, plainly (-O2, SANITIZE= whatever the environment says). The
    working tree is never touched: the test suite may be rebuilding stageN/server in
    place (with SANITIZE=1, say) while the benchmark runs, and neither disturbs the other.
    """
    outputs = shutil.ignore_patterns("server", ".build-flags", "*.o")
    if not (src_dir / "shared").exists():
        shutil.copytree(REPO / "shared", src_dir / "shared", ignore=outputs)
    copy = src_dir / stage_dir.name
    shutil.copytree(stage_dir, copy, ignore=outputs)
    run(["make", "-s", "-C", str(copy), "SANITIZE="], timeout=300)
    flags = copy / ".build-flags"
    return copy / "server", flags.read_text().strip() if flags.exists() else "?"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a reduced run, about a minute")
    parser.add_argument("--smoke", action="store_true",
                        help="a second per cell, one stage; output to a temporary directory")
    parser.add_argument("--out", help="write DIR/benchmarks.md and DIR/bench/ (default: docs/, "
                        "or a temporary directory with --smoke)")
    args = parser.parse_args()
    mode = MODES["smoke" if args.smoke else "quick" if args.quick else "full"]

    missing = [t for t in ("wrk", "nginx", "h2load") if shutil.which(t) is None]
    missing += [str(p) for p in (CEILING, ECHOLOAD) if not p.exists()]
    if missing:
        sys.exit(f"bench.py: missing {', '.join(missing)} (make deps; make -C tests/bench)")
    out_dir = Path(args.out) if args.out else (
        Path(tempfile.mkdtemp(prefix="bench-out-")) if args.smoke else REPO / "docs")
    out_dir.mkdir(parents=True, exist_ok=True)

    nofile = raise_nofile_limit()
    started = datetime.datetime.now(datetime.timezone.utc)
    t0 = time.monotonic()
    load_before = Path("/proc/loadavg").read_text().split()[:3]
    log(f"bench: {mode.name} run, results to {out_dir}")

    # The stages: HTTP from stage 3 on, files from 4, threads from 5. The smoke run
    # measures one stage, stage 4 (the first with files), or the newest there is.
    stages = find_stages()
    http = [(n, d) for n, d in stages if n >= 3]
    echo = [(n, d) for n, d in stages if n <= 2]
    if args.smoke:
        pick = [x for x in http if x[0] == 4] or http[-1:]
        http, echo = pick, []
    workdir = Path(tempfile.mkdtemp(prefix="bench-run-"))
    (workdir / "src").mkdir()

    # A stage that does not build (one being written, say) is reported, not measured.
    binaries, build_flags, build_failures = {}, {}, {}
    for n, d in http + echo:
        log(f"bench: building {d.name}")
        try:
            binaries[n], build_flags[d.name] = build(d, workdir / "src")
        except (RuntimeError, OSError, subprocess.SubprocessError) as e:
            build_failures[n] = "did not build: " + " ".join(str(e).split())[-300:]
            log(f"  {d.name} {build_failures[n]}")

    def stage_server(n, d, threads):
        return Server(f"stage{n}", f"stage {n}", "stage", threads, n, binaries.get(n),
                      static=n >= 4, failure=build_failures.get(n))

    groups, unmeasured = [], []
    one = [stage_server(n, d, 1) for n, d in http if n < 5]
    two = [stage_server(n, d, 2) for n, d in http if n >= 5]
    for threads, members in ((1, one), (2, two)):
        if all(m.failure for m in members):
            unmeasured += members  # no group without a stage to compare
        else:
            groups.append(Group(threads, [Server("ceiling", f"ceiling ({threads})", "ceiling",
                                                 threads),
                                          Server("nginx", f"nginx ({threads} worker"
                                                 f"{'s' if threads > 1 else ''})", "nginx",
                                                 threads)] + members))

    # Optional tools: without them, their section says why it is missing.
    ctx = {"mode": mode, "groups": groups, "unmeasured": unmeasured,
           "started": started.strftime("%Y-%m-%d %H:%M"),
           "gnuplot": shutil.which("gnuplot") is not None, "wrk_commands": {}}
    if shutil.which("strace") is None:
        ctx["strace_skipped"] = "strace is not installed"
    elif subprocess.run(["strace", "-f", "-c", "-o", os.devnull, "--", "true"],
                        capture_output=True).returncode != 0:
        ctx["strace_skipped"] = "strace cannot trace here (no ptrace in this container?)"
    perf_ok = shutil.which("perf") is not None and subprocess.run(
        ["perf", "stat", "-e", "cpu-clock", "-x", ",", "--", "true"],
        capture_output=True).returncode == 0
    if not perf_ok:
        ctx["perf_skipped"] = "perf is missing or not allowed here (perf_event_paranoid)"
    renderer = shutil.which("flamegraph.pl") or (
        "/usr/share/d3-flame-graph/d3-flamegraph-base.html"
        if Path("/usr/share/d3-flame-graph/d3-flamegraph-base.html").exists() else None)
    ctx["flame_message"] = (
        "**No flame graphs:** Debian 12 packages no flame-graph renderer (`apt-cache search "
        "flamegraph` finds none; perf's own `perf script report flamegraph` needs the "
        "d3-flame-graph HTML template, packaged as libjs-d3-flame-graph by newer "
        "releases only), and this benchmark does not write one."
        if renderer is None else
        f"A flame-graph renderer is installed ({renderer}), but this script does not use it "
        "yet; the flat profile below comes from perf report.")

    ctx["workdir"] = str(workdir)
    ctx["build_flags"] = build_flags
    lab = Lab(workdir)
    try:
        for group in groups:
            log(f"bench: wrk, {group.threads}-thread group: "
                + ", ".join(s.label for s in group.servers))
            measure_wrk(lab, group, mode)
            if mode.h2load_reps:
                log("bench: h2load cross-check")
                measure_h2load(lab, group, mode)
            if "strace_skipped" not in ctx:
                log("bench: system calls per request")
                measure_syscalls(lab, group, mode)
            log("bench: memory per idle connection")
            measure_memory(lab, group, mode, nofile)
            if perf_ok:
                log("bench: perf profiles")
                measure_profiles(lab, group, mode)
        if echo:
            log("bench: echo throughput")
            ctx["echo_servers"] = [stage_server(n, d, 1) for n, d in echo]
            ctx["echo"] = measure_echo(lab, ctx["echo_servers"], mode)
        else:
            ctx["echo"] = {}
            ctx["echo_skipped"] = ("the smoke run measures one HTTP stage" if args.smoke
                                   else "no echo stage present")
        for cell_name in mode.cells:
            fake = Running(None, None, None, "PORT", None)
            ctx["wrk_commands"][cell_name] = wrk_argv(fake, CELLS[cell_name], mode.seconds,
                                                      groups[0].threads if groups else 1)
        ctx["nginx_conf"] = lab.nginx_conf_text
        ctx["commands"] = lab.commands
        ctx["facts"] = machine_facts()
        ctx["nofile"] = nofile
        ctx["load_before"] = ", ".join(load_before)
        ctx["load_after"] = ", ".join(Path("/proc/loadavg").read_text().split()[:3])
        ctx["minutes"] = (time.monotonic() - t0) / 60
        write_report(out_dir, ctx)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    log(f"bench: done in {(time.monotonic() - t0) / 60:.1f} min; {out_dir / 'benchmarks.md'}")


if __name__ == "__main__":
    main()
