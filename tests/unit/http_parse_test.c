/*
 * http_parse_test.c - unit tests for shared/http_parse.c.
 *
 * Table-driven: each case is an input and the result the parser must give. Every case is run
 * three ways, and must give the same result each time:
 *   one-shot  the whole input in one call;
 *   bytewise  the input arriving one byte per call (len = 1, 2, ... n), each call a fresh copy of
 *             the prefix, so the bytes move between calls, as they may in a real server;
 *   split     for every offset, the prefix in one call, then the whole input in another.
 * (The two inputs of 2 MiB, for the chunked framing limit, go 64 KiB at a time: .step.)
 * A prefix may already be judged an error, but only with the same status as the whole input.
 * Every copy ends right before an inaccessible page (PROT_NONE), so reading one byte too far
 * crashes the test instead of passing unnoticed. Each call also gets a struct http_request filled
 * with garbage, as the parser must not rely on anything an earlier call left in it.
 *
 * Then a few tests that are not table cases: a pipelined connection (head, chunked body, head,
 * body, head), the linear-time check, and a buffer that moves between calls.
 *
 * Output: "ok NAME" or "FAIL NAME: what differed" per case, then "N passed, M failed"; the exit
 * status is non-zero if anything failed.
 */
#include "../../shared/http_parse.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef HTTP_PARSE_COUNT_WORK
#error "build with -DHTTP_PARSE_COUNT_WORK (see the Makefile): the linearity test needs it"
#endif

/* The .status of an input that is a valid but incomplete beginning: the answer is "need more". */
#define INCOMPLETE 1

/* A string literal as an input of known length, so that inputs may contain NUL bytes. */
#define BYTES(literal) .input = (literal), .input_len = sizeof(literal) - 1

struct expected_field {
    const char *name, *value;
};

struct head_case {
    const char *name;
    const char *input;
    size_t input_len; /* 0: strlen(input), for inputs built at run time */
    int status; /* 0 for a valid head, INCOMPLETE, or the error status (400, 414, ...) */
    size_t step; /* bytes per call in the bytewise and split runs; 0 means 1 */

    /* For a valid head: */
    size_t head_len; /* what the parser must return; 0 means the whole input */
    enum http_method method;
    const char *path, *query; /* query NULL: no '?' at all */
    int minor_version;
    const char *host; /* NULL: no Host */
    enum http_body_framing framing;
    uint64_t content_length;
    bool keep_alive, expect_continue;
    size_t field_count;
    struct expected_field fields[6]; /* the first fields, checked when given */
};

struct chunked_case {
    const char *name;
    const char *input;
    size_t input_len;
    int status;
    size_t step;

    /* For a valid body: */
    size_t body_len; /* what the scan must return; 0 means the whole input */
    const char *decoded; /* what http_chunked_squeeze() must leave */
    size_t decoded_len; /* 0: strlen(decoded) */
};

/* Inputs too long to write out, built by build_inputs(). */
static char target_8000[8300], target_8001[8300], target_8100_v2[8300];
static char target_unended_short[8300], target_unended[8300], method_unended[8300];
static char fields_64[2000], fields_65[2000];
static char head_8192[8300], head_8193[8300], head_over_limit_bad_name[8300];
static char chunk_ext_long[1200], trailers_over_limit[HTTP_MAX_TRAILER_LEN + 200];
static char chunked_framing_over_limit[HTTP_MAX_CHUNKED_LEN + 8192];
static char chunked_data_over_limit[HTTP_MAX_CHUNKED_LEN + 8192];

// clang-format off
static const struct head_case head_cases[] = {
    /* ----- Valid requests ----- */
    {"simple GET", BYTES("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"),
     .method = HTTP_METHOD_GET, .path = "/", .minor_version = 1, .host = "example.com",
     .keep_alive = true, .field_count = 1, .fields = {{"Host", "example.com"}}},
    {"path and query", BYTES("GET /search?q=a%20b&x=1 HTTP/1.1\r\nHost: h\r\n\r\n"),
     .path = "/search", .query = "q=a%20b&x=1", .minor_version = 1, .host = "h",
     .keep_alive = true, .field_count = 1},
    {"empty query", BYTES("GET /a? HTTP/1.1\r\nHost: h\r\n\r\n"),
     .path = "/a", .query = "", .minor_version = 1, .host = "h", .keep_alive = true,
     .field_count = 1},
    {"query holding ? and /", BYTES("GET /a?b?c/d HTTP/1.1\r\nHost: h\r\n\r\n"),
     .path = "/a", .query = "b?c/d", .minor_version = 1, .host = "h", .keep_alive = true,
     .field_count = 1},
    {"every allowed path character",
     BYTES("GET /azAZ09-._~!$&'()*+,;=:@/%2f%2F%aA HTTP/1.1\r\nHost: h\r\n\r\n"),
     .path = "/azAZ09-._~!$&'()*+,;=:@/%2f%2F%aA", .minor_version = 1, .host = "h",
     .keep_alive = true, .field_count = 1},
    {"HEAD", BYTES("HEAD /x HTTP/1.1\r\nHost: h\r\n\r\n"), .method = HTTP_METHOD_HEAD,
     .path = "/x", .minor_version = 1, .host = "h", .keep_alive = true, .field_count = 1},
    {"POST with Content-Length, body not included",
     BYTES("POST /form HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"),
     .head_len = 51, .method = HTTP_METHOD_POST, .path = "/form", .minor_version = 1,
     .host = "h", .framing = HTTP_BODY_LENGTH, .content_length = 5, .keep_alive = true,
     .field_count = 2, .fields = {{"Host", "h"}, {"Content-Length", "5"}}},
    {"PUT", BYTES("PUT /x HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n"),
     .method = HTTP_METHOD_PUT, .path = "/x", .minor_version = 1, .host = "h",
     .framing = HTTP_BODY_LENGTH, .content_length = 0, .keep_alive = true, .field_count = 2},
    {"DELETE", BYTES("DELETE /x HTTP/1.1\r\nHost: h\r\n\r\n"), .method = HTTP_METHOD_DELETE,
     .path = "/x", .minor_version = 1, .host = "h", .keep_alive = true, .field_count = 1},
    {"PATCH", BYTES("PATCH /x HTTP/1.1\r\nHost: h\r\n\r\n"), .method = HTTP_METHOD_PATCH,
     .path = "/x", .minor_version = 1, .host = "h", .keep_alive = true, .field_count = 1},
    {"OPTIONS asterisk-form", BYTES("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n"),
     .method = HTTP_METHOD_OPTIONS, .path = "*", .minor_version = 1, .host = "h",
     .keep_alive = true, .field_count = 1},
    {"OPTIONS origin-form", BYTES("OPTIONS /x HTTP/1.1\r\nHost: h\r\n\r\n"),
     .method = HTTP_METHOD_OPTIONS, .path = "/x", .minor_version = 1, .host = "h",
     .keep_alive = true, .field_count = 1},
    {"absolute-form: host from the target",
     BYTES("GET http://example.com/a/b?x=1 HTTP/1.1\r\nHost: other\r\n\r\n"),
     .path = "/a/b", .query = "x=1", .minor_version = 1, .host = "example.com",
     .keep_alive = true, .field_count = 1, .fields = {{"Host", "other"}}},
    {"absolute-form with empty path", BYTES("GET http://example.com HTTP/1.1\r\nHost: x\r\n\r\n"),
     .path = "/", .minor_version = 1, .host = "example.com", .keep_alive = true, .field_count = 1},
    {"absolute-form with empty path and a query",
     BYTES("GET http://example.com?a HTTP/1.1\r\nHost: x\r\n\r\n"),
     .path = "/", .query = "a", .minor_version = 1, .host = "example.com", .keep_alive = true,
     .field_count = 1},
    {"absolute-form https, IPv6 and port",
     BYTES("GET https://[::1]:8443/x HTTP/1.1\r\nHost: [::1]:8443\r\n\r\n"),
     .path = "/x", .minor_version = 1, .host = "[::1]:8443", .keep_alive = true,
     .field_count = 1},
    {"absolute-form scheme in capitals",
     BYTES("GET HTTP://Example.COM/ HTTP/1.1\r\nHost: x\r\n\r\n"),
     .path = "/", .minor_version = 1, .host = "Example.COM", .keep_alive = true, .field_count = 1},
    {"HTTP/1.0 without Host", BYTES("GET / HTTP/1.0\r\n\r\n"), .path = "/", .minor_version = 0,
     .keep_alive = false},
    {"HTTP/1.0 keep-alive", BYTES("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"),
     .path = "/", .minor_version = 0, .keep_alive = true, .field_count = 1},
    {"HTTP/1.1 Connection: close",
     BYTES("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"), .path = "/",
     .minor_version = 1, .host = "h", .keep_alive = false, .field_count = 2},
    {"Connection: a list, any case",
     BYTES("GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, CLOSE\r\n\r\n"),
     .path = "/", .minor_version = 1, .host = "h", .keep_alive = false, .field_count = 2},
    {"Connection over several fields, empty elements",
     BYTES("GET / HTTP/1.1\r\nConnection: ,foo,\r\nHost: h\r\nconnection: bar ,, close\r\n\r\n"),
     .path = "/", .minor_version = 1, .host = "h", .keep_alive = false, .field_count = 3},
    {"names and options compared a word at a time: any case",
     BYTES("GET / HTTP/1.0\r\nHOST: h\r\nCONNECTION: KEEP-ALIVE\r\n\r\n"), .path = "/",
     .minor_version = 0, .host = "h", .keep_alive = true, .field_count = 2},
    {"an option one character off is not keep-alive",
     BYTES("GET / HTTP/1.0\r\nConnection: keep_alive\r\nConnection: keep-alivf\r\n\r\n"),
     .path = "/", .minor_version = 0, .keep_alive = false, .field_count = 2},
    {"an option longer than close is not close",
     BYTES("GET / HTTP/1.1\r\nHost: h\r\nConnection: closed\r\n\r\n"), .path = "/",
     .minor_version = 1, .host = "h", .keep_alive = true, .field_count = 2},
    {"a name one character off is not Host",
     BYTES("GET / HTTP/1.0\r\nHosu: h\r\nHost_: h\r\n\r\n"), .path = "/",
     .minor_version = 0, .keep_alive = false, .field_count = 2},
    {"close wins over keep-alive",
     BYTES("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n"), .path = "/",
     .minor_version = 0, .keep_alive = false, .field_count = 1},
    {"leading empty lines skipped", BYTES("\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n"),
     .path = "/", .minor_version = 1, .host = "h", .keep_alive = true, .field_count = 1},
    {"value trimmed, inner whitespace kept",
     BYTES("GET / HTTP/1.1\r\nHost: h\r\nX-A: \t a \t b \t\r\n\r\n"),
     .path = "/", .minor_version = 1, .host = "h", .keep_alive = true, .field_count = 2,
     .fields = {{"Host", "h"}, {"X-A", "a \t b"}}},
    {"empty and blank values", BYTES("GET / HTTP/1.1\r\nHost: h\r\nX-A:\r\nX-B:   \r\n\r\n"),
     .path = "/", .minor_version = 1, .host = "h", .keep_alive = true, .field_count = 3,
     .fields = {{"Host", "h"}, {"X-A", ""}, {"X-B", ""}}},
    {"obs-text in a value", BYTES("GET / HTTP/1.1\r\nHost: h\r\nX-A: caf\xc3\xa9 \xff\x80\r\n\r\n"),
     .path = "/", .minor_version = 1, .host = "h", .keep_alive = true, .field_count = 2,
     .fields = {{"Host", "h"}, {"X-A", "caf\xc3\xa9 \xff\x80"}}},
    {"long value (vector path) with a tab",
     BYTES("GET / HTTP/1.1\r\nHost: h\r\n"
           "X-Long: 0123456789abcdef0123456789\tabcdef0123456789abcdef!\r\n\r\n"),
     .path = "/", .minor_version = 1, .host = "h", .keep_alive = true, .field_count = 2,
     .fields = {{"Host", "h"}, {"X-Long", "0123456789abcdef0123456789\tabcdef0123456789abcdef!"}}},
    /* The value search looks for bytes other than printable ASCII first, and goes on with the
     * exact test from one that is not a CR; near the end of the buffer its last load ends there. */
    {"long value with obs-text and a tab at its end",
     BYTES("GET / HTTP/1.1\r\nHost: h\r\nX-A: 0123456789abcdef\xc3\xa9\t0123\r\n\r\n"),
     .path = "/", .minor_version = 1, .host = "h", .keep_alive = true, .field_count = 2,
     .fields = {{"Host", "h"}, {"X-A", "0123456789abcdef\xc3\xa9\t0123"}}},
    {"long value: DEL among its last bytes", .status = 400,
     BYTES("GET / HTTP/1.1\r\nHost: h\r\nX-Long: 0123456789abcdef0123456789\x7f\r\n\r\n")},
    {"long value: bare LF among its last bytes", .status = 400,
     BYTES("GET / HTTP/1.1\r\nHost: h\r\nX-Long: 0123456789abcdef0123456789\nX: y\r\n\r\n")},
    {"long value: NUL after obs-text", .status = 400,
     BYTES("GET / HTTP/1.1\r\nHost: h\r\nX-A: abc\x80" "defghijklmnopqrstu\0v\r\n\r\n")},
    /* Names are tested 16 bytes at a time, twice, then byte by byte. */
    {"names of 16, 25 and 36 letters",
     BYTES("GET / HTTP/1.1\r\nHost: h\r\nAbcdefghijklmnop: a\r\nUpgrade-Insecure-Requests: 1\r\n"
           "Abcdefghijklmnopqrstuvwxyz0123456789: b\r\n\r\n"),
     .path = "/", .minor_version = 1, .host = "h", .keep_alive = true, .field_count = 4,
     .fields = {{"Host", "h"},
                {"Abcdefghijklmnop", "a"},
                {"Upgrade-Insecure-Requests", "1"},
                {"Abcdefghijklmnopqrstuvwxyz0123456789", "b"}}},
    {"long name: a separator after 18 letters", .status = 400,
     BYTES("GET / HTTP/1.1\r\nHost: h\r\nAbcdefghijklmnopqr(s: v\r\n\r\n")},
    {"long name: a space before the colon", .status = 400,
     BYTES("GET / HTTP/1.1\r\nHost: h\r\nAbcdefghijklmnopqr : v\r\n\r\n")},
    {"every token character in a name",
     BYTES("GET / HTTP/1.1\r\nHost: h\r\n!#$%&'*+-.^_`|~09azAZ: v\r\n\r\n"),
     .path = "/", .minor_version = 1, .host = "h", .keep_alive = true, .field_count = 2,
     .fields = {{"Host", "h"}, {"!#$%&'*+-.^_`|~09azAZ", "v"}}},
    {"names as long as the ones the parser reads, but others",
     BYTES("GET / HTTP/1.1\r\nDate: x\r\nAccept: y\r\nKeep-Alive: 5\r\nSec-Fetch-Dest: d\r\n"
           "X-Forwarded-Proto: https\r\nHost: h\r\n\r\n"),
     .path = "/", .minor_version = 1, .host = "h", .keep_alive = true, .field_count = 6,
     .fields = {{"Date", "x"}, {"Accept", "y"}, {"Keep-Alive", "5"}, {"Sec-Fetch-Dest", "d"},
                {"X-Forwarded-Proto", "https"}, {"Host", "h"}}},
    {"field names are case-insensitive",
     BYTES("GET / HTTP/1.1\r\nhOST: h\r\nCONTENT-length: 3\r\n\r\n"),
     .path = "/", .minor_version = 1, .host = "h", .framing = HTTP_BODY_LENGTH,
     .content_length = 3, .keep_alive = true, .field_count = 2},
    {"Content-Length list of equal values",
     BYTES("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5 , 5,5\r\n\r\n"),
     .method = HTTP_METHOD_POST,
     .path = "/", .minor_version = 1, .host = "h", .framing = HTTP_BODY_LENGTH,
     .content_length = 5, .keep_alive = true, .field_count = 2},
    {"Content-Length repeated, equal",
     BYTES("POST / HTTP/1.1\r\nContent-Length: 5\r\nHost: h\r\nContent-Length: 005\r\n\r\n"),
     .method = HTTP_METHOD_POST, .path = "/", .minor_version = 1, .host = "h",
     .framing = HTTP_BODY_LENGTH, .content_length = 5, .keep_alive = true, .field_count = 3},
    {"Content-Length at the limit",
     BYTES("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1048576\r\n\r\n"),
     .method = HTTP_METHOD_POST, .path = "/", .minor_version = 1, .host = "h",
     .framing = HTTP_BODY_LENGTH, .content_length = 1048576, .keep_alive = true, .field_count = 2},
    {"chunked", BYTES("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"),
     .method = HTTP_METHOD_POST, .path = "/", .minor_version = 1, .host = "h",
     .framing = HTTP_BODY_CHUNKED, .keep_alive = true, .field_count = 2},
    {"chunked, any case, empty list elements",
     BYTES("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: , ChunKed ,\r\n\r\n"),
     .method = HTTP_METHOD_POST, .path = "/", .minor_version = 1, .host = "h",
     .framing = HTTP_BODY_CHUNKED, .keep_alive = true, .field_count = 2},
    {"Expect: 100-continue",
     BYTES("PUT /f HTTP/1.1\r\nHost: h\r\nContent-Length: 9\r\nExpect: 100-Continue\r\n\r\n"),
     .method = HTTP_METHOD_PUT, .path = "/f", .minor_version = 1, .host = "h",
     .framing = HTTP_BODY_LENGTH, .content_length = 9, .keep_alive = true,
     .expect_continue = true, .field_count = 3},
    {"Expect: 100-continue ignored in HTTP/1.0",
     BYTES("PUT /f HTTP/1.0\r\nContent-Length: 9\r\nExpect: 100-continue\r\n\r\n"),
     .method = HTTP_METHOD_PUT, .path = "/f", .minor_version = 0, .framing = HTTP_BODY_LENGTH,
     .content_length = 9, .expect_continue = false, .field_count = 2},
    {"pipelined: only the first head",
     BYTES("GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n"), .head_len = 28,
     .path = "/1", .minor_version = 1, .host = "h", .keep_alive = true, .field_count = 1},
    {"pipelined: junk after the head is not looked at",
     BYTES("GET /1 HTTP/1.1\r\nHost: h\r\n\r\n\x01\n\r junk"), .head_len = 28,
     .path = "/1", .minor_version = 1, .host = "h", .keep_alive = true, .field_count = 1},
    {"Host forms: IPv4 and port", BYTES("GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"),
     .path = "/", .minor_version = 1, .host = "127.0.0.1:8080", .keep_alive = true,
     .field_count = 1},
    {"Host forms: pct-encoded, sub-delims, empty port",
     BYTES("GET / HTTP/1.1\r\nHost: a%2Db!$&'()*+,;=.c:\r\n\r\n"), .path = "/", .minor_version = 1,
     .host = "a%2Db!$&'()*+,;=.c:", .keep_alive = true, .field_count = 1},
    {"target of exactly the limit", .input = target_8000, .path = NULL /* not checked */,
     .minor_version = 1, .host = "h", .keep_alive = true, .field_count = 1},
    {"64 fields", .input = fields_64, .path = "/", .minor_version = 1, .host = "h",
     .keep_alive = true, .field_count = 64},
    {"head of exactly the limit", .input = head_8192, .path = "/", .minor_version = 1, .host = "h",
     .keep_alive = true, .field_count = 2},

    /* ----- Incomplete ----- */
    {"nothing yet", BYTES(""), .status = INCOMPLETE},
    {"no blank line yet", BYTES("GET / HTTP/1.1\r\nHost: h\r\n"), .status = INCOMPLETE},
    {"blank line's CR only", BYTES("GET / HTTP/1.1\r\nHost: h\r\n\r"), .status = INCOMPLETE},
    {"empty lines only", BYTES("\r\n\r\n\r"), .status = INCOMPLETE},
    {"wrong, but the request line has not ended", BYTES("G@T /"), .status = INCOMPLETE},
    {"wrong, but the field line has not ended", .status = INCOMPLETE,
     BYTES("GET / HTTP/1.1\r\nHost: h\r\nBad Name: x")},
    {"wrong, but only a CR has come", .status = INCOMPLETE,
     BYTES("GET / HTTP/1.1\r\nHost: h\x01\r")},

    /* ----- Request line ----- */
    {"method with a bad character", BYTES("G@T / HTTP/1.1\r\nHost: h\r\n\r\n"), .status = 400},
    {"empty method", BYTES(" / HTTP/1.1\r\nHost: h\r\n\r\n"), .status = 400},
    {"tab after method", BYTES("GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n"), .status = 400},
    {"two spaces after method", BYTES("GET  / HTTP/1.1\r\nHost: h\r\n\r\n"), .status = 400},
    {"two spaces after target", BYTES("GET /  HTTP/1.1\r\nHost: h\r\n\r\n"), .status = 400},
    {"space after version", BYTES("GET / HTTP/1.1 \r\nHost: h\r\n\r\n"), .status = 400},
    {"no version", BYTES("GET /\r\nHost: h\r\n\r\n"), .status = 400},
    {"no target", BYTES("GET HTTP/1.1\r\nHost: h\r\n\r\n"), .status = 400},
    {"unknown method TRACE", BYTES("TRACE / HTTP/1.1\r\nHost: h\r\n\r\n"), .status = 501},
    {"unknown method CONNECT", .status = 501,
     BYTES("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")},
    {"methods are case-sensitive", BYTES("get / HTTP/1.1\r\nHost: h\r\n\r\n"), .status = 501},
    {"a method that starts with GET", BYTES("GETS / HTTP/1.1\r\nHost: h\r\n\r\n"), .status = 501},
    {"unknown method FOO", BYTES("FOO / HTTP/1.1\r\nHost: h\r\n\r\n"), .status = 501},
    {"method over the limit", .status = 501,
     BYTES("ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFG / HTTP/1.1\r\n\r\n")},
    {"method over the limit, line not ended yet", .status = INCOMPLETE,
     BYTES("ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFG")},
    {"method over the limit, line longer than any request line", .input = method_unended,
     .status = 501},
    {"target not starting with /", BYTES("GET a/b HTTP/1.1\r\nHost: h\r\n\r\n"), .status = 400},
    {"target with a fragment", BYTES("GET /a#b HTTP/1.1\r\nHost: h\r\n\r\n"), .status = 400},
    {"target: % not followed by hex", .status = 400,
     BYTES("GET /a%zz HTTP/1.1\r\nHost: h\r\n\r\n")},
    {"target: % cut short", BYTES("GET /a%4 HTTP/1.1\r\nHost: h\r\n\r\n"), .status = 400},
    {"target: % at the end", BYTES("GET /a% HTTP/1.1\r\nHost: h\r\n\r\n"), .status = 400},
    {"target: % right before the line end", BYTES("GET /a%\n"), .status = 400},
    {"target: % and a digit right before the line end", BYTES("GET /a%4\r\n"), .status = 400},
    {"target: % right before a CR whose LF has not come", BYTES("GET /a%\r"), .status = INCOMPLETE},
    {"target: <", BYTES("GET /a<b HTTP/1.1\r\nHost: h\r\n\r\n"), .status = 400},
    {"target: \"", BYTES("GET /a\"b HTTP/1.1\r\nHost: h\r\n\r\n"), .status = 400},
    {"target: backslash", BYTES("GET /a\\b HTTP/1.1\r\nHost: h\r\n\r\n"), .status = 400},
    {"target: {", BYTES("GET /a{b HTTP/1.1\r\nHost: h\r\n\r\n"), .status = 400},
    {"target: |", BYTES("GET /a?b|c HTTP/1.1\r\nHost: h\r\n\r\n"), .status = 400},
    {"target: ^", BYTES("GET /a^b HTTP/1.1\r\nHost: h\r\n\r\n"), .status = 400},
    {"target: `", BYTES("GET /a`b HTTP/1.1\r\nHost: h\r\n\r\n"), .status = 400},
    {"target: [ in origin-form", BYTES("GET /a?b[]=1 HTTP/1.1\r\nHost: h\r\n\r\n"), .status = 400},
    {"target: DEL", BYTES("GET /a\x7f HTTP/1.1\r\nHost: h\r\n\r\n"), .status = 400},
    {"target: byte over 0x7f", .status = 400,
     BYTES("GET /caf\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n")},
    {"target: NUL", BYTES("GET /a\0b HTTP/1.1\r\nHost: h\r\n\r\n"), .status = 400},
    {"target: tab", BYTES("GET /a\tb HTTP/1.1\r\nHost: h\r\n\r\n"), .status = 400},
    {"asterisk-form with GET", BYTES("GET * HTTP/1.1\r\nHost: h\r\n\r\n"), .status = 400},
    {"asterisk followed by more", BYTES("OPTIONS *a HTTP/1.1\r\nHost: h\r\n\r\n"), .status = 400},
    {"CONNECT with a bad authority", .status = 400,
     BYTES("CONNECT a/b HTTP/1.1\r\nHost: h\r\n\r\n")},
    {"asterisk-form with a query", BYTES("OPTIONS *?a HTTP/1.1\r\nHost: h\r\n\r\n"), .status = 400},
    {"absolute-form: other scheme", .status = 400,
     BYTES("GET ftp://h/ HTTP/1.1\r\nHost: h\r\n\r\n")},
    {"absolute-form: empty authority", .status = 400,
     BYTES("GET http:///a HTTP/1.1\r\nHost: h\r\n\r\n")},
    {"absolute-form: userinfo", .status = 400,
     BYTES("GET http://user@h/ HTTP/1.1\r\nHost: h\r\n\r\n")},
    {"absolute-form: bad port", .status = 400,
     BYTES("GET http://h:8x/ HTTP/1.1\r\nHost: h\r\n\r\n")},
    {"absolute-form: unclosed IPv6", .status = 400,
     BYTES("GET http://[::1/ HTTP/1.1\r\nHost: h\r\n\r\n")},
    {"absolute-form: [ in path", .status = 400,
     BYTES("GET http://h/a[b HTTP/1.1\r\nHost: h\r\n\r\n")},
    {"absolute-form: bracket in path", .status = 400,
     BYTES("GET http://[::1]/a]b HTTP/1.1\r\nHost: h\r\n\r\n")},
    {"absolute-form: no //", BYTES("GET http:h/ HTTP/1.1\r\nHost: h\r\n\r\n"), .status = 400},
    {"target over the limit", .input = target_8001, .status = 414},
    {"target over the limit wins over a bad version", .input = target_8100_v2, .status = 414},
    {"target over the limit, line not ended yet", .input = target_unended_short,
     .status = INCOMPLETE},
    {"target over the limit, line longer than any request line", .input = target_unended,
     .status = 414},
    {"version HTTP/1", BYTES("GET / HTTP/1\r\nHost: h\r\n\r\n"), .status = 400},
    {"HTTP/1.1 and two CRs", BYTES("GET / HTTP/1.1\r\rHost: h\r\n\r\n"), .status = 400},
    {"HTTP/1.1 and a bare LF", BYTES("GET / HTTP/1.1\nHost: h\r\n\r\n"), .status = 400},
    {"version in lower case", BYTES("GET / http/1.1\r\nHost: h\r\n\r\n"), .status = 400},
    {"version with a letter for major", BYTES("GET / HTTP/a.1\r\nHost: h\r\n\r\n"), .status = 400},
    {"version with a letter for minor", BYTES("GET / HTTP/1.x\r\nHost: h\r\n\r\n"), .status = 400},
    {"version without its dot", BYTES("GET / HTTP/1-1\r\nHost: h\r\n\r\n"), .status = 400},
    {"version with two-digit minor", BYTES("GET / HTTP/1.10\r\nHost: h\r\n\r\n"), .status = 400},
    {"version with two-digit major", BYTES("GET / HTTP/11.1\r\nHost: h\r\n\r\n"), .status = 400},
    {"version cut short", BYTES("GET / HT\r\nHost: h\r\n\r\n"), .status = 400},
    {"version HTTP/2.0", BYTES("GET / HTTP/2.0\r\nHost: h\r\n\r\n"), .status = 505},
    {"version HTTP/0.9", BYTES("GET / HTTP/0.9\r\nHost: h\r\n\r\n"), .status = 505},
    {"version HTTP/1.2", BYTES("GET / HTTP/1.2\r\nHost: h\r\n\r\n"), .status = 505},
    {"precedence: 505 before 501", BYTES("FOO / HTTP/2.0\r\nHost: h\r\n\r\n"), .status = 505},
    {"precedence: 400 before 505", BYTES("GET /a<b HTTP/2.0\r\nHost: h\r\n\r\n"), .status = 400},
    {"precedence: bad asterisk before 501", .status = 400,
     BYTES("FOO * HTTP/1.1\r\nHost: h\r\n\r\n")},
    {"precedence: request line before a bad field", .status = 501,
     BYTES("FOO / HTTP/1.1\r\nBad Name: x\r\n\r\n")},

    /* ----- Line ends ----- */
    {"bare LF after the request line", BYTES("GET / HTTP/1.1\nHost: h\r\n\r\n"), .status = 400},
    {"bare LF after a field", BYTES("GET / HTTP/1.1\r\nHost: h\n\r\n"), .status = 400},
    {"bare LF as the blank line", BYTES("GET / HTTP/1.1\r\nHost: h\r\n\n"), .status = 400},
    {"LF-only request", BYTES("GET / HTTP/1.1\nHost: h\n\n"), .status = 400},
    {"bare LF as a leading empty line", .status = 400,
     BYTES("\nGET / HTTP/1.1\r\nHost: h\r\n\r\n")},
    {"bare CR in a value", BYTES("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\rb\r\n\r\n"), .status = 400},
    {"bare CR ending the request line", BYTES("GET / HTTP/1.1\rHost: h\r\n\r\n"), .status = 400},
    {"CR CR LF", BYTES("GET / HTTP/1.1\r\r\nHost: h\r\n\r\n"), .status = 400},
    {"too many leading empty lines", .status = 400,
     BYTES("\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n")},

    /* ----- Field lines ----- */
    {"space in a field name", BYTES("GET / HTTP/1.1\r\nHost: h\r\nX A: v\r\n\r\n"), .status = 400},
    {"bad character in a field name", .status = 400,
     BYTES("GET / HTTP/1.1\r\nHost: h\r\nX(A): v\r\n\r\n")},
    {"non-ASCII field name", .status = 400,
     BYTES("GET / HTTP/1.1\r\nHost: h\r\nX\xc3\xa9: v\r\n\r\n")},
    {"whitespace before the colon", BYTES("GET / HTTP/1.1\r\nHost : h\r\n\r\n"), .status = 400},
    {"tab before the colon", BYTES("GET / HTTP/1.1\r\nHost\t: h\r\n\r\n"), .status = 400},
    {"empty field name", BYTES("GET / HTTP/1.1\r\nHost: h\r\n: v\r\n\r\n"), .status = 400},
    {"no colon", BYTES("GET / HTTP/1.1\r\nHost: h\r\nX-A\r\n\r\n"), .status = 400},
    {"obs-fold", BYTES("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\r\n b\r\n\r\n"), .status = 400},
    {"obs-fold with a tab", .status = 400,
     BYTES("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\r\n\tb\r\n\r\n")},
    {"whitespace before the first field", .status = 400,
     BYTES("GET / HTTP/1.1\r\n Host: h\r\n\r\n")},
    {"NUL in a value", BYTES("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\0b\r\n\r\n"), .status = 400},
    {"control character in a value", .status = 400,
     BYTES("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x01 b\r\n\r\n")},
    {"ESC in a long value (vector path)", .status = 400,
     /* Two literals: in one, the hex escape \x1b would swallow the digits after it. */
     BYTES("GET / HTTP/1.1\r\nHost: h\r\nX-A: 0123456789abcdef0123\x1b" "456789\r\n\r\n")},
    {"DEL in a value", BYTES("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x7f\r\n\r\n"), .status = 400},
    {"65 fields", .input = fields_65, .status = 431},
    {"head over the limit", .input = head_8193, .status = 431},
    {"head over the limit, error before it wins", .input = head_over_limit_bad_name, .status = 400},

    /* ----- Host ----- */
    {"no Host in HTTP/1.1", BYTES("GET / HTTP/1.1\r\nX-A: b\r\n\r\n"), .status = 400},
    {"two Hosts", BYTES("GET / HTTP/1.1\r\nHost: h\r\nHost: h\r\n\r\n"), .status = 400},
    {"two Hosts in HTTP/1.0", BYTES("GET / HTTP/1.0\r\nHost: a\r\nhost: b\r\n\r\n"), .status = 400},
    {"Host empty", BYTES("GET / HTTP/1.1\r\nHost:\r\n\r\n"), .status = 400},
    {"Host only spaces", BYTES("GET / HTTP/1.1\r\nHost:   \r\n\r\n"), .status = 400},
    {"Host empty in absolute-form", BYTES("GET http://h/ HTTP/1.1\r\nHost:\r\n\r\n"), .status = 400},
    {"Host with a space", BYTES("GET / HTTP/1.1\r\nHost: a b\r\n\r\n"), .status = 400},
    {"Host with a slash", BYTES("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n"), .status = 400},
    {"Host with a slash before digits", .status = 400,
     BYTES("GET / HTTP/1.1\r\nHost: a/1\r\n\r\n")},
    {"Host with junk after IPv6", BYTES("GET / HTTP/1.1\r\nHost: [::1]x80\r\n\r\n"), .status = 400},
    {"Host with junk after IPv6, before digits", .status = 400,
     BYTES("GET / HTTP/1.1\r\nHost: [::1]/80\r\n\r\n")},
    {"Host with userinfo", BYTES("GET / HTTP/1.1\r\nHost: u@a\r\n\r\n"), .status = 400},
    {"Host with a port only", BYTES("GET / HTTP/1.1\r\nHost: :80\r\n\r\n"), .status = 400},
    {"Host with a bad port", BYTES("GET / HTTP/1.1\r\nHost: a:8o\r\n\r\n"), .status = 400},
    {"Host with two colons", BYTES("GET / HTTP/1.1\r\nHost: a:1:2\r\n\r\n"), .status = 400},
    {"Host with an unclosed IPv6", BYTES("GET / HTTP/1.1\r\nHost: [::1\r\n\r\n"), .status = 400},
    {"Host with empty brackets", BYTES("GET / HTTP/1.1\r\nHost: []\r\n\r\n"), .status = 400},
    {"Host with % at the end", BYTES("GET / HTTP/1.1\r\nHost: a%4\r\n\r\n"), .status = 400},
    {"Host with a bad IPv6 character", .status = 400,
     BYTES("GET / HTTP/1.1\r\nHost: [::g]\r\n\r\n")},
    {"Host with a bad %", BYTES("GET / HTTP/1.1\r\nHost: a%g0\r\n\r\n"), .status = 400},
    {"Host with obs-text", BYTES("GET / HTTP/1.1\r\nHost: caf\xc3\xa9\r\n\r\n"), .status = 400},
    {"Host checked in absolute-form too", .status = 400,
     BYTES("GET http://h/ HTTP/1.1\r\nHost: a b\r\n\r\n")},
    {"Host required in absolute-form too", BYTES("GET http://h/ HTTP/1.1\r\n\r\n"), .status = 400},

    /* ----- Content-Length ----- */
    {"Content-Length not a number", .status = 400,
     BYTES("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: abc\r\n\r\n")},
    {"Content-Length negative", .status = 400,
     BYTES("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n")},
    {"Content-Length with a sign", .status = 400,
     BYTES("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +5\r\n\r\n")},
    {"Content-Length in hex", .status = 400,
     BYTES("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0x10\r\n\r\n")},
    {"Content-Length empty", .status = 400,
     BYTES("POST / HTTP/1.1\r\nHost: h\r\nContent-Length:\r\n\r\n")},
    {"Content-Length with a space inside", .status = 400,
     BYTES("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5 5\r\n\r\n")},
    {"Content-Length list with an empty element", .status = 400,
     BYTES("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5,\r\n\r\n")},
    {"Content-Length list of different values", .status = 400,
     BYTES("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 6\r\n\r\n")},
    {"Content-Length fields with different values", .status = 400,
     BYTES("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n")},
    {"Content-Length overflow", .status = 400,
     BYTES("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 18446744073709551616\r\n\r\n")},
    {"Content-Length over the limit", .status = 413,
     BYTES("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1048577\r\n\r\n")},
    {"Content-Length huge but in range", .status = 413,
     BYTES("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 18446744073709551615\r\n\r\n")},
    {"Content-Length then Transfer-Encoding", .status = 400,
     BYTES("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n"
           "\r\n")},
    {"Transfer-Encoding then Content-Length", .status = 400,
     BYTES("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n"
           "\r\n")},

    /* ----- Transfer-Encoding ----- */
    {"Transfer-Encoding without chunked", .status = 400,
     BYTES("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n")},
    {"Transfer-Encoding empty", .status = 400,
     BYTES("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\r\n\r\n")},
    {"chunked not last", .status = 400,
     BYTES("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n")},
    {"chunked twice", .status = 400,
     BYTES("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, chunked\r\n\r\n")},
    {"chunked twice, in two fields", .status = 400,
     BYTES("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
           "Transfer-Encoding: chunked\r\n\r\n")},
    {"coding we lack before chunked", .status = 501,
     BYTES("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n")},
    {"coding we lack, then chunked in another field", .status = 501,
     BYTES("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n"
           "Transfer-Encoding: chunked\r\n\r\n")},
    {"Transfer-Encoding with parameters", .status = 400,
     BYTES("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked;q=1\r\n\r\n")},
    {"Transfer-Encoding in HTTP/1.0", .status = 400,
     BYTES("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n")},

    /* ----- Expect and Connection ----- */
    {"Expect other than 100-continue", .status = 417,
     BYTES("PUT / HTTP/1.1\r\nHost: h\r\nExpect: 200-ok\r\n\r\n")},
    {"Expect with two expectations", .status = 417,
     BYTES("PUT / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue, x\r\n\r\n")},
    {"Connection not a token list", .status = 400,
     BYTES("GET / HTTP/1.1\r\nHost: h\r\nConnection: close;x\r\n\r\n")},
    {"Connection element not a token", .status = 400,
     BYTES("GET / HTTP/1.1\r\nHost: h\r\nConnection: close, (x)\r\n\r\n")},
    {"Transfer-Encoding element quoted", .status = 400,
     BYTES("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: \"chunked\"\r\n\r\n")},
    {"Connection with a space in a token", .status = 400,
     BYTES("GET / HTTP/1.1\r\nHost: h\r\nConnection: keep alive\r\n\r\n")},
};

static const struct chunked_case chunked_cases[] = {
    /* ----- Valid ----- */
    {"one chunk", BYTES("5\r\nhello\r\n0\r\n\r\n"), .decoded = "hello"},
    {"two chunks", BYTES("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"), .decoded = "hello world"},
    {"empty body", BYTES("0\r\n\r\n"), .decoded = ""},
    {"hex digits in both cases", BYTES("a\r\n0123456789\r\nB\r\nabcdefghijk\r\n0\r\n\r\n"),
     .decoded = "0123456789abcdefghijk"},
    {"leading zeros", BYTES("0005\r\nhello\r\n000\r\n\r\n"), .decoded = "hello"},
    {"data holding CRLF, NUL and high bytes", BYTES("6\r\n\r\n\0\xff\r\n\r\n0\r\n\r\n"),
     .decoded = "\r\n\0\xff\r\n", .decoded_len = 6},
    {"extensions", BYTES("5;name=value\r\nhello\r\n1 ; a = b ; c\r\n!\r\n0;last\r\n\r\n"),
     .decoded = "hello!"},
    {"quoted extension value", BYTES("5;a=\"x y;\\\"z\\\\\"\r\nhello\r\n0\r\n\r\n"),
     .decoded = "hello"},
    {"trailers", BYTES("5\r\nhello\r\n0\r\nX-Checksum: abc\r\nX-Other:  d \r\n\r\n"),
     .decoded = "hello"},
    {"pipelined request after the body", BYTES("5\r\nhello\r\n0\r\n\r\nGET / HTTP/1.1\r\n"),
     .body_len = 15, .decoded = "hello"},

    /* ----- Incomplete ----- */
    {"in the size line", BYTES("5"), .status = INCOMPLETE},
    {"in the data", BYTES("5\r\nhel"), .status = INCOMPLETE},
    {"after the last chunk", BYTES("5\r\nhello\r\n0\r\n"), .status = INCOMPLETE},
    {"wrong, but the size line has not ended", BYTES("5;a@"), .status = INCOMPLETE},
    {"wrong, but the trailer has not ended", BYTES("0\r\nX A"), .status = INCOMPLETE},
    {"in a trailer", BYTES("0\r\nX-A: b\r\n"), .status = INCOMPLETE},

    /* ----- Invalid ----- */
    {"no chunk size", BYTES("\r\nhello\r\n0\r\n\r\n"), .status = 400},
    {"chunk size not hex", BYTES("x\r\nhello\r\n0\r\n\r\n"), .status = 400},
    {"negative chunk size", BYTES("-5\r\nhello\r\n0\r\n\r\n"), .status = 400},
    {"chunk size followed by junk", BYTES("5x\r\nhello\r\n0\r\n\r\n"), .status = 400},
    {"whitespace after the chunk size", BYTES("5 \r\nhello\r\n0\r\n\r\n"), .status = 400},
    {"whitespace before the chunk size", BYTES(" 5\r\nhello\r\n0\r\n\r\n"), .status = 400},
    {"chunk size with 0x", BYTES("0x5\r\nhello\r\n0\r\n\r\n"), .status = 400},
    {"chunk size overflow", BYTES("10000000000000000\r\n"), .status = 400},
    {"chunk size over the body limit", BYTES("100001\r\n"), .status = 413},
    {"chunk size huge but in range", BYTES("FFFFFFFFFFFFFFFF\r\n"), .status = 413},
    {"chunks adding up over the body limit", BYTES("1\r\nx\r\n100000\r\n"), .status = 413},
    {"extension without a name", BYTES("5;\r\nhello\r\n0\r\n\r\n"), .status = 400},
    {"extension without a name, with a value", BYTES("5;=x\r\nhello\r\n0\r\n\r\n"), .status = 400},
    {"extension with an empty value", BYTES("5;a=\r\nhello\r\n0\r\n\r\n"), .status = 400},
    {"extension with whitespace before the CRLF", .status = 400,
     BYTES("5;a=b \r\nhello\r\n0\r\n\r\n")},
    {"extension value with a space", BYTES("5;a=b c\r\nhello\r\n0\r\n\r\n"), .status = 400},
    {"extension with a bad name", BYTES("5;a@b\r\nhello\r\n0\r\n\r\n"), .status = 400},
    {"extension with an unterminated quote", BYTES("5;a=\"b\r\nhello\r\n0\r\n\r\n"), .status = 400},
    {"extension quote holding a control", .status = 400,
     BYTES("5;a=\"b\x01\"\r\nhello\r\n0\r\n\r\n")},
    {"extension quote holding a bare LF", .status = 400,
     BYTES("5;a=\"b\nc\"\r\nhello\r\n0\r\n\r\n")},
    {"chunk line over the limit", .input = chunk_ext_long, .status = 413},
    {"data longer than its size", BYTES("5\r\nhelloX\r\n0\r\n\r\n"), .status = 400},
    {"data shorter than its size", BYTES("5\r\nhell\r\n0\r\n\r\n"), .status = 400},
    {"bare LF after the size", BYTES("5\nhello\r\n0\r\n\r\n"), .status = 400},
    {"bare LF after the data", BYTES("5\r\nhello\n0\r\n\r\n"), .status = 400},
    {"bare CR after the size", BYTES("5\rhello\r\n0\r\n\r\n"), .status = 400},
    {"bare LF at the end", BYTES("0\r\n\n"), .status = 400},
    {"trailer with a bad name", BYTES("0\r\nX A: b\r\n\r\n"), .status = 400},
    {"trailer with obs-fold", BYTES("0\r\nX-A: b\r\n c\r\n\r\n"), .status = 400},
    {"trailer with a control character", BYTES("0\r\nX-A: b\x01\r\n\r\n"), .status = 400},
    {"trailer with a bare LF", BYTES("0\r\nX-A: b\n\r\n"), .status = 400},
    {"trailers over the limit", .input = trailers_over_limit, .status = 431},
    {"framing over the limit", .input = chunked_framing_over_limit, .status = 413, .step = 65536},
    {"chunk data that would pass the framing limit", .input = chunked_data_over_limit,
     .status = 413,
     .step = 65536},
};
// clang-format on

/* ---------------------------------------------------------------------------------------------
 * Inputs built at run time
 */

/* Appends formatted text at *end, advancing it. */
static void append(char **end, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    *end += vsprintf(*end, format, args);
    va_end(args);
}

static void append_repeated(char **end, char c, size_t n)
{
    memset(*end, c, n);
    *end += n;
    **end = '\0';
}

/* "GET /aaa... HTTP/1.x" with a target of the given length. */
static void build_long_target(char *out, size_t target_len, const char *version)
{
    char *s = out;
    append(&s, "GET /");
    append_repeated(&s, 'a', target_len - 1);
    append(&s, " %s\r\nHost: h\r\n\r\n", version);
}

static void build_many_fields(char *out, int fields)
{
    char *s = out;
    append(&s, "GET / HTTP/1.1\r\nHost: h\r\n");
    for (int i = 1; i < fields; i++)
        append(&s, "X-Field-%d: %d\r\n", i, i);
    append(&s, "\r\n");
}

/* A head of exactly `len` bytes, its length made up by one long field. */
static void build_head_of_len(char *out, size_t len, const char *name)
{
    char *s = out;
    append(&s, "GET / HTTP/1.1\r\nHost: h\r\n%s: ", name);
    append_repeated(&s, 'v', len - (size_t)(s - out) - 4);
    append(&s, "\r\n\r\n");
}

static void build_inputs(void)
{
    build_long_target(target_8000, 8000, "HTTP/1.1");
    build_long_target(target_8001, 8001, "HTTP/1.1");
    build_long_target(target_8100_v2, 8100, "HTTP/2.0");
    /* Request lines that have not ended: judged once longer than any request line can be. */
    char *s = target_unended_short;
    append(&s, "GET /");
    append_repeated(&s, 'a', 8020);
    s = target_unended;
    append(&s, "GET /");
    append_repeated(&s, 'a', 8100);
    s = method_unended;
    append_repeated(&s, 'M', 8100);

    build_many_fields(fields_64, 64);
    build_many_fields(fields_65, 65);
    build_head_of_len(head_8192, 8192, "X-Long");
    build_head_of_len(head_8193, 8193, "X-Long");
    /* The bad name is in the line that passes the limit, but before it: 400, not 431. */
    build_head_of_len(head_over_limit_bad_name, 8193, "X Long");

    s = chunk_ext_long;
    append(&s, "1;");
    append_repeated(&s, 'e', HTTP_MAX_CHUNK_LINE_LEN);
    append(&s, "\r\nx\r\n0\r\n\r\n");

    s = trailers_over_limit;
    append(&s, "0\r\n");
    while ((size_t)(s - trailers_over_limit) < HTTP_MAX_TRAILER_LEN)
        append(&s, "X-Trailer: 0123456789012345678901234567890123456789\r\n");
    append(&s, "\r\n");

    /* 1-byte chunks, each with a long extension, until the framing passes its limit. */
    s = chunked_framing_over_limit;
    while ((size_t)(s - chunked_framing_over_limit) < HTTP_MAX_CHUNKED_LEN + 1024) {
        append(&s, "1;");
        append_repeated(&s, 'e', 1000);
        append(&s, "\r\nx\r\n");
    }
    append(&s, "0\r\n\r\n");

    /* The same, nearly to the limit, then a chunk whose data would pass it. */
    s = chunked_data_over_limit;
    while ((size_t)(s - chunked_data_over_limit) < HTTP_MAX_CHUNKED_LEN - 2000) {
        append(&s, "1;");
        append_repeated(&s, 'e', 1000);
        append(&s, "\r\nx\r\n");
    }
    append(&s, "800\r\n");
    append_repeated(&s, 'x', 0x800);
    append(&s, "\r\n0\r\n\r\n");
}

/* ---------------------------------------------------------------------------------------------
 * Inputs end right before a page that cannot be read
 */

static char *guard_page;

static void make_guard_page(void)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t room = (HTTP_MAX_CHUNKED_LEN + 65536 + page - 1) / page * page;
    char *region =
        mmap(NULL, room + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (region == MAP_FAILED || mprotect(region + room, page, PROT_NONE) != 0) {
        perror("mmap");
        exit(2);
    }
    guard_page = region + room;
}

/* Copies input[0..len) so that it ends right before the guard page, and returns the copy. */
static char *before_guard(const char *input, size_t len)
{
    char *copy = guard_page - len;
    memmove(copy, input, len);
    return copy;
}

/* ---------------------------------------------------------------------------------------------
 * Checking one result
 */

/* The text of a failure; empty while all is well. */
struct verdict {
    char why[512];
};

static bool failed(const struct verdict *v)
{
    return v->why[0] != '\0';
}

static void fail(struct verdict *v, const char *format, ...)
{
    if (failed(v))
        return; /* the first difference is the one worth reading */
    va_list args;
    va_start(args, format);
    vsnprintf(v->why, sizeof v->why, format, args);
    va_end(args);
}

/* Prints at most 40 bytes of a slice, escaping what is not printable. */
static const char *show(const char *ptr, size_t len)
{
    static char text[4][200];
    static int next;
    char *out = text[next++ % 4], *o = out;

    if (ptr == NULL)
        return "(none)";
    *o++ = '"';
    for (size_t i = 0; i < len && i < 40; i++) {
        unsigned char c = (unsigned char)ptr[i];
        o += (c >= 0x20 && c < 0x7f) ? sprintf(o, "%c", c) : sprintf(o, "\\x%02x", c);
    }
    sprintf(o, len > 40 ? "\"..." : "\"");
    return out;
}

static bool slice_is(struct http_slice s, const char *want)
{
    if (want == NULL)
        return s.ptr == NULL && s.len == 0;
    return s.ptr != NULL && s.len == strlen(want) && memcmp(s.ptr, want, s.len) == 0;
}

/* Every slice must point into the buffer given to the call: the zero-copy promise. */
static void check_inside(struct verdict *v, const char *what, struct http_slice s, const char *buf,
                         size_t len)
{
    if (s.ptr == NULL && s.len == 0)
        return;
    if (s.ptr < buf || s.ptr > buf + len || s.len > (size_t)(buf + len - s.ptr))
        fail(v, "%s lies outside the buffer", what);
}

static void check_slice(struct verdict *v, const char *what, struct http_slice got,
                        const char *want)
{
    if (!slice_is(got, want))
        fail(v, "%s: got %s, want %s", what, show(got.ptr, got.len),
             show(want, want ? strlen(want) : 0));
}

static size_t input_len(const char *input, size_t len)
{
    return len != 0 ? len : strlen(input);
}

/* Checks a request the parser reported complete against what the case expects. */
static void check_request(struct verdict *v, const struct head_case *tc,
                          const struct http_request *req, const char *buf, size_t len)
{
    check_inside(v, "method_name", req->method_name, buf, len);
    check_inside(v, "target", req->target, buf, len);
    check_inside(v, "path", req->path, buf, len);
    check_inside(v, "query", req->query, buf, len);
    check_inside(v, "host", req->host, buf, len);
    for (size_t i = 0; i < req->field_count && i < HTTP_MAX_FIELDS; i++) {
        check_inside(v, "a field name", req->fields[i].name, buf, len);
        check_inside(v, "a field value", req->fields[i].value, buf, len);
    }

    if (req->method != tc->method)
        fail(v, "method: got %d, want %d", req->method, tc->method);
    size_t empty_lines_len = 0;
    while (empty_lines_len < len && buf[empty_lines_len] == '\r')
        empty_lines_len += 2;
    if (req->method_name.ptr != buf + empty_lines_len)
        fail(v, "method_name does not point at the request line");
    if (tc->path != NULL)
        check_slice(v, "path", req->path, tc->path);
    check_slice(v, "query", req->query, tc->query);
    if (req->minor_version != tc->minor_version)
        fail(v, "minor_version: got %d, want %d", req->minor_version, tc->minor_version);
    if (tc->host == NULL && req->host.len != 0)
        fail(v, "host: got %s, want none", show(req->host.ptr, req->host.len));
    else if (tc->host != NULL)
        check_slice(v, "host", req->host, tc->host);
    if (req->body_framing != tc->framing)
        fail(v, "body_framing: got %d, want %d", req->body_framing, tc->framing);
    if (tc->framing == HTTP_BODY_LENGTH && req->content_length != tc->content_length)
        fail(v, "content_length: got %llu, want %llu", (unsigned long long)req->content_length,
             (unsigned long long)tc->content_length);
    if (req->keep_alive != tc->keep_alive)
        fail(v, "keep_alive: got %d, want %d", req->keep_alive, tc->keep_alive);
    if (req->expect_continue != tc->expect_continue)
        fail(v, "expect_continue: got %d, want %d", req->expect_continue, tc->expect_continue);
    if (req->field_count != tc->field_count) {
        fail(v, "field_count: got %zu, want %zu", req->field_count, tc->field_count);
        return;
    }
    for (size_t i = 0; i < 6 && tc->fields[i].name != NULL; i++) {
        check_slice(v, "field name", req->fields[i].name, tc->fields[i].name);
        check_slice(v, "field value", req->fields[i].value, tc->fields[i].value);
    }
}

/* The return value a case expects from a call that has seen all of its input. */
static ssize_t expected_result(int status, size_t done_len, size_t len)
{
    if (status == 0)
        return (ssize_t)(done_len != 0 ? done_len : len);
    if (status == INCOMPLETE)
        return HTTP_NEED_MORE;
    return -status;
}

/* ---------------------------------------------------------------------------------------------
 * Running a head case three ways
 */

/* One call on input[0..len), with the bytes moved before the guard page and garbage in *req. */
static ssize_t parse_call(struct http_request_parser *p, const char *input, size_t len,
                          struct http_request *req, const char **buf)
{
    *buf = before_guard(input, len);
    memset(req, 0xa5, sizeof *req);
    return http_parse_request(p, *buf, len, req);
}

/* Judges the result of a call: "need more" is fine before the end; anything else must be the
 * case's final answer. Returns true when the run is over. */
static bool judge_head_call(struct verdict *v, const char *mode, size_t at,
                            const struct head_case *tc, ssize_t got, const struct http_request *req,
                            const char *buf, size_t len, bool whole)
{
    size_t full_len = input_len(tc->input, tc->input_len);
    ssize_t want = expected_result(tc->status, tc->head_len, full_len);

    if (got == HTTP_NEED_MORE && !whole)
        return false;
    if (got != want) {
        fail(v, "%s, after %zu bytes: returned %zd, want %zd", mode, at, got, want);
        return true;
    }
    if (got > 0) {
        struct verdict detail = {""};
        check_request(&detail, tc, req, buf, len);
        if (failed(&detail))
            fail(v, "%s, after %zu bytes: %s", mode, at, detail.why);
    }
    return true;
}

static void run_head_case(struct verdict *v, const struct head_case *tc)
{
    size_t len = input_len(tc->input, tc->input_len), step = tc->step ? tc->step : 1;
    struct http_request_parser p;
    struct http_request req;
    const char *buf;
    ssize_t got;

    http_request_parser_init(&p);
    got = parse_call(&p, tc->input, len, &req, &buf);
    judge_head_call(v, "one-shot", len, tc, got, &req, buf, len, true);

    http_request_parser_init(&p);
    for (size_t n = step < len ? step : len;; n = n + step < len ? n + step : len) {
        got = parse_call(&p, tc->input, n, &req, &buf);
        if (judge_head_call(v, "bytewise", n, tc, got, &req, buf, n, n == len) || n == len)
            break;
    }

    for (size_t cut = step; cut < len; cut += step) {
        http_request_parser_init(&p);
        got = parse_call(&p, tc->input, cut, &req, &buf);
        if (judge_head_call(v, "split, first part", cut, tc, got, &req, buf, cut, false))
            continue;
        got = parse_call(&p, tc->input, len, &req, &buf);
        judge_head_call(v, "split, then whole", cut, tc, got, &req, buf, len, true);
    }
}

/* ---------------------------------------------------------------------------------------------
 * Running a chunked case three ways
 */

static ssize_t scan_call(struct http_chunked_parser *c, const char *input, size_t len,
                         const char **buf)
{
    *buf = before_guard(input, len);
    return http_chunked_scan(c, *buf, len);
}

static bool judge_chunked_call(struct verdict *v, const char *mode, size_t at,
                               const struct chunked_case *tc, ssize_t got, bool whole)
{
    size_t full_len = input_len(tc->input, tc->input_len);
    ssize_t want = expected_result(tc->status, tc->body_len, full_len);

    if (got == HTTP_NEED_MORE && !whole)
        return false;
    if (got != want)
        fail(v, "%s, after %zu bytes: returned %zd, want %zd", mode, at, got, want);
    return true;
}

static void check_squeeze(struct verdict *v, const struct chunked_case *tc, size_t body_len)
{
    size_t want_len = tc->decoded_len != 0 ? tc->decoded_len : strlen(tc->decoded);
    char *buf = before_guard(tc->input, input_len(tc->input, tc->input_len));
    size_t got_len = http_chunked_squeeze(buf, body_len);

    if (got_len != want_len || memcmp(buf, tc->decoded, want_len) != 0)
        fail(v, "squeeze: got %s, want %s", show(buf, got_len), show(tc->decoded, want_len));
}

static void run_chunked_case(struct verdict *v, const struct chunked_case *tc)
{
    size_t len = input_len(tc->input, tc->input_len), step = tc->step ? tc->step : 1;
    struct http_chunked_parser c;
    const char *buf;
    ssize_t got;

    http_chunked_parser_init(&c);
    got = scan_call(&c, tc->input, len, &buf);
    judge_chunked_call(v, "one-shot", len, tc, got, true);
    if (got > 0 && tc->status == 0)
        check_squeeze(v, tc, (size_t)got);

    http_chunked_parser_init(&c);
    for (size_t n = step < len ? step : len;; n = n + step < len ? n + step : len) {
        got = scan_call(&c, tc->input, n, &buf);
        if (judge_chunked_call(v, "bytewise", n, tc, got, n == len) || n == len)
            break;
    }

    for (size_t cut = step; cut < len; cut += step) {
        http_chunked_parser_init(&c);
        got = scan_call(&c, tc->input, cut, &buf);
        if (judge_chunked_call(v, "split, first part", cut, tc, got, false))
            continue;
        got = scan_call(&c, tc->input, len, &buf);
        judge_chunked_call(v, "split, then whole", cut, tc, got, true);
    }
}

/* ---------------------------------------------------------------------------------------------
 * Tests that are not table cases
 */

/* A connection's life: a head, its body, the next head, all in one buffer. */
static void test_pipeline(struct verdict *v)
{
    static const char input[] = "POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                                "3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nT: 1\r\n\r\n"
                                "PUT /b HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nwxyz"
                                "GET /c HTTP/1.0\r\n\r\n";
    char *buf = before_guard(input, sizeof input - 1), *end = buf + sizeof input - 1;
    struct http_request_parser p;
    struct http_chunked_parser c;
    struct http_request req;

    http_request_parser_init(&p);
    ssize_t n = http_parse_request(&p, buf, (size_t)(end - buf), &req);
    if (n != 57 || req.body_framing != HTTP_BODY_CHUNKED) {
        fail(v, "first head: returned %zd", n);
        return;
    }
    buf += n;

    http_chunked_parser_init(&c);
    n = http_chunked_scan(&c, buf, (size_t)(end - buf));
    if (n != 30) {
        fail(v, "chunked body: returned %zd, want 30", n);
        return;
    }
    size_t body_len = http_chunked_squeeze(buf, (size_t)n);
    if (body_len != 5 || memcmp(buf, "abcde", 5) != 0) {
        fail(v, "squeezed body: %s", show(buf, body_len));
        return;
    }
    buf += n;

    http_request_parser_init(&p);
    n = http_parse_request(&p, buf, (size_t)(end - buf), &req);
    if (n <= 0 || req.method != HTTP_METHOD_PUT || req.content_length != 4) {
        fail(v, "second head: returned %zd", n);
        return;
    }
    buf += n + 4;

    http_request_parser_init(&p);
    n = http_parse_request(&p, buf, (size_t)(end - buf), &req);
    if (n != (ssize_t)(end - buf) || !slice_is(req.path, "/c") || req.keep_alive) {
        fail(v, "third head: returned %zd", n);
        return;
    }
}

/* Feeds input in pieces of `step` bytes, each call on a fresh copy. Returns the final result. */
static ssize_t feed_head(const char *input, size_t len, size_t step)
{
    struct http_request_parser p;
    struct http_request req;
    const char *buf;
    ssize_t got = HTTP_NEED_MORE;

    http_request_parser_init(&p);
    for (size_t n = step; got == HTTP_NEED_MORE && n < len + step; n += step)
        got = parse_call(&p, input, n < len ? n : len, &req, &buf);
    return got;
}

/*
 * Linear time: however the bytes arrive, the parser looks at each byte a small, fixed number of
 * times. http_parse_work counts the bytes looked at (the build defines HTTP_PARSE_COUNT_WORK). A
 * parser that re-parsed from the start on every call would look at ~n*n/2 bytes one byte at a
 * time: 25 million for this 7 KiB head, against the 4n = 28 thousand allowed here.
 */
static void test_linear_time(struct verdict *v)
{
    static char head[8192];
    char *s = head;

    append(&s, "POST /upload?id=1 HTTP/1.1\r\nHost: example.com\r\n");
    for (int i = 1; i < 60; i++)
        append(&s, "X-Field-%02d: %0*d\r\n", i, 100, i);
    append(&s, "Transfer-Encoding: chunked\r\n\r\n");
    size_t len = (size_t)(s - head);

    http_parse_work = 0;
    ssize_t got = feed_head(head, len, len);
    if (got != (ssize_t)len || http_parse_work != len) {
        fail(v, "one call: returned %zd, looked at %llu bytes of %zu: want one pass", got,
             http_parse_work, len);
        return;
    }

    size_t steps[] = {1, 2, 7, 100};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        http_parse_work = 0;
        got = feed_head(head, len, steps[i]);
        if (got != (ssize_t)len || http_parse_work > 4 * len) {
            fail(v, "%zu bytes per call: returned %zd, looked at %llu bytes, want <= %zu", steps[i],
                 got, http_parse_work, 4 * len);
            return;
        }
    }

    /* A chunked body of 300 chunks, one byte per call. */
    static char body[16384];
    s = body;
    for (int i = 0; i < 300; i++)
        append(&s, "%x;ext=%d\r\n%0*d\r\n", 20, i, 20, i);
    append(&s, "0\r\nX-Trailer: abc\r\n\r\n");
    len = (size_t)(s - body);

    struct http_chunked_parser c;
    const char *buf;
    http_chunked_parser_init(&c);
    http_parse_work = 0;
    got = HTTP_NEED_MORE;
    for (size_t n = 1; got == HTTP_NEED_MORE && n <= len; n++)
        got = scan_call(&c, body, n, &buf);
    if (got != (ssize_t)len || http_parse_work > 4 * len) {
        fail(v, "chunked, 1 byte per call: returned %zd, looked at %llu bytes, want <= %zu", got,
             http_parse_work, 4 * len);
        return;
    }
}

/* The bytes may move between calls: a call with the earlier bytes elsewhere must still work. */
static void test_bytes_move(struct verdict *v)
{
    static const char input[] = "GET /moved?x HTTP/1.1\r\nHost: h\r\nX-A: 1\r\nX-B: 2\r\n\r\n";
    size_t len = sizeof input - 1;
    char first[sizeof input], second[sizeof input + 64];
    struct http_request_parser p;
    struct http_request req;

    http_request_parser_init(&p);
    memcpy(first, input, 40);
    if (http_parse_request(&p, first, 40, &req) != HTTP_NEED_MORE) {
        fail(v, "first call did not ask for more");
        return;
    }
    memset(first, 'X', sizeof first); /* the old bytes are gone */
    memcpy(second + 64, input, len);
    ssize_t got = http_parse_request(&p, second + 64, len, &req);
    if (got != (ssize_t)len || !slice_is(req.path, "/moved") || req.field_count != 3 ||
        !slice_is(req.fields[1].name, "X-A") || !slice_is(req.host, "h")) {
        fail(v, "returned %zd, path %s", got, show(req.path.ptr, req.path.len));
        return;
    }
}

/*
 * Every byte value at every position of a 40-byte request-target, against RFC 3986 written out
 * here rather than taken from the parser's tables. The parser tests a target 16 bytes at a time
 * for the characters most targets are made of, and leaves the others to a byte loop (with SSE2;
 * only the byte loop in the _scalar build): every position of a byte in those steps, and after
 * them, must give the same answer.
 */
static void test_every_target_byte(struct verdict *v)
{
    /* pchar and '/' and '?' (RFC 3986 3.3, 3.4); '%' is followed by "aa", two hex digits. */
    static const char allowed[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                                  "-._~!$&'()*+,;=:@/?%";
    static const char method[] = "GET ", rest[] = " HTTP/1.1\r\nHost: h\r\n\r\n";
    enum { TARGET_LEN = 40, LEN = sizeof method - 1 + TARGET_LEN + sizeof rest - 1 };
    char input[LEN];

    memcpy(input, method, sizeof method - 1);
    memcpy(input + LEN - (sizeof rest - 1), rest, sizeof rest - 1);
    char *target = input + sizeof method - 1;
    for (int byte = 0; byte < 256; byte++) {
        bool valid = byte != 0 && strchr(allowed, byte) != NULL;
        for (size_t at = 1; at < TARGET_LEN - 2; at++) {
            memset(target, 'a', TARGET_LEN);
            target[0] = '/';
            target[at] = (char)byte;

            struct http_request_parser p;
            struct http_request req;
            const char *buf = before_guard(input, LEN);
            http_request_parser_init(&p);
            ssize_t got = http_parse_request(&p, buf, LEN, &req);
            if (valid ? got != LEN || req.target.len != TARGET_LEN : got != -400) {
                fail(v, "byte 0x%02x at %zu of the target: returned %zd, want %d", byte, at, got,
                     valid ? (int)LEN : -400);
                return;
            }
        }
    }
}

/* Parses method SP target tail, placed right before the guard page, in one call. Returns what
 * http_parse_request() returned, less the method's length, and sets *target where it is. */
static ssize_t parse_line_of(const char *method, const char *target, size_t target_len,
                             const char *tail, struct http_request *req, const char **at)
{
    char input[100];
    size_t method_len = (size_t)snprintf(input, sizeof input, "%s ", method);
    memcpy(input + method_len, target, target_len);
    size_t len = method_len + target_len;
    len += (size_t)snprintf(input + len, sizeof input - len, "%s", tail);

    struct http_request_parser p;
    const char *buf = before_guard(input, len);
    *at = buf + method_len;
    http_request_parser_init(&p);
    ssize_t n = http_parse_request(&p, buf, len, req);
    return n > 0 ? n - (ssize_t)method_len : n;
}

/* Whether slice s of a request whose target is at target, and slice t of another request whose
 * target is at other_target, lie at the same place from their targets, with the same length. */
static bool same_place(struct http_slice s, const char *target, struct http_slice t,
                       const char *other_target)
{
    if (s.ptr == NULL || t.ptr == NULL)
        return s.ptr == t.ptr && s.len == t.len;
    return s.ptr - target == t.ptr - other_target && s.len == t.len;
}

/*
 * With SSE2, a short GET request line is parsed by a fast path of its own (parse_short_get())
 * and every other line by the general one. A GET line and the same line with HEAD, which takes
 * the general path, must give the same answer: for every target of 1 to 20 bytes, with every
 * byte value at every position, with each version, and with the line's end at the end of the
 * bytes or followed by a field line (the bytes end right before a guard page).
 */
static void test_short_get_path(struct verdict *v)
{
    static const char *const tails[] = {" HTTP/1.1\r\n", " HTTP/1.0\r\n",
                                        " HTTP/1.1\r\nHost: h\r\n\r\n",
                                        " HTTP/1.0\r\nHost: h\r\n\r\n"};
    char target[32];

    for (size_t target_len = 1; target_len <= 20; target_len++) {
        for (size_t at = 0; at < target_len; at++) {
            for (int byte = 0; byte < 256; byte++) {
                memset(target, 'a', target_len);
                target[0] = '/';
                target[at] = (char)byte;
                for (size_t i = 0; i < sizeof tails / sizeof tails[0]; i++) {
                    struct http_request a, b;
                    const char *a_target, *b_target;
                    ssize_t got = parse_line_of("GET", target, target_len, tails[i], &a, &a_target);
                    ssize_t want =
                        parse_line_of("HEAD", target, target_len, tails[i], &b, &b_target);
                    bool same = got == want;
                    if (same && got > 0)
                        same = a.method == HTTP_METHOD_GET && a.minor_version == b.minor_version &&
                               a.method_name.ptr == a_target - 4 && a.method_name.len == 3 &&
                               same_place(a.target, a_target, b.target, b_target) &&
                               same_place(a.path, a_target, b.path, b_target) &&
                               same_place(a.query, a_target, b.query, b_target) &&
                               same_place(a.host, a_target, b.host, b_target) &&
                               a.field_count == b.field_count;
                    if (!same) {
                        fail(v, "target %s, tail %s: GET returned %zd, HEAD %zd",
                             show(target, target_len), show(tails[i], strlen(tails[i])), got, want);
                        return;
                    }
                }
            }
        }
    }
}

/* ---------------------------------------------------------------------------------------------
 * Main
 */

static int passed_count, failed_count;

static void report(const char *name, const struct verdict *v)
{
    if (failed(v)) {
        printf("FAIL %s: %s\n", name, v->why);
        failed_count++;
    } else {
        printf("ok %s\n", name);
        passed_count++;
    }
}

int main(void)
{
    build_inputs();
    make_guard_page();

    for (size_t i = 0; i < sizeof head_cases / sizeof head_cases[0]; i++) {
        struct verdict v = {""};
        run_head_case(&v, &head_cases[i]);
        report(head_cases[i].name, &v);
    }
    for (size_t i = 0; i < sizeof chunked_cases / sizeof chunked_cases[0]; i++) {
        struct verdict v = {""};
        char name[200];
        run_chunked_case(&v, &chunked_cases[i]);
        snprintf(name, sizeof name, "chunked: %s", chunked_cases[i].name);
        report(name, &v);
    }

    struct {
        const char *name;
        void (*run)(struct verdict *);
    } tests[] = {
        {"pipeline: head, chunked body, head, body, head", test_pipeline},
        {"linear time however the bytes arrive", test_linear_time},
        {"bytes moved between calls", test_bytes_move},
        {"every byte at every position of a target", test_every_target_byte},
        {"short GET request lines, fast path against general path", test_short_get_path},
    };
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
        struct verdict v = {""};
        tests[i].run(&v);
        report(tests[i].name, &v);
    }

    printf("%d passed, %d failed\n", passed_count, failed_count);
    return failed_count == 0 ? 0 : 1;
}
