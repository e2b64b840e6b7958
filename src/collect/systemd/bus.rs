//! The connection to systemd on the system bus: method calls, each under a
//! timeout, and a task that follows systemd's signals and says when one of
//! them concerns a runner unit.
//!
//! zbus queues the signals of each match rule and stops reading the socket
//! (replies included) while a queue is full, so the signals are drained by
//! a task of their own that never waits on the collector.
//!
//! What systemd 252 sends, as seen on a real manager
//! (`tests/it/systemd_manager.rs`): a `daemon-reload` is `Reloading(true)`,
//! `UnitRemoved` and `UnitNew` for every unit, then `Reloading(false)`;
//! a `daemon-reexec` is `Reloading(true)`, `UnitRemoved` for every unit, a
//! `NameOwnerChanged` from the old to the new process, `PropertiesChanged`
//! and `Reloading(false)`, and subscriptions survive it. Signals between
//! the two `Reloading` are ignored: one resync follows `Reloading(false)`.
//! A manager that dies leaves the bus (`NameOwnerChanged` to no owner):
//! the connection is marked stale and the collector reconnects.

use crate::duration::Dur;
use futures_util::StreamExt;
use std::collections::HashSet;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use zbus::{Connection, MessageStream, OwnedObjectPath, OwnedVariant};

pub const DESTINATION: &str = "org.freedesktop.systemd1";
pub const MANAGER_PATH: &str = "/org/freedesktop/systemd1";
pub const MANAGER: &str = "org.freedesktop.systemd1.Manager";
pub const UNIT: &str = "org.freedesktop.systemd1.Unit";
pub const SERVICE: &str = "org.freedesktop.systemd1.Service";
const PROPERTIES: &str = "org.freedesktop.DBus.Properties";
const UNIT_PATHS: &str = "/org/freedesktop/systemd1/unit";

pub const UNKNOWN_METHOD: &str = "org.freedesktop.DBus.Error.UnknownMethod";
pub const UNKNOWN_PROPERTY: &str = "org.freedesktop.DBus.Error.UnknownProperty";
pub const UNKNOWN_INTERFACE: &str = "org.freedesktop.DBus.Error.UnknownInterface";
pub const UNKNOWN_OBJECT: &str = "org.freedesktop.DBus.Error.UnknownObject";
pub const NO_SUCH_UNIT: &str = "org.freedesktop.systemd1.NoSuchUnit";
pub const NAME_HAS_NO_OWNER: &str = "org.freedesktop.DBus.Error.NameHasNoOwner";
const SERVICE_UNKNOWN: &str = "org.freedesktop.DBus.Error.ServiceUnknown";
const NO_REPLY: &str = "org.freedesktop.DBus.Error.NoReply";
const DISCONNECTED: &str = "org.freedesktop.DBus.Error.Disconnected";
const ALREADY_SUBSCRIBED: &str = "org.freedesktop.systemd1.AlreadySubscribed";

/// Why a call failed.
#[derive(Debug)]
pub enum CallError {
    /// systemd (or the bus) answered with an error.
    Reply { name: String, message: String },
    /// No answer within the call timeout.
    Timeout(Duration),
    /// The connection failed or the answer could not be read.
    Bus(zbus::Error),
}

impl CallError {
    pub fn is(&self, name: &str) -> bool {
        matches!(self, CallError::Reply { name: n, .. } if n == name)
    }

    /// A failure of the connection or of systemd's presence on the bus
    /// (no owner, no reply, disconnected, no answer in time), not an
    /// answer from systemd: what a re-exec or a restart of the bus looks
    /// like for a moment.
    pub fn is_transient(&self) -> bool {
        match self {
            CallError::Reply { name, .. } => {
                [NAME_HAS_NO_OWNER, SERVICE_UNKNOWN, NO_REPLY, DISCONNECTED]
                    .contains(&name.as_str())
            }
            CallError::Timeout(_) | CallError::Bus(_) => true,
        }
    }

    fn from_zbus(e: zbus::Error) -> CallError {
        use zbus::DBusError;
        match e {
            zbus::Error::MethodError(name, message, _) => CallError::Reply {
                name: name.to_string(),
                message: message.unwrap_or_default(),
            },
            zbus::Error::FDO(f) => match *f {
                zbus::fdo::Error::ZBus(inner) => CallError::Bus(inner),
                other => CallError::Reply {
                    name: other.name().to_string(),
                    message: other.description().unwrap_or_default().to_string(),
                },
            },
            other => CallError::Bus(other),
        }
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Reply { name, message } if message.is_empty() => f.write_str(name),
            CallError::Reply { name, message } => write!(f, "{name}: {message}"),
            CallError::Timeout(t) => write!(f, "no answer within {}", Dur(*t)),
            CallError::Bus(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for CallError {}

/// One entry of `ListUnits`/`ListUnitsByPatterns`: name, description, load
/// state, active state, sub-state, following, object path, job id, job type,
/// job path.
pub type ListedUnit = (
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

/// What makes a signal relevant: the units being followed and how new
/// runner units are recognised. The collector updates it after each resync.
#[derive(Debug, Default)]
pub struct Interest {
    /// Object paths of the units exported now.
    pub paths: HashSet<String>,
    /// Their names.
    pub names: HashSet<String>,
    pub patterns: Vec<glob::Pattern>,
    /// Units read by name (`[[runner]] unit`, a root's `.service`, units
    /// seen earlier). Their appearing and vanishing is not followed:
    /// reading them with `LoadUnit` makes systemd load them and unload them
    /// again, which would otherwise wake the collector in a loop. Their
    /// state changes are followed by path.
    pub named: HashSet<String>,
}

impl Interest {
    fn unit_new(&self, name: &str) -> bool {
        !self.named.contains(name)
            && !self.names.contains(name)
            && super::matches_any(&self.patterns, name)
    }

    fn unit_removed(&self, name: &str) -> bool {
        !self.named.contains(name) && self.names.contains(name)
    }
}

/// A live connection to the system bus.
pub struct Bus {
    conn: Connection,
    timeout: Duration,
    /// Bumped on every relevant signal and when the connection ends.
    pub events: watch::Receiver<u64>,
    /// Set when the connection ended or systemd left the bus: reconnect.
    stale: Arc<AtomicBool>,
    /// Set between `Reloading(true)` and `Reloading(false)`: systemd is
    /// reloading or re-executing itself.
    reloading: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Bus {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn within<T>(
    timeout: Duration,
    f: impl std::future::Future<Output = zbus::Result<T>>,
) -> Result<T, CallError> {
    match tokio::time::timeout(timeout, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(CallError::from_zbus(e)),
        Err(_) => Err(CallError::Timeout(timeout)),
    }
}

impl Bus {
    /// Connects to the system bus (honouring `DBUS_SYSTEM_BUS_ADDRESS`),
    /// follows systemd's signals and calls `Subscribe` so that systemd
    /// sends them.
    pub async fn connect(timeout: Duration, interest: Arc<Mutex<Interest>>) -> anyhow::Result<Bus> {
        use anyhow::Context;
        let conn = within(timeout, zbus::connection::Builder::system().build())
            .await
            .context("connecting to the D-Bus system bus")?;
        // The bus answers this itself, at once: without an owner, calls to
        // systemd would wait for the call timeout (a name that can be
        // activated is held, not refused).
        let owned: bool = within(
            timeout,
            conn.call_method(
                Some("org.freedesktop.DBus"),
                "/org/freedesktop/DBus",
                Some("org.freedesktop.DBus"),
                "NameHasOwner",
                &DESTINATION,
            ),
        )
        .await
        .and_then(|m| m.body().deserialize::<bool>().map_err(CallError::Bus))
        .context("asking the bus whether systemd is on it")?;
        if !owned {
            return Err(CallError::Reply {
                name: NAME_HAS_NO_OWNER.to_string(),
                message: format!("{DESTINATION} is not on the bus"),
            })
            .context("systemd is not on the bus");
        }
        let manager = format!(
            "type='signal',sender='{DESTINATION}',path='{MANAGER_PATH}',interface='{MANAGER}'"
        );
        let props = format!(
            "type='signal',sender='{DESTINATION}',interface='{PROPERTIES}',member='PropertiesChanged',path_namespace='{UNIT_PATHS}'"
        );
        let owner = format!(
            "type='signal',sender='org.freedesktop.DBus',interface='org.freedesktop.DBus',member='NameOwnerChanged',arg0='{DESTINATION}'"
        );
        let mut streams = Vec::with_capacity(3);
        for rule in [manager, props, owner] {
            let stream = within(timeout, async {
                let rule = zbus::MatchRule::try_from(rule.as_str())?;
                MessageStream::for_match_rule(rule, &conn, None).await
            })
            .await
            .with_context(|| format!("adding the match rule {rule}"))?;
            streams.push(stream);
        }
        let (tx, events) = watch::channel(0u64);
        let stale = Arc::new(AtomicBool::new(false));
        let reloading = Arc::new(AtomicBool::new(false));
        let flags = Flags {
            stale: Arc::clone(&stale),
            reloading: Arc::clone(&reloading),
        };
        let task = tokio::spawn(follow_signals(streams, interest, tx, flags));
        let bus = Bus {
            conn,
            timeout,
            events,
            stale,
            reloading,
            task,
        };
        match bus
            .call::<_, ()>(MANAGER_PATH, MANAGER, "Subscribe", &())
            .await
        {
            Ok(()) => {}
            Err(e) if e.is(ALREADY_SUBSCRIBED) => {}
            Err(e) => return Err(e).context("calling org.freedesktop.systemd1.Manager.Subscribe"),
        }
        Ok(bus)
    }

    /// True when the connection is gone or systemd changed owners: the
    /// caller reconnects (and subscribes again).
    pub fn is_stale(&self) -> bool {
        self.stale.load(Ordering::Acquire) || self.conn.is_closed()
    }

    /// True between systemd's `Reloading(true)` and `Reloading(false)`.
    pub fn is_reloading(&self) -> bool {
        self.reloading.load(Ordering::Acquire)
    }

    /// Calls a method of systemd and reads the reply.
    pub async fn call<B, R>(
        &self,
        path: &str,
        interface: &str,
        method: &str,
        body: &B,
    ) -> Result<R, CallError>
    where
        B: serde::Serialize + zbus::DynamicType,
        R: for<'d> zbus::wire::DynamicDeserialize<'d>,
    {
        let reply = within(
            self.timeout,
            self.conn
                .call_method(Some(DESTINATION), path, Some(interface), method, body),
        )
        .await?;
        reply.body().deserialize::<R>().map_err(CallError::Bus)
    }

    /// Reads one property.
    pub async fn get(
        &self,
        path: &str,
        interface: &str,
        property: &str,
    ) -> Result<OwnedVariant, CallError> {
        self.call(path, PROPERTIES, "Get", &(interface, property))
            .await
    }
}

/// What the signal task tells the collector besides "something changed".
struct Flags {
    stale: Arc<AtomicBool>,
    reloading: Arc<AtomicBool>,
}

/// Drains systemd's signals and bumps `tx` on each relevant one.
async fn follow_signals(
    streams: Vec<MessageStream>,
    interest: Arc<Mutex<Interest>>,
    tx: watch::Sender<u64>,
    flags: Flags,
) {
    let mut all = futures_util::stream::select_all(streams);
    while let Some(item) = all.next().await {
        let Ok(msg) = item else { break };
        let reloading = flags.reloading.load(Ordering::Acquire);
        match classify(&msg, &interest, reloading) {
            Signal::Ignore => {}
            Signal::Relevant => tx.send_modify(|v| *v += 1),
            Signal::Reloading(on) => {
                flags.reloading.store(on, Ordering::Release);
                if !on {
                    tx.send_modify(|v| *v += 1);
                }
            }
            Signal::OwnerLeft => {
                flags.stale.store(true, Ordering::Release);
                tx.send_modify(|v| *v += 1);
                return;
            }
        }
    }
    flags.stale.store(true, Ordering::Release);
    tx.send_modify(|v| *v += 1);
}

enum Signal {
    Ignore,
    Relevant,
    /// systemd starts (true) or ends (false) a reload or re-exec.
    Reloading(bool),
    /// systemd left the bus: its subscriptions are gone.
    OwnerLeft,
}

fn classify(msg: &zbus::Message, interest: &Mutex<Interest>, reloading: bool) -> Signal {
    let header = msg.header();
    let member = header.member().map(|m| m.as_str()).unwrap_or("");
    let interest = interest.lock().unwrap_or_else(|e| e.into_inner());
    match member {
        // Every unit comes and goes during a reload: one resync at its
        // end covers it.
        "PropertiesChanged" | "UnitNew" | "UnitRemoved" if reloading => Signal::Ignore,
        "PropertiesChanged" => {
            let path = header.path().map(|p| p.as_str()).unwrap_or("");
            if interest.paths.contains(path) {
                Signal::Relevant
            } else {
                Signal::Ignore
            }
        }
        "UnitNew" | "UnitRemoved" => {
            let Ok((name, _path)) = msg.body().deserialize::<(String, OwnedObjectPath)>() else {
                return Signal::Ignore;
            };
            let relevant = if member == "UnitNew" {
                interest.unit_new(&name)
            } else {
                interest.unit_removed(&name)
            };
            if relevant {
                Signal::Relevant
            } else {
                Signal::Ignore
            }
        }
        "Reloading" => match msg.body().deserialize::<bool>() {
            Ok(on) => Signal::Reloading(on),
            Err(_) => Signal::Ignore,
        },
        // (name, old owner, new owner): a new owner is a re-exec handing
        // over (the match rules follow the name, subscriptions survive);
        // none is systemd gone.
        "NameOwnerChanged" => match msg.body().deserialize::<(String, String, String)>() {
            Ok((_, _, new)) if !new.is_empty() => Signal::Relevant,
            _ => Signal::OwnerLeft,
        },
        _ => Signal::Ignore,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_runner_units_appearing_or_vanishing_are_relevant() {
        let mut i = Interest {
            patterns: super::super::unit_globs(&["actions.runner.*.service".to_string()]),
            ..Default::default()
        };
        i.names.insert("actions.runner.a.b.service".into());
        i.named.insert("custom-runner.service".into());
        assert!(i.unit_new("actions.runner.a.c.service"));
        assert!(
            !i.unit_new("actions.runner.a.b.service"),
            "already followed"
        );
        assert!(!i.unit_new("ssh.service"));
        assert!(!i.unit_new("custom-runner.service"));
        assert!(i.unit_removed("actions.runner.a.b.service"));
        assert!(!i.unit_removed("actions.runner.a.c.service"));
        assert!(!i.unit_removed("custom-runner.service"));
    }

    #[test]
    fn call_errors_read_clearly() {
        let e = CallError::Reply {
            name: UNKNOWN_METHOD.into(),
            message: "Unknown method ListUnitsByPatterns".into(),
        };
        assert!(e.is(UNKNOWN_METHOD));
        assert_eq!(
            e.to_string(),
            "org.freedesktop.DBus.Error.UnknownMethod: Unknown method ListUnitsByPatterns"
        );
        assert_eq!(
            CallError::Timeout(Duration::from_secs(2)).to_string(),
            "no answer within 2s"
        );
    }
}
