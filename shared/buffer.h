/*
 * buffer.h - byte buffers for connections, and a pool that reuses them.
 *
 * A connection owns a buffer only while bytes are waiting in it: bytes received that its
 * protocol could not use yet, or bytes to send that the kernel would not take yet. Most
 * of the time neither exists, so an idle connection holds no buffer at all. A buffer that
 * empties goes back to its loop's pool, where the next connection that needs one finds
 * it: in steady state nothing is allocated.
 */
#ifndef BUFFER_H
#define BUFFER_H

#include <stdbool.h>
#include <stddef.h>

enum {
    BUFFER_SIZE = 16 * 1024, /* a new buffer's size; buffer_append grows past it */
    BUFFER_KEEP_MAX = 256 * 1024, /* a buffer that grew past this is freed, not pooled */
    BUFFER_POOL_MAX = 64, /* free buffers a pool keeps; more are returned to malloc */
};

struct buffer {
    size_t start; /* the live bytes are bytes[start..end) */
    size_t end;
    size_t capacity; /* size of bytes[] */
    struct buffer *next_free;
    char bytes[];
};

struct buffer_pool {
    struct buffer *free;
    size_t count;
};

/*
 * Tells malloc to keep the memory of large buffers for the next ones, rather than return it
 * to the kernel at each free (see buffer.c). Once, at start-up, before any thread; false if
 * the C library refused.
 */
bool buffer_keep_large_blocks(void);

/* An empty buffer of at least BUFFER_SIZE bytes; NULL if memory is exhausted. */
struct buffer *buffer_take(struct buffer_pool *pool);

/* Returns a buffer to the pool (or to malloc, if it grew or the pool is full). */
void buffer_give_back(struct buffer_pool *pool, struct buffer *b);

/* Frees every buffer the pool keeps. */
void buffer_pool_clear(struct buffer_pool *pool);

/* Appends len bytes, moving or growing the buffer as needed; false if memory is exhausted. */
bool buffer_append(struct buffer **b, const void *data, size_t len);

/*
 * Makes room for len live bytes in all, behind the buffer's start: growing it at most once,
 * to just that size; false if memory is exhausted. For bytes known to be coming: appended
 * one read at a time, they would grow the buffer step by step, and each step may copy it
 * whole.
 */
bool buffer_reserve(struct buffer **b, size_t len);

/* Drops n bytes from the front. */
void buffer_consume(struct buffer *b, size_t n);

static inline size_t buffer_length(const struct buffer *b)
{
    return b->end - b->start;
}

static inline char *buffer_data(struct buffer *b)
{
    return b->bytes + b->start;
}

#endif
