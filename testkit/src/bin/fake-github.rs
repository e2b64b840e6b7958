//! The fake GitHub API as a process, for end-to-end runs and benchmarks.
//!
//! ```text
//! fake-github [--listen 127.0.0.1:0] [--repo OWNER/REPO]... [--org ORG]...
//!             [--enterprise SLUG]... [--runners N] [--token TOKEN]
//! ```
//!
//! Each owner gets the official example runners, or `N` generated ones.
//! Prints `listening http://ADDR` on stdout, then serves until stdin is
//! closed or the process is killed; on exit prints the request count and
//! the requests that cost rate limit.
//!
//! Lines on stdin change the runners while it serves (each answered with
//! `ok` or `error: ...` on stdout):
//!
//! ```text
//! add OWNER_PATH ID NAME     (OWNER_PATH: repos/O/R, orgs/O, enterprises/E)
//! remove OWNER_PATH ID
//! ```

use serde_json::json;
use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use testkit::fake_github::{generated_runners, official_runner, official_runners, FakeGithub};

fn main() {
    let mut listen = "127.0.0.1:0".to_string();
    let mut owners = Vec::new();
    let mut runners: Option<usize> = None;
    let mut token = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| {
            args.next().unwrap_or_else(|| {
                eprintln!("fake-github: {name} needs a value");
                std::process::exit(2)
            })
        };
        match a.as_str() {
            "--listen" => listen = value("--listen"),
            "--repo" => owners.push(format!("repos/{}", value("--repo"))),
            "--org" => owners.push(format!("orgs/{}", value("--org"))),
            "--enterprise" => owners.push(format!("enterprises/{}", value("--enterprise"))),
            "--runners" => {
                runners = Some(value("--runners").parse().unwrap_or_else(|_| {
                    eprintln!("fake-github: --runners takes a number");
                    std::process::exit(2)
                }))
            }
            "--token" => token = Some(value("--token")),
            "-h" | "--help" => {
                println!("fake-github [--listen ADDR] [--repo O/R]... [--org ORG]... [--enterprise SLUG]... [--runners N] [--token T]");
                return;
            }
            other => {
                eprintln!("fake-github: unknown argument {other}");
                std::process::exit(2)
            }
        }
    }
    if owners.is_empty() {
        owners.push("repos/acme/app".to_string());
    }
    let fake = match FakeGithub::start_on(&listen) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("fake-github: cannot listen on {listen}: {e}");
            std::process::exit(1)
        }
    };
    let mut lists = BTreeMap::new();
    for (i, o) in owners.iter().enumerate() {
        let rs = match runners {
            Some(n) => generated_runners(&format!("runner{i}"), 1 + (i as u64) * 1_000_000, n),
            None => official_runners(),
        };
        fake.set_runners(o, rs.clone());
        lists.insert(o.clone(), rs);
    }
    if let Some(t) = token {
        fake.require_token(&t);
    }
    println!("listening {}", fake.url());
    // Serve until stdin closes (the parent exits or closes the pipe).
    let stdout = std::io::stdout();
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let answer = match command(&fake, &mut lists, line.trim()) {
            Ok(()) => "ok".to_string(),
            Err(e) => format!("error: {e}"),
        };
        let mut out = stdout.lock();
        let _ = writeln!(out, "{answer}");
        let _ = out.flush();
    }
    println!(
        "requests {} charged {}",
        fake.request_count(),
        fake.charged()
    );
}

/// One stdin command: `add OWNER_PATH ID NAME` or `remove OWNER_PATH ID`.
fn command(
    fake: &FakeGithub,
    lists: &mut BTreeMap<String, Vec<serde_json::Value>>,
    line: &str,
) -> Result<(), String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let id = |s: &str| s.parse::<u64>().map_err(|_| format!("bad id {s}"));
    match words.as_slice() {
        [] => Ok(()),
        ["add", owner, n, name] => {
            let id = id(n)?;
            let mut r = official_runner();
            r["id"] = json!(id);
            r["name"] = json!(name);
            r["status"] = json!("online");
            r["busy"] = json!(false);
            let list = lists.entry(owner.to_string()).or_default();
            list.retain(|x| x["id"] != json!(id));
            list.push(r);
            fake.set_runners(owner, list.clone());
            Ok(())
        }
        ["remove", owner, n] => {
            let id = id(n)?;
            let list = lists
                .get_mut(*owner)
                .ok_or_else(|| format!("no owner {owner}"))?;
            list.retain(|x| x["id"] != json!(id));
            fake.set_runners(owner, list.clone());
            Ok(())
        }
        _ => Err(format!("unknown command: {line}")),
    }
}
