#ifndef CJANSSON_SHIM_H
#define CJANSSON_SHIM_H
#include <jansson.h>

/* jansson's type tests and a few helpers are macros or inline functions
   that Swift cannot see; these shims expose them under CJansson_ names. */

static inline int CJansson_json_typeof(const json_t *json) { return (int)json_typeof(json); }
static inline void CJansson_json_decref(json_t *json) { json_decref(json); }
static inline json_t *CJansson_json_incref(json_t *json) { return json_incref(json); }
static inline size_t CJansson_flags_reject_duplicates(void) { return JSON_REJECT_DUPLICATES; }
static inline size_t CJansson_flags_dump(int precision) {
    return JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(precision) | JSON_PRESERVE_ORDER;
}
static inline size_t CJansson_flags_dump_pretty(int precision) {
    return JSON_INDENT(2) | JSON_ENCODE_ANY | JSON_REAL_PRECISION(precision) | JSON_PRESERVE_ORDER;
}
#endif
