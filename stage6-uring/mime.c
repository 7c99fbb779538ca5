/*
 * mime.c - the Content-Type of a file, from its name.
 *
 * A short table of the types a web site is made of. Text types carry "charset=utf-8",
 * or browsers guess the encoding from the bytes. Anything unknown is
 * application/octet-stream: a browser downloads it rather than render something it may
 * misread (and with no sniffing of our own, an uploaded .html cannot become a page).
 */
#include "mime.h"

#include <string.h>
#include <strings.h>

struct mime_entry {
    const char *extension;
    const char *type;
};

// clang-format off
static const struct mime_entry MIME_TYPES[] = {
    {"html",  "text/html; charset=utf-8"},
    {"htm",   "text/html; charset=utf-8"},
    {"css",   "text/css; charset=utf-8"},
    {"js",    "text/javascript; charset=utf-8"},
    {"mjs",   "text/javascript; charset=utf-8"},
    {"json",  "application/json"},
    {"txt",   "text/plain; charset=utf-8"},
    {"md",    "text/markdown; charset=utf-8"},
    {"xml",   "application/xml"},
    {"svg",   "image/svg+xml"},
    {"png",   "image/png"},
    {"jpg",   "image/jpeg"},
    {"jpeg",  "image/jpeg"},
    {"gif",   "image/gif"},
    {"webp",  "image/webp"},
    {"avif",  "image/avif"},
    {"ico",   "image/x-icon"},
    {"woff",  "font/woff"},
    {"woff2", "font/woff2"},
    {"wasm",  "application/wasm"},
    {"pdf",   "application/pdf"},
    {"mp4",   "video/mp4"},
    {"webm",  "video/webm"},
};
// clang-format on

const char *mime_type(const char *name, size_t len)
{
    /* The extension: after the last '.' of the last path segment. */
    size_t dot = len;
    for (size_t i = len; i > 0 && name[i - 1] != '/'; i--) {
        if (name[i - 1] == '.') {
            dot = i - 1;
            break;
        }
    }
    if (dot == len)
        return "application/octet-stream";
    const char *ext = name + dot + 1;
    size_t ext_len = len - dot - 1;
    for (size_t i = 0; i < sizeof MIME_TYPES / sizeof MIME_TYPES[0]; i++) {
        const struct mime_entry *m = &MIME_TYPES[i];
        if (strlen(m->extension) == ext_len && strncasecmp(m->extension, ext, ext_len) == 0)
            return m->type;
    }
    return "application/octet-stream";
}
