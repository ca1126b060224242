//! Why packets were dropped or answered, one counter each (Linux `netstat
//! -s`-style). Malformed input never panics: it lands here.

/// Stack-wide counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StackCounters {
    pub frames_in: u64,
    pub frames_out: u64,
    // Link layer.
    pub eth_truncated: u64,
    pub eth_not_for_us: u64,
    pub eth_unknown_type: u64,
    pub arp_malformed: u64,
    pub arp_requests_answered: u64,
    pub arp_requests_sent: u64,
    pub arp_unresolved_drops: u64,
    // IPv4.
    pub ip_malformed: u64,
    pub ip_bad_checksum: u64,
    pub ip_not_for_us: u64,
    pub ip_fragments_dropped: u64,
    pub ip_unknown_protocol: u64,
    // ICMP.
    pub icmp_malformed: u64,
    pub icmp_echo_replied: u64,
    pub icmp_errors_delivered: u64,
    pub icmp_errors_unmatched: u64,
    pub icmp_errors_sent: u64,
    pub icmp_rate_limited: u64,
    // TCP.
    pub tcp_malformed: u64,
    pub tcp_bad_checksum: u64,
    pub tcp_rst_sent: u64,
    pub tcp_no_listener: u64,
    pub tcp_syn_cookies_sent: u64,
    pub tcp_syn_cookies_valid: u64,
    pub tcp_syn_cookies_invalid: u64,
    pub tcp_listen_overflows: u64,
    pub tcp_limit_drops: u64,
    pub tcp_active_opens: u64,
    pub tcp_passive_opens: u64,
    // UDP.
    pub udp_malformed: u64,
    pub udp_bad_checksum: u64,
    pub udp_no_port: u64,
    pub udp_queue_full: u64,
    // Observability.
    pub events_dropped: u64,
}

impl StackCounters {
    /// Counts a wire parse error under `malformed` / `bad_checksum`.
    pub(crate) fn wire_error(
        err: daytona_wire::Error,
        malformed: &mut u64,
        bad_checksum: &mut u64,
    ) {
        match err {
            daytona_wire::Error::BadChecksum => *bad_checksum += 1,
            _ => *malformed += 1,
        }
    }
}
