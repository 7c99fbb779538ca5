/*
 * fuzz_path.c - libFuzzer target for the way stages 4 to 6 turn a request target into a file:
 * percent_decode() (percent.c), then static_serve() (static.c), which opens the file beneath
 * --root with openat2(RESOLVE_BENEATH). The copies are identical; stage 6's are built.
 *
 * Each input is a request target, optionally followed by a LF and more field lines (Range,
 * If-None-Match...). Checked:
 *   1. percent_decode() of the target's bytes agrees with a reference decoder written below
 *      (the same refusals, the same bytes), and never writes more than it read;
 *   2. when the parser accepts "GET <target> HTTP/1.1" (with Host and the extra fields), its
 *      path goes through the server's steps, decoding then static_serve(), in a small tree made
 *      once, in a temporary directory, by LLVMFuzzerInitialize(). Then:
 *        - every file opened, whatever the path, lies inside the root: each openat2() goes
 *          through __wrap_syscall() below (the Makefile links with --wrap=syscall), which asks
 *          /proc/self/fd where the new descriptor points. A file beside the root (secret.txt)
 *          and symbolic links that lead out of it are there to be escaped to;
 *        - the name passed to openat2() is the decoded path, whole: no NUL cut it short, and
 *          it is never absolute;
 *        - the answer agrees with a model of the tree written below, which resolves the path
 *          the way the kernel does with RESOLVE_BENEATH (a ".." above the root, an absolute or
 *          escaping link: refused) and applies static.c's rules (index.html, the redirect that
 *          adds a '/', 404 for what is not a regular file): the same status, the same file
 *          (by inode), the same Location;
 *        - exactly one response per request, and no descriptor left open once static.c has
 *          let go of the small files it keeps open (static_forget_files());
 *        - the same answer again when the request is repeated, now from the kept file;
 *        - a small file's body (read by static.c, not sent with sendfile()) is the file's
 *          content, or the part of it that Content-Range names;
 *        - EAGAIN from openat2() is tried again: the first call of every request is answered
 *          EAGAIN by __wrap_syscall() itself, as the kernel does when a rename races a "..",
 *          and the answer must still agree with the model. A 503 is allowed only after the
 *          kernel's own EAGAINs, many in a row (under a load of renames, which the model
 *          cannot foresee).
 * With extra fields the status may also be 206, 304 or 416, from the same file; a 206 must
 * stay within the file.
 */
#include "../../shared/http_parse.h"
#include "exchange.h"
#include "percent.h"
#include "response.h"
#include "static.h"
#include "fuzz_check.h"

#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* ---------------------------------------------------------------------------------------------
 * The tree, and a model of how a path resolves in it
 */

enum type { DIRECTORY, REGULAR, SYMLINK, FIFO };

struct entry {
    const char *path; /* under the root */
    enum type type;
    const char *link; /* a symbolic link's target */
};

// clang-format off
static const struct entry TREE[] = {
    {"index.html",     REGULAR,   NULL},
    {"a.txt",          REGULAR,   NULL},
    {"sp ace.txt",     REGULAR,   NULL},               /* "%20" */
    {"q?.txt",         REGULAR,   NULL},               /* only as "%3F": a '?' starts the query */
    {"pct%41.txt",     REGULAR,   NULL},               /* "pct%2541.txt": decoded once */
    {"dir",            DIRECTORY, NULL},
    {"dir/index.html", REGULAR,   NULL},
    {"dir/b.txt",      REGULAR,   NULL},
    {"dir/sub",        DIRECTORY, NULL},               /* no index.html: 404, never a listing */
    {"dir/up",         SYMLINK,   ".."},               /* back to the root: allowed */
    {"dir/out",        SYMLINK,   "../.."},            /* above the root: refused */
    {"dir/secret",     SYMLINK,   "../../secret.txt"},
    {"in",             SYMLINK,   "dir"},              /* stays inside: allowed */
    {"file-link",      SYMLINK,   "dir/b.txt"},
    {"etc",            SYMLINK,   "/etc"},             /* absolute: refused, wherever it points */
    {"slash",          SYMLINK,   "/"},
    {"loop",           SYMLINK,   "loop"},             /* ELOOP */
    {"dangling",       SYMLINK,   "nowhere"},
    {"fifo",           FIFO,      NULL},               /* opens (O_NONBLOCK), but is not served */
};
// clang-format on
enum { TREE_SIZE = sizeof TREE / sizeof TREE[0] };

static char base[PATH_MAX]; /* the temporary directory: root/ and secret.txt */
static char root[PATH_MAX]; /* base/root, as /proc/self/fd shows it */
static ino_t inodes[TREE_SIZE]; /* of each regular file, to tell which one was served */

/* What resolving a name gives: an index into TREE, the root itself, or an error. */
enum { ROOT = -1, NOT_FOUND = -2, ESCAPES = -3, TOO_MANY_LINKS = -4 };

static int find_entry(const char *path, size_t len)
{
    for (int i = 0; i < TREE_SIZE; i++) {
        if (strlen(TREE[i].path) == len && memcmp(TREE[i].path, path, len) == 0)
            return i;
    }
    return NOT_FOUND;
}

static bool is_directory(int at)
{
    return at == ROOT || (at >= 0 && TREE[at].type == DIRECTORY);
}

/* The directory above `at` (a directory, not the root). */
static int parent_of(int at)
{
    const char *slash = strrchr(TREE[at].path, '/');
    return slash == NULL ? ROOT : find_entry(TREE[at].path, (size_t)(slash - TREE[at].path));
}

/* Resolves name from the directory `at`, as openat2() with RESOLVE_BENEATH does: "." and empty
 * components are skipped, ".." goes up but never above the root, symbolic links are followed
 * (at most 40 in all, as Linux does) unless absolute, and a component after something that is
 * not a directory fails (ENOTDIR; a trailing '/' counts). */
static int resolve(int at, const char *name, int *links)
{
    const char *component = name;
    for (;;) {
        size_t len = strcspn(component, "/");
        bool last = component[len] == '\0';
        if (len == 0 || (len == 1 && component[0] == '.')) {
            /* nothing to do */
        } else if (len == 2 && component[0] == '.' && component[1] == '.') {
            if (at == ROOT)
                return ESCAPES;
            at = parent_of(at);
        } else {
            char path[PATH_MAX];
            int n = at == ROOT ? snprintf(path, sizeof path, "%.*s", (int)len, component)
                               : snprintf(path, sizeof path, "%s/%.*s", TREE[at].path, (int)len,
                                          component);
            int next = n > 0 && (size_t)n < sizeof path ? find_entry(path, (size_t)n) : NOT_FOUND;
            if (next >= 0 && TREE[next].type == SYMLINK) {
                if (++*links > 40)
                    return TOO_MANY_LINKS;
                if (TREE[next].link[0] == '/')
                    return ESCAPES;
                next = resolve(at, TREE[next].link, links);
            }
            if (next < 0 && next != ROOT)
                return next;
            if (!is_directory(next) && !last)
                return NOT_FOUND;
            at = next;
        }
        if (last)
            return at;
        component += len + 1;
    }
}

static int resolve_from_root(const char *name)
{
    int links = 0;
    return resolve(ROOT, name, &links);
}

/* How many '/' path[0..len) starts with. */
static size_t leading_slashes(const char *path, size_t len)
{
    size_t n = 0;
    while (n < len && path[n] == '/')
        n++;
    return n;
}

/* What static_serve() must answer for the decoded path, by static.c's rules; *file is the
 * entry served with a 200. */
static int expected_status(const char *path, size_t len, int *file)
{
    char name[HTTP_MAX_TARGET_LEN + sizeof "/index.html"];
    size_t skip = leading_slashes(path, len), name_len = len - skip;
    if (name_len + sizeof "/index.html" > sizeof name)
        return 414;
    memcpy(name, path + skip, name_len);
    name[name_len] = '\0';

    int at = resolve_from_root(name[0] != '\0' ? name : ".");
    if (is_directory(at)) {
        if (path[len - 1] != '/')
            return 301;
        memcpy(name + name_len, "index.html", sizeof "index.html"); /* room checked above */
        at = resolve_from_root(name);
    }
    if (at < 0 || TREE[at].type != REGULAR)
        return 404;
    *file = at;
    return 200;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void remove_tree(void)
{
    nftw(base, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void make_tree(void)
{
    char path[PATH_MAX + 32], real_base[PATH_MAX];
    strcpy(base, "/tmp/fuzz_path.XXXXXX");
    check(mkdtemp(base) != NULL, "mkdtemp failed");
    atexit(remove_tree);
    check(realpath(base, real_base) != NULL, "realpath failed");
    int n = snprintf(root, sizeof root, "%s/root", real_base);
    check(n > 0 && (size_t)n < sizeof root, "the temporary directory's name is too long");
    check(mkdir(root, 0755) == 0, "mkdir failed");

    snprintf(path, sizeof path, "%s/secret.txt", base);
    FILE *f = fopen(path, "w");
    check(f != NULL && fputs("outside the root\n", f) >= 0 && fclose(f) == 0, "secret.txt");

    for (int i = 0; i < TREE_SIZE; i++) {
        snprintf(path, sizeof path, "%s/%s", root, TREE[i].path);
        int ok = 0;
        switch (TREE[i].type) {
        case DIRECTORY:
            ok = mkdir(path, 0755);
            break;
        case REGULAR:
            f = fopen(path, "w");
            ok = f != NULL && fprintf(f, "%s\n", TREE[i].path) > 0 && fclose(f) == 0 ? 0 : -1;
            break;
        case SYMLINK:
            ok = symlink(TREE[i].link, path);
            break;
        case FIFO:
            ok = mkfifo(path, 0644);
            break;
        }
        check(ok == 0, "could not make the tree");
        struct stat st;
        check(lstat(path, &st) == 0, "lstat failed");
        inodes[i] = st.st_ino;
    }
}

/* ---------------------------------------------------------------------------------------------
 * What static.c calls: openat2() through syscall(), and the responses
 */

/* The decoded name static_serve() should be opening (without its leading '/'s). */
static const char *opening;
static size_t opening_len;

/* How many of the latest openat2() calls failed with EAGAIN, which the kernel answers when a
 * rename anywhere on the system raced with a ".." (static.c's OPENAT2_TRIES says more). */
static int eagain_in_a_row;
static bool eagain_faked; /* the request's first openat2() has been answered EAGAIN, here */

static void check_inside_root(int fd)
{
    char proc[64], target[PATH_MAX];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(proc, target, sizeof target - 1);
    check(n > 0, "readlink /proc/self/fd failed");
    target[n] = '\0';
    size_t root_len = strlen(root);
    if (strncmp(target, root, root_len) != 0 ||
        (target[root_len] != '\0' && target[root_len] != '/')) {
        fprintf(stderr, "opened %s\n", target);
        fail("a file outside the root was opened");
    }
}

/* The name static_serve() may open: "." for the root, else the decoded path, whole, perhaps
 * with index.html after it. */
static bool is_expected_name(const char *name)
{
    if (opening == NULL)
        return true; /* static_open_root() trying the root */
    if (opening_len == 0 && strcmp(name, ".") == 0)
        return true;
    return strlen(name) >= opening_len && memcmp(name, opening, opening_len) == 0 &&
           (name[opening_len] == '\0' || strcmp(name + opening_len, "index.html") == 0);
}

// NOLINTNEXTLINE(bugprone-reserved-identifier): ld's --wrap=syscall dictates the name
long __real_syscall(long number, ...);

// NOLINTNEXTLINE(bugprone-reserved-identifier): ld's --wrap=syscall dictates the name
long __wrap_syscall(long number, ...)
{
    check(number == SYS_openat2, "static.c made a system call other than openat2");
    va_list ap;
    va_start(ap, number);
    int dir_fd = va_arg(ap, int);
    const char *name = va_arg(ap, const char *);
    void *how = va_arg(ap, void *);
    size_t how_size = va_arg(ap, size_t);
    va_end(ap);

    check(is_expected_name(name), "openat2() was given another name than the decoded path");
    check(name[0] != '/', "openat2() was given an absolute name");

    if (opening != NULL && !eagain_faked) {
        eagain_faked = true; /* so that every request takes static.c's retry */
        eagain_in_a_row = 1;
        errno = EAGAIN;
        return -1;
    }
    long fd = __real_syscall(number, dir_fd, name, how, how_size);
    if (fd >= 0)
        check_inside_root((int)fd);
    eagain_in_a_row = fd < 0 && errno == EAGAIN ? eagain_in_a_row + 1 : 0;
    return fd;
}

/* The response static_serve() gave. */
static struct {
    int count, status;
    char headers[HTTP_MAX_TARGET_LEN + 64]; /* room for a Location with the longest target */
    ino_t file; /* a file handed to the connection (respond_file()), by inode; else 0 */
    off_t offset;
    size_t len, file_size;
    char body[PATH_MAX + 1]; /* respond()'s body: the tree's files hold their own path */
    size_t body_len;
} response;

static void record(int status, const char *extra_headers)
{
    response.count++;
    response.status = status;
    int n = snprintf(response.headers, sizeof response.headers, "%s",
                     extra_headers ? extra_headers : "");
    check(n >= 0 && (size_t)n < sizeof response.headers, "the headers do not fit the record");
}

void respond(struct exchange *x, int status, const char *content_type, const char *extra_headers,
             const void *body, size_t body_len)
{
    (void)x, (void)content_type;
    record(status, extra_headers);
    check(body_len <= sizeof response.body, "a body larger than any file of the tree");
    if (body_len > 0)
        memcpy(response.body, body, body_len);
    response.body_len = body_len;
}

void respond_status(struct exchange *x, int status, const char *extra_headers)
{
    (void)x;
    record(status, extra_headers);
}

void respond_file(struct exchange *x, int status, const char *content_type,
                  const char *extra_headers, int fd, off_t offset, size_t len)
{
    (void)x, (void)content_type;
    record(status, extra_headers);
    struct stat st;
    check(fstat(fd, &st) == 0, "respond_file() got a bad descriptor");
    response.file = st.st_ino;
    response.file_size = (size_t)st.st_size;
    response.offset = offset;
    response.len = len;
    check(close(fd) == 0, "close failed");
}

/* The loop's batch of events (conn.c): static.c checks a kept file with fstat() once a batch. */
static uint64_t batch;

uint64_t conn_batch(const struct conn *c)
{
    (void)c;
    return batch;
}

/* ---------------------------------------------------------------------------------------------
 * The target
 */

// NOLINTNEXTLINE(readability-non-const-parameter): the signature libFuzzer calls
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char err[256];
    make_tree();
    if (!static_open_root(root, err, sizeof err)) {
        fprintf(stderr, "fuzz_path: %s\n", err);
        exit(1);
    }
    return 0;
}

/* The reference: '%' and two hex digits is that byte, but never NUL; any other '%' is wrong.
 * A digit's place in HEX, mod 16, is its value; strchr() would also find HEX's own NUL, so a
 * NUL byte is never looked up. */
static ssize_t reference_decode(const uint8_t *src, size_t len, uint8_t *out)
{
    static const char HEX[] = "0123456789abcdef0123456789ABCDEF";
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (src[i] != '%') {
            out[n++] = src[i];
            continue;
        }
        const char *high = i + 2 < len && src[i + 1] != '\0' ? strchr(HEX, src[i + 1]) : NULL;
        const char *low = i + 2 < len && src[i + 2] != '\0' ? strchr(HEX, src[i + 2]) : NULL;
        if (high == NULL || low == NULL)
            return -1;
        out[n] = (uint8_t)((high - HEX) % 16 * 16 + (low - HEX) % 16);
        if (out[n++] == 0)
            return -1;
        i += 2;
    }
    return (ssize_t)n;
}

static void fuzz_decode(const uint8_t *src, size_t len)
{
    char *in = malloc(len ? len : 1), *out = malloc(len ? len : 1); /* exact sizes */
    uint8_t *want = malloc(len ? len : 1);
    check(in != NULL && out != NULL && want != NULL, "out of memory");
    memcpy(in, src, len);
    ssize_t n = percent_decode(in, len, out);
    check(n == reference_decode(src, len, want), "percent_decode() refuses otherwise");
    check(n < 0 || memcmp(out, want, (size_t)n) == 0, "percent_decode() decodes otherwise");
    check(n < 0 || memchr(src, '\0', len) != NULL || memchr(out, '\0', (size_t)n) == NULL,
          "a NUL was decoded");
    free(in);
    free(out);
    free(want);
}

/* The lowest free descriptor: the same before and after a request, or one was left open. */
static int lowest_free_fd(void)
{
    int fd = dup(2);
    check(fd >= 0 && close(fd) == 0, "dup failed");
    return fd;
}

/* One request through static_serve(), checked against the model's answer (want, file;
 * with extra fields, also 206, 304 or 416). False if the answer was a 503, which the model
 * cannot foresee. */
static bool serve_and_check(struct exchange *x, int want, int file, bool extra_fields)
{
    const struct http_request *req = x->req;
    memset(&response, 0, sizeof response);
    eagain_in_a_row = 0;
    eagain_faked = false;
    static_serve(x);
    check(response.count == 1, "not exactly one response");
    if (response.status == 503) {
        /* Only when renames kept racing the lookup, try after try (rare, but not under a
         * renaming load): the model cannot foresee that, and 503 serves nothing. */
        check(eagain_in_a_row > 1, "503 without openat2() failing with EAGAIN, again and again");
        return false;
    }

    if (response.status != want &&
        !(want == 200 && extra_fields &&
          (response.status == 206 || response.status == 304 || response.status == 416))) {
        fprintf(stderr, "path \"%.*s\": status %d, the model says %d\n", (int)x->path.len,
                x->path.ptr, response.status, want);
        fail("static_serve() and the model disagree");
    }
    if ((response.status == 200 || response.status == 206) && response.file != 0) {
        check(response.file == inodes[file], "another file was served");
        if (response.status == 200)
            check(response.offset == 0 && response.len == response.file_size, "not all of it");
        else
            check(response.len > 0 && (size_t)response.offset + response.len <= response.file_size,
                  "a range not within the file");
    } else if (response.status == 200 || response.status == 206) {
        /* A small file, read into the response: its content is its path and a newline. */
        char content[PATH_MAX + 1];
        int size = snprintf(content, sizeof content, "%s\n", TREE[file].path);
        unsigned long first = 0, last = (unsigned long)size - 1, total = (unsigned long)size;
        if (response.status == 206) {
            static const char NAME[] = "Content-Range: bytes ";
            const char *range = strstr(response.headers, NAME);
            check(range != NULL, "a 206 without a Content-Range");
            char *end;
            first = strtoul(range + sizeof NAME - 1, &end, 10);
            check(*end == '-', "a Content-Range without its '-'");
            last = strtoul(end + 1, &end, 10);
            check(*end == '/', "a Content-Range without its '/'");
            total = strtoul(end + 1, &end, 10);
        }
        check(total == (size_t)size && first <= last && last < total, "a range not within the file");
        check(response.body_len == last - first + 1 &&
                  memcmp(response.body, content + first, response.body_len) == 0,
              "another file's bytes, or another part of the file, were served");
    }
    if (response.status == 301) {
        char location[HTTP_MAX_TARGET_LEN + 32];
        snprintf(location, sizeof location, "Location: %.*s/%s%.*s\r\n", (int)req->path.len,
                 req->path.ptr, req->query.ptr != NULL ? "?" : "", (int)req->query.len,
                 req->query.ptr != NULL ? req->query.ptr : "");
        check(strcmp(response.headers, location) == 0, "another Location");
    }
    return true;
}

/* The request through the server's steps: parse, decode (as app.c's dispatch()), serve. */
static void fuzz_serve(const uint8_t *target, size_t target_len, const uint8_t *fields,
                       size_t fields_len)
{
    if (memchr(target, '\0', target_len) != NULL || memchr(fields, '\0', fields_len) != NULL)
        return; /* %.*s would stop at a NUL; the parser refuses one anyway */
    static char head[HTTP_MAX_HEAD_LEN + 64];
    int n = snprintf(head, sizeof head, "GET %.*s HTTP/1.1\r\nHost: fuzz\r\n%.*s%s\r\n",
                     (int)target_len, (const char *)target, (int)fields_len, (const char *)fields,
                     fields_len > 0 ? "\r\n" : "");
    if (n < 0 || (size_t)n >= sizeof head)
        return;

    struct http_request_parser p;
    struct http_request req;
    http_request_parser_init(&p);
    if (http_parse_request(&p, head, (size_t)n, &req) != n || req.path.ptr[0] != '/')
        return; /* refused, or "*" (asterisk-form), which dispatch() never serves as a file */

    char decoded[HTTP_MAX_TARGET_LEN];
    check(req.path.len <= sizeof decoded, "the parser passed a path over the limit");
    ssize_t len = percent_decode(req.path.ptr, req.path.len, decoded);
    if (len < 0)
        return; /* 400 */

    struct exchange x = {.req = &req, .path = {decoded, (size_t)len}};
    int file = -1;
    int want = expected_status(decoded, (size_t)len, &file);
    size_t skip = leading_slashes(decoded, (size_t)len);
    opening = decoded + skip;
    opening_len = (size_t)len - skip;

    /* First with nothing kept: the file is opened (and openat2() answers EAGAIN once); then
     * again, from the file static.c kept open, if it did: in the same batch of events, as
     * fstat() found it, then in the next, checked with fstat() again. */
    int fds_before = lowest_free_fd();
    static_forget_files();
    for (int round = 0; round < 3; round++) {
        if (round != 1)
            batch++;
        if (!serve_and_check(&x, want, file, fields_len > 0))
            break;
    }
    static_forget_files();
    check(lowest_free_fd() == fds_before, "a descriptor was left open");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *lf = memchr(data, '\n', size);
    size_t target_len = lf != NULL ? (size_t)(lf - data) : size;

    fuzz_decode(data, target_len);
    if (lf != NULL)
        fuzz_serve(data, target_len, lf + 1, size - target_len - 1);
    else
        fuzz_serve(data, target_len, data, 0);
    return 0;
}
