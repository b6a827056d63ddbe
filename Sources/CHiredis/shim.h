#ifndef CHIREDIS_SHIM_H
#define CHIREDIS_SHIM_H
#include <hiredis/hiredis.h>

/* redisContext.errstr is a char array, which Swift imports as a 128-element tuple. */
static inline const char *CHiredis_errstr(const redisContext *c) { return c->errstr; }
#endif
