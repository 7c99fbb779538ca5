/*
 * handlers.h - what the application answers (see the route table in app.c).
 */
#ifndef HANDLERS_H
#define HANDLERS_H

#include "exchange.h"

void handle_plaintext(struct exchange *x);
void handle_echo(struct exchange *x);
void handle_user(struct exchange *x);
void handle_delay(struct exchange *x);

#endif
