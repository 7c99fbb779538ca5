"""Tests of the echo servers (stages 1 and 2) and of every stage's command line.

An echo server sends back every byte it receives, in order, and closes a
connection once the client has closed its sending side and everything has
been echoed.  Echo has no message boundaries: the server cannot tell a pause
from the end, so on SIGTERM it stops accepting but keeps serving connected
clients until they hang up.  Every test therefore closes its connections
(`with Connection(...)`) before the fixture sends SIGTERM.

Each test runs once per stage (ids like [stage1]); its `needs` marker and
the table in stages.py decide whether it runs, is a strict xfail or is
skipped.  On failure the helpers in client.py print a command that replays
what was sent and a dump of what came back.
"""

import re
import signal
import socket
import time
from contextlib import ExitStack

import pytest

from client import KiB, MiB, Connection, Sender, assert_echo, random_bytes


# --- Round trips ----------------------------------------------------------------


@pytest.mark.needs("echo")
def test_small_round_trip(server):
    """A short line comes back unchanged: the most basic echo."""
    with Connection(server) as conn:
        conn.round_trip(b"hello, echo\n")


@pytest.mark.needs("echo")
def test_one_mebibyte_round_trip(server):
    """1 MiB of random bytes comes back intact and in order.

    1 MiB is far more than the socket buffers hold, so the test reads while
    a thread sends: if it sent everything first, both sides would block once
    the buffers filled (the server on writing to us, we on writing to it).
    """
    data = random_bytes(MiB, seed=1)
    with Connection(server) as conn, Sender(conn, data):
        conn.expect_echo(data)


@pytest.mark.needs("echo")
def test_byte_by_byte(server):
    """Single bytes, each sent on its own, each come back before the next is sent.

    The server must echo what it has as soon as it has it, not wait for a
    full buffer or a newline.  TCP_NODELAY turns off Nagle's algorithm, so
    each one-byte send() really goes out as its own segment.  All 256 byte
    values are sent, so no value is treated specially.
    """
    data = bytes(range(256))
    echoed = b""
    with Connection(server) as conn:
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(len(data)):
            conn.send(data[i : i + 1])
            echoed += conn.recv_exactly(1)
            assert_echo(server, data[: i + 1], echoed, conn.why_short)


@pytest.mark.needs("echo")
def test_half_close(server):
    """After the client half-closes, the server echoes everything, then closes.

    shutdown(SHUT_WR) sends a FIN: "I will send nothing more", while the
    client can still read.  The server must not drop the data it has not
    echoed yet; once it has sent it all it closes its side, and our recv()
    returns b"" (end of stream).
    """
    data = random_bytes(16 * KiB, seed=2)
    with Connection(server) as conn:
        conn.send(data)
        conn.shutdown_write()
        conn.expect_echo(data)
        conn.expect_eof()


# --- Many clients -----------------------------------------------------------------


@pytest.mark.needs("echo")
def test_many_sequential_clients(server):
    """200 clients, one after the other, each get their own message back.

    Catches leaks and stale state: a descriptor not closed, a buffer not
    reset between connections, a server that serves only the first client.
    """
    for i in range(200):
        with Connection(server) as conn:
            conn.round_trip(f"client {i} of 200, one at a time\n".encode())


@pytest.mark.needs("echo", "concurrent")
def test_many_concurrent_clients(server):
    """200 clients connected at once each get their own message back.

    Every client connects before any of them sends, then each sends a
    distinct message, then all are read back: the server has to serve all
    of them at the same time.  A blocking server serves the first and
    leaves the others waiting; the 2 s timeout makes that fail quickly.
    """
    messages = [f"client {i} of 200, all at once\n".encode() for i in range(200)]
    with ExitStack() as connections:
        clients = [connections.enter_context(Connection(server, timeout=2)) for _ in messages]
        for conn, message in zip(clients, messages):
            conn.send(message)
        for conn, message in zip(clients, messages):
            conn.expect_echo(message)


@pytest.mark.needs("echo", "concurrent")
def test_idle_client_does_not_block_another(server):
    """A client that connects and sends nothing must not hold up another one.

    Client A connects and stays silent; client B connects, sends and must
    get its echo within 2 s.  A server that blocks reading from A never
    gets to B.
    """
    with Connection(server):  # client A: connects, then sends nothing
        time.sleep(0.2)  # let the server accept A and wait on it
        with Connection(server, timeout=2) as b:
            b.round_trip(b"not waiting for the idle client\n")


# --- Flow control and misbehaving clients ---------------------------------------


@pytest.mark.needs("echo")
@pytest.mark.uninstrumented("the server's resident memory")
def test_slow_reader_does_not_grow_server_memory(server, record_property):
    """A client that sends 64 MiB but does not read must not fill the server's memory.

    A thread sends while the test does not read.  Soon every kernel buffer
    between the two is full, the server cannot write the echo, and it must
    then stop reading from us (backpressure) instead of keeping the echo in
    its own memory.  Our sender stalls: once it has made no progress for
    0.5 s, the test samples the server's resident memory (VmRSS).  It must
    have grown by less than 8 MiB over the value measured right before the
    transfer: the servers buffer at most a few tens of KiB per connection,
    8 MiB leaves room for allocator noise, and buffering all 64 MiB would be
    far above it.  Then the test reads all 64 MiB back and checks every
    byte: random, non-repeating data, so nothing lost, repeated or
    reordered goes unnoticed.  The growth is printed (see it with -s) and
    recorded as the property rss_growth_kib.
    """
    data = random_bytes(64 * MiB, seed=3)
    limit_kib = 8 * 1024
    with Connection(server) as conn:
        rss_before = server.rss_kib()
        with Sender(conn, data) as sender:
            stalled_at = sender.wait_until_stalled(quiet=0.5)
            growth_kib = server.rss_kib() - rss_before
            print(
                f"\nslow reader: sender stalled after {stalled_at / MiB:.1f} MiB; "
                f"server RSS {rss_before} KiB before, grew by {growth_kib} KiB"
            )
            record_property("rss_growth_kib", growth_kib)
            assert stalled_at < len(data), (
                "the server took all 64 MiB while nobody read its echo: it must "
                "stop reading when it cannot write"
            )
            assert growth_kib < limit_kib, (
                f"server RSS grew by {growth_kib} KiB while the client was not "
                f"reading (limit {limit_kib} KiB): it buffers instead of applying backpressure"
            )
            conn.expect_echo(data)


@pytest.mark.needs("echo")
def test_client_reset_mid_stream_disturbs_no_one(server):
    """A client that resets its connection while being echoed to harms no other client.

    The client sends until every buffer is full (so the server is in the
    middle of writing back to it), then closes with SO_LINGER {on, 0},
    which sends a RST instead of a FIN.  The server's next read or write
    on that connection fails (ECONNRESET, or EPIPE with a SIGPIPE that must
    not kill it); it has to close that one connection and carry on.
    Another client is served before and after, and the fixture then checks
    that the server is still alive and exits cleanly.
    """
    with Connection(server) as before:
        before.round_trip(b"before the reset\n")
    with Connection(server) as victim:
        victim.send_until_stalled()
        victim.reset()
    with Connection(server) as after:
        after.round_trip(b"after the reset\n")


# --- Shutdown -------------------------------------------------------------------


@pytest.mark.needs("echo")
def test_sigterm_lets_transfer_finish(server):
    """SIGTERM during a transfer: the transfer completes, then the server exits 0.

    The test sends the first half of 1 MiB and reads most of its echo,
    sends SIGTERM with the rest still in flight, then sends the second half.
    The server must stop accepting but keep serving this client: every byte
    comes back intact.  After the client closes, the server has no one left
    to serve and must exit by itself with status 0.
    """
    data = random_bytes(MiB, seed=4)
    half = len(data) // 2
    with Connection(server) as conn:
        with Sender(conn, data[:half]):
            echoed = conn.recv_exactly(half - 64 * KiB)  # leaves some echo in flight
        server.send_signal(signal.SIGTERM)
        time.sleep(0.2)  # let the server act on the signal while we are connected
        with Sender(conn, data[half:]):
            echoed += conn.recv_exactly(len(data) - len(echoed))
        assert_echo(server, data, echoed, conn.why_short)
    status = server.wait_for_exit(timeout=5)
    assert status == 0, f"server exited with status {status} after SIGTERM, expected 0"


# --- Command line (every stage) -------------------------------------------------


@pytest.mark.needs("cli")
@pytest.mark.parametrize(
    "args",
    [["--no-such-flag"], ["--port", "not-a-number"], ["--port", "70000"], ["--port"]],
    ids=["unknown-flag", "port-not-a-number", "port-out-of-range", "port-without-value"],
)
def test_bad_command_line_exits_2(run_cli, args):
    """A bad flag or value: exit status 2, a one-line message naming it, then usage.

    The first line of stderr must name the offending flag (or the bad
    value), so the user knows what to fix; usage follows; stdout stays
    empty because it is reserved for the listening line.
    """
    result = run_cli(*args)
    assert result.returncode == 2, (
        f"server {' '.join(args)}: exit status {result.returncode}, expected 2; "
        f"stderr: {result.stderr!r}"
    )
    first_line = result.stderr.partition("\n")[0]
    assert any(arg in first_line for arg in args), (
        f"the first line of stderr should name {' or '.join(args)}: {first_line!r}"
    )
    assert "usage" in result.stderr.lower(), f"no usage on stderr: {result.stderr!r}"
    assert result.stdout == "", f"nothing belongs on stdout here: {result.stdout!r}"


@pytest.mark.needs("cli")
def test_help_prints_usage_and_exits_0(run_cli):
    """--help prints the usage, mentioning --port, and exits 0 without serving."""
    result = run_cli("--help")
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"exit status {result.returncode}; output: {output!r}"
    assert "usage" in output.lower() and "--port" in output, f"no usage: {output!r}"
    twice = [line for line in output.splitlines() if line.count("default") > 1]
    assert not twice, "an option with two defaults:\n" + "\n".join(twice)


@pytest.mark.needs("cli")
def test_listening_line_format(start_server):
    """The server prints exactly `listening on 127.0.0.1:PORT` and nothing else on stdout.

    Scripts and this test suite start the server with --port 0 and read
    the real port from that line, so its format is an interface.  The port
    must be the real one (a client can connect to it).
    """
    server = start_server("--host", "127.0.0.1")
    assert re.fullmatch(r"listening on 127\.0\.0\.1:[1-9][0-9]*", server.listening_line), (
        f"unexpected listening line {server.listening_line!r}"
    )
    assert server.port <= 65535
    with Connection(server):
        pass
    problem = server.stop()  # SIGTERM; afterwards, all stdout has been read
    if problem:
        pytest.fail(problem)
    assert server.extra_stdout == b"", (
        f"more output on stdout after the listening line (it belongs on stderr): "
        f"{server.extra_stdout!r}"
    )
