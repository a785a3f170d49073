//! The span tree of the trace view: roots by start time, children by
//! start time.
//!
//! Span ids and parent ids come from senders, so the tree is built without
//! trusting them: iteratively (a chain of 100 000 spans costs no stack),
//! each span placed exactly once, and nested at most [`MAX_DEPTH`] deep
//! (serialising and dropping a nested tree recurse). A span whose parent
//! is not in the trace is a root marked `orphan`; a span deeper than the
//! limit starts a new root marked `depthLimited`; spans only reachable
//! through a parent cycle (`a -> b -> a`) hang from the earliest of them,
//! a root marked `cycle`; a second span with an already seen id is placed
//! as any span and marked `duplicate` (children name the first one).

use std::collections::{HashMap, VecDeque};

use serde::Serialize;
use tracewarden_model::SpanId;

/// Levels of nesting at most.
pub const MAX_DEPTH: usize = 128;

/// What the tree needs of a span.
#[derive(Clone, Copy, Debug)]
pub struct SpanLink {
    pub span_id: SpanId,
    pub parent_span_id: Option<SpanId>,
    pub start_time_unix_nano: u64,
}

#[derive(Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TreeNode {
    pub span_id: String,
    /// Its parent is not in the trace.
    #[serde(skip_serializing_if = "is_false")]
    pub orphan: bool,
    /// Its parent is in the trace, [`MAX_DEPTH`] levels down a branch.
    #[serde(skip_serializing_if = "is_false")]
    pub depth_limited: bool,
    /// Its parents form a cycle.
    #[serde(skip_serializing_if = "is_false")]
    pub cycle: bool,
    /// Another span of the trace has the same id.
    #[serde(skip_serializing_if = "is_false")]
    pub duplicate: bool,
    /// For roots that have a parent id (orphans and the rest).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_span_id: Option<String>,
    pub children: Vec<TreeNode>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

#[derive(Clone, Copy, Default, PartialEq, Eq)]
enum RootMark {
    #[default]
    Plain,
    Orphan,
    DepthLimited,
    Cycle,
}

/// The tree of `spans` (in any order).
pub fn build(spans: &[SpanLink]) -> Vec<TreeNode> {
    let mut order: Vec<usize> = (0..spans.len()).collect();
    order.sort_by_key(|&i| (spans[i].start_time_unix_nano, i));
    // The first span (by start time) holding an id owns it.
    let mut owner: HashMap<SpanId, usize> = HashMap::with_capacity(spans.len());
    let mut duplicate = vec![false; spans.len()];
    for &i in &order {
        match owner.entry(spans[i].span_id) {
            std::collections::hash_map::Entry::Occupied(_) => duplicate[i] = true,
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(i);
            }
        }
    }
    // Children by start time, under the owner of their parent id.
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); spans.len()];
    let mut roots: Vec<(usize, RootMark)> = Vec::new();
    for &i in &order {
        let span = &spans[i];
        match span.parent_span_id {
            None => roots.push((i, RootMark::Plain)),
            Some(parent) if parent == span.span_id => roots.push((i, RootMark::Cycle)),
            Some(parent) => match owner.get(&parent) {
                Some(&p) => children[p].push(i),
                None => roots.push((i, RootMark::Orphan)),
            },
        }
    }
    // Breadth first from the roots; what no root reaches hangs off a cycle.
    let mut placed = vec![false; spans.len()];
    let mut kept: Vec<Vec<usize>> = vec![Vec::new(); spans.len()];
    let mut visit_order: Vec<usize> = Vec::with_capacity(spans.len());
    let mut all_roots: Vec<(usize, RootMark)> = Vec::new();
    let mut queue: VecDeque<(usize, usize)> = VecDeque::new();
    let mut pending = roots.into_iter();
    let mut unplaced = order.iter().copied();
    loop {
        let next_root = pending.next().or_else(|| {
            unplaced
                .by_ref()
                .find(|&i| !placed[i])
                .map(|i| (i, RootMark::Cycle))
        });
        let Some((root, mark)) = next_root else { break };
        if placed[root] {
            continue;
        }
        placed[root] = true;
        all_roots.push((root, mark));
        queue.push_back((root, 0));
        while let Some((node, depth)) = queue.pop_front() {
            visit_order.push(node);
            for &child in &children[node] {
                if placed[child] {
                    continue;
                }
                placed[child] = true;
                if depth + 1 >= MAX_DEPTH {
                    all_roots.push((child, RootMark::DepthLimited));
                    queue.push_back((child, 0));
                } else {
                    kept[node].push(child);
                    queue.push_back((child, depth + 1));
                }
            }
        }
    }
    // Bottom-up: children are visited after their parents.
    let mut built: Vec<Option<TreeNode>> = (0..spans.len()).map(|_| None).collect();
    for &node in visit_order.iter().rev() {
        let span = &spans[node];
        built[node] = Some(TreeNode {
            span_id: span.span_id.to_hex(),
            duplicate: duplicate[node],
            children: kept[node].iter().filter_map(|&c| built[c].take()).collect(),
            ..TreeNode::default()
        });
    }
    all_roots.sort_by_key(|&(i, _)| (spans[i].start_time_unix_nano, i));
    all_roots
        .into_iter()
        .filter_map(|(i, mark)| {
            let mut node = built[i].take()?;
            node.orphan = mark == RootMark::Orphan;
            node.depth_limited = mark == RootMark::DepthLimited;
            node.cycle = mark == RootMark::Cycle;
            node.parent_span_id = spans[i].parent_span_id.map(|p| p.to_hex());
            Some(node)
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn id(n: u64) -> SpanId {
        SpanId::from_bytes(n.to_be_bytes())
    }

    fn link(span: u64, parent: Option<u64>, start: u64) -> SpanLink {
        SpanLink {
            span_id: id(span),
            parent_span_id: parent.map(id),
            start_time_unix_nano: start,
        }
    }

    /// `span(child, child...)` with marks, for readable assertions.
    fn shape(nodes: &[TreeNode]) -> String {
        let mut out = Vec::new();
        for n in nodes {
            let span = u64::from_str_radix(&n.span_id, 16).unwrap();
            let mut text = span.to_string();
            for (flag, mark) in [
                (n.orphan, "!orphan"),
                (n.depth_limited, "!deep"),
                (n.cycle, "!cycle"),
                (n.duplicate, "!dup"),
            ] {
                if flag {
                    text.push_str(mark);
                }
            }
            if !n.children.is_empty() {
                text.push_str(&format!("({})", shape(&n.children)));
            }
            out.push(text);
        }
        out.join(" ")
    }

    fn count(nodes: &[TreeNode]) -> usize {
        let mut total = 0;
        let mut stack: Vec<&TreeNode> = nodes.iter().collect();
        while let Some(n) = stack.pop() {
            total += 1;
            stack.extend(n.children.iter());
        }
        total
    }

    #[test]
    fn roots_and_children_by_start_time() {
        let spans = [
            link(3, Some(1), 30),
            link(1, None, 10),
            link(2, Some(1), 20),
            link(4, Some(2), 25),
            link(9, None, 5),
        ];
        assert_eq!(shape(&build(&spans)), "9 1(2(4) 3)");
    }

    #[test]
    fn orphans_are_marked_roots() {
        let spans = [link(1, None, 10), link(2, Some(77), 5), link(3, Some(2), 6)];
        let tree = build(&spans);
        assert_eq!(shape(&tree), "2!orphan(3) 1");
        assert_eq!(
            tree[0].parent_span_id.as_deref(),
            Some(id(77).to_hex().as_str())
        );
        let json = serde_json::to_value(&tree).unwrap();
        assert_eq!(json[0]["orphan"], true);
        assert!(json[1].get("orphan").is_none());
    }

    #[test]
    fn duplicates_and_cycles_are_placed_once() {
        // 5 appears twice; 6 -> 7 -> 6 is a cycle; 8 is its own parent.
        let spans = [
            link(1, None, 1),
            link(5, Some(1), 2),
            link(5, Some(1), 3),
            link(2, Some(5), 4),
            link(6, Some(7), 5),
            link(7, Some(6), 6),
            link(10, Some(7), 7),
            link(8, Some(8), 8),
        ];
        let tree = build(&spans);
        assert_eq!(shape(&tree), "1(5(2) 5!dup) 6!cycle(7(10)) 8!cycle");
        assert_eq!(count(&tree), spans.len());
    }

    #[test]
    fn a_deep_chain_is_cut_into_bounded_pieces() {
        let n = 100_000u64;
        let spans: Vec<SpanLink> = (0..n)
            .map(|i| link(i + 1, if i == 0 { None } else { Some(i) }, i))
            .collect();
        let tree = build(&spans);
        assert_eq!(count(&tree), n as usize);
        assert_eq!(tree.len(), (n as usize).div_ceil(MAX_DEPTH));
        assert!(!tree[0].depth_limited && tree[1].depth_limited);
        let mut depth = 0;
        let mut node = &tree[0];
        while let Some(child) = node.children.first() {
            depth += 1;
            node = child;
        }
        assert_eq!(depth, MAX_DEPTH - 1);
        // Serialising it recurses at most MAX_DEPTH levels.
        assert!(serde_json::to_string(&tree).is_ok());
        // A long cycle too.
        let ring: Vec<SpanLink> = (0..n).map(|i| link(i, Some((i + 1) % n), i)).collect();
        let tree = build(&ring);
        assert_eq!(count(&tree), n as usize);
        assert!(tree[0].cycle);
    }

    #[test]
    fn empty() {
        assert!(build(&[]).is_empty());
    }
}
