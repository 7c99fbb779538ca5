/*
 * loop_uring.h - what the io_uring loop offers beyond loop.h.
 *
 * loop.h is the interface every loop implements; this is the one setting that exists
 * only because the loop runs on io_uring.
 */
#ifndef LOOP_URING_H
#define LOOP_URING_H

#include <stdbool.h>

/*
 * --sqpoll: a kernel thread polls the rings' submission queues, so queueing an operation
 * needs no system call while that thread is awake. Call before the first loop_create().
 */
void loop_use_sqpoll(bool on);

#endif
