/*
 * buffer.c - byte buffers for connections, and a pool that reuses them (see buffer.h).
 *
 * A pool belongs to one event loop and is used by that loop's thread only, so it needs
 * no lock.
 */
#include "buffer.h"

#include <stdlib.h>
#include <string.h>

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

bool buffer_append(struct buffer **bp, const void *data, size_t len)
{
    if (len == 0)
        return true; /* data may be NULL then, and memcpy must never see a NULL */
    struct buffer *b = *bp;
    if (b->end + len > b->capacity) {
        size_t live = buffer_length(b);
        if (live + len <= b->capacity) {
            /* Room enough once the consumed front is reclaimed. */
            memmove(b->bytes, b->bytes + b->start, live);
        } else {
            size_t capacity = b->capacity;
            while (capacity < live + len)
                capacity *= 2;
            struct buffer *grown = malloc(sizeof *grown + capacity);
            if (grown == NULL)
                return false;
            memcpy(grown->bytes, b->bytes + b->start, live);
            grown->capacity = capacity;
            grown->next_free = NULL;
            free(b);
            *bp = b = grown;
        }
        b->start = 0;
        b->end = live;
    }
    memcpy(b->bytes + b->end, data, len);
    b->end += len;
    return true;
}

void buffer_consume(struct buffer *b, size_t n)
{
    b->start += n;
    if (b->start == b->end)
        b->start = b->end = 0;
}
