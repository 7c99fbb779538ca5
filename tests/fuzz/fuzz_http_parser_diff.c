/*
 * fuzz_http_parser_diff.c - differential libFuzzer target: shared/http_parse.c against
 * http_parser (Node's former parser, Debian's libhttp-parser-dev).
 *
 * Each input is taken as the bytes a client sent, and given whole to both parsers. They must
 * agree on whether the request head is rejected, and, when both accept it, on its length, the
 * method, the target, the version, every field's name and value, whether the connection stays
 * open, and how the body's length is known (none, Content-Length and its value, or chunked). For
 * a chunked body they must then agree on whether it is rejected, where it ends and what it
 * decodes to.
 *
 * Our parser is stricter than http_parser on purpose, and answers some requests that it accepts
 * with an error status (400, 413, 414, 431, 501, 505, 417). Every such difference is listed and
 * explained in DIFFERENCES.md; below, each one has a predicate that recognises it (see
 * DIFFERENCES[]). A disagreement that no predicate explains stops the run: either it is a bug in
 * our parser, or a difference to think about, then list, explain and encode.
 *
 * Where in the input our parser found the error matters to most predicates: "a bare LF" explains
 * a 400 only if it is the line with the bare LF that was refused. The parser reports an error as
 * soon as the offending line is complete, never earlier (http_parse.c), so the shortest prefix
 * of the input that gets the error ends with that line: shortest_rejected() finds it by
 * bisection, locate_head_error() and locate_body_error() say what kind of line it is. Where a
 * predicate can, it also checks that ours was right to refuse (field_status(), for instance,
 * says what RFC 9110 makes of a Host or Content-Length value), so that a bug in our parser does
 * not pass for an intended difference.
 *
 * The chunked grammar itself is checked in depth by fuzz_chunked, against a reference decoder;
 * here it is the disagreements with another implementation that matter.
 */
#include "../../shared/http_parse.h"
#include "fuzz_check.h"

/* Both headers name an enum http_method. http_parser's is renamed while its header is read: an
 * enum's tag is in no symbol the linker sees, so nothing else changes. */
#define http_method http_parser_method
#include <http_parser.h>
#undef http_method

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---------------------------------------------------------------------------------------------
 * What each parser made of the input
 */

enum verdict { INCOMPLETE, REJECTED, ACCEPTED };

/* A head only has room for this many fields (a field line is at least 3 bytes: "a:\n"). */
enum { MAX_FIELDS = 4096 };

struct slice {
    const char *ptr;
    size_t len;
};

struct field {
    struct slice name, value;
    int value_pieces; /* http_parser gives a folded value (obs-fold) in pieces */
};

/* One parser's view of the request, in terms both can fill in. */
struct view {
    enum verdict head;
    int status; /* ours, when rejected: the status to answer with */
    size_t head_len; /* when accepted */
    struct slice method, target;
    int major, minor;
    struct field *fields;
    size_t field_count;
    bool keep_alive;
    enum http_body_framing framing;
    uint64_t content_length;
    bool upgrade; /* http_parser: the bytes after the head are another protocol's */
    enum http_errno error; /* http_parser, when rejected: why */
    size_t error_at; /* http_parser, when rejected: where, from the start of the input */

    /* The chunked body, when both accepted a head that announces one: */
    enum verdict body;
    size_t body_end; /* from the start of the input, when accepted */
    char *decoded; /* the decoded body, when accepted */
    size_t decoded_len;
};

static struct field ours_fields[MAX_FIELDS], theirs_fields[MAX_FIELDS];

/* Our parser's answer, as a verdict. */
static enum verdict verdict_of(ssize_t n)
{
    if (n > 0)
        return ACCEPTED;
    return n < 0 ? REJECTED : INCOMPLETE;
}

static void parse_ours(const char *buf, size_t len, struct view *v)
{
    static struct http_request req;
    struct http_request_parser p;
    http_request_parser_init(&p);
    ssize_t n = http_parse_request(&p, buf, len, &req);

    *v = (struct view){.fields = ours_fields, .head = verdict_of(n)};
    if (n <= 0) {
        v->status = (int)-n;
        return;
    }
    v->head_len = (size_t)n;
    v->method = (struct slice){req.method_name.ptr, req.method_name.len};
    v->target = (struct slice){req.target.ptr, req.target.len};
    v->major = 1;
    v->minor = req.minor_version;
    v->field_count = req.field_count;
    for (size_t i = 0; i < req.field_count; i++) {
        const struct http_field *f = &req.fields[i];
        ours_fields[i] =
            (struct field){{f->name.ptr, f->name.len}, {f->value.ptr, f->value.len}, 1};
    }
    v->keep_alive = req.keep_alive;
    v->framing = req.body_framing;
    v->content_length = req.content_length;
}

/* Our chunked scan of what follows the head, and the squeezed body. */
static void parse_ours_body(const char *buf, size_t len, struct view *v)
{
    struct http_chunked_parser c;
    http_chunked_parser_init(&c);
    char *body = copy_of((const uint8_t *)buf + v->head_len, len - v->head_len);
    ssize_t n = http_chunked_scan(&c, body, len - v->head_len);
    v->body = verdict_of(n);
    v->status = n < 0 ? (int)-n : 0;
    if (n > 0) {
        v->body_end = v->head_len + (size_t)n;
        v->decoded_len = http_chunked_squeeze(body, (size_t)n);
        v->decoded = body;
    } else {
        free(body);
    }
}

/* http_parser reports what it finds through callbacks, into this. */
struct theirs {
    struct view *v;
    bool head_done, message_done;
    size_t body_capacity;
};

static int on_url(http_parser *p, const char *at, size_t len)
{
    struct theirs *t = p->data;
    if (t->v->target.ptr != NULL)
        return 1; /* in pieces: not expected from one buffer */
    t->v->target = (struct slice){at, len};
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    struct theirs *t = p->data;
    if (t->head_done)
        return 0; /* a trailer field: ours drops them too */
    if (t->v->field_count == MAX_FIELDS)
        return 1;
    t->v->fields[t->v->field_count++] = (struct field){{at, len}, {NULL, 0}, 0};
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    struct theirs *t = p->data;
    if (t->head_done)
        return 0;
    if (t->v->field_count == 0)
        return 1;
    struct field *f = &t->v->fields[t->v->field_count - 1];
    if (f->value_pieces++ == 0)
        f->value = (struct slice){at, len};
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    struct theirs *t = p->data;
    struct view *v = t->v;
    const char *name = http_method_str((enum http_parser_method)p->method);
    v->method = (struct slice){name, strlen(name)};
    v->major = p->http_major;
    v->minor = p->http_minor;
    v->keep_alive = http_should_keep_alive(p);
    v->upgrade = p->upgrade;
    if (p->flags & F_CHUNKED) {
        v->framing = HTTP_BODY_CHUNKED;
    } else if (p->flags & F_CONTENTLENGTH) {
        v->framing = HTTP_BODY_LENGTH;
        v->content_length = p->content_length;
    }
    t->head_done = true;
    http_parser_pause(p, 1); /* to learn where the head ends */
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct theirs *t = p->data;
    struct view *v = t->v;
    if (v->decoded_len + len > t->body_capacity)
        return 1; /* cannot be: a body is no longer than its input */
    memcpy(v->decoded + v->decoded_len, at, len);
    v->decoded_len += len;
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct theirs *t = p->data;
    t->message_done = true;
    http_parser_pause(p, 1); /* to learn where the body ends, and not parse what follows */
    return 0;
}

static const http_parser_settings SETTINGS = {
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

static void parse_theirs(const char *buf, size_t len, struct view *v)
{
    static http_parser p;
    struct theirs t = {.v = v, .body_capacity = len};
    *v = (struct view){.fields = theirs_fields, .framing = HTTP_BODY_NONE};
    v->decoded = malloc(len ? len : 1);
    check(v->decoded != NULL, "out of memory");

    http_parser_init(&p, HTTP_REQUEST);
    p.data = &t;
    size_t n = http_parser_execute(&p, &SETTINGS, buf, len);
    v->error = HTTP_PARSER_ERRNO(&p);
    v->error_at = n;
    if (!t.head_done) {
        v->head = v->error == HPE_OK ? INCOMPLETE : REJECTED;
        return;
    }
    /* Paused at the head's final LF, which it has not counted. */
    v->head = ACCEPTED;
    v->head_len = n + 1;

    /* Resume where it paused (at that LF, which it then takes as read). Only now does it look at
     * the framing: a Transfer-Encoding without chunked last is refused before the body. */
    http_parser_pause(&p, 0);
    size_t m = http_parser_execute(&p, &SETTINGS, buf + n, len - n);
    v->error = HTTP_PARSER_ERRNO(&p);
    v->error_at = n + m;
    if (!t.message_done && v->error == HPE_INVALID_TRANSFER_ENCODING && m == 0) {
        v->head = REJECTED;
        return;
    }
    if (v->framing != HTTP_BODY_CHUNKED || v->upgrade)
        return;
    if (t.message_done) {
        v->body = ACCEPTED;
        v->body_end = n + m;
    } else {
        v->body = v->error == HPE_OK ? INCOMPLETE : REJECTED;
    }
}

/* ---------------------------------------------------------------------------------------------
 * Comparing
 */

static bool same(struct slice a, struct slice b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

/* http_parser leaves the whitespace at the end of a value in it; RFC 9112 5 says it is not part
 * of the value, and our parser drops it. Not a difference in what was accepted: compared without
 * it. */
static struct slice trim_end(struct slice s)
{
    while (s.len > 0 && (s.ptr[s.len - 1] == ' ' || s.ptr[s.len - 1] == '\t'))
        s.len--;
    return s;
}

/* The first way two accepted heads differ, or NULL. */
static const char *head_difference(const struct view *a, const struct view *b)
{
    if (a->head_len != b->head_len)
        return "head length";
    if (!same(a->method, b->method))
        return "method";
    if (!same(a->target, b->target))
        return "target";
    if (a->major != b->major || a->minor != b->minor)
        return "version";
    if (a->field_count != b->field_count)
        return "number of fields";
    for (size_t i = 0; i < a->field_count; i++) {
        if (!same(a->fields[i].name, b->fields[i].name))
            return "field name";
        if (b->fields[i].value_pieces > 1 ||
            !same(a->fields[i].value, trim_end(b->fields[i].value)))
            return "field value";
    }
    if (a->keep_alive != b->keep_alive)
        return "keep-alive";
    if (a->framing != b->framing)
        return "body framing";
    if (a->framing == HTTP_BODY_LENGTH && a->content_length != b->content_length)
        return "Content-Length";
    return NULL;
}

static const char *body_difference(const struct view *a, const struct view *b)
{
    if (a->body != b->body)
        return a->body == REJECTED || b->body == REJECTED ? "chunked body rejected by one"
                                                          : "chunked body incomplete for one";
    if (a->body == ACCEPTED && a->body_end != b->body_end)
        return "chunked body end";
    if (a->body == ACCEPTED &&
        (a->decoded_len != b->decoded_len || memcmp(a->decoded, b->decoded, a->decoded_len) != 0))
        return "decoded body";
    return NULL;
}

/* ---------------------------------------------------------------------------------------------
 * Where our parser found its error
 */

static bool ours_rejects_head(const char *buf, size_t len)
{
    static struct http_request req;
    struct http_request_parser p;
    http_request_parser_init(&p);
    return http_parse_request(&p, buf, len, &req) < 0;
}

static bool ours_rejects_body(const char *buf, size_t len)
{
    struct http_chunked_parser c;
    http_chunked_parser_init(&c);
    return http_chunked_scan(&c, buf, len) < 0;
}

/* The length of the shortest prefix of buf[0..len) that our parser rejects, knowing that it
 * rejects all of it. An error is reported as soon as the bytes that show it have come, so the
 * offending line (or chunk) ends there. Bisection: a prefix is rejected iff it is that long. */
static size_t shortest_rejected(const char *buf, size_t len, bool (*rejects)(const char *, size_t))
{
    size_t accepted = 0, rejected = len;
    while (rejected - accepted > 1) {
        size_t mid = accepted + (rejected - accepted) / 2;
        if (rejects(buf, mid))
            rejected = mid;
        else
            accepted = mid;
    }
    return rejected;
}

enum place {
    NOWHERE,
    LEADING_LINE, /* an empty line before the request line */
    REQUEST_LINE,
    FIELD_LINE,
    BLANK_LINE, /* the empty line that ends the head */
    CHUNK_SIZE_LINE,
    CHUNK_DATA_END, /* the CRLF that must follow chunk data */
    TRAILER_LINE, /* a trailer field line, or the CRLF that ends the body */
};

/* Everything a predicate may look at. */
struct diff {
    const char *buf; /* the input */
    size_t size;
    const struct view *ours, *theirs;
    const char *what; /* what differs */
    int status; /* ours, when it rejected the head or the body */
    enum place place; /* where it found the error */
    struct slice line; /* the offending line, from its start to where the error showed */
    struct slice head; /* the head's lines before the offending one, or the whole head */
    struct slice request; /* the request line, once there is one */
};

/* Finds the line holding the byte at end - 1 in buf[0..end): every line before it is complete.
 * Returns its start. */
static size_t line_start(const char *buf, size_t end)
{
    size_t start = end - 1;
    while (start > 0 && buf[start - 1] != '\n')
        start--;
    return start;
}

static bool is_empty_line(struct slice line)
{
    return line.len > 0 && (line.ptr[0] == '\r' || line.ptr[0] == '\n');
}

static void locate_head_error(struct diff *d)
{
    size_t end = shortest_rejected(d->buf, d->size, ours_rejects_head);
    size_t start = line_start(d->buf, end);
    d->line = (struct slice){d->buf + start, end - start};
    d->head = (struct slice){d->buf, start};

    /* The lines before it were accepted: CRLF-terminated, empty ones first. */
    size_t i = 0;
    while (i + 1 < start && d->buf[i] == '\r')
        i += 2;
    if (i < start) {
        const char *lf = memchr(d->buf + i, '\n', start - i);
        d->request = (struct slice){d->buf + i, (size_t)(lf - (d->buf + i)) + 1};
        d->place = is_empty_line(d->line) ? BLANK_LINE : FIELD_LINE;
    } else {
        d->request = d->line;
        d->place = is_empty_line(d->line) ? LEADING_LINE : REQUEST_LINE;
    }
}

static void locate_body_error(struct diff *d)
{
    const char *body = d->buf + d->ours->head_len;
    size_t end = shortest_rejected(body, d->size - d->ours->head_len, ours_rejects_body);
    size_t pos = 0;
    d->head = (struct slice){d->buf, d->ours->head_len};
    d->request = (struct slice){NULL, 0};

    /* The chunks before it were accepted: each a size line, the data, CRLF. */
    for (;;) {
        const char *lf = memchr(body + pos, '\n', end - pos);
        if (lf == NULL || (size_t)(lf - body) + 1 >= end) {
            d->place = CHUNK_SIZE_LINE;
            d->line = (struct slice){body + pos, end - pos};
            return;
        }
        size_t size = 0, data = (size_t)(lf - body) + 1;
        for (const char *s = body + pos; isxdigit((unsigned char)*s); s++)
            size = size * 16 + (size_t)(*s <= '9' ? *s - '0' : (*s | 0x20) - 'a' + 10);
        if (size == 0) {
            size_t start = line_start(body, end);
            d->place = TRAILER_LINE;
            d->line = (struct slice){body + start, end - start};
            return;
        }
        if (end <= data + size + 2) {
            d->place = CHUNK_DATA_END;
            d->line = (struct slice){body + data + size, end - (data + size)};
            return;
        }
        pos = data + size + 2;
    }
}

/* ---------------------------------------------------------------------------------------------
 * Looking at lines
 */

static bool ends_with_bare_lf(struct slice line)
{
    return line.len >= 1 && line.ptr[line.len - 1] == '\n' &&
           (line.len == 1 || line.ptr[line.len - 2] != '\r');
}

/* A line is judged once the byte after its first CR has come: a bare CR is second to last. */
static bool ends_with_bare_cr(struct slice line)
{
    return line.len >= 2 && line.ptr[line.len - 2] == '\r' && line.ptr[line.len - 1] != '\n';
}

/* A field line's name: up to its colon, or the whole line. */
static struct slice field_name(struct slice line)
{
    const char *colon = memchr(line.ptr, ':', line.len);
    return (struct slice){line.ptr, colon != NULL ? (size_t)(colon - line.ptr) : line.len};
}

static struct slice field_value(struct slice line)
{
    struct slice name = field_name(line);
    const char *v = name.ptr + name.len + (name.len < line.len), *end = line.ptr + line.len;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n'))
        end--;
    return (struct slice){v, (size_t)(end - v)};
}

static bool has_name(struct slice line, const char *name)
{
    struct slice n = field_name(line);
    return n.len == strlen(name) && n.len < line.len && strncasecmp(n.ptr, name, n.len) == 0;
}

/* How many bytes of s, from `from` on, are in `set` (strspn() for a slice). */
static size_t span(struct slice s, size_t from, const char *set)
{
    size_t i = from;
    while (i < s.len && s.ptr[i] != '\0' && strchr(set, s.ptr[i]) != NULL)
        i++;
    return i - from;
}

static bool contains(struct slice s, const char *any_of)
{
    for (size_t i = 0; i < s.len; i++) {
        if (s.ptr[i] != '\0' && strchr(any_of, s.ptr[i]) != NULL)
            return true;
    }
    return false;
}

static bool starts_with_nocase(struct slice s, const char *prefix)
{
    size_t n = strlen(prefix);
    return s.len >= n && strncasecmp(s.ptr, prefix, n) == 0;
}

/* The next line of lines (CRLF-terminated) at *pos, or false at the end. */
static bool next_line(struct slice lines, size_t *pos, struct slice *line)
{
    if (*pos >= lines.len)
        return false;
    const char *lf = memchr(lines.ptr + *pos, '\n', lines.len - *pos);
    size_t end = lf != NULL ? (size_t)(lf - lines.ptr) + 1 : lines.len;
    *line = (struct slice){lines.ptr + *pos, end - *pos};
    *pos = end;
    return true;
}

/* Whether one of the head's field lines (those before the offending line) has this name. */
static bool head_has_field(const struct diff *d, const char *name)
{
    struct slice line;
    size_t pos = d->request.ptr != NULL ? (size_t)(d->request.ptr + d->request.len - d->buf) : 0;
    while (next_line(d->head, &pos, &line)) {
        if (has_name(line, name))
            return true;
    }
    return false;
}

/* The request line's three parts, split at its first two spaces. */
struct request_line {
    struct slice method, target, version;
    int spaces;
};

static struct request_line split_request_line(struct slice line)
{
    struct request_line r = {.spaces = 0};
    if (line.ptr == NULL)
        return r;
    const char *s = line.ptr, *end = line.ptr + line.len;
    while (end > s && (end[-1] == '\r' || end[-1] == '\n'))
        end--;
    struct slice *parts[] = {&r.method, &r.target, &r.version};
    for (int i = 0; i < 3; i++) {
        const char *sp = i < 2 ? memchr(s, ' ', (size_t)(end - s)) : NULL;
        const char *part_end = sp != NULL ? sp : end;
        *parts[i] = (struct slice){s, (size_t)(part_end - s)};
        if (sp == NULL)
            break;
        r.spaces++;
        s = sp + 1;
    }
    return r;
}

static bool is_http11(const struct diff *d)
{
    struct request_line r = split_request_line(d->request);
    return r.version.len == 8 && memcmp(r.version.ptr, "HTTP/1.1", 8) == 0;
}

static bool is_http10(const struct diff *d)
{
    struct request_line r = split_request_line(d->request);
    return r.version.len == 8 && memcmp(r.version.ptr, "HTTP/1.0", 8) == 0;
}

/* ---------------------------------------------------------------------------------------------
 * What RFC 9110 and RFC 3986 say a few field values and targets are: so that a predicate can
 * check that our parser was right to refuse one, rather than take its word for it.
 */

static bool is_tchar(char c)
{
    return isalnum((unsigned char)c) || (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* unreserved / sub-delims: what a reg-name is made of, with pct-encoded. */
static bool is_host_char(char c)
{
    return isalnum((unsigned char)c) || (c != '\0' && strchr("-._~!$&'()*+,;=", c) != NULL);
}

static struct slice trim(struct slice s)
{
    size_t ows = span(s, 0, " \t");
    s.ptr += ows;
    s.len -= ows;
    return trim_end(s);
}

/* uri-host [ ":" port ], where uri-host is a reg-name or an IPv6 address in brackets; empty
 * allowed, a port without a host not. */
static bool valid_host(struct slice h)
{
    size_t i = 0;
    if (h.len > 0 && h.ptr[0] == '[') {
        i = 1 + span(h, 1, "0123456789abcdefABCDEF:.");
        if (i == 1 || i == h.len || h.ptr[i] != ']')
            return false;
        i++;
    } else {
        while (i < h.len && h.ptr[i] != ':') {
            if (h.ptr[i] == '%') {
                if (i + 2 >= h.len || !isxdigit((unsigned char)h.ptr[i + 1]) ||
                    !isxdigit((unsigned char)h.ptr[i + 2]))
                    return false;
                i += 3;
            } else if (is_host_char(h.ptr[i])) {
                i++;
            } else {
                return false;
            }
        }
        if (i == 0 && i < h.len)
            return false; /* ":80" */
    }
    if (i == h.len)
        return true;
    return h.ptr[i] == ':' && span(h, i + 1, "0123456789") == h.len - i - 1;
}

/* #token (RFC 9110 5.6.1): tokens separated by commas and OWS, empty elements allowed. Calls
 * each(token, arg) for each token; false if the list is not one. */
static bool token_list(struct slice v, void (*each)(struct slice, void *), void *arg)
{
    size_t i = 0;
    for (;;) {
        i += span(v, i, " \t,");
        if (i == v.len)
            return true;
        size_t start = i;
        while (i < v.len && is_tchar(v.ptr[i]))
            i++;
        size_t end = i;
        i += span(v, i, " \t");
        if (end == start || (i < v.len && v.ptr[i] != ','))
            return false; /* checked before the token is taken, as our parser does */
        if (each != NULL)
            each((struct slice){v.ptr + start, end - start}, arg);
    }
}

/* The transfer codings listed so far, as the rules of RFC 9112 6.1 see them. */
struct codings {
    bool chunked_last, unknown;
    int status; /* 501 for a coding we lack before chunked, 400 for chunked not last or twice */
};

static void add_coding(struct slice coding, void *arg)
{
    struct codings *c = arg;
    if (c->chunked_last)
        c->status = c->status ? c->status : 400;
    if (coding.len == 7 && strncasecmp(coding.ptr, "chunked", 7) == 0) {
        if (c->unknown)
            c->status = c->status ? c->status : 501;
        c->chunked_last = true;
    } else {
        c->unknown = true;
    }
}

/* A Content-Length value: a list of one number, repeated (RFC 9110 8.6). *n is the number, or
 * must already be it if *seen. False if it is not such a list, or too large for 64 bits. */
static bool content_length_value(struct slice v, uint64_t *n, bool *seen)
{
    size_t i = 0;
    for (;;) {
        size_t digits = span(v, i, "0123456789");
        if (digits == 0)
            return false;
        uint64_t value = 0;
        for (size_t k = i; k < i + digits; k++) {
            if (value > (UINT64_MAX - (uint64_t)(v.ptr[k] - '0')) / 10)
                return false;
            value = value * 10 + (uint64_t)(v.ptr[k] - '0');
        }
        if (*seen && value != *n)
            return false;
        *n = value;
        *seen = true;
        i += digits;
        if (i == v.len)
            return true;
        i += span(v, i, " \t");
        if (i == v.len || v.ptr[i] != ',')
            return false;
        i++;
        i += span(v, i, " \t");
    }
}

/* What our parser must answer for the field line d->line, given the head's lines before it:
 * 0 if the field is fine, else the status. For Host, Content-Length, Transfer-Encoding,
 * Connection and Expect. */
static int field_status(const struct diff *d)
{
    struct slice v = trim(field_value(d->line)), line;
    size_t pos = (size_t)(d->request.ptr + d->request.len - d->buf);

    if (has_name(d->line, "host"))
        return v.len > 0 && valid_host(v) && !head_has_field(d, "host") ? 0 : 400;
    if (has_name(d->line, "expect"))
        return v.len == 12 && strncasecmp(v.ptr, "100-continue", 12) == 0 ? 0 : 417;
    if (has_name(d->line, "connection"))
        return token_list(v, NULL, NULL) ? 0 : 400;
    if (has_name(d->line, "content-length")) {
        uint64_t n = 0;
        bool seen = false;
        if (head_has_field(d, "transfer-encoding"))
            return 400;
        while (next_line(d->head, &pos, &line)) {
            if (has_name(line, "content-length"))
                content_length_value(trim(field_value(line)), &n, &seen);
        }
        if (!content_length_value(v, &n, &seen))
            return 400;
        return n > HTTP_MAX_BODY_LEN ? 413 : 0;
    }
    if (has_name(d->line, "transfer-encoding")) {
        struct codings c = {false, false, 0};
        if (is_http10(d) || head_has_field(d, "content-length"))
            return 400;
        while (next_line(d->head, &pos, &line)) {
            if (has_name(line, "transfer-encoding"))
                token_list(trim(field_value(line)), add_coding, &c);
        }
        bool list = token_list(v, add_coding, &c);
        return c.status != 0 ? c.status : list ? 0 : 400; /* the first error, left to right */
    }
    return 0;
}

/* Whether the request line's target is one our parser must take: origin-form; absolute-form
 * with http or https, an authority that is a valid host, and no brackets after it; "*" for
 * OPTIONS; an authority for CONNECT. Characters are target_characters()'s business. */
static bool valid_target_form(struct slice method, struct slice t)
{
    if (t.len > 0 && t.ptr[0] == '/')
        return true;
    if (t.len == 1 && t.ptr[0] == '*')
        return method.len == 7 && memcmp(method.ptr, "OPTIONS", 7) == 0;
    if (method.len == 7 && memcmp(method.ptr, "CONNECT", 7) == 0)
        return valid_host(t);
    size_t scheme = starts_with_nocase(t, "http://")    ? 7
                    : starts_with_nocase(t, "https://") ? 8
                                                        : 0;
    if (scheme == 0)
        return false;
    const char *query = memchr(t.ptr, '?', t.len);
    size_t path_end = query != NULL ? (size_t)(query - t.ptr) : t.len;
    size_t authority_end = scheme;
    while (authority_end < path_end && t.ptr[authority_end] != '/')
        authority_end++;
    struct slice authority = {t.ptr + scheme, authority_end - scheme};
    struct slice rest = {t.ptr + authority_end, t.len - authority_end};
    return authority.len > 0 && valid_host(authority) && !contains(rest, "[]");
}

/* ---------------------------------------------------------------------------------------------
 * The intended differences: one predicate each, numbered as in DIFFERENCES.md, which says why.
 * A predicate says whether the disagreement in d is that difference: where our parser refused
 * and with which status, or what http_parser refused where ours did not.
 */

static bool ours_refused(const struct diff *d, int status)
{
    return d->place != NOWHERE && d->status == status;
}

static bool is_line(const struct diff *d, enum place a, enum place b)
{
    return d->place == a || d->place == b;
}

/* http_parser refused the head (or, if body, the body) with error e; ours did not. */
static bool theirs_refused(const struct diff *d, bool body, enum http_errno e)
{
    const struct view *o = d->ours, *t = d->theirs;
    if (t->error != e)
        return false;
    return body ? o->head == ACCEPTED && o->body != REJECTED && t->body == REJECTED
                : o->head != REJECTED && t->head == REJECTED;
}

/* The line of the input that holds byte i. */
static struct slice line_at(const struct diff *d, size_t i)
{
    size_t start = line_start(d->buf, i + 1), end = i;
    while (end < d->size && d->buf[end] != '\n')
        end++;
    return (struct slice){d->buf + start, end - start + (end < d->size)};
}

/* The byte where http_parser found its error, or 0. */
static char theirs_error_byte(const struct diff *d)
{
    if (d->theirs->error_at >= d->size)
        return '\0';
    return d->buf[d->theirs->error_at];
}

/* 1. Line ends: CRLF only; a bare LF or a bare CR is a 400. */
static bool line_ends(const struct diff *d)
{
    return ours_refused(d, 400) && (ends_with_bare_lf(d->line) || ends_with_bare_cr(d->line));
}

/* 2. No obs-fold: a field line (or trailer line) starting with whitespace is a 400. */
static bool obs_fold(const struct diff *d)
{
    return ours_refused(d, 400) && is_line(d, FIELD_LINE, TRAILER_LINE) && d->line.len > 0 &&
           (d->line.ptr[0] == ' ' || d->line.ptr[0] == '\t');
}

/* 3. No whitespace in a field name, nor between it and the colon. */
static bool whitespace_in_field_name(const struct diff *d)
{
    return ours_refused(d, 400) && is_line(d, FIELD_LINE, TRAILER_LINE) &&
           contains(field_name(d->line), " \t");
}

/* 4. No control character in a field value: http_parser misses one that starts the value. */
static bool control_at_value_start(const struct diff *d)
{
    if (!ours_refused(d, 400) || !is_line(d, FIELD_LINE, TRAILER_LINE))
        return false;
    struct slice v = field_value(d->line);
    size_t ows = span(v, 0, " \t");
    unsigned char c = ows < v.len ? (unsigned char)v.ptr[ows] : 'x';
    return (c < 0x20 && c != '\t') || c == 0x7f;
}

/* 5. At most HTTP_MAX_LEADING_EMPTY_LINES empty lines before the request line. */
static bool leading_empty_lines(const struct diff *d)
{
    return ours_refused(d, 400) && d->place == LEADING_LINE &&
           d->head.len == 2 * HTTP_MAX_LEADING_EMPTY_LINES && d->line.len == 2 &&
           memcmp(d->line.ptr, "\r\n", 2) == 0;
}

/* 6. The request line: one SP between its parts, and no other whitespace. */
static bool request_line_whitespace(const struct diff *d)
{
    if (!ours_refused(d, 400) || d->place != REQUEST_LINE)
        return false;
    struct request_line r = split_request_line(d->line);
    return contains(d->line, "\t\v\f") || r.spaces > 2 || r.method.len == 0 || r.target.len == 0 ||
           (r.spaces == 2 && r.version.len == 0);
}

/* 7. No HTTP/0.9: a request line without a version is a 400. */
static bool http09(const struct diff *d)
{
    return ours_refused(d, 400) && d->place == REQUEST_LINE &&
           split_request_line(d->line).spaces < 2;
}

/* 8. HTTP/1.0 and HTTP/1.1 only (505), and the version exactly "HTTP/" DIGIT "." DIGIT (400). */
static bool version(const struct diff *d)
{
    return (ours_refused(d, 505) || ours_refused(d, 400)) && d->place == REQUEST_LINE &&
           !is_http10(d) && !is_http11(d);
}

/* 9. The methods we implement, and a 501 for any other token. */
static bool method(const struct diff *d)
{
    static const char *const OURS[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"};
    if (!ours_refused(d, 501) || d->place != REQUEST_LINE)
        return false;
    struct slice m = split_request_line(d->line).method;
    for (size_t i = 0; i < sizeof OURS / sizeof OURS[0]; i++) {
        if (m.len == strlen(OURS[i]) && memcmp(m.ptr, OURS[i], m.len) == 0)
            return false;
    }
    return true;
}

/* 10. The request-target's characters: RFC 3986's, and '%' followed by two hex digits. */
static bool target_characters(const struct diff *d)
{
    static const char ALLOWED[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                                  "-._~!$&'()*+,;=:@/?%";
    if (!ours_refused(d, 400) || d->place != REQUEST_LINE)
        return false;
    struct slice t = split_request_line(d->line).target;
    for (size_t i = 0; i < t.len; i++) {
        char c = t.ptr[i];
        if (c == '[' || c == ']') {
            if (t.ptr[0] == '/')
                return true; /* brackets belong in an absolute-form's host only */
            continue;
        }
        if (c == '\0' || strchr(ALLOWED, c) == NULL)
            return true;
        if (c == '%' && (i + 2 >= t.len || !isxdigit((unsigned char)t.ptr[i + 1]) ||
                         !isxdigit((unsigned char)t.ptr[i + 2])))
            return true;
    }
    return false;
}

/* 11. The request-target's form: absolute-form only with http or https and a valid authority
 * without userinfo; asterisk-form only for OPTIONS; authority-form only for CONNECT. */
static bool target_form(const struct diff *d)
{
    if (!ours_refused(d, 400) || d->place != REQUEST_LINE)
        return false;
    struct request_line r = split_request_line(d->line);
    return !valid_target_form(r.method, r.target);
}

/* 12. Limits: the request-target (414), the head and its number of fields (431). */
static bool limits(const struct diff *d)
{
    if (ours_refused(d, 414))
        return d->place == REQUEST_LINE &&
               split_request_line(d->line).target.len > HTTP_MAX_TARGET_LEN;
    if (!ours_refused(d, 431) || d->place >= CHUNK_SIZE_LINE)
        return false;
    size_t lines = 0, pos = 0;
    struct slice line;
    while (next_line(d->head, &pos, &line))
        lines++;
    return d->head.len + d->line.len > HTTP_MAX_HEAD_LEN || lines > HTTP_MAX_FIELDS;
}

/* 13. Host: required in HTTP/1.1, at most once, and a valid uri-host [ ":" port ]. */
static bool host(const struct diff *d)
{
    if (!ours_refused(d, 400))
        return false;
    if (d->place == FIELD_LINE)
        return has_name(d->line, "host") && field_status(d) == 400;
    return d->place == BLANK_LINE && is_http11(d) && !head_has_field(d, "host");
}

/* 14. Content-Length: 1*DIGIT (or a list of one value, see 19), at most HTTP_MAX_BODY_LEN. */
static bool content_length(const struct diff *d)
{
    return (ours_refused(d, 400) || ours_refused(d, 413)) && d->place == FIELD_LINE &&
           has_name(d->line, "content-length") && field_status(d) == d->status;
}

/* 15. No Transfer-Encoding in HTTP/1.0. */
static bool transfer_encoding_in_http10(const struct diff *d)
{
    return ours_refused(d, 400) && d->place == FIELD_LINE &&
           has_name(d->line, "transfer-encoding") && is_http10(d);
}

/* 16. Transfer codings: a list of tokens, chunked once and last, 501 for one we lack. */
static bool transfer_codings(const struct diff *d)
{
    return (ours_refused(d, 400) || ours_refused(d, 501)) && d->place == FIELD_LINE &&
           has_name(d->line, "transfer-encoding") && field_status(d) == d->status;
}

/* 17. Connection: a list of tokens. */
static bool connection(const struct diff *d)
{
    return ours_refused(d, 400) && d->place == FIELD_LINE && has_name(d->line, "connection") &&
           field_status(d) == 400;
}

/* 18. Expect: 100-continue, or 417. */
static bool expect(const struct diff *d)
{
    return ours_refused(d, 417) && d->place == FIELD_LINE && has_name(d->line, "expect") &&
           field_status(d) == 417;
}

/* 19. Content-Length repeated, or as a list, with one value: accepted (RFC 9110 8.6). */
static bool content_length_repeated(const struct diff *d)
{
    if (!theirs_refused(d, false, HPE_UNEXPECTED_CONTENT_LENGTH) &&
        !theirs_refused(d, false, HPE_INVALID_CONTENT_LENGTH))
        return false;
    struct slice line;
    size_t pos = 0, count = 0;
    bool list = false;
    while (next_line((struct slice){d->buf, d->theirs->error_at + 1}, &pos, &line)) {
        if (has_name(line, "content-length")) {
            count++;
            list |= memchr(line.ptr, ',', line.len) != NULL;
        }
    }
    return count > 1 || list;
}

/* 20. http_parser takes a field whose name only begins with "Transfer-Encoding" for one, then
 * refuses it for not ending in chunked, or for standing beside a Content-Length. */
static bool transfer_encoding_prefix(const struct diff *d)
{
    if (!theirs_refused(d, false, HPE_INVALID_TRANSFER_ENCODING) &&
        !theirs_refused(d, false, HPE_UNEXPECTED_CONTENT_LENGTH))
        return false;
    struct slice line;
    size_t pos = 0;
    while (next_line((struct slice){d->buf, d->theirs->error_at + 1}, &pos, &line)) {
        struct slice n = field_name(line);
        if (n.len > 17 && n.len < line.len && strncasecmp(n.ptr, "transfer-encoding", 17) == 0)
            return true;
    }
    return false;
}

/* 21. Trailer fields are dropped unread; http_parser refuses a Content-Length or a
 * Transfer-Encoding there as it would in a head. */
static bool framing_fields_in_trailers(const struct diff *d)
{
    if (!theirs_refused(d, true, HPE_INVALID_CONTENT_LENGTH) &&
        !theirs_refused(d, true, HPE_UNEXPECTED_CONTENT_LENGTH) &&
        !theirs_refused(d, true, HPE_INVALID_TRANSFER_ENCODING))
        return false;
    struct slice line;
    size_t pos = d->ours->head_len;
    while (next_line((struct slice){d->buf, d->theirs->error_at + 1}, &pos, &line)) {
        struct slice n = field_name(line);
        if ((n.len >= 14 && strncasecmp(n.ptr, "content-length", 14) == 0) ||
            (n.len >= 17 && strncasecmp(n.ptr, "transfer-encoding", 17) == 0))
            return true;
    }
    return false;
}

/* Whether a list (a field value) has an empty element: none but OWS, a comma first or last, or
 * two commas with only OWS between them. */
static bool has_empty_element(struct slice v)
{
    v = trim(v);
    if (v.len == 0 || v.ptr[0] == ',' || v.ptr[v.len - 1] == ',')
        return true;
    for (size_t i = 0; i < v.len; i++) {
        size_t next = i + 1 + span(v, i + 1, " \t");
        if (v.ptr[i] == ',' && next < v.len && v.ptr[next] == ',')
            return true;
    }
    return false;
}

/* Whether a field of the (accepted) head with this name has a value as `test` says. */
static bool head_field_such_that(const struct diff *d, const char *name,
                                 bool (*test)(struct slice value))
{
    struct slice line;
    size_t pos = 0;
    while (next_line((struct slice){d->buf, d->ours->head_len}, &pos, &line)) {
        if (has_name(line, name) && test(field_value(line)))
            return true;
    }
    return false;
}

/* The Connection options that matter, read as RFC 9110 7.6.1 has them. */
struct options {
    bool close, keep_alive;
};

static void add_option(struct slice option, void *arg)
{
    struct options *o = arg;
    if (option.len == 5 && strncasecmp(option.ptr, "close", 5) == 0)
        o->close = true;
    if (option.len == 10 && strncasecmp(option.ptr, "keep-alive", 10) == 0)
        o->keep_alive = true;
}

/* Whether the connection stays open after this (accepted) head, by RFC 9112 9.3. */
static bool keeps_alive(const struct diff *d)
{
    struct options o = {false, false};
    struct slice line;
    size_t pos = 0;
    while (next_line((struct slice){d->buf, d->ours->head_len}, &pos, &line)) {
        if (has_name(line, "connection"))
            token_list(trim(field_value(line)), add_option, &o);
    }
    return !o.close && (d->ours->minor == 1 || o.keep_alive);
}

static bool has_htab(struct slice v)
{
    return contains(v, "\t");
}

/* 22. Lists and whitespace as RFC 9110 5.6.1 and 5.6.3 have them: empty elements ignored, OWS
 * is SP or HTAB. http_parser finds no chunked in "chunked,", ", chunked" or "chunked<HTAB>",
 * refuses a HTAB after a Content-Length, and misreads Connection lists in many ways (after an
 * empty element, a HTAB, the start of another option as in "cl,close", "x,_,close"...): there,
 * ours must agree with the RFC's reading. */
static bool whitespace_and_lists(const struct diff *d)
{
    if (theirs_refused(d, false, HPE_INVALID_CONTENT_LENGTH))
        return theirs_error_byte(d) == '\t' &&
               has_name(line_at(d, d->theirs->error_at), "content-length");
    if (theirs_refused(d, false, HPE_INVALID_TRANSFER_ENCODING))
        return d->ours->framing == HTTP_BODY_CHUNKED &&
               (head_field_such_that(d, "transfer-encoding", has_empty_element) ||
                head_field_such_that(d, "transfer-encoding", has_htab));
    return d->ours->head == ACCEPTED && d->what != NULL && strcmp(d->what, "keep-alive") == 0 &&
           d->ours->keep_alive == keeps_alive(d);
}

/* 23. A line is judged once it is complete: http_parser may refuse one before its end has come,
 * where ours waits. Shown by ending the line, whereupon ours must refuse it too. */
static bool judged_when_complete(const struct diff *d)
{
    const struct view *o = d->ours, *t = d->theirs;
    bool body = o->head == ACCEPTED;
    if (body ? (o->body != INCOMPLETE || t->body != REJECTED)
             : (o->head != INCOMPLETE || t->head != REJECTED))
        return false;
    size_t from = body ? o->head_len : 0;
    if (d->size == from)
        return false;
    size_t last = line_start(d->buf + from, d->size - from) + from; /* the unended line */
    if (t->error_at < last || memchr(d->buf + last, '\n', d->size - last) != NULL)
        return false;

    size_t len = d->size - from;
    char *ended = malloc(len + 2);
    check(ended != NULL, "out of memory");
    memcpy(ended, d->buf + from, len);
    if (ended[len - 1] != '\r')
        ended[len++] = '\r';
    ended[len++] = '\n';
    bool refused = body ? ours_rejects_body(ended, len) : ours_rejects_head(ended, len);
    free(ended);
    return refused;
}

/* 24. Chunk extensions follow RFC 9112 7.1.1, with no whitespace before the CRLF: http_parser
 * skips whatever follows the size, but refuses a HTAB (BWS) right after it. */
static bool chunk_extensions(const struct diff *d)
{
    if (theirs_refused(d, true, HPE_INVALID_CHUNK_SIZE) && theirs_error_byte(d) == '\t') {
        struct slice line = line_at(d, d->theirs->error_at);
        size_t digits = span(line, 0, "0123456789abcdefABCDEF");
        return digits > 0 && line.ptr + digits == d->buf + d->theirs->error_at;
    }
    size_t digits = span(d->line, 0, "0123456789abcdefABCDEF");
    return ours_refused(d, 400) && d->place == CHUNK_SIZE_LINE && digits > 0 &&
           digits < d->line.len && strchr(" \t;", d->line.ptr[digits]) != NULL;
}

/* 25. http_parser reads a byte over 0x7f in a chunk size as the digit 0. */
static bool chunk_size_high_byte(const struct diff *d)
{
    if (!ours_refused(d, 400) || d->place != CHUNK_SIZE_LINE)
        return false;
    for (size_t i = 0; i < d->line.len; i++) {
        unsigned char c = (unsigned char)d->line.ptr[i];
        if (c >= 0x80)
            return true;
        if (!isxdigit(c))
            break;
    }
    return false;
}

/* 26. The CRLF after chunk data is checked. */
static bool chunk_data_crlf(const struct diff *d)
{
    return ours_refused(d, 400) && d->place == CHUNK_DATA_END;
}

/* 27. Limits on chunked bodies: the decoded body and the framing (413), the trailers (431). */
static bool chunked_limits(const struct diff *d)
{
    return (ours_refused(d, 413) && d->place == CHUNK_SIZE_LINE) ||
           (ours_refused(d, 431) && d->place == TRAILER_LINE);
}

/* Every predicate, in DIFFERENCES.md's order; each comment is the heading there. */
static bool (*const DIFFERENCES[])(const struct diff *d) = {
    line_ends, /* 1. Line ends */
    obs_fold, /* 2. obs-fold */
    whitespace_in_field_name, /* 3. Whitespace in a field name */
    control_at_value_start, /* 4. A control character at the start of a value */
    leading_empty_lines, /* 5. Empty lines before the request line */
    request_line_whitespace, /* 6. Whitespace in the request line */
    http09, /* 7. HTTP/0.9 */
    version, /* 8. Versions */
    method, /* 9. Methods */
    target_characters, /* 10. Characters in the request-target */
    target_form, /* 11. Forms of the request-target */
    limits, /* 12. Limits on the head */
    host, /* 13. Host */
    content_length, /* 14. Content-Length */
    transfer_encoding_in_http10, /* 15. Transfer-Encoding in HTTP/1.0 */
    transfer_codings, /* 16. Transfer codings */
    connection, /* 17. Connection */
    expect, /* 18. Expect */
    content_length_repeated, /* 19. Content-Length repeated */
    transfer_encoding_prefix, /* 20. Names that begin with Transfer-Encoding */
    framing_fields_in_trailers, /* 21. Framing fields in trailers */
    whitespace_and_lists, /* 22. Whitespace and empty list elements */
    judged_when_complete, /* 23. When an error is reported */
    chunk_extensions, /* 24. Chunk extensions */
    chunk_size_high_byte, /* 25. A high byte in a chunk size */
    chunk_data_crlf, /* 26. The CRLF after chunk data */
    chunked_limits, /* 27. Limits on chunked bodies */
};

/* ---------------------------------------------------------------------------------------------
 * The target
 */

static const char *const VERDICT[] = {"incomplete", "rejected", "accepted"};

static void print_bytes(const char *label, const char *p, size_t n)
{
    fprintf(stderr, "%s\"", label);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        fprintf(stderr, c >= 0x20 && c < 0x7f && c != '"' && c != '\\' ? "%c" : "\\x%02x", c);
    }
    fprintf(stderr, "\"\n");
}

static void report(const struct diff *d)
{
    fprintf(stderr,
            "ours: head %s, body %s, status %d; http_parser: head %s, body %s (%s at %zu)\n",
            VERDICT[d->ours->head], VERDICT[d->ours->body], d->status, VERDICT[d->theirs->head],
            VERDICT[d->theirs->body], http_errno_name(d->theirs->error), d->theirs->error_at);
    if (d->place != NOWHERE)
        print_bytes("our parser refused this line: ", d->line.ptr, d->line.len);
    fprintf(stderr, "the parsers differ: %s; no listed difference explains it\n", d->what);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = copy_of(data, size);
    struct view ours, theirs;
    parse_ours(buf, size, &ours);
    parse_theirs(buf, size, &theirs);

    struct diff d = {.buf = buf, .size = size, .ours = &ours, .theirs = &theirs};
    if ((ours.head == REJECTED) != (theirs.head == REJECTED) ||
        (ours.head == ACCEPTED) != (theirs.head == ACCEPTED))
        d.what = "head verdict";
    else if (ours.head == ACCEPTED)
        d.what = head_difference(&ours, &theirs);
    if (d.what == NULL && ours.head == ACCEPTED && ours.framing == HTTP_BODY_CHUNKED &&
        !theirs.upgrade) {
        parse_ours_body(buf, size, &ours);
        d.what = body_difference(&ours, &theirs);
    }

    if (d.what != NULL) {
        d.status = ours.status;
        if (ours.head == REJECTED)
            locate_head_error(&d);
        else if (ours.body == REJECTED)
            locate_body_error(&d);
        bool explained = false;
        for (size_t i = 0; i < sizeof DIFFERENCES / sizeof DIFFERENCES[0] && !explained; i++)
            explained = DIFFERENCES[i](&d);
        if (!explained) {
            report(&d);
            fail("a difference that DIFFERENCES.md does not list");
        }
    }
    free(ours.decoded);
    free(theirs.decoded);
    free(buf);
    return 0;
}
