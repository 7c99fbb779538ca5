/*
 * router.c - a radix trie over path segments (see router.h for the pattern syntax).
 *
 * The trie. Each node stands for a position between two segments of a path; the root is the
 * position before the first segment. A node's children are the ways to take the next segment:
 *     static children   each labelled with one or more whole segments, e.g. "users" or
 *                       "gitignore/templates";
 *     one parameter     ":name", takes any one non-empty segment;
 *     one wildcard      "*name", takes all the rest; it is always a leaf.
 * "Radix" (compressed): a chain of static nodes that have nothing else to tell apart, each with
 * one static child and no route of its own, is kept as one node whose label holds all their
 * segments, so "/gitignore/templates" costs one comparison instead of two. A node splits when a
 * later pattern branches off in the middle of its label. Siblings never share their first
 * segment, so at most one static child can match a path.
 *
 * Precedence: at each node, the static child is tried first, then the parameter, then the
 * wildcard. So for "/users/me", the pattern "/users/me" beats "/users/:id", which beats
 * "/users" followed by a wildcard segment "*rest". And since the choice is made from the left,
 * "/a/:x/c" beats "/:y/b/c".
 *
 * Dead ends and backtracking: if the preferred child leads nowhere (the path runs out of trie,
 * or ends on a node where no route ends), the lookup backs up and tries the next child in
 * precedence order. With "/users/me/settings" and "/users/:id/posts", the path
 * "/users/me/posts" first follows the static "me", finds no "posts" below it, backs up, and
 * matches "/users/:id/posts". We backtrack because without it, adding a route would silently
 * take paths away from another one; a router whose answer depends on what else happens to be in
 * the table is a trap. The cost is bounded: backtracking makes the lookup a depth-first search of
 * the trie, which visits each node at most once, so even a path crafted to back up as much as
 * possible costs no more than one walk over the whole trie. A typical lookup never backs up.
 *
 * Methods do not take part in matching: the path alone picks the pattern, then the method picks
 * the handler. If the pattern has no route for the method, the answer is 405 with that pattern's
 * methods; we do not backtrack to look for another pattern that has one, so the Allow header
 * always tells the truth about the URL the client sent.
 *
 * Paths, segment by segment, compared byte for byte (the caller has percent-decoded them):
 *   - "/" is one empty segment; "/users/" is "users" then an empty segment, so it is not
 *     "/users" (directories and their redirects are the static-file layer's business).
 *   - An empty segment ("//", or a trailing '/') is never a parameter value: an empty id is
 *     never what a handler wants, and it should not have to check. Only a wildcard, or a
 *     pattern that ends in '/', takes one.
 *   - A wildcard needs its '/': "/files" followed by "*path" matches "/files/" (path "") and
 *     "/files/a/b", but not "/files".
 *
 * Memory. All nodes, child arrays, labels and handler tables live in an arena: a few large
 * blocks, allocated as the trie grows and freed at once. Nodes built together sit together, and
 * destroying the router is one walk over the block list instead of one over the trie. A node is
 * 64 bytes, aligned, so each is one cache line. A node's static children are one contiguous
 * array of nodes (not of pointers to nodes scattered over the heap), and beside it a byte array
 * of their labels' first bytes: the lookup scans that small array for the first byte of the
 * path's next segment and compares whole labels only where it matches, which for GitHub's API
 * is nearly always the right child and only it. A growing child array is copied to one twice as
 * big and the old one is left in the arena: routes are added once, at start-up, so the waste is
 * bounded by the final arrays' size.
 */
#include "router.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The methods are the enum's values 0 .. HTTP_METHOD_PATCH. */
enum { ROUTER_METHOD_COUNT = HTTP_METHOD_PATCH + 1 };

// clang-format off
/* For Allow headers, error messages and the DOT output. */
static const char *const method_names[ROUTER_METHOD_COUNT] = {
    [HTTP_METHOD_GET]     = "GET",
    [HTTP_METHOD_HEAD]    = "HEAD",
    [HTTP_METHOD_POST]    = "POST",
    [HTTP_METHOD_PUT]     = "PUT",
    [HTTP_METHOD_DELETE]  = "DELETE",
    [HTTP_METHOD_OPTIONS] = "OPTIONS",
    [HTTP_METHOD_PATCH]   = "PATCH",
};
// clang-format on

/* Arena blocks are this big unless one allocation needs more. The GitHub API's 203 routes take
 * three. */
enum { ARENA_BLOCK_SIZE = 16 * 1024 };

enum { CACHE_LINE = 64 };

struct arena_block {
    struct arena_block *next;
    size_t size, used;
    unsigned char data[];
};

struct arena {
    struct arena_block *blocks; /* the newest first: it is the one we allocate from */
    size_t total_bytes;
};

/* What a route ending at a node needs; only the lookup's last step reads it, so it is kept out
 * of the node to keep the node to one cache line. */
struct route_end {
    const char *pattern; /* as added: all routes ending here have the same one */
    route_handler *handlers[ROUTER_METHOD_COUNT];
};

struct node {
    const char *label; /* static: segment(s) without the leading '/'; ":name" or "*name" */
    unsigned char *first_bytes; /* first_bytes[i] is first_byte() of statics[i]'s label */
    struct node *statics; /* static children */
    struct node *param; /* the ":name" child, or NULL */
    struct node *wildcard; /* the "*name" child, or NULL */
    struct route_end *end; /* NULL unless a route ends here */
    uint32_t label_len;
    uint32_t allowed; /* bit (1u << method) per route ending here, HEAD too with GET; 0 if none */
    uint32_t static_count, static_capacity;
};

/* The lookup reads one node per step; let that be one cache line (a check, not a guess). */
_Static_assert(sizeof(struct node) <= CACHE_LINE, "a node is one cache line");

struct router {
    struct node root;
    struct arena arena;
    size_t node_count;
};

/* ---- the arena ---- */

/* Zeroed memory, aligned to align (a power of two), that lives until the arena is freed. */
static void *arena_alloc(struct arena *a, size_t size, size_t align)
{
    struct arena_block *b = a->blocks;
    if (b != NULL) {
        uintptr_t start = (uintptr_t)(b->data + b->used);
        size_t offset = b->used + (((start + align - 1) & ~(uintptr_t)(align - 1)) - start);
        if (offset + size <= b->size) {
            b->used = offset + size;
            return b->data + offset;
        }
    }
    /* A new block, with room to align. What was left in the old one is wasted; it is smaller
     * than this allocation, and this happens only while routes are being added. */
    size_t capacity = size + align > ARENA_BLOCK_SIZE ? size + align : ARENA_BLOCK_SIZE;
    b = calloc(1, sizeof *b + capacity);
    if (b == NULL)
        return NULL;
    b->size = capacity;
    b->next = a->blocks;
    a->blocks = b;
    a->total_bytes += sizeof *b + capacity;
    return arena_alloc(a, size, align);
}

static void arena_free(struct arena *a)
{
    while (a->blocks != NULL) {
        struct arena_block *next = a->blocks->next;
        free(a->blocks);
        a->blocks = next;
    }
}

/* ---- building the trie ---- */

/* Formats a message into err (if there is room for one) and returns false, so that a failing
 * check can be `return fail(...)`. */
__attribute__((format(printf, 3, 4))) static bool fail(char *err, size_t errlen, const char *fmt,
                                                       ...)
{
    if (err != NULL && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return false;
}

static bool is_param_marker(char c)
{
    return c == ':' || c == '*';
}

/*
 * The byte static children are told apart by before their labels are compared: the first one.
 * An empty label or segment has none; '/' stands in for it, since no segment contains a '/', and
 * an empty segment is followed by '/' or by nothing.
 */
static unsigned char first_byte(const char *text, size_t len)
{
    return len > 0 ? (unsigned char)text[0] : '/';
}

/* Checks the whole pattern before the trie is touched, so a bad one leaves the router as it
 * was. */
static bool check_pattern(const char *pattern, char *err, size_t errlen)
{
    if (pattern[0] != '/')
        return fail(err, errlen, "pattern \"%s\" does not start with '/'", pattern);

    struct http_slice names[ROUTER_MAX_PARAMS];
    size_t name_count = 0;
    const char *segment = pattern + 1;
    for (;;) {
        size_t len = strcspn(segment, "/");
        bool last = segment[len] == '\0';
        if (len == 0 && !last)
            return fail(err, errlen, "pattern \"%s\" has an empty segment", pattern);
        if (len > 0 && is_param_marker(segment[0])) {
            if (len == 1)
                return fail(err, errlen, "pattern \"%s\" has a parameter with no name", pattern);
            if (segment[0] == '*' && !last)
                return fail(err, errlen, "in \"%s\", the wildcard is not the last segment",
                            pattern);
            if (name_count == ROUTER_MAX_PARAMS)
                return fail(err, errlen, "pattern \"%s\" has more than %d parameters", pattern,
                            ROUTER_MAX_PARAMS);
            struct http_slice name = {segment + 1, len - 1};
            for (size_t i = 0; i < name_count; i++) {
                if (names[i].len == name.len && memcmp(names[i].ptr, name.ptr, name.len) == 0)
                    return fail(err, errlen, "pattern \"%s\" uses the name \"%.*s\" twice", pattern,
                                (int)name.len, name.ptr);
            }
            names[name_count++] = name;
        }
        if (last)
            return true;
        segment += len + 1;
    }
}

/* From segment, which is static, the length of the run of static segments that follow each
 * other: up to a parameter or wildcard segment (without the '/' before it), or the end. */
static size_t static_run_length(const char *segment)
{
    const char *p = segment;
    for (;;) {
        p += strcspn(p, "/");
        if (*p == '\0' || is_param_marker(p[1]))
            return (size_t)(p - segment);
        p++;
    }
}

/*
 * Whether a and b (each one or more segments joined by '/') start with the same segment. If so,
 * *common is the length of the longest run of whole segments they start with, e.g. 5 for
 * "users/1" and "users/2", 0 for "" and "" (one empty segment each).
 */
static bool share_first_segment(const char *a, size_t a_len, const char *b, size_t b_len,
                                size_t *common)
{
    bool shared = false;
    for (size_t i = 0;; i++) {
        bool a_segment_ends = i == a_len || a[i] == '/';
        bool b_segment_ends = i == b_len || b[i] == '/';
        if (a_segment_ends && b_segment_ends) {
            shared = true;
            *common = i;
            if (i == a_len || i == b_len)
                break;
        } else if (a_segment_ends || b_segment_ends || a[i] != b[i]) {
            break;
        }
    }
    return shared;
}

/* Copies child into parent's static children; returns where it now is. */
static struct node *append_static_child(struct router *r, struct node *parent,
                                        const struct node *child)
{
    if (parent->static_count == parent->static_capacity) {
        size_t capacity = parent->static_capacity ? 2u * parent->static_capacity : 2;
        struct node *statics = arena_alloc(&r->arena, capacity * sizeof *statics, CACHE_LINE);
        unsigned char *first_bytes = arena_alloc(&r->arena, capacity, 1);
        if (statics == NULL || first_bytes == NULL)
            return NULL;
        if (parent->static_count > 0) {
            memcpy(statics, parent->statics, parent->static_count * sizeof *statics);
            memcpy(first_bytes, parent->first_bytes, parent->static_count);
        }
        parent->statics = statics;
        parent->first_bytes = first_bytes;
        parent->static_capacity = (uint32_t)capacity;
    }
    size_t i = parent->static_count++;
    parent->statics[i] = *child;
    parent->first_bytes[i] = first_byte(child->label, child->label_len);
    r->node_count++;
    return &parent->statics[i];
}

/*
 * Splits a static node after the first prefix_len bytes of its label (a segment boundary): the
 * node keeps the prefix, and a new only child takes the rest of the label and everything the node
 * had. The node stays where it is, so pointers to it stay valid.
 */
static bool split_node(struct router *r, struct node *node, size_t prefix_len)
{
    struct node suffix = *node;
    suffix.label += prefix_len + 1; /* past the '/' */
    suffix.label_len -= (uint32_t)(prefix_len + 1);

    struct node prefix = {.label = node->label, .label_len = (uint32_t)prefix_len};
    if (append_static_child(r, &prefix, &suffix) == NULL)
        return false;
    *node = prefix;
    return true;
}

/* The static child of parent that the run of static segments goes through, split off or added
 * as needed; its label is a prefix of run. */
static struct node *insert_static(struct router *r, struct node *parent, const char *run,
                                  size_t run_len)
{
    for (size_t i = 0; i < parent->static_count; i++) {
        struct node *child = &parent->statics[i];
        size_t common;
        if (!share_first_segment(child->label, child->label_len, run, run_len, &common))
            continue;
        if (common < child->label_len && !split_node(r, child, common))
            return NULL;
        return child;
    }
    struct node leaf = {.label = run, .label_len = (uint32_t)run_len};
    return append_static_child(r, parent, &leaf);
}

/* The parameter or wildcard child of parent for segment (":name" or "*name"), added if
 * missing. NULL if the position already has one with another name. */
static struct node *insert_param(struct router *r, struct node *parent, const char *segment,
                                 size_t len, char *err, size_t errlen)
{
    struct node **slot = segment[0] == ':' ? &parent->param : &parent->wildcard;
    struct node *child = *slot;
    if (child == NULL) {
        child = arena_alloc(&r->arena, sizeof *child, CACHE_LINE);
        if (child == NULL) {
            fail(err, errlen, "out of memory");
            return NULL;
        }
        child->label = segment;
        child->label_len = (uint32_t)len;
        *slot = child;
        r->node_count++;
    } else if (child->label_len != len || memcmp(child->label, segment, len) != 0) {
        fail(err, errlen, "\"%.*s\" conflicts with \"%.*s\", added before at the same position",
             (int)len, segment, (int)child->label_len, child->label);
        return NULL;
    }
    return child;
}

/* The node where pattern (checked, and kept by the arena) ends, made if missing. */
static struct node *insert_pattern(struct router *r, const char *pattern, char *err, size_t errlen)
{
    struct node *node = &r->root;
    const char *rest = pattern; /* what is below node: "" or "/segment..." */
    while (*rest != '\0') {
        const char *segment = rest + 1;
        if (is_param_marker(segment[0])) {
            node = insert_param(r, node, segment, strcspn(segment, "/"), err, errlen);
        } else {
            node = insert_static(r, node, segment, static_run_length(segment));
            if (node == NULL)
                fail(err, errlen, "out of memory");
        }
        if (node == NULL)
            return NULL;
        rest = segment + node->label_len;
    }
    return node;
}

bool router_add(struct router *r, enum http_method method, const char *pattern,
                route_handler *handler, char *err, size_t errlen)
{
    if ((unsigned)method >= ROUTER_METHOD_COUNT)
        return fail(err, errlen, "unknown method %d for \"%s\"", (int)method, pattern);
    if (handler == NULL)
        return fail(err, errlen, "no handler for \"%s\"", pattern);
    if (!check_pattern(pattern, err, errlen))
        return false;

    /* Labels and parameter names point into this copy, so the caller's may go away. */
    size_t size = strlen(pattern) + 1;
    char *copy = arena_alloc(&r->arena, size, 1);
    if (copy == NULL)
        return fail(err, errlen, "out of memory");
    memcpy(copy, pattern, size);

    struct node *node = insert_pattern(r, copy, err, errlen);
    if (node == NULL)
        return false;
    if (node->end == NULL) {
        node->end = arena_alloc(&r->arena, sizeof *node->end, _Alignof(struct route_end));
        if (node->end == NULL)
            return fail(err, errlen, "out of memory");
        node->end->pattern = copy;
    }
    route_handler **handlers = node->end->handlers;
    if (handlers[method] != NULL)
        return fail(err, errlen, "%s %s was added twice", method_names[method], pattern);
    handlers[method] = handler;
    node->allowed |= 1u << method;
    if (method == HTTP_METHOD_GET)
        node->allowed |= 1u << HTTP_METHOD_HEAD;
    return true;
}

struct router *router_create(void)
{
    struct router *r = calloc(1, sizeof *r);
    if (r != NULL)
        r->node_count = 1;
    return r;
}

void router_destroy(struct router *r)
{
    if (r == NULL)
        return;
    arena_free(&r->arena);
    free(r);
}

void router_get_stats(const struct router *r, struct router_stats *stats)
{
    stats->nodes = r->node_count;
    stats->arena_bytes = r->arena.total_bytes;
}

/* ---- the lookup ---- */

/*
 * The static child whose label is the next segment(s) of segments[0..len), or NULL. The scan
 * reads only the first-byte array (a few dozen bytes at most) and touches a child node only when
 * its first byte matches, which among GitHub's siblings is nearly always the one child that
 * matches. Labels are compared with memcmp() and segments measured with memchr(): libc's work a
 * word or a vector at a time, and measured faster here than byte loops, whose exit branch is
 * mispredicted on nearly every call because every label has another length.
 */
static const struct node *find_static_child(const struct node *node, const char *segments,
                                            size_t len)
{
    unsigned char first = first_byte(segments, len);
    for (size_t i = 0; i < node->static_count; i++) {
        if (node->first_bytes[i] != first)
            continue;
        const struct node *child = &node->statics[i];
        size_t label_len = child->label_len;
        if (label_len <= len && memcmp(child->label, segments, label_len) == 0 &&
            (label_len == len || segments[label_len] == '/'))
            return child;
        /* Same first byte, other text ("user", "users"): keep looking. */
    }
    return NULL;
}

/* The length of the segment at the start of segments[0..len): up to its '/', or all of it. */
static size_t segment_length(const char *segments, size_t len)
{
    const char *slash = memchr(segments, '/', len);
    return slash != NULL ? (size_t)(slash - segments) : len;
}

static void push_param(struct route_match *match, const struct node *child, const char *value,
                       size_t len)
{
    struct route_param *p = &match->params[match->param_count++];
    p->name = (struct http_slice){child->label + 1, child->label_len - 1};
    p->value = (struct http_slice){value, len};
}

/*
 * The node where a route for rest[0..len) ends, looking below node, with the parameters on the
 * way appended to match; NULL if none. rest is "" (the path ends at node) or "/segment...".
 * Recursive, for backtracking; the depth is bounded by the trie's, not by the path's.
 * match->params cannot overflow: every parameter node on the way belongs to a pattern with all
 * the parameters above it, and router_add() allows no more than ROUTER_MAX_PARAMS.
 */
static const struct node *find_route(const struct node *node, const char *rest, size_t len,
                                     struct route_match *match)
{
    if (len == 0)
        return node->allowed ? node : NULL;
    const char *segments = rest + 1; /* past the '/' */
    size_t segments_len = len - 1;

    const struct node *child = find_static_child(node, segments, segments_len);
    if (child != NULL) {
        const struct node *found =
            find_route(child, segments + child->label_len, segments_len - child->label_len, match);
        if (found != NULL)
            return found;
    }

    size_t segment_len = node->param != NULL ? segment_length(segments, segments_len) : 0;
    if (segment_len > 0) { /* a parameter is never empty */
        push_param(match, node->param, segments, segment_len);
        const struct node *found =
            find_route(node->param, segments + segment_len, segments_len - segment_len, match);
        if (found != NULL)
            return found;
        match->param_count--; /* backtrack: this value was not part of a match */
    }

    if (node->wildcard != NULL && node->wildcard->allowed) {
        push_param(match, node->wildcard, segments, segments_len);
        return node->wildcard;
    }
    return NULL;
}

enum route_result router_lookup(const struct router *r, enum http_method method, const char *path,
                                size_t len, struct route_match *match)
{
    match->param_count = 0;
    const struct node *found = NULL;
    if (len > 0 && path[0] == '/')
        found = find_route(&r->root, path, len, match);
    if (found == NULL) {
        match->handler = NULL;
        match->allowed = 0;
        match->param_count = 0;
        match->pattern = NULL;
        return ROUTE_NOT_FOUND;
    }

    match->allowed = found->allowed;
    match->pattern = found->end->pattern;
    route_handler *handler = NULL;
    if ((unsigned)method < ROUTER_METHOD_COUNT)
        handler = found->end->handlers[method];
    if (handler == NULL && method == HTTP_METHOD_HEAD)
        handler = found->end->handlers[HTTP_METHOD_GET];
    match->handler = handler;
    return handler != NULL ? ROUTE_FOUND : ROUTE_METHOD_NOT_ALLOWED;
}

/* ---- describing it ---- */

/* Appends text at buf[len], as much of it as fits before buf's last byte (kept for the NUL);
 * returns the length with all of text, as if it had fit. */
static size_t append_text(char *buf, size_t size, size_t len, const char *text)
{
    size_t text_len = strlen(text);
    if (len + 1 < size) {
        size_t room = size - 1 - len;
        memcpy(buf + len, text, text_len < room ? text_len : room);
    }
    return len + text_len;
}

size_t router_allow_header(unsigned allowed, char *buf, size_t size)
{
    size_t len = 0;
    for (int m = 0; m < ROUTER_METHOD_COUNT; m++) {
        if (!(allowed & (1u << m)))
            continue;
        if (len > 0)
            len = append_text(buf, size, len, ", ");
        len = append_text(buf, size, len, method_names[m]);
    }
    if (size > 0)
        buf[len < size ? len : size - 1] = '\0';
    return len;
}

/* Writes text as the inside of a DOT string: '"' and '\' escaped, as DOT reads them. */
static void write_dot_text(FILE *out, const char *text, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (text[i] == '"' || text[i] == '\\')
            fputc('\\', out);
        fputc(text[i], out);
    }
}

static unsigned write_dot_child(FILE *out, unsigned parent_id, const struct node *child,
                                unsigned child_id);

/* Writes node and, depth first, everything below it; returns the next unused node number. Nodes
 * where routes end get their methods on a second line and a double border. */
static unsigned write_dot_node(FILE *out, const struct node *node, unsigned id, bool is_root)
{
    fprintf(out, "    n%u [label=\"", id);
    if (is_root) {
        fputs("root", out);
    } else {
        fputc('/', out);
        write_dot_text(out, node->label, node->label_len);
    }
    if (node->allowed) {
        char methods[ROUTER_ALLOW_HEADER_SIZE];
        router_allow_header(node->allowed, methods, sizeof methods);
        fprintf(out, "\\n%s\", peripheries=2];\n", methods);
    } else {
        fputs("\"];\n", out);
    }

    unsigned next = id + 1;
    for (size_t i = 0; i < node->static_count; i++)
        next = write_dot_child(out, id, &node->statics[i], next);
    if (node->param != NULL)
        next = write_dot_child(out, id, node->param, next);
    if (node->wildcard != NULL)
        next = write_dot_child(out, id, node->wildcard, next);
    return next;
}

static unsigned write_dot_child(FILE *out, unsigned parent_id, const struct node *child,
                                unsigned child_id)
{
    fprintf(out, "    n%u -> n%u;\n", parent_id, child_id);
    return write_dot_node(out, child, child_id, false);
}

void router_write_dot(const struct router *r, FILE *out)
{
    fputs("digraph router {\n", out);
    fputs("    node [shape=box, fontname=\"monospace\"];\n", out);
    write_dot_node(out, &r->root, 0, true);
    fputs("}\n", out);
}
