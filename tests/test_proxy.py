"""Chapter 8's recipe, run for real: stage 6 behind nginx (tools/proxy/run).

tools/proxy/run starts two stage-6 servers on ports the kernel picks, a self-signed
certificate, and nginx in front of them, terminating TLS and speaking HTTP/2 to clients,
balancing over both with passive health checks (tools/proxy/nginx.conf). The test:

- asks over HTTP/2 and TLS (nghttp), and expects h2 negotiated and a 200;
- runs wrk through the proxy for a few seconds and kills one server with SIGKILL while it
  runs: not one request may fail (no socket error, no status other than 2xx), because
  nginx sends a request that fails on the dead server to the other one;
- stops the recipe with SIGTERM, which must stop nginx and the servers and exit 0.

Needs nginx with its ssl and http_v2 modules (Debian's nginx-light), openssl, curl, wrk and
nghttp (nghttp2-client); the test is skipped, saying which is missing, without them. Where
the kernel refuses io_uring, stage 6 serves with its epoll backend, and the recipe is the
same.
"""

import os
import re
import select
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from client import scaled

REPO = Path(__file__).resolve().parent.parent
RUN = REPO / "tools" / "proxy" / "run"
TOOLS = {"nginx": "nginx-light", "openssl": "openssl", "curl": "curl", "wrk": "wrk",
         "nghttp": "nghttp2-client"}
STARTUP_TIMEOUT = 15
WRK_SECONDS = 4
KILL_AFTER = 1.5  # seconds into the wrk run
WRK_CONNECTIONS = 32
STOP_TIMEOUT = 10


def free_port():
    """A loopback port nobody listens on now (nginx binds it a moment later)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Recipe:
    """tools/proxy/run, started and read until its `listening on` line."""

    def __init__(self, server_binary, directory):
        self.directory = directory
        self.stderr_path = directory.parent / f"{directory.name}-stderr.txt"
        self.port = free_port()
        self.command = [str(RUN), "--port", str(self.port), "--dir", str(directory),
                        "--server", str(server_binary)]
        with open(self.stderr_path, "wb") as stderr:
            self.process = subprocess.Popen(self.command, cwd=REPO, stdin=subprocess.DEVNULL,
                                            stdout=subprocess.PIPE, stderr=stderr)
        self.line = self._first_line()

    def _first_line(self):
        deadline = time.monotonic() + scaled(STARTUP_TIMEOUT)
        out = b""
        while b"\n" not in out:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.process.stdout], [], [], left)[0]:
                break
            chunk = os.read(self.process.stdout.fileno(), 4096)
            if not chunk:
                break
            out += chunk
        return out.decode(errors="replace").split("\n")[0]

    def backends(self):
        """(pid, port) of each stage-6 server."""
        lines = (self.directory / "backends").read_text().split("\n")
        return [tuple(int(n) for n in line.split()) for line in lines if line.strip()]

    def report(self):
        log = self.directory / "error.log"
        return (f"command: {' '.join(self.command)}\nits stderr:\n"
                f"{self.stderr_path.read_text(errors='replace')[-3000:]}\nnginx's error.log:\n"
                f"{log.read_text(errors='replace')[-3000:] if log.exists() else '(none)'}")

    def stop(self):
        """SIGTERM; the recipe's exit status (None if it had to be killed)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return None
        finally:
            self.process.stdout.close()


@pytest.fixture
def recipe(stage, server_binary, tmp_path):
    missing = [f"{tool} ({package})" for tool, package in TOOLS.items() if not shutil.which(tool)]
    if missing:
        pytest.skip(f"missing {', '.join(missing)}: `make deps` installs them")
    # A port free a moment ago may be taken by another program before nginx binds it.
    for attempt in range(3):
        started = Recipe(REPO / server_binary, tmp_path / f"run{attempt}")
        if started.line.startswith("listening on "):
            break
        report = started.report()
        started.stop()
        if "Address already in use" not in report:
            pytest.fail(f"tools/proxy/run did not start: {started.line!r}\n{report}",
                        pytrace=False)
    else:
        pytest.fail(f"tools/proxy/run found no free port in 3 tries\n{report}", pytrace=False)
    yield started
    status = started.stop()
    if status != 0:
        pytest.fail(f"tools/proxy/run exited with status {status} after SIGTERM, expected 0\n"
                    f"{started.report()}", pytrace=False)


def wrk_errors(output):
    """The lines of wrk's report that count failed requests."""
    return [line.strip() for line in output.split("\n")
            if "Socket errors" in line or "Non-2xx" in line]


@pytest.mark.needs("http", "uring")
@pytest.mark.uninstrumented("requests through nginx to servers it starts itself, unwrapped")
def test_behind_nginx_http2_and_no_request_lost_when_a_server_dies(recipe):
    url = f"https://127.0.0.1:{recipe.port}/plaintext"

    # HTTP/2 over TLS: ALPN picks h2, and the answer is the server's.
    h2 = subprocess.run(["nghttp", "-nv", url], capture_output=True, text=True, timeout=10)
    assert "The negotiated protocol: h2" in h2.stdout and ":status: 200" in h2.stdout, (
        f"nghttp -nv {url}: no HTTP/2 200 (exit status {h2.returncode}):\n"
        f"{h2.stdout[-2000:]}{h2.stderr[-1000:]}\n{recipe.report()}")
    body = subprocess.run(["curl", "-sk", "--http2", url], capture_output=True, text=True,
                          timeout=10)
    assert body.stdout == "Hello, World!", f"curl -sk --http2 {url}: {body.stdout!r}"

    # wrk through the proxy; one server is killed while it runs.
    backends = recipe.backends()
    assert len(backends) == 2, f"expected two servers in {recipe.directory}/backends"
    wrk = subprocess.Popen(["wrk", "-t1", f"-c{WRK_CONNECTIONS}", f"-d{WRK_SECONDS}s", url],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(KILL_AFTER)
    victim, victim_port = backends[0]
    assert wrk.poll() is None, "wrk ended before the server could be killed"
    os.kill(victim, signal.SIGKILL)
    output, _ = wrk.communicate(timeout=WRK_SECONDS + 20)
    print(output)

    requests = re.search(r"(\d+) requests in", output)
    assert wrk.returncode == 0 and requests, f"wrk failed:\n{output}"
    errors = wrk_errors(output)
    assert not errors, (
        f"requests failed through the proxy when the server on port {victim_port} was "
        f"killed {KILL_AFTER} s into the run: {errors}\n{output}\n{recipe.report()}")
    # The kill happened mid-run, and nginx noticed it: the failures it retried are logged.
    log = (recipe.directory / "error.log").read_text(errors="replace")
    assert f"127.0.0.1:{victim_port}" in log, (
        f"nginx's log does not mention the killed server on port {victim_port}: was it "
        f"used at all?\n{log[-2000:]}")
