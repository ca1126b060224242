/* Two Daytona stacks in one C process, driven through daytona.h: connect,
 * move 1 MiB one way, close both ends, and check what the ABI promises
 * (errors as negative errnos, events as JSON, tcp_info filled in).
 * Exits 0 on success; prints the failed check otherwise. */
#include "daytona.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond)                                                        \
    do {                                                                   \
        if (!(cond)) {                                                     \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__,         \
                    __LINE__, #cond);                                      \
            exit(1);                                                       \
        }                                                                  \
    } while (0)

#define TOTAL (1u << 20)
#define ADDR_A 0xC6120001u /* 198.18.0.1 */
#define ADDR_B 0xC6120002u /* 198.18.0.2 */

static uint8_t frame[65536 + 14];

/* Moves every pending frame from one stack to the other, both ways, until
 * both are quiet. Returns how many frames moved. */
static int pump(dt_stack *a, dt_stack *b, uint64_t now) {
    int moved = 0, progress = 1;
    while (progress) {
        progress = 0;
        ssize_t n;
        while ((n = dt_stack_poll_transmit(a, now, frame, sizeof frame)) > 0) {
            CHECK(dt_stack_handle_frame(b, now, frame, (size_t)n) == 0);
            moved++, progress = 1;
        }
        CHECK(n == 0);
        while ((n = dt_stack_poll_transmit(b, now, frame, sizeof frame)) > 0) {
            CHECK(dt_stack_handle_frame(a, now, frame, (size_t)n) == 0);
            moved++, progress = 1;
        }
        CHECK(n == 0);
    }
    return moved;
}

/* Advances time to the earlier of the two stacks' timers and fires them. */
static uint64_t tick(dt_stack *a, dt_stack *b, uint64_t now) {
    int64_t ta = dt_stack_poll_timeout(a), tb = dt_stack_poll_timeout(b);
    int64_t next = ta < 0 ? tb : (tb < 0 || ta < tb ? ta : tb);
    if (next > (int64_t)now) now = (uint64_t)next;
    dt_stack_handle_timeout(a, now);
    dt_stack_handle_timeout(b, now);
    return now;
}

int main(void) {
    CHECK(sizeof(dt_tcp_info) == EXPECT_INFO_SIZE);
    CHECK(offsetof(dt_tcp_info, sndbuf_limited_us) == EXPECT_INFO_LAST);
    CHECK(sizeof(dt_stack_config) == EXPECT_CONFIG_SIZE);
    CHECK(offsetof(dt_stack_config, congestion_control) == EXPECT_CONFIG_CC);
    CHECK(strlen(dt_version()) > 0);

    dt_stack_config cfg;
    dt_stack_config_init(&cfg);
    dt_stack *a = NULL, *b = NULL;

    cfg.congestion_control = "no-such-controller";
    CHECK(dt_stack_new(&cfg, &a) == -EINVAL);
    cfg.congestion_control = "newreno";
    cfg.addr = ADDR_A;
    CHECK(dt_stack_new(&cfg, &a) == 0);
    cfg.addr = ADDR_B;
    cfg.secret[0] ^= 1;
    CHECK(dt_stack_new(&cfg, &b) == 0);

    uint64_t now = 1000, listener, client, server;
    CHECK(dt_tcp_listen(b, 5001, 16, &listener) == 0);
    CHECK(dt_tcp_listen(b, 5001, 16, &listener) == -EADDRINUSE);
    CHECK(dt_tcp_accept(b, listener, &server) == -EAGAIN);
    CHECK(dt_tcp_connect(a, now, ADDR_B, 5001, &client) == 0);
    CHECK(dt_tcp_state(a, client) == DT_TCP_SYN_SENT);
    CHECK(dt_stack_poll_transmit(a, now, frame, 100) == -EINVAL);

    pump(a, b, now);
    CHECK(dt_tcp_state(a, client) == DT_TCP_ESTABLISHED);
    CHECK(dt_tcp_accept(b, listener, &server) == 0);
    CHECK(dt_tcp_state(b, server) == DT_TCP_ESTABLISHED);

    /* 1 MiB of a known pattern, written and read in odd-sized pieces. */
    static uint8_t data[TOTAL], got[TOTAL];
    for (size_t i = 0; i < TOTAL; i++) data[i] = (uint8_t)(i * 7 + (i >> 9));
    size_t sent = 0, recvd = 0;
    int rounds = 0;
    while (recvd < TOTAL) {
        CHECK(++rounds < 100000);
        if (sent < TOTAL) {
            size_t want = TOTAL - sent < 70001 ? TOTAL - sent : 70001;
            ssize_t n = dt_tcp_send(a, now, client, data + sent, want);
            CHECK(n > 0 || n == -EAGAIN);
            if (n > 0) sent += (size_t)n;
        }
        int moved = pump(a, b, now);
        ssize_t n;
        while ((n = dt_tcp_recv(b, now, server, got + recvd, 4099)) > 0) recvd += (size_t)n;
        CHECK(n == -EAGAIN || recvd == TOTAL);
        if (moved == 0) now = tick(a, b, now + 1);
    }
    CHECK(memcmp(data, got, TOTAL) == 0);

    /* The last ACK may be a delayed one: run the timers until it comes. */
    dt_tcp_info info;
    memset(&info, 0xff, sizeof info);
    for (int i = 0; i < 10; i++) {
        CHECK(dt_tcp_get_info(a, now, client, &info) == 0);
        if (info.unacked == 0) break;
        now = tick(a, b, now);
        pump(a, b, now);
    }
    CHECK(info.state == DT_TCP_ESTABLISHED);
    CHECK(info.bytes_acked == TOTAL);
    CHECK(info.snd_mss == 1448);
    CHECK((info.options & (DT_TCPI_OPT_TIMESTAMPS | DT_TCPI_OPT_SACK | DT_TCPI_OPT_WSCALE)) ==
          (DT_TCPI_OPT_TIMESTAMPS | DT_TCPI_OPT_SACK | DT_TCPI_OPT_WSCALE));
    CHECK(info.total_retrans == 0);
    CHECK(dt_tcp_get_info(b, now, server, &info) == 0);
    CHECK(info.bytes_received == TOTAL);

    /* Orderly close from the client; the server sees end of stream. */
    CHECK(dt_tcp_shutdown(a, now, client, 7) == -EINVAL);
    CHECK(dt_tcp_close(a, now, client) == 0);
    CHECK(dt_tcp_state(a, client) == -EBADF);
    CHECK(dt_tcp_send(a, now, client, data, 1) == -EBADF);
    pump(a, b, now);
    CHECK(dt_tcp_recv(b, now, server, got, sizeof got) == 0);
    CHECK(dt_tcp_state(b, server) == DT_TCP_CLOSE_WAIT);
    CHECK(dt_tcp_close(b, now, server) == 0);
    pump(a, b, now);

    /* Events: JSON objects; a short buffer keeps the event for a retry. */
    char small[8], big[4096];
    size_t len = 0;
    int r = dt_stack_poll_event(a, small, sizeof small, &len);
    CHECK(r == -ENOSPC && len > sizeof small);
    int states = 0, events = 0;
    while ((r = dt_stack_poll_event(a, big, sizeof big, &len)) == 1) {
        events++;
        CHECK(big[0] == '{' && big[len - 1] == '}' && strlen(big) == len);
        if (strstr(big, "\"event\":\"state_change\"")) states++;
    }
    CHECK(r == 0);
    /* SYN-SENT -> ESTABLISHED -> FIN-WAIT-1 -> FIN-WAIT-2 -> TIME-WAIT */
    CHECK(states >= 4);
    CHECK(events > states);

    /* TIME-WAIT ends after 2 MSL; then both stacks are idle. */
    for (int i = 0; i < 100 && (dt_stack_poll_timeout(a) >= 0 || dt_stack_poll_timeout(b) >= 0); i++) {
        now = tick(a, b, now);
        pump(a, b, now);
    }
    CHECK(dt_stack_poll_timeout(a) < 0);

    CHECK(dt_tcp_close_listener(b, now, listener) == 0);
    CHECK(dt_tcp_accept(b, listener, &server) == -EBADF);
    dt_stack_free(a);
    dt_stack_free(b);
    dt_stack_free(NULL);
    printf("two_stacks: %u bytes byte-exact, %d events from the client\n", TOTAL, events);
    return 0;
}
