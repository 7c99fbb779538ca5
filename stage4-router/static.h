/*
 * static.h - files under --root.
 */
#ifndef STATIC_H
#define STATIC_H

#include "exchange.h"

#include <stdbool.h>
#include <stddef.h>

/* Opens the root directory, at start-up. False with a message in err if it cannot. */
bool static_open_root(const char *root, char *err, size_t errlen);

/* The handler of the static wildcard route: the file at x->path under the root, or 404. */
void static_serve(struct exchange *x);

/* Closes the small files this thread keeps open for the next request (see static.c), so
 * that the next request of each opens its file again. For tests that count descriptors. */
void static_forget_files(void);

#endif
