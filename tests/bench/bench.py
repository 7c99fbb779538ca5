#!/usr/bin/python3
"""The server benchmark: every stage against nginx, h2o, lighttpd, hyper and a ceiling, in one run.

    bench.py              full run, writes docs/benchmarks.md and docs/bench/ (about 25 min)
    bench.py --quick      the same, reduced (a few minutes); writes tests/bench/quick/, which
                          git ignores, so that it never replaces the committed full results
    bench.py --smoke      a second per cell, stage 5 and the peers; results in a temporary
                          directory
    bench.py --out DIR    write DIR/benchmarks.md and DIR/bench/ instead

`make bench` (the top Makefile) and `make -C tests/bench run [QUICK=1] [SMOKE=1]` call it.

What it measures, on one machine, load generator and servers side by side:

* HTTP throughput and latency with wrk, in cells: plaintext at 100, 1000 and 10,000
  connections, plaintext pipelined 16 deep, a new connection per request (`Connection:
  close`), static files of 4 KiB and 1 MiB, and a 1 MiB upload to /echo that comes back
  (MB/s). Every stage from 3 on, the peers and the ceiling (ceiling/ceiling.c: counts
  request ends and answers each with a canned response, no HTTP at all) are started once
  and measured in turns: each repetition goes round all servers, starting one further along
  each time, so slow drift in the machine spreads over all of them. Servers are compared in
  groups with the same number of threads: stages 3-4 with nginx `worker_processes 1` and a
  one-thread ceiling; stages 5-6 (`--threads 2`) with the peers a user would pick instead,
  each with 2 workers: nginx, h2o and lighttpd (Debian's packages, configured here) and a
  minimal hyper server (hyper/, built offline with cargo from Debian's Rust crates), and a
  two-thread ceiling. Before a server is measured in a cell it must answer the cell's
  request correctly (status and body); one that cannot is left out of that cell, with the
  reason in the report. Each figure is reported as its median over the repetitions, with
  its spread, and as a ratio to the best peer of the cell, to nginx and to the ceiling (the
  median of the ratios taken repetition by repetition, since those were measured moments
  apart). wrk's whole latency distribution (latency.lua) is drawn per cell as percentile
  curves, every server in the same colour in every plot (COLOURS).
* A cross-check of one cell (plaintext, 100 connections) with h2load instead of wrk.
* Echo throughput of stages 1 and 2 in MB/s with echoload/echoload.c.
* System calls per request (strace -c on the running server while h2load sends a fixed
  number of requests, pipelined and not) and server memory per idle keep-alive connection
  (VmRSS before and after 10,000 connections that made one request each and stay open).
* Where the CPU time goes: perf record -g under load, as a flat profile for every server
  and as an interactive flame graph per stage (perf's flamegraph script with the
  d3-flame-graph template that `make deps` fetches with npm into flamegraph/; the graphs
  carry their JavaScript inline and work offline).

Everything it writes comes from this run's measurements: the markdown report, the SVG
plots (gnuplot), the flame graphs and results.json with every repetition's raw numbers.
"""

import argparse
import datetime
import http.client
import json
import os
import platform
import re
import resource
import shlex
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
LATENCY_LUA = HERE / "latency.lua"
HYPER_SRC = HERE / "hyper"
# Builds the benchmark keeps between runs (the hyper peer's, which takes a minute the first
# time), and where a quick run writes its report: both ignored by git.
BUILD_DIR = HERE / "build"
QUICK_OUT = HERE / "quick"
FLAME_TEMPLATE = (HERE / "flamegraph" / "node_modules" / "d3-flame-graph" / "dist" / "templates"
                  / "d3-flamegraph-base.html")
HOST = "127.0.0.1"
PIPELINE_DEPTH = 16
UPLOAD_BYTES = 1 << 20


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
    profile_references: bool  # profile the ceiling and the peers too, not only the stages
    cells: tuple  # names of the HTTP cells measured


ALL_CELLS = ("plaintext-c100", "plaintext-c1000", "plaintext-c10000", "pipelined-c100",
             "close-c100", "static-4k", "static-1m", "upload-1m")

# The full run: 8 cells x 11 servers x (1 s warm-up + 3 x 4 s) is about 18 minutes of wrk;
# with the rest, about 25.
MODES = {
    "full": Mode("full", seconds=4, reps=3, warmup=1, h2load_reps=1, echo_seconds=3,
                 echo_reps=3, strace_requests=20000, idle_connections=10000,
                 perf_seconds=5, profile_references=True, cells=ALL_CELLS),
    "quick": Mode("quick", seconds=1, reps=1, warmup=0, h2load_reps=0, echo_seconds=1,
                  echo_reps=1, strace_requests=2000, idle_connections=1000,
                  perf_seconds=1, profile_references=False, cells=ALL_CELLS),
    "smoke": Mode("smoke", seconds=1, reps=1, warmup=0, h2load_reps=1, echo_seconds=1,
                  echo_reps=1, strace_requests=1000, idle_connections=200,
                  perf_seconds=1, profile_references=False,
                  cells=("plaintext-c100", "pipelined-c100", "close-c100", "static-4k",
                         "upload-1m")),
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
    upload: int = 0  # POST a body of this many bytes, which comes back (to /echo)
    close: bool = False  # Connection: close, a new connection per request
    timeout: int = 2  # wrk's --timeout, seconds: a later answer counts as an error
    min_seconds: int = 0  # a measurement lasts at least this long, whatever the mode says


CELLS = {
    c.name: c
    for c in [
        Cell("plaintext-c100", "plaintext, 100 connections", "plaintext c=100", "/plaintext",
             100),
        Cell("plaintext-c1000", "plaintext, 1000 connections", "plaintext c=1000",
             "/plaintext", 1000),
        # The C10K claim, measured with every connection active, not only held idle. wrk
        # opens them all at once, past the listen backlog (SYNs dropped and sent again a
        # second later), and its rate counts that time: about 2 s here. At 8 s it is a
        # quarter of the measurement, at 1 s all of it (wrk then counts no request at all).
        Cell("plaintext-c10000", "plaintext, 10,000 connections", "plaintext c=10,000",
             "/plaintext", 10000, timeout=10, min_seconds=8),
        Cell("pipelined-c100", f"plaintext pipelined {PIPELINE_DEPTH} deep, 100 connections",
             f"pipelined {PIPELINE_DEPTH}, c=100", "/plaintext", 100, pipeline=PIPELINE_DEPTH),
        Cell("close-c100", "plaintext, Connection: close (a new connection per request), "
             "100 connections", "close, c=100", "/plaintext", 100, close=True),
        Cell("static-4k", "static file of 4 KiB, 100 connections", "4 KiB file, c=100",
             "/4k.bin", 100, body_size=4096),
        Cell("static-1m", "static file of 1 MiB, 100 connections", "1 MiB file, c=100",
             "/1m.bin", 100, body_size=1 << 20),
        Cell("upload-1m", "1 MiB POST to /echo, echoed back, 16 connections",
             "1 MiB upload, c=16", "/echo", 16, upload=UPLOAD_BYTES, timeout=10),
    ]
}
PLAINTEXT_BODY = b"Hello, World!"

# The servers a stage is compared with, and one colour per server for every plot.
PEERS = ("nginx", "h2o", "lighttpd", "hyper")
COLOURS = {
    "ceiling": "#7f7f7f", "nginx": "#2ca02c", "h2o": "#1f77b4", "lighttpd": "#ff7f0e",
    "hyper": "#8c564b", "stage3": "#bcbd22", "stage4": "#9467bd", "stage5": "#17becf",
    "stage6": "#d62728",
}
# wrk's latency distribution as latency.lua prints it: these percentiles, and the maximum.
PERCENTILES = (1, 10, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99, 99.999)


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
    kind: str  # "stage", "ceiling", or a peer: "nginx", "h2o", "lighttpd", "hyper"
    threads: int
    number: int = 0  # a stage's number
    binary: Path | None = None  # a stage's server, built from a copy of its sources; hyper's
    static: bool = True  # serves files under a root
    failure: str | None = None  # why it could not be measured
    notes: list = field(default_factory=list)  # trouble worth reporting, e.g. at exit

    @property
    def processes(self):
        """How many processes it runs once ready: a master and its workers for nginx, and
        for lighttpd with more than one worker; for h2o, its threads' process and the perl
        script it starts to print a backtrace should it crash; one process (perhaps
        threaded) otherwise."""
        if self.kind == "nginx" or (self.kind == "lighttpd" and self.threads > 1):
            return 1 + self.threads
        return 2 if self.kind == "h2o" else 1

    def cannot(self, cell):
        """Why this server is not asked a cell's requests at all, or None."""
        if cell.body_size and not self.static:
            return "stage 3 has no static files (it says hello to any path)"
        if cell.upload and self.kind == "ceiling":
            return "the ceiling parses nothing, so it cannot find where a body ends"
        if cell.upload and self.kind == "nginx":
            return ("nginx has no handler that sends a request body back (nginx-light has no "
                    "echo module; Debian's libnginx-mod-http-echo is not used here)")
        if cell.upload and self.kind == "lighttpd":
            return ("lighttpd has no handler that sends a request body back (mod_magnet's Lua "
                    "could; it is not in Debian 12's lighttpd package)")
        if cell.close and self.kind == "ceiling":
            return "the ceiling reads no headers, so it never closes after an answer"
        return None


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


def answers_plaintext(port):
    """Whether a server on port answers GET /plaintext now (status 200)."""
    conn = http.client.HTTPConnection(HOST, port, timeout=2)
    try:
        conn.request("GET", "/plaintext")
        response = conn.getresponse()
        response.read()
        return response.status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


class Lab:
    """The run's working directory: the files served, the peers' configurations, server logs."""

    def __init__(self, workdir):
        self.dir = workdir
        self.www = workdir / "www"
        self.www.mkdir()
        # The peers' workers run as nobody when started as root: make the files readable.
        os.chmod(workdir, 0o755)
        os.chmod(self.www, 0o755)
        self.files = {}  # path -> the bytes served there
        for cell in CELLS.values():
            if cell.body_size:
                pattern = bytes(range(256)) * (cell.body_size // 256 + 1)
                self.files[cell.path] = pattern[: cell.body_size]
        # h2o and lighttpd serve /plaintext as a file (faster for both than a handler of
        # their own: h2o's mruby answers about a fifth fewer requests per second here).
        self.files["/plaintext"] = PLAINTEXT_BODY
        for path, data in self.files.items():
            (self.www / path.lstrip("/")).write_bytes(data)
            os.chmod(self.www / path.lstrip("/"), 0o644)
        self.count = 0
        self.conf_text = {}  # (kind, workers) -> the configuration, for the report
        self.commands = {}  # server label -> its command line, for the report

    def _spawn(self, server, argv, port=None):
        """Starts argv and waits until it answers. Returns a Running.

        Ready means: our programs (and hyper) have printed "listening on HOST:PORT"; a peer
        answers GET /plaintext, since its port accepts connections into the backlog before
        any worker serves them; and a server with worker processes has them all. nginx's
        master forks its workers only after it listens: a list of its processes taken before
        then has only the master, and strace attached to that list alone would count none
        of the workers' system calls.
        """
        self.count += 1
        out_path = self.dir / f"{server.key}-{self.count}.out"
        log_path = self.dir / f"{server.key}-{self.count}.log"
        with open(out_path, "w") as out, open(log_path, "w") as err:
            proc = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        ready = None
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{Path(argv[0]).name} exited with {proc.returncode}: "
                                   f"{log_path.read_text()[-500:]}")
            if ready is None:
                if port is None:  # "listening on HOST:PORT"
                    m = re.search(r"listening on \S+:(\d+)", out_path.read_text())
                    if m:
                        ready = Running(server, argv, proc, int(m.group(1)), log_path)
                elif answers_plaintext(port):
                    ready = Running(server, argv, proc, port, log_path)
            if ready is not None and len(ready.pids()) >= server.processes:
                return ready
            time.sleep(0.02)
        proc.kill()
        proc.wait()
        raise RuntimeError(f"{Path(argv[0]).name} was not ready within 10 s")

    def start(self, server, body_size=None):
        """Starts a server; for the ceiling, body_size picks its canned response."""
        port = None
        if server.kind == "stage":
            argv = [str(server.binary), "--host", HOST, "--port", "0"]
            if server.static:
                argv += ["--root", str(self.www)]
            if server.number >= 5:
                argv += ["--threads", str(server.threads)]
        elif server.kind == "ceiling":
            argv = [str(CEILING), "--host", HOST, "--port", "0", "--threads", str(server.threads)]
            if body_size:
                argv += ["--body", str(body_size)]
        elif server.kind == "hyper":
            argv = [str(server.binary), "--host", HOST, "--port", "0", "--root", str(self.www),
                    "--threads", str(server.threads)]
        else:
            port = free_port()
            conf = self.peer_conf(server.kind, server.threads, port)
            argv = {
                "nginx": ["nginx", "-p", str(self.dir), "-e", str(self.dir / "nginx-error.log"),
                          "-c", str(conf)],
                "h2o": ["h2o", "-c", str(conf)],
                "lighttpd": ["lighttpd", "-D", "-f", str(conf)],
            }[server.kind]
        self.commands.setdefault(server.label, []).append(argv)
        return self._spawn(server, argv, port)

    def peer_conf(self, kind, workers, port):
        """Writes a configuration for one instance of nginx, h2o or lighttpd; returns its path."""
        self.count += 1
        tmp = self.dir / f"{kind}-{self.count}"
        tmp.mkdir()
        os.chmod(tmp, 0o755)
        text = getattr(self, f"{kind}_conf")(workers, port, tmp)
        path = tmp / f"{kind}.conf"
        path.write_text(text)
        shown = text.replace(str(tmp), "$RUN").replace(str(self.www), "$RUN/www")
        self.conf_text[(kind, workers)] = re.sub(rf"\b{port}\b", "$PORT", shown)
        return path

    def nginx_conf(self, workers, port, tmp):
        return f"""\
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

    def h2o_conf(self, workers, port, tmp):
        # Started as root, h2o serves as nobody; it raises its descriptor limit itself.
        # No access-log: none is kept unless configured. /echo is an mruby handler: h2o has
        # no other way to send a request body back.
        return f"""\
# Generated for one benchmark run: a loopback port, no logs on the fast path.
listen:
  host: {HOST}
  port: {port}
num-threads: {workers}
max-connections: 20000
http1-request-timeout: 120
error-log: {tmp}/error.log
hosts:
  default:
    paths:
      /plaintext:
        file.file: {self.www}/plaintext
      /echo:
        mruby.handler: |
          Proc.new do |env|
            [200, {{"content-type" => "application/octet-stream"}}, [env["rack.input"].read]]
          end
      /:
        file.dir: {self.www}
"""

    def lighttpd_conf(self, workers, port, tmp):
        # Errors go to stderr (the run's log): lighttpd opens its error log after it has
        # become nobody, who may not write here.
        return f"""\
# Generated for one benchmark run: a loopback port, no logs on the fast path.
server.bind = "{HOST}"
server.port = {port}
server.document-root = "{self.www}"
server.username = "nobody"
server.groupname = "nogroup"
server.max-worker = {workers if workers > 1 else 0}
server.max-fds = 20000
server.max-connections = 10000
server.max-keep-alive-requests = 1000000000
server.max-keep-alive-idle = 120
server.listen-backlog = 4096
mimetype.assign = (".bin" => "application/octet-stream", "" => "text/plain")
"""


def request_bytes(cell):
    """The request a cell sends, as wrk sends it."""
    head = f"{'POST' if cell.upload else 'GET'} {cell.path} HTTP/1.1\r\nHost: {HOST}\r\n"
    if cell.close:
        head += "Connection: close\r\n"
    body = b""
    if cell.upload:
        body = b"x" * cell.upload
        head += f"Content-Type: application/octet-stream\r\nContent-Length: {len(body)}\r\n"
    return (head + "\r\n").encode() + body


def check_answer(lab, running, cell):
    """The cell's request once by hand before measuring: the right status and body (only the
    length for the ceiling, whose bodies are filler), and for the Connection: close cell an
    end of the connection after the answer. None if right, else what was wrong."""
    if cell.upload:
        expected = b"x" * cell.upload
    elif cell.body_size:
        expected = lab.files[cell.path]
    else:
        expected = PLAINTEXT_BODY
    what = f"{'POST' if cell.upload else 'GET'} {cell.path}"
    try:
        with socket.create_connection((HOST, running.port), timeout=10) as s:
            s.sendall(request_bytes(cell))
            response = http.client.HTTPResponse(s, method="POST" if cell.upload else "GET")
            response.begin()
            body = response.read()
            closed = None
            if cell.close:
                s.settimeout(5)
                try:
                    closed = s.recv(1) == b""
                except (socket.timeout, ConnectionResetError):
                    closed = False
    except (OSError, http.client.HTTPException) as e:
        return f"{what}: {e}"
    if response.status != 200:
        return f"{what} answered {response.status}"
    if running.server.kind == "ceiling":
        if len(body) != len(expected):
            return f"{what} answered {len(body)} bytes, not {len(expected)}"
    elif body != expected:
        return f"{what} answered {len(body)} bytes that are not the {len(expected)} expected"
    if cell.close and not closed:
        return f"{what} with Connection: close: the connection stayed open after the answer"
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
    if cell.timeout != 2:
        argv += ["--timeout", f"{cell.timeout}s"]
    if cell.close:
        argv += ["-H", "Connection: close"]
    # wrk's latency percentiles are meaningless when it pipelines (see wrk() below), so
    # the pipelined cell has only its own script.
    argv += ["-s", str(PIPELINE_LUA if cell.pipeline else LATENCY_LUA)]
    argv.append(running.url(cell.path))
    if cell.pipeline:
        argv += ["--", str(cell.pipeline)]
    elif cell.upload:
        argv += ["--", str(cell.upload)]
    return argv


def wrk(running, cell, seconds, threads):
    """One wrk measurement: requests/s, p50 and p99 latency (ms), the latency distribution
    (percentile -> ms, from latency.lua), errors."""
    out = run(wrk_argv(running, cell, seconds, threads), timeout=seconds + 60)
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    if not (m and p50 and p99) or float(m.group(1)) == 0:
        counted = re.search(r"\d+ requests in [\d.]+\w+", out)
        raise RuntimeError("wrk measured nothing: "
                           + (counted.group(0) if counted else " ".join(out.split())[-300:]))
    result = {"rps": float(m.group(1)), "p50_ms": parse_duration_ms(p50.group(1)),
              "p99_ms": parse_duration_ms(p99.group(1)), "percentiles": {}}
    for p, us in re.findall(r"^percentile (\S+) (\d+)$", out, re.M):
        result["percentiles"][p] = int(us) / 1000
    # wrk's percentiles are broken when it pipelines (zeros: github.com/wg/wrk/issues/236)
    # and now and then otherwise (issue 354); such a run reports no latency.
    if cell.pipeline or not 0 < result["p50_ms"] <= result["p99_ms"]:
        result["p50_ms"] = result["p99_ms"] = None
        result["percentiles"] = {}
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
    flame_graphs: dict = field(default_factory=dict)  # server key -> file name in bench/
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
                problem = r.server.cannot(cell) or check_answer(lab, r, cell)
                if problem:
                    group.failures.setdefault(cell_name, {})[r.server.key] = problem
                    log(f"  {cell_name} {r.server.label}: {problem}; not measured")
                else:
                    runnings.append(r)
            if mode.warmup and not cell.min_seconds:
                for r in runnings:
                    wrk(r, cell, mode.warmup, group.threads)
            for rep in range(mode.reps):
                order = runnings[rep % len(runnings):] + runnings[: rep % len(runnings)]
                for r in order:
                    try:
                        result = wrk(r, cell, max(mode.seconds, cell.min_seconds),
                                     group.threads)
                    except (RuntimeError, subprocess.SubprocessError) as e:
                        # A server that stops answering leaves this cell; the others go on.
                        group.failures.setdefault(cell_name, {})[r.server.key] = \
                            " ".join(str(e).split())[:200]
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


def threads_of(pids):
    """Every thread of the processes: strace -f -p attaches to each and says so."""
    tids = []
    for pid in pids:
        try:
            tids += [int(t) for t in os.listdir(f"/proc/{pid}/task")]
        except OSError:
            pass
    return tids


def syscalls_of(lab, group, mode, server):
    """System calls per request of one server, one request at a time and pipelined.

    Lab.start() returns once every process of the server is there (nginx's workers, say),
    and strace is attached to all of them, every thread of each, before the first request:
    a process or thread it missed would serve requests whose calls nobody counts. A count
    that shows it anyway (a server that forked meanwhile, or under one system call per
    request without io_uring, where a read and a write are the least a request costs) is
    an error, not a figure.
    """
    cell = CELLS["plaintext-c100"]
    for label, pipeline in (("one at a time", 1), (f"pipelined {PIPELINE_DEPTH}", PIPELINE_DEPTH)):
        r = lab.start(server)  # afresh: nothing left over from the last load
        out = lab.dir / f"strace-{server.key}-{pipeline}.txt"
        argv = ["strace", "-c", "-f", "-o", str(out)]
        pids = r.pids()
        for pid in pids:
            argv += ["-p", str(pid)]
        threads = len(threads_of(pids))
        tracer = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True)
        try:
            # strace says "Process N attached" once it traces a process, "Process N attached
            # with M threads" once it traces all M threads of one.
            attached = 0
            while attached < threads:
                line = tracer.stderr.readline()
                if not line:
                    raise RuntimeError("strace could not attach")
                m = re.search(r"attached(?: with (\d+) threads)?", line)
                if m:
                    attached += int(m.group(1) or 1)
            h2 = h2load_argv(r, cell.path, 1, 10, requests=mode.strace_requests,
                             pipeline=pipeline)
            _, succeeded, failed = h2load(h2, timeout=300)
            if sorted(r.pids()) != sorted(pids):
                raise RuntimeError(f"its processes changed while traced: {pids} -> {r.pids()}")
        finally:
            tracer.send_signal(signal.SIGINT)  # detach and write the summary
            tracer.wait(timeout=30)
            r.stop()
        calls, total = parse_strace_summary(out.read_text())
        per_request = total / succeeded
        if pipeline == 1 and per_request < 1 and "io_uring_enter" not in calls:
            raise RuntimeError(f"{per_request:.2f} system calls per request one at a time: "
                               "strace missed the processes that answered")
        group.syscalls.setdefault(server.key, {})[label] = {
            "requests": succeeded, "failed": failed, "total_calls": total,
            "per_request": per_request,
            "by_call": {k: v / succeeded for k, v in calls.items()},
            "command": h2,
        }
        log(f"  strace {server.label} {label}: {per_request:.2f} syscalls per request")


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


def measure_profiles(lab, group, mode, plots_dir, flame_graphs):
    """perf record -g on each server under the plaintext c=100 load: a flat profile for every
    server, and a flame graph for each stage into plots_dir (if flame_graphs)."""
    for server in group.servers:
        if not server.failure and (server.kind == "stage" or mode.profile_references):
            attempt(server, "perf", lambda: profile_of(lab, group, mode, server, plots_dir,
                                                       flame_graphs and server.kind == "stage"))


def perf_record_argv(seconds, pids="PIDS", data="perf.data"):
    # DWARF call graphs: neither the stages nor glibc keep frame pointers, and with -g alone
    # (frame pointers) every user-space stack breaks off at the first libc call.
    return ["perf", "record", "-q", "-e", "cpu-clock", "-F", "999", "--call-graph", "dwarf,16384",
            "-o", data, "-p", pids, "--", "sleep", str(seconds)]


def flame_graph_argv(output):
    return ["perf", "script", "report", "flamegraph", "--template", str(FLAME_TEMPLATE),
            "-o", str(output)]


def profile_of(lab, group, mode, server, plots_dir, flame_graph):
    cell = CELLS["plaintext-c100"]
    r = lab.start(server)
    # The ceiling and nginx are profiled in both groups: one directory per group.
    where = lab.dir / f"perf-{server.key}-{group.threads}t"
    where.mkdir()
    data = where / "perf.data"  # perf's flamegraph script reads the header of ./perf.data
    try:
        load = subprocess.Popen(wrk_argv(r, cell, mode.perf_seconds + 1, group.threads),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.3)  # wrk's connections are up
        pids = ",".join(map(str, r.pids()))
        run(perf_record_argv(mode.perf_seconds, pids, str(data)), timeout=60)
        load.wait(timeout=60)
    finally:
        r.stop()
    report = run(["perf", "report", "-i", str(data), "--stdio", "--no-children", "-g", "none",
                  "--sort", "sym", "--percent-limit", "0"], timeout=300)
    symbols = []  # (percent, "k" for the kernel or "." for user space, symbol)
    for line in report.splitlines():
        m = re.match(r"^\s+([\d.]+)%\s+\[(.)\]\s+(.+?)\s*$", line)
        if m:
            symbols.append((float(m.group(1)), m.group(2), m.group(3)))
    kernel = sum(p for p, where_, _ in symbols if where_ == "k")
    group.profiles[server.key] = {"kernel_percent": kernel, "top": symbols[:8]}
    log(f"  perf {server.label}: {kernel:.0f}% of its CPU time in the kernel")
    if flame_graph:
        html = plots_dir / f"flamegraph-{server.key}.html"
        run(flame_graph_argv(html), timeout=300, cwd=where)
        text = html.read_text()
        # The template carries d3 and its own code inline: a page that would fetch a script
        # from elsewhere would not work offline, and is not written.
        if re.search(r"<script[^>]*\ssrc=", text) or "/** @flamegraph_json **/" in text:
            html.unlink()
            raise RuntimeError("the flame graph template fetches scripts or was not filled in")
        title = f"{server.label} under wrk: {cell.title} ({threads_label(group.threads)})"
        html.write_text(text.replace("<title>Flame Graph</title>", f"<title>{title}</title>", 1))
        group.flame_graphs[server.key] = html.name
        log(f"  flame graph {server.label}: {html}")


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
    """Per cell and server: medians, spread, the latency distribution, and the ratios to the
    cell's best peer (the peer with the highest median rate there), to nginx and to the
    ceiling."""
    table = {}
    for cell_name, by_server in group.wrk.items():
        ceiling = by_server.get("ceiling", [])
        nginx = by_server.get("nginx", [])
        peers = [k for k in PEERS if by_server.get(k)]
        best = max(peers, key=lambda k: median([x["rps"] for x in by_server[k]]), default=None)
        for key, runs in by_server.items():
            rps = [x["rps"] for x in runs]
            distribution = {}
            for p in [str(p) for p in PERCENTILES] + ["max"]:
                values = [x["percentiles"][p] for x in runs if p in x.get("percentiles", {})]
                if values:
                    distribution[p] = median(values)
            table.setdefault(cell_name, {})[key] = {
                "rps": median(rps), "spread": spread(rps),
                "mbps": median(rps) * CELLS[cell_name].upload / 1e6 if CELLS[cell_name].upload
                else median(rps) * CELLS[cell_name].body_size / 1e6
                if CELLS[cell_name].body_size else None,
                "p50_ms": median([x["p50_ms"] for x in runs if x["p50_ms"] is not None]),
                "p99_ms": median([x["p99_ms"] for x in runs if x["p99_ms"] is not None]),
                "percentiles": distribution,
                "errors": sum(x["errors"] for x in runs),
                "best_peer": best,
                "vs_best_peer": paired_ratios(runs, by_server[best], "rps") if best else [],
                "vs_nginx": paired_ratios(runs, nginx, "rps"),
                "vs_ceiling": paired_ratios(runs, ceiling, "rps"),
                "p50_vs_nginx": paired_ratios(runs, nginx, "p50_ms"),
                "p99_vs_nginx": paired_ratios(runs, nginx, "p99_ms"),
            }
    return table


def commit_measured():
    """The commit the stages are built from, and whether the tree differed from it. Read
    before the run writes its results into the tree, which would make any tree look changed."""
    commit = first_line(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
    # --no-optional-locks: only read, never refresh the index
    dirty = run(["git", "--no-optional-locks", "-C", str(REPO), "status", "--porcelain",
                 "--untracked-files=no"], check=False) if shutil.which("git") else ""
    return commit + (" (with uncommitted changes)" if dirty.strip() else "")


def machine_facts(commit):
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    debian = Path("/etc/debian_version").read_text().strip() if Path(
        "/etc/debian_version").exists() else "not Debian"
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
        "h2o": first_line(["h2o", "--version"]),
        "lighttpd": first_line(["lighttpd", "-v"]),
        "rustc": first_line(["/usr/bin/rustc", "--version"]),
        "strace": first_line(["strace", "-V"]),
        "perf": first_line(["perf", "version"]),
        "gnuplot": first_line(["gnuplot", "--version"]),
        "python": platform.python_version(),
        "commit": commit,
    }


def plot(out_dir, name, title, ylabel, clusters, series, values, errors=None, logscale=False,
         hline=None, colours=None):
    """A clustered bar chart (SVG) with gnuplot: values[cluster][series], None = absent;
    errors[cluster][series] = (low, high) for the error bars; hline: a dashed line there;
    colours[series]: each series' colour (COLOURS)."""
    data = out_dir / f".{name}.dat"
    with open(data, "w") as f:
        for ci, (c, row) in enumerate(zip(clusters, values)):
            cols = [f'"{c}"']
            for si, v in enumerate(row):
                if v is None:
                    cols += ["?", "?", "?"]  # gnuplot's missing value: no bar
                else:
                    lo, hi = errors[ci][si] if errors and errors[ci][si] else (v, v)
                    cols += [f"{v:.6g}", f"{lo:.6g}", f"{hi:.6g}"]
            f.write(" ".join(cols) + "\n")
    columns = ", ".join(
        f"'{data}' using {3 * i + 2}:{3 * i + 3}:{3 * i + 4}:xtic(1) title '{s}'"
        + (f" lc rgb '{colours[i]}'" if colours else "")
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


def plot_percentiles(out_dir, name, title, curves):
    """Latency percentile curves (SVG): curves = [(label, colour, {percentile: ms})]. The x
    axis is 1 / (1 - p) on a log scale, so that 90%, 99%, 99.9% and 99.99% are equally far
    apart: the tail, where servers differ, gets as much room as the middle."""
    lines = []
    for i, (label, colour, dist) in enumerate(curves):
        data = out_dir / f".{name}.{i}.dat"
        points = sorted((float(p), ms) for p, ms in dist.items() if p != "max")
        data.write_text("".join(f"{1 / (1 - p / 100):.6g} {ms:.6g}\n" for p, ms in points))
        lines.append(f"'{data}' using 1:2 with linespoints lw 2 pt 7 ps 0.6 "
                     f"lc rgb '{colour}' title '{label}'")
    script = f"""
set terminal svg size 960,440 dynamic font 'sans,13' background '#ffffff'
set output '{out_dir / (name + ".svg")}'
set title "{title}"
set xlabel "percentile"
set ylabel "latency, ms (log scale)"
set logscale xy
set xrange [1:100000]
set xtics ("0%%" 1, "50%%" 2, "90%%" 10, "99%%" 100, "99.9%%" 1000, "99.99%%" 10000, "99.999%%" 100000)
set grid xtics ytics
set key outside right top
plot {", ".join(lines)}
"""
    result = subprocess.run(["gnuplot"], input=script, text=True, capture_output=True)
    for i in range(len(curves)):
        (out_dir / f".{name}.{i}.dat").unlink()
    if result.returncode != 0:
        raise RuntimeError(f"gnuplot: {result.stderr[-500:]}")
    return f"bench/{name}.svg"


def write_summary(w, mode, groups):
    """The headline: each stage against the best peer, nginx and the ceiling, then its costs."""
    w("## Summary\n")
    w("Requests per second of each stage relative to the best peer of each cell (named in "
      "brackets: the peer of the stage's group with the highest median rate in that cell), "
      "to nginx and to the ceiling: the median of the per-repetition ratios. The sections "
      "below have the spreads, the latencies and the absolute figures. Stages 3 and 4 (one "
      "thread) are compared with nginx running one worker, the only peer in their group; "
      "stages 5 and 6 (two threads) with nginx, h2o, lighttpd and hyper, two workers "
      "each.\n")
    w("| stage | relative to | " + " | ".join(CELLS[c].short for c in mode.cells) + " |")
    w("|---|---|" + "--:|" * len(mode.cells))
    for group in groups:
        for s in group.servers:
            if s.kind != "stage":
                continue
            for ref, key in (("the best peer", "vs_best_peer"), ("nginx", "vs_nginx"),
                             ("ceiling", "vs_ceiling")):
                if ref == "the best peer":
                    ref_label = ref
                else:
                    ref_label = next(x.label for x in group.servers if x.key == ref)
                cols = []
                for c in mode.cells:
                    row = group.summary.get(c, {}).get(s.key)
                    ratios = row[key] if row else []
                    text = f"{median(ratios):.2f}" if ratios else "-"
                    if ratios and key == "vs_best_peer":
                        text += f" ({row['best_peer']})"
                    cols.append(text)
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
    # An earlier run's plots and flame graphs, perhaps of servers this run does not have
    # (this run's flame graphs are already written: keep them).
    for old in list(plots_dir.glob("throughput-*.svg")) + list(plots_dir.glob("latency-*.svg")):
        old.unlink()
    fresh = {name for group in groups for name in group.flame_graphs.values()}
    for old in plots_dir.glob("flamegraph-*.html"):
        if old.name not in fresh:
            old.unlink()
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
                       ("h2o", "h2o"), ("lighttpd", "lighttpd"), ("rustc", "Rust (hyper peer)"),
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
    longer = "".join(f" ({c.short}: {c.min_seconds} s, without warm-up)"
                     for c in CELLS.values() if c.name in mode.cells and c.min_seconds > mode.seconds)
    w(f"* Each wrk measurement lasts {mode.seconds} s{longer}; each (cell, server) is measured "
      f"{times}{warmup}. "
      "The servers of a group run side by side, each on its own port, and each "
      "repetition goes round all of them, starting one further along each time.")
    w("* A figure is the median over the repetitions; *spread* is (max - min) / median. "
      "The ratios are the median of the ratios taken repetition by repetition (those "
      "measurements were moments apart), with their range in brackets. Above 1 is faster "
      "for throughput; for latency, above 1 is slower.")
    w("* Servers are compared with those that have the same number of threads: stages 3 "
      "and 4 (one thread) with nginx `worker_processes 1` and a one-thread ceiling; stages "
      "5 and 6 (`--threads 2`) with the four peers, 2 workers each, and a two-thread "
      "ceiling. wrk runs as many threads as the servers of the group (`-t`). The peers run "
      "only in the two-thread group, which keeps the run under half an hour; a stage is "
      "compared with them where it is meant to compete, with a thread per core.")
    w("* **The ceiling** (`tests/bench/ceiling/ceiling.c`) parses nothing: it counts the "
      "empty lines that end requests and writes a canned response for each, from one "
      "epoll loop per thread with SO_REUSEPORT (writev for small responses, sendfile from a "
      "memory file for the 1 MiB one). It is what the kernel and its TCP stack allow on "
      "this machine; `/ceiling` is each server's fraction of it.")
    w("* **The peers** are what a user would run instead: nginx, h2o and lighttpd, Debian's "
      "packages, each with a configuration this script generates (below), and hyper, the "
      "HTTP library under Rust's Axum (and the server a tokio program uses): "
      "`tests/bench/hyper/`, a minimal server built by the script with Debian's cargo, "
      "offline, from the crates Debian packages (librust-hyper-dev, librust-tokio-dev; "
      f"{ctx.get('hyper_versions', 'versions unknown')}), with its release profile (-O3 "
      "equivalent, line tables for perf). In the two-thread group every peer runs 2 "
      "workers (processes for nginx and lighttpd, threads for h2o and hyper); the "
      "one-thread group has nginx with one worker.")
    w("* Before measuring, each server answers one request of the cell by hand: the status "
      "must be 200 and the body exactly the expected one (the ceiling's filler bodies: the "
      "length only); in the `Connection: close` cell the server must also close the "
      "connection after its answer. A server that fails is left out of that cell with the "
      "reason in its row. Some cannot be asked at all, and say why in the same place: stage "
      "3 has no static files; the ceiling parses nothing, so it can neither find a body's "
      "end nor see `Connection: close`; nginx and lighttpd have no handler that sends a "
      "request body back.")
    w(f"* The upload cell POSTs {UPLOAD_BYTES:,} bytes to `/echo` (wrk with `latency.lua`), "
      "which sends them back: its MB/s is the upload's rate (10^6 bytes per second; as many "
      "bytes come back). The `Connection: close` cell sends that header, so every request "
      "costs a new connection: connect, accept, and a close on each side. The 10,000 "
      "connection cell has every connection active, wrk with `--timeout 10s`: wrk opens "
      "them at once, past the listen backlog (the kernel drops SYNs, and the client sends "
      "them again a second later), and its rate counts the seconds that takes; hence the "
      "longer measurement.")
    files = ", ".join(f"`{c.path}` ({c.body_size} bytes)" for c in CELLS.values() if c.body_size)
    w(f"* The files are {files}, "
      "served from one directory by the peers and by the stages (`--root`), from the page "
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
    w("* The peers' configurations, as the script writes them ($RUN is the run's temporary "
      "directory, $PORT a free loopback port). h2o and lighttpd serve `/plaintext` as a file "
      "of those 13 bytes, which both answer faster than a handler (h2o's mruby: about a fifth "
      "fewer requests per second); h2o echoes with mruby, its only way to send a body "
      "back.\n")
    syntax = {"nginx": "nginx", "h2o": "yaml", "lighttpd": "lighttpd"}
    for (kind, workers), text in sorted(ctx["peer_conf"].items()):
        w(f"```{syntax[kind]}\n{text}```\n")
    w("Commands (PORT is the server's port; ceilings, peers and stages are run the same "
      "way):\n")
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
        w("| cell | server | req/s | MB/s | spread | p50 ms | p99 ms | errors | /best peer "
          "| /nginx | /ceiling | p99 /nginx |")
        w("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
        for cell_name in mode.cells:
            for s in group.servers:
                row = summary.get(cell_name, {}).get(s.key)
                failure = group.failures.get(cell_name, {}).get(s.key)
                if row is None:
                    if failure:
                        failure = " ".join(failure.split()).replace("|", "/")
                        w(f"| {cell_name} | {s.label} | not measured: {failure} |"
                          " | | | | | | | | |")
                    continue
                best = "-" if s.key == row["best_peer"] or not row["best_peer"] else \
                    f"{fmt_ratio(row['vs_best_peer'])} ({row['best_peer']})"
                w(f"| {cell_name} | {s.label} | {fmt_int(row['rps'])} | {fmt_int(row['mbps'])} "
                  f"| {fmt_spread(row['spread'], mode.reps)} "
                  f"| {fmt_ms(row['p50_ms'])} | {fmt_ms(row['p99_ms'])} | {row['errors']} "
                  f"| {best} "
                  f"| {'-' if s.key == 'nginx' else fmt_ratio(row['vs_nginx'])} "
                  f"| {'-' if s.key == 'ceiling' else fmt_ratio(row['vs_ceiling'])} "
                  f"| {'-' if s.key == 'nginx' else fmt_ratio(row['p99_vs_nginx'])} |")
        w("")
        w("*MB/s*: the response bodies' bytes per second (for the upload, the bytes sent; as "
          "many came back). *best peer*: the peer with the highest median rate in the cell. "
          "*errors*: wrk's socket errors and non-2xx answers, summed over the repetitions. "
          "No latency for the pipelined cell: wrk's percentiles are broken when it pipelines "
          "(zeros; https://github.com/wg/wrk/issues/236). A repetition whose percentiles "
          "are otherwise impossible (p50 of 0, p99 below p50) counts for throughput only.\n")

        # The plots: throughput relative to the best peer, and the latency distributions.
        if ctx["gnuplot"]:
            series = group.servers
            colours = [COLOURS.get(s.key, "#000000") for s in series]
            clusters = list(mode.cells)
            vals, errs = [], []
            for c in clusters:
                row_v, row_e = [], []
                for s in series:
                    r = summary.get(c, {}).get(s.key)
                    ratios = [1.0] if r and s.key == r["best_peer"] else \
                        (r["vs_best_peer"] if r else [])
                    row_v.append(median(ratios) if ratios else None)
                    row_e.append((min(ratios), max(ratios)) if ratios else None)
                vals.append(row_v)
                errs.append(row_e)
            t = group.threads
            png1 = plot(plots_dir, f"throughput-{t}t", f"Requests per second relative to the "
                        f"cell's best peer ({threads_label(t)}; best peer = 1; bars: range over "
                        "repetitions)", "x best peer, log scale", clusters,
                        [s.label for s in series], vals, errs, logscale=True, hline=1,
                        colours=colours)
            # No latency for the pipelined cell (see above): leave it out of this plot.
            lat_clusters = [c for c in clusters if not CELLS[c].pipeline]
            p99_all = [[(summary.get(c, {}).get(s.key) or {}).get("p99_ms") for s in series]
                       for c in lat_clusters]
            png2 = plot(plots_dir, f"latency-p99-{t}t", f"p99 latency, ms, log scale "
                        f"({threads_label(t)}; median over repetitions)", "ms",
                        lat_clusters, [s.label for s in series], p99_all, None,
                        logscale=True, colours=colours)
            w(f"![throughput relative to the best peer]({png1})\n")
            w(f"![p99 latency]({png2})\n")
            w(f"#### Latency distributions ({threads_label(t)})\n")
            w("wrk's whole latency distribution (its `done()` hook in `latency.lua` prints "
              "every percentile), per cell: the median over the repetitions of each "
              "percentile, each server in the same colour in every plot. The tail is to the "
              "right; a curve that rises early has more slow answers. The same caveat as for "
              "p99 holds: wrk does not send while it waits, so stalls are understated.\n")
            for c in lat_clusters:
                curves = []
                for s in series:
                    r = summary.get(c, {}).get(s.key)
                    if r and r["percentiles"]:
                        curves.append((s.label, COLOURS.get(s.key, "#000000"), r["percentiles"]))
                if curves:
                    svg = plot_percentiles(plots_dir, f"latency-{c}-{t}t",
                                           f"{CELLS[c].title}: latency by percentile "
                                           f"({threads_label(t)})", curves)
                    w(f"![latency by percentile, {CELLS[c].title}]({svg})\n")

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
        if group.profiles:
            w("`" + " ".join(perf_record_argv(mode.perf_seconds)) + "` on the server while "
              "wrk loads the plaintext cell at 100 connections (PIDS: all its processes).\n")
        if group.flame_graphs:
            w("**Flame graphs**, one per stage, interactive (click to zoom, search with the "
              "box; the page works offline): `cd` to the directory of `perf.data`, then `"
              + " ".join(flame_graph_argv("FILE.html")).replace(str(REPO) + "/", "")
              + "` (Debian's perf has the script; the template is d3-flame-graph's, which "
              "`make deps` fetches with npm into `tests/bench/flamegraph/`).\n")
            for s in group.servers:
                if s.key in group.flame_graphs:
                    w(f"* [{s.label}](bench/{group.flame_graphs[s.key]})")
            w("")
        elif ctx.get("flame_skipped"):
            w(f"*No flame graphs: {ctx['flame_skipped']}*\n")
        if group.profiles:
            w("The flat profile of every server, from the same recording: `perf report "
              "--no-children -g none --sort sym`. `[k]` is the kernel.\n")
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
            "profiles": group.profiles, "flame_graphs": group.flame_graphs,
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
    text = shlex.join(map(str, argv)).replace(str(REPO) + "/", "")
    text = re.sub(re.escape(ctx["workdir"]) + r"/src/(stage\d-[\w-]+)/server", r"\1/server", text)
    text = text.replace(ctx["workdir"], "$RUN")
    text = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", text)
    text = re.sub(r"--port \d+", "--port PORT", text)
    return re.sub(r"(nginx|h2o|lighttpd)-\d+/", r"\1-N/", text)


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


def build_hyper():
    """Builds the hyper peer with Debian's cargo and rustc, offline, from the crates Debian
    packages; returns (its binary, "hyper X, tokio Y").

    The sources are copied into BUILD_DIR/hyper with their times (so cargo sees no change)
    and built there, with its own CARGO_HOME: the build is kept between runs, and the first,
    about a minute, is the only one that compiles anything. hyper/.cargo/config.toml
    replaces crates.io with /usr/share/cargo/registry. Debian's tools by their paths: a
    rustup toolchain first on PATH would be another compiler.
    """
    cargo = Path("/usr/bin/cargo")
    if not cargo.exists():
        raise RuntimeError("Debian's cargo is not installed (`make deps` installs it)")
    src = BUILD_DIR / "hyper"
    shutil.copytree(HYPER_SRC, src, dirs_exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CARGO", "RUSTUP"))}
    env.update(PATH="/usr/bin:/bin", RUSTC="/usr/bin/rustc", CARGO_HOME=str(BUILD_DIR / "cargo"))
    run([str(cargo), "build", "--release", "--offline", "--quiet"], cwd=src, env=env,
        timeout=1200)
    lock = (src / "Cargo.lock").read_text()
    versions = [f"{name} {m.group(1)}" for name in ("hyper", "tokio") for m in [re.search(
        rf'name = "{name}"\nversion = "([^"]+)"', lock)] if m]
    return src / "target" / "release" / "hyper-peer", ", ".join(versions)


def estimate_minutes(groups, mode, echo_stages):
    """How long the run should take: the seconds of load it generates, and about 0.2 s more
    per load generator run, 1 s per server start. Checked on a busy machine: a quick run
    estimated at 2.5 minutes (with the 10,000 connection cell at 1 s) took 3.0, a smoke
    run estimated at 1.1 took 1.0."""
    seconds = 0
    for group in groups:
        live = [s for s in group.servers if not s.failure]
        for name in mode.cells:
            cell = CELLS[name]
            n = sum(1 for s in live if not s.cannot(cell))
            runs = mode.reps + (0 if cell.min_seconds else bool(mode.warmup))
            seconds += n * (runs * 0.2 + (0 if cell.min_seconds else mode.warmup)
                            + mode.reps * max(mode.seconds, cell.min_seconds))
        n = len(live)
        seconds += n * mode.h2load_reps * 2 * (mode.seconds + 0.2)  # wrk, then h2load
        seconds += n * 2 * (1 + mode.strace_requests / 20000)  # strace: start, load
        seconds += n * (1 + mode.idle_connections / 10000)  # memory: connections opened
        seconds += sum(1 for s in live if s.kind == "stage" or mode.profile_references) \
            * (mode.perf_seconds + 3)  # perf record, then report and flame graph
    seconds += echo_stages * 2 * mode.echo_reps * (mode.echo_seconds + 0.2)
    return seconds / 60


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="a reduced run, a few minutes; output to tests/bench/quick/")
    parser.add_argument("--smoke", action="store_true",
                        help="a second per cell, stage 5 and the peers; output to a temporary "
                        "directory")
    parser.add_argument("--out", help="write DIR/benchmarks.md and DIR/bench/ (default: docs/; "
                        "tests/bench/quick/ with --quick; a temporary directory with --smoke)")
    args = parser.parse_args()
    mode = MODES["smoke" if args.smoke else "quick" if args.quick else "full"]

    missing = [t for t in ("wrk", "nginx", "h2o", "lighttpd", "h2load") if shutil.which(t) is None]
    missing += [str(p) for p in (CEILING, ECHOLOAD) if not p.exists()]
    if missing:
        sys.exit(f"bench.py: missing {', '.join(missing)} (make deps; make -C tests/bench)")
    # Only a full run replaces the committed results in docs/.
    if args.out:
        out_dir = Path(args.out)
    elif args.smoke:
        out_dir = Path(tempfile.mkdtemp(prefix="bench-out-"))
    elif args.quick:
        out_dir = QUICK_OUT
    else:
        out_dir = REPO / "docs"
    plots_dir = out_dir / "bench"
    plots_dir.mkdir(parents=True, exist_ok=True)

    nofile = raise_nofile_limit()
    started = datetime.datetime.now(datetime.timezone.utc)
    t0 = time.monotonic()
    load_before = Path("/proc/loadavg").read_text().split()[:3]
    commit = commit_measured()
    log(f"bench: {mode.name} run, results to {out_dir}")

    # The stages: HTTP from stage 3 on, files from 4, threads from 5. The smoke run
    # measures one stage, stage 5 (the first with threads, compared with every peer), or
    # the newest there is.
    stages = find_stages()
    http = [(n, d) for n, d in stages if n >= 3]
    echo = [(n, d) for n, d in stages if n <= 2]
    if args.smoke:
        pick = [x for x in http if x[0] == 5] or http[-1:]
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
    hyper_versions = None
    for threads, members in ((1, one), (2, two)):
        if all(m.failure for m in members):
            unmeasured += members  # no group without a stage to compare
            continue
        peers = [Server("nginx", f"nginx ({threads} worker{'s' if threads > 1 else ''})",
                        "nginx", threads)]
        if threads > 1:
            hyper = Server("hyper", f"hyper ({threads} threads)", "hyper", threads)
            log("bench: building the hyper peer (cargo, offline)")
            try:
                hyper.binary, hyper_versions = build_hyper()
            except (RuntimeError, OSError, subprocess.SubprocessError) as e:
                hyper.failure = "did not build: " + " ".join(str(e).split())[-300:]
                log(f"  hyper {hyper.failure}")
            peers += [Server("h2o", f"h2o ({threads} threads)", "h2o", threads),
                      Server("lighttpd", f"lighttpd ({threads} workers)", "lighttpd", threads),
                      hyper]
        groups.append(Group(threads, [Server("ceiling", f"ceiling ({threads})", "ceiling",
                                             threads)] + peers + members))

    # Optional tools: without them, their section says why it is missing.
    log(f"bench: about {estimate_minutes(groups, mode, len(echo)):.0f} minutes")
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
    flame_graphs = perf_ok and FLAME_TEMPLATE.exists()
    if perf_ok and not flame_graphs:
        ctx["flame_skipped"] = (f"the d3-flame-graph template is missing ({FLAME_TEMPLATE}); "
                                "`make deps` installs it with npm")
    ctx["hyper_versions"] = hyper_versions

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
                measure_profiles(lab, group, mode, plots_dir, flame_graphs)
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
            cell = CELLS[cell_name]
            ctx["wrk_commands"][cell_name] = wrk_argv(fake, cell,
                                                      max(mode.seconds, cell.min_seconds),
                                                      groups[0].threads if groups else 1)
        ctx["peer_conf"] = lab.conf_text
        ctx["commands"] = lab.commands
        ctx["facts"] = machine_facts(commit)
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
