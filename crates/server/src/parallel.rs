//! Reading the tiers of a store snapshot (the hot tier and each segment, all
//! independent) on several threads, for the investigation queries that scan
//! a whole period: timelines, the service graph, the compliance report.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use tracewarden_store::segment::SpanFilter;
use tracewarden_store::{ScanUnit, Snapshot};

/// The tiers of `snapshot` that may hold spans of `[start, end)`, and the
/// filter that keeps only those spans: what a scan of a period reads.
pub fn period_units(snapshot: &Snapshot, start: u64, end: u64) -> (SpanFilter, Vec<ScanUnit>) {
    let filter = SpanFilter {
        start_unix_nano: Some(start),
        end_unix_nano: Some(end),
        ..SpanFilter::default()
    };
    let units = snapshot
        .units()
        .into_iter()
        .filter(|u| u.may_overlap(start, end))
        .collect();
    (filter, units)
}

/// `read` on every unit, on up to four threads (segments are independent
/// files), with each unit's outcome in the units' order.
pub fn in_parallel<U: Sync, T: Send>(units: &[U], read: impl Fn(&U) -> T + Sync) -> Vec<(&U, T)> {
    let threads = std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(1)
        .clamp(1, 4)
        .min(units.len());
    if threads <= 1 {
        return units.iter().map(|unit| (unit, read(unit))).collect();
    }
    let next = AtomicUsize::new(0);
    let done: Mutex<Vec<(usize, T)>> = Mutex::new(Vec::with_capacity(units.len()));
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(unit) = units.get(index) else {
                        break;
                    };
                    let outcome = read(unit);
                    if let Ok(mut done) = done.lock() {
                        done.push((index, outcome));
                    }
                }
            });
        }
    });
    let mut done = done
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    done.sort_by_key(|(index, _)| *index);
    done.into_iter()
        .filter_map(|(index, outcome)| Some((units.get(index)?, outcome)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unit_is_read_once_and_outcomes_keep_the_units_order() {
        let units: Vec<u64> = (0..100).collect();
        let read = AtomicUsize::new(0);
        let out = in_parallel(&units, |unit| {
            read.fetch_add(1, Ordering::Relaxed);
            unit * 2
        });
        assert_eq!(read.load(Ordering::Relaxed), units.len());
        let expected: Vec<(&u64, u64)> = units.iter().map(|u| (u, u * 2)).collect();
        assert_eq!(out, expected);
        assert!(in_parallel(&[] as &[u64], |u| *u).is_empty());
        assert_eq!(in_parallel(&[7u64], |u| *u + 1), vec![(&7, 8)]);
    }
}
