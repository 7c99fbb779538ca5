/*
 * buffer.c - byte buffers for connections, and a pool that reuses them (see buffer.h).
 *
 * A pool belongs to one event loop and is used by that loop's thread only, so it needs
 * no lock.
 */
#include "buffer.h"

#include <malloc.h>
#include <stdlib.h>
#include <string.h>

/*
 * A request with a large body grows a buffer to megabytes (an HTTP body may be up to 1 MiB
 * here), and its answer may need another as large; both are freed when done. glibc serves
 * blocks that large with mmap(), or, once it has seen them freed, from its heap, which it
 * trims with madvise(MADV_DONTNEED) whenever more than a few MiB lie free at its top. Either
 * way the next such block is memory the kernel must fault in again, page by page, zeroing
 * each. Measured with 1 MiB POSTs to /echo (wrk, 16 connections, stage 5 with 2 threads,
 * perf): page faults took a quarter of the server's CPU time, about 340 faults a request.
 * So blocks up to BLOCK_KEPT_MAX come from the heap, and up to TRIM_AT of free memory stays
 * in each arena (glibc gives each loop's thread one) for the next request: about 50 faults
 * a request with 8 MiB (stage 6, whose sends complete later and so hold more memory at
 * once, about 150), none with 32 MiB; requests per second 1.5 times as many. The cost:
 * after a burst of large requests, the process keeps up to TRIM_AT per thread.
 */
enum {
    BLOCK_KEPT_MAX = 4 * 1024 * 1024, /* M_MMAP_THRESHOLD: larger blocks are mmap()ed */
    TRIM_AT = 32 * 1024 * 1024, /* M_TRIM_THRESHOLD: more free memory than this is returned */
};

bool buffer_keep_large_blocks(void)
{
    /* mallopt() returns 1 on success, 0 on error (it sets no errno). */
    return mallopt(M_MMAP_THRESHOLD, BLOCK_KEPT_MAX) == 1 &&
           mallopt(M_TRIM_THRESHOLD, TRIM_AT) == 1;
}

struct buffer *buffer_take(struct buffer_pool *pool)
{
    struct buffer *b = pool->free;
    if (b != NULL) {
        pool->free = b->next_free;
        pool->count--;
    } else {
        b = malloc(sizeof *b + BUFFER_SIZE);
        if (b == NULL)
            return NULL;
        b->capacity = BUFFER_SIZE;
    }
    b->start = b->end = 0;
    b->next_free = NULL;
    return b;
}

void buffer_give_back(struct buffer_pool *pool, struct buffer *b)
{
    /*
     * Keep buffers that grew a little: a client that keeps a few reads' worth unsent grows
     * its buffer every time, and freeing it would mean a malloc per write. One that grew
     * for a large request is freed, so it does not pin megabytes forever.
     */
    if (b->capacity > BUFFER_KEEP_MAX || pool->count >= BUFFER_POOL_MAX) {
        free(b);
        return;
    }
    b->next_free = pool->free;
    pool->free = b;
    pool->count++;
}

void buffer_pool_clear(struct buffer_pool *pool)
{
    while (pool->free != NULL) {
        struct buffer *b = pool->free;
        pool->free = b->next_free;
        free(b);
    }
    pool->count = 0;
}

/*
 * Makes room for len more bytes behind the live ones: by moving them to the front if that
 * is enough, else by growing the buffer, to just enough if `exactly`, else to its size
 * doubled as often as it takes (appends then grow it rarely).
 */
static bool make_room(struct buffer **bp, size_t len, bool exactly)
{
    struct buffer *b = *bp;
    if (b->end + len <= b->capacity)
        return true;
    size_t live = buffer_length(b);
    memmove(b->bytes, b->bytes + b->start, live); /* the consumed front is reclaimed */
    b->start = 0;
    b->end = live;
    if (live + len <= b->capacity)
        return true;
    size_t capacity = live + len;
    if (!exactly) {
        capacity = b->capacity;
        while (capacity < live + len)
            capacity *= 2;
    }
    /* realloc() extends the block where it lies when it can; when it cannot, it copies the
     * whole old block, which is why buffer_reserve() grows once rather than step by step. */
    struct buffer *grown = realloc(b, sizeof *grown + capacity);
    if (grown == NULL)
        return false; /* b is still valid, and still the caller's */
    grown->capacity = capacity;
    *bp = grown;
    return true;
}

bool buffer_append(struct buffer **bp, const void *data, size_t len)
{
    if (len == 0)
        return true; /* data may be NULL then, and memcpy must never see a NULL */
    if (!make_room(bp, len, false))
        return false;
    struct buffer *b = *bp;
    memcpy(b->bytes + b->end, data, len);
    b->end += len;
    return true;
}

bool buffer_reserve(struct buffer **bp, size_t len)
{
    size_t live = buffer_length(*bp);
    return len <= live || make_room(bp, len - live, true);
}

void buffer_consume(struct buffer *b, size_t n)
{
    b->start += n;
    if (b->start == b->end)
        b->start = b->end = 0;
}
