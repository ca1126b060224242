//! The tokio adapters: async accept/connect, AsyncRead/AsyncWrite, woken
//! by the Daytona runtime.

mod common;

use common::*;
use daytona_runtime::tokio::{TcpListener, TcpStream};
use std::io::ErrorKind;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_echo_and_transfer() {
    let (a, b) = pair();
    let listener = TcpListener::bind(&b, addr(B, 7)).await.unwrap();
    let server = tokio::spawn(async move {
        let (mut s, peer) = listener.accept().await.unwrap();
        assert_eq!(peer.ip(), std::net::IpAddr::V4(A));
        let mut buf = vec![0u8; 16 * 1024];
        let mut total = Vec::new();
        loop {
            let n = s.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            total.extend_from_slice(&buf[..n]);
            s.write_all(&buf[..n]).await.unwrap();
        }
        s.shutdown().await.unwrap();
        total.len()
    });
    let mut c = TcpStream::connect(&a, addr(B, 7)).await.unwrap();
    c.set_nodelay(true).unwrap();
    for i in 0..50u8 {
        c.write_all(&[i; 3]).await.unwrap();
        let mut got = [0u8; 3];
        c.read_exact(&mut got).await.unwrap();
        assert_eq!(got, [i; 3]);
    }
    // A bigger transfer, written and read concurrently.
    let data = pattern(2 << 20, 11);
    let (mut r, mut w) = tokio::io::split(c);
    let to_send = data.clone();
    let writer = tokio::spawn(async move {
        w.write_all(&to_send).await.unwrap();
        w.shutdown().await.unwrap();
    });
    let mut echoed = Vec::new();
    r.read_to_end(&mut echoed).await.unwrap();
    writer.await.unwrap();
    assert_eq!(hash(&echoed), hash(&data));
    assert_eq!(server.await.unwrap(), 150 + data.len());
}

#[tokio::test]
async fn async_connect_refused() {
    let (a, _b) = pair();
    let err = TcpStream::connect(&a, addr(B, 9)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
}

#[tokio::test]
async fn current_thread_runtime_with_both_ends_async() {
    let (a, b) = pair();
    let listener = TcpListener::bind(&b, addr(B, 8)).await.unwrap();
    let accept = tokio::spawn(async move { listener.accept().await.map(|(s, _)| s) });
    let mut c = TcpStream::connect(&a, addr(B, 8)).await.unwrap();
    let mut s = accept.await.unwrap().unwrap();
    c.write_all(b"hello").await.unwrap();
    let mut buf = [0u8; 5];
    s.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"hello");
    assert!(s.get_ref().info().unwrap().bytes_received >= 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_async_connections() {
    let (a, b) = pair();
    let a = std::sync::Arc::new(a);
    let listener = TcpListener::bind(&b, addr(B, 9)).await.unwrap();
    let server = tokio::spawn(async move {
        let mut tasks = Vec::new();
        for _ in 0..100 {
            let (mut s, _) = listener.accept().await.unwrap();
            tasks.push(tokio::spawn(async move {
                let mut buf = [0u8; 256];
                loop {
                    let n = s.read(&mut buf).await.unwrap();
                    if n == 0 {
                        break;
                    }
                    s.write_all(&buf[..n]).await.unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
    let clients: Vec<_> = (0..100u32)
        .map(|i| {
            let a = a.clone();
            tokio::spawn(async move {
                let mut c = TcpStream::connect(&a, addr(B, 9)).await.unwrap();
                for round in 0..5u32 {
                    let msg = (i * 1000 + round).to_be_bytes();
                    c.write_all(&msg).await.unwrap();
                    let mut got = [0u8; 4];
                    c.read_exact(&mut got).await.unwrap();
                    assert_eq!(got, msg);
                }
            })
        })
        .collect();
    for c in clients {
        c.await.unwrap();
    }
    server.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_tasks_accept_on_one_listener() {
    // As with tokio's own listener, tasks sharing a listener may all wait
    // in `accept`: each connection wakes one, none is forgotten.
    let (a, b) = pair();
    let listener = std::sync::Arc::new(TcpListener::bind(&b, addr(B, 7)).await.unwrap());
    let mut acceptors = Vec::new();
    for _ in 0..3 {
        let l = listener.clone();
        acceptors.push(tokio::spawn(async move { l.accept().await.map(|_| ()) }));
    }
    // Every acceptor is parked before the first connection arrives.
    tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while b.blocked() < 3 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("all three acceptors wait");
    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(TcpStream::connect(&a, addr(B, 7)).await.unwrap());
    }
    for t in acceptors {
        tokio::time::timeout(std::time::Duration::from_secs(10), t)
            .await
            .expect("an acceptor was never woken")
            .unwrap()
            .unwrap();
    }
}
