// LD_PRELOAD shim that counts heap calls (malloc, calloc, realloc, the aligned ones) per
// thread-agnostic totals; SIGUSR2 writes the totals so far to stderr as
//   alloc_count malloc=N calloc=N realloc=N aligned=N free=N
// Used by bench/alloc/run.sh to measure heap calls per request of the running server.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

static atomic_ulong n_malloc, n_calloc, n_realloc, n_aligned, n_free;
static void *(*real_malloc)(size_t);
static void *(*real_calloc)(size_t, size_t);
static void *(*real_realloc)(void *, size_t);
static int (*real_posix_memalign)(void **, size_t, size_t);
static void *(*real_aligned_alloc)(size_t, size_t);
static void *(*real_memalign)(size_t, size_t);
static void (*real_free)(void *);

// dlsym itself may calloc before real_calloc is known: serve that from a static buffer.
static char early[4096];
static size_t early_used;

static void put(char **p, const char *s) { size_t n = strlen(s); memcpy(*p, s, n); *p += n; }
static void put_num(char **p, unsigned long v) {
    char tmp[24]; int i = 0;
    do { tmp[i++] = (char)('0' + v % 10); v /= 10; } while (v);
    while (i) *(*p)++ = tmp[--i];
}

static void report(int sig) {
    (void)sig;
    char buf[256], *p = buf;
    put(&p, "alloc_count malloc="); put_num(&p, atomic_load(&n_malloc));
    put(&p, " calloc="); put_num(&p, atomic_load(&n_calloc));
    put(&p, " realloc="); put_num(&p, atomic_load(&n_realloc));
    put(&p, " aligned="); put_num(&p, atomic_load(&n_aligned));
    put(&p, " free="); put_num(&p, atomic_load(&n_free));
    put(&p, "\n");
    ssize_t ignored = write(2, buf, (size_t)(p - buf)); (void)ignored;
}

__attribute__((constructor)) static void init(void) {
    real_malloc = dlsym(RTLD_NEXT, "malloc");
    real_calloc = dlsym(RTLD_NEXT, "calloc");
    real_realloc = dlsym(RTLD_NEXT, "realloc");
    real_posix_memalign = dlsym(RTLD_NEXT, "posix_memalign");
    real_aligned_alloc = dlsym(RTLD_NEXT, "aligned_alloc");
    real_memalign = dlsym(RTLD_NEXT, "memalign");
    real_free = dlsym(RTLD_NEXT, "free");
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = report;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR2, &sa, NULL);
}

void *malloc(size_t n) {
    if (!real_malloc) init();
    atomic_fetch_add_explicit(&n_malloc, 1, memory_order_relaxed);
    return real_malloc(n);
}

void *calloc(size_t k, size_t n) {
    if (!real_calloc) {
        size_t size = (k * n + 15) & ~(size_t)15;
        if (early_used + size > sizeof early) return NULL;
        void *p = early + early_used;
        early_used += size;
        return p;  // static storage is already zero
    }
    atomic_fetch_add_explicit(&n_calloc, 1, memory_order_relaxed);
    return real_calloc(k, n);
}

void *realloc(void *p, size_t n) {
    if (!real_realloc) init();
    atomic_fetch_add_explicit(&n_realloc, 1, memory_order_relaxed);
    return real_realloc(p, n);
}

int posix_memalign(void **out, size_t align, size_t n) {
    if (!real_posix_memalign) init();
    atomic_fetch_add_explicit(&n_aligned, 1, memory_order_relaxed);
    return real_posix_memalign(out, align, n);
}

void *aligned_alloc(size_t align, size_t n) {
    if (!real_aligned_alloc) init();
    atomic_fetch_add_explicit(&n_aligned, 1, memory_order_relaxed);
    return real_aligned_alloc(align, n);
}

void *memalign(size_t align, size_t n) {
    if (!real_memalign) init();
    atomic_fetch_add_explicit(&n_aligned, 1, memory_order_relaxed);
    return real_memalign(align, n);
}

void free(void *p) {
    if ((char *)p >= early && (char *)p < early + sizeof early) return;
    if (!p) return;
    if (!real_free) init();
    atomic_fetch_add_explicit(&n_free, 1, memory_order_relaxed);
    real_free(p);
}
