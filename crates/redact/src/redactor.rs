//! The redactor: the compiled rules, applied to every batch in one pass.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use aho_corasick::{AhoCorasick, MatchKind};
use tracewarden_model::{AnyValue, Batch, KeyValue, Resource, Scope, Span, Str};

use crate::clean::{self, CleanValues};
use crate::config::RedactionConfig;
use crate::detector::{Detector, Profile};
use crate::error::{RedactError, Result};
use crate::hash::HashKey;
use crate::rule::{self, Action, Rule};

/// Where the hash key lives when the configuration names no file.
pub const DEFAULT_KEY_FILE: &str = "redaction.key";

/// Distinct keys whose decision is remembered; beyond, decisions are
/// computed each time (keys are chosen by senders: bounded memory).
const KEY_CACHE_CAPACITY: usize = 8192;

/// Rule sets as bit masks over rule indices.
pub(crate) type RuleMask = u64;

/// What the rules say about an attribute key.
#[derive(Clone, Copy, Debug, Default)]
struct KeyDecision {
    /// A rule acting on the whole value.
    whole: Option<u8>,
    /// Detector rules that run on the value.
    detectors: RuleMask,
}

/// A multiply-rotate hash over 8-byte words (as rustc's FxHash): keys are
/// short and hashed once per attribute, and the cache is bounded, so
/// collisions forced by a sender cost it little.
#[derive(Default)]
pub(crate) struct WordHash(u64);

impl WordHash {
    const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(Self::SEED);
    }
}

impl Hasher for WordHash {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let mut tail = [0u8; 8];
        let rest = chunks.remainder();
        if !rest.is_empty() {
            tail[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(tail));
        }
    }

    fn write_u8(&mut self, byte: u8) {
        self.add(u64::from(byte));
    }
}

type KeyCache = HashMap<Str, KeyDecision, BuildHasherDefault<WordHash>>;

/// The compiled rules, shared by every ingest task.
pub struct Redactor {
    rules: Vec<Rule>,
    marker: String,
    key: Option<HashKey>,
    /// Detector rules without a key pattern: they run on every string.
    everywhere: RuleMask,
    /// Rules whose detector scans values itself.
    scanning: RuleMask,
    /// The triggers matched in any case (parameter names, `Bearer`).
    folded: Option<Triggers>,
    /// The triggers matched exactly (`eyJ`, `AKIA`, `ghp_`...).
    exact: Option<Triggers>,
    /// The shortest string any detector matches.
    min_length: usize,
    /// The detector rules (cards aside) each set of byte classes admits.
    admitted_by_class: Vec<RuleMask>,
    /// The rules of the card detector, admitted by a long digit run.
    card_rules: RuleMask,
    cache: RwLock<KeyCache>,
    counts: Vec<AtomicU64>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redactor")
            .field("rules", &self.rule_names())
            .finish_non_exhaustive()
    }
}

impl Redactor {
    /// Compiles `config`; `key` is required when a rule hashes.
    pub fn new(config: &RedactionConfig, key: Option<HashKey>) -> Result<Redactor> {
        let rules = rule::compile(config)?;
        if config.marker.is_empty() {
            return Err(RedactError::Config(
                "`marker` must not be empty".to_string(),
            ));
        }
        if let Some(rule) = rules
            .iter()
            .find(|r| matches!(r.action, Action::Hash(_)))
            .filter(|_| key.is_none())
        {
            return Err(RedactError::rule(
                &rule.name,
                "hashes, but no hash key was given",
            ));
        }
        let mut everywhere = 0;
        let mut scanning = 0;
        let mut in_use: Vec<Detector> = Vec::new();
        for (i, rule) in rules.iter().enumerate() {
            let Some(detector) = rule.detector else {
                continue;
            };
            let bit = 1 << i;
            if rule.keys.is_none() {
                everywhere |= bit;
            }
            if detector.scans() {
                scanning |= bit;
            } else {
                if !in_use.contains(&detector) {
                    in_use.push(detector);
                }
            }
        }
        let folded = Triggers::build(&rules, &in_use, true)?;
        let exact = Triggers::build(&rules, &in_use, false)?;
        // `pwd=x` and `a@b.c` are the shortest secrets found in a value.
        let min_length = 5;
        let mut card_rules = 0;
        let mut admitted_by_class = vec![0; usize::from(crate::detector::class::CLASSES) + 1];
        for (i, rule) in rules.iter().enumerate() {
            match rule.detector {
                Some(Detector::PaymentCard) => card_rules |= 1 << i,
                Some(detector) => {
                    let required = usize::from(detector.required());
                    for (present, mask) in admitted_by_class.iter_mut().enumerate() {
                        if present & required == required {
                            *mask |= 1 << i;
                        }
                    }
                }
                None => {}
            }
        }
        let counts = rules.iter().map(|_| AtomicU64::new(0)).collect();
        Ok(Redactor {
            rules,
            marker: config.marker.clone(),
            key,
            everywhere,
            scanning,
            folded,
            exact,
            min_length,
            admitted_by_class,
            card_rules,
            cache: RwLock::new(KeyCache::default()),
            counts,
        })
    }

    /// The redactor of a server configuration, or `None` when redaction is
    /// off. The hash key is read from `hash_key_file`, else from (or
    /// created in) `data_dir/redaction.key`, only when a rule hashes.
    pub fn from_config(config: &RedactionConfig, data_dir: &Path) -> Result<Option<Redactor>> {
        if !config.enabled {
            return Ok(None);
        }
        let hashes = rule::compile(config)?
            .iter()
            .any(|r| matches!(r.action, Action::Hash(_)));
        let key = if hashes {
            let path = config
                .hash_key_file
                .clone()
                .unwrap_or_else(|| data_dir.join(DEFAULT_KEY_FILE));
            Some(HashKey::load_or_create(&path)?)
        } else {
            None
        };
        Redactor::new(config, key).map(Some)
    }

    /// The rules in force, in the order they are tried.
    pub fn rule_names(&self) -> Vec<&str> {
        self.rules.iter().map(|r| r.name.as_str()).collect()
    }

    /// Redactions made since start, per rule (values masked or hashed,
    /// attributes dropped), in rule order.
    pub fn counts(&self) -> Vec<(&str, u64)> {
        self.rules
            .iter()
            .zip(&self.counts)
            .map(|(r, c)| (r.name.as_str(), c.load(Ordering::Relaxed)))
            .collect()
    }

    /// Redacts every span and log record of `batch` in place, with their
    /// resources and scopes. Allocates nothing when nothing matches (beyond
    /// remembering the decision for keys seen the first time).
    pub fn batch(&self, batch: &mut Batch) {
        self.run(|pass| {
            pass.clean = Some(CleanValues::default());
            for rs in &mut batch.resource_spans {
                pass.shared(&mut rs.resource, Pass::resource);
                for ss in &mut rs.scope_spans {
                    pass.shared(&mut ss.scope, Pass::scope);
                    for span in &mut ss.spans {
                        pass.span(span);
                    }
                }
            }
            for rl in &mut batch.resource_logs {
                pass.shared(&mut rl.resource, Pass::resource);
                for sl in &mut rl.scope_logs {
                    pass.shared(&mut sl.scope, Pass::scope);
                    for record in &mut sl.log_records {
                        pass.attributes(&mut record.attributes);
                        pass.attributes(&mut record.original_attributes);
                        if pass.value(&mut record.body, self.everywhere) {
                            record.body = AnyValue::Empty;
                        }
                        pass.text_field(&mut record.event_name);
                    }
                }
            }
        });
    }

    /// Redacts an attribute list as span attributes are: key rules on the
    /// keys (nested key-value lists too), detectors on the values; drops
    /// what a `drop` rule matched. Returns the redactions made. (The
    /// payload store runs JSON bodies through this, objects as lists.)
    pub fn attributes(&self, attributes: &mut Vec<KeyValue>) -> u64 {
        self.run(|pass| pass.attributes(attributes))
    }

    /// Redacts free text as a log body is: the detectors that run on every
    /// value. Returns the redactions made and whether a `drop` rule found
    /// something (the text is then left as it is: the caller discards it).
    pub fn text(&self, text: &mut Str) -> (u64, bool) {
        let mut drop = false;
        let edits = self.run(|pass| drop = pass.text(text, self.everywhere));
        (edits, drop)
    }

    /// Runs `f` with one pass, then adds its counts to the totals and
    /// remembers the key decisions it made. Returns the redactions made.
    fn run(&self, f: impl FnOnce(&mut Pass<'_>)) -> u64 {
        let (fresh, edits) = {
            let cache = match self.cache.read() {
                Ok(cache) => cache,
                Err(poisoned) => poisoned.into_inner(),
            };
            let mut pass = Pass::new(self, &cache);
            f(&mut pass);
            for (rule, count) in pass.counts.iter().enumerate() {
                if *count > 0
                    && let Some(total) = self.counts.get(rule)
                {
                    total.fetch_add(*count, Ordering::Relaxed);
                }
            }
            (pass.fresh, pass.edits)
        };
        if !fresh.is_empty() {
            let mut cache = match self.cache.write() {
                Ok(cache) => cache,
                Err(poisoned) => poisoned.into_inner(),
            };
            for (key, decision) in fresh {
                if cache.len() >= KEY_CACHE_CAPACITY {
                    break;
                }
                cache.insert(key, decision);
            }
        }
        edits
    }

    /// The detector rules that can match a value of `profile`.
    fn admitted(&self, profile: Profile) -> RuleMask {
        let by_class = self
            .admitted_by_class
            .get(usize::from(profile.present))
            .copied()
            .unwrap_or(0);
        if profile.card_run {
            by_class | self.card_rules
        } else {
            by_class
        }
    }

    fn decide(&self, key: &str) -> KeyDecision {
        let mut decision = KeyDecision {
            whole: None,
            detectors: self.everywhere,
        };
        for (i, rule) in self.rules.iter().enumerate() {
            let Some(keys) = &rule.keys else { continue };
            if !keys.matches(key) {
                continue;
            }
            match rule.detector {
                None => {
                    decision.whole = u8::try_from(i).ok();
                    return decision;
                }
                Some(_) => decision.detectors |= 1 << i,
            }
        }
        decision
    }
}

/// One automaton over the triggers of some detectors.
struct Triggers {
    automaton: AhoCorasick,
    /// The detector of each pattern.
    detectors: Vec<Detector>,
    /// The rules using those detectors.
    rules: RuleMask,
}

impl Triggers {
    /// The triggers of the detectors in `in_use` that fold case (or not).
    fn build(rules: &[Rule], in_use: &[Detector], folds_case: bool) -> Result<Option<Triggers>> {
        let mut patterns = Vec::new();
        let mut detectors = Vec::new();
        for &detector in in_use.iter().filter(|d| d.folds_case() == folds_case) {
            for trigger in detector.all_triggers() {
                patterns.push(trigger);
                detectors.push(detector);
            }
        }
        if patterns.is_empty() {
            return Ok(None);
        }
        let rules = rules
            .iter()
            .enumerate()
            .filter(|(_, r)| r.detector.is_some_and(|d| detectors.contains(&d)))
            .fold(0, |mask, (i, _)| mask | 1 << i);
        let mut builder = AhoCorasick::builder();
        builder
            .kind(Some(aho_corasick::AhoCorasickKind::DFA))
            .match_kind(MatchKind::LeftmostLongest);
        if folds_case {
            // Names start with common letters: a prefilter on their first
            // bytes would stop at most bytes.
            builder.ascii_case_insensitive(true).prefilter(false);
        }
        let automaton = builder
            .build(&patterns)
            .map_err(|e| RedactError::Config(format!("cannot build the triggers: {e}")))?;
        Ok(Some(Triggers {
            automaton,
            detectors,
            rules,
        }))
    }
}

/// One hit of a detector in a string.
#[derive(Clone, Copy, Debug)]
struct Hit {
    start: usize,
    end: usize,
    rule: usize,
}

/// The state of redacting one batch.
struct Pass<'a> {
    redactor: &'a Redactor,
    cache: &'a KeyCache,
    /// Decisions computed during this pass, stored in the cache after it.
    fresh: Vec<(Str, KeyDecision)>,
    hits: Vec<Hit>,
    /// The keys and decisions last seen at each attribute position, the
    /// latest first: spans of a batch mostly take one of two shapes (a
    /// server span and the client spans it makes, from one service), so two
    /// keys per position spare most lookups.
    memo: Vec<[(Str, KeyDecision); 2]>,
    /// Per rule; allocated at the first redaction.
    counts: Vec<u64>,
    edits: u64,
    /// Long values found clean, for a pass over a batch (whose spans repeat
    /// them); `None` for a pass over one value or list.
    clean: Option<CleanValues>,
}

/// Attribute positions remembered per pass.
const MEMO_POSITIONS: usize = 64;

/// Decisions computed per pass at most before the rest are computed
/// without being remembered.
const FRESH_PER_PASS: usize = 256;

impl<'a> Pass<'a> {
    fn new(redactor: &'a Redactor, cache: &'a KeyCache) -> Pass<'a> {
        Pass {
            redactor,
            cache,
            fresh: Vec::new(),
            hits: Vec::new(),
            memo: Vec::new(),
            counts: Vec::new(),
            edits: 0,
            clean: None,
        }
    }

    fn count(&mut self, rule: usize) {
        if self.counts.is_empty() {
            self.counts = vec![0; self.redactor.rules.len()];
        }
        if let Some(c) = self.counts.get_mut(rule) {
            *c += 1;
        }
        self.edits += 1;
    }

    /// Redacts a shared resource or scope, copying it only when it changes
    /// and is shared.
    fn shared<T: Clone>(&mut self, shared: &mut Arc<T>, redact: fn(&mut Pass<'a>, &mut T)) {
        if let Some(owned) = Arc::get_mut(shared) {
            redact(self, owned);
            return;
        }
        let before = self.edits;
        let mut copy = (**shared).clone();
        redact(self, &mut copy);
        if self.edits != before {
            *shared = Arc::new(copy);
        }
    }

    fn resource(&mut self, resource: &mut Resource) {
        self.attributes(&mut resource.attributes);
        self.attributes(&mut resource.original_attributes);
    }

    fn scope(&mut self, scope: &mut Scope) {
        self.attributes(&mut scope.attributes);
    }

    fn span(&mut self, span: &mut Span) {
        self.attributes(&mut span.attributes);
        self.attributes(&mut span.original_attributes);
        self.text_field(&mut span.name);
        self.text_field(&mut span.status.message);
        for event in &mut span.events {
            self.text_field(&mut event.name);
            self.attributes(&mut event.attributes);
        }
        for link in &mut span.links {
            self.attributes(&mut link.attributes);
        }
    }

    fn decision(&mut self, key: &Str, position: usize) -> KeyDecision {
        // Spans of a batch mostly repeat a shape or two: a key seen at this
        // position in the lists before is the likely one, and comparing it
        // is cheaper than hashing.
        if let Some([latest, before]) = self.memo.get_mut(position) {
            if latest.0 == *key {
                return latest.1;
            }
            if before.0 == *key {
                std::mem::swap(latest, before);
                return latest.1;
            }
        }
        let decision = self.lookup(key);
        if position < MEMO_POSITIONS {
            if let Some([latest, before]) = self.memo.get_mut(position) {
                *before = std::mem::replace(latest, (key.clone(), decision));
            } else if position == self.memo.len() {
                // Both ways hold the key until a second one comes.
                self.memo
                    .push([(key.clone(), decision), (key.clone(), decision)]);
            }
        }
        decision
    }

    fn lookup(&mut self, key: &Str) -> KeyDecision {
        if let Some(decision) = self.cache.get(key.as_str()) {
            return *decision;
        }
        if let Some((_, decision)) = self.fresh.iter().find(|(k, _)| k == key) {
            return *decision;
        }
        let decision = self.redactor.decide(key);
        if self.fresh.len() < FRESH_PER_PASS {
            self.fresh.push((key.clone(), decision));
        }
        decision
    }

    /// Applies key rules and detectors to each attribute; drops those a
    /// `drop` rule matched.
    fn attributes(&mut self, attributes: &mut Vec<KeyValue>) {
        let mut i = 0;
        while let Some(kv) = attributes.get_mut(i) {
            let decision = self.decision(&kv.key, i);
            let drop = match decision.whole {
                Some(rule) => self.whole(&mut kv.value, usize::from(rule)),
                None => self.value(&mut kv.value, decision.detectors),
            };
            if drop {
                attributes.remove(i);
            } else {
                i += 1;
            }
        }
    }

    /// Applies rule `rule` to all of `value`; true when it is to be dropped.
    fn whole(&mut self, value: &mut AnyValue, rule: usize) -> bool {
        let Some(action) = self.redactor.rules.get(rule).map(|r| r.action) else {
            return false;
        };
        match value {
            AnyValue::Empty => false,
            _ if action == Action::Drop => {
                self.count(rule);
                true
            }
            // Each element of a header's string array keeps its place.
            AnyValue::Array(items) => {
                for item in items {
                    self.whole(item, rule);
                }
                false
            }
            AnyValue::KvList(kvs) => {
                for kv in kvs {
                    self.whole(&mut kv.value, rule);
                }
                false
            }
            AnyValue::Str(s) => {
                let mut out = String::new();
                self.replacement(s, action, &mut out);
                *s = Str::from(out);
                self.count(rule);
                false
            }
            other => {
                let text = other.to_text();
                let mut out = String::new();
                self.replacement(&text, action, &mut out);
                *other = AnyValue::Str(Str::from(out));
                self.count(rule);
                false
            }
        }
    }

    /// Runs the detectors of `mask` over the strings in `value` (and the key
    /// rules over nested key-value lists); true when a `drop` rule found
    /// something.
    fn value(&mut self, value: &mut AnyValue, mask: RuleMask) -> bool {
        match value {
            AnyValue::Str(s) => mask != 0 && self.text(s, mask),
            AnyValue::Array(items) => {
                let mut drop = false;
                for item in items {
                    drop |= self.value(item, mask);
                }
                drop
            }
            AnyValue::KvList(kvs) => {
                self.attributes(kvs);
                false
            }
            AnyValue::Bytes(_)
            | AnyValue::Empty
            | AnyValue::Bool(_)
            | AnyValue::Int(_)
            | AnyValue::Double(_) => false,
        }
    }

    /// A string outside attributes (span name, status message, event name):
    /// emptied when a `drop` rule finds something in it.
    fn text_field(&mut self, text: &mut Str) {
        if self.text(text, self.redactor.everywhere) {
            *text = Str::default();
        }
    }

    /// Replaces what the detectors of `mask` find in `text`; true when a
    /// `drop` rule found something (then `text` is left as it is).
    fn text(&mut self, text: &mut Str, mask: RuleMask) -> bool {
        let redactor = self.redactor;
        if mask == 0 || text.is_empty() {
            return false;
        }
        self.hits.clear();
        let bytes = text.as_bytes();
        if bytes.len() < redactor.min_length {
            return false;
        }
        // A long value found clean earlier in the batch, by these rules, is
        // clean again: looked up first, it skips the profile too.
        let remember = match &self.clean {
            Some(clean) if bytes.len() >= clean::MIN_LEN => {
                let hash = CleanValues::hash(bytes, mask);
                if clean.contains(bytes, mask, hash) {
                    return false;
                }
                Some(hash)
            }
            _ => None,
        };
        // One cheap pass decides which detectors can match at all; most
        // values (methods, paths, addresses, ids) rule out every one.
        let profile = Profile::of(bytes);
        let admitted = mask & redactor.admitted(profile);
        if admitted == 0 {
            self.remember_clean(bytes, mask, remember);
            return false;
        }
        for triggers in [&redactor.folded, &redactor.exact].into_iter().flatten() {
            if admitted & triggers.rules == 0 {
                continue;
            }
            for found in triggers.automaton.find_iter(bytes) {
                let Some(&detector) = triggers.detectors.get(found.pattern().as_usize()) else {
                    continue;
                };
                let Some(rule) = first_rule(redactor, admitted & triggers.rules, detector) else {
                    continue;
                };
                if let Some((start, end)) = detector.at_trigger(bytes, found.start(), found.len()) {
                    self.hits.push(Hit { start, end, rule });
                }
            }
        }
        let mut scanning = admitted & redactor.scanning;
        while scanning != 0 {
            let rule = scanning.trailing_zeros() as usize;
            scanning &= scanning - 1;
            let Some(detector) = redactor.rules.get(rule).and_then(|r| r.detector) else {
                continue;
            };
            let hits = &mut self.hits;
            detector.scan(text, &mut |start, end| hits.push(Hit { start, end, rule }));
        }
        if self.hits.is_empty() {
            self.remember_clean(bytes, mask, remember);
            return false;
        }
        let hits = std::mem::take(&mut self.hits);
        let drop = self.apply(text, &hits);
        self.hits = hits;
        drop
    }

    /// Remembers `text` clean for `mask` when [`Pass::text`] took its hash.
    fn remember_clean(&mut self, text: &[u8], mask: RuleMask, hash: Option<u64>) {
        if let (Some(clean), Some(hash)) = (&mut self.clean, hash) {
            clean.insert(text, mask, hash);
        }
    }

    /// Rewrites `text` with `hits` replaced.
    fn apply(&mut self, text: &mut Str, hits: &[Hit]) -> bool {
        let rules = &self.redactor.rules;
        if let Some(hit) = hits
            .iter()
            .find(|h| rules.get(h.rule).is_some_and(|r| r.action == Action::Drop))
        {
            self.count(hit.rule);
            return true;
        }
        let mut sorted = hits.to_vec();
        sorted.sort_by_key(|h| (h.start, std::cmp::Reverse(h.end)));
        // Overlapping hits (a JWT after `Bearer `) become one.
        let mut merged: Vec<Hit> = Vec::with_capacity(sorted.len());
        for hit in sorted {
            match merged.last_mut() {
                Some(last) if hit.start < last.end => last.end = last.end.max(hit.end),
                _ => merged.push(hit),
            }
        }
        let mut out = String::with_capacity(text.len());
        let mut pos = 0;
        for hit in &merged {
            let (Some(before), Some(secret)) =
                (text.get(pos..hit.start), text.get(hit.start..hit.end))
            else {
                continue;
            };
            let Some(action) = rules.get(hit.rule).map(|r| r.action) else {
                continue;
            };
            out.push_str(before);
            self.replacement(secret, action, &mut out);
            pos = hit.end;
            self.count(hit.rule);
        }
        out.push_str(text.get(pos..).unwrap_or(""));
        *text = Str::from(out);
        false
    }

    /// What replaces `secret` under `action` (never `Drop`).
    fn replacement(&self, secret: &str, action: Action, out: &mut String) {
        match action {
            Action::Drop => {}
            Action::Mask { keep_last } => {
                out.push_str(&self.redactor.marker);
                let count = secret.chars().count();
                if keep_last > 0 && count > keep_last {
                    out.extend(secret.chars().skip(count - keep_last));
                }
            }
            Action::Hash(encoding) => {
                if let Some(key) = &self.redactor.key {
                    encoding.write(&key.mac(secret.as_bytes()), out);
                } else {
                    // Unreachable: `new` refuses hash rules without a key.
                    out.push_str(&self.redactor.marker);
                }
            }
        }
    }
}

/// The first rule of `mask` using `detector`.
fn first_rule(redactor: &Redactor, mask: RuleMask, detector: Detector) -> Option<usize> {
    let mut rest = mask;
    while rest != 0 {
        let rule = rest.trailing_zeros() as usize;
        rest &= rest - 1;
        if redactor.rules.get(rule).and_then(|r| r.detector) == Some(detector) {
            return Some(rule);
        }
    }
    None
}
