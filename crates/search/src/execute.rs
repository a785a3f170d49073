//! Running a query over a store snapshot.
//!
//! 1. The query's necessary conditions become a store pre-filter
//!    ([`Pushdown`]): the time range always, plus the service name and
//!    dedicated-column equalities when the query implies them. Scans decode
//!    only the columns the query reads ([`projection`]).
//! 2. The snapshot's units are scanned newest first; each span the store
//!    returns is checked with [`Query::matches_span`], and the trace ids of
//!    those that pass are the candidates, in the order found. A unit hands
//!    over a trace's spans together, so a scan stops at the first span of a
//!    new candidate once enough candidates wait (the traces still needed,
//!    then eight times more on a later pass), and resumes past the traces
//!    it took if they do not fill the limit.
//! 3. Candidates are evaluated until `limit` traces match. A query that does
//!    not need the whole trace (one spanset filter and a pipeline) is first
//!    evaluated on the spans that passed its filter; only the traces that
//!    match are fetched whole (root span, duration, spans in other units).
//!    A query that does (structural operators, several spansets,
//!    trace-level intrinsics) reads the unit once for all its candidates
//!    when they are many or dense, and looks a trace up by id across units
//!    when they are few, or when another unit may hold part of the trace:
//!    at most `max_candidate_traces` lookups, beyond which the result is
//!    marked partial.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tracewarden_model::{SpanRecord, StatusCode, Trace, TraceId};
use tracewarden_store::{
    DedicatedColumn, ScanUnit, Snapshot, SpanFilter, SpanProjection, Store, StoreError,
};
use tracewarden_traceql::{AttributeScope, Field, Intrinsic, Query, SpanSet, Static, TraceView};

use crate::SearchError;
use crate::pushdown::Pushdown;
use crate::request::SearchRequest;
use crate::result::{
    MatchedSpan, MatchedSpanSet, SearchMetrics, SearchResult, ServiceStats, TraceMatch,
};

/// Matching spans kept in memory at most while scanning for a query that
/// does not need whole traces; beyond it the search stops and says so.
pub const MAX_BUFFERED_SPANS: usize = 1_000_000;

/// Runs `request` over everything `store` holds now. Blocking: it reads
/// segment files (from async code, use `spawn_blocking`).
pub fn search(store: &Store, request: &SearchRequest) -> Result<SearchResult, SearchError> {
    search_snapshot(&store.snapshot(), request)
}

/// Runs `request` over one snapshot of the store.
pub fn search_snapshot(
    snapshot: &Snapshot,
    request: &SearchRequest,
) -> Result<SearchResult, SearchError> {
    let query = &request.query;
    let whole_trace = query.needs_whole_trace();
    let pushdown = Pushdown::choose(&query.required_conditions());
    let projection = projection(query);
    let filter = pushdown.filter(request.start_unix_nano, request.end_unix_nano);

    let mut metrics = SearchMetrics::default();
    // Trace ids in the order first found (newest units first), and for
    // single-filter queries the spans found per trace.
    let mut candidates: Vec<TraceId> = Vec::new();
    let mut found: HashMap<TraceId, Vec<SpanRecord>> = HashMap::new();
    let mut buffered = 0usize;
    let mut next_candidate = 0usize;
    let mut matches: Vec<TraceMatch> = Vec::new();
    // Whole-trace candidates read in bulk that other units may also hold.
    let mut deferred: Vec<TraceId> = Vec::new();

    // Units a whole-trace query must read to their end, with the traces
    // already taken from each: read in parallel after the others.
    let mut exhaustive: Vec<(usize, HashSet<TraceId>)> = Vec::new();

    let units = snapshot.units();
    'units: for (unit_index, unit) in units.iter().enumerate() {
        if !unit.may_overlap(request.start_unix_nano, request.end_unix_nano) {
            metrics.skipped_units += 1;
            continue;
        }
        metrics.scanned_units += 1;
        if whole_trace && !exhaustive.is_empty() {
            // Early passes did not fill the limit in a newer unit: matches
            // are rare, read this one whole too.
            exhaustive.push((unit_index, HashSet::new()));
            continue;
        }
        // Every unit hands over the spans of one trace together (segments
        // are sorted by trace id, memory tiers keep a trace's spans in one
        // entry). So a scan may stop at the first span of a new candidate
        // trace once enough candidates wait to fill the limit: every trace
        // before it is complete in this unit. If evaluating them does not
        // fill the limit, the unit is scanned again, to the end, skipping
        // the traces already taken from it.
        let mut taken_from_unit: HashSet<TraceId> = HashSet::new();
        // Candidates wanted before a pass may stop early: the traces still
        // needed, then eight times more on each further pass, then none (the
        // pass reads the unit to its end).
        let needed = request.limit.saturating_sub(matches.len());
        let mut stop_after = Some(needed).filter(|_| request.early_passes > 0);
        let mut passes = 0;
        loop {
            if whole_trace && stop_after.is_none() {
                exhaustive.push((unit_index, taken_from_unit));
                break;
            }
            let mut stopped_early = false;
            let mut pass_inspected = 0u64;
            let mut overflow = false;
            let mut current: Option<TraceId> = None;
            // A break is recorded in `stopped_early` or `overflow`.
            let scanned = unit.for_each_span_projected(&filter, projection, &mut |record| {
                metrics.inspected_spans += 1;
                pass_inspected += 1;
                let trace_id = record.span.trace_id;
                if !taken_from_unit.is_empty() && taken_from_unit.contains(&trace_id) {
                    return ControlFlow::Continue(());
                }
                if !query.matches_span(&record) {
                    return ControlFlow::Continue(());
                }
                if current != Some(trace_id) {
                    if let Some(previous) = current {
                        taken_from_unit.insert(previous);
                    }
                    current = Some(trace_id);
                    if let Some(wanted) = stop_after
                        && !found.contains_key(&trace_id)
                        && candidates.len() - next_candidate >= wanted
                    {
                        stopped_early = true;
                        return ControlFlow::Break(());
                    }
                }
                let spans = match found.entry(trace_id) {
                    Entry::Vacant(entry) => {
                        candidates.push(trace_id);
                        entry.insert(Vec::new())
                    }
                    Entry::Occupied(entry) => entry.into_mut(),
                };
                if !whole_trace {
                    spans.push(record.into_owned());
                    buffered += 1;
                    if buffered >= MAX_BUFFERED_SPANS {
                        overflow = true;
                        return ControlFlow::Break(());
                    }
                }
                ControlFlow::Continue(())
            });
            if let Err(error) = scanned {
                // One damaged segment does not hide the others; the result
                // says what it could not read.
                unreadable(&mut metrics, unit, &error);
                break;
            }
            if overflow {
                metrics.partial = Some(format!(
                    "stopped after {MAX_BUFFERED_SPANS} matching spans; narrow the query or the time range"
                ));
            }

            // Many whole-trace candidates: read this unit once rather than
            // look each trace up.
            let pending = candidates.len() - next_candidate;
            if whole_trace
                && pending > 0
                && (pending >= BULK_CANDIDATES
                    || pass_inspected / pending as u64 <= SPANS_PER_LOOKUP)
            {
                let mut local = match bulk_read(
                    unit,
                    &candidates[next_candidate..],
                    projection,
                    &mut metrics,
                ) {
                    Ok(local) => local,
                    Err(error) => {
                        unreadable(&mut metrics, unit, &error);
                        HashMap::new()
                    }
                };
                while next_candidate < candidates.len()
                    && matches.len() < request.limit
                    && !local.is_empty()
                {
                    let Some(&trace_id) = candidates.get(next_candidate) else {
                        break;
                    };
                    next_candidate += 1;
                    // Other units may hold more of it: it is assembled from
                    // every unit at the end, with the others like it.
                    if held_elsewhere(&units, unit_index, trace_id)? {
                        deferred.push(trace_id);
                        continue;
                    }
                    metrics.inspected_traces += 1;
                    let spans = local.remove(&trace_id).unwrap_or_default();
                    if let Some(found) = evaluate_spans(request, trace_id, spans) {
                        matches.push(whole_match(
                            snapshot,
                            request,
                            projection,
                            found,
                            &mut metrics,
                        ));
                    }
                }
            }

            // Evaluate the candidates found so far, oldest first.
            while next_candidate < candidates.len() && matches.len() < request.limit {
                let Some(&trace_id) = candidates.get(next_candidate) else {
                    break;
                };
                next_candidate += 1;
                if !whole_trace {
                    // Cheap first check on the spans found so far: a trace
                    // whose matching spans yield nothing is not fetched.
                    let mut spans = found
                        .get_mut(&trace_id)
                        .map(std::mem::take)
                        .unwrap_or_default();
                    buffered = buffered.saturating_sub(spans.len());
                    sort_by_start(&mut spans);
                    if query.evaluate(&TraceView::new(&spans)).is_empty() {
                        // More of its spans may come from older units.
                        found.insert(trace_id, spans);
                        continue;
                    }
                } else if metrics.looked_up_traces >= request.max_candidate_traces as u64 {
                    metrics.partial = Some(candidate_bound(request));
                    break 'units;
                }
                metrics.inspected_traces += 1;
                metrics.looked_up_traces += 1;
                let Some(trace) = snapshot.trace(trace_id) else {
                    continue;
                };
                if let Some(found) = evaluate_trace(request, &trace, whole_trace) {
                    matches.push(found);
                }
            }
            if matches.len() >= request.limit || metrics.partial.is_some() {
                break 'units;
            }
            if !stopped_early {
                break;
            }
            passes += 1;
            stop_after = stop_after
                .filter(|_| passes < request.early_passes)
                .map(|wanted| wanted.saturating_mul(8));
        }
    }

    if whole_trace
        && !exhaustive.is_empty()
        && matches.len() < request.limit
        && metrics.partial.is_none()
    {
        let evaluated: HashSet<TraceId> = found.keys().copied().collect();
        let outcomes = read_whole_units(
            &units,
            &exhaustive,
            &evaluated,
            request,
            projection,
            request.limit - matches.len(),
        )?;
        for outcome in outcomes {
            if let (Some(error), Some(unit)) = (&outcome.unreadable, units.get(outcome.unit_index))
            {
                unreadable(&mut metrics, unit, error);
            }
            metrics.inspected_spans += outcome.inspected_spans;
            metrics.inspected_traces += outcome.inspected_traces;
            deferred.extend(outcome.deferred);
            for found in outcome.matches {
                if matches.len() < request.limit {
                    matches.push(whole_match(
                        snapshot,
                        request,
                        projection,
                        found,
                        &mut metrics,
                    ));
                }
            }
        }
    }

    // Whole-trace candidates other units may also hold part of: read every
    // unit once per chunk of them, gathering their spans.
    if whole_trace && metrics.partial.is_none() {
        // A trace split between two units read whole is deferred by both.
        let mut seen = HashSet::new();
        deferred.retain(|id| seen.insert(*id));
        for chunk in deferred.chunks(ASSEMBLY_CHUNK) {
            if matches.len() >= request.limit {
                break;
            }
            let mut gathered = assemble(&units, chunk, projection, &mut metrics)?;
            for &trace_id in chunk {
                if matches.len() >= request.limit {
                    break;
                }
                metrics.inspected_traces += 1;
                metrics.assembled_traces += 1;
                let spans = gathered.remove(&trace_id).unwrap_or_default();
                if let Some(found) = evaluate_spans(request, trace_id, spans) {
                    matches.push(whole_match(
                        snapshot,
                        request,
                        projection,
                        found,
                        &mut metrics,
                    ));
                }
            }
        }
    }

    // A single-filter trace that matched only once spans from several units
    // were seen is evaluated again on what was gathered.
    if !whole_trace && matches.len() < request.limit && metrics.partial.is_none() {
        for trace_id in candidates {
            if matches.len() >= request.limit {
                break;
            }
            let Some(spans) = found.get_mut(&trace_id) else {
                continue;
            };
            if spans.is_empty() || matches.iter().any(|m| m.trace_id == trace_id) {
                continue;
            }
            sort_by_start(spans);
            if query.evaluate(&TraceView::new(spans)).is_empty() {
                continue;
            }
            metrics.inspected_traces += 1;
            metrics.looked_up_traces += 1;
            if let Some(trace) = snapshot.trace(trace_id)
                && let Some(found) = evaluate_trace(request, &trace, false)
            {
                matches.push(found);
            }
        }
    }

    matches.sort_by(|a, b| {
        b.start_unix_nano
            .cmp(&a.start_unix_nano)
            .then(a.trace_id.cmp(&b.trace_id))
    });
    Ok(SearchResult {
        traces: matches,
        metrics,
    })
}

/// Candidates of one unit from which a whole-trace query reads the unit
/// (up to its last candidate) instead of looking each trace up.
const BULK_CANDIDATES: usize = 256;
/// A lookup by trace id costs about as much as decoding this many spans in
/// a scan (a page of every column of the one row group that may hold the
/// trace, in every segment that may): fewer candidates than one per this
/// many spans scanned are looked up.
const SPANS_PER_LOOKUP: u64 = 1_000;

/// What a scan must decode for `query`: the span's own fields, resource
/// and scope always; a dedicated column only if the query reads its
/// attribute; the generic span attribute column (the largest part of a
/// segment) only if it reads a span attribute that has no dedicated column;
/// events and links only if it reads them; never the renamed originals
/// (TraceQL sees current names).
///
/// A dedicated column holds its attribute only with the column's type (a
/// string; an integer for the status code); a span carrying, say, an
/// integer `client.address` keeps it in the generic column, which this
/// projection leaves out: such a value is seen only by queries that also
/// read a non-dedicated attribute.
fn projection(query: &Query) -> SpanProjection {
    let mut projection = SpanProjection::NONE;
    for field in query.fields() {
        match field {
            Field::Attribute {
                scope: AttributeScope::Span | AttributeScope::Unscoped,
                name,
            } => match DedicatedColumn::from_attribute_key(&name) {
                Some(column) => projection = projection.with_dedicated(column),
                None => projection.attributes = true,
            },
            Field::Attribute {
                scope: AttributeScope::Event,
                ..
            }
            | Field::Intrinsic(Intrinsic::EventName | Intrinsic::EventTimeSinceStart) => {
                projection.events = true;
            }
            Field::Attribute {
                scope: AttributeScope::Link,
                ..
            }
            | Field::Intrinsic(Intrinsic::LinkTraceId | Intrinsic::LinkSpanId) => {
                projection.links = true;
            }
            _ => {}
        }
    }
    projection
}

/// Every span of `unit` belonging to one of `traces`, by trace. A unit
/// hands over a trace's spans together, so the read stops once it has
/// passed the last of them.
fn bulk_read(
    unit: &ScanUnit,
    traces: &[TraceId],
    projection: SpanProjection,
    metrics: &mut SearchMetrics,
) -> Result<HashMap<TraceId, Vec<SpanRecord>>, StoreError> {
    let wanted: HashSet<TraceId> = traces.iter().copied().collect();
    let mut left = wanted.len();
    let mut current: Option<TraceId> = None;
    let mut local: HashMap<TraceId, Vec<SpanRecord>> = HashMap::with_capacity(wanted.len());
    // No time bound: a trace's spans outside the range count too.
    let _ = unit.for_each_span_projected(&SpanFilter::default(), projection, &mut |record| {
        metrics.inspected_spans += 1;
        let trace_id = record.span.trace_id;
        if current != Some(trace_id) {
            if current.is_some_and(|previous| wanted.contains(&previous)) {
                left -= 1;
                if left == 0 {
                    return ControlFlow::Break(());
                }
            }
            current = Some(trace_id);
        }
        if wanted.contains(&trace_id) {
            local.entry(trace_id).or_default().push(record.into_owned());
        }
        ControlFlow::Continue(())
    })?;
    Ok(local)
}

/// What reading one unit whole found.
#[derive(Default)]
struct UnitOutcome {
    unit_index: usize,
    unreadable: Option<StoreError>,
    matches: Vec<TraceMatch>,
    deferred: Vec<TraceId>,
    inspected_spans: u64,
    inspected_traces: u64,
}

/// Reads `exhaustive` units whole, on up to as many threads as there are
/// cores, each unit once: every span of it (no filter: a candidate's spans
/// outside the time range count), a trace being a candidate when one of its
/// spans in the range passes [`Query::matches_span`]. Candidates that no
/// other unit may hold are evaluated there; the others are returned as
/// deferred. Stops once `wanted` matches are found.
fn read_whole_units(
    units: &[ScanUnit],
    exhaustive: &[(usize, HashSet<TraceId>)],
    evaluated: &HashSet<TraceId>,
    request: &SearchRequest,
    projection: SpanProjection,
    wanted: usize,
) -> Result<Vec<UnitOutcome>, SearchError> {
    let next = AtomicUsize::new(0);
    let found = AtomicUsize::new(0);
    let threads = std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(1)
        .clamp(1, 4)
        .min(exhaustive.len());
    let work = || -> Result<Vec<UnitOutcome>, SearchError> {
        let mut outcomes = Vec::new();
        loop {
            if found.load(Ordering::Relaxed) >= wanted {
                return Ok(outcomes);
            }
            let Some((unit_index, taken)) = exhaustive.get(next.fetch_add(1, Ordering::Relaxed))
            else {
                return Ok(outcomes);
            };
            let outcome = read_whole_unit(
                units,
                *unit_index,
                taken,
                evaluated,
                request,
                projection,
                &found,
                wanted,
            )?;
            outcomes.push(outcome);
        }
    };
    let results: Vec<Result<Vec<UnitOutcome>, SearchError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (1..threads).map(|_| scope.spawn(work)).collect();
        let mut results = vec![work()];
        for handle in handles {
            results.push(handle.join().unwrap_or_else(|_| {
                Err(SearchError::Request("a search thread panicked".to_string()))
            }));
        }
        results
    });
    let mut outcomes = Vec::new();
    for result in results {
        outcomes.extend(result?);
    }
    Ok(outcomes)
}

#[allow(clippy::too_many_arguments)]
fn read_whole_unit(
    units: &[ScanUnit],
    unit_index: usize,
    taken: &HashSet<TraceId>,
    evaluated: &HashSet<TraceId>,
    request: &SearchRequest,
    projection: SpanProjection,
    found: &AtomicUsize,
    wanted: usize,
) -> Result<UnitOutcome, SearchError> {
    let mut outcome = UnitOutcome {
        unit_index,
        ..UnitOutcome::default()
    };
    let Some(unit) = units.get(unit_index) else {
        return Ok(outcome);
    };
    let query = &request.query;
    // The spans of the trace being read (a unit hands a trace's spans over
    // together), kept only if one of them makes the trace a candidate.
    let mut current: Option<TraceId> = None;
    let mut current_spans: Vec<SpanRecord> = Vec::new();
    let mut current_is_candidate = false;
    let mut candidates: Vec<(TraceId, Vec<SpanRecord>)> = Vec::new();
    let in_range = |start: u64| start >= request.start_unix_nano && start < request.end_unix_nano;
    let mut inspected = 0;
    let scanned = unit.for_each_span_projected(&SpanFilter::default(), projection, &mut |record| {
        inspected += 1;
        let trace_id = record.span.trace_id;
        if current != Some(trace_id) {
            if let Some(previous) = current.take()
                && current_is_candidate
            {
                candidates.push((previous, std::mem::take(&mut current_spans)));
            }
            current_spans.clear();
            current_is_candidate = false;
            current = Some(trace_id);
        }
        if taken.contains(&trace_id) || evaluated.contains(&trace_id) {
            return ControlFlow::Continue(());
        }
        if !current_is_candidate
            && in_range(record.span.start_time_unix_nano)
            && query.matches_span(&record)
        {
            current_is_candidate = true;
        }
        current_spans.push(record.into_owned());
        ControlFlow::Continue(())
    });
    outcome.inspected_spans = inspected;
    if let Err(error) = scanned {
        outcome.unreadable = Some(error);
        return Ok(outcome);
    }
    if let Some(last) = current
        && current_is_candidate
    {
        candidates.push((last, current_spans));
    }
    for (trace_id, spans) in candidates {
        if found.load(Ordering::Relaxed) >= wanted {
            break;
        }
        if held_elsewhere(units, unit_index, trace_id)? {
            outcome.deferred.push(trace_id);
            continue;
        }
        outcome.inspected_traces += 1;
        if let Some(matched) = evaluate_spans(request, trace_id, spans) {
            found.fetch_add(1, Ordering::Relaxed);
            outcome.matches.push(matched);
        }
    }
    Ok(outcome)
}

/// Whether a unit other than `unit_index` may hold spans of the trace.
fn held_elsewhere(
    units: &[ScanUnit],
    unit_index: usize,
    trace_id: TraceId,
) -> Result<bool, SearchError> {
    for (other_index, other) in units.iter().enumerate() {
        // A bloom filter that cannot be read rules nothing out.
        if other_index != unit_index && other.may_contain_trace(trace_id).unwrap_or(true) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Notes a unit that could not be read in the result's metrics.
fn unreadable(metrics: &mut SearchMetrics, unit: &ScanUnit, error: &StoreError) {
    let what = match unit.segment_id() {
        Some(id) => format!("segment {id}: {error}"),
        None => format!("memory tier: {error}"),
    };
    tracing::error!(%what, "a search could not read part of the store; its result may be incomplete");
    if !metrics.unreadable.contains(&what) {
        metrics.unreadable.push(what);
    }
}

/// Evaluates the query on a trace's spans gathered from scans.
fn evaluate_spans(
    request: &SearchRequest,
    trace_id: TraceId,
    mut spans: Vec<SpanRecord>,
) -> Option<TraceMatch> {
    sort_by_start(&mut spans);
    let trace = Trace {
        trace_id,
        spans,
        logs: Vec::new(),
    };
    evaluate_trace(request, &trace, true)
}

/// Candidate traces assembled from every unit in one pass over them.
const ASSEMBLY_CHUNK: usize = 500_000;

/// Every span of `traces` in every unit (decoding what `projection` asks
/// for), by trace: each unit is read once, its row groups pruned by the
/// range of the ids and its rows filtered by the set before decoding.
fn assemble(
    units: &[ScanUnit],
    traces: &[TraceId],
    projection: SpanProjection,
    metrics: &mut SearchMetrics,
) -> Result<HashMap<TraceId, Vec<SpanRecord>>, SearchError> {
    let filter = SpanFilter {
        trace_ids: Some(Arc::new(traces.iter().copied().collect())),
        ..SpanFilter::default()
    };
    let mut gathered: HashMap<TraceId, Vec<SpanRecord>> = HashMap::with_capacity(traces.len());
    for unit in units {
        let mut inspected = 0;
        let scanned = unit.for_each_span_projected(&filter, projection, &mut |record| {
            inspected += 1;
            gathered
                .entry(record.span.trace_id)
                .or_default()
                .push(record.into_owned());
            ControlFlow::Continue(())
        });
        metrics.inspected_spans += inspected;
        if let Err(error) = scanned {
            unreadable(metrics, unit, &error);
        }
    }
    Ok(gathered)
}

/// A match found on projected spans, as the result shows it: with whole
/// spans, read by id (a few traces at most: the limit).
fn whole_match(
    snapshot: &Snapshot,
    request: &SearchRequest,
    projection: SpanProjection,
    found: TraceMatch,
    metrics: &mut SearchMetrics,
) -> TraceMatch {
    if projection == SpanProjection::ALL {
        return found;
    }
    metrics.looked_up_traces += 1;
    snapshot
        .trace(found.trace_id)
        .and_then(|whole| evaluate_trace(request, &whole, true))
        .unwrap_or(found)
}

fn candidate_bound(request: &SearchRequest) -> String {
    format!(
        "looked up {} candidate traces by id, the most for one query; narrow the query or the time range",
        request.max_candidate_traces
    )
}

/// Evaluates the query on a whole trace; `None` when it yields nothing or
/// the trace's duration is outside the request's bounds.
fn evaluate_trace(request: &SearchRequest, trace: &Trace, whole_trace: bool) -> Option<TraceMatch> {
    let start = trace
        .spans
        .iter()
        .map(|r| r.span.start_time_unix_nano)
        .min()
        .unwrap_or(0);
    let end = trace
        .spans
        .iter()
        .map(|r| r.span.end_time_unix_nano.max(r.span.start_time_unix_nano))
        .max()
        .unwrap_or(0);
    let duration = end.saturating_sub(start);
    if !request.duration_ok(duration) {
        return None;
    }
    // A single-filter query is evaluated over the spans passing its filter,
    // which is what it means on the whole trace.
    let filtered: Vec<SpanRecord>;
    let spans: &[SpanRecord] = if whole_trace {
        &trace.spans
    } else {
        filtered = trace
            .spans
            .iter()
            .filter(|r| request.query.matches_span(r))
            .cloned()
            .collect();
        &filtered
    };
    let spansets = request.query.evaluate(&TraceView::new(spans));
    if spansets.is_empty() {
        return None;
    }
    let root = trace.spans.iter().find(|r| r.span.is_root());
    Some(TraceMatch {
        trace_id: trace.trace_id,
        root_service_name: root.map(|r| r.resource.service_name().to_string()),
        root_span_name: root.map(|r| r.span.name.to_string()),
        start_unix_nano: start,
        duration_nanos: duration,
        span_count: trace.spans.len(),
        service_stats: service_stats(&trace.spans),
        spansets: spansets
            .into_iter()
            .map(|set| matched_spanset(set, spans, request.spans_per_spanset))
            .collect(),
    })
}

fn matched_spanset(set: SpanSet, spans: &[SpanRecord], limit: usize) -> MatchedSpanSet {
    let matched = set.spans.len();
    let mut selected: HashMap<usize, Vec<(String, Static)>> = set.selected.into_iter().collect();
    // Indices are in start-time order because the spans are.
    let listed = set
        .spans
        .iter()
        .take(limit)
        .filter_map(|&i| {
            spans.get(i).map(|record| MatchedSpan {
                record: record.clone(),
                selected: selected.remove(&i).unwrap_or_default(),
            })
        })
        .collect();
    let mut attributes = set.by;
    attributes.extend(set.aggregates);
    MatchedSpanSet {
        spans: listed,
        matched,
        attributes,
    }
}

fn service_stats(spans: &[SpanRecord]) -> Vec<(String, ServiceStats)> {
    let mut stats: Vec<(String, ServiceStats)> = Vec::new();
    for record in spans {
        let service = record.resource.service_name();
        let entry = match stats.iter_mut().find(|(name, _)| name == service) {
            Some((_, entry)) => entry,
            None => {
                stats.push((service.to_string(), ServiceStats::default()));
                match stats.last_mut() {
                    Some((_, entry)) => entry,
                    None => continue,
                }
            }
        };
        entry.span_count += 1;
        if record.span.status.code == StatusCode::Error {
            entry.error_count += 1;
        }
    }
    stats.sort_by(|a, b| a.0.cmp(&b.0));
    stats
}

fn sort_by_start(spans: &mut [SpanRecord]) {
    spans.sort_by_key(|r| (r.span.start_time_unix_nano, r.span.span_id));
}
