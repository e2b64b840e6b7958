//! Unit-test helpers shared by the collectors that ask GitHub (github,
//! queue): a runner root with a registration, a store whose runner section
//! holds roots, and a config pointing at a fake GitHub.

use crate::config::{Config, Scope};
use crate::settings::Settings;
use crate::snapshot::{Registration, RunnerRoot, RunnerState, Store};
use std::sync::Arc;
use std::time::Duration;
use testkit::FakeGithub;

/// A readable runner root at `path`, registered as `name` (agentId `id`)
/// with `url`.
pub fn registered_root(path: &str, id: u64, url: &str, name: &str) -> RunnerRoot {
    RunnerRoot {
        root: path.into(),
        registration: Some(Registration {
            agent_id: Some(id),
            agent_name: Some(name.into()),
            github_url: Some(url.into()),
            ..Default::default()
        }),
        accessible: true,
        ..Default::default()
    }
}

/// Publishes `roots` as the runner collector's data, as its successful run
/// through the supervisor would.
pub fn publish_roots(store: &Store, roots: Vec<RunnerRoot>) {
    store
        .channel::<RunnerState>()
        .expect("a runner section")
        .succeeded(Some(RunnerState { roots }), Duration::ZERO, 0.0);
    store.changed();
}

/// A store for `config`, with the runner roots given.
pub fn store_with_roots(config: Config, roots: Vec<RunnerRoot>) -> (Arc<Settings>, Arc<Store>) {
    let settings = Settings::resolve(config);
    let store = crate::collect::registry::store(Arc::clone(&settings));
    publish_roots(&store, roots);
    (settings, store)
}

/// A config in `scope` pointing at the fake, with a token file in `dir`.
pub fn github_config(fake: &FakeGithub, dir: &std::path::Path, scope: Scope) -> Config {
    let token = dir.join("token");
    std::fs::write(&token, "ghp_unit_test_token").unwrap();
    let mut c = Config::default();
    c.github.scope = Some(scope);
    c.github.api_url = Some(fake.url());
    c.github.token_file = Some(token);
    c
}
