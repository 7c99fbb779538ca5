"""System calls per request, counted with strace (a count, not a timing: it does not
depend on how fast this machine is).

An epoll server pays at least one read() and one write() per batch of pipelined
requests it receives at once, plus the epoll_wait() that woke it: with 16 requests
per batch, that is 2/16 = 0.125 calls per request or more, whatever the code does.
io_uring (stage 6) queues receives and sends in memory shared with the kernel and
submits them, and collects their completions, many per system call.
"""

import signal
import subprocess
import time

import pytest

from http_client import HttpConnection, request

HELLO = b"Hello, World!"
BATCHES, DEPTH = 250, 16
MAX_CALLS_PER_REQUEST = 0.1


def total_calls(summary):
    """The calls column of the "total" line of an `strace -c` summary."""
    for line in summary.splitlines():
        fields = line.split()
        if fields and fields[-1] == "total":
            return int(fields[3])
    raise AssertionError(f"no total line in the strace summary:\n{summary}")


@pytest.mark.needs("http", "batched-io")
@pytest.mark.uninstrumented("the server's system calls")
def test_pipelined_requests_cost_few_system_calls(start_server, tmp_path):
    """4000 requests pipelined 16 deep on one connection cost the server at most 0.1
    system calls each, counted by strace attached to all its threads (RFC 9112
    section 9.3.2 allows the pipelining; the budget is this project's stage 6
    target)."""
    server = start_server("--threads", "1")
    summary_path = tmp_path / "strace-summary.txt"
    strace = subprocess.Popen(
        ["strace", "-c", "-f", "-p", str(server.pid), "-o", str(summary_path)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        time.sleep(0.5)  # let strace attach to every thread before the load starts
        with HttpConnection(server) as conn:
            for _ in range(BATCHES):
                conn.send(request("GET", "/plaintext") * DEPTH)
                for _ in range(DEPTH):
                    conn.expect_response(200, body=HELLO)
    finally:
        strace.send_signal(signal.SIGINT)  # detach; -c writes its summary
        _, errors = strace.communicate(timeout=10)
    summary = summary_path.read_text()
    calls = total_calls(summary)
    per_request = calls / (BATCHES * DEPTH)
    print(f"{calls} system calls for {BATCHES * DEPTH} requests: {per_request:.3f} per request")
    assert per_request <= MAX_CALLS_PER_REQUEST, (
        f"{per_request:.3f} system calls per pipelined request, more than "
        f"{MAX_CALLS_PER_REQUEST}; strace -c said:\n{summary}\n{errors}"
    )
