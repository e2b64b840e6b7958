//! Writes families in both exposition formats at once: the Prometheus text
//! format 0.0.4 and OpenMetrics 1.0.
//!
//! The two differ in ways that matter to strict parsers: OpenMetrics names a
//! counter family without its `_total` suffix, escapes `"` in HELP, wants
//! canonical floats in `le`, and ends with `# EOF`. A family with no samples
//! is left out of both.

use super::catalog::{Family, Kind};
use std::fmt::Write;

/// Accumulates one rendering of the snapshot in both formats.
#[derive(Default)]
pub struct Encoder {
    text: String,
    openmetrics: String,
}

/// The finished bodies.
pub struct Encoded {
    pub text: String,
    pub openmetrics: String,
}

impl Encoder {
    pub fn new() -> Self {
        Encoder {
            text: String::with_capacity(16 * 1024),
            openmetrics: String::with_capacity(16 * 1024),
        }
    }

    /// Starts writing one family. Its HELP and TYPE lines are written with
    /// the first sample, so a family without samples leaves no trace.
    pub fn family<'a>(&'a mut self, family: &'static Family) -> FamilyWriter<'a> {
        FamilyWriter {
            enc: self,
            family,
            started: false,
        }
    }

    pub fn finish(mut self) -> Encoded {
        self.openmetrics.push_str("# EOF\n");
        Encoded {
            text: self.text,
            openmetrics: self.openmetrics,
        }
    }
}

/// Writes the samples of one family. Label values are given in the order of
/// [`Family::labels`].
pub struct FamilyWriter<'a> {
    enc: &'a mut Encoder,
    family: &'static Family,
    started: bool,
}

/// Cumulative histogram data: one count per bucket of the family (not
/// cumulative), plus the observations above the last bucket.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HistogramData {
    pub counts: Vec<u64>,
    pub overflow: u64,
    pub sum: f64,
}

impl HistogramData {
    pub fn new(buckets: usize) -> Self {
        HistogramData {
            counts: vec![0; buckets],
            overflow: 0,
            sum: 0.0,
        }
    }

    pub fn observe(&mut self, bounds: &[f64], value: f64) {
        match bounds.iter().position(|b| value <= *b) {
            Some(i) => {
                if let Some(c) = self.counts.get_mut(i) {
                    *c += 1;
                }
            }
            None => self.overflow += 1,
        }
        self.sum += value;
    }

    pub fn count(&self) -> u64 {
        self.counts.iter().sum::<u64>() + self.overflow
    }
}

impl FamilyWriter<'_> {
    fn header(&mut self) {
        if self.started {
            return;
        }
        self.started = true;
        let f = self.family;
        let om_name = match f.kind {
            Kind::Counter => f.name.strip_suffix("_total").unwrap_or(f.name),
            _ => f.name,
        };
        let kind = f.kind.as_str();
        let t = &mut self.enc.text;
        t.push_str("# HELP ");
        t.push_str(f.name);
        t.push(' ');
        escape_help(t, f.help, false);
        t.push_str("\n# TYPE ");
        t.push_str(f.name);
        t.push(' ');
        t.push_str(kind);
        t.push('\n');
        let o = &mut self.enc.openmetrics;
        o.push_str("# HELP ");
        o.push_str(om_name);
        o.push(' ');
        escape_help(o, f.help, true);
        o.push_str("\n# TYPE ");
        o.push_str(om_name);
        o.push(' ');
        o.push_str(kind);
        o.push('\n');
    }

    /// Writes one gauge or counter sample.
    pub fn sample(&mut self, label_values: &[&str], value: f64) {
        debug_assert_eq!(
            label_values.len(),
            self.family.labels.len(),
            "{}: label count",
            self.family.name
        );
        debug_assert!(self.family.kind != Kind::Histogram);
        self.header();
        let name = self.family.name;
        let labels = self.family.labels;
        for out in [&mut self.enc.text, &mut self.enc.openmetrics] {
            out.push_str(name);
            write_labels(out, labels, label_values, None);
            out.push(' ');
            write_value(out, value);
            out.push('\n');
        }
    }

    /// Writes one gauge sample whose value is a boolean.
    pub fn flag(&mut self, label_values: &[&str], value: bool) {
        self.sample(label_values, if value { 1.0 } else { 0.0 });
    }

    /// Writes one histogram series.
    pub fn histogram(&mut self, label_values: &[&str], data: &HistogramData) {
        debug_assert_eq!(self.family.kind, Kind::Histogram);
        debug_assert_eq!(data.counts.len(), self.family.buckets.len());
        self.header();
        let name = self.family.name;
        let labels = self.family.labels;
        let bounds = self.family.buckets;
        for out in [&mut self.enc.text, &mut self.enc.openmetrics] {
            let mut cumulative = 0u64;
            for (bound, count) in bounds.iter().zip(&data.counts) {
                cumulative += count;
                out.push_str(name);
                out.push_str("_bucket");
                write_labels(out, labels, label_values, Some(*bound));
                out.push(' ');
                write_value(out, cumulative as f64);
                out.push('\n');
            }
            cumulative += data.overflow;
            out.push_str(name);
            out.push_str("_bucket");
            write_labels(out, labels, label_values, Some(f64::INFINITY));
            out.push(' ');
            write_value(out, cumulative as f64);
            out.push('\n');
            out.push_str(name);
            out.push_str("_sum");
            write_labels(out, labels, label_values, None);
            out.push(' ');
            write_value(out, data.sum);
            out.push('\n');
            out.push_str(name);
            out.push_str("_count");
            write_labels(out, labels, label_values, None);
            out.push(' ');
            write_value(out, cumulative as f64);
            out.push('\n');
        }
    }
}

fn write_labels(out: &mut String, names: &[&str], values: &[&str], le: Option<f64>) {
    if names.is_empty() && le.is_none() {
        return;
    }
    out.push('{');
    let mut first = true;
    for (n, v) in names.iter().zip(values) {
        if !first {
            out.push(',');
        }
        first = false;
        out.push_str(n);
        out.push_str("=\"");
        escape_label_value(out, v);
        out.push('"');
    }
    if let Some(le) = le {
        if !first {
            out.push(',');
        }
        out.push_str("le=\"");
        write_canonical_float(out, le);
        out.push('"');
    }
    out.push('}');
}

/// A float in the canonical form OpenMetrics asks for in `le`: `10.0`, `0.5`,
/// `+Inf`. The 0.0.4 text format accepts the same spelling.
fn write_canonical_float(out: &mut String, v: f64) {
    if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        let _ = write!(out, "{}.0", v as i64);
    } else {
        let _ = write!(out, "{v}");
    }
}

/// Sample values: integers without a fraction, `NaN`, `+Inf`, `-Inf`.
pub fn write_value(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        let _ = write!(out, "{}", v as i64);
    } else {
        let _ = write!(out, "{v}");
    }
}

fn escape_label_value(out: &mut String, v: &str) {
    if !v.contains(['\\', '"', '\n']) {
        out.push_str(v);
        return;
    }
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn escape_help(out: &mut String, v: &str, quote: bool) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quote => out.push_str("\\\""),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::catalog::{
        EXPORTER_COLLECTOR_ERRORS, HOST_FS_SIZE, HOST_LOAD1, RUNNER_JOB_DURATION,
    };

    #[test]
    fn counters_drop_total_only_in_openmetrics_family_names() {
        let mut e = Encoder::new();
        e.family(&EXPORTER_COLLECTOR_ERRORS).sample(&["host"], 3.0);
        let out = e.finish();
        assert!(out
            .text
            .contains("# TYPE github_runner_exporter_collector_errors_total counter\n"));
        assert!(out
            .openmetrics
            .contains("# TYPE github_runner_exporter_collector_errors counter\n"));
        assert!(out
            .openmetrics
            .contains("github_runner_exporter_collector_errors_total{collector=\"host\"} 3\n"));
        assert!(out.openmetrics.ends_with("# EOF\n"));
        assert!(!out.text.contains("EOF"));
    }

    #[test]
    fn empty_families_are_omitted_and_labels_escaped() {
        let mut e = Encoder::new();
        e.family(&HOST_LOAD1);
        e.family(&HOST_FS_SIZE)
            .sample(&["/mnt/a\"b\\c\nd", "ext4", "/dev/x"], 1.5e12);
        let out = e.finish();
        assert!(!out.text.contains("load1"));
        assert!(out.text.contains(
            "{mountpoint=\"/mnt/a\\\"b\\\\c\\nd\",fstype=\"ext4\",device=\"/dev/x\"} 1500000000000\n"
        ));
    }

    #[test]
    fn histograms_are_cumulative_with_inf_sum_and_count() {
        let mut h = HistogramData::new(RUNNER_JOB_DURATION.buckets.len());
        h.observe(RUNNER_JOB_DURATION.buckets, 5.0);
        h.observe(RUNNER_JOB_DURATION.buckets, 45.0);
        h.observe(RUNNER_JOB_DURATION.buckets, 99999.0);
        let mut e = Encoder::new();
        e.family(&RUNNER_JOB_DURATION).histogram(&["r1"], &h);
        let out = e.finish();
        let om = &out.openmetrics;
        assert!(
            om.contains("github_runner_job_duration_seconds_bucket{runner=\"r1\",le=\"10.0\"} 1\n")
        );
        assert!(
            om.contains("github_runner_job_duration_seconds_bucket{runner=\"r1\",le=\"60.0\"} 2\n")
        );
        assert!(
            om.contains("github_runner_job_duration_seconds_bucket{runner=\"r1\",le=\"+Inf\"} 3\n")
        );
        assert!(om.contains("github_runner_job_duration_seconds_count{runner=\"r1\"} 3\n"));
        assert!(om.contains("github_runner_job_duration_seconds_sum{runner=\"r1\"} 100049\n"));
    }

    #[test]
    fn values_are_written_exactly() {
        let mut s = String::new();
        for v in [0.0, -2.0, 0.25, f64::NAN, f64::INFINITY, 1e20] {
            write_value(&mut s, v);
            s.push(' ');
        }
        assert_eq!(s, "0 -2 0.25 NaN +Inf 100000000000000000000 ");
    }
}
