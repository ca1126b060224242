/*
 * daytona.h — Daytona's C ABI, first layer: the sans-IO TCP/IP stack.
 *
 * The host owns the clock and the packet channel: it hands received frames
 * to dt_stack_handle_frame, sends what dt_stack_poll_transmit returns, and
 * calls dt_stack_handle_timeout when dt_stack_poll_timeout says so. Nothing
 * here blocks, sleeps, reads a clock or makes a system call.
 *
 * Conventions:
 *  - 0 (or a byte count) on success, a negative errno on failure
 *    (-EBADF for a stale handle, -EAGAIN when a call would block, ...);
 *  - handles are opaque uint64_t; times are microseconds since an epoch the
 *    host chooses; IPv4 addresses and ports are in host byte order;
 *  - a stack is not thread-safe: use one stack from one thread at a time;
 *  - events are NUL-terminated JSON objects, one per dt_stack_poll_event.
 *
 * Link with -ldaytona (libdaytona.a or libdaytona.so from
 * `cargo build --release -p daytona-capi`), plus -lpthread -ldl -lm for
 * the static library.
 */
#ifndef DAYTONA_H
#define DAYTONA_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct DtStack dt_stack;

typedef struct dt_stack_config {
    uint32_t addr;          /* our IPv4 address, host order */
    uint8_t prefix_len;     /* 0..32 */
    uint8_t ethernet;       /* 1: Ethernet II + ARP; 0: bare IPv4 packets */
    uint8_t mac[6];         /* our MAC when ethernet == 1 */
    uint32_t gateway;       /* next hop off-link, host order; 0 = none */
    uint32_t mtu;           /* IP MTU, 68..65535 */
    uint32_t send_buffer;   /* per connection, bytes */
    uint32_t recv_buffer;   /* per connection, bytes */
    uint32_t max_connections;
    uint8_t secret[32];     /* key for ISNs, SYN cookies, ports: randomise for real traffic */
    const char *congestion_control; /* NULL = default ("newreno") */
} dt_stack_config;

/* Linux `struct tcp_info` field names; times in microseconds. */
typedef struct dt_tcp_info {
    uint8_t state;          /* DT_TCP_* */
    uint8_t ca_state;       /* 0 open, 1 disorder, 2 cwr, 3 recovery, 4 loss */
    uint8_t retransmits;
    uint8_t probes;
    uint8_t backoff;
    uint8_t options;        /* DT_TCPI_OPT_* */
    uint8_t snd_wscale;
    uint8_t rcv_wscale;
    uint32_t rto_us;
    uint32_t ato_us;
    uint32_t snd_mss;
    uint32_t rcv_mss;
    uint32_t unacked;
    uint32_t sacked;
    uint32_t lost;
    uint32_t retrans;
    uint32_t pmtu;
    uint32_t rcv_ssthresh;
    uint32_t rtt_us;
    uint32_t rttvar_us;
    uint32_t min_rtt_us;    /* UINT32_MAX before the first sample */
    uint32_t snd_ssthresh;
    uint32_t snd_cwnd;      /* bytes */
    uint32_t advmss;
    uint32_t reordering;
    uint32_t rcv_space;
    uint32_t total_retrans;
    uint32_t snd_wnd;
    uint32_t rcv_wnd;
    uint32_t notsent_bytes;
    uint32_t rto_count;
    uint32_t fast_retransmits;
    uint64_t pacing_rate;   /* bytes/s, 0 = none */
    uint64_t delivery_rate; /* bytes/s, 0 = no sample */
    uint64_t bytes_acked;
    uint64_t bytes_received;
    uint64_t bytes_sent;
    uint64_t bytes_retrans;
    uint64_t segs_out;
    uint64_t segs_in;
    uint64_t data_segs_out;
    uint64_t data_segs_in;
    uint64_t delivered;
    uint64_t busy_time_us;
    uint64_t rwnd_limited_us;
    uint64_t sndbuf_limited_us;
} dt_tcp_info;

/* Connection states, Linux numbering. */
enum {
    DT_TCP_ESTABLISHED = 1,
    DT_TCP_SYN_SENT = 2,
    DT_TCP_SYN_RECV = 3,
    DT_TCP_FIN_WAIT1 = 4,
    DT_TCP_FIN_WAIT2 = 5,
    DT_TCP_TIME_WAIT = 6,
    DT_TCP_CLOSE = 7,
    DT_TCP_CLOSE_WAIT = 8,
    DT_TCP_LAST_ACK = 9,
    DT_TCP_LISTEN = 10,
    DT_TCP_CLOSING = 11,
};

enum {
    DT_TCPI_OPT_TIMESTAMPS = 1,
    DT_TCPI_OPT_SACK = 2,
    DT_TCPI_OPT_WSCALE = 4,
    DT_TCPI_OPT_ECN = 8,
};

enum { DT_SHUT_RD = 0, DT_SHUT_WR = 1, DT_SHUT_RDWR = 2 };

/* Stack */
void dt_stack_config_init(dt_stack_config *cfg);
int dt_stack_new(const dt_stack_config *cfg, dt_stack **out);
void dt_stack_free(dt_stack *s);
size_t dt_stack_frame_size(const dt_stack *s);
int dt_stack_handle_frame(dt_stack *s, uint64_t now_us, const uint8_t *frame, size_t len);
ssize_t dt_stack_poll_transmit(dt_stack *s, uint64_t now_us, uint8_t *buf, size_t cap);
int64_t dt_stack_poll_timeout(dt_stack *s);
int dt_stack_handle_timeout(dt_stack *s, uint64_t now_us);
int dt_stack_poll_event(dt_stack *s, char *buf, size_t cap, size_t *len);

/* TCP */
int dt_tcp_listen(dt_stack *s, uint16_t port, uint32_t backlog, uint64_t *out);
int dt_tcp_accept(dt_stack *s, uint64_t listener, uint64_t *out);
int dt_tcp_close_listener(dt_stack *s, uint64_t now_us, uint64_t listener);
int dt_tcp_connect(dt_stack *s, uint64_t now_us, uint32_t addr, uint16_t port, uint64_t *out);
ssize_t dt_tcp_send(dt_stack *s, uint64_t now_us, uint64_t conn, const uint8_t *data, size_t len);
ssize_t dt_tcp_recv(dt_stack *s, uint64_t now_us, uint64_t conn, uint8_t *buf, size_t cap);
int dt_tcp_shutdown(dt_stack *s, uint64_t now_us, uint64_t conn, int how);
int dt_tcp_close(dt_stack *s, uint64_t now_us, uint64_t conn);
int dt_tcp_abort(dt_stack *s, uint64_t now_us, uint64_t conn);
int dt_tcp_set_nodelay(dt_stack *s, uint64_t now_us, uint64_t conn, int on);
int dt_tcp_set_tag(dt_stack *s, uint64_t now_us, uint64_t conn, uint64_t tag);
int dt_tcp_state(dt_stack *s, uint64_t conn);
int dt_tcp_get_info(dt_stack *s, uint64_t now_us, uint64_t conn, dt_tcp_info *out);

const char *dt_version(void);

#ifdef __cplusplus
}
#endif

#endif /* DAYTONA_H */
