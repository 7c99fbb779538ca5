"""Stage 6 has two backends, chosen with --io: io_uring (the default) and stage 5's
epoll, which also serves where the kernel refuses io_uring.

The refusal is made here with a seccomp filter (seccomp.py) that answers
io_uring_setup() as a kernel without io_uring does (ENOSYS), or as a container
runtime that forbids it does (EPERM).  Run with --server-args='--io epoll', these
tests are skipped (stages.py: the argument takes the "uring" capability away).
"""

import errno
import os

import pytest

from http_client import HttpConnection, request

HELLO = b"Hello, World!"
REFUSALS = {"ENOSYS": errno.ENOSYS, "EPERM": errno.EPERM}


def kernel_objects(server):
    """What the server's anonymous descriptors are: {"io_uring", "eventpoll", ...}."""
    kinds = set()
    for fd in os.listdir(f"/proc/{server.pid}/fd"):
        try:
            target = os.readlink(f"/proc/{server.pid}/fd/{fd}")
        except FileNotFoundError:
            continue  # closed meanwhile
        if target.startswith("anon_inode:"):
            kinds.add(target.removeprefix("anon_inode:").strip("[]"))
    return kinds


def assert_serves(server):
    with HttpConnection(server) as conn:
        for _ in range(3):
            conn.send(request("GET", "/plaintext"))
            conn.expect_response(200, body=HELLO)


@pytest.mark.needs("http", "uring")
@pytest.mark.parametrize("io, kind", [("uring", "io_uring"), ("epoll", "eventpoll")])
def test_each_backend_serves(start_server, io, kind):
    """--io uring and --io epoll both serve, each with its own kernel interface (the
    other is not even set up), and neither says anything about falling back."""
    server = start_server("--io", io)
    assert_serves(server)
    kinds = kernel_objects(server)
    other = "eventpoll" if kind == "io_uring" else "io_uring"
    assert kind in kinds and other not in kinds, f"--io {io}: the server holds {sorted(kinds)}"
    assert "not available" not in server.stderr_text()


@pytest.mark.needs("cli", "uring")
@pytest.mark.parametrize("value", ["kqueue", "", "URING"])
def test_bad_io_value_is_a_usage_error(run_cli, value):
    """An --io other than uring or epoll: one line naming it, the usage, exit status 2."""
    result = run_cli("--port", "0", "--io", value)
    assert result.returncode == 2, result.stderr
    assert f"--io: '{value}'" in result.stderr
    assert "usage:" in result.stderr
    assert "listening on" not in result.stdout


@pytest.mark.needs("cli", "uring")
def test_sqpoll_with_epoll_is_a_usage_error(run_cli):
    """--sqpoll is a setting of io_uring's: with --io epoll it would be silently ignored."""
    result = run_cli("--port", "0", "--io", "epoll", "--sqpoll")
    assert result.returncode == 2, result.stderr
    assert "--sqpoll" in result.stderr.splitlines()[0]
    assert "listening on" not in result.stdout


@pytest.mark.needs("http", "uring")
@pytest.mark.parametrize("refusal", REFUSALS)
def test_refused_io_uring_falls_back_to_epoll(start_server, refusal):
    """Where the kernel refuses io_uring, the default serves with epoll, and says why in
    one line on stderr."""
    server = start_server(refuse=("io_uring_setup",), refuse_errno=REFUSALS[refusal])
    assert_serves(server)
    kinds = kernel_objects(server)
    assert "eventpoll" in kinds and "io_uring" not in kinds, sorted(kinds)
    lines = [line for line in server.stderr_text().splitlines() if "io_uring" in line]
    assert len(lines) == 1, lines
    assert f"({refusal})" in lines[0] and "serving with epoll" in lines[0], lines[0]


@pytest.mark.needs("cli", "uring")
@pytest.mark.parametrize("refusal", REFUSALS)
def test_refused_explicit_io_uring_exits_1(run_cli, refusal):
    """--io uring asks for io_uring: refused, the server does not start, and says why."""
    result = run_cli("--port", "0", "--io", "uring", refuse=("io_uring_setup",),
                     refuse_errno=REFUSALS[refusal])
    assert result.returncode == 1, result.stderr
    assert "io_uring is not available" in result.stderr and f"({refusal})" in result.stderr
    assert "--io epoll" in result.stderr
    assert "listening on" not in result.stdout
