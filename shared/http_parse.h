/*
 * http_parse.h - a strict, zero-copy, incremental HTTP/1.1 request parser (RFC 9112, RFC 9110).
 *
 * Zero-copy: everything the parser reports is a slice (pointer + length) into the caller's
 * buffer; nothing is copied or allocated. Incremental: the caller calls again as bytes arrive,
 * each time with all the bytes so far. The parser keeps a few offsets between calls (never
 * pointers, so the caller may move its buffer) and does not re-read what it has already judged,
 * so a head arriving one byte per call still costs linear time. The answer depends only on the
 * bytes: one call with all of them answers as any sequence of calls ending with them.
 *
 * Return values follow one convention everywhere:
 *     n > 0            done, and it took n bytes;
 *     HTTP_NEED_MORE   the bytes so far are a valid beginning: call again with more;
 *     n < 0            malformed: -n is the HTTP status code to answer with (e.g. -400).
 *
 * Not named http_parser.h: Debian's libhttp-parser-dev owns <http_parser.h>, and no public name
 * here starts with http_parser_ for the same reason.
 */
#ifndef HTTP_PARSE_H
#define HTTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h> /* ssize_t */

/*
 * Every limit the parser enforces, in one place. Each is checked as soon as it is passed; in a
 * request line still arriving, the method's and the target's once the line is longer than any
 * valid one (see http_parse.c). So a peer cannot make us buffer more before we answer.
 */

/* Longest method token: 501 past it. The longest registered method (UPDATEREDIRECTREF) has 17
 * characters; anything longer cannot be a method we implement. */
#define HTTP_MAX_METHOD_LEN 32

/* Longest request-target: 414 past it. RFC 9112 3 recommends supporting request lines of at least
 * 8000 octets, and RFC 9110 4.1 URIs as long: clients and intermediaries do send them (long query
 * strings, signed URLs). That leaves about 150 bytes for fields in an 8 KiB head, enough for Host
 * and a few short fields; a request with a target that long and a browser's fields gets 431. */
#define HTTP_MAX_TARGET_LEN 8000

/* Longest head (request line + fields + blank line, counting any empty lines skipped before it):
 * 431 past it. nginx and Apache refuse a request line or a field line over 8 KiB by default; real
 * browser heads are under 2 KiB, cookies included. */
#define HTTP_MAX_HEAD_LEN 8192

/* Most field lines in a head: 431 past it. Browsers send 10 to 20; 64 keeps the field array of
 * struct http_request at 2 KiB, small enough for the caller's stack. */
#define HTTP_MAX_FIELDS 64

/* Most empty lines (CRLF) skipped before a request line: 400 past it. RFC 9112 2.2 asks us to
 * skip at least one (some clients send a CRLF after a POST body); a stream of them is an attack. */
#define HTTP_MAX_LEADING_EMPTY_LINES 4

/* Largest body, Content-Length or decoded chunked: 413 past it. The connection code holds the
 * whole body in memory; 1 MiB is plenty for the forms and API calls this server is for. */
#define HTTP_MAX_BODY_LEN (1024 * 1024)

/* Longest chunk-size line (size, extensions, CRLF): 413 past it. Extensions carry nothing we use,
 * and RFC 9112 7.1.1 asks servers to limit them. */
#define HTTP_MAX_CHUNK_LINE_LEN 1024

/* Longest chunked body before its trailers (chunk data plus framing): 413 past it. The connection
 * keeps the raw bytes until the body is complete, so the framing must be bounded too: 1-byte
 * chunks cost 6 bytes each. Twice the body limit leaves room for any sane chunking. */
#define HTTP_MAX_CHUNKED_LEN (2 * HTTP_MAX_BODY_LEN)

/* Longest trailer section (trailer fields + final CRLF): 431 past it. Trailers are rare and
 * small (a checksum, a signature); we parse them only to drop them. */
#define HTTP_MAX_TRAILER_LEN 4096

/* "Call again with more bytes." Zero, so that `if (n > 0)` reads as "done". */
#define HTTP_NEED_MORE 0

/* Zero-copy: points into the caller's buffer. Not NUL-terminated. */
struct http_slice {
    const char *ptr;
    size_t len;
};

/* One field line. The value has no leading or trailing SP/HTAB (RFC 9112 5). */
struct http_field {
    struct http_slice name, value;
};

/* The methods we implement. A valid method token that is not one of these (TRACE, CONNECT, "get":
 * methods are case-sensitive, FOO) gets 501. */
enum http_method {
    HTTP_METHOD_GET,
    HTTP_METHOD_HEAD,
    HTTP_METHOD_POST,
    HTTP_METHOD_PUT,
    HTTP_METHOD_DELETE,
    HTTP_METHOD_OPTIONS,
    HTTP_METHOD_PATCH,
};

/* How the body's length is known (RFC 9112 6.3). */
enum http_body_framing {
    HTTP_BODY_NONE, /* no body */
    HTTP_BODY_LENGTH, /* Content-Length bytes (possibly 0) */
    HTTP_BODY_CHUNKED, /* Transfer-Encoding: chunked; see http_chunked_scan() */
};

/*
 * A parsed request head. Filled only when http_parse_request() returns n > 0; every slice then
 * points into the buffer passed to that call. Meant to live on the caller's stack; it need not be
 * the same object from one call to the next.
 */
struct http_request {
    enum http_method method;
    struct http_slice method_name; /* as sent */
    struct http_slice target; /* request-target as sent */
    struct http_slice path; /* origin-form: the target up to '?'; absolute-form: its path
                               ("/" if empty); asterisk-form: "*" */
    struct http_slice query; /* after '?', without it; len 0 if none (ptr NULL if no '?') */
    int minor_version; /* 0 or 1 (HTTP/1.0 or HTTP/1.1) */
    struct http_field fields[HTTP_MAX_FIELDS];
    size_t field_count;

    /* What the parser worked out of the fields: */
    struct http_slice host; /* the Host field value; for an absolute-form target its
                               authority instead (RFC 9112 3.2.2); len 0 if absent
                               (allowed only in HTTP/1.0) */
    enum http_body_framing body_framing; /* none, Content-Length, or chunked */
    uint64_t content_length; /* when HTTP_BODY_LENGTH */
    bool keep_alive; /* version default (1.1 yes, 1.0 no) adjusted by Connection: close or
                        keep-alive */
    bool expect_continue; /* Expect: 100-continue in an HTTP/1.1 request */
};

/*
 * What http_parse_request() remembers between calls. Offsets into the buffer, never pointers.
 * Private: only http_request_parser_init() and http_parse_request() touch the members.
 */
struct http_request_parser {
    uint32_t line_start; /* first byte of the line not parsed yet */
    uint32_t line_scanned; /* bytes from line_start up to here hold no line end */
    uint64_t content_length; /* the Content-Length seen so far */
    uint16_t flags; /* what the lines so far have said (see http_parse.c) */
    uint8_t field_count; /* field lines parsed so far */
    uint8_t host_index; /* which of them was Host */
    uint8_t empty_lines; /* empty lines skipped before the request line */
    uint8_t minor_version; /* of the request line, once parsed */
};

/* Prepares a parser for a new request head. */
void http_request_parser_init(struct http_request_parser *p);

/*
 * Parses the request head in buf[0..len). The caller passes the same bytes as in earlier calls
 * plus whatever arrived since; the bytes may have moved (the buffer grew, or they were copied out
 * of a ring buffer), which is why the state holds offsets, never pointers.
 *
 * Returns n > 0 when the head is complete and n bytes long (including skipped leading empty lines
 * and the final blank line); *req is filled with slices into buf, and buf[n..len) is the body or
 * the next pipelined request. HTTP_NEED_MORE when incomplete. Otherwise -400, -413, -414, -417,
 * -431, -501 or -505; the connection should answer with that status and close. Errors are
 * reported as soon as the offending line is complete, not only when the whole head has arrived;
 * an incomplete line is judged as soon as it is longer than it may be (see http_parse.c).
 */
ssize_t http_parse_request(struct http_request_parser *p, const char *buf, size_t len,
                           struct http_request *req);

/*
 * What http_chunked_scan() remembers between calls. Offsets only. Private.
 */
struct http_chunked_parser {
    uint32_t pos; /* start of the next piece: a chunk-size line, chunk data, a trailer */
    uint32_t line_scanned; /* bytes from pos up to here hold no line end */
    uint32_t data_end; /* where the current chunk's data ends (its CRLF follows) */
    uint32_t trailer_start; /* where the trailer section starts */
    uint32_t body_len; /* chunk data so far, in bytes */
    uint8_t state; /* which piece pos is at (see http_parse.c) */
};

/* Prepares a chunked-body scanner for a new body. */
void http_chunked_parser_init(struct http_chunked_parser *c);

/*
 * Scans the chunked body (RFC 9112 7.1) in buf[0..len): buf is the first byte after the head,
 * and as with http_parse_request() each call passes the same bytes as before plus more.
 *
 * Returns n > 0 when the body, trailers included, ends after n bytes (anything after it is the
 * next pipelined request); HTTP_NEED_MORE when incomplete; -400 for bad chunk-size, chunk-ext or
 * trailer syntax or a chunk-size overflow; -413 for a decoded body over HTTP_MAX_BODY_LEN or
 * framing over HTTP_MAX_CHUNK_LINE_LEN or HTTP_MAX_CHUNKED_LEN; -431 for trailers over
 * HTTP_MAX_TRAILER_LEN.
 */
ssize_t http_chunked_scan(struct http_chunked_parser *c, const char *buf, size_t len);

/*
 * After http_chunked_scan() returned n > 0 for buf: moves the chunk data of buf[0..n) to the
 * front of buf, in place, dropping the framing and the trailers (already validated by the scan).
 * Returns the decoded body length (at most HTTP_MAX_BODY_LEN).
 */
size_t http_chunked_squeeze(char *buf, size_t n);

#ifdef HTTP_PARSE_COUNT_WORK
/* Test builds only: how many bytes the parsers have looked at, summed over all calls. The unit
 * test uses it to check that parsing takes linear time however the bytes arrive. */
extern unsigned long long http_parse_work;
#endif

#endif /* HTTP_PARSE_H */
