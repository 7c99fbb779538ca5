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
 * Serving: a large file goes from the page cache to the socket with sendfile(), never
 * whole through our memory; a small one is read right behind its headers, so that both
 * leave in one send (see SMALL_FILE_MAX), and its descriptor is kept open for the next
 * request (see "Open files, kept" below). Last-Modified and a strong ETag, with 304 for
 * If-None-Match and If-Modified-Since (RFC 9110 section 13); a single byte range with 206
 * or 416 (RFC 9110 section 14); index.html for a directory, and a 301 to add a missing
 * trailing slash.
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

/* The validators of a file's current content (RFC 9110 8.8): a strong ETag from its size and
 * modification time (to the nanosecond), both of which change when the content does, and
 * Last-Modified. */
struct validators {
    char etag[48];
    char last_modified[32];
};

static struct validators validators_of(const struct stat *st)
{
    struct validators v;
    snprintf(v.etag, sizeof v.etag, "\"%" PRIx64 "-%" PRIx64 "\"", (uint64_t)st->st_size,
             (uint64_t)st->st_mtim.tv_sec * 1000000000u + (uint64_t)st->st_mtim.tv_nsec);
    format_http_date(st->st_mtime, v.last_modified, sizeof v.last_modified);
    return v;
}

/*
 * Small files: read them right behind their headers, so that headers and body leave in one
 * send. sendfile() saves copying the body into the socket, which pays for a large file; for
 * a small one the second system call (or io_uring operation) and the pause until the file is
 * out cost more than the copy. Measured with wrk on a 4 KiB file, 100 connections: see this
 * stage's README. The bound is also the stack buffer the body is read into.
 */
enum { SMALL_FILE_MAX = 16 * 1024 };

/*
 * Open files, kept. Opening a file costs openat2() (a path walk), fstat() and, after the
 * answer, close(): three system calls against the one read that serves a small file. So the
 * descriptors of the small files served last stay open, with their validators, and the next
 * request for the same name takes them from here. The first request for a kept file in each
 * batch of events the loop takes from the kernel (conn_batch()) calls fstat() on its
 * descriptor, which walks no path; the others in that batch take what it found. A busy
 * loop serves many requests for one file in a batch (one fstat() for 49, at 100
 * connections on two threads here), and a batch lasts about a millisecond: h2o trusts
 * what it learns of a file for a turn of its loop in the same way. So a file written in
 * place shows its new size and time to the next batch, and one deleted or replaced by a
 * rename shows no links left (st_nlink 0), which sends the name back to openat2(). A
 * client that sends its request once it has seen the previous answer is always read in a
 * later batch than the one that answered. What fstat() cannot see is a change of the path
 * itself (a link pointed elsewhere, a directory renamed): a kept descriptor is given up after
 * KEPT_FILE_SECONDS, so such a change is seen within that long, as with nginx's
 * open_file_cache_valid (its default is 60 s; ours is shorter). h2o gives up its kept
 * files after each turn of its loop; lighttpd stats its cached names once a second.
 *
 * One table per thread (_Thread_local): from stage 5 on each loop runs on a thread of its
 * own and keeps its own table, so no lock is ever taken. Direct-mapped by a hash of the
 * name: a name that lands on a taken entry replaces it. Cost: KEPT_FILES entries of 344
 * bytes per thread, and at most KEPT_FILES descriptors per thread, which stay open until the
 * thread ends; names longer than KEPT_NAME_MAX are not kept.
 */
enum { KEPT_FILES = 32, KEPT_NAME_MAX = 95, KEPT_FILE_SECONDS = 1 };

struct kept_file {
    int fd; /* 0: the entry is empty (descriptor 0 is stdin, never a file we opened) */
    time_t opened; /* CLOCK_MONOTONIC_COARSE seconds */
    uint64_t checked; /* the batch of events (conn_batch()) that st is from */
    struct stat st; /* as of the last fstat() */
    struct validators v; /* of st */
    char name[KEPT_NAME_MAX + 1];
};

static _Thread_local struct kept_file kept_files[KEPT_FILES];

static time_t coarse_seconds(void)
{
    /* The coarse clock is read from memory the kernel shares (vDSO): no system call. */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return ts.tv_sec;
}

static struct kept_file *kept_slot(const char *name)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const char *p = name; *p != '\0'; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    return &kept_files[h % KEPT_FILES];
}

static void forget(struct kept_file *k)
{
    if (k->fd > 0)
        close(k->fd);
    k->fd = 0;
}

void static_forget_files(void)
{
    for (size_t i = 0; i < KEPT_FILES; i++)
        forget(&kept_files[i]);
}

/* The kept file for name, checked as above, with st and v current; NULL if there is none. */
static struct kept_file *find_kept(const char *name, uint64_t batch)
{
    struct kept_file *k = kept_slot(name);
    if (k->fd <= 0 || strcmp(k->name, name) != 0)
        return NULL;
    if (coarse_seconds() - k->opened >= KEPT_FILE_SECONDS) {
        forget(k);
        return NULL;
    }
    if (k->checked == batch)
        return k; /* fstat() was called in this batch already */
    struct stat st;
    if (fstat(k->fd, &st) < 0 || st.st_nlink == 0 || !S_ISREG(st.st_mode) ||
        st.st_size > SMALL_FILE_MAX) {
        forget(k);
        return NULL;
    }
    if (st.st_size != k->st.st_size || st.st_mtim.tv_sec != k->st.st_mtim.tv_sec ||
        st.st_mtim.tv_nsec != k->st.st_mtim.tv_nsec)
        k->v = validators_of(&st);
    k->st = st;
    k->checked = batch;
    return k;
}

/* Keeps fd (a regular file just opened as name) if it is small and name fits; then the
 * table owns it. NULL if not kept: fd is still the caller's. */
static struct kept_file *keep(const char *name, int fd, const struct stat *st, uint64_t batch)
{
    size_t len = strlen(name);
    if (st->st_size > SMALL_FILE_MAX || len > KEPT_NAME_MAX)
        return NULL;
    struct kept_file *k = kept_slot(name);
    forget(k);
    k->fd = fd;
    k->opened = coarse_seconds();
    k->checked = batch;
    k->st = *st;
    k->v = validators_of(st);
    memcpy(k->name, name, len + 1);
    return k;
}

/* Reads exactly len bytes at offset; false if the file ended first (it shrank since fstat())
 * or reading failed. */
static bool read_exactly(int fd, char *buf, size_t len, off_t offset)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = pread(fd, buf + got, len - got, offset + (off_t)got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            log_error("pread: %s", strerror(errno));
        if (n <= 0)
            return false;
        got += (size_t)n;
    }
    return true;
}

/* The body of a small file, or of a small part of a file, read behind the headers. */
static void respond_small(struct exchange *x, int status, const char *name, const char *headers,
                          int fd, off_t offset, size_t count, struct kept_file *kept)
{
    char body[SMALL_FILE_MAX];
    if (!(x->flags & RESPONSE_NO_BODY) && !read_exactly(fd, body, count, offset)) {
        if (kept != NULL)
            forget(kept); /* changed under us: open it again next time */
        respond_status(x, 500, NULL);
        return;
    }
    respond(x, status, mime_type(name, strlen(name)), headers, body, count);
}

/*
 * The 200 or 206 (or 416) for the file fd, with the validators' headers. True if fd was
 * handed to the connection, which closes it once the file is out.
 */
static bool respond_with_file(struct exchange *x, int fd, const struct stat *st, const char *name,
                              const struct validators *v, struct kept_file *kept, char *headers,
                              size_t size, size_t len)
{
    uint64_t file_size = (uint64_t)st->st_size, first = 0, count = file_size;
    int status = 200;
    switch (choose_range(x, file_size, v->etag, v->last_modified, &first, &count)) {
    case RANGE_WHOLE:
        snprintf(headers + len, size - len, "Accept-Ranges: bytes\r\n");
        break;
    case RANGE_PART:
        snprintf(headers + len, size - len,
                 "Accept-Ranges: bytes\r\nContent-Range: bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64
                 "\r\n",
                 first, first + count - 1, file_size);
        status = 206; /* also for a range that covers the whole file */
        break;
    case RANGE_UNSATISFIABLE:
        snprintf(headers, size, "Content-Range: bytes */%" PRIu64 "\r\n", file_size);
        static const char BODY[] = "416 Range Not Satisfiable\n";
        respond(x, 416, "text/plain", headers, BODY, sizeof BODY - 1);
        return false;
    }
    if (count <= SMALL_FILE_MAX) {
        respond_small(x, status, name, headers, fd, (off_t)first, count, kept);
        return false;
    }
    respond_file(x, status, mime_type(name, strlen(name)), headers, fd, (off_t)first, count);
    return true;
}

/*
 * Serves the regular file fd (name: its path, for the content type; v: st's validators).
 * kept: the table's entry that owns fd, or NULL: then fd is ours, closed or handed on.
 */
static void serve_file(struct exchange *x, int fd, const struct stat *st, const char *name,
                       const struct validators *v, struct kept_file *kept)
{
    char headers[256];
    int len = snprintf(headers, sizeof headers, "Last-Modified: %s\r\nETag: %s\r\n",
                       v->last_modified, v->etag);
    bool handed_on = false;
    if (not_modified(x, v->etag, st->st_mtime))
        respond(x, 304, NULL, headers, NULL, 0);
    else
        handed_on =
            respond_with_file(x, fd, st, name, v, kept, headers, sizeof headers, (size_t)len);
    if (kept == NULL && !handed_on)
        close(fd);
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

    uint64_t batch = conn_batch(x->conn);
    struct kept_file *kept = find_kept(name, batch);
    if (kept != NULL) {
        serve_file(x, kept->fd, &kept->st, name, &kept->v, kept);
        return;
    }
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
        kept = find_kept(name, batch);
        if (kept != NULL) {
            serve_file(x, kept->fd, &kept->st, name, &kept->v, kept);
            return;
        }
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
    kept = keep(name, fd, &st, batch);
    if (kept != NULL) {
        serve_file(x, fd, &st, name, &kept->v, kept);
        return;
    }
    struct validators v = validators_of(&st);
    serve_file(x, fd, &st, name, &v, NULL);
}
