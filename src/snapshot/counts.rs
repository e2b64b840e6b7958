//! Counters kept per variant of a closed set (job results, log events,
//! skip reasons, API error reasons): an array sized from the enum and
//! indexed by it, so a misspelt reason cannot count as another.

use std::marker::PhantomData;

/// An enum whose variants are listed once, in the order they are
/// exported, with their label values.
pub trait Variants: Copy + Eq + 'static {
    /// Every variant; `ALL[v.index()] == v`.
    const ALL: &'static [Self];
    /// The position in [`Variants::ALL`] (the discriminant).
    fn index(self) -> usize;
    /// The label value.
    fn as_str(self) -> &'static str;
}

/// One counter per variant of `E`; `N` is the number of variants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counts<E, const N: usize> {
    counts: [u64; N],
    _variants: PhantomData<E>,
}

impl<E: Variants, const N: usize> Default for Counts<E, N> {
    fn default() -> Self {
        Counts {
            counts: [0; N],
            _variants: PhantomData,
        }
    }
}

impl<E: Variants, const N: usize> Counts<E, N> {
    pub fn add(&mut self, e: E, n: u64) {
        if let Some(c) = self.counts.get_mut(e.index()) {
            *c = c.saturating_add(n);
        }
    }

    pub fn get(&self, e: E) -> u64 {
        self.counts.get(e.index()).copied().unwrap_or(0)
    }

    /// Every variant with its count, in [`Variants::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = (E, u64)> + '_ {
        E::ALL.iter().map(|e| (*e, self.get(*e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{ApiErrorReason, JobConclusion, JobResult, LogEvent, SkipReason};

    fn listed_in_order<E: Variants + std::fmt::Debug>(count: usize) {
        assert_eq!(E::ALL.len(), count, "COUNT matches ALL");
        for (i, e) in E::ALL.iter().enumerate() {
            assert_eq!(e.index(), i, "{e:?}");
        }
        let names: std::collections::HashSet<&str> = E::ALL.iter().map(|e| e.as_str()).collect();
        assert_eq!(names.len(), count, "label values are distinct");
    }

    #[test]
    fn every_enum_lists_its_variants_in_discriminant_order() {
        listed_in_order::<JobResult>(JobResult::COUNT);
        listed_in_order::<LogEvent>(LogEvent::COUNT);
        listed_in_order::<SkipReason>(SkipReason::COUNT);
        listed_in_order::<ApiErrorReason>(ApiErrorReason::COUNT);
        listed_in_order::<JobConclusion>(JobConclusion::COUNT);
    }

    #[test]
    fn counts_add_per_variant() {
        let mut c: Counts<SkipReason, { SkipReason::COUNT }> = Counts::default();
        c.add(SkipReason::Malformed, 2);
        c.add(SkipReason::TooLong, 1);
        assert_eq!(c.get(SkipReason::Malformed), 2);
        assert_eq!(c.iter().map(|(_, n)| n).collect::<Vec<_>>(), [1, 0, 2, 0]);
    }
}
