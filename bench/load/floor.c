/* The floor the HTTP layer sets: libmicrohttpd (same mode as lstm-serve: epoll, a thread pool,
 * bodies gathered across upload callbacks) + jansson parsing the same request body, then a
 * fixed JSON answer. No model, no sessions.   floor PORT [THREADS] */
#include <jansson.h>
#include <microhttpd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct { char *data; size_t size; } Body;

static const char ANSWER[] = "{\"model\":\"temperature\",\"forecast\":{\"temp_max\":10.266563,\"temp_min\":3.6090097},"
    "\"units\":{\"temp_max\":\"\xc2\xb0""C\",\"temp_min\":\"\xc2\xb0""C\"}}";

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *text) {
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(r, "Content-Type", "application/json");
    enum MHD_Result ok = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ok;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                               const char *version, const char *data, size_t *size, void **ctx) {
    (void)cls; (void)url; (void)method; (void)version;
    if (*ctx == NULL) { *ctx = calloc(1, sizeof(Body)); return MHD_YES; }
    Body *b = *ctx;
    if (*size) {
        b->data = realloc(b->data, b->size + *size);
        memcpy(b->data + b->size, data, *size);
        b->size += *size;
        *size = 0;
        return MHD_YES;
    }
    json_error_t err;
    json_t *doc = json_loadb(b->data ? b->data : "", b->size, JSON_REJECT_DUPLICATES, &err);
    if (!doc) return reply(c, 400, "{\"error\":\"malformed JSON\"}");
    json_decref(doc);
    return reply(c, 200, ANSWER);
}

static void completed(void *cls, struct MHD_Connection *c, void **ctx, enum MHD_RequestTerminationCode t) {
    (void)cls; (void)c; (void)t;
    Body *b = *ctx;
    if (b) { free(b->data); free(b); *ctx = NULL; }
}

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 8090;
    unsigned threads = argc > 2 ? (unsigned)atoi(argv[2]) : 2;
    struct MHD_Daemon *d = MHD_start_daemon(MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG, (uint16_t)port, NULL, NULL,
        handler, NULL, MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
        MHD_OPTION_CONNECTION_TIMEOUT, 30U, MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024U, MHD_OPTION_END);
    if (!d) { fprintf(stderr, "floor: cannot listen on %d\n", port); return 1; }
    printf("floor listening on http://127.0.0.1:%d\n", port);
    fflush(stdout);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigprocmask(SIG_BLOCK, &set, NULL);
    int sig;
    sigwait(&set, &sig);
    MHD_stop_daemon(d);
    return 0;
}
