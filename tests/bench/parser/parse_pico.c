/*
 * parse_pico.c - the benchmark's driver for picohttpparser, as shipped inside Debian's libh2o
 * (libh2o-dev): `nm -D /usr/lib/x86_64-linux-gnu/libh2o.so` lists phr_parse_request. Debian
 * installs no header for it, so the two declarations below copy picohttpparser.h.
 *
 * The Makefile compiles this file a second time, for picohttpparser built with its SSE4.2 path,
 * with the names renamed by the preprocessor: parse_with_pico_sse42() calls
 * phr_parse_request_sse42().
 */
#include <stddef.h>

struct phr_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};

int phr_parse_request(const char *buf, size_t len, const char **method, size_t *method_len,
                      const char **path, size_t *path_len, int *minor_version,
                      struct phr_header *headers, size_t *num_headers, size_t last_len);

size_t parse_with_pico(const char *buf, size_t len, size_t *requests)
{
    size_t offset = 0, checksum = 0;

    *requests = 0;
    while (offset < len) {
        const char *method, *path;
        size_t method_len, path_len, num_headers = 64;
        struct phr_header headers[64];
        int minor_version;
        int n = phr_parse_request(buf + offset, len - offset, &method, &method_len, &path,
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
