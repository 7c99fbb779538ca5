/*
 * loop_uring.h - the io_uring backend (loop_uring.c), beside loop.h's epoll_backend.
 *
 * main.c picks a loop's backend (--io); this is what it needs to know of this one beyond
 * loop.h: its name, whether the kernel allows it, and the one setting it alone has.
 */
#ifndef LOOP_URING_H
#define LOOP_URING_H

#include <stdbool.h>
#include <stddef.h>

struct backend;

/* Each loop on its own io_uring: loop_create(&uring_backend, ...). */
extern const struct backend uring_backend;

/*
 * Whether the kernel lets this process set up an io_uring as the loops do. False, with
 * the reason in err, if it refuses (no io_uring, forbidden by a sysctl or a seccomp
 * filter, too old); then epoll_backend is the way.
 */
bool uring_available(char *err, size_t errlen);

/*
 * --sqpoll: a kernel thread polls the rings' submission queues, so queueing an operation
 * needs no system call while that thread is awake. Call before the first loop_create().
 */
void loop_use_sqpoll(bool on);

#endif
