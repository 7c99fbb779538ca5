/*
 * mime.h - the Content-Type of a file, from its name.
 */
#ifndef MIME_H
#define MIME_H

#include <stddef.h>

/* The media type for a file name's extension (case-insensitive); application/octet-stream
 * when the extension is unknown or missing. */
const char *mime_type(const char *name, size_t len);

#endif
