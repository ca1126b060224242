mod bbr;
mod cubic;
mod harness;
mod hystart;
mod newreno;
mod props;
