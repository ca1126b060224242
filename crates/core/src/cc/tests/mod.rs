mod bbr;
mod cubic;
mod harness;
mod hystart;
mod newreno;
mod props;

use crate::cc::CcRegistry;

#[test]
fn every_builtin_controller_builds_by_name() {
    let r = CcRegistry::with_builtin();
    assert_eq!(r.names(), ["bbr", "cubic", "fixed", "newreno", "reno"]);
    for name in r.names() {
        let cc = r.build(name).expect("registered");
        let canonical = if name == "reno" { "newreno" } else { name };
        assert_eq!(cc.name(), canonical);
    }
    let err = r.build("vegas").expect_err("not registered");
    assert_eq!(err.known, r.names());
}
