//! Flags shared by `daytona transfer` and `daytona sim`.

use crate::units;
use daytona_core::time::Duration;
use daytona_link::Impairment;

/// Random impairments of a simulated path.
#[derive(clap::Args, Debug, Clone)]
pub struct RandomImpairments {
    /// Random loss on the data path (percent).
    #[arg(long, default_value = "0%", value_parser = units::parse_percent)]
    pub loss: f64,
    /// Random loss on the ACK path (percent).
    #[arg(long, default_value = "0%", value_parser = units::parse_percent)]
    pub ack_loss: f64,
    /// Frames held back by --reorder-delay, both ways (percent).
    #[arg(long, default_value = "0%", value_parser = units::parse_percent)]
    pub reorder: f64,
    /// How long a reordered frame is held back (us, ms, s).
    #[arg(long, default_value = "2ms", value_parser = units::parse_duration)]
    pub reorder_delay: Duration,
    /// Frames delivered twice, both ways (percent).
    #[arg(long, default_value = "0%", value_parser = units::parse_percent)]
    pub duplicate: f64,
    /// Frames with one bit flipped, both ways (percent).
    #[arg(long, default_value = "0%", value_parser = units::parse_percent)]
    pub corrupt: f64,
}

impl RandomImpairments {
    /// `base` with these impairments; `ack_path` picks the loss rate.
    pub fn apply(&self, base: &Impairment, ack_path: bool) -> Impairment {
        Impairment {
            loss: if ack_path { self.ack_loss } else { self.loss },
            reorder: self.reorder,
            reorder_delay: self.reorder_delay,
            duplicate: self.duplicate,
            corrupt: self.corrupt,
            ..base.clone()
        }
    }
}

/// A fixed socket-buffer size: 1 B to 1 GiB.
pub fn parse_buffer(s: &str) -> Result<usize, String> {
    let size = units::parse_size(s)?;
    if size > 1 << 30 {
        return Err(format!("buffer {s} is not within 1 B..=1 GiB"));
    }
    Ok(size as usize)
}
