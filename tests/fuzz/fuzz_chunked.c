/*
 * fuzz_chunked.c - libFuzzer target for the chunked-body decoder of shared/http_parse.c
 * (http_chunked_scan() and http_chunked_squeeze()), on its own.
 *
 * The first byte of each input picks two split points; the rest is taken as the bytes that
 * follow a head announcing "Transfer-Encoding: chunked". Checked:
 *   1. the scan in one call agrees with a reference decoder written below: the same status
 *      (done after n bytes, need more, or the same error), and, when done, the same decoded
 *      body as http_chunked_squeeze() leaves at the front of the buffer;
 *   2. the scan in three calls (the two split points, then everything), each on a fresh copy of
 *      the bytes so far, gives the one-call answer: the first call that does not ask for more
 *      must answer as the one call did;
 *   3. the squeeze writes nothing past the n bytes the scan took, and the decoded length stays
 *      within HTTP_MAX_BODY_LEN.
 *
 * Why a reference decoder. The scanner is built for speed and for bytes that arrive in pieces:
 * it keeps offsets between calls, skips chunk data without looking at it, and squeezes in place
 * afterwards. The reference does none of that: one pass over the whole input, every rule of
 * RFC 9112 7.1 written out in the plainest way, the body copied out as it goes. Where they
 * disagree, one of them is wrong. The reference follows the scanner's documented rules on *when*
 * an error is reported (a line is judged once its end has come, or once it is longer than its
 * limit: see http_parse.c) and on which limit gives which status (http_parse.h).
 *
 * Over-reads are caught by AddressSanitizer: every buffer is allocated at its exact size.
 */
#include "../../shared/http_parse.h"
#include "fuzz_check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------------------------------
 * The reference decoder
 */

/* How far an element of the grammar got: matched, ran out of bytes, or met a wrong byte. */
enum result { BAD = -1, MORE = 0, OK = 1 };

/* The bytes of one line still to read: [p, end), where end is the input's end or the line's
 * limit, whichever comes first. */
struct cursor {
    const uint8_t *p, *end;
};

static bool at_end(const struct cursor *c)
{
    return c->p == c->end;
}

static bool is_tchar(uint8_t c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static int hex_digit(uint8_t c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20; /* upper-case letters to lower case */
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* VCHAR, obs-text, SP and HTAB: what a field value or a quoted-string may hold. */
static bool is_vchar_or_ws(uint8_t c)
{
    return c == '\t' || (c >= ' ' && c != 0x7f);
}

static void skip_bws(struct cursor *c)
{
    while (!at_end(c) && (*c->p == ' ' || *c->p == '\t'))
        c->p++;
}

static enum result crlf(struct cursor *c)
{
    if (at_end(c))
        return MORE;
    if (*c->p != '\r')
        return BAD;
    if (c->p + 1 == c->end)
        return MORE;
    if (c->p[1] != '\n')
        return BAD;
    c->p += 2;
    return OK;
}

/* 1*tchar; running into the end may mean the token goes on. */
static enum result token(struct cursor *c)
{
    const uint8_t *start = c->p;
    while (!at_end(c) && is_tchar(*c->p))
        c->p++;
    if (at_end(c))
        return MORE;
    return c->p > start ? OK : BAD;
}

/* DQUOTE *( qdtext / "\" (HTAB / SP / VCHAR / obs-text) ) DQUOTE */
static enum result quoted_string(struct cursor *c)
{
    c->p++; /* the opening quote */
    for (;;) {
        if (at_end(c))
            return MORE;
        uint8_t b = *c->p++;
        if (b == '"')
            return OK;
        if (b == '\\') {
            if (at_end(c))
                return MORE;
            b = *c->p++;
        }
        if (!is_vchar_or_ws(b))
            return BAD;
    }
}

/* chunk-size [ chunk-ext ] CRLF, where chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS value ] ).
 * BWS is whitespace that may only stand before a ';', a name, a '=' or a value: not before the
 * CRLF. */
static enum result chunk_size_line(struct cursor *c, uint64_t *size)
{
    const uint8_t *start = c->p;
    *size = 0;
    while (!at_end(c) && hex_digit(*c->p) >= 0) {
        if (*size >> 60 != 0)
            return BAD; /* a 17th significant digit: over 64 bits */
        *size = *size * 16 + (uint64_t)hex_digit(*c->p++);
    }
    if (at_end(c))
        return MORE;
    if (c->p == start)
        return BAD;

    for (;;) {
        const uint8_t *before_ws = c->p;
        skip_bws(c);
        if (at_end(c))
            return MORE;
        if (*c->p != ';') {
            c->p = before_ws; /* not BWS after all: the CRLF must come right here */
            return crlf(c);
        }
        c->p++;
        skip_bws(c);
        enum result r = token(c);
        if (r != OK)
            return r;

        before_ws = c->p;
        skip_bws(c);
        if (at_end(c))
            return MORE;
        if (*c->p != '=') {
            c->p = before_ws; /* a name alone */
            continue;
        }
        c->p++;
        skip_bws(c);
        if (at_end(c))
            return MORE;
        r = *c->p == '"' ? quoted_string(c) : token(c);
        if (r != OK)
            return r;
    }
}

/* field-name ":" OWS field-value OWS CRLF. The line's bytes are checked first, up to its CRLF;
 * the name only once the line is known to be complete. */
static enum result trailer_field_line(struct cursor *c)
{
    const uint8_t *start = c->p;
    while (!at_end(c) && is_vchar_or_ws(*c->p))
        c->p++;
    enum result r = crlf(c);
    if (r != OK)
        return r;
    const uint8_t *name_end = start;
    while (is_tchar(*name_end))
        name_end++;
    return name_end > start && *name_end == ':' ? OK : BAD;
}

/* Whether the line starting at data[pos] has ended: its first CR or LF has come, and for a CR
 * the byte after it, whatever that is. */
static bool line_has_ended(const uint8_t *data, size_t len, size_t pos)
{
    while (pos < len && data[pos] != '\r' && data[pos] != '\n')
        pos++;
    return pos < len && (data[pos] == '\n' || pos + 1 < len);
}

/* What the scanner answers for a line that did not match (r is MORE or BAD): an error once the
 * line has ended or passed its limit, else "need more"; a line cut short by its limit gets the
 * limit's status. */
static ssize_t verdict(enum result r, const uint8_t *data, size_t len, size_t pos, size_t limit,
                       int over_limit_status)
{
    if (r == MORE)
        return len > limit ? -over_limit_status : HTTP_NEED_MORE;
    return len > limit || line_has_ended(data, len, pos) ? -400 : HTTP_NEED_MORE;
}

static size_t min_size(size_t a, size_t b)
{
    return a < b ? a : b;
}

/* The whole chunked body in data[0..len): returns what http_chunked_scan() must, and when that
 * is n > 0, the decoded body in out (room for len bytes) and its length in *out_len. */
static ssize_t reference_decode(const uint8_t *data, size_t len, uint8_t *out, size_t *out_len)
{
    size_t pos = 0;
    *out_len = 0;

    for (;;) { /* chunks, up to and including the last one */
        size_t limit = min_size(pos + HTTP_MAX_CHUNK_LINE_LEN, HTTP_MAX_CHUNKED_LEN);
        struct cursor c = {data + pos, data + min_size(len, limit)};
        uint64_t size;
        enum result r = chunk_size_line(&c, &size);
        if (r != OK)
            return verdict(r, data, len, pos, limit, 413);

        size_t data_start = (size_t)(c.p - data);
        if (size > HTTP_MAX_BODY_LEN - *out_len || data_start + size + 2 > HTTP_MAX_CHUNKED_LEN)
            return -413;
        pos = data_start;
        if (size == 0)
            break;

        size_t data_end = data_start + (size_t)size;
        if (len <= data_end)
            return HTTP_NEED_MORE;
        if (data[data_end] != '\r' || (data_end + 1 < len && data[data_end + 1] != '\n'))
            return -400;
        if (data_end + 1 == len)
            return HTTP_NEED_MORE;
        memcpy(out + *out_len, data + data_start, (size_t)size);
        *out_len += (size_t)size;
        pos = data_end + 2;
    }

    /* Trailer fields, then the CRLF that ends the body; all within HTTP_MAX_TRAILER_LEN. */
    size_t limit = pos + HTTP_MAX_TRAILER_LEN;
    for (;;) {
        struct cursor c = {data + pos, data + min_size(len, limit)};
        bool blank = !at_end(&c) && (*c.p == '\r' || *c.p == '\n');
        enum result r = blank ? crlf(&c) : trailer_field_line(&c);
        if (r != OK)
            return verdict(r, data, len, pos, limit, 431);
        pos = (size_t)(c.p - data);
        if (blank)
            return (ssize_t)pos;
    }
}

/* ---------------------------------------------------------------------------------------------
 * The target
 */

static ssize_t scan_once(const uint8_t *body, size_t len)
{
    struct http_chunked_parser c;
    char *copy = copy_of(body, len);
    http_chunked_parser_init(&c);
    ssize_t n = http_chunked_scan(&c, copy, len);
    free(copy);
    return n;
}

/* The scan in calls with len = cuts[0], cuts[1], ... (ascending), each on a fresh copy: the
 * answer of the first call that does not ask for more, or of the last. */
static ssize_t scan_in_pieces(const uint8_t *body, const size_t *cuts, size_t count)
{
    struct http_chunked_parser c;
    ssize_t n = HTTP_NEED_MORE;
    http_chunked_parser_init(&c);
    for (size_t i = 0; i < count && n == HTTP_NEED_MORE; i++) {
        char *copy = copy_of(body, cuts[i]);
        n = http_chunked_scan(&c, copy, cuts[i]);
        free(copy);
    }
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    const uint8_t *body = data + 1;
    size_t len = size - 1;

    uint8_t *expected = malloc(len ? len : 1);
    size_t expected_len;
    if (expected == NULL)
        fail("out of memory");
    ssize_t want = reference_decode(body, len, expected, &expected_len);

    ssize_t n = scan_once(body, len);
    if (n != want) {
        fprintf(stderr, "scan: %zd, reference: %zd\n", n, want);
        fail("the scan disagrees with the reference decoder");
    }

    /* The two split points, in sixteenths of the body, in ascending order. */
    size_t a = (size_t)(data[0] & 0x0f) * len / 15, b = (size_t)(data[0] >> 4) * len / 15;
    size_t cuts[3] = {a < b ? a : b, a < b ? b : a, len};
    check(scan_in_pieces(body, cuts, 3) == n,
          "the scan in pieces disagrees with the one-call scan");

    if (n > 0) {
        char *buf = copy_of(body, len);
        size_t decoded = http_chunked_squeeze(buf, (size_t)n);
        check(decoded <= HTTP_MAX_BODY_LEN, "decoded body over the limit");
        check(decoded == expected_len && memcmp(buf, expected, decoded) == 0,
              "the squeezed body differs from the reference decoder's");
        check(memcmp(buf + n, body + n, len - (size_t)n) == 0, "the squeeze wrote past the body");
        free(buf);
    }
    free(expected);
    return 0;
}
