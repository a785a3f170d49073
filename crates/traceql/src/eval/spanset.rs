//! The spanset operators: `&&`, `||` and the structural relations, over the
//! parent index of a [`TraceView`].
//!
//! Each relation is O(n) in the spans of the trace: bitmaps of the operand
//! spansets, a memo for "has an ancestor in the set", and parent walks that
//! stop at spans already visited, so a cyclic parent chain in hostile data
//! ends instead of looping.

use crate::ast::SpansetOp;
use crate::trace::TraceView;

/// The spans `{lhs} op {rhs}` yields (sorted, each once), given the spans
/// each side yielded for the same input spanset. `None`: the operator
/// yields no spanset (`&&` with an empty side, `||` with both empty).
pub(crate) fn combine(
    op: SpansetOp,
    lhs: &[usize],
    rhs: &[usize],
    trace: &TraceView<'_>,
) -> Option<Vec<usize>> {
    let spans = match op {
        SpansetOp::And => {
            if lhs.is_empty() || rhs.is_empty() {
                return None;
            }
            union(lhs, rhs)
        }
        SpansetOp::Or => union(lhs, rhs),
        SpansetOp::UnionChild => union(
            &relate(Relation::Child, false, lhs, rhs, trace),
            &relate(Relation::Parent, false, rhs, lhs, trace),
        ),
        SpansetOp::UnionParent => union(
            &relate(Relation::Parent, false, lhs, rhs, trace),
            &relate(Relation::Child, false, rhs, lhs, trace),
        ),
        SpansetOp::UnionDescendant => union(
            &relate(Relation::Descendant, false, lhs, rhs, trace),
            &relate(Relation::Ancestor, false, rhs, lhs, trace),
        ),
        SpansetOp::UnionAncestor => union(
            &relate(Relation::Ancestor, false, lhs, rhs, trace),
            &relate(Relation::Descendant, false, rhs, lhs, trace),
        ),
        SpansetOp::UnionSibling => union(
            &relate(Relation::Sibling, false, lhs, rhs, trace),
            &relate(Relation::Sibling, false, rhs, lhs, trace),
        ),
        SpansetOp::Child => relate(Relation::Child, false, lhs, rhs, trace),
        SpansetOp::Descendant => relate(Relation::Descendant, false, lhs, rhs, trace),
        SpansetOp::Parent => relate(Relation::Parent, false, lhs, rhs, trace),
        SpansetOp::Ancestor => relate(Relation::Ancestor, false, lhs, rhs, trace),
        SpansetOp::Sibling => relate(Relation::Sibling, false, lhs, rhs, trace),
        SpansetOp::NotChild => relate(Relation::Child, true, lhs, rhs, trace),
        SpansetOp::NotDescendant => relate(Relation::Descendant, true, lhs, rhs, trace),
        SpansetOp::NotParent => relate(Relation::Parent, true, lhs, rhs, trace),
        SpansetOp::NotAncestor => relate(Relation::Ancestor, true, lhs, rhs, trace),
        SpansetOp::NotSibling => relate(Relation::Sibling, true, lhs, rhs, trace),
    };
    if spans.is_empty() { None } else { Some(spans) }
}

/// How a `rhs` span must relate to some `lhs` span.
#[derive(Clone, Copy)]
enum Relation {
    /// Its parent is in lhs (`>`).
    Child,
    /// An ancestor is in lhs (`>>`).
    Descendant,
    /// It is the parent of a span in lhs (`<`).
    Parent,
    /// It is an ancestor of a span in lhs (`<<`).
    Ancestor,
    /// It shares its parent with a different span in lhs (`~`).
    Sibling,
}

/// The rhs spans for which the relation holds (or, `negate`, does not).
fn relate(
    relation: Relation,
    negate: bool,
    lhs: &[usize],
    rhs: &[usize],
    trace: &TraceView<'_>,
) -> Vec<usize> {
    let n = trace.len();
    let in_lhs = bitmap(lhs, n);
    let holds: Box<dyn Fn(usize) -> bool + '_> = match relation {
        Relation::Child => Box::new(|b| trace.parent(b).is_some_and(|p| flag(&in_lhs, p))),
        Relation::Parent => {
            let mut is_parent = vec![false; n];
            for &a in lhs {
                if let Some(p) = trace.parent(a)
                    && let Some(slot) = is_parent.get_mut(p)
                {
                    *slot = true;
                }
            }
            Box::new(move |b| flag(&is_parent, b))
        }
        Relation::Descendant => {
            let below = below_set(&in_lhs, trace);
            Box::new(move |b| trace.parent(b).is_some_and(|p| flag(&below, p)))
        }
        Relation::Ancestor => {
            let mut is_ancestor = vec![false; n];
            for &a in lhs {
                let mut current = trace.parent(a);
                // Stop at a span already marked: everything above it is
                // marked too. This also ends a walk around a cycle.
                while let Some(p) = current {
                    match is_ancestor.get_mut(p) {
                        Some(slot) if !*slot => *slot = true,
                        _ => break,
                    }
                    current = trace.parent(p);
                }
            }
            Box::new(move |b| flag(&is_ancestor, b))
        }
        Relation::Sibling => {
            // How many lhs spans each span is the parent of.
            let mut lhs_children = vec![0usize; n];
            for &a in lhs {
                if let Some(p) = trace.parent(a)
                    && let Some(count) = lhs_children.get_mut(p)
                {
                    *count += 1;
                }
            }
            Box::new(move |b| {
                let Some(p) = trace.parent(b) else {
                    return false;
                };
                let others = lhs_children.get(p).copied().unwrap_or(0);
                // b itself is not its own sibling.
                let own = usize::from(flag(&in_lhs, b));
                others > own
            })
        }
    };
    rhs.iter()
        .copied()
        .filter(|&b| holds(b) != negate)
        .collect()
}

fn bitmap(indices: &[usize], n: usize) -> Vec<bool> {
    let mut bits = vec![false; n];
    for &i in indices {
        if let Some(slot) = bits.get_mut(i) {
            *slot = true;
        }
    }
    bits
}

fn flag(bits: &[bool], i: usize) -> bool {
    bits.get(i).copied().unwrap_or(false)
}

/// For each span: whether it or one of its ancestors is marked. Each span's
/// answer is computed once (the walk stops at the first span already
/// answered), and a walk longer than the number of spans is a cycle and
/// answers false.
fn below_set(marked: &[bool], trace: &TraceView<'_>) -> Vec<bool> {
    const UNKNOWN: u8 = 0;
    const YES: u8 = 1;
    const NO: u8 = 2;
    let n = trace.len();
    let mut memo = vec![UNKNOWN; n];
    let mut path = Vec::new();
    for start in 0..n {
        if memo.get(start).copied() != Some(UNKNOWN) {
            continue;
        }
        path.clear();
        let mut current = Some(start);
        let answer = loop {
            let Some(i) = current else { break NO };
            match memo.get(i).copied() {
                Some(UNKNOWN) => {}
                Some(known) => break known,
                None => break NO,
            }
            if flag(marked, i) {
                break YES;
            }
            if path.len() > n {
                break NO;
            }
            path.push(i);
            current = trace.parent(i);
        };
        for &i in &path {
            if let Some(slot) = memo.get_mut(i) {
                *slot = answer;
            }
        }
        if let Some(slot) = memo.get_mut(start)
            && flag(marked, start)
        {
            *slot = YES;
        }
    }
    memo.into_iter().map(|m| m == YES).collect()
}

/// Sorted union of two sorted index lists, without duplicates.
pub(crate) fn union(a: &[usize], b: &[usize]) -> Vec<usize> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while let (Some(&x), Some(&y)) = (a.get(i), b.get(j)) {
        match x.cmp(&y) {
            std::cmp::Ordering::Less => {
                out.push(x);
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                out.push(y);
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                out.push(x);
                i += 1;
                j += 1;
            }
        }
    }
    out.extend_from_slice(a.get(i..).unwrap_or(&[]));
    out.extend_from_slice(b.get(j..).unwrap_or(&[]));
    out
}
