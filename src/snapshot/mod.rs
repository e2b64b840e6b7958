//! The latest state of everything the exporter watches.
//!
//! - `state`: the typed data each collector publishes.
//! - `section`: one collector's section: its data on a `watch` channel of
//!   its own, and its bookkeeping (success, errors, staleness).
//! - `store`: every section, plus the exporter's own figures and the
//!   settings, with a version that changes on any write.
//! - `counts`: counters indexed by an enum (job results, log events, skip
//!   and error reasons).
//!
//! Collectors write their own section in the background, through the
//! supervisor; `/metrics`, `/health` and `check` only read a [`Snapshot`].

pub mod counts;
pub mod section;
pub mod state;
pub mod store;

pub use counts::{Counts, Variants};
pub use section::{AnySection, Channel, Data, Meta, Publish, SectionState};
pub use state::*;
pub use store::Store;

use crate::settings::Settings;
use std::any::Any;
use std::sync::Arc;

/// One section as read at one moment.
#[derive(Clone)]
pub struct SectionView {
    pub name: &'static str,
    pub meta: Meta,
    data: Option<Arc<dyn Any + Send + Sync>>,
}

impl SectionView {
    pub fn has_data(&self) -> bool {
        self.data.is_some()
    }
}

impl std::fmt::Debug for SectionView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SectionView")
            .field("name", &self.name)
            .field("meta", &self.meta)
            .field("has_data", &self.has_data())
            .finish()
    }
}

/// Everything the exporter knows, as of one read of the store: what the
/// renderer, `/health` and `check` work from. Cheap to take (the data is
/// shared, not copied) and holds no lock.
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// Every collector's section, in registry order.
    pub sections: Vec<SectionView>,
    pub process: Option<ProcessStats>,
    pub reload: ReloadStatus,
    pub settings: Arc<Settings>,
}

impl Snapshot {
    /// A snapshot with these sections, none with data yet (tests build
    /// snapshots by hand this way).
    pub fn empty(settings: Arc<Settings>, sections: &[(&'static str, Meta)]) -> Snapshot {
        Snapshot {
            sections: sections
                .iter()
                .map(|(name, meta)| SectionView {
                    name,
                    meta: meta.clone(),
                    data: None,
                })
                .collect(),
            process: None,
            reload: ReloadStatus {
                last_ok: true,
                last_success: 0.0,
            },
            settings,
        }
    }

    /// The data of type `T`, if its collector has any.
    pub fn state<T: SectionState>(&self) -> Option<&T> {
        self.sections
            .iter()
            .find_map(|s| s.data.as_deref()?.downcast_ref::<T>())
    }

    /// A section by collector name.
    pub fn section(&self, name: &str) -> Option<&SectionView> {
        self.sections.iter().find(|s| s.name == name)
    }

    pub fn section_mut(&mut self, name: &str) -> Option<&mut SectionView> {
        self.sections.iter_mut().find(|s| s.name == name)
    }

    /// Sets the data of section `name` (tests and benchmarks).
    pub fn set<T: SectionState>(&mut self, name: &str, data: T) {
        if let Some(s) = self.section_mut(name) {
            s.meta.targets = Some(data.targets());
            s.data = Some(Arc::new(data));
        }
    }

    /// Drops the data of section `name` (tests).
    pub fn clear(&mut self, name: &str) {
        if let Some(s) = self.section_mut(name) {
            s.meta.targets = None;
            s.data = None;
        }
    }

    /// The data of type `T` to change in place (tests; copies it when
    /// shared).
    pub fn state_mut<T: SectionState + Clone>(&mut self) -> Option<&mut T> {
        let view = self
            .sections
            .iter_mut()
            .find(|s| s.data.as_deref().is_some_and(|d| d.is::<T>()))?;
        let typed: Arc<T> = view.data.take()?.downcast::<T>().ok()?;
        view.data = Some(Arc::new(Arc::unwrap_or_clone(typed)));
        Arc::get_mut(view.data.as_mut()?)?.downcast_mut::<T>()
    }
}
