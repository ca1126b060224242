//! SVG plots of a run (plotters, SVG backend only): per flow a
//! time-sequence graph in the style of tcptrace's Stevens graph, and for
//! all flows cwnd/ssthresh, RTT and throughput against time.

use daytona_core::time::Instant;
use daytona_sim::scenario::ScenarioReport;
use daytona_sim::workload::{FlowReport, Sample};
use daytona_wire::{ChecksumMode, Control, Ipv4Packet, TcpPacket, TcpRepr};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use std::io;
use std::net::SocketAddrV4;
use std::path::Path;

const SIZE: (u32, u32) = (1000, 600);
const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
];

fn colour(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

fn err<E: std::fmt::Display>(e: E) -> io::Error {
    io::Error::other(e.to_string())
}

pub fn write_all(dir: &Path, r: &ScenarioReport) -> io::Result<Vec<String>> {
    let mut files = Vec::new();
    let start = r
        .capture
        .first()
        .map(|c| c.time)
        .unwrap_or(Instant::from_secs(1));
    // The run starts at the stacks' 1 s mark; the capture's first frame is
    // the first SYN, sent then.
    let start = start.min(Instant::from_secs(1));
    for f in &r.flows {
        let name = format!("{}-tseq.svg", f.name);
        time_sequence(&dir.join(&name), f, r, start)?;
        files.push(name);
    }
    for (name, title, ylabel, series) in CHARTS {
        line_chart(&dir.join(name), title, ylabel, r, series)?;
        files.push(name.to_string());
    }
    Ok(files)
}

/// What the capture says about one flow: its data segments, the ACKs and
/// SACK blocks coming back, relative to the sender's ISN.
#[derive(Default)]
struct Trace {
    isn: Option<u32>,
    /// (time s, seq start, seq end) relative.
    data: Vec<(f64, f64, f64)>,
    /// (time s, cumulative ACK) relative.
    acks: Vec<(f64, f64)>,
    /// (time s, left, right) relative.
    sacks: Vec<(f64, f64, f64)>,
}

fn parse(frame: &[u8]) -> Option<(std::net::Ipv4Addr, std::net::Ipv4Addr, TcpRepr<'_>)> {
    let ip = Ipv4Packet::new_checked(frame).ok()?;
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    let payload = frame.get(ip.header_len()..usize::from(ip.total_len()))?;
    let tcp = TcpPacket::new_checked(payload).ok()?;
    let repr = TcpRepr::parse(&tcp, &src, &dst, ChecksumMode::Ignore).ok()?;
    Some((src, dst, repr))
}

fn flow_trace(f: &FlowReport, r: &ScenarioReport, start: Instant) -> Trace {
    let mut t = Trace::default();
    let Some(me) = f.sender else { return t };
    let t_of = |i: Instant| i.saturating_since(start).as_secs_f64();
    for c in &r.capture {
        let Some((src, dst, tcp)) = parse(&c.frame) else {
            continue;
        };
        let from = SocketAddrV4::new(src, tcp.src_port);
        let to = SocketAddrV4::new(dst, tcp.dst_port);
        if from == me {
            if t.isn.is_none() && tcp.control == Control::Syn {
                t.isn = Some(tcp.seq.0.wrapping_add(1));
            }
            let Some(isn) = t.isn else { continue };
            if !tcp.payload.is_empty() {
                let s = f64::from(tcp.seq.0.wrapping_sub(isn));
                t.data.push((t_of(c.time), s, s + tcp.payload.len() as f64));
            }
        } else if to == me {
            let Some(isn) = t.isn else { continue };
            if let Some(ack) = tcp.ack {
                let time = t_of(c.time);
                t.acks.push((time, f64::from(ack.0.wrapping_sub(isn))));
                for b in tcp.options.sack_blocks.iter() {
                    let (l, r) = (b.left.0.wrapping_sub(isn), b.right.0.wrapping_sub(isn));
                    t.sacks.push((time, f64::from(l), f64::from(r)));
                }
            }
        }
    }
    t
}

fn max_of(it: impl Iterator<Item = f64>) -> f64 {
    it.fold(0.0, f64::max)
}

fn time_sequence(
    path: &Path,
    f: &FlowReport,
    r: &ScenarioReport,
    start: Instant,
) -> io::Result<()> {
    let t = flow_trace(f, r, start);
    let isn = t.isn.unwrap_or(0);
    let retrans: Vec<(f64, f64)> = f
        .retransmits
        .iter()
        .map(|m| {
            // Report times are since the run's start (1 s on the clock).
            let at = m.time.as_secs_f64() + (Instant::from_secs(1) - start).as_secs_f64();
            (at, f64::from(m.seq.wrapping_sub(isn)))
        })
        .collect();
    let xmax =
        max_of(t.data.iter().map(|d| d.0).chain(t.acks.iter().map(|a| a.0))).max(1e-3) * 1.02;
    let ymax = max_of(t.data.iter().map(|d| d.2)).max(1.0) * 1.02;
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    let title = format!("{} ({}): time-sequence graph", f.name, f.cc);
    let mut chart = new_chart(
        &root,
        &title,
        (xmax, ymax),
        "relative sequence number (bytes)",
    )?;
    let blue = colour(0);
    chart
        .draw_series(
            t.data
                .iter()
                .map(|&(x, a, b)| PathElement::new(vec![(x, a), (x, b)], blue.stroke_width(1))),
        )
        .map_err(err)?
        .label("data sent")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], blue));
    let green = colour(2);
    chart
        .draw_series(LineSeries::new(t.acks.iter().copied(), green))
        .map_err(err)?
        .label("cumulative ACK")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], green));
    let purple = colour(3);
    chart
        .draw_series(
            t.sacks
                .iter()
                .map(|&(x, a, b)| PathElement::new(vec![(x, a), (x, b)], purple.stroke_width(3))),
        )
        .map_err(err)?
        .label("SACKed range")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], purple.stroke_width(3)));
    chart
        .draw_series(
            retrans
                .iter()
                .map(|&(x, y)| Cross::new((x, y), 4, RED.stroke_width(2))),
        )
        .map_err(err)?
        .label("retransmission")
        .legend(|(x, y)| Cross::new((x + 10, y), 4, RED.stroke_width(2)));
    finish(chart, &root, SeriesLabelPosition::UpperLeft)
}

type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;
type Area<'b> = DrawingArea<SVGBackend<'b>, plotters::coord::Shift>;

/// A white chart with a title, time on x from 0 and `ylabel` on y from 0.
fn new_chart<'a, 'b>(
    root: &'a Area<'b>,
    title: &str,
    (xmax, ymax): (f64, f64),
    ylabel: &str,
) -> io::Result<Chart<'a, 'b>> {
    root.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(0f64..xmax, 0f64..ymax)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("time (s)")
        .y_desc(ylabel)
        .y_label_formatter(&|v| {
            if ymax >= 100.0 {
                format!("{v:.0}")
            } else {
                format!("{v:.2}")
            }
        })
        .draw()
        .map_err(err)?;
    Ok(chart)
}

/// Draws the legend and writes the file.
fn finish<'a, 'b: 'a>(
    mut chart: Chart<'a, 'b>,
    root: &Area<'b>,
    at: SeriesLabelPosition,
) -> io::Result<()> {
    chart
        .configure_series_labels()
        .position(at)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)
}

type Points = Vec<(f64, f64)>;
/// A named line of one flow.
type Series = (&'static str, Points);
/// The lines a chart draws for one flow.
type SeriesOf = fn(&FlowReport) -> Vec<Series>;

/// A line chart over all flows; `series(flow)` gives the points.
fn line_chart(
    path: &Path,
    title: &str,
    ylabel: &str,
    r: &ScenarioReport,
    series: SeriesOf,
) -> io::Result<()> {
    let all: Vec<(String, usize, Points)> = r
        .flows
        .iter()
        .enumerate()
        .flat_map(|(i, f)| {
            series(f)
                .into_iter()
                .enumerate()
                .map(move |(k, (what, pts))| (format!("{} {what}", f.name), i * 2 + k, pts))
        })
        .collect();
    let xmax = max_of(all.iter().flat_map(|s| s.2.iter().map(|p| p.0))).max(1e-3) * 1.02;
    let ymax = max_of(all.iter().flat_map(|s| s.2.iter().map(|p| p.1))).max(1e-9) * 1.05;
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    let mut chart = new_chart(&root, title, (xmax, ymax), ylabel)?;
    for (label, c, pts) in all {
        let col = colour(c);
        chart
            .draw_series(LineSeries::new(pts, col))
            .map_err(err)?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], col));
    }
    finish(chart, &root, SeriesLabelPosition::UpperRight)
}

/// One value of each sample against time; `None` leaves the sample out.
fn sampled(f: &FlowReport, value: impl Fn(&Sample) -> Option<f64>) -> Points {
    f.samples
        .iter()
        .filter_map(|s| Some((s.time.as_secs_f64(), value(s)?)))
        .collect()
}

/// The charts over all flows: file, title, y axis, the lines of a flow.
const CHARTS: [(&str, &str, &str, SeriesOf); 3] = [
    (
        "cwnd.svg",
        "congestion window and slow-start threshold",
        "bytes",
        windows,
    ),
    (
        "rtt.svg",
        "round-trip time: samples and smoothed",
        "milliseconds",
        rtts,
    ),
    (
        "throughput.svg",
        "throughput (acknowledged bytes, 100 ms window)",
        "Mbit/s",
        throughput,
    ),
];

fn windows(f: &FlowReport) -> Vec<Series> {
    let ssthresh = sampled(f, |s| {
        (s.ssthresh != u32::MAX).then_some(f64::from(s.ssthresh))
    });
    vec![
        ("cwnd", sampled(f, |s| Some(f64::from(s.cwnd)))),
        ("ssthresh", ssthresh),
    ]
}

fn rtts(f: &FlowReport) -> Vec<Series> {
    let samples = f
        .rtt_samples
        .iter()
        .map(|&(t, rtt)| (t.as_secs_f64(), rtt.as_secs_f64() * 1e3))
        .collect();
    let srtt = sampled(f, |s| {
        (!s.srtt.is_zero()).then_some(s.srtt.as_secs_f64() * 1e3)
    });
    vec![("rtt sample", samples), ("srtt", srtt)]
}

/// Throughput over a sliding window of ~100 ms of samples.
fn throughput(f: &FlowReport) -> Vec<Series> {
    let s = &f.samples;
    let mut pts = Vec::new();
    let mut j = 0;
    for i in 0..s.len() {
        while j < i && (s[i].time - s[j].time).as_secs_f64() > 0.1 {
            j += 1;
        }
        let dt = (s[i].time - s[j].time).as_secs_f64();
        if dt > 0.0 {
            let bytes = s[i].bytes_acked.saturating_sub(s[j].bytes_acked);
            pts.push((s[i].time.as_secs_f64(), bytes as f64 * 8.0 / dt / 1e6));
        }
    }
    vec![("throughput", pts)]
}
