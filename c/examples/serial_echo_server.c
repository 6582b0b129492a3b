/*
 * serial_echo_server: ECHO of tandem's standard test service (SPEC.md Appendix A) served from C
 * over a serial line: datagram mode (SPEC.md §14) in the serial framing of §14.9 (COBS frames
 * with a CRC-32C), through the tandem C API.
 *
 *     serial_echo_server TTY [BAUD]
 *
 * opens TTY (a UART, a USB CDC-ACM port, a pseudo-terminal) in raw mode at BAUD (default 115200)
 * and answers the peer on the line, one association after another, until killed. Module 100:
 * ECHO (1) answers its payload; other methods are answered UNKNOWN_METHOD, other modules
 * UNKNOWN_MODULE, streams UNIMPLEMENTED (datagram mode has none). Damaged frames are dropped by
 * the decoder and recovered by datagram mode's retransmission. When an association ends, a line
 * "served N echo calls, dropped F frames" goes to stdout.
 *
 * Memory: static arrays hold the connection (datagram mode's reply cache and retained requests
 * included) and the decoder; the library never allocates.
 *
 * Build (from the repository root, after `cargo build -p tandem-c`):
 *     cc -std=c11 -Wall -Wextra -Ic/include c/examples/serial_echo_server.c \
 *        target/debug/libtandem_c.a -lpthread -ldl -lm -o serial_echo_server
 */
#define _DEFAULT_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "tandem.h"

#define MODULE 100
#define M_ECHO 1
#define MAX_DATAGRAM 1200

static unsigned char conn_mem[128 * 1024];
static unsigned char decoder_mem[2048];
static uint8_t datagram[MAX_DATAGRAM];
static uint8_t frame[MAX_DATAGRAM + 16];

static int tty = -1;
static unsigned long echoes; /* ECHO calls executed in this association */

static uint64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void check(const char *what, enum tandem_result r) {
    if (r != TANDEM_RESULT_OK) {
        fprintf(stderr, "serial_echo_server: %s: %s\n", what, tandem_result_message(r));
        exit(1);
    }
}

static speed_t speed_of(long baud) {
    switch (baud) {
    case 9600: return B9600;
    case 19200: return B19200;
    case 38400: return B38400;
    case 57600: return B57600;
    case 115200: return B115200;
    case 230400: return B230400;
    case 460800: return B460800;
    case 921600: return B921600;
    default:
        fprintf(stderr, "serial_echo_server: unsupported baud rate %ld (9600 ... 921600)\n", baud);
        exit(2);
    }
}

/* Raw mode: no echo, no line editing, no CR/LF mapping, 8N1, no flow control. */
static void open_line(const char *path, long baud) {
    tty = open(path, O_RDWR | O_NOCTTY);
    if (tty < 0) {
        fprintf(stderr, "serial_echo_server: cannot open %s: %s\n", path, strerror(errno));
        exit(1);
    }
    struct termios t;
    if (tcgetattr(tty, &t) < 0) {
        fprintf(stderr, "serial_echo_server: %s is not a terminal: %s\n", path, strerror(errno));
        exit(1);
    }
    cfmakeraw(&t);
    t.c_cflag &= ~(PARENB | CSTOPB | CRTSCTS);
    t.c_cflag |= CS8 | CLOCAL | CREAD;
    t.c_cc[VMIN] = 1;
    t.c_cc[VTIME] = 0;
    cfsetispeed(&t, speed_of(baud));
    cfsetospeed(&t, speed_of(baud));
    if (tcsetattr(tty, TCSANOW, &t) < 0) {
        fprintf(stderr, "serial_echo_server: cannot configure %s: %s\n", path, strerror(errno));
        exit(1);
    }
}

static void write_all(const uint8_t *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(tty, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            fprintf(stderr, "serial_echo_server: write: %s\n", strerror(errno));
            exit(1);
        }
        p += w;
        n -= (size_t)w;
    }
}

/* Each datagram the connection has queued goes out as one serial frame. */
static void flush(tandem_conn *conn) {
    for (;;) {
        size_t n = 0, m = 0;
        check("poll_transmit", tandem_conn_poll_transmit(conn, now_ms(), datagram, sizeof datagram, &n));
        if (n == 0) return;
        check("serial_encode", tandem_serial_encode(datagram, n, frame, sizeof frame, &m));
        write_all(frame, m);
    }
}

static void respond(tandem_conn *conn, uint64_t id, uint32_t status, const uint8_t *p, size_t len) {
    enum tandem_result r = tandem_conn_respond(conn, id, status, p, len);
    if (r == TANDEM_RESULT_TX_FULL) {
        flush(conn);
        r = tandem_conn_respond(conn, id, status, p, len);
    }
    if (r != TANDEM_RESULT_OK && r != TANDEM_RESULT_CLOSED)
        fprintf(stderr, "serial_echo_server: respond: %s\n", tandem_result_message(r));
}

static void drain_events(tandem_conn *conn) {
    struct tandem_event ev;
    for (;;) {
        check("poll_event", tandem_conn_poll_event(conn, now_ms(), &ev));
        if (ev.kind == TANDEM_EVENT_KIND_NONE) return;
        if (ev.kind == TANDEM_EVENT_KIND_CLOSED) {
            fprintf(stderr, "serial_echo_server: association closed: status %u\n", ev.status);
            continue;
        }
        if (ev.kind != TANDEM_EVENT_KIND_REQUEST) continue;
        if (ev.request_kind != TANDEM_REQUEST_KIND_CALL && ev.request_kind != TANDEM_REQUEST_KIND_NOTIFY) {
            tandem_conn_stream_reset(conn, ev.id, TANDEM_STATUS_UNIMPLEMENTED);
        } else if (ev.module != MODULE) {
            respond(conn, ev.id, TANDEM_STATUS_UNKNOWN_MODULE, NULL, 0);
        } else if (ev.method == M_ECHO && ev.request_kind == TANDEM_REQUEST_KIND_CALL) {
            echoes++;
            respond(conn, ev.id, TANDEM_STATUS_OK, ev.payload, ev.payload_len);
        } else {
            respond(conn, ev.id, TANDEM_STATUS_UNKNOWN_METHOD, NULL, 0);
        }
    }
}

/* Serves one association on the line until it is finished. */
static void serve(tandem_serial_decoder *dec) {
    static const char name[] = "tandem-c-serial-echo";
    struct tandem_config cfg;
    check("config_default", tandem_config_default(&cfg));
    cfg.transport = TANDEM_TRANSPORT_DATAGRAM;
    cfg.max_datagram = MAX_DATAGRAM;
    cfg.max_frame_size = 4096;
    cfg.max_message_size = 4096;
    cfg.max_concurrent_calls = 16;
    cfg.max_outbound_calls = 1;
    cfg.max_tx_buffer = 8192;
    cfg.keepalive_interval_ms = 0; /* the peer may stay silent for long: no keepalive, */
    cfg.idle_timeout_ms = 0;       /* no idle timeout */
    cfg.reply_cache_entries = 32;  /* answers kept for retransmitted requests */
    cfg.reply_cache_bytes = 16384;
    cfg.max_retained_bytes = 4096; /* this program makes no calls of its own */
    cfg.name = (const uint8_t *)name;
    cfg.name_len = sizeof name - 1;
    size_t need = 0;
    check("memory_size", tandem_conn_memory_size(&cfg, &need));
    if (need > sizeof conn_mem) {
        fprintf(stderr, "serial_echo_server: the connection needs %zu bytes, conn_mem has %zu\n", need, sizeof conn_mem);
        exit(1);
    }
    tandem_conn *conn = NULL;
    check("init", tandem_conn_init(conn_mem, sizeof conn_mem, &cfg, TANDEM_ROLE_ACCEPTOR, now_ms(), &conn));
    echoes = 0;
    uint8_t rx[256];
    while (!tandem_conn_is_finished(conn)) {
        drain_events(conn);
        flush(conn);
        uint64_t deadline = 0;
        check("poll_timeout", tandem_conn_poll_timeout(conn, &deadline));
        uint64_t now = now_ms();
        int wait = -1;
        if (deadline != TANDEM_NO_DEADLINE) wait = deadline <= now ? 0 : (deadline - now > 60000 ? 60000 : (int)(deadline - now));
        struct pollfd pfd = {tty, POLLIN, 0};
        int ready = poll(&pfd, 1, wait);
        if (ready < 0 && errno != EINTR) {
            perror("serial_echo_server: poll");
            exit(1);
        }
        if (ready > 0 && (pfd.revents & POLLIN)) {
            ssize_t n = read(tty, rx, sizeof rx);
            if (n < 0 && errno != EINTR && errno != EAGAIN) {
                fprintf(stderr, "serial_echo_server: the line hung up: %s\n", strerror(errno));
                exit(1);
            }
            size_t off = 0;
            while (n > 0 && off < (size_t)n) {
                size_t used = 0, len = 0;
                const uint8_t *d = NULL;
                check("decoder_push", tandem_serial_decoder_push(dec, rx + off, (size_t)n - off, &used, &d, &len));
                off += used;
                if (d == NULL) continue;
                /* One checked datagram: taken whole once the events before it are drained. */
                size_t taken = 0;
                check("input", tandem_conn_input(conn, now_ms(), d, len, &taken));
                drain_events(conn);
            }
        } else if (ready > 0 && (pfd.revents & (POLLHUP | POLLERR))) {
            usleep(10000); /* a pty whose other side is closed: wait for it to come back */
        }
        if (deadline != TANDEM_NO_DEADLINE && now_ms() >= deadline)
            check("handle_timeout", tandem_conn_handle_timeout(conn, now_ms()));
    }
    struct tandem_serial_stats st;
    check("decoder_stats", tandem_serial_decoder_stats(dec, &st));
    printf("served %lu echo calls, dropped %llu frames\n", echoes,
           (unsigned long long)(st.bad_crc + st.bad_cobs + st.too_short + st.too_long));
    fflush(stdout);
    check("free", tandem_conn_free(conn));
}

int main(int argc, char **argv) {
    if (argc != 2 && argc != 3) {
        fprintf(stderr, "usage: %s TTY [BAUD]\n", argv[0]);
        return 2;
    }
    open_line(argv[1], argc == 3 ? strtol(argv[2], NULL, 10) : 115200);
    if (tandem_serial_decoder_memory_size(MAX_DATAGRAM) > sizeof decoder_mem) {
        fprintf(stderr, "serial_echo_server: the decoder needs %zu bytes\n", tandem_serial_decoder_memory_size(MAX_DATAGRAM));
        return 1;
    }
    tandem_serial_decoder *dec = NULL;
    check("decoder_init", tandem_serial_decoder_init(decoder_mem, sizeof decoder_mem, MAX_DATAGRAM, &dec));
    fprintf(stderr, "serial_echo_server: serving %s\n", argv[1]);
    for (;;) serve(dec);
}
