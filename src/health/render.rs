//! Reports for people and for workflows: plain text (`/health` without
//! `Accept: application/json`, `check` on a terminal), Markdown (a step
//! summary, `?format=markdown`, `check --format markdown`) and GitHub
//! Actions workflow commands (`?format=github`, `check --format github`).

use super::model::{Report, RunnerHealth, Status};
use crate::identity::Lifecycle;

fn finished(r: &RunnerHealth) -> bool {
    r.lifecycle == Some(Lifecycle::Finished)
}

/// How a report is written out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// The table for a terminal.
    Text,
    /// The report as JSON (the `/health` schema).
    Json,
    /// A Markdown table of checks and the diagnosis with its runbook link.
    Markdown,
    /// GitHub Actions workflow commands: `::error::` per runner that fails
    /// the gate, `::warning::` per warning, `::notice::` per healthy one.
    Github,
}

impl Format {
    /// The `format` query parameter of `/health`.
    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "text" => Some(Format::Text),
            "json" => Some(Format::Json),
            "markdown" | "md" => Some(Format::Markdown),
            "github" => Some(Format::Github),
            _ => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text | Format::Github => "text/plain; charset=utf-8",
            Format::Json => "application/json",
            Format::Markdown => "text/markdown; charset=utf-8",
        }
    }
}

/// The report in `format` (text without colour).
pub fn render(report: &Report, format: Format) -> String {
    match format {
        Format::Text => render_text(report, false),
        Format::Json => {
            let mut body = serde_json::to_string_pretty(report).unwrap_or_default();
            body.push('\n');
            body
        }
        Format::Markdown => render_markdown(report),
        Format::Github => render_github(report),
    }
}

/// A table cell: pipes and line breaks would break the table.
fn cell(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace(['\n', '\r'], " ")
}

/// Markdown, for a job's step summary: a verdict line, and per runner a
/// table of checks and the diagnosis with its fix and runbook link.
pub fn render_markdown(report: &Report) -> String {
    let mut out = String::new();
    let verdict = if report.healthy {
        "✅ HEALTHY"
    } else {
        "❌ UNHEALTHY"
    };
    out.push_str(&format!(
        "### {verdict} ({}) at {}\n\n",
        report.status, report.generated_at
    ));
    if let Some(m) = &report.message {
        out.push_str(&format!("{}\n\n", cell(m)));
    }
    for r in &report.runners {
        let mut head = format!("#### Runner `{}`", r.runner.replace('`', "'"));
        let mut tags = Vec::new();
        if !r.role.is_empty() {
            tags.push(format!("role {}", r.role));
        }
        if !r.environment.is_empty() {
            tags.push(format!("environment {}", r.environment));
        }
        if !tags.is_empty() {
            head.push_str(&format!(" ({})", cell(&tags.join(", "))));
        }
        let verdict = if finished(r) {
            "finished (an ephemeral runner after its job)"
        } else if r.healthy {
            "healthy"
        } else {
            "**not healthy**"
        };
        out.push_str(&format!("{head}: {verdict}, {}\n\n", r.status));
        out.push_str("| Check | Status | Detail |\n|---|---|---|\n");
        for c in &r.checks {
            let status = match c.status {
                Status::Fail => format!("**{}**", c.status),
                _ => c.status.to_string(),
            };
            out.push_str(&format!(
                "| `{}` | {status} | {} |\n",
                c.check,
                cell(&c.reason)
            ));
        }
        out.push('\n');
        if let Some(d) = &r.diagnosis {
            out.push_str(&format!(
                "**Diagnosis: {}**: {}\n\n",
                cell(&d.title),
                cell(&d.summary)
            ));
            out.push_str(&format!("**Fix:** {}\n\n", cell(&d.remediation)));
            out.push_str(&format!(
                "**Runbook:** [{}]({})\n\n",
                cell(&d.title),
                d.runbook
            ));
        }
    }
    out
}

/// Escapes a workflow command's message (GitHub's rules: `%`, CR, LF).
fn command_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a workflow command's property value (also `:` and `,`).
fn command_property(s: &str) -> String {
    command_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// GitHub Actions workflow commands: one `::error::` per runner that
/// fails the gate (its cause, fix and runbook), `::warning::` per runner
/// with warnings only, `::notice::` per healthy runner.
pub fn render_github(report: &Report) -> String {
    let mut out = String::new();
    if let Some(m) = &report.message {
        out.push_str(&format!("::error title=Deploy gate::{}\n", command_data(m)));
    }
    for r in &report.runners {
        let level = if finished(r) {
            "notice"
        } else if !r.healthy {
            "error"
        } else if r.status >= Status::Unknown {
            "warning"
        } else {
            "notice"
        };
        let message = match &r.diagnosis {
            Some(d) => format!(
                "{}: {} Fix: {} Runbook: {}",
                d.title, d.summary, d.remediation, d.runbook
            ),
            None if finished(r) => format!(
                "runner {} finished: an ephemeral runner that ran its one job; it takes no more jobs",
                r.runner
            ),
            None => format!(
                "runner {} is {} ({})",
                r.runner,
                if r.healthy { "healthy" } else { "not healthy" },
                r.status
            ),
        };
        out.push_str(&format!(
            "::{level} title={}::{}\n",
            command_property(&format!("Runner {}", r.runner)),
            command_data(&message)
        ));
    }
    out
}

/// The plain-text rendering used by `/health` and `check`.
pub fn render_text(report: &Report, color: bool) -> String {
    let paint = |s: Status, text: &str| -> String {
        if !color {
            return text.to_string();
        }
        let code = match s {
            Status::Ok => "32",
            Status::Unknown => "35",
            Status::Skipped => "90",
            Status::Warn => "33",
            Status::Fail => "31;1",
        };
        format!("\x1b[{code}m{text}\x1b[0m")
    };
    let mut out = String::new();
    let overall = if report.healthy {
        "HEALTHY"
    } else {
        "UNHEALTHY"
    };
    out.push_str(&format!(
        "{} ({}) at {}\n",
        paint(report.status, overall),
        report.status,
        report.generated_at
    ));
    if let Some(m) = &report.message {
        out.push_str(&format!("{m}\n"));
    }
    for r in &report.runners {
        out.push('\n');
        let mut head = format!("runner {}", r.runner);
        if !r.role.is_empty() {
            head.push_str(&format!("  role={}", r.role));
        }
        if !r.environment.is_empty() {
            head.push_str(&format!("  environment={}", r.environment));
        }
        let status = if finished(r) {
            "FINISHED".to_string()
        } else {
            r.status.as_str().to_uppercase()
        };
        out.push_str(&format!("{head}  {}\n", paint(r.status, &status)));
        let width = r
            .checks
            .iter()
            .map(|c| c.check.len())
            .max()
            .unwrap_or(5)
            .max(5);
        out.push_str(&format!(
            "  {:<width$}  {:<7}  {}\n",
            "CHECK", "STATUS", "DETAIL"
        ));
        for c in &r.checks {
            let st = format!("{:<7}", c.status.as_str().to_uppercase());
            out.push_str(&format!(
                "  {:<width$}  {}  {}\n",
                c.check,
                paint(c.status, &st),
                c.reason
            ));
        }
        if let Some(d) = &r.diagnosis {
            out.push_str(&format!(
                "\n  Diagnosis: {}\n",
                paint(Status::Fail, &d.title)
            ));
            out.push_str(&format!("    {}\n", d.summary));
            out.push_str(&format!("    Fix:     {}\n", d.remediation));
            out.push_str(&format!("    Runbook: {}\n", d.runbook));
        }
    }
    if let Some(q) = &report.queue {
        out.push('\n');
        let text = super::queue::render(q);
        match text.split_once('\n') {
            Some((head, rest)) if q.status == super::queue::QueueStatus::Waiting => {
                out.push_str(&paint(Status::Warn, head));
                out.push('\n');
                out.push_str(rest);
            }
            _ => out.push_str(&text),
        }
    }
    out
}
