//! Internet checksum throughput: the 8-bytes-per-step sum against a naive
//! 16-bit loop. Run with `cargo bench -p daytona-wire`.

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use daytona_wire::checksum::{sum, sum_naive};

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("checksum");
    for size in [64usize, 1500, 65_536] {
        let data: Vec<u8> = (0..size).map(|i| (i * 31 % 256) as u8).collect();
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::new("fast", size), &data, |b, d| {
            b.iter(|| sum(black_box(d)))
        });
        group.bench_with_input(BenchmarkId::new("naive", size), &data, |b, d| {
            b.iter(|| sum_naive(black_box(d)))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
