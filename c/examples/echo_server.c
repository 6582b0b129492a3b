/*
 * echo_server: part of tandem's standard test service (SPEC.md Appendix A) served from C with
 * the tandem C API, over a Unix SEQPACKET socket (the way DAOS's C engine serves dRPC).
 *
 *     echo_server PATH
 *
 * listens on PATH and serves one connection at a time, until killed. Methods of module 100:
 * ECHO (1), RECORD (5, notification and signal), RECORDED (6), CALLBACK (8: a call,
 * notification or signal back toward the caller; streams are refused), STATUS (11). Other
 * methods of module 100 are answered UNKNOWN_METHOD, other modules UNKNOWN_MODULE.
 *
 * Memory: one static array holds the connection (the library never allocates). Records are kept
 * per peer name (up to 8 names, 16 records of up to 1024 bytes each; the oldest go first).
 *
 * Build (from the repository root, after `cargo build -p tandem-c`):
 *     cc -std=c11 -Wall -Wextra -Ic/include c/examples/echo_server.c target/debug/libtandem_c.a \
 *        -lpthread -ldl -lm -o echo_server
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "tandem.h"

#define MODULE 100
#define M_ECHO 1
#define M_RECORD 5
#define M_RECORDED 6
#define M_CALLBACK 8
#define M_STATUS 11

#define MAX_MESSAGE 65536
#define MAX_DATAGRAM 8192

/* The connection's memory: checked against tandem_conn_memory_size at start-up. */
static unsigned char conn_mem[512 * 1024];
/* One outbound datagram, and room to build a response. */
static uint8_t tx_buf[MAX_DATAGRAM];
static uint8_t scratch[MAX_MESSAGE];

static int sock = -1;      /* the connection's socket */
static int sock_dead = 0;  /* send failed: the peer is gone */

/* ------------------------------------------------------------------ helpers */

static uint64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void check(const char *what, enum tandem_result r) {
    if (r != TANDEM_RESULT_OK) {
        fprintf(stderr, "echo_server: %s: %s\n", what, tandem_result_message(r));
        exit(1);
    }
}

static uint32_t be32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static void put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Sends everything the connection has queued: one datagram per tandem_conn_poll_transmit. */
static void flush(tandem_conn *conn) {
    for (;;) {
        size_t n = 0;
        check("poll_transmit", tandem_conn_poll_transmit(conn, now_ms(), tx_buf, sizeof tx_buf, &n));
        if (n == 0) return;
        if (sock_dead) continue; /* drain and drop */
        if (send(sock, tx_buf, n, MSG_NOSIGNAL) < 0) {
            sock_dead = 1;
            check("eof", tandem_conn_eof(conn, now_ms()));
        }
    }
}

/* Answers request `id`; when the transmit queue is full, sends what it holds and retries (the
 * socket is blocking, so that is back-pressure toward this server). */
static void respond(tandem_conn *conn, uint64_t id, uint32_t status, const uint8_t *p, size_t len) {
    enum tandem_result r = tandem_conn_respond(conn, id, status, p, len);
    if (r == TANDEM_RESULT_TX_FULL) {
        flush(conn);
        r = tandem_conn_respond(conn, id, status, p, len);
    }
    if (r != TANDEM_RESULT_OK && r != TANDEM_RESULT_CLOSED) {
        /* Still refused (too large for the transmit queue, say): answer with the status alone. */
        r = tandem_conn_respond(conn, id, tandem_result_status(r), NULL, 0);
        if (r != TANDEM_RESULT_OK && r != TANDEM_RESULT_CLOSED)
            fprintf(stderr, "echo_server: respond: %s\n", tandem_result_message(r));
    }
}

/* ------------------------------------------------------------------ records, per peer name */

#define NAMES 8
#define RECORDS 16
#define RECORD_MAX 1024

struct records {
    size_t name_len;
    uint8_t name[255];
    int used;
    size_t count;
    size_t len[RECORDS];
    uint8_t data[RECORDS][RECORD_MAX];
};

static struct records names[NAMES];
static size_t next_name;

static struct records *records_of(tandem_conn *conn) {
    const uint8_t *name = NULL;
    size_t len = 0;
    check("peer_name", tandem_conn_peer_name(conn, &name, &len));
    for (size_t i = 0; i < NAMES; i++)
        if (names[i].used && names[i].name_len == len && memcmp(names[i].name, name, len) == 0)
            return &names[i];
    struct records *r = &names[next_name];  /* a new name replaces the oldest */
    next_name = (next_name + 1) % NAMES;
    memset(r, 0, sizeof *r);
    r->used = 1;
    r->name_len = len;
    memcpy(r->name, name, len);
    return r;
}

/* Appends a record; false if it is too large to keep. */
static int record(tandem_conn *conn, const uint8_t *p, size_t len) {
    if (len > RECORD_MAX) return 0;
    struct records *r = records_of(conn);
    if (r->count == RECORDS) { /* forget the oldest */
        memmove(r->len, r->len + 1, (RECORDS - 1) * sizeof r->len[0]);
        memmove(r->data, r->data + 1, (RECORDS - 1) * sizeof r->data[0]);
        r->count--;
    }
    r->len[r->count] = len;
    if (len) memcpy(r->data[r->count], p, len);
    r->count++;
    return 1;
}

/* ------------------------------------------------------------------ CALLBACK */

struct callback {
    int used;
    uint64_t inner; /* our exchange toward the caller */
    uint64_t outer; /* the caller's CALLBACK request */
};
static struct callback callbacks[8];

static void answer_callback(tandem_conn *conn, uint64_t outer, uint32_t inner_status, const uint8_t *p, size_t len) {
    put_be32(scratch, inner_status);
    if (len > sizeof scratch - 4) len = sizeof scratch - 4;
    if (len) memcpy(scratch + 4, p, len);
    respond(conn, outer, TANDEM_STATUS_OK, scratch, 4 + len);
}

static void start_callback(tandem_conn *conn, const struct tandem_event *ev) {
    const uint8_t *p = ev->payload;
    if (ev->payload_len < 13) {
        respond(conn, ev->id, TANDEM_STATUS_BAD_PAYLOAD, NULL, 0);
        return;
    }
    uint8_t kind = p[0];
    uint32_t module = be32(p + 1), method = be32(p + 5), timeout = be32(p + 9);
    const uint8_t *rest = p + 13;
    size_t rest_len = ev->payload_len - 13;
    uint64_t inner = 0;
    enum tandem_result r;
    switch (kind) {
    case 0:
        r = tandem_conn_call(conn, now_ms(), module, method, rest, rest_len, timeout, &inner);
        break;
    case 1:
        r = tandem_conn_notify(conn, now_ms(), module, method, rest, rest_len, timeout, &inner);
        break;
    case 2: /* a signal is done once queued */
        r = tandem_conn_signal(conn, module, method, rest, rest_len);
        answer_callback(conn, ev->id, tandem_result_status(r), NULL, 0);
        return;
    case 3: /* streams: not served by this program, refused locally */
        answer_callback(conn, ev->id, TANDEM_STATUS_UNIMPLEMENTED, NULL, 0);
        return;
    default:
        respond(conn, ev->id, TANDEM_STATUS_BAD_PAYLOAD, NULL, 0);
        return;
    }
    if (r != TANDEM_RESULT_OK) {
        answer_callback(conn, ev->id, tandem_result_status(r), NULL, 0);
        return;
    }
    for (size_t i = 0; i < sizeof callbacks / sizeof callbacks[0]; i++) {
        if (!callbacks[i].used) {
            callbacks[i] = (struct callback){1, inner, ev->id};
            return;
        }
    }
    /* No room to remember it (more callbacks in flight than this table holds). */
    check("cancel", tandem_conn_cancel(conn, inner));
    answer_callback(conn, ev->id, TANDEM_STATUS_RESOURCE_EXHAUSTED, NULL, 0);
}

/* The inner exchange `id` ended: answer its CALLBACK. */
static void finish_callback(tandem_conn *conn, uint64_t id, uint32_t status, const uint8_t *p, size_t len) {
    for (size_t i = 0; i < sizeof callbacks / sizeof callbacks[0]; i++) {
        if (callbacks[i].used && callbacks[i].inner == id) {
            callbacks[i].used = 0;
            answer_callback(conn, callbacks[i].outer, status, p, len);
            return;
        }
    }
}

/* ------------------------------------------------------------------ the service */

static void on_request(tandem_conn *conn, const struct tandem_event *ev) {
    int call = ev->request_kind == TANDEM_REQUEST_KIND_CALL;
    int notify = ev->request_kind == TANDEM_REQUEST_KIND_NOTIFY;
    if (!call && !notify) { /* a stream: none is served here */
        uint32_t st = ev->module != MODULE ? TANDEM_STATUS_UNKNOWN_MODULE : TANDEM_STATUS_UNIMPLEMENTED;
        tandem_conn_stream_reset(conn, ev->id, st);
        return;
    }
    if (ev->module != MODULE) {
        respond(conn, ev->id, TANDEM_STATUS_UNKNOWN_MODULE, NULL, 0);
        return;
    }
    switch (ev->method) {
    case M_ECHO:
        /* The request's own bytes go straight back: an event's payload stays valid across
         * tandem_conn_respond. */
        if (call) respond(conn, ev->id, TANDEM_STATUS_OK, ev->payload, ev->payload_len);
        else respond(conn, ev->id, TANDEM_STATUS_UNIMPLEMENTED, NULL, 0);
        break;
    case M_STATUS:
        if (!call) respond(conn, ev->id, TANDEM_STATUS_UNIMPLEMENTED, NULL, 0);
        else if (ev->payload_len != 4) respond(conn, ev->id, TANDEM_STATUS_BAD_PAYLOAD, NULL, 0);
        else respond(conn, ev->id, be32(ev->payload), NULL, 0);
        break;
    case M_RECORD:
        if (!notify) respond(conn, ev->id, TANDEM_STATUS_UNIMPLEMENTED, NULL, 0);
        else if (record(conn, ev->payload, ev->payload_len)) respond(conn, ev->id, TANDEM_STATUS_OK, NULL, 0);
        else respond(conn, ev->id, TANDEM_STATUS_TOO_LARGE, NULL, 0);
        break;
    case M_RECORDED: {
        if (!call) {
            respond(conn, ev->id, TANDEM_STATUS_UNIMPLEMENTED, NULL, 0);
            break;
        }
        struct records *r = records_of(conn);
        size_t n = 0;
        for (size_t i = 0; i < r->count; i++) { /* 16 * (4 + 1024) < sizeof scratch */
            put_be32(scratch + n, (uint32_t)r->len[i]);
            memcpy(scratch + n + 4, r->data[i], r->len[i]);
            n += 4 + r->len[i];
        }
        respond(conn, ev->id, TANDEM_STATUS_OK, scratch, n);
        break;
    }
    case M_CALLBACK:
        if (call) start_callback(conn, ev);
        else respond(conn, ev->id, TANDEM_STATUS_UNIMPLEMENTED, NULL, 0);
        break;
    default:
        respond(conn, ev->id, TANDEM_STATUS_UNKNOWN_METHOD, NULL, 0);
    }
}

static void on_event(tandem_conn *conn, const struct tandem_event *ev) {
    switch (ev->kind) {
    case TANDEM_EVENT_KIND_REQUEST:
        on_request(conn, ev);
        break;
    case TANDEM_EVENT_KIND_SIGNAL:
        if (ev->module == MODULE && ev->method == M_RECORD) record(conn, ev->payload, ev->payload_len);
        break;
    case TANDEM_EVENT_KIND_RESPONSE:
    case TANDEM_EVENT_KIND_FAILED:
        finish_callback(conn, ev->id, ev->status, ev->payload, ev->payload_len);
        break;
    case TANDEM_EVENT_KIND_CLOSED:
        fprintf(stderr, "echo_server: connection closed: status %u, blame %d\n", ev->status, (int)ev->blame);
        break;
    default: /* CONNECTED, CANCELLED (the answer still goes out), GOAWAY, streams: nothing to do */
        break;
    }
}

/* Serves one accepted connection until it is finished. */
static void serve(int fd) {
    static const char name[] = "tandem-c-echo";
    struct tandem_config cfg;
    check("config_default", tandem_config_default(&cfg));
    /* SPEC.md A.3's values, without streams. */
    cfg.transport = TANDEM_TRANSPORT_PACKET;
    cfg.max_datagram = MAX_DATAGRAM;
    cfg.max_frame_size = 4096;
    cfg.max_message_size = MAX_MESSAGE;
    cfg.max_concurrent_calls = 16;
    cfg.max_outbound_calls = 8;
    cfg.max_tx_buffer = 2 * MAX_MESSAGE;
    cfg.keepalive_interval_ms = 1000;
    cfg.idle_timeout_ms = 3000;
    cfg.handshake_timeout_ms = 1000;
    cfg.drain_timeout_ms = 3000;
    cfg.name = (const uint8_t *)name;
    cfg.name_len = sizeof name - 1;

    size_t need = 0;
    check("memory_size", tandem_conn_memory_size(&cfg, &need));
    if (need > sizeof conn_mem) {
        fprintf(stderr, "echo_server: the connection needs %zu bytes, conn_mem has %zu\n", need, sizeof conn_mem);
        exit(1);
    }
    tandem_conn *conn = NULL;
    check("init", tandem_conn_init(conn_mem, sizeof conn_mem, &cfg, TANDEM_ROLE_ACCEPTOR, now_ms(), &conn));
    sock = fd;
    sock_dead = 0;
    memset(callbacks, 0, sizeof callbacks);

    for (;;) {
        struct tandem_event ev;
        for (;;) {
            check("poll_event", tandem_conn_poll_event(conn, now_ms(), &ev));
            if (ev.kind == TANDEM_EVENT_KIND_NONE) break;
            on_event(conn, &ev);
        }
        flush(conn);
        if (tandem_conn_is_finished(conn)) break;

        uint64_t deadline = 0;
        check("poll_timeout", tandem_conn_poll_timeout(conn, &deadline));
        uint64_t now = now_ms();
        int wait = -1;
        if (deadline != TANDEM_NO_DEADLINE) wait = deadline <= now ? 0 : (deadline - now > 60000 ? 60000 : (int)(deadline - now));
        struct pollfd pfd = {fd, POLLIN, 0};
        int ready = sock_dead ? (wait < 0 ? 0 : poll(NULL, 0, wait)) : poll(&pfd, 1, wait);
        if (ready < 0 && errno != EINTR) {
            perror("echo_server: poll");
            exit(1);
        }
        if (ready > 0 && pfd.revents) {
            uint8_t *buf = NULL;
            size_t cap = 0;
            check("recv_buffer", tandem_conn_recv_buffer(conn, &buf, &cap));
            if (cap >= MAX_DATAGRAM) {
                ssize_t n = recv(fd, buf, cap, 0);
                if (n > 0) {
                    check("recv_commit", tandem_conn_recv_commit(conn, now_ms(), (size_t)n));
                } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
                    sock_dead = 1;
                    check("eof", tandem_conn_eof(conn, now_ms()));
                }
            }
        }
        if (deadline != TANDEM_NO_DEADLINE && now_ms() >= deadline)
            check("handle_timeout", tandem_conn_handle_timeout(conn, now_ms()));
    }
    check("free", tandem_conn_free(conn));
    close(fd);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s SOCKET_PATH\n", argv[0]);
        return 2;
    }
    struct sockaddr_un addr = {0};
    addr.sun_family = AF_UNIX;
    if (strlen(argv[1]) >= sizeof addr.sun_path) {
        fprintf(stderr, "echo_server: socket path too long\n");
        return 2;
    }
    strcpy(addr.sun_path, argv[1]);
    int lfd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(lfd, 8) < 0) {
        perror("echo_server: listen");
        return 1;
    }
    fprintf(stderr, "echo_server: listening on %s\n", argv[1]);
    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR) continue;
            perror("echo_server: accept");
            return 1;
        }
        serve(fd);
    }
}
