//! What a chat run measured, and how it is printed: a short table for people, one JSON
//! line for scripts.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

/// Nearest-rank percentile of an ascending-sorted slice: the smallest value with at least
/// `p` percent of the values at or below it. `None` for an empty slice.
pub fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// p50/p95/p99/max of durations in microseconds, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

impl Latency {
    /// Sorts `micros` and summarizes it; `None` when nothing was measured.
    pub fn from_micros(micros: &mut [u64]) -> Option<Self> {
        micros.sort_unstable();
        let ms = |p| percentile(micros, p).map(|us| us as f64 / 1000.0);
        Some(Self {
            p50: ms(50.0)?,
            p95: ms(95.0)?,
            p99: ms(99.0)?,
            max: ms(100.0)?,
        })
    }
}

/// Resident memory of the server process, MiB.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Rss {
    /// Right after it started listening, before any client.
    pub idle: f64,
    /// With every socket open, before the load.
    pub after_setup: f64,
    /// The kernel's high-water mark (`VmHWM`) at the end of the run.
    pub peak: f64,
    /// After the load, sockets still open.
    pub after: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChatReport {
    /// `sqlite` or `postgres`.
    pub backend: String,
    pub widgets_asked: usize,
    /// Widget sockets open when the load started.
    pub widgets: usize,
    pub agents: usize,
    pub rate_asked: f64,
    /// Messages the server accepted (201) per second of the measured window.
    pub rate_achieved: f64,
    pub duration_s: f64,
    pub warmup_s: f64,
    /// Messages posted in the measured window.
    pub sent: u64,
    /// Answers other than 201, and requests that got no answer at all.
    pub errors: u64,
    /// `errors` by HTTP status; `"none"`: sent, no answer by the end of the run;
    /// `"unsent"`: the planned time was over before the generator could send it.
    pub errors_by_status: BTreeMap<String, u64>,
    /// Accepted messages that at least one agent socket received.
    pub delivered: u64,
    /// Accepted messages that no agent socket received.
    pub lost: u64,
    /// Accepted messages that some, but not all, agent sockets received.
    pub partial: u64,
    /// From sending the POST to the first agent socket receiving the message.
    pub latency_ms: Option<Latency>,
    /// The POST alone, until its answer.
    pub post_ms: Option<Latency>,
    /// Creating the visitors and opening their sockets.
    pub setup_s: f64,
    pub rss_mib: Rss,
    /// Server CPU during the measured window, percent of one core.
    pub server_cpu_pct: f64,
    /// This load generator's CPU during the measured window, percent of one core.
    pub loader_cpu_pct: f64,
    pub cores: usize,
    /// The machine's 1-minute load average at the end of the load (other work included).
    pub load_average: f64,
}

fn latency_line(out: &mut String, label: &str, latency: Option<Latency>) {
    let _ = match latency {
        Some(l) => writeln!(
            out,
            "{label:<18} p50 {:.1} ms  p95 {:.1} ms  p99 {:.1} ms  max {:.1} ms",
            l.p50, l.p95, l.p99, l.max
        ),
        None => writeln!(out, "{label:<18} none measured"),
    };
}

impl ChatReport {
    /// The report for people.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "kaltalk-bench chat: {} backend, {} of {} widget sockets, {} agent sockets, {} cores",
            self.backend, self.widgets, self.widgets_asked, self.agents, self.cores
        );
        let _ = writeln!(
            out,
            "{:<18} {:.2} s ({} visitors)",
            "setup", self.setup_s, self.widgets
        );
        let _ = writeln!(
            out,
            "{:<18} asked {:.1} msg/s, achieved {:.1} msg/s over {:.0} s (after {:.0} s warm-up)",
            "rate", self.rate_asked, self.rate_achieved, self.duration_s, self.warmup_s
        );
        let _ = write!(
            out,
            "{:<18} sent {}  delivered {}  lost {}  partial fan-out {}  errors {}",
            "messages", self.sent, self.delivered, self.lost, self.partial, self.errors
        );
        if !self.errors_by_status.is_empty() {
            let by: Vec<String> = self
                .errors_by_status
                .iter()
                .map(|(status, n)| format!("{status}: {n}"))
                .collect();
            let _ = write!(out, " ({})", by.join(", "));
        }
        out.push('\n');
        latency_line(&mut out, "delivery latency", self.latency_ms);
        latency_line(&mut out, "POST latency", self.post_ms);
        let r = self.rss_mib;
        let _ = writeln!(
            out,
            "{:<18} idle {:.1} MiB  after setup {:.1} MiB  peak {:.1} MiB  after {:.1} MiB",
            "server RSS", r.idle, r.after_setup, r.peak, r.after
        );
        let _ = writeln!(
            out,
            "{:<18} server {:.0} %  load generator {:.0} % (100 % = one core); load average {:.2}",
            "CPU during load", self.server_cpu_pct, self.loader_cpu_pct, self.load_average
        );
        out
    }

    /// The report as one JSON line.
    pub fn to_json_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let values: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&values, 50.0), Some(50));
        assert_eq!(percentile(&values, 95.0), Some(95));
        assert_eq!(percentile(&values, 99.0), Some(99));
        assert_eq!(percentile(&values, 100.0), Some(100));
        assert_eq!(percentile(&values, 0.0), Some(1));
        assert_eq!(percentile(&[7], 99.0), Some(7));
        assert_eq!(percentile(&[], 50.0), None);
        // Ten values: p99 is the largest, p50 the fifth.
        let ten = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
        assert_eq!(percentile(&ten, 99.0), Some(10));
        assert_eq!(percentile(&ten, 50.0), Some(5));
    }

    #[test]
    fn latency_sorts_and_converts_to_milliseconds() {
        let mut micros = vec![3_000, 1_000, 2_000, 40_000];
        let latency = Latency::from_micros(&mut micros).expect("some values");
        assert_eq!(latency.p50, 2.0);
        assert_eq!(latency.p99, 40.0);
        assert_eq!(latency.max, 40.0);
        assert_eq!(Latency::from_micros(&mut []), None);
    }

    fn sample() -> ChatReport {
        ChatReport {
            backend: "sqlite".into(),
            widgets_asked: 1000,
            widgets: 1000,
            agents: 5,
            rate_asked: 500.0,
            rate_achieved: 499.5,
            duration_s: 30.0,
            warmup_s: 5.0,
            sent: 15000,
            errors: 3,
            errors_by_status: BTreeMap::from([("500".to_owned(), 2), ("none".to_owned(), 1)]),
            delivered: 15000,
            lost: 0,
            partial: 0,
            latency_ms: Some(Latency {
                p50: 1.5,
                p95: 3.0,
                p99: 7.5,
                max: 20.0,
            }),
            post_ms: None,
            setup_s: 4.2,
            rss_mib: Rss {
                idle: 20.0,
                after_setup: 60.0,
                peak: 80.5,
                after: 70.0,
            },
            server_cpu_pct: 85.0,
            loader_cpu_pct: 60.0,
            cores: 2,
            load_average: 1.5,
        }
    }

    #[test]
    fn the_text_report_has_every_figure() {
        let text = sample().to_text();
        for expected in [
            "sqlite backend, 1000 of 1000 widget sockets, 5 agent sockets",
            "asked 500.0 msg/s, achieved 499.5 msg/s over 30 s",
            "sent 15000  delivered 15000  lost 0  partial fan-out 0  errors 3 (500: 2, none: 1)\n",
            "load average 1.50",
            "delivery latency   p50 1.5 ms  p95 3.0 ms  p99 7.5 ms  max 20.0 ms",
            "POST latency       none measured",
            "idle 20.0 MiB  after setup 60.0 MiB  peak 80.5 MiB",
            "setup              4.20 s",
        ] {
            assert!(
                text.contains(expected),
                "{expected:?} missing from:\n{text}"
            );
        }
    }

    #[test]
    fn the_json_report_is_one_line_with_named_fields() {
        let line = sample().to_json_line();
        assert!(!line.contains('\n'));
        let value: serde_json::Value = serde_json::from_str(&line).expect("valid JSON");
        assert_eq!(value["lost"], 0);
        assert_eq!(value["latency_ms"]["p99"], 7.5);
        assert_eq!(value["rss_mib"]["peak"], 80.5);
        assert_eq!(value["post_ms"], serde_json::Value::Null);
        assert_eq!(value["errors_by_status"]["500"], 2);
    }
}
