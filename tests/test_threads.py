"""Tests of the threaded servers (stage 5 on): event loops, the worker pool, shutdown.

Stage 5 runs --threads event loops, each with its own SO_REUSEPORT listening
socket, and hands blocking handlers (/delay/:ms) to a pool of --workers
threads with a queue of at most --queue jobs; a job that does not fit gets
503 with Retry-After.  On SIGTERM every loop finishes what is in flight,
requests at a worker included, and prints its counters to stderr.

The suite as a whole runs stage 5 with --threads 2; the test that a slow
handler does not stall other clients is in test_router.py (it is stage 4's
limitation).
"""

import re
import signal
import time

import pytest

from client import scaled
from http_client import HttpConnection, request

HELLO = b"Hello, World!"
COUNTERS = re.compile(r"loop (\d+): (\d+) connections, (\d+) requests")


def stop_and_read_stderr(server):
    """SIGTERM, wait for exit status 0, return the server's stderr."""
    server.send_signal(signal.SIGTERM)
    status = server.wait_for_exit(10)
    assert status == 0, f"exit status {status}; stderr:\n{server.stderr_tail()}"
    return server.stderr_path.read_text(errors="replace")


@pytest.mark.needs("http", "threads")
def test_full_queue_answers_503_with_retry_after(start_server):
    """With one worker and room for one waiting job, a third slow request at
    once is refused with 503 and Retry-After (RFC 9110 sections 15.6.4 and
    10.2.3) instead of waiting in an unbounded queue; the first two are
    served."""
    server = start_server("--workers", "1", "--queue", "1")
    conns = [HttpConnection(server) for _ in range(3)]
    delay_ms = round(scaled(600))  # above the 0.4 s the 503 may take, with other times
    try:
        for conn in conns:
            conn.send(request("GET", f"/delay/{delay_ms}"))
            time.sleep(scaled(0.05))  # in this order: running, waiting, refused
        started = time.monotonic()
        refused = conns[2].expect_response(503)
        conns[2].check(refused.header("Retry-After") is not None, "503 without Retry-After")
        conns[2].check(
            time.monotonic() - started < scaled(0.4), "the 503 came only after the work was done"
        )
        for conn in conns[:2]:
            conn.expect_response(200, body=f"waited {delay_ms} ms\n".encode())
    finally:
        for conn in conns:
            conn.close()


@pytest.mark.needs("http", "threads")
def test_stop_waits_for_a_request_at_a_worker(start_server):
    """SIGTERM while a request is at a worker: the loop stays until the worker is
    done, the response goes out marked as the last one (Connection: close,
    RFC 9112 section 9.6), and the server exits with status 0."""
    server = start_server()
    delay_ms = round(scaled(500))  # longer than the wait before SIGTERM, with other times
    with HttpConnection(server) as conn:
        conn.send(request("GET", f"/delay/{delay_ms}"))
        time.sleep(scaled(0.15))  # the job is at a worker by now
        server.send_signal(signal.SIGTERM)
        conn.expect_response(200, body=f"waited {delay_ms} ms\n".encode(),
                             headers={"Connection": "close"})
        conn.expect_close()
    assert server.wait_for_exit(10) == 0


@pytest.mark.needs("http", "threads")
def test_a_request_at_a_worker_does_not_hold_the_exit_past_the_shutdown_timeout(start_server):
    """SIGTERM while a request sleeps at a worker for far longer than
    --shutdown-timeout (1 s here, the sleep 8 s): once the drain period is over
    the server closes the connection and exits with status 0, within the timeout
    and a margin, not when the sleep would have ended (CONVENTIONS.md: the drain
    is bounded, whatever the clients asked for).  The loops end at the timeout;
    the workers must not then be waited for as long as their jobs would take."""
    server = start_server("--shutdown-timeout", "1")
    with HttpConnection(server) as conn:
        conn.send(request("GET", "/delay/8000"))
        time.sleep(scaled(0.15))  # the job is at a worker by now
        server.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        conn.expect_close()
        assert server.wait_for_exit(10) == 0
        took = time.monotonic() - signalled
    assert took < scaled(2.5), (
        f"exited {took:.1f} s after SIGTERM with --shutdown-timeout 1: the exit waited for "
        "the job at the worker (8 s) instead of ending it"
    )


@pytest.mark.needs("http", "threads")
def test_each_loop_prints_its_counters_and_connections_spread(start_server):
    """Each loop prints "loop I: N connections, M requests" on shutdown; the
    counts add up to what the test did, and with 60 connections the kernel's
    SO_REUSEPORT hash has given both loops some (all 60 on one loop would be a
    1 in 2**59 chance)."""
    server = start_server("--threads", "2")
    for _ in range(60):
        with HttpConnection(server) as conn:
            conn.send(request("GET", "/plaintext") + request("GET", "/plaintext"))
            conn.expect_response(200, body=HELLO)
            conn.expect_response(200, body=HELLO)
    stderr = stop_and_read_stderr(server)
    counters = {int(i): (int(c), int(r)) for i, c, r in COUNTERS.findall(stderr)}
    assert sorted(counters) == [0, 1], f"expected counters of loops 0 and 1 in:\n{stderr}"
    assert sum(c for c, _ in counters.values()) == 60, stderr
    assert sum(r for _, r in counters.values()) == 120, stderr
    assert all(c > 0 for c, _ in counters.values()), f"one loop got no connection:\n{stderr}"


@pytest.mark.needs("http", "threads")
@pytest.mark.parametrize("args", [("--threads", "1"), ("--threads", "3", "--pin")],
                         ids=["one-loop", "three-pinned"])
def test_other_thread_counts_serve(start_server, args):
    """One loop, or more loops than CPUs, pinned: the server still serves,
    keep-alive and pipelined, and stops cleanly."""
    server = start_server(*args)
    with HttpConnection(server) as conn:
        conn.send(request("GET", "/plaintext") + request("POST", "/echo", body=b"x" * 1000))
        conn.expect_response(200, body=HELLO)
        conn.expect_response(200, body=b"x" * 1000)
    counters = COUNTERS.findall(stop_and_read_stderr(server))
    assert len(counters) == int(args[1])


@pytest.mark.needs("cli", "threads")
@pytest.mark.parametrize("args", [("--threads", "0"), ("--workers", "0"), ("--queue", "x")])
def test_bad_thread_options_are_usage_errors(run_cli, args):
    """A bad --threads, --workers or --queue: one line naming it, usage, exit 2."""
    result = run_cli(*args)
    assert result.returncode == 2, result
    assert args[0] in result.stderr.splitlines()[0], result.stderr
