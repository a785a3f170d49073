//! Which row groups and pages of a segment file can hold matching rows,
//! from the footer's column statistics and the page index (column index:
//! per-page min/max; offset index: where each page starts, in rows).
//!
//! Every answer errs on the side of reading: statistics that are missing,
//! truncated or inconsistent keep the row group or page.

use std::cmp::Ordering;
use std::ops::Range;

use parquet::arrow::arrow_reader::{RowSelection, RowSelector};
use parquet::file::metadata::ParquetMetaData;
use parquet::file::page_index::column_index::ColumnIndexMetaData;
use parquet::file::statistics::Statistics;

/// What a predicate knows of a column over some rows.
pub(crate) enum Bounds<'a> {
    Bytes {
        min: &'a [u8],
        max: &'a [u8],
    },
    Int {
        min: i64,
        max: i64,
    },
    /// Every value is null.
    AllNull,
    /// Nothing usable: the rows must be read.
    Unknown,
}

/// A condition on one leaf column that statistics can rule out.
#[derive(Clone, Debug)]
pub(crate) enum Condition {
    /// The column equals these bytes (ids and strings compare as unsigned bytes).
    BytesEqual(Vec<u8>),
    IntEqual(i64),
    /// The column lies in `[min, max]` (unsigned byte order).
    BytesRange(Vec<u8>, Vec<u8>),
    /// A time column, read as `u64`, lies in `[start, end)`.
    TimeIn {
        start: u64,
        end: Option<u64>,
    },
}

impl Condition {
    /// Whether rows with these bounds may satisfy the condition.
    pub fn may_match(&self, bounds: &Bounds<'_>) -> bool {
        match (self, bounds) {
            (_, Bounds::Unknown) => true,
            (_, Bounds::AllNull) => false,
            (Condition::BytesEqual(v), Bounds::Bytes { min, max }) => {
                v.as_slice().cmp(min) != Ordering::Less
                    && v.as_slice().cmp(max) != Ordering::Greater
            }
            (Condition::IntEqual(v), Bounds::Int { min, max }) => min <= v && v <= max,
            (Condition::BytesRange(low, high), Bounds::Bytes { min, max }) => {
                low.as_slice().cmp(max) != Ordering::Greater
                    && high.as_slice().cmp(min) != Ordering::Less
            }
            (Condition::TimeIn { start, end }, Bounds::Int { min, max }) => {
                // Times past i64::MAX are stored with their bits, as negative
                // numbers: with one in the range, order says nothing.
                let (Ok(min), Ok(max)) = (u64::try_from(*min), u64::try_from(*max)) else {
                    return true;
                };
                max >= *start && end.is_none_or(|end| min < end)
            }
            // A type the condition does not expect: keep.
            _ => true,
        }
    }
}

/// Bounds of leaf column `column` over row group `row_group`.
pub(crate) fn row_group_bounds(
    metadata: &ParquetMetaData,
    row_group: usize,
    column: usize,
) -> Bounds<'_> {
    let Some(chunk) = metadata
        .row_groups()
        .get(row_group)
        .and_then(|rg| rg.columns().get(column))
    else {
        return Bounds::Unknown;
    };
    let Some(statistics) = chunk.statistics() else {
        return Bounds::Unknown;
    };
    let rows = chunk.num_values();
    if statistics
        .null_count_opt()
        .is_some_and(|n| n as i64 == rows)
        && rows > 0
    {
        return Bounds::AllNull;
    }
    match statistics {
        Statistics::Int64(s) => match (s.min_opt(), s.max_opt()) {
            (Some(min), Some(max)) => Bounds::Int {
                min: *min,
                max: *max,
            },
            _ => Bounds::Unknown,
        },
        Statistics::ByteArray(_) | Statistics::FixedLenByteArray(_) => {
            match (statistics.min_bytes_opt(), statistics.max_bytes_opt()) {
                (Some(min), Some(max)) => Bounds::Bytes { min, max },
                _ => Bounds::Unknown,
            }
        }
        _ => Bounds::Unknown,
    }
}

/// Rows of row group `row_group` (counted from its start) in the pages of
/// leaf column `column` that may satisfy `condition`; `None` when the page
/// index cannot tell (every row may).
pub(crate) fn page_rows(
    metadata: &ParquetMetaData,
    row_group: usize,
    column: usize,
    condition: &Condition,
) -> Option<Vec<Range<usize>>> {
    let page_index = metadata.page_index()?;
    let locations = page_index.offset_index(row_group, column)?.page_locations();
    let rows = usize::try_from(metadata.row_groups().get(row_group)?.num_rows()).ok()?;
    let bounds = page_bounds(page_index.column_index(row_group, column)?, locations.len())?;

    let mut ranges: Vec<Range<usize>> = Vec::new();
    for (i, (location, bounds)) in locations.iter().zip(bounds).enumerate() {
        let start = usize::try_from(location.first_row_index).ok()?;
        let end = match locations.get(i + 1) {
            Some(next) => usize::try_from(next.first_row_index).ok()?,
            None => rows,
        };
        if start > end || end > rows {
            return None;
        }
        if condition.may_match(&bounds) {
            match ranges.last_mut() {
                Some(last) if last.end == start => last.end = end,
                _ => ranges.push(start..end),
            }
        }
    }
    Some(ranges)
}

/// The bounds of each of `pages` pages, or `None` when the column index
/// does not describe that many pages.
fn page_bounds(index: &ColumnIndexMetaData, pages: usize) -> Option<Vec<Bounds<'_>>> {
    if usize::try_from(index.num_pages()).ok()? != pages {
        return None;
    }
    let bounds = match index {
        ColumnIndexMetaData::INT64(ix) => ix
            .min_values_iter()
            .zip(ix.max_values_iter())
            .map(|pair| match pair {
                (Some(min), Some(max)) => Bounds::Int {
                    min: *min,
                    max: *max,
                },
                _ => Bounds::AllNull,
            })
            .collect(),
        ColumnIndexMetaData::BYTE_ARRAY(ix) | ColumnIndexMetaData::FIXED_LEN_BYTE_ARRAY(ix) => ix
            .min_values_iter()
            .zip(ix.max_values_iter())
            .map(|pair| match pair {
                (Some(min), Some(max)) => Bounds::Bytes { min, max },
                _ => Bounds::AllNull,
            })
            .collect(),
        _ => (0..pages).map(|_| Bounds::Unknown).collect(),
    };
    Some(bounds)
}

/// The rows in both sorted, disjoint range lists.
pub(crate) fn intersect(a: &[Range<usize>], b: &[Range<usize>]) -> Vec<Range<usize>> {
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::new();
    while let (Some(x), Some(y)) = (a.get(i), b.get(j)) {
        let start = x.start.max(y.start);
        let end = x.end.min(y.end);
        if start < end {
            out.push(start..end);
        }
        if x.end <= y.end {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

/// The selection of the given row ranges of consecutive row groups of
/// `rows` rows each: what the reader takes with `with_row_groups` of the
/// same row groups.
pub(crate) fn selection(groups: &[(usize, Vec<Range<usize>>)]) -> RowSelection {
    let mut selectors = Vec::new();
    for (rows, ranges) in groups {
        let mut at = 0;
        for range in ranges {
            if range.start > at {
                selectors.push(RowSelector::skip(range.start - at));
            }
            if range.end > range.start {
                selectors.push(RowSelector::select(range.end - range.start));
            }
            at = range.end;
        }
        if *rows > at {
            selectors.push(RowSelector::skip(rows - at));
        }
    }
    RowSelection::from(selectors)
}

#[cfg(test)]
#[allow(clippy::single_range_in_vec_init)]
mod tests {
    use super::*;

    #[test]
    fn conditions_keep_what_bounds_cannot_rule_out() {
        let id = Condition::BytesEqual(vec![5, 5]);
        let bytes = |min: &'static [u8], max: &'static [u8]| Bounds::Bytes { min, max };
        assert!(id.may_match(&bytes(&[5, 5], &[5, 5])));
        assert!(id.may_match(&bytes(&[1], &[9])));
        assert!(!id.may_match(&bytes(&[5, 6], &[9])));
        assert!(!id.may_match(&bytes(&[1], &[5, 4, 255])));
        assert!(!id.may_match(&Bounds::AllNull));
        assert!(id.may_match(&Bounds::Unknown));

        let window = Condition::TimeIn {
            start: 100,
            end: Some(200),
        };
        assert!(window.may_match(&Bounds::Int { min: 150, max: 300 }));
        assert!(window.may_match(&Bounds::Int { min: 0, max: 100 }));
        assert!(!window.may_match(&Bounds::Int { min: 200, max: 300 }));
        assert!(!window.may_match(&Bounds::Int { min: 0, max: 99 }));
        // A time past i64::MAX, stored as a negative number.
        assert!(window.may_match(&Bounds::Int { min: -1, max: 50 }));
        assert!(Condition::IntEqual(404).may_match(&Bounds::Int { min: 200, max: 500 }));
        assert!(!Condition::IntEqual(404).may_match(&Bounds::Int { min: 500, max: 503 }));
    }

    #[test]
    fn ranges_intersect_and_become_selections() {
        assert_eq!(
            intersect(&[0..10, 20..30], &[5..25, 28..40]),
            vec![5..10, 20..25, 28..30]
        );
        assert!(intersect(&[0..5], &[5..9]).is_empty());
        let selection = selection(&[(10, vec![2..4]), (5, vec![0..5]), (3, vec![])]);
        assert_eq!(selection.row_count(), 7);
        assert_eq!(selection.skipped_row_count(), 11);
    }
}
