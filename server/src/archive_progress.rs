//! How `server archive` shows a pass: a progress bar per shard on a terminal
//! (orders moved of those eligible, the rate), plain log lines otherwise.

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use shop::services::archive::ArchiveProgress;
use std::io::IsTerminal;

pub struct ArchiveBars {
    bars: Option<MultiProgress>,
    current: Option<ProgressBar>,
}

impl ArchiveBars {
    /// Bars when standard error is a terminal, log lines when it is not.
    pub fn new() -> Self {
        Self { bars: std::io::stderr().is_terminal().then(MultiProgress::new), current: None }
    }

    fn finish_current(&mut self) {
        if let Some(bar) = self.current.take() {
            bar.finish();
        }
    }
}

impl Default for ArchiveBars {
    fn default() -> Self {
        Self::new()
    }
}

impl ArchiveProgress for ArchiveBars {
    fn shard_started(&mut self, shard: &str, eligible: u64) {
        self.finish_current();
        match &self.bars {
            Some(bars) => {
                let bar = bars.add(ProgressBar::new(eligible));
                let style = ProgressStyle::with_template("{prefix:>8} [{bar:40}] {pos}/{len} orders moved, {per_sec}, {elapsed}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> ");
                bar.set_style(style);
                bar.set_prefix(shard.to_owned());
                self.current = Some(bar);
            }
            None => tracing::info!(shard, eligible, "archiving a shard"),
        }
    }

    fn moved(&mut self, shard: &str, orders: u64) {
        match &self.current {
            Some(bar) => bar.inc(orders),
            None => tracing::info!(shard, orders, "batch moved to the archive"),
        }
    }
}

impl Drop for ArchiveBars {
    fn drop(&mut self) {
        self.finish_current();
    }
}
