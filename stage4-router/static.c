/*
 * static.c - files under --root, for GET and HEAD of any path no other route takes.
 *
 * Staying inside the root. A request must never reach a file outside --root, however
 * its path is spelled. Checking the string is not enough:
 *   - encodings: "%2e%2e/" is "../" once decoded, and a check made before decoding (or
 *     decoding twice) misses it; we decode once, before anything looks at the path;
 *   - symbolic links: "docs/latest" may be a link to "/etc"; no amount of looking at the
 *     string "docs/latest/passwd" reveals that, only the filesystem knows;
 *   - races: a check that resolves the path first and opens it afterwards can be beaten
 *     by someone swapping a directory for a link in between.
 * So the kernel does the resolving, and enforces the rule while it does: openat2() with
 * RESOLVE_BENEATH, relative to a descriptor of the root, fails with EXDEV whenever a
 * "..", an absolute path or a symbolic link would take the lookup above the root, at any
 * step, atomically. Links that stay inside the root still work. (Linux 5.6 and later;
 * where openat2() is missing, see open_walking().)
 *
 * Serving: sendfile() from the page cache to the socket, never the whole file in our
 * memory; Last-Modified and a strong ETag, with 304 for If-None-Match and
 * If-Modified-Since (RFC 9110 section 13); a single byte range with 206 or 416 (RFC 9110
 * section 14); index.html for a directory, and a 301 to add a missing trailing slash.
 */
#include "static.h"
#include "log.h"
#include "mime.h"
#include "response.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static int root_fd = -1;
static bool have_openat2 = true; /* until the kernel says ENOSYS */

/*
 * Without openat2() (Linux before 5.6, or valgrind 3.19, which does not know the call), the
 * walk is done here: one component at a time, each opened relative to the directory reached
 * so far with O_NOFOLLOW, so that no symbolic link is ever followed (ELOOP for a link at the
 * end, ENOTDIR for one on the way), and ".." and absolute paths refused outright (EXDEV).
 * Stricter than RESOLVE_BENEATH, which follows links that stay inside the root, and as safe:
 * nothing but real directories below dir_fd is ever looked up.
 */
static int open_walking(int dir_fd, const char *path, int flags)
{
    if (*path == '/') {
        errno = EXDEV;
        return -1;
    }
    int at = dir_fd; /* the directory reached so far; ours to close unless it is dir_fd */
    for (;;) {
        size_t len = strcspn(path, "/");
        bool slash = path[len] == '/';
        const char *rest = path + len + strspn(path + len, "/");
        bool last = *rest == '\0';
        char name[NAME_MAX + 1];
        int fd = -1;
        if (len > NAME_MAX) {
            errno = ENAMETOOLONG;
        } else if (len == 2 && path[0] == '.' && path[1] == '.') {
            errno = EXDEV;
        } else {
            memcpy(name, path, len);
            name[len] = '\0';
            const char *step = len == 0 ? "." : name; /* "" is the directory reached */
            if (last)
                fd = openat(at, step, flags | O_NOFOLLOW | (slash ? O_DIRECTORY : 0));
            else
                fd = openat(at, step, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        }
        if (at != dir_fd) {
            int saved = errno;
            close(at);
            errno = saved;
        }
        if (fd < 0 || last)
            return fd;
        at = fd;
        path = rest;
    }
}

/*
 * How many times to ask openat2() again when it says EAGAIN. With RESOLVE_BENEATH the kernel
 * answers EAGAIN if a rename or a mount, anywhere on the system, happened while it was
 * resolving a ".." (one in the path, or in a link such as "up -> .."): it can no longer prove
 * that the ".." stayed beneath the root, and leaves the retry to the caller. Measured beside
 * one process renaming a file in a loop: 1 open in 20 through such a link got EAGAIN (1 in 5
 * through four of them), never 4 times in a row. runc's path resolver gives up after 128 tries;
 * past that somebody is renaming on purpose, and the client gets 503 rather than a wait of
 * unbounded length.
 */
enum { OPENAT2_TRIES = 128 };

/* glibc 2.36 has no wrapper for openat2 yet. */
static int open_beneath(int dir_fd, const char *path)
{
    /* O_NONBLOCK: opening a FIFO someone left in the root must not block the loop. */
    int flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
    if (!have_openat2)
        return open_walking(dir_fd, path, flags);
    struct open_how how = {
        .flags = (uint64_t)flags,
        .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
    };
    int fd = -1;
    for (int tries = 0; tries < OPENAT2_TRIES; tries++) {
        fd = (int)syscall(SYS_openat2, dir_fd, path, &how, sizeof how);
        if (fd >= 0 || errno != EAGAIN)
            break;
    }
    return fd;
}

bool static_open_root(const char *root, char *err, size_t errlen)
{
    root_fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (root_fd < 0) {
        snprintf(err, errlen, "--root %s: %s", root, strerror(errno));
        return false;
    }
    int probe = open_beneath(root_fd, ".");
    if (probe < 0 && errno == ENOSYS) {
        have_openat2 = false;
        log_info("openat2() is missing: files are opened one directory at a time, and "
                 "symbolic links under --root are not followed");
        probe = open_beneath(root_fd, ".");
    }
    if (probe < 0) {
        snprintf(err, errlen, "opening --root: %s", strerror(errno));
        return false;
    }
    close(probe);
    return true;
}

/* What to answer when opening fails. Escapes (EXDEV) look like any missing file. */
static int status_for_open_error(int err)
{
    switch (err) {
    case ENOENT:
    case ENOTDIR:
    case EXDEV:
    case ELOOP:
    case ENAMETOOLONG:
        return 404;
    case EACCES:
    case EPERM:
        return 403;
    case EAGAIN:
        log_error("openat2: still EAGAIN after %d tries: something renames without pause",
                  OPENAT2_TRIES);
        return 503;
    default:
        log_error("openat2: %s", strerror(err));
        return 500;
    }
}

/* A directory asked for without its trailing slash: send the client to the real name, so
 * the relative links in its index.html resolve against the directory (RFC 3986 5.2). The
 * raw target is used, not the decoded path: it is what the client sent, already checked
 * by the parser, and a decoded "%0d%0a" must never reach a header. */
static void redirect_to_directory(struct exchange *x)
{
    const struct http_request *req = x->req;
    char location[HTTP_MAX_TARGET_LEN + 32];
    int len;
    if (req->query.ptr != NULL)
        len = snprintf(location, sizeof location, "Location: %.*s/?%.*s\r\n", (int)req->path.len,
                       req->path.ptr, (int)req->query.len, req->query.ptr);
    else
        len = snprintf(location, sizeof location, "Location: %.*s/\r\n", (int)req->path.len,
                       req->path.ptr);
    if (len < 0 || (size_t)len >= sizeof location) {
        respond_status(x, 414, NULL);
        return;
    }
    static const char BODY[] = "301 Moved Permanently\n";
    respond(x, 301, "text/plain", location, BODY, sizeof BODY - 1);
}

/* An entity-tag list (If-None-Match) contains ours, by weak comparison (RFC 9110 8.8.3.2):
 * W/"x" and "x" match. "*" matches any current file. */
static bool etag_list_matches(struct http_slice list, const char *etag)
{
    size_t etag_len = strlen(etag);
    size_t i = 0;
    while (i < list.len) {
        while (i < list.len && (list.ptr[i] == ' ' || list.ptr[i] == '\t' || list.ptr[i] == ','))
            i++;
        size_t start = i;
        while (i < list.len && list.ptr[i] != ',')
            i++;
        size_t end = i;
        while (end > start && (list.ptr[end - 1] == ' ' || list.ptr[end - 1] == '\t'))
            end--;
        const char *tag = list.ptr + start;
        size_t tag_len = end - start;
        // cppcheck-suppress knownConditionTrueFalse ; 2.10 takes the loop above to end at start
        if (tag_len == 1 && tag[0] == '*')
            return true;
        // cppcheck-suppress knownConditionTrueFalse ; the same
        if (tag_len >= 2 && tag[0] == 'W' && tag[1] == '/') {
            tag += 2;
            tag_len -= 2;
        }
        if (tag_len == etag_len && memcmp(tag, etag, etag_len) == 0)
            return true;
    }
    return false;
}

/* An HTTP-date in any of the three forms a recipient must accept (RFC 9110 5.6.7). */
static bool parse_http_date(struct http_slice text, time_t *out)
{
    static const char *const FORMATS[] = {
        "%a, %d %b %Y %H:%M:%S GMT", /* IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT */
        "%A, %d-%b-%y %H:%M:%S GMT", /* obsolete RFC 850: Sunday, 06-Nov-94 08:49:37 GMT */
        "%a %b %e %H:%M:%S %Y", /* obsolete asctime: Sun Nov  6 08:49:37 1994 */
    };
    char buf[64];
    if (text.len >= sizeof buf)
        return false;
    memcpy(buf, text.ptr, text.len);
    buf[text.len] = '\0';
    for (size_t i = 0; i < sizeof FORMATS / sizeof FORMATS[0]; i++) {
        struct tm tm = {0};
        const char *end = strptime(buf, FORMATS[i], &tm);
        if (end != NULL && *end == '\0') {
            *out = timegm(&tm);
            return true;
        }
    }
    return false;
}

/*
 * RFC 9110 13.2.2: If-None-Match first; If-Modified-Since only without it. A date later than
 * our clock is ignored (13.1.3): no client saw the file then, so a 304 could keep a stale
 * copy alive (a client with a wrong clock, or one that made the date up).
 */
static bool not_modified(const struct exchange *x, const char *etag, time_t mtime)
{
    const struct http_slice *none_match = exchange_field(x, "If-None-Match");
    if (none_match != NULL)
        return etag_list_matches(*none_match, etag);
    const struct http_slice *modified_since = exchange_field(x, "If-Modified-Since");
    time_t since;
    if (modified_since != NULL && parse_http_date(*modified_since, &since) && since <= time(NULL))
        return mtime <= since;
    return false;
}

/* Reads a decimal number from s[*i..len); false if there is none or it overflows. */
static bool parse_offset(const char *s, size_t len, size_t *i, uint64_t *out)
{
    size_t start = *i;
    uint64_t n = 0;
    while (*i < len && s[*i] >= '0' && s[*i] <= '9') {
        unsigned digit = (unsigned)(s[*i] - '0');
        if (n > (UINT64_MAX - digit) / 10)
            return false;
        n = n * 10 + digit;
        (*i)++;
    }
    *out = n;
    return *i > start;
}

enum range_result { RANGE_WHOLE, RANGE_PART, RANGE_UNSATISFIABLE };

/*
 * The Range of a GET (RFC 9110 14.2): one "bytes=first-last", "bytes=first-" or
 * "bytes=-suffix". Several ranges, a bad syntax, or an If-Range that no longer matches
 * mean the whole file, which the RFC allows; multipart/byteranges is not worth its code.
 */
static enum range_result choose_range(const struct exchange *x, uint64_t size, const char *etag,
                                      const char *last_modified, uint64_t *first, uint64_t *count)
{
    const struct http_slice *range = exchange_field(x, "Range");
    if (range == NULL || x->req->method != HTTP_METHOD_GET)
        return RANGE_WHOLE;
    const struct http_slice *if_range = exchange_field(x, "If-Range");
    if (if_range != NULL) {
        /* A strong match only (13.1.5): the file must be exactly the one the client has. */
        bool same =
            (if_range->len == strlen(etag) && memcmp(if_range->ptr, etag, if_range->len) == 0) ||
            (if_range->len == strlen(last_modified) &&
             memcmp(if_range->ptr, last_modified, if_range->len) == 0);
        if (!same)
            return RANGE_WHOLE;
    }

    const char *s = range->ptr;
    size_t len = range->len;
    if (len < 6 || strncmp(s, "bytes=", 6) != 0 || memchr(s, ',', len) != NULL)
        return RANGE_WHOLE;
    size_t i = 6;
    uint64_t start, end;
    if (i < len && s[i] == '-') {
        i++;
        if (!parse_offset(s, len, &i, &end) || i != len)
            return RANGE_WHOLE;
        if (end == 0 || size == 0)
            return RANGE_UNSATISFIABLE;
        start = end >= size ? 0 : size - end; /* the last `end` bytes */
        end = size - 1;
    } else {
        if (!parse_offset(s, len, &i, &start) || i == len || s[i] != '-')
            return RANGE_WHOLE;
        i++;
        if (i == len) {
            end = size - 1; /* "first-": to the end */
        } else if (!parse_offset(s, len, &i, &end) || i != len || end < start) {
            return RANGE_WHOLE;
        }
        if (start >= size)
            return RANGE_UNSATISFIABLE;
        if (end >= size)
            end = size - 1;
    }
    *first = start;
    *count = end - start + 1;
    return RANGE_PART;
}

static void format_http_date(time_t t, char *buf, size_t size)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, size, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

/* Serves the regular file fd (name: its path, for the content type). Takes fd over. */
static void serve_file(struct exchange *x, int fd, const struct stat *st, const char *name)
{
    /* Size and modification time (to the nanosecond) change when the content does. */
    char etag[48];
    snprintf(etag, sizeof etag, "\"%" PRIx64 "-%" PRIx64 "\"", (uint64_t)st->st_size,
             (uint64_t)st->st_mtim.tv_sec * 1000000000u + (uint64_t)st->st_mtim.tv_nsec);
    char last_modified[32];
    format_http_date(st->st_mtime, last_modified, sizeof last_modified);

    char headers[256];
    int len =
        snprintf(headers, sizeof headers, "Last-Modified: %s\r\nETag: %s\r\n", last_modified, etag);
    if (not_modified(x, etag, st->st_mtime)) {
        close(fd);
        respond(x, 304, NULL, headers, NULL, 0);
        return;
    }

    uint64_t size = (uint64_t)st->st_size, first = 0, count = size;
    switch (choose_range(x, size, etag, last_modified, &first, &count)) {
    case RANGE_WHOLE:
        snprintf(headers + len, sizeof headers - (size_t)len, "Accept-Ranges: bytes\r\n");
        respond_file(x, 200, mime_type(name, strlen(name)), headers, fd, 0, size);
        break;
    case RANGE_PART:
        snprintf(headers + len, sizeof headers - (size_t)len,
                 "Accept-Ranges: bytes\r\nContent-Range: bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64
                 "\r\n",
                 first, first + count - 1, size);
        respond_file(x, 206, mime_type(name, strlen(name)), headers, fd, (off_t)first, count);
        break;
    case RANGE_UNSATISFIABLE:
        close(fd);
        snprintf(headers, sizeof headers, "Content-Range: bytes */%" PRIu64 "\r\n", size);
        static const char BODY[] = "416 Range Not Satisfiable\n";
        respond(x, 416, "text/plain", headers, BODY, sizeof BODY - 1);
        break;
    }
}

void static_serve(struct exchange *x)
{
    /* The decoded path, relative to the root, NUL-terminated for the kernel. Leading
     * slashes go ("//a" is "a"); an empty path is the root itself. */
    char name[HTTP_MAX_TARGET_LEN + sizeof "/index.html"];
    size_t skip = 0;
    while (skip < x->path.len && x->path.ptr[skip] == '/')
        skip++;
    size_t len = x->path.len - skip;
    if (len + sizeof "/index.html" > sizeof name) {
        respond_status(x, 414, NULL);
        return;
    }
    memcpy(name, x->path.ptr + skip, len);
    name[len] = '\0';

    // cppcheck-suppress knownConditionTrueFalse ; 2.10 takes the skip loop to end at path.len
    int fd = open_beneath(root_fd, len == 0 ? "." : name);
    if (fd < 0) {
        respond_status(x, status_for_open_error(errno), NULL);
        return;
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        log_error("fstat: %s", strerror(errno));
        close(fd);
        respond_status(x, 500, NULL);
        return;
    }

    if (S_ISDIR(st.st_mode)) {
        close(fd);
        if (x->path.ptr[x->path.len - 1] != '/') {
            redirect_to_directory(x);
            return;
        }
        /* name ends in '/' (or is empty, for the root). Opened from the root again, so the
         * same rule holds for index.html, which may be a link. */
        memcpy(name + len, "index.html", sizeof "index.html");
        fd = open_beneath(root_fd, name);
        if (fd < 0) {
            respond_status(x, status_for_open_error(errno), NULL); /* no listings */
            return;
        }
        if (fstat(fd, &st) < 0) {
            close(fd);
            respond_status(x, 500, NULL);
            return;
        }
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd); /* a device, a FIFO, a socket: nothing to serve */
        respond_status(x, 404, NULL);
        return;
    }
    serve_file(x, fd, &st, name);
}
