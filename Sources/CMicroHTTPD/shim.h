#ifndef CMICROHTTPD_SHIM_H
#define CMICROHTTPD_SHIM_H
#include <stdarg.h>
#include <stdint.h>
#include <string.h>
#include <errno.h>
#include <unistd.h>
#include <sys/types.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <netdb.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <microhttpd.h>

/* MHD_start_daemon, MHD_get_daemon_info and MHD_get_connection_info are variadic; Swift calls
 * these instead. */

/** What CMicroHTTPD_start_daemon needs besides the callbacks. */
struct CMicroHTTPD_settings {
    const char *host;
    uint16_t port;
    unsigned int threads;
    unsigned int connection_timeout;
    /* MHD's own limit. Set it above anything the accept policy lets in: MHD 0.9.75 with epoll
     * stops closing a worker's connections once that worker has reached its share of it. */
    unsigned int connection_limit;
    unsigned int per_ip_limit;
    size_t memory_limit;
    /* MHD's own messages to stderr (one per client that hangs up mid-request: debug only). */
    int error_log;
    /* PEM text of the certificate and key; both NULL for plain HTTP. */
    const char *tls_cert;
    const char *tls_key;
};

/** MHD leaves the path as sent (the server decodes it itself, so that an encoded NUL or '/'
 * can be refused rather than silently cut or turned into a separator). */
static inline size_t CMicroHTTPD_keep_escaped(void *cls, struct MHD_Connection *c, char *s) {
    (void)cls; (void)c;
    return strlen(s);
}

/** Starts an epoll daemon with a thread pool on `host:port` (an IPv4 or IPv6 address, or a
 * name resolved here), suspend/resume allowed. NULL when the address does not resolve or
 * cannot be bound. */
static inline struct MHD_Daemon *CMicroHTTPD_start_daemon(
    const struct CMicroHTTPD_settings *s,
    MHD_AcceptPolicyCallback accept_policy, void *accept_cls,
    MHD_AccessHandlerCallback handler, void *handler_cls,
    MHD_RequestCompletedCallback completed, void *completed_cls,
    MHD_NotifyConnectionCallback notify, void *notify_cls,
    void *(*uri_log)(void *, const char *, struct MHD_Connection *), void *uri_log_cls)
{
    struct addrinfo hints, *found = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    if (getaddrinfo(s->host, NULL, &hints, &found) != 0 || found == NULL) return NULL;
    struct sockaddr_storage addr;
    memset(&addr, 0, sizeof addr);
    memcpy(&addr, found->ai_addr, found->ai_addrlen);
    int v6 = found->ai_family == AF_INET6;
    freeaddrinfo(found);
    if (v6) ((struct sockaddr_in6 *)&addr)->sin6_port = htons(s->port);
    else ((struct sockaddr_in *)&addr)->sin_port = htons(s->port);

    unsigned int flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_TURBO;
    if (s->error_log) flags |= MHD_USE_ERROR_LOG;
    if (v6) flags |= MHD_USE_IPv6;
    int tls = s->tls_cert != NULL && s->tls_key != NULL;
    if (tls) flags |= MHD_USE_TLS;
    return MHD_start_daemon(flags, s->port, accept_policy, accept_cls, handler, handler_cls,
        MHD_OPTION_SOCK_ADDR, (const struct sockaddr *)&addr,
        MHD_OPTION_THREAD_POOL_SIZE, s->threads,
        MHD_OPTION_NOTIFY_COMPLETED, completed, completed_cls,
        MHD_OPTION_NOTIFY_CONNECTION, notify, notify_cls,
        MHD_OPTION_URI_LOG_CALLBACK, uri_log, uri_log_cls,
        MHD_OPTION_UNESCAPE_CALLBACK, CMicroHTTPD_keep_escaped, NULL,
        MHD_OPTION_STRICT_FOR_CLIENT, 0, /* see check_headers */
        MHD_OPTION_CONNECTION_TIMEOUT, s->connection_timeout,
        MHD_OPTION_CONNECTION_LIMIT, s->connection_limit,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, s->per_ip_limit,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, s->memory_limit,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024U,
        tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, s->tls_cert,
        MHD_OPTION_HTTPS_MEM_KEY, s->tls_key,
        MHD_OPTION_END);
}

/** The port the daemon listens on (the one picked when started with port 0). */
static inline uint16_t CMicroHTTPD_bound_port(struct MHD_Daemon *daemon) {
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(daemon, MHD_DAEMON_INFO_BIND_PORT);
    return info ? info->port : 0;
}

/** Wakes every worker thread: one connection to the daemon's own listening socket, closed at
 * once (a worker accepts it and sees it gone). MHD's epoll loop waits again, with its full
 * timeout, after an `epoll_wait` that filled its 128 slots, so a worker handed exactly 128 * k
 * events sits on them until the next event; the listening socket is in every worker's set.
 * Returns 0, or -1 when no connection could be made. */
static inline int CMicroHTTPD_wake_workers(struct MHD_Daemon *daemon) {
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(daemon, MHD_DAEMON_INFO_LISTEN_FD);
    if (!info || info->listen_fd < 0) return -1;
    struct sockaddr_storage address;
    socklen_t length = sizeof address;
    if (getsockname(info->listen_fd, (struct sockaddr *)&address, &length) != 0) return -1;
    int fd = socket(address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    int made = connect(fd, (struct sockaddr *)&address, length);
    close(fd);
    return made == 0 || errno == EINPROGRESS ? 0 : -1;
}

/** The pointer stored in `*socket_context` when the connection started. */
static inline void *CMicroHTTPD_socket_context(struct MHD_Connection *connection) {
    const union MHD_ConnectionInfo *info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return info ? info->socket_context : NULL;
}

/** The connection's socket. */
static inline int CMicroHTTPD_connection_fd(struct MHD_Connection *connection) {
    const union MHD_ConnectionInfo *info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
    return info ? info->connect_fd : -1;
}

/* What CMicroHTTPD_check_headers finds wrong with a request's header block. */
enum {
    CMicroHTTPD_HEADERS_OK = 0,
    CMicroHTTPD_HEADERS_CONTROL_BYTE,      /* a CR, NUL or other control byte in a name or value */
    CMicroHTTPD_HEADERS_BAD_NAME,          /* a header name with a space or other non-token byte */
    CMicroHTTPD_HEADERS_TWO_LENGTHS,       /* Content-Length given more than once */
    CMicroHTTPD_HEADERS_BAD_LENGTH,        /* Content-Length that is not digits */
    CMicroHTTPD_HEADERS_TRANSFER_ENCODING, /* a Transfer-Encoding other than chunked */
    CMicroHTTPD_HEADERS_LENGTH_AND_CHUNKED,/* both Content-Length and Transfer-Encoding */
    CMicroHTTPD_HEADERS_NO_HOST,           /* HTTP/1.1 without exactly one Host */
};

struct CMicroHTTPD_header_scan { int problem; int lengths; int encodings; int hosts; };

static inline int CMicroHTTPD_token_byte(unsigned char c) {
    return c > 32 && c < 127 && strchr("\"(),/:;<=>?@[\\]{}", c) == NULL;
}

static inline enum MHD_Result CMicroHTTPD_scan_header(void *cls, enum MHD_ValueKind kind, const char *key, const char *value) {
    (void)kind;
    struct CMicroHTTPD_header_scan *scan = cls;
    if (key == NULL) { scan->problem = CMicroHTTPD_HEADERS_BAD_NAME; return MHD_NO; }
    for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
        if (!CMicroHTTPD_token_byte(*p)) { scan->problem = CMicroHTTPD_HEADERS_BAD_NAME; return MHD_NO; }
    }
    if (value != NULL) {
        for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
            if ((*p < 32 && *p != '\t') || *p == 127) { scan->problem = CMicroHTTPD_HEADERS_CONTROL_BYTE; return MHD_NO; }
        }
    }
    if (strcasecmp(key, "Content-Length") == 0) {
        scan->lengths++;
        if (value == NULL || *value == 0) { scan->problem = CMicroHTTPD_HEADERS_BAD_LENGTH; return MHD_NO; }
        for (const char *p = value; *p; p++) {
            if (*p < '0' || *p > '9') { scan->problem = CMicroHTTPD_HEADERS_BAD_LENGTH; return MHD_NO; }
        }
    } else if (strcasecmp(key, "Transfer-Encoding") == 0) {
        scan->encodings++;
        if (value == NULL || strcasecmp(value, "chunked") != 0) { scan->problem = CMicroHTTPD_HEADERS_TRANSFER_ENCODING; return MHD_NO; }
    } else if (strcasecmp(key, "Host") == 0) {
        scan->hosts++;
    }
    return MHD_YES;
}

/** Checks the header block for what makes framing ambiguous or a proxy and this server read
 * a request differently; CMicroHTTPD_HEADERS_OK or the first problem found. */
static inline int CMicroHTTPD_check_headers(struct MHD_Connection *connection, const char *version) {
    struct CMicroHTTPD_header_scan scan = {0, 0, 0, 0};
    MHD_get_connection_values(connection, MHD_HEADER_KIND, CMicroHTTPD_scan_header, &scan);
    if (scan.problem) return scan.problem;
    if (scan.lengths > 1) return CMicroHTTPD_HEADERS_TWO_LENGTHS;
    if (scan.encodings > 1) return CMicroHTTPD_HEADERS_TRANSFER_ENCODING;
    if (scan.lengths && scan.encodings) return CMicroHTTPD_HEADERS_LENGTH_AND_CHUNKED;
    if (version != NULL && strcmp(version, "HTTP/1.1") == 0 && scan.hosts != 1) return CMicroHTTPD_HEADERS_NO_HOST;
    return CMicroHTTPD_HEADERS_OK;
}

#endif
