//! Daytona over a TAP device against the kernel's TCP (CUBIC), inside a
//! network namespace per test. Run as root; otherwise each test prints
//! `SKIPPED:` (a failure with `DAYTONA_REQUIRE_PRIV=1`).

mod kernel;

use kernel::{Direction, Outcome, Run};

fn privileged(what: &str) -> bool {
    daytona_testnet::require_privileges(what)
}

fn check(o: &Outcome, r: &Run) {
    assert_eq!(o.sent.0, r.bytes, "the sender sent everything");
    assert_eq!(o.received, o.sent, "byte-exact: same length and hash");
}

#[test]
fn smoke_kernel_to_daytona() {
    if !privileged("smoke_kernel_to_daytona") {
        return;
    }
    let r = Run::new(Direction::KernelToDaytona, 10_000_000);
    let o = kernel::run(&r).expect("transfer");
    println!("{o:#?}");
    check(&o, &r);
}

#[test]
fn smoke_daytona_to_kernel() {
    if !privileged("smoke_daytona_to_kernel") {
        return;
    }
    let r = Run::new(Direction::DaytonaToKernel, 10_000_000);
    let o = kernel::run(&r).expect("transfer");
    println!("{o:#?}");
    check(&o, &r);
}
