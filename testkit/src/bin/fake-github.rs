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

use std::io::Read;
use testkit::fake_github::{generated_runners, official_runners, FakeGithub};

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
    for (i, o) in owners.iter().enumerate() {
        let rs = match runners {
            Some(n) => generated_runners(&format!("runner{i}"), 1 + (i as u64) * 1_000_000, n),
            None => official_runners(),
        };
        fake.set_runners(o, rs);
    }
    if let Some(t) = token {
        fake.require_token(&t);
    }
    println!("listening {}", fake.url());
    // Serve until stdin closes (the parent exits or closes the pipe).
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    println!(
        "requests {} charged {}",
        fake.request_count(),
        fake.charged()
    );
}
