/*
 * parse_pico_sse42.c - the benchmark's driver for picohttpparser with its SSE4.2 path.
 *
 * The same picohttpparser.c that Debian's libh2o contains, compiled here from Debian's h2o
 * source package with -msse4.2 (see the Makefile), so that it finds the ends of tokens and
 * values 16 bytes at a time with PCMPESTRI, as any build for such CPUs (-march=native) does.
 * Debian's build is for baseline x86-64 and has only the byte loops (parse_pico.c measures that
 * one). Its functions are renamed with a _sse42 suffix, so that both builds fit in one program.
 */
#include <stddef.h>

struct phr_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};

int phr_parse_request_sse42(const char *buf, size_t len, const char **method, size_t *method_len,
                            const char **path, size_t *path_len, int *minor_version,
                            struct phr_header *headers, size_t *num_headers, size_t last_len);

size_t parse_with_pico_sse42(const char *buf, size_t len, size_t *requests)
{
    size_t offset = 0, checksum = 0;

    *requests = 0;
    while (offset < len) {
        const char *method, *path;
        size_t method_len, path_len, num_headers = 64;
        struct phr_header headers[64];
        int minor_version;
        int n = phr_parse_request_sse42(buf + offset, len - offset, &method, &method_len, &path,
                                        &path_len, &minor_version, headers, &num_headers, 0);
        if (n <= 0)
            return 0;
        checksum += method_len + path_len + num_headers + (size_t)minor_version;
        checksum += headers[num_headers - 1].value_len;
        offset += (size_t)n;
        ++*requests;
    }
    return checksum;
}
