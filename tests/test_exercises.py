"""Checks of the tutorial's exercises: each passes once its exercise is done.

Opt-in: `make check CH=3` runs chapter 3's, against stage 3 (pytest: --stage 3
--exercise 3 -m exercise); `make test` skips them all, so the suite stays green on the
stages as they are. Each test is marked @exercise("CH.N") after the exercise it checks,
numbered as in docs/0CH-*.md, and runs on stage CH only.

Before the exercise is done, its check fails and says what is missing; the chapter's
hint and worked solution say how to get there.
"""

import re
import shutil
import subprocess

import pytest

from client import MiB, Connection, Sender, excerpt, random_bytes, replay_command
from conftest import REPO
from http_client import HttpConnection, request

# --- Chapter 2 ----------------------------------------------------------------------------------


def build_with_protocol(stage, source, tmp_path):
    """Stage `stage`'s server built with `source` in place of echo.c: a copy of the stage's
    directory, in a copy of the repository made of links, whose Makefile names `source`
    instead. The stage itself is left as it is. Returns the executable."""
    if not (REPO / stage.directory / source).is_file():
        pytest.fail(f"there is no {stage.directory}/{source} yet: write it (see the exercise)",
                    pytrace=False)
    root = tmp_path / "repository"
    root.mkdir()
    for entry in REPO.iterdir():
        if entry.name != stage.directory:
            (root / entry.name).symlink_to(entry)
    copy = root / stage.directory
    shutil.copytree(REPO / stage.directory, copy, symlinks=True,
                    ignore=shutil.ignore_patterns("server", ".build-flags"))
    makefile = copy / "Makefile"
    text, count = re.subn(r"(?<![\w./])echo\.c\b", source, makefile.read_text())
    if count == 0:
        pytest.fail(f"{stage.directory}/Makefile does not name echo.c: the check builds the "
                    f"stage with {source} in its place", pytrace=False)
    makefile.write_text(text)
    build = subprocess.run(["make", "-C", str(copy)], stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, errors="replace")
    if build.returncode != 0:
        pytest.fail(f"the stage with {source} instead of echo.c does not build:\n"
                    f"{build.stdout}{build.stderr}", pytrace=False)
    return copy / "server"


def expect_answer(conn, sent, expected):
    """Read len(expected) bytes and fail, showing how to replay, unless they are `expected`."""
    __tracebackhide__ = True
    got = conn.recv_exactly(len(expected))
    if got != expected:
        raise AssertionError(
            f"expected {len(expected)} bytes back, got {len(got)}"
            f"{'; ' + conn.why_short if conn.why_short else ''}\n"
            f"replay: start `{conn.server.command_line}`, then\n"
            f"    {replay_command(conn.server.port, sent)}\n"
            f"expected:\n{excerpt(expected)}\ngot:\n{excerpt(got)}")


@pytest.mark.exercise("2.6")
@pytest.mark.needs("echo")
@pytest.mark.repository("stage 2's sources, built with another protocol in place of echo.c")
def test_upper_case_protocol(stage, start_server, tmp_path):
    """upper.c sends back every byte it receives, letters in upper case: a whole MiB (so
    that backpressure is needed), then a few bytes at a time."""
    server = start_server(binary=build_with_protocol(stage, "upper.c", tmp_path))
    data = random_bytes(MiB, seed=26)
    with Connection(server) as conn, Sender(conn, data):
        expect_answer(conn, data, data.upper())
    with Connection(server) as conn:
        for piece in [b"a", b"bc", b"Hello, world!\n", b"\x00z\xff"]:
            conn.send(piece)
            expect_answer(conn, piece, piece.upper())


@pytest.mark.exercise("2.6")
@pytest.mark.needs("echo")
@pytest.mark.repository("stage 2's sources, built with another protocol in place of echo.c")
def test_line_length_protocol(stage, start_server, tmp_path):
    """lengths.c answers each complete line with its length in bytes, the "\\n" left out,
    in decimal and followed by "\\n"; a line that has not ended yet gets no answer until
    it has, however it was cut."""
    server = start_server(binary=build_with_protocol(stage, "lengths.c", tmp_path))
    with Connection(server) as conn:
        sent = b"hello\n\nthree\nfour"
        conn.send(sent)
        expect_answer(conn, sent, b"5\n0\n5\n")
        for piece in [b" more", b" bytes", b"\n"]:
            conn.send(piece)
            sent += piece
        expect_answer(conn, sent, b"15\n")
        long_line = b"x" * 3000 + b"\n"
        for start in range(0, len(long_line), 1000):
            conn.send(long_line[start:start + 1000])
        expect_answer(conn, long_line, b"3000\n")


# --- Chapter 3 ----------------------------------------------------------------------------------


@pytest.mark.exercise("3.2")
@pytest.mark.needs("http")
def test_every_response_says_server_stage3(server):
    """Every response carries exactly one `Server: stage3` (RFC 9110 section 10.2.4):
    answers to GET, HEAD and POST, a 405 and a 400 (after which the server closes)."""
    exchanges = [
        ("GET", request("GET", "/plaintext"), 200),
        ("HEAD", request("HEAD", "/plaintext"), 200),
        ("POST", request("POST", "/echo", body=b"hi"), 200),
        ("DELETE", request("DELETE", "/plaintext"), 405),
        ("GET", b"GE(T /plaintext HTTP/1.1\r\nHost: example.test\r\n\r\n", 400),
    ]
    with HttpConnection(server) as conn:
        for method, raw, status in exchanges:
            conn.send(raw)
            response = conn.read_response(method)
            servers = [value for name, value in response.headers if name.lower() == "server"]
            conn.check(response.status == status and servers == ["stage3"],
                       f"status {response.status} with Server fields {servers}; expected "
                       f"{status} with ['stage3']")


# --- Chapter 4 ----------------------------------------------------------------------------------


@pytest.mark.exercise("4.1")
@pytest.mark.needs("router")
def test_routes_dot_shows_the_new_routes(run_cli):
    """--routes-dot draws /users/me beside /users/:id, and /posts below /:id."""
    dot = run_cli("--routes-dot").stdout
    labels = dict(re.findall(r'(n\d+) \[label="([^"\\]*)', dot))
    edges = re.findall(r"(n\d+) -> (n\d+);", dot)
    children = {label: [labels[b] for a, b in edges if a == node] for node, label in labels.items()}
    assert "/me" in children.get("/users", []) and "/:id" in children.get("/users", []), (
        f"expected /me and /:id below /users in the trie:\n{dot}")
    assert "/posts" in children.get("/:id", []), f"expected /posts below /users/:id:\n{dot}"


@pytest.mark.exercise("4.1")
@pytest.mark.needs("http", "router")
@pytest.mark.parametrize("target, status, rule", [
    ("/users/42", 200, "the parameter, as before: body 'user 42'"),
    ("/users/me", 200, "the static segment beats the parameter: a body of its own"),
    ("/users/42/posts", 200, "the new route, with id 42"),
    ("/users/me/posts", 200, "/users/me has no /posts: the router backs up to :id, id = me"),
    ("/users/me/settings", 404, "no route: the wildcard /*path, and no such file"),
    ("/users/", 404, "an empty segment is no :id: the wildcard, and no such file"),
])
def test_predicted_routes(server, target, status, rule):
    """The answers the exercise asks to predict, each with the rule that gives it."""
    with HttpConnection(server) as conn:
        conn.send(request("GET", target))
        response = conn.expect_response(status)
        body = response.body
        ok = {
            "/users/42": body == b"user 42\n",
            "/users/me": body != b"user me\n",
            "/users/42/posts": b"42" in body,
            "/users/me/posts": b"me" in body and body != b"user me\n",
        }.get(target, True)
        conn.check(ok, f"GET {target}: body {body!r}; expected {rule}")


@pytest.mark.exercise("4.2")
@pytest.mark.needs("http", "router")
def test_stats_counts_requests_per_pattern(server):
    """GET /stats answers one line `PATTERN COUNT` per route pattern requested so far:
    two different users count under /users/:id, not under their paths."""
    with HttpConnection(server) as conn:
        for target in ["/plaintext", "/plaintext", "/plaintext", "/users/1", "/users/2"]:
            conn.send(request("GET", target))
            conn.expect_response(200)
        conn.send(request("GET", "/stats"))
        body = conn.expect_response(200).body
        lines = body.decode(errors="replace").splitlines()
        conn.check("/plaintext 3" in lines and "/users/:id 2" in lines
                   and not any(line.startswith("/users/1") for line in lines),
                   f"GET /stats: {body!r}; expected the lines '/plaintext 3' and "
                   f"'/users/:id 2', and no line for the path /users/1")
