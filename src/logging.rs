//! Logging: logfmt or JSON lines on stderr, or native journald fields
//! (through `tracing-journald`) when systemd connected stderr to the
//! journal (`JOURNAL_STREAM`).
//!
//! Only this crate's events go below `info`: dependencies are capped there,
//! so a `trace` level never dumps library internals (HTTP headers among
//! them) into the log.

use std::fmt::Write as _;
use std::io::Write as _;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    fn level(self) -> Level {
        match self {
            LogLevel::Error => Level::ERROR,
            LogLevel::Warn => Level::WARN,
            LogLevel::Info => Level::INFO,
            LogLevel::Debug => Level::DEBUG,
            LogLevel::Trace => Level::TRACE,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Logfmt,
    Json,
}

/// Writes each event as one logfmt or JSON line on stderr.
struct LineLayer {
    format: LogFormat,
}

const OWN_TARGET: &str = env!("CARGO_CRATE_NAME");

/// This crate's events up to `max`; dependencies' up to `info` at most.
fn allows(max: Level, meta: &tracing::Metadata<'_>) -> bool {
    let limit = if meta.target().starts_with(OWN_TARGET) {
        max
    } else {
        max.min(Level::INFO)
    };
    // tracing orders levels so that more verbose is greater.
    *meta.level() <= limit
}

#[derive(Default)]
struct Fields {
    message: String,
    pairs: Vec<(&'static str, String)>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_string();
        } else {
            self.pairs.push((field.name(), value.to_string()));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let mut s = String::new();
        let _ = write!(s, "{value:?}");
        if field.name() == "message" {
            self.message = s;
        } else {
            self.pairs.push((field.name(), s));
        }
    }
}

fn logfmt_value(out: &mut String, v: &str) {
    if !v.is_empty() && !v.contains(|c: char| c == ' ' || c == '=' || c == '"' || c.is_control()) {
        out.push_str(v);
        return;
    }
    out.push('"');
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn level_name(l: &Level) -> &'static str {
    match *l {
        Level::ERROR => "error",
        Level::WARN => "warn",
        Level::INFO => "info",
        Level::DEBUG => "debug",
        Level::TRACE => "trace",
    }
}

/// Formats one event as a logfmt line (no newline).
fn format_logfmt(ts: f64, level: &Level, target: &str, f: &Fields) -> String {
    let mut out = String::with_capacity(128);
    out.push_str("ts=");
    out.push_str(&crate::timefmt::rfc3339_millis(ts));
    out.push_str(" level=");
    out.push_str(level_name(level));
    out.push_str(" target=");
    logfmt_value(&mut out, target);
    out.push_str(" msg=");
    logfmt_value(&mut out, &f.message);
    for (k, v) in &f.pairs {
        out.push(' ');
        out.push_str(k);
        out.push('=');
        logfmt_value(&mut out, v);
    }
    out
}

fn format_json(ts: f64, level: &Level, target: &str, f: &Fields) -> String {
    let mut map = serde_json::Map::new();
    map.insert("ts".into(), crate::timefmt::rfc3339_millis(ts).into());
    map.insert("level".into(), level_name(level).into());
    map.insert("target".into(), target.into());
    map.insert("msg".into(), f.message.clone().into());
    for (k, v) in &f.pairs {
        map.insert((*k).to_string(), v.clone().into());
    }
    serde_json::Value::Object(map).to_string()
}

impl<S: Subscriber> Layer<S> for LineLayer {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let meta = event.metadata();
        let mut fields = Fields::default();
        event.record(&mut fields);
        let ts = crate::timefmt::now_unix();
        let mut line = match self.format {
            LogFormat::Logfmt => format_logfmt(ts, meta.level(), meta.target(), &fields),
            LogFormat::Json => format_json(ts, meta.level(), meta.target(), &fields),
        };
        line.push('\n');
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }
}

/// True when systemd connected stderr to the journal: `JOURNAL_STREAM`
/// holds the device and inode of stderr (systemd.exec(5)). tracing-journald
/// leaves this check to the program.
fn connected_to_journal() -> bool {
    let Some(stream) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = stream.to_str().and_then(|s| s.split_once(':')) else {
        return false;
    };
    // SAFETY: a zeroed stat is a valid buffer for fstat to fill.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fd 2 is only read; st is a valid, writable stat buffer.
    if unsafe { libc::fstat(2, &mut st) } != 0 {
        return false;
    }
    dev.parse::<u64>().ok() == Some(st.st_dev) && ino.parse::<u64>().ok() == Some(st.st_ino)
}

/// Installs the global logger. Under systemd with a journal, journald
/// fields replace the chosen line format.
pub fn init(level: LogLevel, format: LogFormat) {
    let max = level.level();
    let filter = tracing_subscriber::filter::filter_fn(move |meta| allows(max, meta));
    let journal = connected_to_journal()
        .then(tracing_journald::layer)
        .and_then(Result::ok)
        .map(|j| {
            j.with_field_prefix(None)
                .with_syslog_identifier("runner-health-exporter".into())
        });
    let _ = match journal {
        Some(j) => tracing_subscriber::registry()
            .with(j.with_filter(filter))
            .try_init(),
        None => tracing_subscriber::registry()
            .with(LineLayer { format }.with_filter(filter))
            .try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logfmt_quotes_what_needs_quoting() {
        let f = Fields {
            message: "collector failed".into(),
            pairs: vec![
                ("collector", "host".into()),
                ("error", "a \"b\"\nc".into()),
                ("empty", String::new()),
            ],
        };
        let line = format_logfmt(0.0, &Level::WARN, "x::y", &f);
        assert_eq!(
            line,
            "ts=1970-01-01T00:00:00.000Z level=warn target=x::y msg=\"collector failed\" collector=host error=\"a \\\"b\\\"\\nc\" empty=\"\""
        );
        let json: serde_json::Value =
            serde_json::from_str(&format_json(0.0, &Level::INFO, "t", &f)).unwrap();
        assert_eq!(json["error"], "a \"b\"\nc");
        assert_eq!(json["level"], "info");
    }
}
