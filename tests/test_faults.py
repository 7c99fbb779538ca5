"""Faults and limits: what a server on the open internet meets sooner or later.

Each test puts the server in a tight spot (out of descriptors, at its
connection limit, clients that vanish, stall or trickle, ten thousand at
once, a stop signal in the middle of a transfer) and checks what matters:

  * the server neither crashes nor spins (where it could, its CPU time over
    the bad moment is measured: a loop that keeps being woken for an event
    it cannot handle burns a whole core);
  * the clients not at fault are served as if nothing happened;
  * it recovers when the trouble has passed.

The fixture's check after every test (SIGTERM, then exit status 0, and a
failure if the server died during the test) applies here too: a server
killed by SIGPIPE or a failed assertion fails the test that did it.

The tests that apply to the echo stages and to the HTTP stages alike talk
through `Pinger`, whose ping is an echo line or GET /plaintext.
"""

import os
import re
import select
import selectors
import signal
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import pytest

from client import HOST, MiB, first_difference, random_bytes, reset, scaled
from http_client import HttpConnection, request

HELLO = b"Hello, World!"
BODY_LIMIT = MiB  # the largest request body the HTTP stages take, so the largest echo
CPU_SPIN = 0.25  # of a second's CPU per second: far above idle, far below a spinning loop


def http_answer(body=HELLO):
    """The end of a 200 response to a ping, which is all a Pinger checks of it."""
    return b"\r\n\r\n" + body


class Pinger:
    """A client connection that pings the server and tells how it answered.

    On an echo stage a ping is a line and the answer is that line; on an
    HTTP stage it is GET /plaintext (kept alive) and the answer is a 200
    with Hello, World!.  Unlike the strict clients of the other tests, it
    never fails by itself: `outcome()` says "answered", "closed" or
    "waiting", because in these tests being closed or kept waiting may be
    the right answer.
    """

    def __init__(self, server, stage, timeout=5.0):
        self.http = "http" in stage.capabilities
        self.sock = socket.create_connection((HOST, server.port), timeout=scaled(timeout))
        self.pings = 0
        self.received = b""

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def close(self):
        self.sock.close()

    def send_ping(self):
        self.pings += 1
        self.received = b""
        self.sock.sendall(self._ping())

    def _ping(self):
        if self.http:
            return request("GET", "/plaintext")
        return f"ping {self.pings}\n".encode()

    def _complete(self):
        if self.http:
            return self.received.startswith(b"HTTP/1.1 200 ") and self.received.endswith(
                http_answer())
        return self.received == self._ping()

    def outcome(self, within):
        """Wait up to `within` seconds (not scaled) for the answer to the last ping."""
        deadline = time.monotonic() + within
        while not self._complete():
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([self.sock], [], [], remaining)[0]:
                return "waiting"
            try:
                data = self.sock.recv(64 * 1024)
            except (ConnectionResetError, ConnectionAbortedError):
                return "closed"
            if not data:
                return "closed"
            self.received += data
            if len(self.received) > 4096:
                raise AssertionError(f"not an answer to a ping: {self.received[:200]!r}...")
        return "answered"

    def ping(self, within=5.0):
        """Ping and insist on the answer within `within` seconds (scaled)."""
        __tracebackhide__ = True
        self.send_ping()
        outcome = self.outcome(scaled(within))
        assert outcome == "answered", (
            f"ping {self.pings}: {outcome} after {scaled(within):g} s; "
            f"received {self.received[:200]!r}")


def cpu_used_during(server, work):
    """The server's CPU seconds while `work()` runs."""
    before = server.cpu_seconds()
    work()
    return server.cpu_seconds() - before


def one_loop(stage):
    """Arguments that make a threaded stage run one event loop: the limits below are per loop."""
    return ("--threads", "1") if "threads" in stage.capabilities else ()


# --- Limits -------------------------------------------------------------------------------------


@pytest.mark.needs("event-loop")
def test_max_conns_makes_the_next_client_wait_its_turn(stage, start_server):
    """--max-conns 3: three clients are served; a fourth is connected (the
    kernel completes the handshake and queues it) but not served while the
    three stay, and the server does not spin meanwhile (a level-triggered
    loop that leaves the listening socket in its interest set would be woken
    for it again and again).  When one of the three leaves, the fourth is
    served at once."""
    server = start_server("--max-conns", "3", *one_loop(stage))
    with ExitStack() as stack:
        held = [stack.enter_context(Pinger(server, stage)) for _ in range(3)]
        for client in held:
            client.ping()
        fourth = stack.enter_context(Pinger(server, stage))
        fourth.send_ping()
        cpu = cpu_used_during(server, lambda: fourth.outcome(1.0))
        assert fourth.outcome(0) == "waiting", (
            f"the fourth client, over --max-conns 3, was {fourth.outcome(0)}; "
            f"expected it to wait in the accept queue")
        assert cpu < CPU_SPIN, f"the server used {cpu:.2f} s of CPU in 1 s at its limit: spinning?"
        for client in held:
            client.ping()  # still served
        held[0].close()
        outcome = fourth.outcome(scaled(2.0))
        assert outcome == "answered", (
            f"one of the three clients left, but the fourth was {outcome} within "
            f"{scaled(2.0):g} s")
        fourth.ping()


@pytest.mark.needs("event-loop")
@pytest.mark.parametrize("value", ["-1", "many", "1000001"])
def test_bad_max_conns_is_a_usage_error(run_cli, value):
    """--max-conns takes 0 (no limit) up to a million; anything else is exit status 2."""
    result = run_cli("--max-conns", value)
    assert result.returncode == 2, (
        f"--max-conns {value}: exit status {result.returncode}, expected 2; "
        f"stderr: {result.stderr!r}")
    assert "max-conns" in result.stderr, f"the message does not name the option: {result.stderr!r}"


KNOCKS = 1000
NOFILE = 64  # the server's descriptor limit in the next test: room for about 50 clients


@pytest.mark.needs("event-loop")
def test_out_of_descriptors_serves_its_clients_sheds_the_rest_and_recovers(stage, start_server):
    """Under RLIMIT_NOFILE 64, 100 clients connect and ping.  The server holds and
    serves as many as its descriptors allow.  Those it cannot hold, it closes
    at once (the spare-descriptor trick of loop_epoll.c) or leaves waiting in
    the accept queue; either way it must not spin while clients keep coming:
    a listening socket stays readable while its queue is not empty, so a
    level-triggered loop that only logs EMFILE would wake up forever, and a
    multishot accept re-armed at once would fail again at once.  When the
    clients leave, new ones are served again."""
    server = start_server(nofile=NOFILE)
    cpu_before = server.cpu_seconds()
    with ExitStack() as stack:
        clients = [stack.enter_context(Pinger(server, stage)) for _ in range(NOFILE + 36)]
        for client in clients:
            client.send_ping()
        deadline = time.monotonic() + scaled(2.0)  # one wait for all: answers come meanwhile
        outcomes = {client: client.outcome(max(0.0, deadline - time.monotonic()))
                    for client in clients}
        served = [client for client, outcome in outcomes.items() if outcome == "answered"]
        tally = {o: list(outcomes.values()).count(o) for o in ("answered", "closed", "waiting")}
        # About 50 fit; fewer may be answered in time when one of two loops has lost its
        # spare descriptor and waits for its next sweep, or a sanitizer slows it down.
        assert len(served) >= NOFILE // 4, (
            f"only {len(served)} of {len(clients)} clients were served under a descriptor "
            f"limit of {NOFILE}: {tally}")

        # More clients in a burst (one may even be served: with two loops, a descriptor one
        # loop frees for a moment to shed a client can be taken by the other loop's accept),
        # then a second for a spinning loop to show.
        for _ in range(KNOCKS):
            try:
                socket.create_connection((HOST, server.port), timeout=0.5).close()
            except OSError:
                pass  # a full accept queue drops the SYN: the client would try again later
        time.sleep(1)
        cpu = server.cpu_seconds() - cpu_before
        assert cpu < CPU_SPIN * 2, (
            f"the server used {cpu:.2f} s of CPU while out of descriptors, with "
            f"{len(clients)} and then {KNOCKS} more clients: spinning?")
        for client in served:
            client.ping()  # still served
        for client in clients:
            client.close()
    # The server releases the sockets as it notices the clients left (after a lingering
    # close, on the HTTP stages); until it has, a new client may still be shed. Soon ten
    # at once are served.
    deadline = time.monotonic() + scaled(10.0)
    while True:
        with ExitStack() as stack:
            later = [stack.enter_context(Pinger(server, stage)) for _ in range(10)]
            for client in later:
                client.send_ping()
            outcomes = [client.outcome(scaled(2.0)) for client in later]
        if outcomes.count("answered") == len(later):
            break
        assert time.monotonic() < deadline, (
            f"the clients left, but 10 new ones were still not all served {scaled(10.0):g} s "
            f"later: {outcomes}")
        time.sleep(0.2)


# --- Clients that misbehave ------------------------------------------------------------------


def big_request():
    """A request with a large answer, and that answer's body: a 1 MiB echo."""
    body = random_bytes(BODY_LIMIT, seed=7)
    return request("POST", "/echo", body=body), body


@pytest.fixture
def big_file_server(start_server, tmp_path):
    """The server with --root holding big.bin, 8 MiB: a response that sendfile()
    (or splice(), on stage 6) takes many calls to send."""
    root = tmp_path / "root"
    root.mkdir()
    content = random_bytes(8 * MiB, seed=8)
    (root / "big.bin").write_bytes(content)
    return start_server("--root", str(root)), content


def check_resets_mid_response(server, stage, big, expected_length):
    """Twenty clients ask for `big`, read a little of the answer and reset; a
    bystander is served in between, and the server survives them all."""
    with Pinger(server, stage) as bystander:
        for i in range(20):
            with socket.create_connection((HOST, server.port), timeout=scaled(5.0)) as sock:
                sock.sendall(big)
                got = 0
                while got < 64 * 1024:
                    data = sock.recv(64 * 1024)
                    assert data, f"client {i}: the server closed after {got} bytes"
                    got += len(data)
                assert got < expected_length
                reset(sock)
            bystander.ping()


@pytest.mark.needs("http")
def test_client_that_resets_mid_response_disturbs_no_one(stage, server):
    """A client that resets while a 1 MiB answer is on its way costs the server
    that connection and nothing else: the send fails with ECONNRESET (or EPIPE,
    whose SIGPIPE the server ignores), the connection is released, and a
    bystander goes on being served."""
    big, body = big_request()
    check_resets_mid_response(server, stage, big, len(body))


@pytest.mark.needs("http", "static")
def test_client_that_resets_mid_file_disturbs_no_one(stage, big_file_server):
    """As above, with an 8 MiB file on its way: sendfile() (splice() on stage 6)
    fails instead of write(), and the file's descriptor (and pipe) must be released."""
    server, content = big_file_server
    check_resets_mid_response(server, stage, request("GET", "/big.bin"), len(content))


def socket_count(pid):
    """How many sockets the process holds: its listening sockets and its connections."""
    count = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            count += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
        except FileNotFoundError:
            pass  # closed while we looked
    return count


@pytest.mark.needs("http")
def test_clients_that_reset_after_a_large_body_are_released_at_once(stage, server):
    """A thousand clients each send a POST /echo with a 1 MiB body and reset
    right after sending it.  Most of the body is still in flight when the reset
    comes, so the server holds half a request and waits for the rest: it must
    notice the reset and release the connection, not keep it until the idle
    timeout.  On stage 6 a multishot receive that has just delivered a burst of
    buffers may never complete with -ECONNRESET (stage6-uring/README.md); the
    loop must find out by itself.  Within 2 s of the last reset the server holds
    no socket but its listening ones."""
    baseline = socket_count(server.pid)
    big, _ = big_request()

    def send_and_reset(_):
        with socket.create_connection((HOST, server.port), timeout=scaled(5.0)) as sock:
            sock.sendall(big)
            reset(sock)

    # Thirty-two at a time: the loops then receive bursts of many buffers at once.
    with ThreadPoolExecutor(32) as pool:
        list(pool.map(send_and_reset, range(1000)))
    deadline = time.monotonic() + scaled(2.0)
    while (left := socket_count(server.pid) - baseline) > 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert left <= 0, (
        f"{left} connection(s) still open {scaled(2.0):g} s after their client reset")


def take_responses(received, responses):
    """Moves every whole response at the start of `received` (a bytearray) to
    `responses`, as (status line, body); these tests' answers all have a Content-Length."""
    while (end := received.find(b"\r\n\r\n")) >= 0:
        head = bytes(received[:end])
        length = re.search(rb"\r\ncontent-length: *(\d+)", head, re.IGNORECASE)
        assert length, f"a response without Content-Length: {head[:300]!r}"
        total = end + 4 + int(length[1])
        if len(received) < total:
            return
        responses.append((head.split(b"\r\n")[0], bytes(received[end + 4 : total])))
        del received[:total]


@pytest.mark.needs("http")
def test_short_sends_lose_no_byte(stage, start_server, tmp_path):
    """Pipelined requests for large answers (six echoes of up to 1 MiB; from
    stage 4 on, a 3 MiB file twice between them), read in pieces of a few KiB through a small
    receive window: the server's socket fills again and again, so its sends
    and sendfile()s (stage 6: sends and splices) come back short, and it must
    send the rest, in order, before anything queued behind it.  Every byte of
    every answer is checked."""
    # Six echoes: more than the server's socket send buffer holds (up to 4 MiB), even
    # where a single 1 MiB answer would fit in it whole.
    sizes = (MiB, 300_000, 777_777, MiB - 1, 999_999, MiB)
    bodies = [random_bytes(size, seed=20 + i) for i, size in enumerate(sizes)]
    asked = [request("POST", "/echo", body=body) for body in bodies]
    expected = list(bodies)
    args = ()
    if "static" in stage.capabilities:
        root = tmp_path / "root"
        root.mkdir()
        content = random_bytes(3 * MiB + 12_345, seed=23)
        (root / "big.bin").write_bytes(content)
        args = ("--root", str(root))
        asked[1:1] = [request("GET", "/big.bin")]
        asked[3:3] = [request("GET", "/big.bin")]
        expected[1:1] = [content]
        expected[3:3] = [content]
    server = start_server(*args)

    responses = []
    with socket.socket() as sock:
        # Before connect(): the window the client offers is then small from the start.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
        sock.settimeout(scaled(10.0))
        sock.connect((HOST, server.port))
        # In the background: the server stops reading while its answers wait to be sent.
        sender = threading.Thread(target=sock.sendall, args=(b"".join(asked),), daemon=True)
        sender.start()
        received = bytearray()
        reads = 0
        while len(responses) < len(expected):
            try:
                data = sock.recv(1024 + reads % 7 * 1024)
            except TimeoutError:
                pytest.fail(
                    f"nothing for {scaled(10.0):g} s after {len(responses)} of {len(expected)} "
                    f"answers and {len(received)} bytes of the next: bytes lost on the way?")
            assert data, (
                f"closed after {len(responses)} of {len(expected)} answers "
                f"and {len(received)} bytes of the next")
            received += data
            take_responses(received, responses)
            reads += 1
            if reads % 64 == 0:
                time.sleep(0.001)  # slower still: the server's sends find the socket full
        sender.join(timeout=scaled(5.0))
    assert not received, f"{len(received)} bytes after the last answer: {bytes(received[:200])!r}"
    for i, ((status, body), want) in enumerate(zip(responses, expected)):
        assert status.startswith(b"HTTP/1.1 200 "), f"answer {i}: {status!r}"
        at = first_difference(body, want)
        assert at is None, (
            f"answer {i}: {len(body)} bytes, expected {len(want)}; they differ from byte {at}")


def check_non_reader(server, stage, big, expected_body):
    """One client asks for a large answer and does not read it; meanwhile
    others connect and are served promptly.  Then it reads: the answer is whole."""
    with HttpConnection(server, timeout=10) as stalled:
        stalled.send(big)
        time.sleep(0.3)  # the server fills the socket's buffers and waits for room
        for _ in range(5):
            with ExitStack() as stack:
                others = [stack.enter_context(Pinger(server, stage)) for _ in range(4)]
                for other in others:
                    started = time.monotonic()
                    other.ping(within=1.0)
                    waited = time.monotonic() - started
                    assert waited < scaled(1.0), f"a ping took {waited:.2f} s"
        stalled.expect_response(200, body=expected_body)


@pytest.mark.needs("http")
def test_client_that_never_reads_its_answer_holds_up_no_one(stage, server):
    """A client sends a 1 MiB body to /echo and does not read the echo: the
    server cannot send it all (the socket buffers hold less), must not block
    on it, and serves twenty other clients meanwhile."""
    big, body = big_request()
    check_non_reader(server, stage, big, body)


@pytest.mark.needs("http", "static")
def test_client_that_never_reads_its_file_holds_up_no_one(stage, big_file_server):
    """The same with an 8 MiB file on its way."""
    server, content = big_file_server
    check_non_reader(server, stage, request("GET", "/big.bin"), content)


@pytest.mark.needs("http")
def test_slowloris_clients_are_cut_off_and_others_served(stage, start_server):
    """Fifty clients each trickle a request head, a byte every 0.2 s, the
    "slowloris" attack.  A normal client is served promptly all along, and
    --header-timeout (1 s) after its first byte each trickler gets 408 and
    is closed (RFC 9110 section 15.5.9), however long it keeps trickling."""
    server = start_server("--header-timeout", "1")
    head = b"GET /plaintext HTTP/1.1\r\nHost: example.test\r\nX-Slow: " + b"z" * 1000
    with ExitStack() as stack, Pinger(server, stage) as normal:
        tricklers = [stack.enter_context(socket.create_connection((HOST, server.port)))
                     for _ in range(50)]
        answered = {}  # trickler -> seconds from its first byte to the answer
        started = time.monotonic()
        sent = 0
        while len(answered) < len(tricklers) and time.monotonic() - started < scaled(5.0):
            waiting = [sock for sock in tricklers if sock not in answered]
            if sent < len(head):  # 1000 bytes at 5 a second: enough to outlast the test
                for sock in waiting:
                    sock.sendall(head[sent:sent + 1])
                sent += 1
            normal.ping(within=0.5)
            for sock in select.select(waiting, [], [], 0.2)[0]:
                answered[sock] = time.monotonic() - started
        assert len(answered) == len(tricklers), (
            f"{len(tricklers) - len(answered)} of {len(tricklers)} tricklers were still "
            f"connected and unanswered {scaled(5.0):g} s later")
        for sock in tricklers:
            sock.settimeout(scaled(2.0))
            data = b""
            try:
                while chunk := sock.recv(4096):
                    data += chunk
            except ConnectionResetError:
                pass  # after the 408: what matters is that it came
            assert data.startswith(b"HTTP/1.1 408 "), f"a trickler got {data[:100]!r}, not a 408"
        slowest = max(answered.values())
        assert slowest < 1.0 + scaled(2.0), f"a trickler was answered only after {slowest:.2f} s"


# --- Ten thousand at once ---------------------------------------------------------------------

MANY = 10_000


def raise_descriptor_limit(needed):
    """Raise this process's soft RLIMIT_NOFILE to `needed`; skip the test if the hard
    limit is lower."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < needed:
        pytest.skip(f"{MANY} connections need {needed} descriptors; the hard limit is {hard} "
                    f"(raise it with ulimit -Hn, as root)")
    if soft != resource.RLIM_INFINITY and soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


def ping_all(socks, ping_of, answer_of, within):
    """Send every socket its ping, then wait for all the answers at once."""
    pending = {}
    with selectors.DefaultSelector() as selector:
        for sock in socks:
            sock.sendall(ping_of(sock))
            pending[sock] = b""
            selector.register(sock, selectors.EVENT_READ)
        deadline = time.monotonic() + within
        while pending and time.monotonic() < deadline:
            for key, _ in selector.select(timeout=max(0.0, deadline - time.monotonic())):
                sock = key.fileobj
                data = sock.recv(4096)
                assert data, f"the server closed one of {len(socks)} connections"
                pending[sock] += data
                if pending[sock].endswith(answer_of(sock)):
                    del pending[sock]
                    selector.unregister(sock)
    return len(pending)


@pytest.mark.needs("event-loop")
def test_ten_thousand_connections_are_held_and_served(stage, start_server, record_property):
    """10,000 clients connect and stay connected; each is served twice while all
    of them are open, so the server really holds them at once.  (The C10K
    problem: with one thread per client, or a select() limited to 1024
    descriptors, this is where servers used to give up.)"""
    needed = MANY + 200
    raise_descriptor_limit(needed)
    server = start_server(nofile=needed)
    http = "http" in stage.capabilities
    rss_before = server.rss_kib()
    with ExitStack() as stack:
        socks = []
        for _ in range(MANY):
            sock = stack.enter_context(socket.socket())
            sock.settimeout(scaled(10.0))
            sock.connect((HOST, server.port))
            socks.append(sock)
        numbers = {sock: i for i, sock in enumerate(socks)}
        if http:
            def ping_of(sock):
                return request("GET", "/plaintext")

            def answer_of(sock):
                return http_answer()
        else:
            def ping_of(sock):
                return f"client {numbers[sock]} of {MANY}\n".encode()

            answer_of = ping_of
        for round_ in (1, 2):
            unanswered = ping_all(socks, ping_of, answer_of, scaled(60.0))
            assert unanswered == 0, (
                f"round {round_}: {unanswered} of {MANY} connections got no answer within "
                f"{scaled(60.0):g} s")
        rss_held = server.rss_kib()
    record_property("server RSS KiB, idle / 10,000 held", f"{rss_before} / {rss_held}")


# --- Signals --------------------------------------------------------------------------------


def check_sigterm_mid_transfer(server, data, expected_body):
    """Sends data, reads the start of the 200, sends the server SIGTERM, then insists on the
    whole response, a close, and an exit status of 0."""
    with HttpConnection(server, timeout=10) as conn:
        conn.send(data)
        first = conn.sock.recv(64 * 1024)
        assert first.startswith(b"HTTP/1.1 200 "), f"not a 200: {first[:100]!r}"
        server.send_signal(signal.SIGTERM)
        time.sleep(0.2)
        conn.received += first
        conn.expect_response(200, body=expected_body)
        conn.expect_close()
    status = server.wait_for_exit(timeout=5)
    assert status == 0, f"server exited with status {status} after SIGTERM, expected 0"


@pytest.mark.needs("http", "static")
def test_sigterm_mid_file_lets_the_transfer_finish(stage, big_file_server):
    """SIGTERM while an 8 MiB file is on its way: the client, reading slowly,
    still gets every byte; then the server closes the connection and exits
    with status 0 (CONVENTIONS.md: finish the responses in flight)."""
    server, content = big_file_server
    check_sigterm_mid_transfer(server, request("GET", "/big.bin"), content)


@pytest.mark.needs("http")
def test_sigterm_mid_echo_lets_the_transfer_finish(stage, server):
    """The same with a 1 MiB echo, which the server holds in its own buffer."""
    big, body = big_request()
    check_sigterm_mid_transfer(server, big, body)


def read_until_closed(sock, pause=0.0, piece=64 * 1024):
    """Everything the socket delivers until the server closes or resets it, read
    `piece` bytes at a time with `pause` seconds between reads."""
    got = bytearray()
    while True:
        try:
            data = sock.recv(piece)
        except ConnectionResetError:
            return bytes(got)
        if not data:
            return bytes(got)
        got += data
        time.sleep(pause)


def in_background(work, *args):
    """Runs work(*args) on a thread; a connection closed under it is expected."""

    def run():
        try:
            work(*args)
        except OSError:
            pass

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def send_all_then_end(sock, data, end):
    sock.sendall(data)
    if end:
        sock.shutdown(socket.SHUT_WR)


@pytest.mark.needs("event-loop")
def test_sigterm_drain_is_bounded_by_the_shutdown_timeout(stage, start_server, tmp_path):
    """After SIGTERM the server finishes what it can within --shutdown-timeout
    (2 s here), then closes what is left and exits with status 0, whatever its
    clients do (CONVENTIONS.md).  Three clients when the signal comes: one whose
    large answer it reads at full speed (it must arrive whole), one that has sent
    half a request (half a line, on the echo stages) and stalls, and one reading
    its large answer a few KiB every 50 ms, far too slowly to finish: what that
    one got before the close must be the start of its answer, byte for byte."""
    http = "http" in stage.capabilities
    args = ["--shutdown-timeout", "2"]
    if "static" in stage.capabilities:
        content = random_bytes(8 * MiB, seed=31)
        root = tmp_path / "root"
        root.mkdir()
        (root / "big.bin").write_bytes(content)
        args += ["--root", str(root)]
        big = request("GET", "/big.bin")
    elif http:
        big, content = big_request()
    else:
        content = random_bytes(8 * MiB, seed=32)
        big = content
    half = half_request(stage)
    server = start_server(*args)

    def connect(rcvbuf=None):
        sock = socket.socket()
        if rcvbuf:  # before connect(): the window offered is small from the start
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.settimeout(scaled(10.0))
        sock.connect((HOST, server.port))
        return sock

    def answer_body(got):
        return got[got.index(b"\r\n\r\n") + 4 :] if http else got

    exited = threading.Event()
    slow_got = bytearray()

    def read_slowly(sock):
        """A few KiB every 50 ms until the server has exited, then the rest that the
        kernel still holds, at full speed."""
        try:
            while not exited.is_set():
                data = sock.recv(4096)
                if not data:
                    return
                slow_got.extend(data)
                time.sleep(0.05)
        except ConnectionResetError:
            return
        slow_got.extend(read_until_closed(sock))

    with connect() as fast, connect() as stalled, connect(rcvbuf=16 * 1024) as slow:
        stalled.sendall(half)
        # The echo stages echo while the client is still sending: send on a thread.
        in_background(slow.sendall, big)
        slow_got += slow.recv(4096)
        # An echo client ends its "request" by shutting down its side after sending.
        in_background(send_all_then_end, fast, big, not http)
        fast_got = fast.recv(64 * 1024)
        assert slow_got and fast_got, "no answer before SIGTERM"
        time.sleep(0.2)  # the stalled client's half request has arrived
        server.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        slow_reader = in_background(read_slowly, slow)
        fast_got += read_until_closed(fast)
        try:
            status = server.wait_for_exit(timeout=2.0 + 1.5)
            took = time.monotonic() - signalled
        finally:
            exited.set()
        stalled_got = read_until_closed(stalled)
        slow_reader.join(timeout=scaled(10.0))
    assert status == 0, f"server exited with status {status} after SIGTERM, expected 0"
    assert took < scaled(3.5), f"exited {took:.1f} s after SIGTERM; --shutdown-timeout 2"
    if http:
        assert fast_got.startswith(b"HTTP/1.1 200 "), f"not a 200: {fast_got[:100]!r}"
    body = answer_body(fast_got)
    at = first_difference(body, content)
    assert at is None, f"the fast reader got {len(body)} bytes of {len(content)}, from {at} wrong"
    # Cut short by the close at the end of the drain, but never wrong.
    body = answer_body(bytes(slow_got))
    at = first_difference(body, content[: len(body)])
    assert at is None, f"the slow reader's {len(body)} bytes differ from byte {at}"
    # Unanswered on the HTTP stages (closed at the end of the drain); echoed on the others.
    assert stalled_got == (b"" if http else half), f"the stalled client got {stalled_got[:100]!r}"


def half_request(stage):
    """Half a request: a POST head whose body stops short, or half an echo line."""
    if "http" in stage.capabilities:
        return request("POST", "/echo", "Content-Length: 100") + b"x" * 10
    return b"half a li"


@pytest.mark.needs("cli")
def test_second_stop_signal_stops_at_once(stage, server):
    """A client has sent half a request and stalls.  After SIGTERM the server
    waits for it, within its drain bound (5 s by default); a second signal,
    SIGINT, closes it and stops the server at once, with status 0."""
    with socket.create_connection((HOST, server.port), timeout=scaled(5.0)) as stalled:
        stalled.sendall(half_request(stage))
        time.sleep(0.2)
        server.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        assert server.process.poll() is None, "stopped at once, with a request half received"
        server.send_signal(signal.SIGINT)
        status = server.wait_for_exit(timeout=1.0)
    assert status == 0, f"server exited with status {status} after a second signal, expected 0"


@pytest.mark.needs("echo")
def test_sigterm_mid_client_is_bounded_on_the_blocking_stage(stage, server):
    """Stage 1 serves one client at a time and, on SIGTERM, lets it finish: but
    a client that never hangs up would keep it forever.  5 s after the signal,
    an alarm counts as a second signal, and it stops with status 0."""
    if "event-loop" in stage.capabilities:
        pytest.skip("the event loops' bound is --shutdown-timeout, tested above")
    with socket.create_connection((HOST, server.port), timeout=scaled(10.0)) as stalled:
        stalled.sendall(half_request(stage))
        assert stalled.recv(64) == half_request(stage)
        server.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        status = server.wait_for_exit(timeout=5.0 + 1.5)
        took = time.monotonic() - signalled
        assert read_until_closed(stalled) == b""
    assert status == 0, f"server exited with status {status} after SIGTERM, expected 0"
    assert took > 4.5, f"stopped {took:.1f} s after SIGTERM, before its client was done"


def sigpipe_ignored(pid):
    """Whether the process ignores SIGPIPE: bit 13 of SigIgn in /proc/PID/status."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("SigIgn:"):
                return bool(int(line.split()[1], 16) >> (signal.SIGPIPE - 1) & 1)
    raise AssertionError(f"no SigIgn in /proc/{pid}/status")


@pytest.mark.needs("cli")
def test_sigpipe_never_kills_the_server(stage, server):
    """Writing to a connection the peer has reset fails with EPIPE and, unless
    the process ignores it (or the call passes MSG_NOSIGNAL), raises SIGPIPE,
    whose default action ends the process: one vanishing client would take
    every other one down with it.  Thirty clients vanish in the middle of a
    large answer, in three ways (reset, close with unread data, reset right
    after asking); the server lives on and serves the next client."""
    if not os.environ.get("SERVER_WRAPPER"):  # valgrind keeps the real dispositions to itself
        assert sigpipe_ignored(server.pid), "the server does not ignore SIGPIPE"
    if "http" in stage.capabilities:
        big, _ = big_request()
    else:
        big = random_bytes(64 * 1024, seed=9)  # no more than the socket buffers hold unread
    for i in range(30):
        sock = socket.create_connection((HOST, server.port), timeout=scaled(5.0))
        sock.sendall(big)
        way = i % 3
        if way == 0:
            sock.recv(4096)
            reset(sock)
        elif way == 1:
            time.sleep(0.01)
            sock.close()  # with unread data: the kernel sends a RST, not a FIN
        else:
            reset(sock)
    with Pinger(server, stage) as client:
        client.ping()
