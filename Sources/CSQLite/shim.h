#ifndef CSQLITE_SHIM_H
#define CSQLITE_SHIM_H
#include <sqlite3.h>

/* SQLITE_TRANSIENT is a cast of -1 to a function pointer, a macro Swift cannot import. */
static inline void (*CSQLite_transient(void))(void *) { return SQLITE_TRANSIENT; }
#endif
