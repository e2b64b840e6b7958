//! A stand-in for systemd on a private, real `dbus-daemon`.
//!
//! The daemon (Debian package `dbus`) runs with a config file of our own on
//! a unix socket in a temporary directory. A zbus connection owns
//! `org.freedesktop.systemd1` on it and answers the calls the exporter
//! makes the way systemd does: the Manager methods `ListUnits`,
//! `ListUnitsByPatterns`, `GetUnit`, `LoadUnit`, `Subscribe` and
//! `Unsubscribe`; unit objects at systemd's escaped object paths
//! (`/org/freedesktop/systemd1/unit/actions_2erunner_2e...`) with the
//! `org.freedesktop.systemd1.Unit` and `.Service` properties through
//! `org.freedesktop.DBus.Properties`; and the signals `UnitNew`,
//! `UnitRemoved` and `PropertiesChanged`, sent (like systemd) only while a
//! client is subscribed. Error replies carry systemd's error names.
//!
//! Tests steer it: add, remove and change units, drop a method (an old
//! systemd without `ListUnitsByPatterns`) or a property, answer slowly,
//! kill the bus and bring it back on the same address, count calls.

use futures_util::StreamExt;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use zbus::message::Type;
use zbus::{Connection, Message, MessageStream, OwnedObjectPath, Variant};

pub const NAME: &str = "org.freedesktop.systemd1";
pub const MANAGER_PATH: &str = "/org/freedesktop/systemd1";
pub const MANAGER: &str = "org.freedesktop.systemd1.Manager";
pub const UNIT: &str = "org.freedesktop.systemd1.Unit";
pub const SERVICE: &str = "org.freedesktop.systemd1.Service";
const PROPERTIES: &str = "org.freedesktop.DBus.Properties";
const UNIT_PREFIX: &str = "/org/freedesktop/systemd1/unit/";

/// One unit with the properties the exporter reads.
#[derive(Clone, Debug, PartialEq)]
pub struct Unit {
    pub name: String,
    pub description: String,
    pub load_state: String,
    pub active_state: String,
    pub sub_state: String,
    /// Microseconds since the epoch; 0 = never.
    pub active_enter_usec: u64,
    /// The same moment on CLOCK_MONOTONIC (systemd's
    /// `ActiveEnterTimestampMonotonic`); 0 = never.
    pub active_enter_monotonic_usec: u64,
    pub n_restarts: u32,
    pub exec_main_status: i32,
    pub working_directory: String,
    pub control_group: String,
    pub main_pid: u32,
    /// The Service's `User=` (empty: none, as in a user manager).
    pub user: String,
}

fn now_usec() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// CLOCK_MONOTONIC in microseconds, as systemd's `*Monotonic` timestamps.
fn monotonic_usec() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid, writable timespec.
    if unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) } != 0 {
        return 0;
    }
    (ts.tv_sec as u64) * 1_000_000 + (ts.tv_nsec as u64) / 1_000
}

impl Unit {
    /// A loaded, running service.
    pub fn running(name: &str) -> Unit {
        Unit {
            name: name.to_string(),
            description: format!("{name} (fake)"),
            load_state: "loaded".into(),
            active_state: "active".into(),
            sub_state: "running".into(),
            active_enter_usec: now_usec(),
            active_enter_monotonic_usec: monotonic_usec(),
            n_restarts: 0,
            exec_main_status: 0,
            working_directory: String::new(),
            control_group: format!("/system.slice/{name}"),
            main_pid: 4242,
            user: String::new(),
        }
    }

    /// A loaded service that is not running.
    pub fn inactive(name: &str) -> Unit {
        Unit {
            active_state: "inactive".into(),
            sub_state: "dead".into(),
            active_enter_usec: 0,
            active_enter_monotonic_usec: 0,
            control_group: String::new(),
            main_pid: 0,
            ..Unit::running(name)
        }
    }

    pub fn with_working_directory(mut self, dir: impl AsRef<Path>) -> Unit {
        self.working_directory = dir.as_ref().display().to_string();
        self
    }

    pub fn with_control_group(mut self, cg: &str) -> Unit {
        self.control_group = cg.to_string();
        self
    }

    /// `User=` of the service.
    pub fn with_user(mut self, user: &str) -> Unit {
        self.user = user.to_string();
        self
    }

    pub fn with_restarts(mut self, n: u32) -> Unit {
        self.n_restarts = n;
        self
    }

    /// Active since `ago` before now (a stable unit).
    pub fn active_for(mut self, ago: std::time::Duration) -> Unit {
        let us = ago.as_micros() as u64;
        self.active_enter_usec = now_usec().saturating_sub(us);
        self.active_enter_monotonic_usec = monotonic_usec().saturating_sub(us);
        self
    }

    /// systemd's object path of this unit.
    pub fn path(&self) -> String {
        unit_path(&self.name)
    }

    /// Moves to `active`/`running` as `systemctl start` does.
    pub fn start(&mut self) {
        self.active_state = "active".into();
        self.sub_state = "running".into();
        self.active_enter_usec = now_usec();
        self.active_enter_monotonic_usec = monotonic_usec();
        self.control_group = format!("/system.slice/{}", self.name);
        self.main_pid = 4242;
    }

    /// Moves to `inactive`/`dead` as `systemctl stop` does.
    pub fn stop(&mut self) {
        self.active_state = "inactive".into();
        self.sub_state = "dead".into();
        self.control_group.clear();
        self.main_pid = 0;
        self.exec_main_status = 0;
    }

    /// Moves to `failed` with the main process's exit status.
    pub fn fail(&mut self, status: i32) {
        self.active_state = "failed".into();
        self.sub_state = "failed".into();
        self.control_group.clear();
        self.main_pid = 0;
        self.exec_main_status = status;
    }

    fn properties(&self, interface: &str) -> Vec<(&'static str, Variant<'static>)> {
        match interface {
            UNIT => vec![
                ("Id", Variant::from(self.name.clone())),
                ("Names", Variant::from(vec![self.name.clone()])),
                ("Description", Variant::from(self.description.clone())),
                ("LoadState", Variant::from(self.load_state.clone())),
                ("ActiveState", Variant::from(self.active_state.clone())),
                ("SubState", Variant::from(self.sub_state.clone())),
                (
                    "ActiveEnterTimestamp",
                    Variant::from(self.active_enter_usec),
                ),
                (
                    "ActiveEnterTimestampMonotonic",
                    Variant::from(self.active_enter_monotonic_usec),
                ),
                (
                    "FragmentPath",
                    Variant::from(format!("/etc/systemd/system/{}", self.name)),
                ),
            ],
            SERVICE => vec![
                ("Type", Variant::from("simple".to_string())),
                ("Restart", Variant::from("always".to_string())),
                ("NRestarts", Variant::from(self.n_restarts)),
                ("ExecMainStatus", Variant::from(self.exec_main_status)),
                ("MainPID", Variant::from(self.main_pid)),
                ("ControlGroup", Variant::from(self.control_group.clone())),
                (
                    "WorkingDirectory",
                    Variant::from(self.working_directory.clone()),
                ),
                ("User", Variant::from(self.user.clone())),
            ],
            _ => Vec::new(),
        }
    }
}

/// systemd's `bus_label_escape`: every byte but ASCII letters, and digits
/// after the first byte, becomes `_xx` in lowercase hex.
pub fn escape_label(s: &str) -> String {
    if s.is_empty() {
        return "_".into();
    }
    let mut out = String::with_capacity(s.len() * 3);
    for (i, b) in s.bytes().enumerate() {
        if b.is_ascii_alphabetic() || (i > 0 && b.is_ascii_digit()) {
            out.push(b as char);
        } else {
            out.push_str(&format!("_{b:02x}"));
        }
    }
    out
}

/// The object path systemd gives a unit.
pub fn unit_path(name: &str) -> String {
    format!("{UNIT_PREFIX}{}", escape_label(name))
}

/// `fnmatch(3)` with `FNM_NOESCAPE`, as systemd matches unit patterns.
/// Written independently of the exporter's matcher on purpose.
pub fn fnmatch(pattern: &str, name: &str) -> bool {
    fn go(p: &[u8], n: &[u8]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some(b'*') => (0..=n.len()).any(|i| go(&p[1..], &n[i..])),
            Some(b'?') => !n.is_empty() && go(&p[1..], &n[1..]),
            Some(b'[') => {
                let Some(close) = p.iter().skip(2).position(|c| *c == b']').map(|i| i + 2) else {
                    return n.first() == Some(&b'[') && go(&p[1..], &n[1..]);
                };
                let Some(&c) = n.first() else { return false };
                let mut set = &p[1..close];
                let negate = matches!(set.first(), Some(b'!') | Some(b'^'));
                if negate {
                    set = &set[1..];
                }
                let mut hit = false;
                let mut i = 0;
                while i < set.len() {
                    if i + 2 < set.len() && set[i + 1] == b'-' {
                        hit |= set[i] <= c && c <= set[i + 2];
                        i += 3;
                    } else {
                        hit |= set[i] == c;
                        i += 1;
                    }
                }
                hit != negate && go(&p[close + 1..], &n[1..])
            }
            Some(c) => n.first() == Some(c) && go(&p[1..], &n[1..]),
        }
    }
    go(pattern.as_bytes(), name.as_bytes())
}

#[derive(Default)]
struct State {
    units: BTreeMap<String, Unit>,
    missing_methods: HashSet<String>,
    missing_properties: HashSet<String>,
    delay: Duration,
    calls: HashMap<String, u64>,
    subscribers: HashSet<String>,
}

struct Daemon {
    child: Child,
    // Kept open: dbus-daemon writes its address here.
    _stdout: std::process::ChildStdout,
}

struct Service {
    conn: Connection,
    task: tokio::task::JoinHandle<()>,
}

/// The fake. Everything stops when it is dropped.
pub struct FakeSystemd {
    _dir: tempfile::TempDir,
    socket: PathBuf,
    config: PathBuf,
    rt: tokio::runtime::Runtime,
    state: Arc<Mutex<State>>,
    daemon: Mutex<Option<Daemon>>,
    service: Mutex<Option<Service>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl FakeSystemd {
    /// Starts a private bus and the fake systemd on it with `units`.
    pub fn start(units: impl IntoIterator<Item = Unit>) -> FakeSystemd {
        let dir = tempfile::Builder::new()
            .prefix("fake-systemd")
            .tempdir()
            .expect("temporary directory");
        let socket = dir.path().join("system_bus_socket");
        let config = dir.path().join("bus.conf");
        std::fs::write(&config, bus_config(&socket)).expect("write dbus-daemon config");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let state = State {
            units: units.into_iter().map(|u| (u.name.clone(), u)).collect(),
            ..State::default()
        };
        let fake = FakeSystemd {
            _dir: dir,
            socket,
            config,
            rt,
            state: Arc::new(Mutex::new(state)),
            daemon: Mutex::new(None),
            service: Mutex::new(None),
        };
        fake.bring_up();
        fake
    }

    /// The bus address, the same across restarts (no guid).
    pub fn address(&self) -> String {
        format!("unix:path={}", self.socket.display())
    }

    fn bring_up(&self) {
        let _ = std::fs::remove_file(&self.socket);
        let mut child = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", self.config.display()))
            .args(["--nofork", "--print-address"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("dbus-daemon runs (Debian package dbus)");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        reader
            .read_line(&mut line)
            .expect("dbus-daemon prints its address");
        assert!(
            line.starts_with("unix:"),
            "dbus-daemon did not start: {line:?}"
        );
        *lock(&self.daemon) = Some(Daemon {
            child,
            _stdout: reader.into_inner(),
        });
        let address = self.address();
        let state = Arc::clone(&self.state);
        let service = self.rt.block_on(async move {
            let conn = zbus::connection::Builder::address(address.as_str())
                .build()
                .await
                .expect("fake systemd connects to its bus");
            let task = tokio::spawn(serve(conn.clone(), state));
            conn.request_name(NAME)
                .await
                .expect("fake systemd owns org.freedesktop.systemd1");
            Service { conn, task }
        });
        *lock(&self.service) = Some(service);
    }

    /// Kills the bus (SIGKILL): every client loses its connection.
    pub fn kill_bus(&self) {
        if let Some(s) = lock(&self.service).take() {
            s.task.abort();
            drop(s.conn);
        }
        if let Some(mut d) = lock(&self.daemon).take() {
            let _ = d.child.kill();
            let _ = d.child.wait();
        }
        lock(&self.state).subscribers.clear();
    }

    /// Starts a new bus on the same address, with the fake on it again.
    pub fn restart_bus(&self) {
        self.kill_bus();
        self.bring_up();
    }

    /// Answers every call only after `delay`.
    pub fn set_delay(&self, delay: Duration) {
        lock(&self.state).delay = delay;
    }

    /// Makes a Manager method unknown, as on a systemd that predates it.
    pub fn set_method_missing(&self, method: &str, missing: bool) {
        let mut s = lock(&self.state);
        if missing {
            s.missing_methods.insert(method.to_string());
        } else {
            s.missing_methods.remove(method);
        }
    }

    /// Makes a property unknown on every unit.
    pub fn set_property_missing(&self, property: &str, missing: bool) {
        let mut s = lock(&self.state);
        if missing {
            s.missing_properties.insert(property.to_string());
        } else {
            s.missing_properties.remove(property);
        }
    }

    /// Calls of a method so far (any interface), e.g. "Get", "ListUnits".
    pub fn calls(&self, method: &str) -> u64 {
        lock(&self.state).calls.get(method).copied().unwrap_or(0)
    }

    /// All method calls so far.
    pub fn total_calls(&self) -> u64 {
        lock(&self.state).calls.values().sum()
    }

    /// Clients currently subscribed.
    pub fn subscribers(&self) -> usize {
        lock(&self.state).subscribers.len()
    }

    pub fn unit(&self, name: &str) -> Option<Unit> {
        lock(&self.state).units.get(name).cloned()
    }

    fn emit(&self, path: &str, interface: &str, member: &str, body: impl EmitBody) {
        if lock(&self.state).subscribers.is_empty() {
            return;
        }
        let Some(conn) = lock(&self.service).as_ref().map(|s| s.conn.clone()) else {
            return;
        };
        let path = path.to_string();
        let interface = interface.to_string();
        let member = member.to_string();
        let _ = self
            .rt
            .block_on(async move { body.emit(&conn, &path, &interface, &member).await });
    }

    /// Adds (loads) a unit: `UnitNew`.
    pub fn add_unit(&self, unit: Unit) {
        let (name, path) = (unit.name.clone(), unit.path());
        lock(&self.state).units.insert(name.clone(), unit);
        self.emit(
            MANAGER_PATH,
            MANAGER,
            "UnitNew",
            (name, OwnedObjectPath::try_from(path).expect("valid path")),
        );
    }

    /// Removes (unloads) a unit: `UnitRemoved`.
    pub fn remove_unit(&self, name: &str) {
        if lock(&self.state).units.remove(name).is_none() {
            return;
        }
        self.emit(
            MANAGER_PATH,
            MANAGER,
            "UnitRemoved",
            (
                name.to_string(),
                OwnedObjectPath::try_from(unit_path(name)).expect("valid path"),
            ),
        );
    }

    /// Changes a unit and sends `PropertiesChanged` for what changed, per
    /// interface, as systemd does.
    pub fn update(&self, name: &str, f: impl FnOnce(&mut Unit)) {
        let (before, after) = {
            let mut s = lock(&self.state);
            let Some(u) = s.units.get_mut(name) else {
                panic!("fake systemd has no unit {name}");
            };
            let before = u.clone();
            f(u);
            (before, u.clone())
        };
        for interface in [UNIT, SERVICE] {
            let old = before.properties(interface);
            let changed: HashMap<&'static str, Variant<'static>> = after
                .properties(interface)
                .into_iter()
                .filter(|(k, v)| old.iter().any(|(ok, ov)| ok == k && ov != v))
                .collect();
            if !changed.is_empty() {
                self.emit(
                    &after.path(),
                    PROPERTIES,
                    "PropertiesChanged",
                    (interface.to_string(), changed, Vec::<String>::new()),
                );
            }
        }
    }

    pub fn start_unit(&self, name: &str) {
        self.update(name, Unit::start);
    }

    pub fn stop_unit(&self, name: &str) {
        self.update(name, Unit::stop);
    }

    pub fn fail_unit(&self, name: &str, status: i32) {
        self.update(name, |u| u.fail(status));
    }
}

impl Drop for FakeSystemd {
    fn drop(&mut self) {
        self.kill_bus();
    }
}

/// A signal body the fake can send.
trait EmitBody: Send + 'static {
    fn emit(
        self,
        conn: &Connection,
        path: &str,
        interface: &str,
        member: &str,
    ) -> impl std::future::Future<Output = zbus::Result<()>> + Send;
}

impl<T> EmitBody for T
where
    T: serde::Serialize + zbus::DynamicType + Send + Sync + 'static,
{
    async fn emit(
        self,
        conn: &Connection,
        path: &str,
        interface: &str,
        member: &str,
    ) -> zbus::Result<()> {
        conn.emit_signal(None::<&str>, path, interface, member, &self)
            .await
    }
}

fn bus_config(socket: &Path) -> String {
    format!(
        r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow receive_sender="*"/>
    <allow eavesdrop="true"/>
  </policy>
</busconfig>
"#,
        socket.display()
    )
}

type ListEntry = (
    String,
    String,
    String,
    String,
    String,
    String,
    OwnedObjectPath,
    u32,
    String,
    OwnedObjectPath,
);

fn list_entry(u: &Unit) -> ListEntry {
    (
        u.name.clone(),
        u.description.clone(),
        u.load_state.clone(),
        u.active_state.clone(),
        u.sub_state.clone(),
        String::new(),
        OwnedObjectPath::try_from(u.path()).expect("valid path"),
        0,
        String::new(),
        OwnedObjectPath::try_from("/").expect("valid path"),
    )
}

/// Answers method calls, each on its own task so a slow answer does not
/// hold up the others.
async fn serve(conn: Connection, state: Arc<Mutex<State>>) {
    let mut stream = MessageStream::from(&conn);
    while let Some(Ok(msg)) = stream.next().await {
        if msg.message_type() != Type::MethodCall {
            continue;
        }
        let conn = conn.clone();
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            let _ = answer(&conn, &state, &msg).await;
        });
    }
}

enum Reply {
    Ok(zbus::Result<Message>),
    Error(&'static str, String),
}

fn ok<B>(msg: &Message, body: B) -> Reply
where
    B: serde::Serialize + zbus::DynamicType,
{
    Reply::Ok(Message::method_return(&msg.header()).build(&body))
}

async fn answer(conn: &Connection, state: &Mutex<State>, msg: &Message) -> zbus::Result<()> {
    let hdr = msg.header();
    let member = hdr.member().map(|m| m.to_string()).unwrap_or_default();
    let path = hdr.path().map(|p| p.to_string()).unwrap_or_default();
    let interface = hdr.interface().map(|i| i.to_string()).unwrap_or_default();
    let sender = hdr.sender().map(|s| s.to_string()).unwrap_or_default();
    let delay = {
        let mut s = lock(state);
        *s.calls.entry(member.clone()).or_default() += 1;
        s.delay
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let reply = {
        let mut s = lock(state);
        dispatch(&mut s, msg, &path, &interface, &member, &sender)
    };
    // Units loaded by LoadUnit are announced like systemd does.
    let reply = match reply {
        Dispatched::Reply(r) => r,
        Dispatched::Loaded(r, name, path) => {
            let subscribed = !lock(state).subscribers.is_empty();
            if subscribed {
                let p = OwnedObjectPath::try_from(path).expect("valid path");
                let _ = conn
                    .emit_signal(None::<&str>, MANAGER_PATH, MANAGER, "UnitNew", &(name, p))
                    .await;
            }
            r
        }
    };
    match reply {
        Reply::Ok(m) => conn.send(&m?).await,
        Reply::Error(name, text) => conn.reply_error(&hdr, name, &text).await,
    }
}

enum Dispatched {
    Reply(Reply),
    /// LoadUnit created a unit.
    Loaded(Reply, String, String),
}

fn unknown_method(member: &str, interface: &str) -> Reply {
    Reply::Error(
        "org.freedesktop.DBus.Error.UnknownMethod",
        format!("Unknown method {member} or interface {interface}."),
    )
}

fn dispatch(
    s: &mut State,
    msg: &Message,
    path: &str,
    interface: &str,
    member: &str,
    sender: &str,
) -> Dispatched {
    use Dispatched::Reply as R;
    if interface == "org.freedesktop.DBus.Peer" && member == "Ping" {
        return R(ok(msg, ()));
    }
    if interface == "org.freedesktop.DBus.Introspectable" && member == "Introspect" {
        return R(ok(msg, "<node/>".to_string()));
    }
    if path == MANAGER_PATH && (interface == MANAGER || interface.is_empty()) {
        if s.missing_methods.contains(member) {
            return R(unknown_method(member, MANAGER));
        }
        return match member {
            "ListUnits" => R(ok(
                msg,
                s.units.values().map(list_entry).collect::<Vec<_>>(),
            )),
            "ListUnitsByPatterns" => {
                let Ok((states, patterns)) = msg.body().deserialize::<(Vec<String>, Vec<String>)>()
                else {
                    return R(invalid_args());
                };
                let list: Vec<ListEntry> = s
                    .units
                    .values()
                    .filter(|u| {
                        states.is_empty()
                            || states.iter().any(|st| {
                                *st == u.load_state || *st == u.active_state || *st == u.sub_state
                            })
                    })
                    .filter(|u| patterns.is_empty() || patterns.iter().any(|p| fnmatch(p, &u.name)))
                    .map(list_entry)
                    .collect();
                R(ok(msg, list))
            }
            "GetUnit" => {
                let Ok(name) = msg.body().deserialize::<String>() else {
                    return R(invalid_args());
                };
                match s.units.get(&name) {
                    Some(u) => R(ok(
                        msg,
                        OwnedObjectPath::try_from(u.path()).expect("valid path"),
                    )),
                    None => R(Reply::Error(
                        "org.freedesktop.systemd1.NoSuchUnit",
                        format!("Unit {name} not loaded."),
                    )),
                }
            }
            "LoadUnit" => {
                let Ok(name) = msg.body().deserialize::<String>() else {
                    return R(invalid_args());
                };
                let path = unit_path(&name);
                let reply = ok(
                    msg,
                    OwnedObjectPath::try_from(path.clone()).expect("valid path"),
                );
                if s.units.contains_key(&name) {
                    return R(reply);
                }
                let mut u = Unit::inactive(&name);
                u.load_state = "not-found".into();
                s.units.insert(name.clone(), u);
                Dispatched::Loaded(reply, name, path)
            }
            "Subscribe" => {
                if s.subscribers.insert(sender.to_string()) {
                    R(ok(msg, ()))
                } else {
                    R(Reply::Error(
                        "org.freedesktop.systemd1.AlreadySubscribed",
                        "Client is already subscribed.".into(),
                    ))
                }
            }
            "Unsubscribe" => {
                if s.subscribers.remove(sender) {
                    R(ok(msg, ()))
                } else {
                    R(Reply::Error(
                        "org.freedesktop.systemd1.NotSubscribed",
                        "Client is not subscribed.".into(),
                    ))
                }
            }
            _ => R(unknown_method(member, interface)),
        };
    }
    if let Some(_label) = path.strip_prefix(UNIT_PREFIX) {
        let Some(unit) = s.units.values().find(|u| u.path() == path) else {
            return R(Reply::Error(
                "org.freedesktop.DBus.Error.UnknownObject",
                format!("Unknown object '{path}'."),
            ));
        };
        if interface != PROPERTIES {
            return R(unknown_method(member, interface));
        }
        let visible = |props: Vec<(&'static str, Variant<'static>)>| -> Vec<(&'static str, Variant<'static>)> {
            props
                .into_iter()
                .filter(|(k, _)| !s.missing_properties.contains(*k))
                .collect()
        };
        return match member {
            "Get" => {
                let Ok((iface, prop)) = msg.body().deserialize::<(String, String)>() else {
                    return R(invalid_args());
                };
                match visible(unit.properties(&iface))
                    .into_iter()
                    .find(|(k, _)| *k == prop)
                {
                    Some((_, v)) => R(ok(msg, v)),
                    None => R(Reply::Error(
                        "org.freedesktop.DBus.Error.UnknownProperty",
                        "Unknown property or interface.".into(),
                    )),
                }
            }
            "GetAll" => {
                let Ok(iface) = msg.body().deserialize::<String>() else {
                    return R(invalid_args());
                };
                let all: HashMap<&'static str, Variant<'static>> =
                    visible(unit.properties(&iface)).into_iter().collect();
                R(ok(msg, all))
            }
            "Set" => R(Reply::Error(
                "org.freedesktop.DBus.Error.PropertyReadOnly",
                "Property is read-only.".into(),
            )),
            _ => R(unknown_method(member, interface)),
        };
    }
    R(Reply::Error(
        "org.freedesktop.DBus.Error.UnknownObject",
        format!("Unknown object '{path}'."),
    ))
}

fn invalid_args() -> Reply {
    Reply::Error(
        "org.freedesktop.DBus.Error.InvalidArgs",
        "Invalid arguments.".into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_paths_are_escaped_like_systemd() {
        assert_eq!(
            unit_path("actions.runner.acme-app.r1.service"),
            "/org/freedesktop/systemd1/unit/actions_2erunner_2eacme_2dapp_2er1_2eservice"
        );
        assert_eq!(
            unit_path("actions.runner._services.ghes.service"),
            "/org/freedesktop/systemd1/unit/actions_2erunner_2e_5fservices_2eghes_2eservice"
        );
        assert_eq!(escape_label("1a2"), "_31a2");
        assert_eq!(escape_label(""), "_");
    }

    #[test]
    fn patterns_match_like_fnmatch() {
        assert!(fnmatch(
            "actions.runner.*.service",
            "actions.runner.a.b.service"
        ));
        assert!(!fnmatch("actions.runner.*.service", "ssh.service"));
        assert!(fnmatch("r[0-9]?", "r1x"));
        assert!(!fnmatch("r[!0-9]", "r1"));
    }
}
