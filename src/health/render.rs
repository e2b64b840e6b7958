//! Reports as text for people: `/health` without `Accept: application/json`,
//! and `check` on a terminal.

use super::model::{Report, Status};

/// The plain-text rendering used by `/health` and `check`.
pub fn render_text(report: &Report, color: bool) -> String {
    let paint = |s: Status, text: &str| -> String {
        if !color {
            return text.to_string();
        }
        let code = match s {
            Status::Ok => "32",
            Status::Unknown => "90",
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
        let status = r.status.as_str().to_uppercase();
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
