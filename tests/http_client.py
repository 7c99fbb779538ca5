"""HTTP helpers for the tests: build requests, read responses strictly, explain failures.

A test talks to the server through an HttpConnection:

    with HttpConnection(server) as conn:
        conn.send(request("GET", "/"))
        conn.expect_response(200, body=b"Hello, World!")
        conn.expect_close()        # or go on using the connection

The response reader is strict on purpose, because a lenient reader hides
exactly the bugs an HTTP server has.  Every response must

  * start with a status line `HTTP/1.1 NNN reason` (these servers answer
    HTTP/1.1 whatever the request's version),
  * end every line with CRLF and use valid field names (RFC 9112 section 5),
  * carry exactly one Content-Length, which is how the reader knows where
    the response ends (these servers never send chunked responses), and
    exactly one Date in IMF-fixdate form (RFC 9110 sections 6.6.1, 5.6.7).

An interim 1xx response has neither and no body; a response to HEAD has no
body whatever its Content-Length says (RFC 9112 section 6.3).

When a check fails, the error shows what was expected and

  * how to start the same server, and a shell command that sends every
    byte the connection sent (printf ... | nc ...),
  * every byte the connection received, with the offset where the
    response in question starts, and whether the server closed,
  * how the server exited, if it did.
"""

import base64
import re
import select
import socket
import time
import zlib
from dataclasses import dataclass
from datetime import datetime, timezone

from client import (
    HOST,
    KiB,
    REPLAY_LIMIT,
    Connection,
    Sender,
    excerpt,
    first_difference,
    printf_escape,
    scaled,
    server_note,
)

HOST_HEADER = "example.test"  # what request() puts in Host; this server ignores it
MAX_RESPONSE_HEAD = 64 * KiB  # a longer response head is a server bug, not a response

# RFC 9112 section 4: status-line = HTTP-version SP status-code SP [ reason-phrase ].
STATUS_LINE = re.compile(rb"HTTP/1\.1 ([1-5][0-9][0-9]) ([\t !-~\x80-\xff]*)")
# RFC 9112 section 5: field-line = field-name ":" OWS field-value OWS.
FIELD_LINE = re.compile(
    rb"""
    ([!#$%&'*+\-.^_`|~0-9A-Za-z]+) :    # field-name, a token (RFC 9110 5.6.2); no space before ":"
    [ \t]*                              # OWS
    (                                   # field-value: visible bytes, or obs-text (RFC 9110 5.5),
      (?: [!-~\x80-\xff]                #   with SP and HTAB only inside it
          (?: [\t !-~\x80-\xff]* [!-~\x80-\xff] )?
      )?
    )
    [ \t]*                              # OWS
    """,
    re.VERBOSE,
)
# RFC 9110 section 5.6.7: IMF-fixdate = day-name "," SP date1 SP time-of-day SP GMT.
DAY_NAMES = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
MONTH_NAMES = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
IMF_FIXDATE = re.compile(
    rf"({'|'.join(DAY_NAMES)}), ([0-9]{{2}}) ({'|'.join(MONTH_NAMES)}) ([0-9]{{4}}) "
    r"([0-9]{2}):([0-9]{2}):([0-9]{2}) GMT"
)


# --- Building requests ----------------------------------------------------------


def request(method="GET", target="/", *fields, body=None, version="HTTP/1.1", host=HOST_HEADER):
    """The bytes of a request: request line, Host, `fields`, blank line, body.

    `fields` are whole field lines without the CRLF, str or bytes, such as
    "Connection: close".  Host comes first unless host is None.  A body
    gets a Content-Length unless the fields already frame it (a
    Content-Length or Transfer-Encoding field among them).
    """
    lines = [f"{method} {target} {version}".encode()]
    if host is not None:
        lines.append(f"Host: {host}".encode())
    lines += [field.encode("latin-1") if isinstance(field, str) else field for field in fields]
    framed = any(
        line.lower().startswith((b"content-length:", b"transfer-encoding:")) for line in lines
    )
    if body is not None and not framed:
        lines.append(b"Content-Length: %d" % len(body))
    return b"\r\n".join(lines) + b"\r\n\r\n" + (body or b"")


def chunked(*chunks, trailers=()):
    """A chunked body (RFC 9112 section 7.1): each chunk, the last chunk, trailers.

    A chunk is bytes, or a (bytes, extension) pair such as (b"abc", ";x=1").
    """
    out = b""
    for chunk in chunks:
        data, extension = chunk if isinstance(chunk, tuple) else (chunk, "")
        out += b"%x%s\r\n%s\r\n" % (len(data), extension.encode(), data)
    out += b"0\r\n"
    for trailer in trailers:
        out += trailer.encode() + b"\r\n"
    return out + b"\r\n"


# --- Reading responses ----------------------------------------------------------


def parse_imf_fixdate(text):
    """The moment an IMF-fixdate names (an aware datetime), or None if `text` is not one.

    The day name must agree with the date: "Mon, 01 Jan 2024" is fine,
    "Tue, 01 Jan 2024" is not.
    """
    match = IMF_FIXDATE.fullmatch(text)
    if not match:
        return None
    day_name, day, month, year, hour, minute, second = match.groups()
    try:
        moment = datetime(
            int(year), MONTH_NAMES.index(month) + 1, int(day),
            int(hour), int(minute), int(second), tzinfo=timezone.utc,
        )
    except ValueError:  # 31 Feb, 25:00:00 ...
        return None
    return moment if DAY_NAMES[moment.weekday()] == day_name else None


@dataclass
class Response:
    status: int
    reason: str
    headers: list  # (name, value) pairs as received, both str
    body: bytes
    offset: int  # where it starts among the bytes the connection received

    def header(self, name):
        """The field's value; several lines of it joined with ", "; None if absent."""
        values = [value for field, value in self.headers if field.lower() == name.lower()]
        return ", ".join(values) if values else None

    def headers_except(self, *names):
        """The header fields without those named (to compare two responses)."""
        skip = {name.lower() for name in names}
        return [(field, value) for field, value in self.headers if field.lower() not in skip]


class HttpConnection(Connection):
    """A client connection that sends requests and reads responses strictly.

    It records every byte sent and received, so that a failure can show
    the whole conversation and a command replaying it.
    """

    def __init__(self, server, timeout=5.0):
        super().__init__(server, timeout)
        self.pieces = []  # what each send() sent
        self.received = bytearray()  # everything received so far
        self.parsed = 0  # bytes of self.received taken by responses read
        self.closed_by_server = False  # end of stream seen

    # --- Sending

    def send(self, data):
        self.pieces.append(data)
        super().send(data)

    def send_in_background(self, data, chunk=64 * KiB):
        """A client.Sender that sends `data` from a thread, `chunk` bytes per
        send() at most (use it in a with block).

        For bodies too large to send before reading: the server may answer
        while we still send.
        """
        self.pieces.append(data)
        return Sender(self, data, chunk)

    # --- Receiving

    def _receive(self, waiting_for):
        """Append what arrives next to self.received; False at end of stream."""
        __tracebackhide__ = True
        if self.closed_by_server:
            return False
        problem = None
        try:
            data = self.sock.recv(64 * KiB)
        except socket.timeout:
            problem = f"nothing arrived within {self.sock.gettimeout():g} s"
        except OSError as error:  # a reset, typically
            problem = f"the connection failed ({error!r})"
        if problem:
            self.fail(f"{problem} while waiting for {waiting_for}")
        if not data:
            self.closed_by_server = True
            return False
        self.received += data
        return True

    def read_response(self, method="GET"):
        """Read the next response; fail unless it is well-formed.

        `method` is the request's: a response to HEAD has no body.
        """
        __tracebackhide__ = True
        start = self.parsed
        while (end := self.received.find(b"\r\n\r\n", start)) < 0:
            if len(self.received) - start > MAX_RESPONSE_HEAD:
                self.fail(f"no end of the response head in {MAX_RESPONSE_HEAD} bytes", start)
            if not self._receive("a response"):
                where = "before a response" if len(self.received) == start else "inside a response head"
                self.fail(f"the server closed the connection {where}", start)
        lines = bytes(self.received[start:end]).split(b"\r\n")
        status_line = STATUS_LINE.fullmatch(lines[0])
        if not status_line:
            self.fail(f"not an HTTP/1.1 status line: {lines[0]!r}", start)
        headers = []
        for line in lines[1:]:
            field = FIELD_LINE.fullmatch(line)
            if not field:
                self.fail(f"not a valid field line: {line!r}", start)
            headers.append((field[1].decode(), field[2].decode("latin-1")))
        response = Response(
            int(status_line[1]), status_line[2].decode("latin-1"), headers, b"", start
        )
        self.parsed = end + 4
        if response.status >= 200:
            length = self._check_framing(response)
            if method != "HEAD":
                while len(self.received) - self.parsed < length:
                    if not self._receive(f"the rest of a {length}-byte body"):
                        got = len(self.received) - self.parsed
                        self.fail(f"the server closed the connection after {got} of "
                                  f"{length} body bytes", start)
                response.body = bytes(self.received[self.parsed : self.parsed + length])
                self.parsed += length
        elif response.header("Content-Length") is not None:
            self.fail("a 1xx response must not have a Content-Length (RFC 9110 8.6)", start)
        return response

    def _check_framing(self, response):
        """What every final response from these servers carries; returns its Content-Length."""
        __tracebackhide__ = True
        lengths = [v for n, v in response.headers if n.lower() == "content-length"]
        if len(lengths) != 1 or not lengths[0].isdigit() or not lengths[0].isascii():
            self.fail(f"expected one Content-Length with a decimal value, got {lengths}",
                      response.offset)
        if response.header("Transfer-Encoding") is not None:
            self.fail("unexpected Transfer-Encoding in a response", response.offset)
        dates = [v for n, v in response.headers if n.lower() == "date"]
        if len(dates) != 1 or parse_imf_fixdate(dates[0]) is None:
            self.fail(f"expected one Date in IMF-fixdate form like "
                      f"'Sun, 06 Nov 1994 08:49:37 GMT', got {dates}", response.offset)
        return int(lengths[0])

    def expect_response(self, status, *, method="GET", body=None, headers=None, absent=()):
        """Read the next response and check it; returns it for further checks.

        status   the status code it must have
        body     bytes it must have as its body, if given
        headers  {name: value} fields it must have, with exactly these values
        absent   names of fields it must not have
        """
        __tracebackhide__ = True
        response = self.read_response(method)
        problems = []
        if response.status != status:
            problems.append(f"status {response.status}, expected {status}")
        for name, value in (headers or {}).items():
            got = response.header(name)
            if got != value:
                problems.append(f"{name}: {got!r}, expected {value!r}")
        for name in absent:
            if response.header(name) is not None:
                problems.append(f"{name}: {response.header(name)!r}, expected no {name} field")
        if body is not None and response.body != body:
            where = first_difference(body, response.body)
            problems.append(
                f"the body differs from the expected one at offset {where}\n"
                f"expected body ({len(body)} bytes):\n{excerpt(body, where)}\n"
                f"got body ({len(response.body)} bytes):\n{excerpt(response.body, where)}"
            )
        if problems:
            self.fail("; ".join(problems), response.offset)
        return response

    def expect_close(self, within=None):
        """The server closes the connection without sending anything more.

        Waits up to `within` seconds (scaled; default: the connection's
        timeout).  Returns time.monotonic() at the end of stream.
        """
        __tracebackhide__ = True
        self.sock.settimeout(scaled(within) if within is not None else self.timeout)
        try:
            while len(self.received) == self.parsed:
                if not self._receive("the server to close the connection"):
                    return time.monotonic()
        finally:
            self.sock.settimeout(self.timeout)
        extra = len(self.received) - self.parsed
        self.fail(f"expected the server to close the connection, but {extra} more bytes came "
                  f"(an answer to a request it should not have read?)", self.parsed)

    def wait_for_data(self, seconds):
        """True as soon as something (bytes or the end of stream) arrives, False
        if nothing does within `seconds` (not scaled: callers pace with it)."""
        readable, _, _ = select.select([self.sock], [], [], seconds)
        return bool(readable)

    def expect_silence(self, seconds):
        """Nothing arrives for `seconds`, and the connection stays open."""
        __tracebackhide__ = True
        if self.wait_for_data(seconds):
            if self._receive("anything"):
                self.fail(f"expected nothing for {seconds:g} s, but bytes arrived", self.parsed)
            self.fail("expected the connection to stay open, but the server closed it",
                      self.parsed)

    # --- Explaining failures

    def check(self, condition, problem):
        """Fail with `problem` and the whole conversation unless `condition` holds."""
        __tracebackhide__ = True
        if not condition:
            self.fail(problem)

    def fail(self, problem, offset=None):
        """Raise an AssertionError with `problem` and the whole conversation."""
        __tracebackhide__ = True
        raise AssertionError(self.report(problem, offset))

    def report(self, problem, offset=None):
        sent = b"".join(self.pieces)
        sizes = [len(piece) for piece in self.pieces]
        how = ""
        if len(sizes) > 1:
            pieces = ", ".join(map(str, sizes)) if len(sizes) <= 8 else f"{len(sizes)} pieces"
            how = f"    # the test sent it in pieces ({pieces}); this sends it at once"
        marker = f"; the part in question starts at offset {offset}" if offset is not None else ""
        ending = "\nthen the server closed the connection" if self.closed_by_server else ""
        return (
            f"{problem}\n"
            f"replay: start `{self.server.command_line}`, then\n"
            f"    {replay_command(self.server.port, self.pieces)}{how}\n"
            f"sent ({len(sent)} bytes):\n{excerpt(sent)}\n"
            f"received ({len(self.received)} bytes{marker}):\n"
            f"{excerpt(bytes(self.received), offset)}{ending}"
            f"{server_note(self.server)}"
        )


def replay_command(port, pieces):
    """A shell command that sends the bytes of `pieces`, in order, to the server.

    Short runs of bytes become printf '...'; random payloads their own
    generator command (client.random_bytes); long, repetitive runs (an
    oversized head) a python3 one-liner holding them compressed.  `nc -N`
    half-closes once its input ends, so the server answers and closes.
    """
    parts, run = [], b""
    for piece in [*pieces, None]:
        if piece is not None and not getattr(piece, "shell", None):
            run += piece
            continue
        if run:
            parts.append(_shell_printing(run))
            run = b""
        if piece is not None:
            parts.append(piece.shell)
    if not parts:
        parts = ["true"]
    producer = parts[0] if len(parts) == 1 else "{ " + "; ".join(parts) + "; }"
    return f"{producer} | nc -N {HOST} {port}"


def _shell_printing(data):
    if len(data) <= REPLAY_LIMIT:
        return f"printf '{printf_escape(data)}'"
    packed = base64.b64encode(zlib.compress(data, 9)).decode()
    if len(packed) <= REPLAY_LIMIT:
        return (
            "python3 -c 'import base64, sys, zlib; sys.stdout.buffer.write("
            f'zlib.decompress(base64.b64decode("{packed}")))\''
        )
    return f"echo '[{len(data)} bytes, too many to show here]' >&2"


# --- Field lists and the access log (stage 4 on) -----------------------------------


def list_members(value):
    """The members of a comma-separated list field such as Allow, in order, duplicates
    kept (RFC 9110 section 5.6.1: optional whitespace around each comma, empty members
    ignored).  None if the field is absent (value None)."""
    if value is None:
        return None
    return [member.strip(" \t") for member in value.split(",") if member.strip(" \t")]


def read_log_lines(path, count, within=1.0):
    """The complete lines of the log file at `path`, once it holds at least `count`.

    A server writes its log line as it queues the response, so the line can land
    a moment after the client has read that response: this polls for up to
    `within` seconds (scaled).  Returns the lines there are by then, without
    their line ends and possibly fewer than `count`: the caller's check says so.
    A line still being written (no newline yet) is not counted.
    """
    deadline = time.monotonic() + scaled(within)
    while True:
        try:
            with open(path, "rb") as log:
                text = log.read()
        except FileNotFoundError:
            text = b""
        lines = text.split(b"\n")[:-1]  # what follows the last newline is unfinished
        if len(lines) >= count or time.monotonic() >= deadline:
            return [line.decode("latin-1") for line in lines]
        time.sleep(0.02)


# The Common Log Format of the NCSA and Apache servers, as --access-log writes it:
#   127.0.0.1 - - [21/Nov/2026:15:56:33 +0000] "GET /plaintext HTTP/1.1" 200 13
# host, identity and user (unknown: "-"), when, the request line as sent, the status, and
# the body bytes sent ("-" for none).
ACCESS_LOG_LINE = re.compile(
    r'127\.0\.0\.1 - - \[([0-9]{2})/([A-Z][a-z]{2})/([0-9]{4}):([0-9]{2}):([0-9]{2}):([0-9]{2}) '
    r'\+0000\] "([^"]*)" ([1-5][0-9]{2}) ([0-9]+|-)'
)


def parse_access_log_line(line):
    """(request line, status, bytes, time) of an access log line, or None if it is not
    one.  bytes is a str, a number or "-"; time an aware datetime in UTC."""
    match = ACCESS_LOG_LINE.fullmatch(line)
    if not match or match[2] not in MONTH_NAMES:
        return None
    day, month, year, hour, minute, second, request_line, status, sent = match.groups()
    try:
        moment = datetime(int(year), MONTH_NAMES.index(month) + 1, int(day),
                          int(hour), int(minute), int(second), tzinfo=timezone.utc)
    except ValueError:
        return None
    return request_line, int(status), sent, moment


def check_access_log(conn, path, expected):
    """Check the access log at `path`: exactly the lines `expected`, each a
    (request line, status, bytes) triple, bytes as logged ("13" or "-").

    Waits up to a second for the lines to appear (read_log_lines); fails with
    `conn`'s report, which shows the requests sent, and both lists of lines.
    """
    __tracebackhide__ = True
    lines = read_log_lines(path, len(expected))
    got = []
    for line in lines:
        entry = parse_access_log_line(line)
        conn.check(entry is not None,
                   f"not a Common Log Format line: {line!r}\nexpected one like: "
                   f'127.0.0.1 - - [21/Nov/2026:15:56:33 +0000] "GET /plaintext HTTP/1.1" 200 13')
        got.append(entry[:3])
    conn.check(
        got == list(expected),
        "the access log differs:\n  expected:\n"
        + "".join(f"    {entry}\n" for entry in expected)
        + "  got:\n" + "".join(f"    {entry}\n" for entry in got),
    )


def read_response_without_body(conn):
    """Read the next response on `conn`, one that never has a body: a 304 or a 204
    (RFC 9112 section 6.3, rule 1).

    HttpConnection.read_response wants a Content-Length on every final
    response, but a 304 may leave it out, and one it has describes the body a
    200 would have had, which is not sent (RFC 9110 section 8.6).  Otherwise
    this is as strict: a status line, valid field lines, one Date in
    IMF-fixdate form, no Transfer-Encoding.  Which Content-Length, if any, is
    for the caller to check.
    """
    __tracebackhide__ = True
    start = conn.parsed
    while (end := conn.received.find(b"\r\n\r\n", start)) < 0:
        if len(conn.received) - start > MAX_RESPONSE_HEAD:
            conn.fail(f"no end of the response head in {MAX_RESPONSE_HEAD} bytes", start)
        if not conn._receive("a response"):
            conn.fail("the server closed the connection before a complete response head", start)
    lines = bytes(conn.received[start:end]).split(b"\r\n")
    status_line = STATUS_LINE.fullmatch(lines[0])
    if not status_line:
        conn.fail(f"not an HTTP/1.1 status line: {lines[0]!r}", start)
    headers = []
    for line in lines[1:]:
        field = FIELD_LINE.fullmatch(line)
        if not field:
            conn.fail(f"not a valid field line: {line!r}", start)
        headers.append((field[1].decode(), field[2].decode("latin-1")))
    response = Response(int(status_line[1]), status_line[2].decode("latin-1"), headers, b"", start)
    conn.parsed = end + 4
    if response.header("Transfer-Encoding") is not None:
        conn.fail("unexpected Transfer-Encoding in a response", start)
    dates = [value for name, value in headers if name.lower() == "date"]
    if len(dates) != 1 or parse_imf_fixdate(dates[0]) is None:
        conn.fail(f"expected one Date in IMF-fixdate form, got {dates}", start)
    return response
