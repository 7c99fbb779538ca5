/*
 * http_parse.c - the HTTP/1.1 request parser. See http_parse.h for the interface.
 *
 * STRICT. The parser accepts what RFC 9112 and RFC 9110 say a request is, and nothing else.
 * Leniency in an HTTP parser is not kindness: when a proxy in front of us and we disagree on
 * where a line, a field or a body ends, an attacker can hide a second request inside the first
 * (request smuggling). So every doubtful byte is an error, answered with a status and a close.
 *
 * LINE ENDS. Every line must end with CRLF. RFC 9112 2.2 says a recipient MAY also accept a bare
 * LF; we do not, and answer 400: front ends that disagree about line ends are exactly the
 * smuggling setup above, and every real client sends CRLF. A bare CR is a 400 too (RFC 9112 2.2).
 *
 * WHEN AN ERROR IS REPORTED. A line is judged once it is complete, that is once its LF (or
 * whatever stands where its CRLF should be) has arrived; or, still incomplete, once it is longer
 * than it could ever be: a request line longer than MAX_REQUEST_LINE_LEN (its three parts at their
 * limits), or any line that passes HTTP_MAX_HEAD_LEN. Why not judge an incomplete line as soon as
 * something in it is wrong? Then the answer would depend on how the bytes were split into calls,
 * unless every call re-parsed the incomplete line, which costs quadratic time for a long line
 * arriving byte by byte. This way the answer depends only on the bytes: one call with all of them
 * answers exactly as any sequence of calls ending with them, and nothing is buffered past a limit.
 *
 * WHICH ERROR WINS. The first line that is wrong decides, even when later lines are wrong too.
 * Within a line:
 *   - the request line: its syntax from left to right (400; a method longer than
 *     HTTP_MAX_METHOD_LEN is 501 and a target longer than HTTP_MAX_TARGET_LEN is 414, at the
 *     point where they pass the limit), then the version (505), then the method (501);
 *   - a field line: its syntax (400), then what the field says: Host (400), Content-Length (400,
 *     then 413 when too large), Transfer-Encoding (400, then 501 for a coding we lack), Connection
 *     (400), Expect (417); a field line beyond HTTP_MAX_FIELDS is 431;
 *   - the line that passes HTTP_MAX_HEAD_LEN: its error if it is wrong before that point, else 431;
 *   - the blank line that ends the head: no Host in HTTP/1.1 (400), a Transfer-Encoding whose last
 *     coding is not chunked (400).
 *
 * INCREMENTAL, IN LINEAR TIME. The caller passes all the bytes so far on every call. A call parses
 * lines left to right and remembers the offset of the first line it could not finish
 * (line_start). A head that arrives whole is parsed in one pass, each line once. When it arrives
 * in pieces, two things keep the total work linear:
 *   - while a line is incomplete, later calls only look at the new bytes for its end
 *     (line_scanned), and parse the line once that end has arrived;
 *   - what the finished lines said is kept in a few flags (a Host was seen, the Content-Length,
 *     ...). Their slices are not kept: the caller's buffer may have moved, and struct
 *     http_request may be another one. When the head completes, the lines parsed by earlier calls
 *     are walked once more to point the slices at the bytes where they are now.
 * The unit test counts the bytes looked at (HTTP_PARSE_COUNT_WORK): one pass for a whole head,
 * about three for a head arriving byte by byte.
 *
 * INTERNAL CONVENTION. Functions named parse_* read one syntactic element and return, like the
 * public functions, a positive count of bytes taken, HTTP_NEED_MORE when the bytes ran out first,
 * or a negated status. They return HTTP_NEED_MORE only after looking at every byte up to the end
 * (but perhaps the last), which lets the next call skip those bytes (see wait_for_more()).
 * Functions named take_* and apply_* also record what the element meant in the parser state.
 */
#include "http_parse.h"

#include <assert.h>
#include <string.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* What the head's lines have said so far (struct http_request_parser.flags). */
enum {
    SEEN_REQUEST_LINE = 1 << 0,
    HEAD_COMPLETE = 1 << 1,
    SEEN_HOST = 1 << 2,
    SEEN_CONTENT_LENGTH = 1 << 3,
    SEEN_TRANSFER_ENCODING = 1 << 4,
    CHUNKED_IS_LAST = 1 << 5, /* the last transfer coding so far is chunked */
    UNKNOWN_CODING = 1 << 6, /* a transfer coding we do not implement was listed */
    CONNECTION_CLOSE = 1 << 7,
    CONNECTION_KEEP_ALIVE = 1 << 8,
    EXPECT_CONTINUE = 1 << 9,
};

/* The longest a request line can be, CRLF included, with method and target at their limits. */
#define MAX_REQUEST_LINE_LEN (HTTP_MAX_METHOD_LEN + 1 + HTTP_MAX_TARGET_LEN + 1 + 8 + 2)

static_assert(sizeof(struct http_request_parser) <= 32, "the parser state must stay small");
static_assert(HTTP_MAX_FIELDS <= UINT8_MAX, "field_count and host_index are uint8_t");
static_assert(HTTP_MAX_CHUNKED_LEN + HTTP_MAX_TRAILER_LEN < UINT32_MAX, "offsets are uint32_t");

#ifdef HTTP_PARSE_COUNT_WORK
unsigned long long http_parse_work;

static void count_work(size_t bytes)
{
    http_parse_work += bytes;
}
#else
static void count_work(size_t bytes)
{
    (void)bytes;
}
#endif

/* ---------------------------------------------------------------------------------------------
 * Characters
 */

/*
 * tchar (RFC 9110 5.6.2), the characters of a token: method names, field names, transfer codings
 * and connection options. A table lookup is one load, where the grammar is twenty comparisons.
 */
// clang-format off
static const uint8_t token_char[256] = {
    /*       0  1  2  3  4  5  6  7  8  9  A  B  C  D  E  F */
    /* 0 */  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  /* control characters */
    /* 1 */  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  /* control characters */
    /* 2 */  0, 1, 0, 1, 1, 1, 1, 1, 0, 0, 1, 1, 0, 1, 1, 0,  /* SP ! " # $ % & ' ( ) * + , - . / */
    /* 3 */  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0,  /* 0-9 : ; < = > ? */
    /* 4 */  0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,  /* @ A-O */
    /* 5 */  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 1, 1,  /* P-Z [ \ ] ^ _ */
    /* 6 */  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,  /* ` a-o */
    /* 7 */  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 0, 1, 0,  /* p-z { | } ~ DEL */
    /* 0x80-0xFF: 0 */
};
// clang-format on

/*
 * The characters that may appear as they are in a request-target (RFC 3986), as two bits:
 *   URI_TARGET (1): in a request-target: unreserved (ALPHA DIGIT - . _ ~), sub-delims
 *                   (! $ & ' ( ) * + , ; =), and the delimiters ':' '@' '/';
 *   URI_HOST (2):   in a host name (reg-name) as well: unreserved and sub-delims.
 * So 3 is "anywhere", 1 is "in a target, not in a host name". Four more characters are allowed
 * in a target with conditions, see scan_target(): '?' (starts the query), '%' (must be followed
 * by two hex digits), '[' and ']' (only around an IPv6 host).
 */
enum { URI_TARGET = 1, URI_HOST = 2 };

// clang-format off
static const uint8_t uri_char[256] = {
    /*       0  1  2  3  4  5  6  7  8  9  A  B  C  D  E  F */
    /* 0 */  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  /* control characters */
    /* 1 */  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  /* control characters */
    /* 2 */  0, 3, 0, 0, 3, 0, 3, 3, 3, 3, 3, 3, 3, 3, 3, 1,  /* SP ! " # $ % & ' ( ) * + , - . / */
    /* 3 */  3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 1, 3, 0, 3, 0, 0,  /* 0-9 : ; < = > ? */
    /* 4 */  1, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,  /* @ A-O */
    /* 5 */  3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 0, 0, 0, 0, 3,  /* P-Z [ \ ] ^ _ */
    /* 6 */  0, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,  /* ` a-o */
    /* 7 */  3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 0, 0, 0, 3, 0,  /* p-z { | } ~ DEL */
    /* 0x80-0xFF: 0 */
};
// clang-format on

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* field-vchar (VCHAR / obs-text), SP or HTAB: what a field value may hold (RFC 9110 5.5). */
static bool is_value_char(char c)
{
    unsigned char u = (unsigned char)c;
    return (u >= 0x20 && u != 0x7f) || u == '\t';
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static char ascii_lower(char c)
{
    return (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
}

static struct http_slice make_slice(const char *ptr, size_t len)
{
    return (struct http_slice){ptr, len};
}

/* Whether s is exactly the given string (case-sensitive: methods). */
static bool slice_is(struct http_slice s, const char *text)
{
    return s.len == strlen(text) && memcmp(s.ptr, text, s.len) == 0;
}

static uint16_t load16(const char *s)
{
    uint16_t word;
    memcpy(&word, s, sizeof word); /* one unaligned load, wherever s points */
    return word;
}

static uint32_t load32(const char *s)
{
    uint32_t word;
    memcpy(&word, s, sizeof word); /* one unaligned load, wherever s points */
    return word;
}

static uint64_t load64(const char *s)
{
    uint64_t word;
    memcpy(&word, s, sizeof word);
    return word;
}

/*
 * Whether s is the given lower-case string, ignoring ASCII case (field names, tokens, schemes).
 *
 * A word at a time. Setting bit 0x20 of a byte (OR 0x20) lowers an upper-case letter, and every
 * character of `lower` already has that bit (letters, digits, '-', ':', '/'), so a word of s
 * matches when its OR equals the word of `lower`. The OR would also let through the control
 * character 0x20 below a non-letter (CR for '-', 0x10-0x19 for digits): no slice compared here
 * holds one, as they are tokens, URI characters or field values (whose only control character,
 * HTAB, becomes ')', in no string compared). Words of 8 bytes, the last one overlapping the one
 * before (4 bytes for strings of 4 to 7). A byte loop takes 10 instructions per character: for
 * "host", "connection" and "keep-alive" in the benchmark's pipelined request (tests/bench/parser),
 * 1,466 instructions per request with it, 1,261 with words (callgrind). Always inlined, so that
 * the length of `lower` is a constant and so are its words.
 */
__attribute__((always_inline)) static inline bool slice_is_ci(struct http_slice s,
                                                              const char *lower)
{
    const uint64_t bit_20 = 0x2020202020202020;
    size_t len = strlen(lower);

    if (s.len != len)
        return false;
    if (len < 4) {
        for (size_t i = 0; i < len; i++) {
            if (ascii_lower(s.ptr[i]) != lower[i])
                return false;
        }
        return true;
    }
    if (len < 8)
        return ((load32(s.ptr) | (uint32_t)bit_20) == load32(lower)) &&
               ((load32(s.ptr + len - 4) | (uint32_t)bit_20) == load32(lower + len - 4));
    for (size_t i = 0; i + 8 < len; i += 8) {
        if ((load64(s.ptr + i) | bit_20) != load64(lower + i))
            return false;
    }
    return (load64(s.ptr + len - 8) | bit_20) == load64(lower + len - 8);
}

/* ---------------------------------------------------------------------------------------------
 * Small scanners
 */

static const char *skip_ows(const char *s, const char *end)
{
    while (s < end && is_ows(*s))
        s++;
    return s;
}

/*
 * Skips the bytes that have `bit` set in uri_char[]. Four bytes per test while it can: the four
 * lookups do not depend on each other, so the CPU does them at once, and one branch decides for
 * four bytes, where a byte loop takes a branch per byte. It serves host names, and the rest of a
 * target after a rarer character (skip_target_chars() takes the usual ones 16 at a time); tokens
 * are short enough for a byte loop (see skip_token()).
 */
static const char *skip_uri_chars(const char *s, const char *end, uint8_t bit)
{
    while (end - s >= 4 && (uri_char[(unsigned char)s[0]] & uri_char[(unsigned char)s[1]] &
                            uri_char[(unsigned char)s[2]] & uri_char[(unsigned char)s[3]] & bit))
        s += 4;
    while (s < end && (uri_char[(unsigned char)*s] & bit))
        s++;
    return s;
}

/* Tokens are short (a method, the rare characters of a field name, a list element): a byte loop,
 * which is faster than the four-at-a-time test of skip_uri_chars() on a few bytes. */
static const char *skip_token(const char *s, const char *end)
{
    while (s < end && token_char[(unsigned char)*s])
        s++;
    return s;
}

/*
 * Every line ends with CRLF. Returns 2 when [s, end) starts with CRLF, HTTP_NEED_MORE when it is
 * empty or a CR whose LF may come next, and -400 otherwise: for a bare CR, and for a bare LF (see
 * LINE ENDS at the top), and for any other byte where a line should end.
 */
static ssize_t parse_crlf(const char *s, const char *end)
{
    if (end - s >= 2 && load16(s) == load16("\r\n")) /* the usual case, in one comparison */
        return 2;
    if (s == end)
        return HTTP_NEED_MORE;
    if (*s != '\r')
        return -400;
    if (s + 1 == end)
        return HTTP_NEED_MORE;
    return s[1] == '\n' ? 2 : -400;
}

/*
 * SSE2 is part of every x86-64 CPU, so there the hottest loops test 16 bytes at a time: each
 * function below returns a mask with one bit per byte, set where the byte stops the scan, and the
 * lowest set bit (__builtin_ctz) is the first such byte. Elsewhere, and for the last few bytes of
 * the buffer, byte loops do the same work.
 */
#ifdef __SSE2__
/* Bytes that cannot be in a field value: control characters but HTAB. */
__attribute__((always_inline)) static inline unsigned value_stops(__m128i bytes)
{
    const __m128i last_ctl = _mm_set1_epi8(0x1f), tab = _mm_set1_epi8('\t'),
                  del = _mm_set1_epi8(0x7f);

    /* SSE2 compares bytes as signed numbers, so "byte <= 0x1f" is computed as
     * "min(byte, 0x1f) == byte" with the unsigned minimum. */
    __m128i ctl = _mm_cmpeq_epi8(_mm_min_epu8(bytes, last_ctl), bytes);
    __m128i ctl_but_tab = _mm_andnot_si128(_mm_cmpeq_epi8(bytes, tab), ctl);
    __m128i stops = _mm_or_si128(ctl_but_tab, _mm_cmpeq_epi8(bytes, del));
    return (unsigned)_mm_movemask_epi8(stops);
}

/* Whether each byte lies in [low, high], for 0 < low <= high < 0x80, in two instructions (testing
 * both ends took four and a copy). SSE2 compares only signed bytes: adding 0x80 - low takes the
 * range to [-128, -128 + high - low], and every other byte above it (those below low wrap). */
__attribute__((always_inline)) static inline __m128i in_range(__m128i bytes, char low, char high)
{
    __m128i moved = _mm_add_epi8(bytes, _mm_set1_epi8((char)(0x80 - low)));
    return _mm_cmplt_epi8(moved, _mm_set1_epi8((char)(-128 + (high - low) + 1)));
}

/* Letters, digits and '-', of which nearly every field name and host name is made. */
__attribute__((always_inline)) static inline __m128i alnum_or_dash(__m128i bytes)
{
    /* Setting bit 0x20 turns an upper-case letter into lower case, and no other byte into one. */
    __m128i letter = in_range(_mm_or_si128(bytes, _mm_set1_epi8(0x20)), 'a', 'z');
    __m128i dash = _mm_cmpeq_epi8(bytes, _mm_set1_epi8('-'));
    return _mm_or_si128(_mm_or_si128(letter, in_range(bytes, '0', '9')), dash);
}

/* Bytes other than letters, digits and '-': the colon, or a rarer character of a name. */
__attribute__((always_inline)) static inline unsigned name_stops(__m128i bytes)
{
    return ~(unsigned)_mm_movemask_epi8(alnum_or_dash(bytes)) & 0xffff;
}

/* Bytes other than those that make up nearly every request-target: the three runs of uri_char[]
 * from '&' to ';' (with '-', '.', '/' and the digits), from '@' to 'Z', and the lower-case
 * letters; and '=' and '_'. */
__attribute__((always_inline)) static inline unsigned target_stops(__m128i bytes)
{
    __m128i usual = _mm_or_si128(_mm_or_si128(in_range(bytes, '&', ';'), in_range(bytes, '@', 'Z')),
                                 in_range(bytes, 'a', 'z'));
    usual = _mm_or_si128(usual, _mm_or_si128(_mm_cmpeq_epi8(bytes, _mm_set1_epi8('=')),
                                             _mm_cmpeq_epi8(bytes, _mm_set1_epi8('_'))));
    return ~(unsigned)_mm_movemask_epi8(usual) & 0xffff;
}

/* Bytes other than printable ASCII (SP to '~'): the CR that ends a value, nearly always, and the
 * rarer bytes a value may also hold (HTAB, obs-text) or may not. Two instructions and no copy,
 * where value_stops() takes six and two copies: adding 0x60 takes SP..'~' to -128..-34 (signed)
 * and every other byte to -33..127; adding 0x21 with signed saturation then leaves the sign bit set
 * on exactly the printable bytes. */
__attribute__((always_inline)) static inline unsigned unprintable(__m128i bytes)
{
    __m128i moved = _mm_adds_epi8(_mm_add_epi8(bytes, _mm_set1_epi8(0x60)), _mm_set1_epi8(0x21));
    return ~(unsigned)_mm_movemask_epi8(moved) & 0xffff;
}
#endif

/*
 * Returns the first byte in [s, end) that cannot be part of a field value, or end. [readable, end)
 * may all be read, and holds s.
 *
 * Nearly every value is printable ASCII up to its CR: the loop looks for the first byte that is
 * not, with unprintable(), and is done when that is a CR. A value holding an HTAB or obs-text goes
 * on in find_value_end_exact(). On the browser request of tests/bench/parser this took the parse
 * from 2,670 instructions to 2,303 (with the longer names in parse_field_line()), and its ratio to
 * picohttpparser's SSE4.2 build up by 7% and by 15%, in the two states of the machine that
 * tests/bench/parser/RESULTS.md describes.
 */
static const char *find_value_end_exact(const char *s, const char *end, const char *readable);

static const char *find_value_end(const char *s, const char *end, const char *readable)
{
#ifdef __SSE2__
    if (end - s >= 16) {
        const char *last = end - 16; /* the last place a 16-byte load fits */
        do {
            unsigned odd = unprintable(_mm_loadu_si128((const __m128i *)s));
            if (odd != 0) {
                const char *first = s + __builtin_ctz(odd);
                return *first == '\r' ? first : find_value_end_exact(s, end, readable);
            }
            s += 16;
        } while (s <= last);
    }
#endif
    return find_value_end_exact(s, end, readable);
}

/* The exact search, for a value that holds an HTAB or obs-text and for the last bytes of a
 * buffer: value_stops() 16 bytes at a time, then one load that ends at `end` (its first bytes
 * seen already) where [readable, end) holds 16 bytes; a byte loop without SSE2, or in a shorter
 * buffer. */
static const char *find_value_end_exact(const char *s, const char *end, const char *readable)
{
#ifdef __SSE2__
    for (; end - s >= 16; s += 16) {
        unsigned stops = value_stops(_mm_loadu_si128((const __m128i *)s));
        if (stops != 0)
            return s + __builtin_ctz(stops);
    }
    if (s < end && end - readable >= 16) {
        unsigned stops =
            value_stops(_mm_loadu_si128((const __m128i *)(end - 16))) >> (16 - (end - s));
        return stops != 0 ? s + __builtin_ctz(stops) : end;
    }
#else
    (void)readable;
#endif
    while (s < end && is_value_char(*s))
        s++;
    return s;
}

/* Returns the first byte in [s, end) that cannot be in a request-target as it is, or end. For
 * "/plaintext" and its SP, 52 instructions, where the four-at-a-time loop alone took 69
 * (callgrind). */
static const char *skip_target_chars(const char *s, const char *end)
{
#ifdef __SSE2__
    for (; end - s >= 16; s += 16) {
        unsigned stops = target_stops(_mm_loadu_si128((const __m128i *)s));
        if (stops != 0) {
            s += __builtin_ctz(stops);
            if (!(uri_char[(unsigned char)*s] & URI_TARGET))
                return s; /* the SP after the target, normally; or a '?', a '%' */
            break; /* a rarer character of a target, for the byte loop */
        }
    }
#endif
    return skip_uri_chars(s, end, URI_TARGET);
}

/* ---------------------------------------------------------------------------------------------
 * The request line (RFC 9112 3)
 */

/* method = token, then SP. Returns the method's length. */
static ssize_t parse_method(const char *line, const char *end)
{
    /* Most requests are GETs: one 4-byte comparison settles those, where the byte loop below
     * costs about 45 instructions (callgrind). */
    if (end - line >= 4 && load32(line) == load32("GET "))
        return 3;

    /* Look at most one byte past the limit: a token still going on there is too long. */
    size_t room = (size_t)(end - line);
    const char *stop = line + (room < HTTP_MAX_METHOD_LEN + 1 ? room : HTTP_MAX_METHOD_LEN + 1);
    const char *s = skip_token(line, stop);

    if (s - line > HTTP_MAX_METHOD_LEN)
        return -501; /* a valid token, but longer than any method we implement */
    if (s == end)
        return HTTP_NEED_MORE;
    if (*s != ' ' || s == line)
        return -400;
    return s - line;
}

/* What scan_target() noticed on its way, for split_target(). */
struct target_marks {
    const char *query; /* the first '?', or NULL */
    bool has_brackets; /* '[' or ']' seen: allowed only around an IPv6 host */
};

/*
 * Scans the request-target up to the SP after it, checking every byte against RFC 3986 (see
 * uri_char). Returns the target's length.
 */
static ssize_t scan_target(const char *target, const char *end, struct target_marks *marks)
{
    /* Look at most one byte past the limit: a target that has not ended there is too long. */
    size_t room = (size_t)(end - target);
    const char *stop = target + (room < HTTP_MAX_TARGET_LEN + 1 ? room : HTTP_MAX_TARGET_LEN + 1);
    const char *s = target;

    marks->query = NULL;
    marks->has_brackets = false;
    while ((s = skip_target_chars(s, stop)) < stop) {
        char c = *s;
        if (c == ' ') {
            return s > target ? s - target : -400;
        } else if (c == '?') {
            if (marks->query == NULL)
                marks->query = s;
            s++;
        } else if (c == '[' || c == ']') {
            marks->has_brackets = true;
            s++;
        } else if (c == '%') {
            /* Two hex digits must follow. Judge those that have come, even if the other has
             * not: "%" then a line end is wrong already, and must be reported as soon as the
             * line end has come (see WHEN AN ERROR IS REPORTED), not one byte later. */
            if ((stop - s > 1 && hex_value(s[1]) < 0) || (stop - s > 2 && hex_value(s[2]) < 0))
                return -400;
            if (stop - s < 3)
                break; /* its digits have not come yet, or would pass the limit */
            s += 3;
        } else {
            return -400;
        }
    }
    return room > HTTP_MAX_TARGET_LEN ? -414 : HTTP_NEED_MORE;
}

/* Host names are short, and often end the bytes received ("Host: localhost" CRLF CRLF), so their
 * test takes the 16 bytes that END with them: [readable, end) may all be read. One bit per byte of
 * the len bytes before end, set for other than a letter, a digit, '-' or '.' (rarer in hosts). */
#ifdef __SSE2__
__attribute__((always_inline)) static inline unsigned host_stops(const char *end, size_t len)
{
    __m128i bytes = _mm_loadu_si128((const __m128i *)(end - 16));
    __m128i usual = _mm_or_si128(alnum_or_dash(bytes), _mm_cmpeq_epi8(bytes, _mm_set1_epi8('.')));
    return (~(unsigned)_mm_movemask_epi8(usual) & 0xffff) >> (16 - len);
}
#endif

/* Skips the characters of a host name in [s, end) (URI_HOST in uri_char[]). */
static const char *skip_host_chars(const char *s, const char *end, const char *readable)
{
#ifdef __SSE2__
    size_t len = (size_t)(end - s);
    if (len <= 16 && end - readable >= 16) {
        unsigned stops = host_stops(end, len);
        if (stops == 0)
            return end;
        s += __builtin_ctz(stops);
    }
#else
    (void)readable;
#endif
    return skip_uri_chars(s, end, URI_HOST);
}

/*
 * Host = uri-host [ ":" port ] (RFC 9110 7.2, RFC 3986 3.2.2). uri-host is a reg-name (which an
 * IPv4 address also is, syntactically) or an IP-literal: here an IPv6 address in brackets (hex
 * digits, ':' and '.'); the rare IPvFuture and zone identifiers are refused. Empty is valid (RFC
 * 9112 3.2: the target had no authority); a port without a host is not. [readable, s + len) may
 * all be read. */
static bool is_valid_host_slow(const char *s, size_t len, const char *readable)
{
    const char *host = s, *end = s + len;

    if (s < end && *s == '[') {
        s++;
        while (s < end && (hex_value(*s) >= 0 || *s == ':' || *s == '.'))
            s++;
        if (s == end || *s != ']' || s == host + 1)
            return false;
        s++;
    } else {
        for (;;) {
            s = skip_host_chars(s, end, readable);
            if (s == end || *s != '%')
                break;
            if (end - s < 3 || hex_value(s[1]) < 0 || hex_value(s[2]) < 0)
                return false; /* pct-encoded is '%' and two hex digits */
            s += 3;
        }
    }
    if (s == end)
        return true;
    if (*s != ':' || s == host) /* not a port, or a port without a host (":80") */
        return false;
    for (s++; s < end; s++) { /* the port */
        if (!is_digit(*s))
            return false;
    }
    return true;
}

/* A host name of up to 16 letters, digits, '-' and '.' is judged here, inline, others by
 * is_valid_host_slow(). For "localhost", 11 instructions instead of 62 (callgrind). */
__attribute__((always_inline)) static inline bool is_valid_host(const char *s, size_t len,
                                                                const char *readable)
{
#ifdef __SSE2__
    if (len <= 16 && s + len - readable >= 16 && host_stops(s + len, len) == 0)
        return true;
#endif
    return is_valid_host_slow(s, len, readable);
}

/* "http://" or "https://", whose length it returns, or 0. Schemes are case-insensitive. */
static size_t http_scheme_len(struct http_slice target)
{
    if (target.len >= 7 && slice_is_ci(make_slice(target.ptr, 7), "http://"))
        return 7;
    if (target.len >= 8 && slice_is_ci(make_slice(target.ptr, 8), "https://"))
        return 8;
    return 0;
}

/*
 * absolute-form (RFC 9112 3.2.2): "http://" or "https://", an authority, then path-abempty
 * [ "?" query ]. The authority must not be empty (RFC 9110 4.2.1) nor carry userinfo: RFC 9110
 * 4.2.4 forbids it in http URIs, and a '@' in a host is a classic way to fool a filter. The
 * authority becomes req->host: the server MUST use it instead of the Host field (3.2.2).
 */
static ssize_t split_absolute_form(struct http_request *req, const char *path_end,
                                   const struct target_marks *marks)
{
    const char *target_end = req->target.ptr + req->target.len;
    size_t scheme_len = http_scheme_len(req->target);
    if (scheme_len == 0)
        return -400;

    const char *authority = req->target.ptr + scheme_len;
    const char *slash = memchr(authority, '/', (size_t)(path_end - authority));
    const char *authority_end = slash != NULL ? slash : path_end;
    size_t authority_len = (size_t)(authority_end - authority);
    if (authority_len == 0 || !is_valid_host(authority, authority_len, req->method_name.ptr))
        return -400;

    /* Brackets are fine in the authority, checked above, but nowhere after it. */
    size_t rest_len = (size_t)(target_end - authority_end);
    if (marks->has_brackets && (memchr(authority_end, '[', rest_len) != NULL ||
                                memchr(authority_end, ']', rest_len) != NULL))
        return -400;

    req->host = make_slice(authority, authority_len);
    if (slash != NULL) {
        req->path = make_slice(slash, (size_t)(path_end - slash));
    } else {
        /* An empty path means "/" (RFC 9110 4.2.3). Point at the '/' just before the authority
         * (the second of "//") so that this slice, like all others, lies in the caller's buffer:
         * a caller that moves its buffer can then rebase every slice the same way. */
        req->path = make_slice(authority - 1, 1);
    }
    return 0;
}

/*
 * Works out path, query and host from the target, by its form (RFC 9112 3.2). Returns 0, or -400
 * for a target that is valid URI syntax but not a request-target for this method.
 */
static ssize_t split_target(struct http_request *req, const struct target_marks *marks)
{
    const char *target = req->target.ptr, *target_end = target + req->target.len;
    const char *path_end = marks->query != NULL ? marks->query : target_end;

    if (marks->query != NULL)
        req->query = make_slice(marks->query + 1, (size_t)(target_end - marks->query - 1));
    else
        req->query = make_slice(NULL, 0);
    req->host = make_slice(NULL, 0); /* set by the Host field, when the head is complete */

    if (target[0] == '/') { /* origin-form: absolute-path [ "?" query ] */
        if (marks->has_brackets)
            return -400;
        req->path = make_slice(target, (size_t)(path_end - target));
        return 0;
    }
    if (req->target.len == 1 && target[0] == '*') { /* asterisk-form: "the server itself" */
        if (!slice_is(req->method_name, "OPTIONS"))
            return -400;
        req->path = req->target;
        return 0;
    }
    if (slice_is(req->method_name, "CONNECT")) { /* authority-form (it will get 501) */
        req->path = make_slice(target, 0);
        return is_valid_host(target, req->target.len, req->method_name.ptr) ? 0 : -400;
    }
    return split_absolute_form(req, path_end, marks);
}

/* Whether the n bytes at s could begin "HTTP/" DIGIT "." DIGIT. */
static bool is_version_prefix(const char *s, size_t n)
{
    static const char pattern[] = "HTTP/#.#"; /* '#' stands for a digit */

    for (size_t i = 0; i < n; i++) {
        bool matches = pattern[i] == '#' ? is_digit(s[i]) : s[i] == pattern[i];
        if (!matches)
            return false;
    }
    return true;
}

/* HTTP-version = "HTTP/" DIGIT "." DIGIT (RFC 9112 2.3), case-sensitive, then CRLF. */
static ssize_t parse_version(const char *s, const char *end, int *major, int *minor)
{
    size_t available = (size_t)(end - s);

    /* Nearly always "HTTP/1.1" and its CRLF: an 8-byte comparison and two bytes, instead of the
     * checks below, a byte at a time. */
    if (available >= 10 && load64(s) == load64("HTTP/1.1") && s[8] == '\r' && s[9] == '\n') {
        *major = 1;
        *minor = 1;
        return 10;
    }
    if (available < 8)
        return is_version_prefix(s, available) ? HTTP_NEED_MORE : -400;
    if (memcmp(s, "HTTP/", 5) != 0 || !is_digit(s[5]) || s[6] != '.' || !is_digit(s[7]))
        return -400;
    ssize_t n = parse_crlf(s + 8, end);
    if (n <= 0)
        return n;
    *major = s[5] - '0';
    *minor = s[7] - '0';
    return 8 + n;
}

/* Method names are case-sensitive (RFC 9110 9.1). Returns -1 for a method we do not implement. */
static int method_from_name(struct http_slice name)
{
    if (slice_is(name, "GET"))
        return HTTP_METHOD_GET;
    if (slice_is(name, "HEAD"))
        return HTTP_METHOD_HEAD;
    if (slice_is(name, "POST"))
        return HTTP_METHOD_POST;
    if (slice_is(name, "PUT"))
        return HTTP_METHOD_PUT;
    if (slice_is(name, "DELETE"))
        return HTTP_METHOD_DELETE;
    if (slice_is(name, "OPTIONS"))
        return HTTP_METHOD_OPTIONS;
    if (slice_is(name, "PATCH"))
        return HTTP_METHOD_PATCH;
    return -1;
}

/*
 * request-line = method SP request-target SP HTTP-version CRLF. Exactly one SP between the parts:
 * RFC 9112 3 lets a recipient split on other whitespace too, but then it may see a different
 * target than a proxy in front of it did.
 */
static ssize_t parse_request_line(const char *line, const char *end, struct http_request *req)
{
    const char *s = line;
    struct target_marks marks;
    int major, minor;
    ssize_t n;

    if ((n = parse_method(s, end)) <= 0)
        return n;
    req->method_name = make_slice(s, (size_t)n);
    s += n + 1; /* and the SP */

    if ((n = scan_target(s, end, &marks)) <= 0)
        return n;
    req->target = make_slice(s, (size_t)n);
    s += n + 1;
    if ((n = split_target(req, &marks)) < 0)
        return n;

    if ((n = parse_version(s, end, &major, &minor)) <= 0)
        return n;
    s += n;

    /* The line is well-formed; now, can we serve it? The version first, then the method. */
    if (major != 1 || minor > 1)
        return -505;
    int method = method_from_name(req->method_name);
    if (method < 0)
        return -501;
    req->method = (enum http_method)method;
    req->minor_version = minor;
    return s - line;
}

/*
 * The commonest request line, "GET ", an origin-form target of up to 15 characters that
 * target_stops() passes, " HTTP/1.1" CRLF: parsed here, inline, as parse_request_line() would, in
 * about 55 instructions where that takes 140 (callgrind; the short GET of tests/bench/parser went
 * from 483 to 399, from 1.13x to 1.29x picohttpparser). Other lines return 0 and go there, as all
 * do without SSE2: test_short_get_path (tests/unit) and fuzz_scan_paths check that both agree.
 */
__attribute__((always_inline)) static inline ssize_t
parse_short_get(const char *line, const char *end, struct http_request *req)
{
#ifdef __SSE2__
    const char *target = line + 4;
    if (end - target < 16 || load32(line) != load32("GET "))
        return 0;
    unsigned stops = target_stops(_mm_loadu_si128((const __m128i *)target));
    if (stops == 0)
        return 0;
    size_t target_len = (size_t)__builtin_ctz(stops); /* the usual characters end here */
    const char *version = target + target_len + 1;
    if (target[0] != '/' || target[target_len] != ' ' || end - version < 10 ||
        load64(version) != load64("HTTP/1.1") || load16(version + 8) != load16("\r\n"))
        return 0;

    req->method = HTTP_METHOD_GET;
    req->method_name = make_slice(line, 3);
    req->target = make_slice(target, target_len);
    /* No '?' (target_stops() stops it). Not copied from req->target: a 16-byte load of two 8-byte
     * stores just made waits for them to reach the cache (perf put 24% of the time there). */
    req->path = make_slice(target, target_len);
    req->query = make_slice(NULL, 0);
    req->host = make_slice(NULL, 0); /* set by the Host field, when the head is complete */
    req->minor_version = 1;
    return version + 10 - line;
#else
    (void)line, (void)end, (void)req;
    return 0;
#endif
}

/* ---------------------------------------------------------------------------------------------
 * Field lines (RFC 9112 5)
 */

/*
 * field-line = field-name ":" OWS field-value OWS, then CRLF (RFC 9112 5). The name is a token,
 * directly followed by the colon: so a line starting with whitespace (obs-fold, RFC 9112 5.2, or
 * whitespace after the request line, 2.2) is a 400, and so is whitespace before the colon (5.1).
 *
 * The line's end is found first, with one search from its start: every byte of a field line, the
 * name and colon included, must be a byte allowed in a field value. That search is what the next
 * line waits for; checking the name afterwards, while those few bytes are at hand, lets the CPU
 * do both at once, where searching for the value's end only after the name's end would make each
 * line wait for two searches in a row. With SSE2 both searches start from one load of the line's
 * first 16 bytes, which nearly always hold the name and its colon: "Host: localhost" took 96
 * instructions instead of 108 when this came in (callgrind).
 */
__attribute__((always_inline)) static inline ssize_t
parse_field_line(const char *line, const char *end, struct http_field *field)
{
    const char *line_end, *name_end = line; /* the name's usual characters end at name_end */
#ifdef __SSE2__
    if (end - line >= 16) {
        __m128i bytes = _mm_loadu_si128((const __m128i *)line);
        unsigned odd = unprintable(bytes), name_mask = name_stops(bytes);
        if (odd == 0)
            line_end = find_value_end(line + 16, end, line);
        else if (line[__builtin_ctz(odd)] == '\r')
            line_end = line + __builtin_ctz(odd);
        else
            line_end = find_value_end_exact(line, end, line);
        /* A name of more than 16 usual characters (Upgrade-Insecure-Requests, ...): the next 16,
         * rather than the byte loop. Every byte that stops a value stops a name too, so
         * name_end <= line_end. */
        if (name_mask == 0 && end - line >= 32)
            name_mask = name_stops(_mm_loadu_si128((const __m128i *)(line + 16))) << 16;
        name_end = line + (name_mask != 0 ? __builtin_ctz(name_mask) : 16);
    } else
#endif
        line_end = find_value_end(line, end, line);
    ssize_t n = parse_crlf(line_end, end); /* the search stopped at a CR, a byte not allowed, or
                                              the end */
    if (n <= 0)
        return n;

    /* The colon, normally; after a rarer token character or 16 usual ones, the byte loop goes on.
     */
    const char *colon = *name_end == ':' ? name_end : skip_token(name_end, line_end);
    if (colon == line_end || *colon != ':' || colon == line)
        return -400;
    field->name = make_slice(line, (size_t)(colon - line));

    /* OWS around the value: usually one SP before, none after. The CR ends the first loop; before
     * it, SP and HTAB are the only bytes up to 0x20 (find_value_end() stopped at any other). */
    const char *value = colon + 1, *value_end = line_end;
    if (*value == ' ')
        value++;
    while (is_ows(*value))
        value++;
    while (value_end > value && (unsigned char)value_end[-1] <= ' ')
        value_end--;
    field->value = make_slice(value, (size_t)(value_end - value));
    return line_end + n - line;
}

/*
 * The next element of a comma-separated list of tokens (RFC 9110 5.6.1), as in Connection and
 * Transfer-Encoding. Returns 1 and sets *token, 0 at the end of the list, or -400 for anything
 * that is not a list of tokens. Empty elements are skipped, as RFC 9110 5.6.1.2 asks.
 */
static int next_list_token(const char **cursor, const char *end, struct http_slice *token)
{
    const char *s = *cursor;
    while (s < end && (*s == ',' || is_ows(*s)))
        s++;
    if (s == end)
        return 0;

    const char *start = s;
    s = skip_token(s, end);
    if (s == start)
        return -400;
    *token = make_slice(start, (size_t)(s - start));

    s = skip_ows(s, end);
    if (s < end && *s != ',')
        return -400;
    *cursor = s;
    return 1;
}

/*
 * Parses a decimal number (1*DIGIT) at *cursor. Returns false if there is none or it does not
 * fit in 64 bits.
 */
static bool parse_decimal(const char **cursor, const char *end, uint64_t *number)
{
    const char *s = *cursor;
    uint64_t n = 0;

    if (s == end || !is_digit(*s))
        return false;
    for (; s < end && is_digit(*s); s++) {
        unsigned digit = (unsigned)(*s - '0');
        if (n > (UINT64_MAX - digit) / 10)
            return false;
        n = n * 10 + digit;
    }
    *cursor = s;
    *number = n;
    return true;
}

/*
 * Host (RFC 9112 3.2): "A server MUST respond with a 400 (Bad Request) status code to any
 * HTTP/1.1 request message that lacks a Host header field and to any request message that
 * contains more than one Host header field line or a Host header field with an invalid field
 * value." The lack is checked when the head is complete. An empty Host is a client's way to
 * say the target URI has no authority, and an http URI without a host is invalid (RFC 9110
 * 4.2.1; RFC 9112 3.3 lets the server reject it): 400 too.
 */
static ssize_t apply_host(struct http_request_parser *p, struct http_slice value,
                          const char *readable)
{
    if ((p->flags & SEEN_HOST) || value.len == 0 || !is_valid_host(value.ptr, value.len, readable))
        return -400;
    p->flags |= SEEN_HOST;
    p->host_index = p->field_count;
    return 0;
}

/*
 * Content-Length = 1*DIGIT (RFC 9110 8.6). A proxy may have merged repeated fields into a list,
 * so "5, 5" is accepted, as are repeated fields, if all values are the same. Different values, or
 * a Content-Length beside a Transfer-Encoding, would let two parsers disagree on where the body
 * ends: 400 (RFC 9112 6.3).
 */
static ssize_t apply_content_length(struct http_request_parser *p, struct http_slice value)
{
    const char *s = value.ptr, *end = s + value.len;
    bool seen = p->flags & SEEN_CONTENT_LENGTH;
    uint64_t length = p->content_length;

    if (p->flags & SEEN_TRANSFER_ENCODING)
        return -400;
    for (;;) {
        uint64_t n;
        if (!parse_decimal(&s, end, &n) || (seen && n != length))
            return -400;
        length = n;
        seen = true;
        if (s == end)
            break;
        s = skip_ows(s, end);
        if (s == end || *s != ',')
            return -400;
        s = skip_ows(s + 1, end);
    }
    if (length > HTTP_MAX_BODY_LEN)
        return -413;
    p->content_length = length;
    p->flags |= SEEN_CONTENT_LENGTH;
    return 0;
}

/*
 * Transfer-Encoding (RFC 9112 6.1): the codings applied to the body, in order, possibly over
 * several fields. Only chunked is implemented. It must come last, or the body's end cannot be
 * known (400, checked for good when the head is complete), and only once. A coding before it
 * that we do not implement ("gzip, chunked") is a 501. HTTP/1.0 has no Transfer-Encoding: in a
 * 1.0 request it is faulty framing (RFC 9112 6.1), and so is one beside a Content-Length (6.3).
 */
static ssize_t apply_transfer_encoding(struct http_request_parser *p, struct http_slice value)
{
    const char *s = value.ptr, *end = s + value.len;
    struct http_slice coding;
    int found;

    if (p->minor_version == 0 || (p->flags & SEEN_CONTENT_LENGTH))
        return -400;
    while ((found = next_list_token(&s, end, &coding)) > 0) {
        if (p->flags & CHUNKED_IS_LAST)
            return -400; /* a coding after chunked: chunked twice, or not last */
        if (slice_is_ci(coding, "chunked")) {
            if (p->flags & UNKNOWN_CODING)
                return -501;
            p->flags |= CHUNKED_IS_LAST;
        } else {
            p->flags |= UNKNOWN_CODING;
        }
    }
    if (found < 0)
        return found;
    p->flags |= SEEN_TRANSFER_ENCODING;
    return 0;
}

/* Connection (RFC 9110 7.6.1): a list of options, of which "close" and "keep-alive" matter here. */
static ssize_t apply_connection(struct http_request_parser *p, struct http_slice value)
{
    const char *s = value.ptr, *end = s + value.len;
    struct http_slice option;
    int found;

    /* Nearly every Connection field is one option alone: two comparisons decide it. The list
     * walk below costs 120 instructions more for "keep-alive" (callgrind). */
    if (slice_is_ci(value, "keep-alive")) {
        p->flags |= CONNECTION_KEEP_ALIVE;
        return 0;
    }
    if (slice_is_ci(value, "close")) {
        p->flags |= CONNECTION_CLOSE;
        return 0;
    }
    while ((found = next_list_token(&s, end, &option)) > 0) {
        if (slice_is_ci(option, "close"))
            p->flags |= CONNECTION_CLOSE;
        else if (slice_is_ci(option, "keep-alive"))
            p->flags |= CONNECTION_KEEP_ALIVE;
    }
    return found;
}

/* Expect (RFC 9110 10.1.1): 100-continue is the only expectation defined; any other cannot be
 * met: 417. */
static ssize_t apply_expect(struct http_request_parser *p, struct http_slice value)
{
    if (!slice_is_ci(value, "100-continue"))
        return -417;
    p->flags |= EXPECT_CONTINUE;
    return 0;
}

/*
 * Records what a field means for the framing and the connection. Returns 0 or -status. Field
 * names are case-insensitive (RFC 9110 5.1). Most fields mean nothing to the parser, and the
 * length of their name alone says so: switching on it first costs one jump per field, where
 * comparing with each name in turn cost five tests. [readable, value's end) may all be read.
 */
static ssize_t apply_field(struct http_request_parser *p, const struct http_field *field,
                           const char *readable)
{
    struct http_slice name = field->name, value = field->value;

    switch (name.len) {
    case 4:
        return slice_is_ci(name, "host") ? apply_host(p, value, readable) : 0;
    case 6:
        return slice_is_ci(name, "expect") ? apply_expect(p, value) : 0;
    case 10:
        return slice_is_ci(name, "connection") ? apply_connection(p, value) : 0;
    case 14:
        return slice_is_ci(name, "content-length") ? apply_content_length(p, value) : 0;
    case 17:
        return slice_is_ci(name, "transfer-encoding") ? apply_transfer_encoding(p, value) : 0;
    default:
        return 0;
    }
}

/* ---------------------------------------------------------------------------------------------
 * The head, line by line
 */

/* An empty line before the request line: skipped, a few times (RFC 9112 2.2). */
static ssize_t skip_empty_line(struct http_request_parser *p, const char *line, const char *end)
{
    ssize_t n = parse_crlf(line, end);
    if (n > 0 && ++p->empty_lines > HTTP_MAX_LEADING_EMPTY_LINES)
        return -400;
    return n;
}

static ssize_t take_request_line(struct http_request_parser *p, const char *line, const char *end,
                                 struct http_request *req)
{
    ssize_t n = parse_short_get(line, end, req);
    if (n == 0)
        n = parse_request_line(line, end, req);
    if (n > 0) {
        p->flags |= SEEN_REQUEST_LINE;
        p->minor_version = (uint8_t)req->minor_version;
    }
    return n;
}

/* A field line at `line`, in the head that starts at buf. */
static ssize_t take_field_line(struct http_request_parser *p, const char *buf, const char *line,
                               const char *end, struct http_request *req)
{
    if (p->field_count == HTTP_MAX_FIELDS)
        return -431;

    /* Parsed into a local, which the compiler keeps in registers for apply_field(). */
    struct http_field field;
    ssize_t n = parse_field_line(line, end, &field);
    if (n <= 0)
        return n;
    req->fields[p->field_count] = field;
    ssize_t status = apply_field(p, &field, buf);
    if (status < 0)
        return status;
    p->field_count++;
    return n;
}

/*
 * Searches buf[*scanned, end) for the end of a line that an earlier call left incomplete, and
 * records how far it looked, so that no byte is searched twice. Returns true once a LF, or a CR
 * and the byte after it, has arrived: the line can be judged now. A CR that is the last byte says
 * nothing yet: its LF may come next.
 */
static bool line_end_arrived(uint32_t *scanned, const char *buf, size_t end)
{
    size_t i = *scanned;

    count_work(end - i);
    while (i < end && buf[i] != '\r' && buf[i] != '\n')
        i++;
    if (i < end && (buf[i] == '\n' || i + 1 < end))
        return true;
    *scanned = (uint32_t)i;
    return false;
}

/*
 * A parse_* function ran out of bytes in the line starting at line_start. It looked at every
 * byte up to end without finding the line's end, except perhaps a final CR: remember that, so the
 * next call can wait for the line's end without reading those bytes again.
 */
static void wait_for_more(uint32_t *scanned, size_t line_start, size_t end)
{
    *scanned = (uint32_t)(end > line_start ? end - 1 : line_start);
}

/* Whether the line at p->line_start, complete or not, is already longer than it may be. */
static bool line_over_limit(const struct http_request_parser *p, size_t len, size_t end)
{
    if (len > HTTP_MAX_HEAD_LEN)
        return true;
    return !(p->flags & SEEN_REQUEST_LINE) && end - p->line_start > MAX_REQUEST_LINE_LEN;
}

/*
 * Whether this call should parse at all. If an earlier call stopped inside a line, the line is
 * parsed again only once its end has arrived, or once it has passed a limit.
 */
static bool worth_parsing(struct http_request_parser *p, const char *buf, size_t len, size_t end)
{
    if (p->line_scanned <= p->line_start) /* nothing of this line looked at yet */
        return true;
    return line_end_arrived(&p->line_scanned, buf, end) || line_over_limit(p, len, end);
}

/*
 * Whether an error found in the line at p->line_start may be reported now: once the line is
 * complete or over a limit (see WHEN AN ERROR IS REPORTED at the top). If not, the search for its
 * end has looked at every byte, and the next calls go on from there.
 */
static bool line_can_be_judged(struct http_request_parser *p, const char *buf, size_t len,
                               size_t end)
{
    if (line_over_limit(p, len, end))
        return true;
    p->line_scanned = p->line_start;
    return line_end_arrived(&p->line_scanned, buf, end);
}

/*
 * The head is complete, but some of its lines were parsed by earlier calls: when the bytes may
 * have been elsewhere, and into a struct http_request that may have been another. Those lines are
 * known to be valid: walk them again to point their slices at the bytes where they are now.
 */
static void reparse_earlier_lines(const char *buf, size_t parsed_len, size_t field_count,
                                  struct http_request *req)
{
    const char *s = buf, *end = buf + parsed_len;
    ssize_t n;

    count_work(parsed_len);
    while (*s == '\r') /* the empty lines skipped before the request line */
        s += 2;
    n = parse_request_line(s, end, req);
    assert(n > 0);
    s += n;
    for (size_t i = 0; i < field_count; i++) {
        n = parse_field_line(s, end, &req->fields[i]);
        assert(n > 0);
        s += n;
    }
}

/* The blank line has come: the checks that need the whole head, then the summary for the caller.
 */
static ssize_t finish_head(const struct http_request_parser *p, struct http_request *req)
{
    bool http11 = p->minor_version == 1;

    if (http11 && !(p->flags & SEEN_HOST))
        return -400; /* RFC 9112 3.2 */
    if ((p->flags & SEEN_TRANSFER_ENCODING) && !(p->flags & CHUNKED_IS_LAST))
        return -400; /* RFC 9112 6.3: chunked must be the final coding */

    req->field_count = p->field_count;
    /* An absolute-form target has already set host to its authority (RFC 9112 3.2.2). */
    if (req->host.ptr == NULL && (p->flags & SEEN_HOST)) {
        /* Member by member, as they were stored: a 16-byte load of two 8-byte stores waits for
         * them to reach the cache. Copied whole, this took 6% of the short GET's time (perf). */
        const struct http_field *host = &req->fields[p->host_index];
        req->host.ptr = host->value.ptr;
        req->host.len = host->value.len;
    }

    if (p->flags & SEEN_TRANSFER_ENCODING)
        req->body_framing = HTTP_BODY_CHUNKED;
    else if (p->flags & SEEN_CONTENT_LENGTH)
        req->body_framing = HTTP_BODY_LENGTH;
    else
        req->body_framing = HTTP_BODY_NONE; /* RFC 9112 6.3: a request without either has none */
    req->content_length = p->content_length;

    /* RFC 9112 9.3: HTTP/1.1 stays open unless "close"; HTTP/1.0 closes unless "keep-alive". */
    if (p->flags & CONNECTION_CLOSE)
        req->keep_alive = false;
    else
        req->keep_alive = http11 || (p->flags & CONNECTION_KEEP_ALIVE);
    /* RFC 9110 10.1.1: a 100-continue in an HTTP/1.0 request MUST be ignored. */
    req->expect_continue = http11 && (p->flags & EXPECT_CONTINUE);
    return p->line_start;
}

void http_request_parser_init(struct http_request_parser *p)
{
    memset(p, 0, sizeof *p);
}

ssize_t http_parse_request(struct http_request_parser *p, const char *buf, size_t len,
                           struct http_request *req)
{
    /* A head must end within HTTP_MAX_HEAD_LEN bytes: nothing after that is ever looked at. */
    size_t end = len < HTTP_MAX_HEAD_LEN ? len : HTTP_MAX_HEAD_LEN;
    /* What earlier calls parsed; their slices are stale. */
    size_t parsed_before = p->line_start, fields_before = p->field_count;
    bool request_line_before = p->flags & SEEN_REQUEST_LINE;

    assert(len >= p->line_scanned); /* the same bytes as before, and more */
    if (!worth_parsing(p, buf, len, end))
        return HTTP_NEED_MORE;

    /* `line` stays in a register; p->line_start catches up when the call stops. After the request
     * line, a field line is told from the blank line by its first byte alone. */
    const char *line = buf + p->line_start, *stop = buf + end;
    ssize_t n;
    if (p->flags & HEAD_COMPLETE) /* called again after the head was complete */
        goto complete;
    while (!(p->flags & SEEN_REQUEST_LINE)) {
        if (line == stop)
            goto incomplete;
        if (*line == '\r' || *line == '\n') /* a bare LF is caught by parse_crlf() */
            n = skip_empty_line(p, line, stop);
        else
            n = take_request_line(p, line, stop, req);
        if (n <= 0)
            goto stopped;
        count_work((size_t)n);
        line += n;
    }
    for (;;) {
        if (line == stop)
            goto incomplete;
        if (*line == '\r' || *line == '\n')
            break;
        n = take_field_line(p, buf, line, stop, req);
        if (n <= 0)
            goto stopped;
        count_work((size_t)n);
        line += n;
    }
    /* The blank line that ends the head. */
    n = parse_crlf(line, stop);
    if (n <= 0)
        goto stopped;
    count_work((size_t)n);
    p->line_start = (uint32_t)(line + n - buf);
    p->flags |= HEAD_COMPLETE;

complete:
    if (request_line_before)
        reparse_earlier_lines(buf, parsed_before, fields_before, req);
    return finish_head(p, req);

incomplete:
    n = HTTP_NEED_MORE;
stopped:
    p->line_start = (uint32_t)(line - buf);
    count_work(end - p->line_start);
    if (n < 0 && line_can_be_judged(p, buf, len, end))
        return n;
    if (n == HTTP_NEED_MORE)
        wait_for_more(&p->line_scanned, p->line_start, end);
    return len > HTTP_MAX_HEAD_LEN ? -431 : HTTP_NEED_MORE;
}

/* ---------------------------------------------------------------------------------------------
 * Chunked bodies (RFC 9112 7.1)
 *
 *   chunked-body = *chunk last-chunk trailer-section CRLF
 *   chunk        = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
 *   last-chunk   = 1*("0") [ chunk-ext ] CRLF
 *
 * The scan works like the head parser: lines are parsed when complete, and the chunk data in
 * between is skipped by offset arithmetic, without looking at it.
 */

/* Where struct http_chunked_parser.pos is. */
enum chunked_state {
    AT_CHUNK_SIZE_LINE,
    IN_CHUNK_DATA, /* waiting for the data up to data_end, and the CRLF after it */
    AT_TRAILER_LINE,
    BODY_COMPLETE,
};

/*
 * quoted-string = DQUOTE *( qdtext / quoted-pair ) DQUOTE (RFC 9110 5.6.4). qdtext is any value
 * character but '"' and '\'; quoted-pair is '\' and a value character. Returns the length with
 * the quotes.
 */
static ssize_t parse_quoted_string(const char *start, const char *end)
{
    for (const char *s = start + 1;; s++) {
        if (s == end)
            return HTTP_NEED_MORE;
        if (*s == '"')
            return s + 1 - start;
        if (*s == '\\' && ++s == end)
            return HTTP_NEED_MORE;
        if (!is_value_char(*s))
            return -400;
    }
}

/*
 * chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] ) (RFC 9112 7.1.1),
 * with chunk-ext-name = token and chunk-ext-val = token / quoted-string; then the CRLF. We
 * understand no extension: they are checked and ignored. Whitespace is allowed only where BWS is:
 * none before the CRLF.
 */
static ssize_t parse_chunk_ext_and_crlf(const char *start, const char *end)
{
    const char *s = start;

    for (;;) {
        const char *semicolon = skip_ows(s, end);
        if (semicolon == end)
            return HTTP_NEED_MORE;
        if (*semicolon != ';')
            break;

        const char *name = skip_ows(semicolon + 1, end);
        s = skip_token(name, end);
        if (s == end)
            return HTTP_NEED_MORE;
        if (s == name)
            return -400;

        const char *equals = skip_ows(s, end);
        if (equals == end)
            return HTTP_NEED_MORE;
        if (*equals != '=')
            continue; /* a name alone */

        const char *value = skip_ows(equals + 1, end);
        if (value == end)
            return HTTP_NEED_MORE;
        if (*value == '"') {
            ssize_t n = parse_quoted_string(value, end);
            if (n <= 0)
                return n;
            s = value + n;
        } else {
            s = skip_token(value, end);
            if (s == end)
                return HTTP_NEED_MORE;
            if (s == value)
                return -400;
        }
    }
    ssize_t n = parse_crlf(s, end);
    return n <= 0 ? n : s + n - start;
}

/* chunk-size = 1*HEXDIG, then chunk-ext and CRLF. */
static ssize_t parse_chunk_size_line(const char *line, const char *end, uint64_t *size)
{
    const char *s = line;
    uint64_t value = 0;
    int digit;

    while (s < end && (digit = hex_value(*s)) >= 0) {
        if (value > UINT64_MAX >> 4)
            return -400; /* another digit would overflow */
        value = value << 4 | (uint64_t)digit;
        s++;
    }
    if (s == end)
        return HTTP_NEED_MORE;
    if (s == line)
        return -400;

    ssize_t n = parse_chunk_ext_and_crlf(s, end);
    if (n <= 0)
        return n;
    *size = value;
    return s + n - line;
}

/* Where the line at c->pos must have ended by. */
static size_t chunked_line_limit(const struct http_chunked_parser *c)
{
    if (c->state == AT_TRAILER_LINE)
        return c->trailer_start + HTTP_MAX_TRAILER_LEN;
    size_t limit = c->pos + HTTP_MAX_CHUNK_LINE_LEN;
    return limit < HTTP_MAX_CHUNKED_LEN ? limit : HTTP_MAX_CHUNKED_LEN;
}

static ssize_t take_chunk_size_line(struct http_chunked_parser *c, const char *buf, size_t len)
{
    size_t limit = chunked_line_limit(c), end = len < limit ? len : limit;
    uint64_t size;
    ssize_t n = parse_chunk_size_line(buf + c->pos, buf + end, &size);

    count_work(n > 0 ? (size_t)n : end - c->pos);
    if (n == HTTP_NEED_MORE && len > limit)
        return -413;
    if (n <= 0)
        return n;
    size_t data_start = c->pos + (size_t)n;
    if (size > HTTP_MAX_BODY_LEN - c->body_len || data_start + size + 2 > HTTP_MAX_CHUNKED_LEN)
        return -413;

    c->pos = (uint32_t)data_start;
    if (size == 0) {
        c->state = AT_TRAILER_LINE;
        c->trailer_start = c->pos;
    } else {
        c->state = IN_CHUNK_DATA;
        c->body_len += (uint32_t)size;
        c->data_end = c->pos + (uint32_t)size;
    }
    return n;
}

/* The chunk data is skipped, not read (http_chunked_squeeze() moves it); a CRLF must follow. */
static ssize_t take_chunk_data(struct http_chunked_parser *c, const char *buf, size_t len)
{
    if (len < c->data_end)
        return HTTP_NEED_MORE;
    ssize_t n = parse_crlf(buf + c->data_end, buf + len);
    count_work(2);
    if (n <= 0)
        return n;
    c->pos = c->data_end + (uint32_t)n;
    c->state = AT_CHUNK_SIZE_LINE;
    return n;
}

/* A trailer field line, checked like a header field line and dropped; or the final CRLF. */
static ssize_t take_trailer_line(struct http_chunked_parser *c, const char *buf, size_t len)
{
    size_t limit = chunked_line_limit(c), end = len < limit ? len : limit;
    const char *line = buf + c->pos;
    struct http_field ignored;
    ssize_t n;

    if (line < buf + end && (*line == '\r' || *line == '\n')) {
        n = parse_crlf(line, buf + end);
        if (n > 0)
            c->state = BODY_COMPLETE;
    } else {
        n = parse_field_line(line, buf + end, &ignored);
    }
    count_work(n > 0 ? (size_t)n : end - c->pos);
    if (n == HTTP_NEED_MORE && len > limit)
        return -431;
    if (n > 0)
        c->pos += (uint32_t)n;
    return n;
}

/* Like worth_parsing() for the head: chunk data needs no looking at, lines are parsed once
 * complete or over their limit. */
static bool chunked_worth_parsing(struct http_chunked_parser *c, const char *buf, size_t len)
{
    if (c->state == IN_CHUNK_DATA || c->line_scanned <= c->pos)
        return true;
    return len > chunked_line_limit(c) || line_end_arrived(&c->line_scanned, buf, len);
}

/* Like line_can_be_judged() for the head. The CRLF after chunk data is judged as soon as its two
 * bytes are there. */
static bool chunked_line_can_be_judged(struct http_chunked_parser *c, const char *buf, size_t len)
{
    if (c->state == IN_CHUNK_DATA || len > chunked_line_limit(c))
        return true;
    c->line_scanned = c->pos;
    return line_end_arrived(&c->line_scanned, buf, len);
}

void http_chunked_parser_init(struct http_chunked_parser *c)
{
    memset(c, 0, sizeof *c);
    c->state = AT_CHUNK_SIZE_LINE;
}

ssize_t http_chunked_scan(struct http_chunked_parser *c, const char *buf, size_t len)
{
    if (!chunked_worth_parsing(c, buf, len))
        return HTTP_NEED_MORE;

    while (c->state != BODY_COMPLETE) {
        ssize_t n;
        if (c->state == AT_CHUNK_SIZE_LINE)
            n = take_chunk_size_line(c, buf, len);
        else if (c->state == IN_CHUNK_DATA)
            n = take_chunk_data(c, buf, len);
        else
            n = take_trailer_line(c, buf, len);

        if (n > 0)
            continue;
        if (n < 0 && chunked_line_can_be_judged(c, buf, len))
            return n;
        if (n == HTTP_NEED_MORE && c->state != IN_CHUNK_DATA)
            wait_for_more(&c->line_scanned, c->pos, len);
        return HTTP_NEED_MORE;
    }
    return c->pos;
}

size_t http_chunked_squeeze(char *buf, size_t n)
{
    size_t from = 0, to = 0;

    for (;;) {
        size_t size = 0;
        while (hex_value(buf[from]) >= 0)
            size = size << 4 | (size_t)hex_value(buf[from++]);
        /* Past the extensions and the CRLF. The scan made sure a LF can only be the line's end
         * (a quoted-string cannot hold one). */
        const char *lf = memchr(buf + from, '\n', n - from);
        from = (size_t)(lf - buf) + 1;
        if (size == 0)
            return to; /* the trailer section that follows is dropped */
        memmove(buf + to, buf + from, size);
        to += size;
        from += size + 2; /* and the CRLF after the data */
    }
}
