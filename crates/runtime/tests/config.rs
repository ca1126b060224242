//! StackBuilder and the DAYTONA_* variables.

mod common;

use common::*;
use daytona_runtime::{StackBuilder, TimerMode};
use std::collections::HashMap;
use std::io::ErrorKind;
use std::time::Duration;

fn vars(list: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let m: HashMap<String, String> = list
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k| m.get(k).cloned()
}

#[test]
fn variables_configure_the_stack() {
    let b = StackBuilder::from_vars(vars(&[
        ("DAYTONA_ADDR", "198.18.0.1/24"),
        ("DAYTONA_GATEWAY", "198.18.0.254"),
        ("DAYTONA_MTU", "1400"),
        ("DAYTONA_CC", "newreno"),
        ("DAYTONA_TIMER", "jiffies"),
        ("DAYTONA_BUSY_POLL", "25"),
        ("DAYTONA_SNDBUF", "65536"),
        ("DAYTONA_RCVBUF", "131072"),
        ("DAYTONA_LINK", "tap:dt0"),
    ]))
    .unwrap();
    assert_eq!(b.current_timer_mode(), TimerMode::Jiffies);
    assert_eq!(b.current_busy_poll(), Some(Duration::from_micros(25)));
    assert_eq!(b.link_spec(), Some("tap:dt0"));
    let c = b.stack_config(false, 1500).unwrap();
    assert_eq!(c.addr, A);
    assert_eq!(c.prefix_len, 24);
    assert_eq!(c.gateway, Some("198.18.0.254".parse().unwrap()));
    assert_eq!(c.mtu, 1400);
    assert_eq!(c.tcp.congestion_control, "newreno");
    assert_eq!(c.tcp.send_buffer, 65536);
    assert_eq!(c.tcp.send_buffer_max, None);
    assert_eq!(c.tcp.recv_buffer, 131072);
    // An unset environment keeps the defaults (and needs an address).
    let empty = StackBuilder::from_vars(|_| None).unwrap();
    assert_eq!(empty.current_timer_mode(), TimerMode::HighResolution);
    assert_eq!(empty.current_busy_poll(), None);
    let err = empty.stack_config(false, 1500).unwrap_err();
    assert!(err.to_string().contains("DAYTONA_ADDR"), "{err}");
}

#[test]
fn invalid_values_name_the_variable() {
    for (name, value) in [
        ("DAYTONA_ADDR", "198.18.0.1"),
        ("DAYTONA_ADDR", "198.18.0.300/24"),
        ("DAYTONA_ADDR", "198.18.0.1/33"),
        ("DAYTONA_GATEWAY", "gateway"),
        ("DAYTONA_MTU", "20"),
        ("DAYTONA_MTU", "big"),
        ("DAYTONA_CC", "warp-drive"),
        ("DAYTONA_TIMER", "sometimes"),
        ("DAYTONA_BUSY_POLL", "-1"),
        ("DAYTONA_SNDBUF", "12"),
        ("DAYTONA_RCVBUF", "lots"),
    ] {
        let err = StackBuilder::from_vars(vars(&[(name, value)])).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        let text = err.to_string();
        assert!(text.starts_with(name), "{text}");
        assert!(
            text.contains(value.split('/').next().unwrap_or(value)) || text.contains("prefix"),
            "{text}"
        );
    }
}

#[test]
fn builder_errors_are_clear() {
    let err = StackBuilder::new().addr(A, 24).build().unwrap_err();
    assert!(err.to_string().contains("no link"), "{err}");
    let (l, _other) = daytona_link::SocketPairLink::pair(1500).unwrap();
    let err = StackBuilder::new()
        .addr(A, 24)
        .mtu(9000)
        .link(l)
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let (l, _other) = daytona_link::SocketPairLink::pair(1500).unwrap();
    let err = StackBuilder::new()
        .addr(A, 24)
        .congestion_control("nope")
        .link(l)
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("nope"), "{err}");
}

/// A link that claims segmentation offload up to 64 KiB, and transmit
/// checksum offload when its flag says so.
struct Offloading(daytona_link::SocketPairLink, bool);

impl daytona_link::Link for Offloading {
    fn caps(&self) -> daytona_link::LinkCaps {
        daytona_link::LinkCaps {
            max_segment: 65_535,
            tx_checksum_offload: self.1,
            ..self.0.caps()
        }
    }
    fn recv_batch(
        &mut self,
        now: daytona_core::time::Instant,
        batch: &mut daytona_link::Batch,
    ) -> std::io::Result<usize> {
        self.0.recv_batch(now, batch)
    }
    fn send_batch(
        &mut self,
        now: daytona_core::time::Instant,
        batch: &daytona_link::Batch,
    ) -> std::io::Result<usize> {
        self.0.send_batch(now, batch)
    }
    fn wait_fd(&self) -> Option<std::os::fd::RawFd> {
        self.0.wait_fd()
    }
}

#[test]
fn a_link_with_segmentation_offload_gets_super_segments() {
    let (l, _other) = daytona_link::SocketPairLink::pair(1500).unwrap();
    let rt = StackBuilder::new()
        .addr(A, 24)
        .link(Offloading(l, false))
        .build()
        .unwrap();
    assert_eq!(rt.with_stack(|s| s.config().tso_max).unwrap(), Some(65_535));
    // Full checksums: this link cannot complete partial ones.
    assert!(!rt.with_stack(|s| s.config().tx_csum_offload).unwrap());
    let (l, _other) = daytona_link::SocketPairLink::pair(1500).unwrap();
    let rt = StackBuilder::new()
        .addr(A, 24)
        .link(Offloading(l, true))
        .build()
        .unwrap();
    assert!(rt.with_stack(|s| s.config().tx_csum_offload).unwrap());
    // No TSO asked for: nothing to leave partial.
    let (l, _other) = daytona_link::SocketPairLink::pair(1500).unwrap();
    let rt = StackBuilder::new()
        .addr(A, 24)
        .tso(false)
        .link(Offloading(l, true))
        .build()
        .unwrap();
    assert!(!rt.with_stack(|s| s.config().tx_csum_offload).unwrap());
    let (l, _other) = daytona_link::SocketPairLink::pair(1500).unwrap();
    let rt = StackBuilder::new().addr(A, 24).link(l).build().unwrap();
    assert_eq!(rt.with_stack(|s| s.config().tso_max).unwrap(), None);
}

#[test]
fn ephemeral_ports_can_be_given() {
    let (l, _other) = daytona_link::SocketPairLink::pair(1500).unwrap();
    let rt = StackBuilder::new()
        .addr(A, 24)
        .ephemeral_ports(61_000..=65_535)
        .link(l)
        .build()
        .unwrap();
    let ports = rt
        .with_stack(|s| s.config().ephemeral_ports.clone())
        .unwrap();
    assert_eq!(ports, 61_000..=65_535);
}
