//! `bottleneck.pcapng`: every frame entering the bottleneck, one
//! interface per direction, bare IPv4 (LINKTYPE_RAW), microsecond times
//! on the simulator's virtual clock.

use daytona_sim::scenario::ScenarioReport;
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::DataLink;
use std::borrow::Cow;
use std::fs::File;
use std::io::{self, BufWriter};
use std::path::Path;

pub fn write(dir: &Path, r: &ScenarioReport) -> io::Result<String> {
    let name = "bottleneck.pcapng";
    let file = BufWriter::new(File::create(dir.join(name))?);
    let mut w = PcapNgWriter::new(file).map_err(io::Error::other)?;
    let (fwd, rev) = r.bottleneck;
    for (link, what) in [(fwd, "sender to receiver"), (rev, "receiver to sender")] {
        let link_name = r.link_names.get(link.0).cloned().unwrap_or_default();
        w.write_pcapng_block(InterfaceDescriptionBlock {
            linktype: DataLink::RAW,
            snaplen: 0,
            options: vec![
                InterfaceDescriptionOption::IfName(Cow::Owned(link_name)),
                InterfaceDescriptionOption::IfDescription(Cow::Borrowed(what)),
                // pcap-file writes timestamps in nanoseconds.
                InterfaceDescriptionOption::IfTsResol(9),
            ],
        })
        .map_err(io::Error::other)?;
    }
    for c in &r.capture {
        let interface_id = u32::from(c.link != fwd);
        w.write_pcapng_block(EnhancedPacketBlock {
            interface_id,
            timestamp: std::time::Duration::from_micros(c.time.total_micros()),
            original_len: c.frame.len() as u32,
            data: Cow::Borrowed(&c.frame),
            options: vec![],
        })
        .map_err(io::Error::other)?;
    }
    let mut file = w.into_inner();
    io::Write::flush(&mut file)?;
    Ok(name.into())
}
