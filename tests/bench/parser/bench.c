/*
 * bench.c - how fast shared/http_parse.c parses request heads, next to picohttpparser (two
 * builds: Debian's, and one with its SSE4.2 path) and http_parser, on the same inputs in the
 * same run.
 *
 * For each input: a calibration run per parser (which also warms caches and branch predictors)
 * sizes its repetitions to about 0.05 s; then nine rounds, each timing every parser once, back to
 * back, so that a burst of load from elsewhere on the machine hits them alike. Reported: the median
 * rate of each parser, and the median of the per-round ratios. Time is the thread's CPU time, which
 * does not count while another process has the CPU. Every parse returns a checksum of what it
 * found, added into a volatile sink, so the compiler cannot drop the work; the drivers sit in
 * other files, so it cannot see into them either.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The drivers: each parses every head in buf[0..len) and returns a checksum (parse_*.c). */
size_t parse_with_ours(const char *buf, size_t len, size_t *requests);
size_t parse_with_pico(const char *buf, size_t len, size_t *requests);
size_t parse_with_pico_sse42(const char *buf, size_t len, size_t *requests);
size_t parse_with_http_parser(const char *buf, size_t len, size_t *requests);

typedef size_t parse_fn(const char *buf, size_t len, size_t *requests);

static const struct {
    const char *name;
    parse_fn *parse;
} parsers[] = {
    {"ours", parse_with_ours},
    {"pico", parse_with_pico},
    {"pico -msse4.2", parse_with_pico_sse42},
    {"http_parser", parse_with_http_parser},
};

#define PARSER_COUNT (sizeof parsers / sizeof parsers[0])

/* (a) The smallest realistic request: what load generators send. */
static const char short_get[] = "GET /plaintext HTTP/1.1\r\n"
                                "Host: localhost\r\n"
                                "\r\n";

/* (b) What a browser sends for a page: 12 fields, 674 bytes. */
static const char browser_get[] =
    "GET /articles/http-parsing?page=2&sort=recent HTTP/1.1\r\n"
    "Host: www.example.com\r\n"
    "Connection: keep-alive\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36\r\n"
    "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,"
    "image/apng,*/*;q=0.8\r\n"
    "Accept-Encoding: gzip, deflate, br\r\n"
    "Accept-Language: en-US,en;q=0.9,fr;q=0.8\r\n"
    "Referer: https://www.example.com/articles?page=1\r\n"
    "Cookie: session_id=3f9a2c7e1b8d4f6a; theme=dark; _ga=GA1.2.1234567890.1700000000; "
    "consent=analytics%3Dfalse\r\n"
    "Upgrade-Insecure-Requests: 1\r\n"
    "Sec-Fetch-Dest: document\r\n"
    "Sec-Fetch-Mode: navigate\r\n"
    "Sec-Fetch-Site: same-origin\r\n"
    "\r\n";

/* (c) One request of a pipelined batch, as in the TechEmpower plaintext test; sent 16 times. */
static const char pipelined_get[] =
    "GET /plaintext HTTP/1.1\r\n"
    "Host: localhost\r\n"
    "Accept: text/plain,text/html;q=0.9,application/xhtml+xml;q=0.9,application/xml;q=0.8,*/*;"
    "q=0.7\r\n"
    "Connection: keep-alive\r\n"
    "\r\n";

#define PIPELINE_DEPTH 16
#define ROUNDS         9
#define TARGET_SECONDS 0.05 /* per parser per round: 0.45 s per parser and input */

static volatile size_t sink;

static double cpu_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Parses buf `repeats` times; returns the seconds it took. */
static double time_repeats(parse_fn *parse, const char *buf, size_t len, long repeats)
{
    size_t requests, checksum = 0;
    double start = cpu_seconds();
    for (long i = 0; i < repeats; i++)
        checksum += parse(buf, len, &requests);
    double seconds = cpu_seconds() - start;
    sink += checksum;
    return seconds;
}

/* How many repeats take about TARGET_SECONDS; doubling up to it also warms everything up. */
static long calibrate(parse_fn *parse, const char *buf, size_t len)
{
    long repeats = 1000;
    double seconds;
    while ((seconds = time_repeats(parse, buf, len, repeats)) < TARGET_SECONDS / 4)
        repeats *= 2;
    return (long)((double)repeats * TARGET_SECONDS / seconds);
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *values, int n)
{
    qsort(values, (size_t)n, sizeof values[0], compare_doubles);
    return values[n / 2];
}

int main(void)
{
    static char pipelined[PIPELINE_DEPTH * sizeof pipelined_get];
    size_t pipelined_len = 0;
    for (int i = 0; i < PIPELINE_DEPTH; i++) {
        memcpy(pipelined + pipelined_len, pipelined_get, sizeof pipelined_get - 1);
        pipelined_len += sizeof pipelined_get - 1;
    }

    const struct {
        const char *name;
        const char *buf;
        size_t len, requests;
    } inputs[] = {
        {"(a) short GET", short_get, sizeof short_get - 1, 1},
        {"(b) browser GET", browser_get, sizeof browser_get - 1, 1},
        {"(c) 16 pipelined GETs", pipelined, pipelined_len, PIPELINE_DEPTH},
    };

    printf("%-24s %11s %11s %14s %12s %10s %10s %17s\n", "requests per second", parsers[0].name,
           parsers[1].name, parsers[2].name, parsers[3].name, "ours/pico", "ours/sse42",
           "ours/http_parser");
    for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
        const char *buf = inputs[i].buf;
        size_t len = inputs[i].len;
        long repeats[PARSER_COUNT];
        double rates[PARSER_COUNT][ROUNDS], vs[PARSER_COUNT][ROUNDS];

        for (size_t j = 0; j < PARSER_COUNT; j++) {
            size_t requests = 0;
            if (parsers[j].parse(buf, len, &requests) == 0 || requests != inputs[i].requests) {
                fprintf(stderr, "%s failed on %s\n", parsers[j].name, inputs[i].name);
                return 1;
            }
            repeats[j] = calibrate(parsers[j].parse, buf, len);
        }
        for (int r = 0; r < ROUNDS; r++) {
            for (size_t j = 0; j < PARSER_COUNT; j++) {
                double seconds = time_repeats(parsers[j].parse, buf, len, repeats[j]);
                rates[j][r] = (double)repeats[j] * (double)inputs[i].requests / seconds;
            }
            for (size_t j = 1; j < PARSER_COUNT; j++)
                vs[j][r] = rates[0][r] / rates[j][r];
        }
        printf("%-24s %11.0f %11.0f %14.0f %12.0f %9.2fx %9.2fx %16.2fx\n", inputs[i].name,
               median(rates[0], ROUNDS), median(rates[1], ROUNDS), median(rates[2], ROUNDS),
               median(rates[3], ROUNDS), median(vs[1], ROUNDS), median(vs[2], ROUNDS),
               median(vs[3], ROUNDS));
    }
    return 0;
}
