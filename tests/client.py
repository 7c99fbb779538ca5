"""Client-side helpers for the tests: connections, checks, failure reports.

The point of this module is that a failing test explains itself.  When an
echo does not come back intact, `assert_echo` reports

  * a shell command that replays what the test sent (printf ... | nc ...),
  * what came back, as text or as an xxd-style hex dump, shortened to the
    first bytes, the bytes around the first difference and the last bytes,
  * why the data stopped (timeout, end of stream, reset),
  * and, if the server died, its exit status and the end of its stderr.

Helpers take a `server` object (what the start_server fixture returns):
they use its `port`, its `command_line` (how to start the same server by
hand) and its `exit_report()`, which says how the server exited, or None
while it is still running.
"""

import os
import random
import shlex
import socket
import struct
import threading
import time
from contextlib import contextmanager

HOST = "127.0.0.1"
KiB = 1024
MiB = 1024 * KiB


def instrumentation():
    """What slows the server under test down, in a few words, or None for a plain build.

    SERVER_WRAPPER runs it under a tool (valgrind); SANITIZE (`make SANITIZE=1 test`
    sets it in the environment, and the stage's make reads it there) builds it with
    sanitizers.
    """
    wrapper = shlex.split(os.environ.get("SERVER_WRAPPER", ""))
    if wrapper:
        return os.path.basename(wrapper[0])
    sanitize = os.environ.get("SANITIZE", "")
    return {"": None, "1": "ASan+UBSan", "thread": "TSan"}.get(sanitize, f"SANITIZE={sanitize}")


INSTRUMENTATION = instrumentation()


def _timeout_scale():
    """Factor for every timeout: larger when the server runs under valgrind or a sanitizer."""
    if os.environ.get("TIMEOUT_SCALE"):
        return float(os.environ["TIMEOUT_SCALE"])
    return 3.0 if INSTRUMENTATION else 1.0


TIMEOUT_SCALE = _timeout_scale()


def scaled(seconds):
    return seconds * TIMEOUT_SCALE


# --- Payloads ---------------------------------------------------------------


class Generated(bytes):
    """Bytes that also know a shell command which prints exactly them."""

    shell = None


def random_bytes(size, seed):
    """`size` pseudo-random bytes, the same ones for the same seed.

    Random bytes do not repeat, so data that comes back shifted, duplicated
    or in the wrong order is caught.  Being seeded, a failure can be
    replayed with exactly the same bytes (see replay_command).
    """
    data = Generated(random.Random(seed).randbytes(size))
    data.shell = (
        "python3 -c 'import random, sys; "
        f"sys.stdout.buffer.write(random.Random({seed}).randbytes({size}))'"
    )
    return data


# --- Describing bytes ---------------------------------------------------------

REPLAY_LIMIT = 4 * KiB  # longer payloads are replayed with a generator command


def plural(count, noun):
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _is_text(data):
    return all(32 <= b < 127 or b in b"\t\r\n" for b in data)


def printf_escape(data):
    """Quote bytes for `printf '...'`; octal escapes work in both dash and bash."""
    out = []
    for i, b in enumerate(data):
        plain = 32 <= b < 127 and chr(b) not in "'\\%" and not (i == 0 and b == ord("-"))
        out.append(chr(b) if plain else f"\\{b:03o}")
    return "".join(out)


def replay_command(port, data):
    """A shell command that sends `data` to the server, as the test did.

    `nc -N` shuts down its sending side once the input ends, like
    shutdown(SHUT_WR), so an echo server answers and closes and nc exits.
    """
    nc = f"nc -N {HOST} {port}"
    if len(data) <= REPLAY_LIMIT:
        show = "" if _is_text(data) else " | xxd"
        return f"printf '{printf_escape(data)}' | {nc}{show}"
    if getattr(data, "shell", None):
        return f"{data.shell} | {nc} | wc -c    # regenerates the same {len(data)} bytes"
    return (
        f"head -c {len(data)} /dev/urandom | {nc} | wc -c"
        f"    # generated: {len(data)} random bytes, not the test's exact bytes"
    )


def hexdump(data, offset=0):
    """Lines in the style of xxd; `offset` is where `data` starts in the stream."""
    lines = []
    for start in range(0, len(data), 16):
        row = data[start : start + 16]
        groups = " ".join(row[i : i + 2].hex() for i in range(0, len(row), 2))
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in row)
        lines.append(f"{offset + start:08x}: {groups:<39}  {text}")
    return "\n".join(lines)


def _segments(length, focus, context=32):
    """Ranges to show of a stream: all of it if short, else its start, the
    bytes around `focus` and its end, aligned to 16 like hex dump lines."""
    if length <= 16 * context:
        return [(0, length)]
    wanted = [(0, context), (focus - context, focus + context), (length - context, length)]
    ranges = []
    for start, end in sorted(wanted):
        start, end = max(0, start - start % 16), min(length, end + (-end) % 16)
        if start >= end:
            continue
        if ranges and start <= ranges[-1][1]:
            ranges[-1] = (ranges[-1][0], max(ranges[-1][1], end))
        else:
            ranges.append((start, end))
    return ranges


def excerpt(data, focus=None, as_text=None):
    """Show `data`, shortened around offset `focus` (marked) if it is long."""
    if as_text is None:
        as_text = _is_text(data)
    if not data:
        return "    (nothing)"
    parts = []
    previous_end = 0
    for start, end in _segments(len(data), focus or 0):
        if start > previous_end:
            parts.append(f"    ... {start - previous_end} bytes not shown ...")
        chunk = data[start:end]
        if as_text:
            parts.append(f"    @{start}: {chunk!r}")
        else:
            for line_start, line in zip(range(start, end, 16), hexdump(chunk, start).splitlines()):
                marked = focus is not None and line_start <= focus < line_start + 16
                mark = f"  <- offset {focus}" if marked else ""
                parts.append(f"    {line}{mark}")
        previous_end = end
    if previous_end < len(data):
        parts.append(f"    ... {len(data) - previous_end} bytes not shown ...")
    return "\n".join(parts)


def first_difference(a, b):
    """Offset of the first byte where a and b differ (or the shorter length)."""
    if a == b:
        return None
    size = min(len(a), len(b))
    low, high = 0, size  # binary search: fast even for 64 MiB
    while low < high:
        middle = (low + high) // 2
        if a[low : middle + 1] == b[low : middle + 1]:
            low = middle + 1
        else:
            high = middle
    return low


# --- Server state -------------------------------------------------------------


def server_note(server):
    """'' while the server runs, else a line saying how it exited."""
    report = server.exit_report(wait=0.1)  # a dead server is reaped at once
    return f"\n{report}" if report else ""


@contextmanager
def reporting_server_death(server, doing):
    """Turn a socket error into a failure that also says if the server died."""
    try:
        yield
    except OSError as error:  # includes socket.timeout
        raise AssertionError(f"{doing}: {error!r}{server_note(server)}") from error


# --- Checks -------------------------------------------------------------------


def assert_echo(server, sent, got, why_short=None):
    """Fail, explaining in detail, unless `got` is exactly `sent`."""
    __tracebackhide__ = True  # pytest shows the caller, not this helper
    if got == sent:
        return
    where = first_difference(sent, got)
    if len(got) < len(sent) and sent.startswith(got):
        summary = f"got back only the first {len(got)} of {len(sent)} bytes"
    elif len(got) > len(sent) and got.startswith(sent):
        summary = f"got back {plural(len(got) - len(sent), 'byte')} more than the {len(sent)} sent"
    else:
        summary = (
            f"sent {len(sent)} bytes, got back {len(got)}; "
            f"first difference at offset {where} (0x{where:x})"
        )
    if why_short:
        summary += f"; then {why_short}"
    as_text = _is_text(sent) and _is_text(got)
    raise AssertionError(
        f"echo mismatch: {summary}\n"
        f"replay: start `{server.command_line}`, then\n"
        f"    {replay_command(server.port, sent)}\n"
        f"sent ({len(sent)} bytes):\n{excerpt(sent, where, as_text)}\n"
        f"got ({len(got)} bytes):\n{excerpt(got, where, as_text)}"
        f"{server_note(server)}"
    )


# --- Connections --------------------------------------------------------------


def reset(sock):
    """Close abortively: SO_LINGER {on, 0 s} makes close() send a RST."""
    linger = struct.pack("ii", 1, 0)  # struct linger {l_onoff = 1, l_linger = 0}
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
    sock.close()


class Connection:
    """One TCP client connection to the server under test.

    Use it in a `with` block so the socket is closed even when the test
    fails: the echo servers keep running until every client has hung up.
    """

    def __init__(self, server, timeout=5.0):
        self.server = server
        self.timeout = scaled(timeout)
        self.why_short = None  # set by recv_exactly
        with reporting_server_death(server, f"connecting to {HOST}:{server.port}"):
            self.sock = socket.create_connection((HOST, server.port), timeout=self.timeout)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def close(self):
        self.sock.close()

    def send(self, data):
        with reporting_server_death(self.server, f"sending {len(data)} bytes"):
            self.sock.sendall(data)

    def recv_exactly(self, size):
        """Read until `size` bytes came.  Returns fewer if the stream ended,
        nothing more arrived within the timeout, or the connection failed;
        `self.why_short` then says which."""
        buffer = bytearray(size)
        view = memoryview(buffer)
        received = 0
        self.why_short = None
        while received < size:
            try:
                n = self.sock.recv_into(view[received:], min(size - received, MiB))
            except socket.timeout:
                self.why_short = f"nothing more arrived within {self.timeout:g} s"
                break
            except OSError as error:
                self.why_short = f"the connection failed: {error!r}"
                break
            if n == 0:
                self.why_short = "the server closed the connection"
                break
            received += n
        return bytes(view[:received])

    def expect_echo(self, sent):
        """Read len(sent) bytes and check that they are exactly `sent`."""
        __tracebackhide__ = True
        got = self.recv_exactly(len(sent))
        assert_echo(self.server, sent, got, self.why_short)

    def round_trip(self, data):
        __tracebackhide__ = True
        self.send(data)
        self.expect_echo(data)

    def shutdown_write(self):
        """Half-close: tell the server we will send nothing more (a FIN)."""
        self.sock.shutdown(socket.SHUT_WR)

    def expect_eof(self):
        """Check that the server closes the connection and sends nothing more."""
        with reporting_server_death(self.server, "waiting for the server to close"):
            extra = self.sock.recv(64 * KiB)
        assert extra == b"", (
            f"expected the server to close the connection, got {len(extra)} more bytes:\n"
            f"{excerpt(extra)}"
        )

    def reset(self):
        reset(self.sock)

    def send_until_stalled(self, quiet=0.5, chunk=64 * KiB):
        """Send without reading until nothing more goes out for `quiet` seconds.

        Then every buffer between us and the server is full: our send
        buffer, the server's receive buffer, its send buffer and our
        receive buffer; the server has stopped reading.  Returns the number
        of bytes sent.
        """
        data = b"\x5a" * chunk
        sent = 0
        self.sock.settimeout(scaled(quiet))
        try:
            while True:
                sent += self.sock.send(data)
        except socket.timeout:
            return sent
        finally:
            self.sock.settimeout(self.timeout)


class Sender(threading.Thread):
    """Sends data on a connection from a background thread.

    A test that sends a lot must read the echo at the same time: otherwise,
    once the socket buffers are full, the server blocks writing to us while
    we block writing to it.  Use as a context manager: leaving the block
    waits for the sender and re-raises any error it met.

        with Sender(conn, data):
            conn.expect_echo(data)
    """

    def __init__(self, conn, data, chunk=64 * KiB):
        super().__init__(daemon=True)
        self.conn = conn
        self.data = data
        self.chunk = chunk
        self.sent = 0  # progress, read by the test thread
        self.error = None

    def run(self):
        view = memoryview(self.data)
        try:
            while self.sent < len(view):
                self.sent += self.conn.sock.send(view[self.sent : self.sent + self.chunk])
        except OSError as error:
            self.error = error

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, exc_type, *rest):
        if exc_type is not None:
            # The test failed: wake the sender up if it is blocked in send().
            try:
                self.conn.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.join(self.conn.timeout)
            return
        self.finish()

    def finish(self):
        """Wait for every byte to be sent; fail if the sender failed or hangs."""
        __tracebackhide__ = True
        self.join(self.conn.timeout + 1)
        if self.is_alive():
            raise AssertionError(
                f"sender still blocked after {self.sent} of {len(self.data)} bytes"
                f"{server_note(self.conn.server)}"
            )
        if self.error is not None:
            raise AssertionError(
                f"sending failed after {self.sent} of {len(self.data)} bytes: "
                f"{self.error!r}{server_note(self.conn.server)}"
            ) from self.error

    def wait_until_stalled(self, quiet=0.5):
        """Return once no byte has gone out for `quiet` seconds (or all did)."""
        quiet = scaled(quiet)
        last_progress, last_sent = time.monotonic(), self.sent
        while self.is_alive() and time.monotonic() - last_progress < quiet:
            time.sleep(0.05)
            if self.sent != last_sent:
                last_progress, last_sent = time.monotonic(), self.sent
        return self.sent
