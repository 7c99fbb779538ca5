"""Tests of the HTTP/1.1 servers (stage 3 on): answers, framing, connections, errors.

The requests use the two resources every HTTP stage serves: GET and HEAD of
/plaintext say "Hello, World!" as text/plain, and POST to /echo sends its
request body back as application/octet-stream (stage 3 answers any path so;
from stage 4 on, only these).  Each test names in its docstring the
clause it checks, of RFC 9112 (HTTP/1.1: message syntax, framing,
connections) or RFC 9110 (HTTP semantics: methods, fields, status codes).

Malformed requests are one table, MALFORMED, that reads like a spec: the
bytes sent and the status due.  After a malformed request nobody can tell
where the next request begins, so the server must answer and close; every
case sends a valid request right behind the bad one and checks that it is
never answered (a server that answers it has found a request boundary a
proxy in front of it may not have seen: request smuggling).

The helpers are in http_client.py.  HttpConnection reads responses strictly
and, when a check fails, prints a command replaying what the test sent and
every byte that came back.  The timeout tests start their own server with
1-second timeouts.
"""

import re
import signal
import socket
import time
from contextlib import ExitStack
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from client import MiB, scaled
from http_client import (
    HttpConnection,
    chunked,
    parse_imf_fixdate,
    read_response_without_body,
    request,
)

HELLO = b"Hello, World!"  # what GET answers on this stage
SMUGGLED = request("GET", "/smuggled")  # a valid request the server must never answer
# A body that hides SMUGGLED: as chunked it is empty, and SMUGGLED is the next request.
HIDDEN = b"0\r\n\r\n" + SMUGGLED

# The parser's limits, as shared/http_parse.h defines them (test_limits_match_the_parser).
MAX_METHOD_LEN = 32
MAX_TARGET_LEN = 8000
MAX_HEAD_LEN = 8192  # request line, fields, blank line, and any empty lines before them
MAX_FIELDS = 64
MAX_LEADING_EMPTY_LINES = 4
MAX_BODY_LEN = MiB
MAX_CHUNK_LINE_LEN = 1024
MAX_TRAILER_LEN = 4096
# The longest a valid request line can be: method and target at their limits.
MAX_REQUEST_LINE_LEN = MAX_METHOD_LEN + len(" ") + MAX_TARGET_LEN + len(" HTTP/1.1\r\n")

# The timeout tests run the server with 1-second timeouts, which it checks once a
# second: a deadline may pass up to a second late, plus scheduling (scaled under valgrind).
TIMEOUT = 1
SLACK = scaled(1.5)


# --- Requests at and past the limits -------------------------------------------------


def target_of_length(length):
    """/plaintext with a query that makes the target `length` bytes long."""
    return "/plaintext?" + "t" * (length - len("/plaintext?"))


def head_of_length(length):
    """A GET head exactly `length` bytes long, padded with an X-Padding field."""
    start, end = b"GET /plaintext HTTP/1.1\r\nHost: example.test\r\nX-Padding: ", b"\r\n\r\n"
    return start + b"p" * (length - len(start) - len(end)) + end


def head_with_fields(count):
    """A GET head with `count` field lines, Host included."""
    return request("GET", "/plaintext", *[f"X-Field-{i}: {i}" for i in range(1, count)])


# --- Answers ---------------------------------------------------------------------------


@pytest.mark.needs("http")
@pytest.mark.parametrize(
    "target",
    ["/plaintext", "/plaintext?x=1&y=2", "/%70lain%74ext", "http://example.test/plaintext"],
    ids=["origin-form", "query", "percent-encoded", "absolute-form"],
)
def test_get_says_hello(server, target):
    """GET /plaintext: 200, text/plain, "Hello, World!" (RFC 9110 section 9.3.1).

    The query is not part of the path; percent-encoded unreserved characters
    mean the same as the characters (RFC 3986 section 2.3); the last target is
    in absolute-form, which a server MUST accept (RFC 9112 section 3.2.2).
    """
    with HttpConnection(server) as conn:
        conn.send(request("GET", target))
        conn.expect_response(
            200, body=HELLO, headers={"Content-Type": "text/plain", "Content-Length": "13"}
        )


@pytest.mark.needs("http")
def test_head_is_get_without_the_body(server):
    """HEAD gets GET's header fields, Content-Length: 13 included, and no body
    (RFC 9110 section 9.3.2; RFC 9112 section 6.3, rule 1).

    HEAD and GET go out in one send: had the server sent a body after the
    HEAD response, the reader would find it where the GET response begins.
    """
    with HttpConnection(server) as conn:
        conn.send(request("HEAD", "/plaintext") + request("GET", "/plaintext"))
        head = conn.expect_response(
            200, method="HEAD", headers={"Content-Type": "text/plain", "Content-Length": "13"}
        )
        get = conn.expect_response(200, body=HELLO)
        conn.check(
            head.headers_except("Date") == get.headers_except("Date"),
            f"HEAD and GET got different header fields:\n  HEAD: {head.headers}\n"
            f"  GET:  {get.headers}",
        )


@pytest.mark.needs("http")
@pytest.mark.parametrize(
    "body", [b"hello", bytes(range(256)), b""], ids=["text", "every-byte-value", "empty"]
)
def test_post_echoes_its_body(server, body):
    """POST with a Content-Length gets its body back, as application/octet-stream
    (RFC 9112 section 6.2: Content-Length says where the body ends)."""
    with HttpConnection(server) as conn:
        conn.send(request("POST", "/echo", body=body))
        conn.expect_response(
            200,
            body=body,
            headers={"Content-Type": "application/octet-stream",
                     "Content-Length": str(len(body))},
        )


@pytest.mark.needs("http")
def test_post_without_content_length_has_no_body(server):
    """A request with neither Content-Length nor Transfer-Encoding has no body
    (RFC 9112 section 6.3, rule 7): the bytes after its head are the next request."""
    with HttpConnection(server) as conn:
        conn.send(request("POST", "/echo") + request("GET", "/plaintext"))
        conn.expect_response(200, body=b"")
        conn.expect_response(200, body=HELLO)


@pytest.mark.needs("http")
def test_post_body_of_exactly_the_limit(server):
    """A body of exactly 1 MiB, the largest allowed, is echoed intact.

    A thread sends the body while the test reads, so neither side can block
    the other once the socket buffers are full.  The body is 16 runs of
    64 KiB, each of a different letter, so a run lost, repeated or reordered
    shows (and the failure report can replay it compactly).
    """
    body = b"".join(bytes([ord("A") + i]) * (MAX_BODY_LEN // 16) for i in range(16))
    with HttpConnection(server) as conn:
        conn.send(request("POST", "/echo", f"Content-Length: {len(body)}"))
        with conn.send_in_background(body):
            conn.expect_response(200, body=body)


@pytest.mark.needs("http")
def test_large_bodies_sent_back_to_back_are_echoed_whole_and_in_order(server):
    """Large bodies pipelined one behind the other, then a GET, all in one stream:
    each body is echoed whole, and the GET answered after them.

    The server keeps room for a body whose length it knows and reads the rest of it
    straight into that room (conn_expect_input): the bytes after one body, the next
    request's head and the first of its body, must still reach the next request, and
    a read must never run past the room.  Three bodies of different sizes and
    letters, sent in pieces of an odd size, so that reads end anywhere in them.
    """
    bodies = [bytes([ord("a") + i]) * size
              for i, size in enumerate((MAX_BODY_LEN, 300_001, MAX_BODY_LEN // 2 + 7))]
    stream = b"".join(request("POST", "/echo", body=body) for body in bodies)
    stream += request("GET", "/plaintext")
    with HttpConnection(server) as conn:
        with conn.send_in_background(stream, chunk=40_009):
            for body in bodies:
                conn.expect_response(200, body=body)
            conn.expect_response(200, body=HELLO)


@pytest.mark.needs("http")
@pytest.mark.uninstrumented("the server's allocated memory")
def test_a_promised_body_is_not_memory_held_before_it_comes(server, record_property):
    """256 clients each send a head promising a 1 MiB body, and 1 KiB of it, then
    nothing more.  Whatever the server allocates for them must stay far below
    what they promised: less than 256 KiB each on average, where 1 MiB each is
    what a server holds if it sets aside room for the whole body as soon as the
    head says how long it is.  A client would then pin a megabyte of the server's
    memory for the price of a hundred bytes (nginx keeps 16 KiB of a body in
    memory, by default, before it spills to a file).

    Each head carries "Expect: 100-continue", and the test waits for every
    "100 Continue": once it has come, the server has read that head and done
    whatever it does to wait for the body.  The growth of its allocated memory
    (VmData) is measured from just before the clients connect; it is printed
    (see it with -s) and recorded as the property data_growth_kib.  Stage 6
    here grows by about 5 MiB, and a server that sets aside the room grows by
    256 MiB.  The limit, 64 MiB, also leaves room for what a server may still
    be allocating as it starts: stage 6's second loop thread sets up its ring
    and tables (16 MiB) while the first is already accepting, and was seen to
    land in the measurement.
    """
    clients, limit_kib = 256, 256 * 256
    head = request("POST", "/echo", "Expect: 100-continue", f"Content-Length: {MAX_BODY_LEN}")
    data_before = server.data_kib()
    with ExitStack() as stack:
        for _ in range(clients):
            conn = stack.enter_context(HttpConnection(server))
            conn.send(head + b"y" * 1024)
            conn.expect_response(100)
        growth_kib = server.data_kib() - data_before
    print(f"\n{clients} promised bodies: server VmData grew by {growth_kib} KiB")
    record_property("data_growth_kib", growth_kib)
    assert growth_kib < limit_kib, (
        f"{clients} clients that sent 1 KiB each of a promised 1 MiB body made the server "
        f"allocate {growth_kib} KiB (limit {limit_kib} KiB): room for a body should grow "
        "with what has come, not with what the head promises"
    )


@pytest.mark.needs("http")
@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
def test_other_methods_get_405_with_allow(server, method):
    """A method the server knows but does not serve: 405 with an Allow field
    listing the ones it does (RFC 9110 sections 9.1, 15.5.6, 10.2.1): here
    GET and HEAD at least, and never the method refused.  (Exactly which
    methods a path accepts is the router's business: test_router.py.)

    The request is well-formed, so its body is skipped and the connection
    stays usable: the GET sent right behind it is answered.
    """
    with HttpConnection(server) as conn:
        conn.send(request(method, "/plaintext", body=b"not wanted") + request("GET", "/plaintext"))
        response = conn.expect_response(405)
        allowed = [m.strip() for m in (response.header("Allow") or "").split(",")]
        conn.check(
            "GET" in allowed and "HEAD" in allowed and method not in allowed,
            f"Allow: {response.header('Allow')!r} should list GET and HEAD, and not {method}",
        )
        conn.expect_response(200, body=HELLO)


@pytest.mark.needs("http")
@pytest.mark.parametrize("target, allowed", [
    ("*", {"GET", "HEAD", "POST", "OPTIONS"}),
    ("/plaintext", {"GET", "HEAD", "OPTIONS"}),
], ids=["asterisk", "plaintext"])
def test_options_is_answered_with_allow(server, target, allowed):
    """OPTIONS asks what may be done (RFC 9110 section 9.3.7): with "*" (the
    asterisk-form, RFC 9112 section 3.2.4) about the server as a whole, with a
    path about that resource.  The answer is a 204 with Allow (section 10.2.1),
    listing at least the methods given here, and never a body or a
    Content-Length (section 8.6); the connection stays usable."""
    with HttpConnection(server) as conn:
        conn.send(request("OPTIONS", target) + request("GET", "/plaintext"))
        response = read_response_without_body(conn)
        conn.check(response.status == 204, f"expected 204, got {response.status}")
        members = {m.strip() for m in (response.header("Allow") or "").split(",")}
        conn.check(allowed <= members,
                   f"Allow: {response.header('Allow')!r} should list {', '.join(sorted(allowed))}")
        conn.check(response.header("Content-Length") is None, "a 204 with a Content-Length")
        conn.expect_response(200, body=HELLO)


@pytest.mark.needs("http")
def test_date_is_the_current_time(server):
    """The Date field says when the response was made (RFC 9110 section 6.6.1).

    Its IMF-fixdate form (RFC 9110 section 5.6.7) the reader checks on every
    response; here the time itself must lie between the moments just before
    the request and just after the response, to the second.
    """
    with HttpConnection(server) as conn:
        before = datetime.now(timezone.utc).replace(microsecond=0)
        conn.send(request("GET", "/plaintext"))
        response = conn.expect_response(200)
        after = datetime.now(timezone.utc)
        date = parse_imf_fixdate(response.header("Date"))
        conn.check(
            before - timedelta(seconds=1) <= date <= after + timedelta(seconds=1),
            f"Date: {response.header('Date')} is not the current time "
            f"(between {before:%H:%M:%S} and {after:%H:%M:%S} GMT)",
        )


# --- Framing: chunked bodies, valid edge cases, the body limit, 100-continue ------------


@pytest.mark.needs("http")
def test_chunked_post_is_decoded(server):
    """A chunked body is answered decoded, with a Content-Length (RFC 9112 section
    7.1.3); chunk extensions (section 7.1.1) and trailer fields (section 7.1.2)
    are read and dropped.

    A GET follows in the same send: it is answered only if the server found
    exactly where the chunked body, trailers included, ends.
    """
    body = chunked(
        b"Hello",
        (b", chunked", ";name=value"),
        (b", in a chunk of 0x1a bytes", ';quoted="a;b\\"c"'),
        (b"!", ";flag"),
        trailers=["X-Checksum: 42", "X-Note: trailers are dropped"],
    )
    with HttpConnection(server) as conn:
        conn.send(request("POST", "/echo", "Transfer-Encoding: chunked", body=body)
                  + request("GET", "/plaintext"))
        conn.expect_response(
            200, body=b"Hello, chunked, in a chunk of 0x1a bytes!", absent=["Transfer-Encoding"]
        )
        conn.expect_response(200, body=HELLO)


ACCEPTED = [
    # RFC 9112 2.2: a server SHOULD ignore at least one empty line before a request line.
    pytest.param(b"\r\n" * MAX_LEADING_EMPTY_LINES + request("GET", "/plaintext"), HELLO,
                 id="empty-lines-before-request"),
    # RFC 9112 5: optional whitespace (OWS) around a field value.
    pytest.param(b"GET /plaintext HTTP/1.1\r\nHost:example.test\r\n\r\n", HELLO,
                 id="no-space-after-colon"),
    pytest.param(request("GET", "/plaintext", "X-Padded: \t value \t"), HELLO, id="whitespace-around-value"),
    # RFC 9110 5.5: a value may hold HTAB and obs-text (bytes 0x80-0xff).
    pytest.param(request("GET", "/plaintext", "X-Tab: a\tb"), HELLO, id="tab-inside-value"),
    pytest.param(request("GET", "/plaintext", b"X-Latin-1: caf\xe9"), HELLO, id="obs-text-in-value"),
    # RFC 9110 5.1: field names are case-insensitive.
    pytest.param(b"POST /echo HTTP/1.1\r\nhost: example.test\r\nCONTENT-LENGTH: 5\r\n\r\nhello",
                 b"hello", id="field-names-in-any-case"),
    # RFC 9112 6.3 rule 5, RFC 9110 8.6: a list of equal lengths is that length.
    pytest.param(request("POST", "/echo", "Content-Length: 5, 5", body=b"hello"), b"hello",
                 id="content-length-list-of-equal-values"),
    pytest.param(request("POST", "/echo", "Content-Length: 5", "Content-Length: 5", body=b"hello"),
                 b"hello", id="content-length-field-repeated"),
    # RFC 9110 8.6: Content-Length = 1*DIGIT; leading zeros are digits too.
    pytest.param(request("POST", "/echo", "Content-Length: 005", body=b"hello"), b"hello",
                 id="content-length-leading-zeros"),
    # RFC 9112 7: transfer coding names are case-insensitive.
    pytest.param(request("POST", "/echo", "Transfer-Encoding: Chunked", body=chunked(b"hello")),
                 b"hello", id="chunked-in-any-case"),
    # RFC 9112 7.1: chunk-size = 1*HEXDIG, in either case, leading zeros allowed.
    pytest.param(request("POST", "/echo", "Transfer-Encoding: chunked",
                         body=b"00A\r\n0123456789\r\n0\r\n\r\n"), b"0123456789",
                 id="chunk-size-upper-case-leading-zeros"),
    # RFC 9112 7.1.1 and RFC 9110 5.6.3: chunk extensions allow whitespace (BWS) around ; and =.
    pytest.param(request("POST", "/echo", "Transfer-Encoding: chunked",
                         body=b'5 ; a = 1 ;b="x"\r\nhello\r\n0\r\n\r\n'), b"hello",
                 id="chunk-ext-with-whitespace"),
    pytest.param(request("POST", "/echo", "Transfer-Encoding: chunked", body=chunked()), b"",
                 id="chunked-empty-body"),
    # The limits themselves are allowed (shared/http_parse.h).
    pytest.param(request("GET", target_of_length(MAX_TARGET_LEN)), HELLO, id="target-at-limit"),
    pytest.param(head_of_length(MAX_HEAD_LEN), HELLO, id="head-at-limit"),
    pytest.param(head_with_fields(MAX_FIELDS), HELLO, id="fields-at-limit"),
]


@pytest.mark.needs("http")
@pytest.mark.parametrize("raw, body", ACCEPTED)
def test_valid_edge_case_is_accepted(server, raw, body):
    """Unusual but valid requests are served, and framed right: a strict parser
    must not be stricter than the grammar (the clause is in the table).

    A GET follows in the same send and must be answered too.
    """
    with HttpConnection(server) as conn:
        conn.send(raw + request("GET", "/plaintext"))
        conn.expect_response(200, body=body)
        conn.expect_response(200, body=HELLO)


@pytest.mark.needs("http")
def test_content_length_over_the_limit_gets_413_without_100_continue(server):
    """A Content-Length over 1 MiB: 413 and close, before any body is sent
    (RFC 9110 section 15.5.14), and no "100 Continue" first, although the
    client asked for one (RFC 9110 section 10.1.1: the server may answer with
    a final status instead)."""
    with HttpConnection(server) as conn:
        conn.send(request("POST", "/echo", "Expect: 100-continue",
                          f"Content-Length: {MAX_BODY_LEN + 1}"))
        conn.expect_response(413, headers={"Connection": "close"})
        conn.expect_close()


@pytest.mark.needs("http")
def test_413_reaches_a_client_still_sending_its_body(server):
    """A client that does not wait sends a body over 1 MiB in one go.  The server
    answers 413 after the head, then must read and discard the rest until the
    client is done, and only then close (RFC 9112 section 9.6): closing with
    unread input makes the kernel send a reset, which can destroy the 413
    before the client reads it.  So: the whole body goes out, the 413 arrives,
    then a clean end of stream."""
    body = b"x" * (MAX_BODY_LEN + 1)
    with HttpConnection(server) as conn:
        conn.send(request("POST", "/echo", f"Content-Length: {len(body)}"))
        with conn.send_in_background(body):
            conn.expect_response(413, headers={"Connection": "close"})
            conn.expect_close()


@pytest.mark.needs("http")
def test_chunked_body_at_the_limit_is_accepted(server):
    """A chunked body that decodes to exactly 1 MiB is echoed intact (RFC 9112 section
    7.1.3).  16 chunks of 64 KiB, each of a different letter."""
    chunks = [bytes([ord("A") + i]) * (MAX_BODY_LEN // 16) for i in range(16)]
    with HttpConnection(server) as conn:
        conn.send(request("POST", "/echo", "Transfer-Encoding: chunked"))
        with conn.send_in_background(chunked(*chunks)):
            conn.expect_response(200, body=b"".join(chunks))


@pytest.mark.needs("http")
def test_chunked_body_over_the_limit_gets_413(server):
    """A chunked body that decodes to 1 MiB + 1 byte: 413 and close (RFC 9110 section
    15.5.14).  The server cannot know the size in advance, so it answers once the
    body passes the limit, then reads and discards the rest: the sender finishes."""
    chunks = [bytes([ord("A") + i]) * (MAX_BODY_LEN // 16) for i in range(16)] + [b"!"]
    with HttpConnection(server) as conn:
        conn.send(request("POST", "/echo", "Transfer-Encoding: chunked"))
        with conn.send_in_background(chunked(*chunks)):
            conn.expect_response(413, headers={"Connection": "close"})
            conn.expect_close()


@pytest.mark.needs("http")
@pytest.mark.parametrize("expectation", ["100-continue", "100-Continue"])
def test_expect_100_continue(server, expectation):
    """Expect: 100-continue: "100 Continue" arrives before the body is sent, the
    final response after it (RFC 9110 sections 10.1.1, 15.2.1).  The
    expectation is case-insensitive (section 10.1.1)."""
    body = b"sent after the go-ahead"
    with HttpConnection(server) as conn:
        conn.send(request("POST", "/echo", f"Expect: {expectation}", f"Content-Length: {len(body)}"))
        interim = conn.expect_response(100)
        conn.check(
            conn.received[interim.offset : conn.parsed] == b"HTTP/1.1 100 Continue\r\n\r\n",
            "expected exactly 'HTTP/1.1 100 Continue' and a blank line",
        )
        conn.send(body)
        conn.expect_response(200, body=body)


@pytest.mark.needs("http")
def test_expect_100_continue_is_ignored_in_http_1_0(server):
    """A server MUST ignore a 100-continue expectation in an HTTP/1.0 request
    (RFC 9110 section 10.1.1): no "100 Continue", just the final response."""
    with HttpConnection(server) as conn:
        conn.send(request("POST", "/echo", "Expect: 100-continue", "Content-Length: 5",
                          version="HTTP/1.0", host=None))
        conn.expect_silence(0.3)
        conn.send(b"hello")
        conn.expect_response(200, body=b"hello")
        conn.expect_close()


# --- Connections: persistence, pipelining, partial reads, many clients -----------------


@pytest.mark.needs("http")
def test_keep_alive_serves_several_requests_on_one_connection(server):
    """HTTP/1.1 connections persist by default (RFC 9112 section 9.3): ten requests,
    one after the other, on one connection, none answered with a Connection field."""
    with HttpConnection(server) as conn:
        for i in range(5):
            body = f"request {2 * i + 1} of 10".encode()
            conn.send(request("POST", "/echo", body=body))
            conn.expect_response(200, body=body, absent=["Connection"])
            conn.send(request("GET", "/plaintext"))
            conn.expect_response(200, body=HELLO, absent=["Connection"])


@pytest.mark.needs("http")
def test_http_1_0_closes_after_one_response(server):
    """HTTP/1.0 without keep-alive: one response, then the server closes
    (RFC 9112 section 9.3); the request sent behind it is not answered.

    HTTP/1.0 needs no Host (RFC 9112 section 3.2).  The response is
    HTTP/1.1, as for every request (RFC 9110 section 6.2: a server sends its
    highest version); the reader checks that on every response.
    """
    with HttpConnection(server) as conn:
        conn.send(request("GET", "/plaintext", version="HTTP/1.0", host=None) + SMUGGLED)
        response = conn.expect_response(200, body=HELLO)
        conn.check(response.header("Connection") in (None, "close"),
                   f"Connection: {response.header('Connection')}, but the server closes")
        conn.expect_close()


@pytest.mark.needs("http")
def test_http_1_0_keep_alive_when_asked(server):
    """HTTP/1.0 with "Connection: keep-alive": the response says keep-alive and the
    connection stays open (RFC 9112 section 9.3, Appendix C.2.2).  Connection
    options are case-insensitive (RFC 9110 section 7.6.1).  The third request
    does not ask, so the server closes after it."""
    with HttpConnection(server) as conn:
        conn.send(request("GET", "/plaintext", "Connection: Keep-Alive", version="HTTP/1.0", host=None))
        conn.expect_response(200, body=HELLO, headers={"Connection": "keep-alive"})
        conn.send(request("POST", "/echo", "Connection: keep-alive", body=b"still open",
                          version="HTTP/1.0", host=None))
        conn.expect_response(200, body=b"still open", headers={"Connection": "keep-alive"})
        conn.send(request("GET", "/plaintext", version="HTTP/1.0", host=None) + SMUGGLED)
        conn.expect_response(200, body=HELLO)
        conn.expect_close()


@pytest.mark.needs("http")
@pytest.mark.parametrize("option", ["close", "Close"])
def test_connection_close(server, option):
    """Connection: close: the response says close, the server closes after it and
    does not process the request behind it (RFC 9112 section 9.6).  Options
    are case-insensitive (RFC 9110 section 7.6.1)."""
    with HttpConnection(server) as conn:
        conn.send(request("GET", "/plaintext", f"Connection: {option}") + SMUGGLED)
        conn.expect_response(200, body=HELLO, headers={"Connection": "close"})
        conn.expect_close()


def server_sockets(pid):
    """How many sockets the server process holds (its listeners and connections)."""
    count = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            count += fd.readlink().name.startswith("socket:")
        except FileNotFoundError:
            pass  # closed while we looked
    return count


@pytest.mark.needs("http")
def test_connection_close_releases_the_socket_without_waiting_for_the_client(server):
    """A client that said "Connection: close" sends nothing more (RFC 9112 section
    9.6), so the server need not linger: once the answer is out it closes its socket
    at once, while this client still holds its own open.  (A lingering close, which
    the server keeps for clients that may still be sending, would hold the socket
    until the client closed, or for 2 s.)"""
    baseline = server_sockets(server.pid)
    with HttpConnection(server) as conn:
        conn.send(request("GET", "/plaintext", "Connection: close"))
        conn.expect_response(200, body=HELLO, headers={"Connection": "close"})
        conn.expect_close()
        deadline = time.monotonic() + scaled(1.0)
        while server_sockets(server.pid) > baseline and time.monotonic() < deadline:
            time.sleep(0.01)
        conn.check(server_sockets(server.pid) == baseline,
                   "the server still holds the connection's socket 1 s after its answer")


@pytest.mark.needs("http")
def test_pipelined_requests_are_answered_in_order(server):
    """16 requests in one send, GET, POST and HEAD mixed: 16 responses, in the order
    of the requests (RFC 9112 section 9.3.2).  Each POST body is different, so a
    swap shows.  The last request says Connection: close, so after the 16th
    response the server must close: no answer is missing or extra."""
    expected, batch = [], b""
    for i in range(16):
        method = ["GET", "POST", "HEAD", "POST"][i % 4]
        close = ["Connection: close"] if i == 15 else []
        if method == "POST":
            body = f"body of request {i + 1}".encode()
            batch += request("POST", "/echo", *close, body=body)
        else:
            body = HELLO if method == "GET" else None
            batch += request(method, "/plaintext", *close)
        expected.append((method, body))
    with HttpConnection(server) as conn:
        conn.send(batch)
        for method, body in expected:
            conn.expect_response(200, method=method, body=body)
        conn.expect_close()


@pytest.mark.needs("http")
def test_empty_line_after_a_body_is_skipped(server):
    """Some clients send an extra CRLF after a POST body; a server SHOULD ignore an
    empty line before a request line (RFC 9112 section 2.2)."""
    with HttpConnection(server) as conn:
        conn.send(request("POST", "/echo", body=b"hello") + b"\r\n" + request("GET", "/plaintext"))
        conn.expect_response(200, body=b"hello")
        conn.expect_response(200, body=HELLO)


BYTE_BY_BYTE = request(
    "POST", "/echo", "Transfer-Encoding: chunked",
    body=chunked((b"one byte", ";at=a-time"), b" at a time", trailers=["X-Trailer: yes"]),
)


@pytest.mark.needs("http")
def test_request_arriving_byte_by_byte(server):
    """TCP delivers a byte stream, not messages: a request may arrive in any number
    of pieces and the parser must resume anywhere (RFC 9112 section 2.2 parses a
    message as a sequence of octets; section 8 covers incomplete ones).

    Every byte of a chunked POST, extension and trailer included, goes out on
    its own (TCP_NODELAY, and a millisecond apart so the server likely reads
    each alone).  Nothing may be answered before the last byte.
    """
    with HttpConnection(server) as conn:
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(len(BYTE_BY_BYTE) - 1):
            conn.send(BYTE_BY_BYTE[i : i + 1])
            time.sleep(0.001)
        conn.expect_silence(0.1)
        conn.send(BYTE_BY_BYTE[-1:])
        conn.expect_response(200, body=b"one byte at a time")


SPLIT = {
    "content-length": (request("POST", "/echo", body=b"split me"), b"split me"),
    "chunked": (
        request("POST", "/echo", "Transfer-Encoding: chunked",
                body=chunked(b"split", (b" me", ";x=y"), trailers=["T: v"])),
        b"split me",
    ),
}


@pytest.mark.needs("http")
@pytest.mark.parametrize("framing", SPLIT)
def test_request_split_at_every_offset(server, framing):
    """A short request sent in two pieces, split after every byte in turn, each on a
    new connection: every split is answered exactly (RFC 9112 section 2.2).

    The pause between the pieces lets the server read the first one alone,
    so its parser stops and resumes at that offset: in the request line, a
    field, the body, the chunk framing, the trailer.  A failure report shows
    the two piece sizes, hence the offset.
    """
    raw, body = SPLIT[framing]
    for offset in range(1, len(raw)):
        with HttpConnection(server) as conn:
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn.send(raw[:offset])
            time.sleep(0.002)
            conn.send(raw[offset:])
            conn.expect_response(200, body=body)


@pytest.mark.needs("http", "concurrent")
def test_many_concurrent_keep_alive_clients(server):
    """100 clients connected at once, two requests each on their connection: every
    client gets its own answers (RFC 9112 section 9.3: persistent connections).

    All send, then all are read, twice: the server must serve all of them
    at the same time, and keep each connection's state apart.
    """
    with ExitStack() as stack:
        clients = [stack.enter_context(HttpConnection(server)) for _ in range(100)]
        for round_ in (1, 2):
            for i, conn in enumerate(clients):
                conn.send(request("POST", "/echo", body=f"client {i}, request {round_}".encode()))
            for i, conn in enumerate(clients):
                conn.expect_response(200, body=f"client {i}, request {round_}".encode())


# --- Malformed requests ------------------------------------------------------------------


def case(case_id, raw, status):
    return pytest.param(raw, status, id=case_id)


def line(request_line):
    """A request with this request line, a Host, and nothing else."""
    return request_line + b"\r\nHost: example.test\r\n\r\n"


def fields(*lines):
    """A GET with Host and then these field lines."""
    return request("GET", "/plaintext", *lines)


def with_length(value):
    """A POST of "hello" with this Content-Length value."""
    return request("POST", "/echo", f"Content-Length: {value}", body=b"hello")


def chunked_post(body):
    """A chunked POST with this body, as raw bytes."""
    return request("POST", "/echo", "Transfer-Encoding: chunked", body=body)


MALFORMED = [
    # The request line: method SP request-target SP HTTP-version (RFC 9112 section 3).
    case("method-with-delimiter", line(b"GE(T / HTTP/1.1"), 400),  # RFC 9110 5.6.2: token
    case("space-before-method", line(b" GET / HTTP/1.1"), 400),
    case("two-spaces-after-method", line(b"GET  / HTTP/1.1"), 400),
    case("two-spaces-before-version", line(b"GET /  HTTP/1.1"), 400),
    case("tab-as-separator", line(b"GET\t/ HTTP/1.1"), 400),
    case("space-after-version", line(b"GET / HTTP/1.1 "), 400),
    case("no-target", line(b"GET HTTP/1.1"), 400),
    case("no-version", line(b"GET /"), 400),
    case("lower-case-protocol-name", line(b"GET / http/1.1"), 400),  # 2.3: case-sensitive
    case("two-digit-minor-version", line(b"GET / HTTP/1.10"), 400),  # 2.3: DIGIT "." DIGIT
    # Lines end in CRLF; bare CR is invalid, bare LF this parser rejects (RFC 9112 2.2).
    case("bare-cr-in-target", line(b"GET /a\rb HTTP/1.1"), 400),
    case("bare-cr-in-field-value", fields(b"X-Note: a\rb"), 400),
    case("bare-lf-line-endings", b"GET / HTTP/1.1\nHost: example.test\n\n", 400),
    case("bare-lf-after-request-line", b"GET / HTTP/1.1\nHost: example.test\r\n\r\n", 400),
    case("bare-lf-ends-head", b"GET / HTTP/1.1\r\nHost: example.test\r\n\n", 400),
    # RFC 9112 2.2: whitespace between the request line and the first field.
    case("indented-line-after-request-line",
         b"GET / HTTP/1.1\r\n X-Indented: 1\r\nHost: example.test\r\n\r\n", 400),
    case("too-many-empty-lines-before-request",
         b"\r\n" * (MAX_LEADING_EMPTY_LINES + 1) + request(), 400),
    # Well-formed versions other than 1.0 and 1.1 (RFC 9110 15.6.6).
    case("version-2.0", line(b"GET / HTTP/2.0"), 505),
    case("version-1.2", line(b"GET / HTTP/1.2"), 505),
    case("version-0.9", line(b"GET / HTTP/0.9"), 505),
    # Methods are case-sensitive tokens; unknown ones get 501 (RFC 9110 9.1, 15.6.2).
    case("unknown-method", line(b"FOO / HTTP/1.1"), 501),
    case("trace", line(b"TRACE / HTTP/1.1"), 501),
    case("connect", line(b"CONNECT example.test:443 HTTP/1.1"), 501),
    case("lower-case-get", line(b"get / HTTP/1.1"), 501),
    case("method-too-long", line(b"A" * (MAX_METHOD_LEN + 1) + b" / HTTP/1.1"), 501),
    # Exactly one Host in HTTP/1.1 (RFC 9112 3.2).
    case("no-host", b"GET / HTTP/1.1\r\n\r\n", 400),
    case("two-hosts", fields("Host: other.test"), 400),
    # An http URI must have a host (RFC 9110 4.2.1): an empty Host names none (RFC 9112 3.3).
    case("empty-host", b"GET / HTTP/1.1\r\nHost:\r\n\r\n", 400),
    case("blank-host", b"GET / HTTP/1.1\r\nHost:  \r\n\r\n", 400),
    # Any other invalid value (RFC 9112 3.2): uri-host [ ":" port ] (RFC 9110 7.2).
    case("host-with-space", b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
    case("host-with-userinfo", b"GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", 400),
    case("host-port-only", b"GET / HTTP/1.1\r\nHost: :80\r\n\r\n", 400),
    # Field lines: token ":" OWS value OWS (RFC 9112 5, RFC 9110 5.1 and 5.5).
    case("field-name-with-delimiter", fields("X-Bad@Name: 1"), 400),
    case("field-name-with-space", fields("X Bad: 1"), 400),
    case("empty-field-name", fields(": no name"), 400),
    case("field-without-colon", fields("X-No-Colon"), 400),
    case("space-before-colon", b"GET / HTTP/1.1\r\nHost : example.test\r\n\r\n", 400),  # 5.1
    case("tab-before-colon", fields("X-Tab\t: 1"), 400),  # 5.1
    case("obs-fold-with-space", fields("X-Folded: a", " b"), 400),  # 5.2
    case("obs-fold-with-tab", fields("X-Folded: a", "\tb"), 400),  # 5.2
    case("nul-in-field-value", fields(b"X-Nul: a\x00b"), 400),
    case("control-char-in-field-value", fields(b"X-Ctl: a\x01b"), 400),
    case("del-in-field-value", fields(b"X-Del: a\x7fb"), 400),
    # Any expectation but 100-continue (RFC 9110 10.1.1, 15.5.18).
    case("unknown-expectation", request("POST", "/echo", "Expect: magic", body=b"hello"), 417),
    # Content-Length = 1*DIGIT; several must agree (RFC 9112 6.3 rule 5, RFC 9110 8.6).
    case("content-length-plus-sign", with_length("+5"), 400),
    case("content-length-negative", with_length("-5"), 400),
    case("content-length-hex", with_length("0x5"), 400),
    case("content-length-word", with_length("five"), 400),
    case("content-length-fraction", with_length("5.0"), 400),
    case("content-length-empty", with_length(""), 400),
    case("content-length-two-numbers", with_length("5 5"), 400),
    case("content-lengths-differ-in-list", with_length("5, 6"), 400),
    case("content-lengths-differ-in-fields",
         request("POST", "/echo", "Content-Length: 5", "Content-Length: 6", body=b"hello!"), 400),
    # Both framings: which one a proxy used is unknowable (RFC 9112 6.3 rule 3).
    # The chunked reading ends the body early and finds a second request in it.
    case("content-length-and-transfer-encoding",
         request("POST", "/echo", f"Content-Length: {len(HIDDEN)}", "Transfer-Encoding: chunked",
                 body=HIDDEN), 400),
    # Transfer-Encoding must end in chunked (RFC 9112 6.3 rule 4), and not in HTTP/1.0 (6.1).
    case("transfer-coding-not-chunked",
         request("POST", "/echo", "Transfer-Encoding: gzip", body=b"hello"), 400),
    case("chunked-not-last",
         request("POST", "/echo", "Transfer-Encoding: chunked, gzip", body=chunked(b"hello")), 400),
    case("unknown-coding-before-chunked",  # 6.1: a coding the server does not implement
         request("POST", "/echo", "Transfer-Encoding: gzip, chunked", body=chunked(b"hello")), 501),
    case("transfer-encoding-in-http-1.0",
         request("POST", "/echo", "Transfer-Encoding: chunked", body=chunked(b"hello"),
                 version="HTTP/1.0", host=None), 400),
    # Chunks: chunk-size [chunk-ext] CRLF data CRLF ... trailers (RFC 9112 7.1, 7.1.1, 7.1.2).
    case("chunk-size-not-hex", chunked_post(b"zz\r\nhello\r\n0\r\n\r\n"), 400),
    case("chunk-size-missing", chunked_post(b"\r\nhello\r\n0\r\n\r\n"), 400),
    case("chunk-size-negative", chunked_post(b"-5\r\nhello\r\n0\r\n\r\n"), 400),
    case("chunk-size-0x-prefix", chunked_post(b"0x5\r\nhello\r\n0\r\n\r\n"), 400),
    case("chunk-size-after-space", chunked_post(b" 5\r\nhello\r\n0\r\n\r\n"), 400),
    case("chunk-size-overflow",  # 2**64: RFC 9112 7.1 warns of integer overflow
         chunked_post(b"1" + b"0" * 16 + b"\r\nhello\r\n0\r\n\r\n"), 400),
    case("chunk-longer-than-its-size", chunked_post(b"5\r\nhello!\r\n0\r\n\r\n"), 400),
    case("bare-lf-after-chunk-size", chunked_post(b"5\nhello\r\n0\r\n\r\n"), 400),
    case("chunk-ext-without-name", chunked_post(b"5;\r\nhello\r\n0\r\n\r\n"), 400),
    case("chunk-ext-without-value", chunked_post(b"5;name=\r\nhello\r\n0\r\n\r\n"), 400),
    case("chunk-ext-unclosed-quote", chunked_post(b'5;name="value\r\nhello\r\n0\r\n\r\n'), 400),
    case("chunk-line-too-long",  # shared/http_parse.h: HTTP_MAX_CHUNK_LINE_LEN
         chunked_post(b"5;x=" + b"y" * MAX_CHUNK_LINE_LEN + b"\r\nhello\r\n0\r\n\r\n"), 413),
    case("trailer-without-colon", chunked_post(b"5\r\nhello\r\n0\r\nX-No-Colon\r\n\r\n"), 400),
    case("trailer-obs-fold", chunked_post(b"5\r\nhello\r\n0\r\nX-T: a\r\n b\r\n\r\n"), 400),
    case("trailer-space-before-colon", chunked_post(b"5\r\nhello\r\n0\r\nX-T : a\r\n\r\n"), 400),
    case("trailers-too-large",  # shared/http_parse.h: HTTP_MAX_TRAILER_LEN
         chunked_post(b"5\r\nhello\r\n0\r\nX-Big: " + b"b" * MAX_TRAILER_LEN + b"\r\n\r\n"), 431),
    # Limits (RFC 9112 3: 414 for a target too long; RFC 6585 5: 431).
    case("target-too-long", request("GET", target_of_length(MAX_TARGET_LEN + 1)), 414),
    case("head-too-large", head_of_length(MAX_HEAD_LEN + 1), 431),
    case("too-many-fields", head_with_fields(MAX_FIELDS + 1), 431),
]


@pytest.mark.needs("http")
@pytest.mark.parametrize("raw, status", MALFORMED)
def test_malformed_request_is_answered_then_closed(server, raw, status):
    """A malformed request gets its status with Connection: close, then the server
    closes (RFC 9112 section 9.6; the clause of each case is in the table).

    A valid request follows the bad one in the same send, and must never be
    answered: exactly one response, then the end of stream.  The end must
    be a clean one: the server reads and discards what follows its answer
    instead of resetting the connection, as a reset can destroy the answer
    before the client reads it (RFC 9112 section 9.6).
    """
    with HttpConnection(server) as conn:
        conn.send(raw + SMUGGLED)
        conn.expect_response(status, headers={"Connection": "close"})
        conn.expect_close()


@pytest.mark.needs("http")
@pytest.mark.parametrize(
    "start, status",
    [
        (b"GET /" + b"t" * MAX_REQUEST_LINE_LEN, 414),
        (request("GET", "/plaintext").removesuffix(b"\r\n") + b"X-Long: " + b"v" * MAX_HEAD_LEN, 431),
        (head_with_fields(MAX_FIELDS + 1).removesuffix(b"\r\n"), 431),
    ],
    ids=["long-request-line", "long-field-line", "many-fields"],
)
def test_limits_apply_before_the_head_ends(server, start, status):
    """A head that never ends is answered once it is past a limit: else a client could
    make the server buffer without end (RFC 9112 section 3 for 414, RFC 6585
    section 5 for 431).

    An unfinished line is judged once it is longer than it could validly be
    (shared/http_parse.h): a request line longer than any valid one, a field
    line that takes the head past its limit.  A field line past the field
    limit is complete, so it is judged at once.
    """
    with HttpConnection(server) as conn:
        conn.send(start)
        conn.expect_response(status, headers={"Connection": "close"})
        conn.expect_close()


def test_limits_match_the_parser():
    """The limits above are the ones the parser defines in shared/http_parse.h."""
    header = (Path(__file__).resolve().parent.parent / "shared" / "http_parse.h").read_text()
    ours = {
        "HTTP_MAX_METHOD_LEN": MAX_METHOD_LEN,
        "HTTP_MAX_TARGET_LEN": MAX_TARGET_LEN,
        "HTTP_MAX_HEAD_LEN": MAX_HEAD_LEN,
        "HTTP_MAX_FIELDS": MAX_FIELDS,
        "HTTP_MAX_LEADING_EMPTY_LINES": MAX_LEADING_EMPTY_LINES,
        "HTTP_MAX_BODY_LEN": MAX_BODY_LEN,
        "HTTP_MAX_CHUNK_LINE_LEN": MAX_CHUNK_LINE_LEN,
        "HTTP_MAX_TRAILER_LEN": MAX_TRAILER_LEN,
    }
    for name, value in ours.items():
        match = re.search(rf"^#define {name} \(?([0-9]+)(?: \* ([0-9]+))?\)?$", header, re.M)
        assert match, f"no '#define {name} N' in shared/http_parse.h"
        defined = int(match[1]) * int(match[2] or 1)
        assert defined == value, f"shared/http_parse.h: {name} is {defined}, the tests use {value}"


# --- Timeouts ------------------------------------------------------------------------------


@pytest.mark.needs("http")
def test_incomplete_head_gets_408(start_server):
    """A head not complete within --header-timeout of its first byte: 408 with
    Connection: close, then the server closes (RFC 9110 section 15.5.9).

    An idle connection beside it is not affected: waiting between requests
    is the idle timeout's business (60 s here), not the header timeout's.
    """
    server = start_server("--header-timeout", str(TIMEOUT))
    with HttpConnection(server) as idle, HttpConnection(server) as stalled:
        started = time.monotonic()
        stalled.send(b"GET / HTTP/1.1\r\nHost: example.test\r\n")  # no blank line: not done
        stalled.expect_response(408, headers={"Connection": "close"})
        elapsed = time.monotonic() - started
        stalled.expect_close()
        stalled.check(
            TIMEOUT - 0.05 <= elapsed <= TIMEOUT + SLACK,
            f"408 came {elapsed:.2f} s after the first byte; expected "
            f"{TIMEOUT} s, or up to {SLACK:g} s later",
        )
        idle.send(request("GET", "/plaintext"))
        idle.expect_response(200, body=HELLO)


@pytest.mark.needs("http")
def test_slowloris_cannot_stretch_the_header_timeout(start_server):
    """A head trickling in, one byte every 0.3 s, still gets 408 once --header-timeout
    has passed since its first byte (RFC 9110 section 15.5.9).  If each byte
    restarted the clock, a client could hold a connection forever at almost
    no cost (the "slowloris" attack)."""
    server = start_server("--header-timeout", str(TIMEOUT))
    never_ends = b"GET / HTTP/1.1\r\nHost: example.test\r\nX-Slow: " + b"z" * 1000
    with HttpConnection(server) as conn:
        started = time.monotonic()
        for byte in never_ends:
            conn.send(bytes([byte]))
            if conn.wait_for_data(0.3) or time.monotonic() - started > TIMEOUT + SLACK:
                break
        elapsed = time.monotonic() - started
        conn.check(
            elapsed <= TIMEOUT + SLACK,
            f"no answer {elapsed:.2f} s after the first byte of a head sent a byte every "
            f"0.3 s: the header timeout ({TIMEOUT} s) must count from the first byte",
        )
        conn.expect_response(408, headers={"Connection": "close"})
        conn.expect_close()


@pytest.mark.needs("http")
def test_idle_connections_are_closed_silently(start_server):
    """Connections idle for --idle-timeout are closed without a byte, not even a 408
    (RFC 9112 section 9.5: servers close inactive connections; a 408 could be
    taken for the answer to a request the client is sending just then).

    Two connections wait side by side: one that has been answered once, and
    one that never sent anything.
    """
    server = start_server("--idle-timeout", str(TIMEOUT))
    with HttpConnection(server) as silent, HttpConnection(server) as answered:
        answered.send(request("GET", "/plaintext"))
        answered.expect_response(200, body=HELLO)
        idle_since = time.monotonic()
        idle_for = answered.expect_close(within=TIMEOUT + SLACK) - idle_since
        answered.check(
            TIMEOUT - 0.05 <= idle_for <= TIMEOUT + SLACK,
            f"closed after {idle_for:.2f} s idle; expected {TIMEOUT} s, "
            f"or up to {SLACK:g} s later",
        )
        # Idle since it connected, a moment longer: closed by now, or about to be.
        silent.expect_close(within=1)


# --- Shutdown --------------------------------------------------------------------------------


@pytest.mark.needs("http")
def test_sigterm_closes_idle_connections_and_finishes_requests_in_flight(server):
    """On SIGTERM the server closes idle keep-alive connections at once, answers a
    request that is half received (marked as the last with Connection: close,
    RFC 9112 section 9.6), then exits with status 0.

    Closing an idle connection loses nothing: a client must be ready for a
    server closing between requests anyway (RFC 9112 section 9.5).
    """
    body = b"half before SIGTERM, half after"
    with HttpConnection(server) as idle, HttpConnection(server) as busy:
        idle.send(request("GET", "/plaintext"))
        idle.expect_response(200, body=HELLO)
        busy.send(request("POST", "/echo", f"Content-Length: {len(body)}") + body[:15])
        busy.expect_silence(scaled(0.2))  # also gives the server time to read the head
        server.send_signal(signal.SIGTERM)
        idle.expect_close(within=1)
        busy.send(body[15:])
        busy.expect_response(200, body=body, headers={"Connection": "close"})
        busy.expect_close()
    status = server.wait_for_exit(timeout=5)
    assert status == 0, f"server exited with status {status} after SIGTERM, expected 0"


# --- Limitations of stages 2 and 3 ---------------------------------------------------------


@pytest.mark.needs("protocol")
def test_a_request_gets_an_answer_not_its_own_bytes(server):
    """A request is answered with a response (RFC 9112 section 4: a status line first),
    not with its own bytes.  Stage 2's loop hands bytes to echo.c, which knows no
    requests and sends them back; stage 3 puts HTTP on the same loop.  Needs only
    "protocol", so that on stage 2 it is the limitation, not one of many HTTP tests."""
    with HttpConnection(server) as conn:
        conn.send(request("GET", "/plaintext"))
        conn.expect_response(200, body=HELLO)


@pytest.mark.needs("http", "not-found")
def test_unknown_path_gets_404(server):
    """A path nothing is served at gets 404 (RFC 9110 section 15.5.5).  Stage 3
    answers every path alike; stage 4's router tells them apart."""
    with HttpConnection(server) as conn:
        conn.send(request("GET", "/no-such-page"))
        conn.expect_response(404)
