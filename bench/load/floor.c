/* The floor the HTTP layer sets: libmicrohttpd (same mode as lstm-serve: epoll, a thread pool,
 * bodies gathered across upload callbacks) + jansson parsing the same request body, then a
 * fixed JSON answer. No model, no sessions.
 * With --answer it instead builds lstm-serve's answer (forecast, units, 80% interval: 7 numbers;
 * on a /step path also session id and step) as a jansson tree per request and dumps it with
 * the flags lstm-serve uses: what writing a real answer through jansson costs on its own.
 *   floor PORT [THREADS] [--answer] */
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

static int build_answer = 0;
static unsigned long long answers = 0;

static json_t *pair(double a, double b) {
    json_t *o = json_object();
    json_object_set_new(o, "temp_max", json_real(a));
    json_object_set_new(o, "temp_min", json_real(b));
    return o;
}

/* The answer, built and dumped the way lstm-serve does (9 significant digits). */
static size_t answer(char *out, size_t size, int step) {
    unsigned long long n0 = __atomic_fetch_add(&answers, 1, __ATOMIC_RELAXED);
    double k = (double)(n0 % 1000) / 1000;
    json_t *root = json_object();
    if (step) json_object_set_new(root, "session_id", json_string("3dedf4c79300f7f809efe8e6de97d541"));
    json_object_set_new(root, "model", json_string("temperature"));
    if (step) json_object_set_new(root, "step", json_integer(1537 + (json_int_t)n0));
    json_object_set_new(root, "forecast", pair(10.244407 + k, 3.973195 + k));
    json_t *units = json_object();
    json_object_set_new(units, "temp_max", json_string("\xc2\xb0""C"));
    json_object_set_new(units, "temp_min", json_string("\xc2\xb0""C"));
    json_object_set_new(root, "units", units);
    json_t *interval = json_object();
    json_object_set_new(interval, "level", json_real(0.8));
    json_object_set_new(interval, "lower", pair(7.229494 + k, 2.1179483 + k));
    json_object_set_new(interval, "upper", pair(14.013868 + k, 6.2326536 + k));
    json_object_set_new(root, "interval", interval);
    size_t n = json_dumpb(root, out, size, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(9) | JSON_PRESERVE_ORDER);
    json_decref(root);
    return n;
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *text) {
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(r, "Content-Type", "application/json");
    enum MHD_Result ok = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ok;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                               const char *version, const char *data, size_t *size, void **ctx) {
    (void)cls; (void)method; (void)version;
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
    if (build_answer) {
        char out[2048];
        size_t n = answer(out, sizeof out, strstr(url, "/step") != NULL);
        struct MHD_Response *r = MHD_create_response_from_buffer(n, out, MHD_RESPMEM_MUST_COPY);
        MHD_add_response_header(r, "Content-Type", "application/json");
        enum MHD_Result ok = MHD_queue_response(c, 200, r);
        MHD_destroy_response(r);
        return ok;
    }
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
    build_answer = argc > 3 && strcmp(argv[3], "--answer") == 0;
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
