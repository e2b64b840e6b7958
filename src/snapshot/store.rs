//! The store: one section per collector (made by the collector registry),
//! the exporter's own process figures, the reload status and the
//! settings in effect, with a version that changes whenever any of them
//! does (the renderer re-encodes on it).

use super::section::{AnySection, Channel, SectionState};
use super::state::{ProcessStats, ReloadStatus};
use super::{SectionView, Snapshot};
use crate::settings::Settings;
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::watch;

pub struct Store {
    /// In registry order.
    sections: Vec<Box<dyn AnySection>>,
    process: Mutex<Option<ProcessStats>>,
    reload: Mutex<ReloadStatus>,
    settings: RwLock<Arc<Settings>>,
    version: watch::Sender<u64>,
}

impl Store {
    /// A store with these sections (see `collect::registry::store`).
    pub fn new(settings: Arc<Settings>, sections: Vec<Box<dyn AnySection>>) -> Arc<Store> {
        Arc::new(Store {
            sections,
            process: Mutex::new(None),
            reload: Mutex::new(ReloadStatus {
                last_ok: true,
                last_success: crate::timefmt::now_unix(),
            }),
            settings: RwLock::new(settings),
            version: watch::Sender::new(0),
        })
    }

    /// The section holding data of type `T`.
    pub fn channel<T: SectionState>(&self) -> Option<&Channel<T>> {
        self.sections
            .iter()
            .find_map(|s| s.as_any().downcast_ref::<Channel<T>>())
    }

    /// A section by collector name.
    pub fn section(&self, name: &str) -> Option<&dyn AnySection> {
        self.sections
            .iter()
            .find(|s| s.name() == name)
            .map(|s| s.as_ref())
    }

    /// Everything, as of now: each section's data (`Arc` clones) and
    /// bookkeeping. No lock is held once it returns.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            sections: self
                .sections
                .iter()
                .map(|s| SectionView {
                    name: s.name(),
                    meta: s.meta(),
                    data: s.data_any(),
                })
                .collect(),
            process: *self.process.lock().unwrap_or_else(|e| e.into_inner()),
            reload: self
                .reload
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            settings: self.settings(),
        }
    }

    /// The settings in effect.
    pub fn settings(&self) -> Arc<Settings> {
        Arc::clone(&self.settings.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// New settings (after a reload): roles, thresholds.
    pub fn set_settings(&self, settings: Arc<Settings>) {
        *self.settings.write().unwrap_or_else(|e| e.into_inner()) = settings;
        self.changed();
    }

    pub fn set_process(&self, p: ProcessStats) {
        *self.process.lock().unwrap_or_else(|e| e.into_inner()) = Some(p);
        self.changed();
    }

    /// Records a reload: its outcome, and when the last good one happened.
    pub fn set_reload(&self, ok: bool) {
        {
            let mut r = self.reload.lock().unwrap_or_else(|e| e.into_inner());
            r.last_ok = ok;
            if ok {
                r.last_success = crate::timefmt::now_unix();
            }
        }
        self.changed();
    }

    /// Something changed: readers of the version (the renderer) wake.
    pub fn changed(&self) {
        self.version.send_modify(|v| *v += 1);
    }

    pub fn version(&self) -> u64 {
        *self.version.borrow()
    }

    /// Wakes on every change of anything in the store.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }
}
