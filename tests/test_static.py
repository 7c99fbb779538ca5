"""Tests of the static files (stage 4 on): types, directories, validators, ranges, safety.

GET and HEAD of a path no other route takes serve the file at that path
under --root (default: the www/ directory next to the executable), with
sendfile.  Every 200 carries Last-Modified, a strong ETag and
Accept-Ranges: bytes, so a client can revalidate its copy (304) and fetch
a part of a file (206).  No request, however it is encoded, reads a byte
outside the root.

The tests build their own trees under pytest's temporary directory and
start the server with --root pointing there.  Every file's modification
time is set explicitly, to 0.7 s past the second MTIME names: an HTTP-date
has whole seconds, so the server must drop the fraction, both in
Last-Modified and when comparing with If-Modified-Since.

Each test names in its docstring the clause it checks, of RFC 9110 (HTTP
semantics: validators in 8.8, conditional requests in 13, ranges in 14)
or RFC 9112 (HTTP/1.1).  The helpers are in http_client.py.
"""

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from client import MiB, random_bytes
from http_client import (
    HttpConnection,
    check_access_log,
    read_response_without_body,
    request,
)

HELLO = b"Hello, World!"
MTIME = 1_704_164_645  # Tue, 02 Jan 2024 03:04:05 GMT
LAST_MODIFIED = "Tue, 02 Jan 2024 03:04:05 GMT"
MTIME_NS = MTIME * 10**9 + 700_000_000  # 0.7 s later: the HTTP-date drops the fraction

GUIDE = b"The guide: plain text, served as is.\n"
RANGES = random_bytes(1000, seed=41)  # /ranges.bin, for the range requests
BIG = random_bytes(MiB, seed=42)  # /big.bin, more than any socket buffer holds
STRONG_ETAG = re.compile(r'"[!#-~]*"')  # RFC 9110 section 8.8.3: opaque-tag, no W/

# File name -> the Content-Type it is served with (the extension decides, in any case).
CONTENT_TYPES = {
    "page.html": "text/html; charset=utf-8",
    "page.htm": "text/html; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "module.mjs": "text/javascript; charset=utf-8",
    "data.json": "application/json",
    "notes.txt": "text/plain; charset=utf-8",
    "logo.svg": "image/svg+xml",
    "image.png": "image/png",
    "photo.jpg": "image/jpeg",
    "photo.jpeg": "image/jpeg",
    "animation.gif": "image/gif",
    "picture.webp": "image/webp",
    "favicon.ico": "image/x-icon",
    "module.wasm": "application/wasm",
    "paper.pdf": "application/pdf",
    "feed.xml": "application/xml",
    "font.woff2": "font/woff2",
    "SHOUTING.HTML": "text/html; charset=utf-8",
    "Photo.JpEg": "image/jpeg",
    "README": "application/octet-stream",
    "unknown.xyz": "application/octet-stream",
    "archive.tar.gz": "application/octet-stream",
    "html": "application/octet-stream",
    "v1.2/NOTES": "application/octet-stream",
}


def write_tree(root, files):
    """Create `files` ({relative path: bytes}) under root, all modified at MTIME_NS."""
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        os.utime(path, ns=(MTIME_NS, MTIME_NS))


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The --root most tests serve (built once for this file):

        index.html                    docs/index.html, docs/guide.txt
        nested/deeper/index.html      noindex/unlisted.txt (a directory without index.html)
        types/...                     one file per entry of CONTENT_TYPES
        ranges.bin, big.bin, empty.txt
        alias.txt -> docs/guide.txt   a symlink that stays inside the root
    """
    root = tmp_path_factory.mktemp("site")
    write_tree(root, {
        "index.html": b"<!doctype html><title>home</title>\n",
        "docs/index.html": b"<!doctype html><title>docs</title>\n",
        "docs/guide.txt": GUIDE,
        "nested/deeper/index.html": b"<!doctype html><title>deeper</title>\n",
        "noindex/unlisted.txt": b"not to be listed\n",
        "ranges.bin": RANGES,
        "big.bin": BIG,
        "empty.txt": b"",
        **{f"types/{name}": f"a file named {name}\n".encode() for name in CONTENT_TYPES},
    })
    (root / "alias.txt").symlink_to("docs/guide.txt")
    return root


@pytest.fixture
def site_server(start_server, site):
    """The server, serving `site`."""
    return start_server("--root", str(site))


def expect_not_modified(conn, etag, size):
    """Read a 304 and check it: the ETag the 200 had (RFC 9110 section 15.4.5), no
    body (RFC 9112 section 6.3, rule 1), and no Content-Length but the one a
    200 would carry, if any (RFC 9110 section 8.6): "Content-Length: 0" would
    tell a cache the file is now empty."""
    __tracebackhide__ = True
    response = read_response_without_body(conn)
    conn.check(response.status == 304, f"status {response.status}, expected 304")
    conn.check(response.header("ETag") == etag,
               f"ETag: {response.header('ETag')!r}, expected {etag!r}, the 200's")
    length = response.header("Content-Length")
    conn.check(length in (None, str(size)),
               f"Content-Length: {length} in a 304, expected none or {size}, the 200's")
    return response


# --- --root ---------------------------------------------------------------------------------


@pytest.mark.needs("http", "static")
@pytest.mark.repository("this repository's built site or the page bundled with its stage")
def test_default_root_is_the_site_or_the_bundled_page(start_server, server_binary):
    """Without --root, GET / serves the tutorial site (docs/site) once `make docs` has
    built it, else the www/index.html bundled next to the executable; either way
    found from the executable's place, wherever the server is started from (the
    tests start it from the repository root, not from its directory)."""
    repo = Path(__file__).resolve().parent.parent
    site_index = repo / "docs" / "site" / "index.html"
    expected = site_index if site_index.exists() else repo / server_binary.parent / "www" / "index.html"
    bundled = expected.read_bytes()
    server = start_server()
    with HttpConnection(server) as conn:
        conn.send(request("GET", "/"))
        conn.expect_response(200, body=bundled,
                             headers={"Content-Type": "text/html; charset=utf-8"})


@pytest.mark.needs("static")
@pytest.mark.parametrize("kind", ["missing", "a-file"])
def test_root_must_be_a_directory(run_cli, tmp_path, kind):
    """--root naming nothing, or a file: exit status 2, a first line on stderr that
    names it, then usage; nothing on stdout (the command-line convention of
    shared/options.h)."""
    root = tmp_path / "no-such-dir"
    if kind == "a-file":
        root = tmp_path / "a-file.txt"
        root.write_bytes(b"not a directory\n")
    result = run_cli("--root", str(root))
    assert result.returncode == 2, (
        f"--root {root}: exit status {result.returncode}, expected 2; stderr: {result.stderr!r}"
    )
    first_line = result.stderr.partition("\n")[0]
    assert str(root) in first_line, f"the first line of stderr should name {root}: {first_line!r}"
    assert "usage" in result.stderr.lower(), f"no usage on stderr: {result.stderr!r}"
    assert result.stdout == "", f"nothing belongs on stdout here: {result.stdout!r}"


# --- Files and their types ------------------------------------------------------------------


@pytest.mark.needs("http", "static")
def test_file_is_served_with_its_validators(site_server):
    """GET of a file: 200, its bytes, its length, and what a cache needs to revalidate
    it: Last-Modified, the modification time as an IMF-fixdate, whole seconds
    (RFC 9110 section 8.8.2); a strong ETag, a quoted opaque tag (section 8.8.3);
    and Accept-Ranges: bytes, since ranges are supported (section 14.3)."""
    with HttpConnection(site_server) as conn:
        conn.send(request("GET", "/docs/guide.txt"))
        response = conn.expect_response(200, body=GUIDE, headers={
            "Content-Type": "text/plain; charset=utf-8",
            "Content-Length": str(len(GUIDE)),
            "Last-Modified": LAST_MODIFIED,
            "Accept-Ranges": "bytes",
        })
        etag = response.header("ETag")
        conn.check(etag is not None and STRONG_ETAG.fullmatch(etag),
                   f"ETag: {etag!r}, expected a strong entity tag like \"5f2-65937a15\"")


@pytest.mark.needs("http", "static")
@pytest.mark.parametrize("name", CONTENT_TYPES)
def test_content_type_follows_the_extension(site_server, name):
    """The file's extension, matched in any case, gives its Content-Type (RFC 9110
    section 8.3); no extension, or an unknown one, gives application/octet-stream,
    arbitrary bytes (RFC 2046 section 4.5.1), which a browser saves instead of
    rendering.  Only the last segment's extension counts."""
    with HttpConnection(site_server) as conn:
        conn.send(request("GET", f"/types/{name}"))
        conn.expect_response(200, body=f"a file named {name}\n".encode(),
                             headers={"Content-Type": CONTENT_TYPES[name]})


@pytest.mark.needs("http", "static")
def test_head_of_a_file_is_get_without_the_body(site_server):
    """HEAD gets GET's header fields, Content-Length the file's size included, and no
    body (RFC 9110 section 9.3.2).  HEAD and GET go out in one send, so a body
    sent after the HEAD response would show where the GET response begins."""
    with HttpConnection(site_server) as conn:
        conn.send(request("HEAD", "/big.bin") + request("GET", "/docs/guide.txt"))
        head = conn.expect_response(200, method="HEAD", headers={"Content-Length": str(MiB)})
        conn.expect_response(200, body=GUIDE)
        conn.send(request("GET", "/big.bin"))
        get = conn.expect_response(200, body=BIG)
        conn.check(
            head.headers_except("Date") == get.headers_except("Date"),
            f"HEAD and GET got different header fields:\n  HEAD: {head.headers}\n"
            f"  GET:  {get.headers}",
        )


@pytest.mark.needs("http", "static")
def test_empty_file(site_server):
    """An empty file: 200 with Content-Length: 0 and no body (RFC 9110 section 8.6)."""
    with HttpConnection(site_server) as conn:
        conn.send(request("GET", "/empty.txt") + request("GET", "/docs/guide.txt"))
        conn.expect_response(200, body=b"", headers={"Content-Length": "0"})
        conn.expect_response(200, body=GUIDE)


@pytest.mark.needs("http", "static")
@pytest.mark.parametrize("target", ["/missing.txt", "/docs/missing.txt", "/no/such/dir/"])
def test_missing_file_gets_404(site_server, target):
    """No file at the path: 404 (RFC 9110 section 15.5.5)."""
    with HttpConnection(site_server) as conn:
        conn.send(request("GET", target))
        conn.expect_response(404)


def lacks_openat2(server):
    """Whether the server said at start that it walks paths itself (static.c's
    open_walking()): on a kernel before 5.6, under valgrind, or under KERNELS' refusal."""
    return "openat2() is missing" in server.stderr_path.read_text(errors="replace")


# How the server may find files: with openat2(), or as on a kernel without it.
KERNELS = {"openat2": (), "without-openat2": ("openat2",)}


@pytest.mark.needs("http", "static")
@pytest.mark.parametrize("kernel", KERNELS)
def test_symlink_inside_the_root_is_followed(start_server, site, kernel):
    """A symbolic link to a file inside the root is served like that file.  Without
    openat2() the server cannot follow a link safely, so it follows none: 404."""
    server = start_server("--root", str(site), refuse=KERNELS[kernel])
    with HttpConnection(server) as conn:
        conn.send(request("GET", "/alias.txt"))
        if lacks_openat2(server):
            conn.expect_response(404)
        else:
            conn.expect_response(200, body=GUIDE,
                                 headers={"Content-Type": "text/plain; charset=utf-8"})


@pytest.mark.needs("http", "static")
def test_without_openat2_files_and_directories_are_still_served(start_server, site):
    """On a kernel without openat2() (seccomp makes it fail with ENOSYS), the
    server says so at start and walks each path itself: files, nested
    directories' index.html and the redirect for a missing slash all work."""
    server = start_server("--root", str(site), refuse=("openat2",))
    assert lacks_openat2(server), (
        f"with openat2() refused, the server should say it walks paths itself; "
        f"stderr:\n{server.stderr_tail()}")
    with HttpConnection(server) as conn:
        conn.send(request("GET", "/docs/guide.txt"))
        conn.expect_response(200, body=GUIDE)
        conn.send(request("GET", "/nested//deeper/./"))
        conn.expect_response(200, body=b"<!doctype html><title>deeper</title>\n")
        conn.send(request("GET", "/docs"))
        conn.expect_response(301, headers={"Location": "/docs/"})
        conn.send(request("GET", "/docs/guide.txt/"))
        conn.expect_response(404)


# A loop of renames, for at most a minute: started as its own process, so that it runs beside
# the test's requests rather than taking turns with them for Python's interpreter lock.
RENAMER = """
import os, sys, time
a, b = sys.argv[1], sys.argv[2]
open(a, "w").close()
os.rename(a, b)
os.rename(b, a)
print("renaming", flush=True)
end = time.monotonic() + 60
while time.monotonic() < end:
    os.rename(a, b)
    os.rename(b, a)
"""


@pytest.mark.needs("http", "static")
def test_a_link_through_dot_dot_is_served_while_files_are_renamed(start_server, tmp_path):
    """openat2() with RESOLVE_BENEATH fails with EAGAIN when a rename, anywhere on the
    system, happens while it resolves a ".." (here the one in the link dir/up -> ..): the
    kernel can no longer prove that the ".." stayed beneath the root, and leaves it to the
    caller to try again (openat2(2), EAGAIN).  The server tries again, so the client never
    sees the race: 1000 requests through the link while another process renames a file
    outside the root to and fro, and every one is a 200.  Without the retry, about 1 in 20
    of them got a 500."""
    root = tmp_path / "root"
    write_tree(root, {"a.txt": b"a\n"})
    (root / "dir").mkdir()
    (root / "dir/up").symlink_to("..")
    server = start_server("--root", str(root))
    if lacks_openat2(server):
        pytest.skip("without openat2() the server follows no symbolic link")
    renamer = subprocess.Popen([sys.executable, "-c", RENAMER,
                                str(tmp_path / "to"), str(tmp_path / "fro")],
                               stdout=subprocess.PIPE, text=True)
    try:
        assert renamer.stdout.readline() == "renaming\n", "the renaming process did not start"
        with HttpConnection(server) as conn:
            for _ in range(1000):
                conn.send(request("GET", "/dir/up/a.txt"))
                conn.expect_response(200, body=b"a\n")
        assert renamer.poll() is None, "the renaming process ended early"
    finally:
        renamer.kill()
        renamer.wait()


# --- Directories ----------------------------------------------------------------------------


@pytest.mark.needs("http", "static")
@pytest.mark.parametrize(
    "target, index",
    [("/", "index.html"), ("/docs/", "docs/index.html"),
     ("/nested/deeper/", "nested/deeper/index.html"), ("/docs/?x=1", "docs/index.html")],
)
def test_directory_serves_its_index_html(site_server, site, target, index):
    """A path ending in "/" names a directory: its index.html is served."""
    with HttpConnection(site_server) as conn:
        conn.send(request("GET", target))
        conn.expect_response(200, body=(site / index).read_bytes(),
                             headers={"Content-Type": "text/html; charset=utf-8"})


@pytest.mark.needs("http", "static")
@pytest.mark.parametrize(
    "target, location",
    [("/docs", "/docs/"), ("/nested/deeper", "/nested/deeper/"), ("/docs?x=1", "/docs/?x=1")],
)
def test_directory_without_the_slash_redirects(site_server, target, location):
    """A directory named without its trailing "/": 301 to the same path with it, the
    query kept (RFC 9110 section 15.4.2, Location in 10.2.2).  Served at the
    path without the slash, the index's relative links would resolve against
    the parent directory (RFC 3986 section 5.2)."""
    with HttpConnection(site_server) as conn:
        conn.send(request("GET", target))
        conn.expect_response(301, headers={"Location": location})


@pytest.mark.needs("http", "static")
def test_directory_without_index_html_is_not_listed(site_server):
    """A directory without index.html: 404, and no listing of what it holds."""
    with HttpConnection(site_server) as conn:
        conn.send(request("GET", "/noindex/"))
        response = conn.expect_response(404)
        conn.check(b"unlisted" not in response.body, "the 404 lists the directory's files")


# --- Validators and conditional requests --------------------------------------------------


@pytest.mark.needs("http", "static")
@pytest.mark.parametrize(
    "condition",
    ["{etag}", "*", '"other", {etag}', "W/{etag}"],
    ids=["same-etag", "star", "in-a-list", "weak-form"],
)
def test_if_none_match_that_matches_gets_304(site_server, condition):
    """If-None-Match naming the file's current ETag, or "*", or a list holding it: 304
    with the ETag and no body (RFC 9110 sections 13.1.2 and 15.4.5).  The
    comparison is weak (section 8.8.3.2), so W/"x" matches "x".

    A GET follows the conditional one in the same send: a body after the 304
    would show where its response begins.
    """
    with HttpConnection(site_server) as conn:
        conn.send(request("GET", "/docs/guide.txt"))
        etag = conn.expect_response(200, body=GUIDE).header("ETag")
        condition = condition.format(etag=etag)
        conn.send(request("GET", "/docs/guide.txt", f"If-None-Match: {condition}")
                  + request("GET", "/docs/guide.txt"))
        expect_not_modified(conn, etag, len(GUIDE))
        conn.expect_response(200, body=GUIDE)


@pytest.mark.needs("http", "static")
@pytest.mark.parametrize("condition", ['"other"', 'W/"other"', '"a", "b"'])
def test_if_none_match_that_does_not_match_gets_the_file(site_server, condition):
    """If-None-Match without the current ETag: the condition is true, the file comes
    whole (RFC 9110 section 13.1.2)."""
    with HttpConnection(site_server) as conn:
        conn.send(request("GET", "/docs/guide.txt", f"If-None-Match: {condition}"))
        conn.expect_response(200, body=GUIDE)


@pytest.mark.needs("http", "static")
@pytest.mark.parametrize(
    "date, status",
    [
        (LAST_MODIFIED, 304),
        ("Tue, 02 Jan 2024 03:04:06 GMT", 304),
        ("Wed, 01 Jan 2025 00:00:00 GMT", 304),
        ("Fri, 01 Jan 2100 00:00:00 GMT", 200),
        ("Tue, 02 Jan 2024 03:04:04 GMT", 200),
        ("Tuesday, 02-Jan-24 03:04:05 GMT", 304),
        ("Tue Jan  2 03:04:05 2024", 304),
        ("yesterday", 200),
        ("Tue, 02 Jan 2024 03:04:05", 200),
    ],
    ids=["same-second", "a-second-later", "much-later", "in-the-future", "a-second-earlier",
         "rfc850-form", "asctime-form", "not-a-date", "no-GMT"],
)
def test_if_modified_since(site_server, date, status):
    """If-Modified-Since at or after the modification time: 304; before it: the file
    (RFC 9110 section 13.1.3).  The file was modified 0.7 s into 03:04:05, which
    counts as 03:04:05: an HTTP-date has whole seconds.

    A recipient must accept the two obsolete date forms too (RFC 9110 section
    5.6.7), and ignore a field that is not a date, or a date later than its own
    clock (section 13.1.3): a client cannot have seen the file at a time still to
    come, so its copy's date proves nothing.
    """
    with HttpConnection(site_server) as conn:
        conn.send(request("GET", "/docs/guide.txt"))
        etag = conn.expect_response(200, body=GUIDE).header("ETag")
        conn.send(request("GET", "/docs/guide.txt", f"If-Modified-Since: {date}"))
        if status == 304:
            expect_not_modified(conn, etag, len(GUIDE))
        else:
            conn.expect_response(200, body=GUIDE)


@pytest.mark.needs("http", "static")
def test_if_none_match_overrides_if_modified_since(site_server):
    """With If-None-Match present, If-Modified-Since is ignored (RFC 9110 section
    13.1.3): the ETag decides, whichever way the date points."""
    later, earlier = "Sat, 01 Jan 2033 00:00:00 GMT", "Mon, 01 Jan 2001 00:00:00 GMT"
    with HttpConnection(site_server) as conn:
        conn.send(request("GET", "/docs/guide.txt"))
        etag = conn.expect_response(200, body=GUIDE).header("ETag")
        conn.send(request("GET", "/docs/guide.txt", 'If-None-Match: "other"',
                          f"If-Modified-Since: {later}"))
        conn.expect_response(200, body=GUIDE)
        conn.send(request("GET", "/docs/guide.txt", f"If-None-Match: {etag}",
                          f"If-Modified-Since: {earlier}"))
        expect_not_modified(conn, etag, len(GUIDE))


@pytest.mark.needs("http", "static")
def test_etag_changes_when_the_file_does(start_server, tmp_path):
    """A strong ETag changes whenever the content does (RFC 9110 section 8.8.3), even
    when the size stays the same: a client revalidating with the old one gets
    the new content, not a 304."""
    root = tmp_path / "root"
    write_tree(root, {"page.txt": b"version 1\n"})
    server = start_server("--root", str(root))
    with HttpConnection(server) as conn:
        conn.send(request("GET", "/page.txt"))
        old = conn.expect_response(200, body=b"version 1\n").header("ETag")
        (root / "page.txt").write_bytes(b"version 2\n")
        os.utime(root / "page.txt", ns=(MTIME_NS + 10**9, MTIME_NS + 10**9))
        conn.send(request("GET", "/page.txt", f"If-None-Match: {old}"))
        new = conn.expect_response(200, body=b"version 2\n").header("ETag")
        conn.check(new != old, f"the ETag stayed {old} although the file changed")



# A small file's descriptor is kept open for the next request for its name (static.c,
# "Open files, kept"); these check that a client still sees every change.


@pytest.mark.needs("http", "static")
def test_a_kept_file_replaced_or_deleted_is_seen_at_once(start_server, tmp_path):
    """A file replaced by a rename (how editors and deploy tools save) or deleted is
    answered as it is now, on the very next request: the descriptor kept from the last
    request names the old file, which has no links left."""
    root = tmp_path / "root"
    write_tree(root, {"page.txt": b"version 1\n", "next.txt": b"version 2, longer\n"})
    server = start_server("--root", str(root))
    with HttpConnection(server) as conn:
        for _ in range(3):
            conn.send(request("GET", "/page.txt"))
            conn.expect_response(200, body=b"version 1\n")
        os.rename(root / "next.txt", root / "page.txt")
        conn.send(request("GET", "/page.txt"))
        conn.expect_response(200, body=b"version 2, longer\n")
        (root / "page.txt").unlink()
        conn.send(request("GET", "/page.txt"))
        conn.expect_response(404)


@pytest.mark.needs("http", "static")
def test_a_kept_file_written_in_place_is_served_whole(start_server, tmp_path):
    """A file written in place, shorter and then longer, is served with its new length
    and content on the next request (RFC 9112 section 6.3: the Content-Length must be the
    body's), not with the size the server saw before."""
    root = tmp_path / "root"
    write_tree(root, {"page.txt": b"x" * 5000})
    server = start_server("--root", str(root))
    with HttpConnection(server) as conn:
        conn.send(request("GET", "/page.txt"))
        conn.expect_response(200, body=b"x" * 5000)
        for content in (b"short\n", b"y" * 9000, b"z" * 16384, b"w" * 16385):
            with open(root / "page.txt", "r+b") as f:  # the same file, not a new one
                f.truncate(0)
                f.write(content)
            conn.send(request("GET", "/page.txt"))
            conn.expect_response(200, body=content)


@pytest.mark.needs("http", "static")
def test_a_path_that_leads_elsewhere_now_is_followed_within_two_seconds(start_server, tmp_path):
    """A kept descriptor cannot see its path change: a directory renamed away and
    another renamed into its place (how some deploy tools switch releases; a symbolic
    link pointed elsewhere does the same) leaves the old file as it was, links and all.
    The server gives a kept file up after a second, so the new one is served within two.
    Renames, not links: without openat2() the server follows no link, and this holds
    there too."""
    root = tmp_path / "root"
    write_tree(root, {"current/app.js": b"one\n", "next/app.js": b"two\n"})
    server = start_server("--root", str(root))
    with HttpConnection(server) as conn:
        conn.send(request("GET", "/current/app.js"))
        conn.expect_response(200, body=b"one\n")
        os.rename(root / "current", root / "previous")
        os.rename(root / "next", root / "current")
        deadline = time.monotonic() + 2.0
        while True:
            conn.send(request("GET", "/current/app.js"))
            body = conn.expect_response(200).body
            if body == b"two\n":
                break
            conn.check(body == b"one\n", f"unexpected body {body!r}")
            conn.check(time.monotonic() < deadline, "still the old file after 2 s")
            time.sleep(0.1)

# --- Ranges --------------------------------------------------------------------------------


@pytest.mark.needs("http", "static")
@pytest.mark.parametrize(
    "spec, first, last",
    [
        ("bytes=0-99", 0, 99),
        ("bytes=100-", 100, 999),
        ("bytes=-100", 900, 999),
        ("bytes=0-0", 0, 0),
        ("bytes=999-999", 999, 999),
        ("bytes=990-5000", 990, 999),
        ("bytes=-5000", 0, 999),
    ],
    ids=["first-100", "from-100-on", "last-100", "first-byte", "last-byte", "end-clipped",
         "suffix-longer-than-the-file"],
)
def test_range_gets_206_with_those_bytes(site_server, spec, first, last):
    """Range: bytes=first-last (both inclusive), first- (to the end) or -n (the last n):
    206 with exactly those bytes and a Content-Range saying which (RFC 9110
    sections 14.1.2, 14.4 and 15.3.7).  A last position past the end, or a
    suffix longer than the file, means up to the end (section 14.1.2)."""
    with HttpConnection(site_server) as conn:
        conn.send(request("GET", "/ranges.bin", f"Range: {spec}"))
        conn.expect_response(206, body=RANGES[first:last + 1], headers={
            "Content-Range": f"bytes {first}-{last}/{len(RANGES)}",
            "Content-Length": str(last + 1 - first),
            "Content-Type": "application/octet-stream",
        })


@pytest.mark.needs("http", "static")
@pytest.mark.parametrize(
    "target, spec, size",
    [
        ("/ranges.bin", "bytes=1000-", 1000),
        ("/ranges.bin", "bytes=5000-6000", 1000),
        ("/ranges.bin", "bytes=-0", 1000),
        ("/empty.txt", "bytes=0-", 0),
    ],
    ids=["at-the-end", "past-the-end", "empty-suffix", "empty-file"],
)
def test_unsatisfiable_range_gets_416(site_server, target, spec, size):
    """A range that starts at or past the end (of an empty file, any does), or a
    suffix of 0 bytes: 416 with Content-Range: bytes */size, which tells the
    client the real size (RFC 9110 sections 14.1.1, 14.4 and 15.5.17)."""
    with HttpConnection(site_server) as conn:
        conn.send(request("GET", target, f"Range: {spec}"))
        conn.expect_response(416, headers={"Content-Range": f"bytes */{size}"})


@pytest.mark.needs("http", "static")
@pytest.mark.parametrize(
    "spec",
    ["bytes=0-1,5-6", "bytes=abc", "bytes=", "bytes=--5", "bytes 0-5", "items=0-5"],
    ids=["two-ranges", "not-numbers", "empty", "double-minus", "no-equals", "unknown-unit"],
)
def test_range_the_server_does_not_do_gets_the_whole_file(site_server, spec):
    """Several ranges, a malformed Range or an unknown unit: the field is ignored and
    the whole file comes with 200 (RFC 9110 section 14.2: a server MAY ignore
    Range; these only serve single byte ranges)."""
    with HttpConnection(site_server) as conn:
        conn.send(request("GET", "/ranges.bin", f"Range: {spec}"))
        conn.expect_response(200, body=RANGES, absent=["Content-Range"])


@pytest.mark.needs("http", "static")
@pytest.mark.parametrize(
    "validator, status",
    [("{etag}", 206), ('"other"', 200), ("W/{etag}", 200)],
    ids=["same-etag", "other-etag", "weak-etag"],
)
def test_if_range(site_server, validator, status):
    """If-Range: the range if the file still has that ETag, else the whole file, so
    a client resuming a download never splices two versions (RFC 9110 section
    13.1.5).  The comparison is strong: a weak tag never matches."""
    with HttpConnection(site_server) as conn:
        conn.send(request("GET", "/ranges.bin"))
        etag = conn.expect_response(200, body=RANGES).header("ETag")
        conn.send(request("GET", "/ranges.bin", "Range: bytes=10-19",
                          f"If-Range: {validator.format(etag=etag)}"))
        if status == 206:
            conn.expect_response(206, body=RANGES[10:20],
                                 headers={"Content-Range": f"bytes 10-19/{len(RANGES)}"})
        else:
            conn.expect_response(200, body=RANGES, absent=["Content-Range"])


# --- Large files ---------------------------------------------------------------------------


@pytest.mark.needs("http", "static")
def test_large_file_arrives_intact_then_the_connection_goes_on(site_server):
    """1 MiB of random bytes arrives exactly, then the connection serves the next
    request (RFC 9112 section 9.3): the server must finish sending the file, in
    as many writes as the socket needs, before it starts the next response.
    A range from the middle comes from the right offset of the file."""
    with HttpConnection(site_server) as conn:
        conn.send(request("GET", "/big.bin"))
        conn.expect_response(200, body=BIG, headers={"Content-Length": str(MiB)})
        conn.send(request("GET", "/plaintext"))
        conn.expect_response(200, body=HELLO)
        conn.send(request("GET", "/big.bin", "Range: bytes=524287-589823"))
        conn.expect_response(206, body=BIG[524287:589824])


@pytest.mark.needs("http", "static")
def test_pipelined_large_files_arrive_in_order(site_server):
    """Requests for large and small files in one send: the responses come in order,
    each intact (RFC 9112 section 9.3.2), and after the last (Connection:
    close) the server closes."""
    with HttpConnection(site_server) as conn:
        conn.send(request("GET", "/big.bin") + request("GET", "/docs/guide.txt")
                  + request("GET", "/big.bin", "Range: bytes=-1000")
                  + request("HEAD", "/big.bin") + request("GET", "/big.bin", "Connection: close"))
        conn.expect_response(200, body=BIG)
        conn.expect_response(200, body=GUIDE)
        conn.expect_response(206, body=BIG[-1000:])
        conn.expect_response(200, method="HEAD", headers={"Content-Length": str(MiB)})
        conn.expect_response(200, body=BIG, headers={"Connection": "close"})
        conn.expect_close()


# --- Access log ----------------------------------------------------------------------------


@pytest.mark.needs("http", "static")
def test_access_log_counts_the_body_bytes_sent(start_server, site, tmp_path):
    """The access log's last number is the body bytes actually sent: the range's for a
    206, "-" for a HEAD and a 304, which send none."""
    log = tmp_path / "access.log"
    server = start_server("--root", str(site), "--access-log", str(log))
    with HttpConnection(server) as conn:
        conn.send(request("GET", "/ranges.bin"))
        etag = conn.expect_response(200).header("ETag")
        conn.send(request("GET", "/ranges.bin", "Range: bytes=0-9")
                  + request("HEAD", "/ranges.bin")
                  + request("GET", "/ranges.bin", f"If-None-Match: {etag}"))
        conn.expect_response(206)
        conn.expect_response(200, method="HEAD")
        expect_not_modified(conn, etag, len(RANGES))
        line = "GET /ranges.bin HTTP/1.1"
        check_access_log(conn, log, [(line, 200, "1000"), (line, 206, "10"),
                                     ("HEAD /ranges.bin HTTP/1.1", 200, "-"), (line, 304, "-")])


# --- Staying inside the root ----------------------------------------------------------------

SECRET = b"marker 7c1e9a: this file is outside the root"


@pytest.fixture(scope="module")
def fortress(tmp_path_factory):
    """A root with links out of it, and a secret beside it:

        outside/secret.txt, outside/index.html     both holding SECRET
        root/public.txt, root/a/b.txt
        root/escape-file -> ../outside/secret.txt
        root/escape-dir  -> ../outside
        root/absolute    -> /.../outside/secret.txt (an absolute target)
    """
    top = tmp_path_factory.mktemp("fortress")
    write_tree(top, {
        "outside/secret.txt": SECRET + b"\n",
        "outside/index.html": SECRET + b"\n",
        "root/public.txt": b"public\n",
        "root/a/b.txt": b"b\n",
    })
    (top / "root/escape-file").symlink_to("../outside/secret.txt")
    (top / "root/escape-dir").symlink_to("../outside")
    (top / "root/absolute").symlink_to(top / "outside/secret.txt")
    return top


@pytest.mark.needs("http", "static")
@pytest.mark.parametrize(
    "target",
    [
        "/../outside/secret.txt",
        "/%2e%2e/outside/secret.txt",
        "/%2E%2E/outside/secret.txt",
        "/..%2foutside/secret.txt",
        "/%2e%2e%2foutside%2fsecret.txt",
        "/.%2e/outside/secret.txt",
        "/a/../../outside/secret.txt",
        "/a/%2e%2e/%2e%2e/outside/secret.txt",
        "/./../outside/secret.txt",
        "http://example.test/../outside/secret.txt",
        "//etc/passwd",
        "/etc/passwd",
        "/" + "../" * 16 + "etc/passwd",
        "/" + "%2e%2e%2f" * 16 + "etc%2fpasswd",
        "/escape-file",
        "/escape-dir/secret.txt",
        "/escape-dir/",
        "/escape-dir",
        "/absolute",
    ],
    ids=["dot-dot", "encoded-dot-dot", "encoded-dot-dot-upper", "encoded-slash",
         "all-encoded", "half-encoded", "down-then-up", "encoded-down-then-up", "dot-then-up",
         "absolute-form", "double-slash", "absolute-looking", "many-ups", "many-encoded-ups",
         "symlink-to-file", "symlink-to-dir", "symlink-to-dir-index", "symlink-to-dir-no-slash",
         "absolute-symlink"],
)
@pytest.mark.parametrize("kernel", KERNELS)
def test_nothing_outside_the_root_is_served(start_server, fortress, target, kernel):
    """No path, however encoded, reaches outside --root: not "..", not "%2e%2e",
    not "%2f", not a symbolic link pointing out (RFC 9110 section 17.3,
    "Attacks Based on File and Path Names").  The answer may be 400, 403 or
    404, but never the outside file's bytes, nor a redirect that would tell
    a directory is there.  "/etc/passwd" is looked up
    inside the root, like every other path.

    The checks are on the decoded path, once (RFC 3986 section 5.2.4 removes
    dot segments; a server that checks before decoding lets "%2e%2e" through).
    Each target is tried with openat2() and as on a kernel without it.
    """
    server = start_server("--root", str(fortress / "root"), refuse=KERNELS[kernel])
    with HttpConnection(server) as conn:
        conn.send(request("GET", target))
        response = conn.read_response()
        conn.check(SECRET not in conn.received and b"root:x:0:" not in conn.received,
                   f"GET {target} served a file outside the root")
        conn.check(response.status in (400, 403, 404),
                   f"GET {target}: status {response.status}, expected 400, 403 or 404")
