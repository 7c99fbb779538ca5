/*
 * exchange.c - looking things up in a request.
 */
#include "exchange.h"

#include <string.h>
#include <strings.h>

const struct http_slice *exchange_field(const struct exchange *x, const char *name)
{
    size_t len = strlen(name);
    for (size_t i = 0; i < x->req->field_count; i++) {
        const struct http_field *f = &x->req->fields[i];
        if (f->name.len == len && strncasecmp(f->name.ptr, name, len) == 0)
            return &f->value;
    }
    return NULL;
}

struct http_slice exchange_param(const struct exchange *x, const char *name)
{
    size_t len = strlen(name);
    for (size_t i = 0; i < x->match.param_count; i++) {
        const struct route_param *p = &x->match.params[i];
        if (p->name.len == len && memcmp(p->name.ptr, name, len) == 0)
            return p->value;
    }
    return (struct http_slice){.ptr = "", .len = 0};
}
