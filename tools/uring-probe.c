/*
 * uring-probe.c - may this process create an io_uring? Exit status 0 if so; 1, with the
 * reason on stderr, if the kernel refuses (ENOSYS: built without it; EPERM: a container's
 * seccomp filter, or the kernel.io_uring_disabled sysctl).
 *
 * `make run` asks it before choosing the server: stage 6 needs io_uring, stage 5 does not.
 */
#include <liburing.h>
#include <stdio.h>
#include <string.h>

int main(void)
{
    struct io_uring ring;
    int rc = io_uring_queue_init(2, &ring, 0);
    if (rc < 0) {
        fprintf(stderr, "io_uring is not available here: %s\n", strerror(-rc));
        return 1;
    }
    io_uring_queue_exit(&ring);
    return 0;
}
