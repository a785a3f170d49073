//! Normalisation of request values before matching.
//!
//! Attackers hide payloads behind encodings that the application (or a proxy in front
//! of it) undoes: percent-encoding, sometimes twice; `+` for space in form data;
//! IIS's `%uXXXX`; overlong UTF-8 (`%c0%ae` for `.`); HTML character references in
//! markup contexts; JavaScript escapes. Each function returns `Cow::Borrowed` when
//! there is nothing to undo, so clean values cost no allocation.

use std::borrow::Cow;

/// How many rounds of percent-decoding to apply. Two catches double encoding
/// (`%252e`), the third triple encoding; more buys nothing real-world and would let
/// a hostile value make us loop.
const PERCENT_ROUNDS: usize = 3;

/// Undo URL encodings: `%XX`, `%uXXXX`, `+` as space, overlong UTF-8 forms of ASCII,
/// fullwidth and lookalike forms of `.`, `/` and `\`. NUL bytes are kept (as
/// `\0`): null-byte truncation is itself a signal for the path traversal scanner.
pub fn url(value: &str) -> Cow<'_, str> {
    url_with(value, true)
}

/// [`url`] for text that is not form-encoded (JSON strings, XML attribute values and
/// text): a `+` stays a plus.
pub fn url_literal_plus(value: &str) -> Cow<'_, str> {
    url_with(value, false)
}

fn url_with(value: &str, plus_is_space: bool) -> Cow<'_, str> {
    if !value
        .bytes()
        .any(|b| b == b'%' || (b == b'+' && plus_is_space) || b >= 0x80)
    {
        return Cow::Borrowed(value);
    }
    let mut bytes = percent_once(value.as_bytes(), plus_is_space);
    for _ in 1..PERCENT_ROUNDS {
        if !bytes.contains(&b'%') {
            break;
        }
        let next = percent_once(&bytes, false);
        if next == bytes {
            break;
        }
        bytes = next;
    }
    let bytes = fold_overlong(&bytes);
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(err) => String::from_utf8_lossy(err.as_bytes()).into_owned(),
    };
    if text.chars().any(is_lookalike) {
        Cow::Owned(text.chars().map(fold_lookalike).collect())
    } else {
        Cow::Owned(text)
    }
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn hex_at(bytes: &[u8], at: usize, len: usize) -> Option<u32> {
    let digits = bytes.get(at..at + len)?;
    digits
        .iter()
        .try_fold(0u32, |acc, &b| Some(acc * 16 + u32::from(hex_val(b)?)))
}

/// One round of percent-decoding. `plus_is_space` only on the first round: a `+`
/// produced by decoding `%2b` is a literal plus.
fn percent_once(input: &[u8], plus_is_space: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while let Some(&b) = input.get(i) {
        if b == b'%' {
            let next = input.get(i + 1).copied();
            if matches!(next, Some(b'u' | b'U'))
                && let Some(code) = hex_at(input, i + 2, 4)
            {
                let c = char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER);
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                i += 6;
                continue;
            }
            if let Some(code) = hex_at(input, i + 1, 2) {
                // hex_at of two digits is below 256.
                out.push(u8::try_from(code).unwrap_or(b'?'));
                i += 3;
                continue;
            }
            out.push(b);
        } else if b == b'+' && plus_is_space {
            out.push(b' ');
        } else {
            out.push(b);
        }
        i += 1;
    }
    out
}

/// Replace overlong UTF-8 encodings of ASCII (`C0 AE` = `.`, `C0 AF` = `/`,
/// `C1 9C` = `\`, `E0 80 AE` = `.`) by the ASCII byte. Decoders that accepted these
/// are the classic IIS and Tomcat traversal bypasses.
fn fold_overlong(input: &[u8]) -> Vec<u8> {
    if !input.iter().any(|&b| b == 0xC0 || b == 0xC1 || b == 0xE0) {
        return input.to_vec();
    }
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while let Some(&b) = input.get(i) {
        let b1 = input.get(i + 1).copied().unwrap_or(0);
        let b2 = input.get(i + 2).copied().unwrap_or(0);
        if (b == 0xC0 || b == 0xC1) && (0x80..0xC0).contains(&b1) {
            out.push(((b & 0x1F) << 6) | (b1 & 0x3F));
            i += 2;
        } else if b == 0xE0 && b1 & 0xE0 == 0x80 && (0x80..0xC0).contains(&b2) && b1 < 0x82 {
            out.push(((b1 & 0x3F) << 6) | (b2 & 0x3F));
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    out
}

fn is_lookalike(c: char) -> bool {
    matches!(
        c,
        '\u{FF0E}' | '\u{FF0F}' | '\u{FF3C}' | '\u{2215}' | '\u{2216}' | '\u{2024}' | '\u{FE52}'
    )
}

/// Fullwidth and lookalike forms that some Windows and Java stacks fold to ASCII.
fn fold_lookalike(c: char) -> char {
    match c {
        '\u{FF0E}' | '\u{2024}' | '\u{FE52}' => '.',
        '\u{FF0F}' | '\u{2215}' => '/',
        '\u{FF3C}' | '\u{2216}' => '\\',
        other => other,
    }
}

/// Undo HTML character references (`&#106;`, `&#x6A`, `&colon;`, `&lt;`...) and
/// JavaScript escapes (`\u0061`, `\x61`), for the cross-site scripting scanner: a
/// browser decodes references inside attribute values before it interprets a
/// `javascript:` URL, and escapes inside script.
pub fn markup(value: &str) -> Cow<'_, str> {
    if !value.contains('&') && !value.contains('\\') {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(pos) = rest.find(['&', '\\']) {
        let (head, tail) = rest.split_at(pos);
        out.push_str(head);
        if let Some((c, used)) = reference(tail).or_else(|| js_escape(tail)) {
            out.push(c);
            rest = tail.get(used..).unwrap_or("");
        } else {
            let mut chars = tail.chars();
            if let Some(c) = chars.next() {
                out.push(c);
            }
            rest = chars.as_str();
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// Decode one `&...;` reference at the start of `s`: the char and the bytes used.
/// Browsers accept numeric references without the `;` and with leading zeros.
fn reference(s: &str) -> Option<(char, usize)> {
    let bytes = s.as_bytes();
    if bytes.first() != Some(&b'&') {
        return None;
    }
    if bytes.get(1) == Some(&b'#') {
        let hex = matches!(bytes.get(2), Some(b'x' | b'X'));
        let start = if hex { 3 } else { 2 };
        let mut end = start;
        let mut code: u32 = 0;
        while let Some(&b) = bytes.get(end) {
            let digit = if hex {
                hex_val(b).map(u32::from)
            } else if b.is_ascii_digit() {
                Some(u32::from(b - b'0'))
            } else {
                None
            };
            let Some(digit) = digit else { break };
            code = code
                .saturating_mul(if hex { 16 } else { 10 })
                .saturating_add(digit);
            end += 1;
        }
        if end == start {
            return None;
        }
        if bytes.get(end) == Some(&b';') {
            end += 1;
        }
        return Some((
            char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER),
            end,
        ));
    }
    const NAMED: &[(&str, char)] = &[
        ("lt", '<'),
        ("gt", '>'),
        ("quot", '"'),
        ("apos", '\''),
        ("amp", '&'),
        ("colon", ':'),
        ("tab", '\t'),
        ("newline", '\n'),
        ("sol", '/'),
        ("bsol", '\\'),
        ("lpar", '('),
        ("rpar", ')'),
        ("nbsp", ' '),
        ("equals", '='),
        ("semi", ';'),
        ("comma", ','),
        ("period", '.'),
        ("grave", '`'),
        ("lsqb", '['),
        ("rsqb", ']'),
        ("lcub", '{'),
        ("rcub", '}'),
        ("excl", '!'),
        ("plus", '+'),
    ];
    let name_end = bytes
        .iter()
        .skip(1)
        .position(|b| !b.is_ascii_alphabetic())
        .map_or(bytes.len(), |p| p + 1);
    let name = s.get(1..name_end)?;
    let (_, c) = NAMED
        .iter()
        .find(|(known, _)| known.eq_ignore_ascii_case(name))?;
    let used = if bytes.get(name_end) == Some(&b';') {
        name_end + 1
    } else {
        name_end
    };
    Some((*c, used))
}

/// Decode one `\uXXXX`, `\u{...}` or `\xXX` escape at the start of `s`.
fn js_escape(s: &str) -> Option<(char, usize)> {
    let bytes = s.as_bytes();
    if bytes.first() != Some(&b'\\') {
        return None;
    }
    match bytes.get(1) {
        Some(b'u') => {
            let code = hex_at(bytes, 2, 4)?;
            Some((char::from_u32(code)?, 6))
        }
        Some(b'x') => {
            let code = hex_at(bytes, 2, 2)?;
            Some((char::from_u32(code)?, 4))
        }
        _ => None,
    }
}

/// The longest prefix of `value` no longer than `max` bytes that ends on a char
/// boundary: scanners look at a bounded window so a hostile multi-megabyte body
/// costs bounded time.
pub fn bounded(value: &str, max: usize) -> &str {
    if value.len() <= max {
        return value;
    }
    let mut end = max;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    value.get(..end).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_decodes_double_and_unicode_forms() {
        assert_eq!(url("a%20b+c"), "a b c");
        assert_eq!(url("%252e%252e%252f"), "../");
        assert_eq!(url("%u002e%u002e%u2215"), "../");
        assert_eq!(url("%c0%ae%c0%ae%c0%af"), "../");
        assert_eq!(url("%e0%80%ae"), ".");
        assert_eq!(url("a%00b"), "a\0b");
        assert_eq!(url("100%"), "100%");
        assert_eq!(url("%2b"), "+");
        assert!(matches!(url("plain/value"), Cow::Borrowed(_)));
    }

    #[test]
    fn literal_plus_keeps_plus_signs() {
        assert_eq!(url_literal_plus("~+ a%20b"), "~+ a b");
        assert_eq!(url_literal_plus("%252b"), "+");
        assert!(matches!(url_literal_plus("c++"), Cow::Borrowed(_)));
    }

    #[test]
    fn markup_decodes_references_and_escapes() {
        assert_eq!(markup("&#106;&#x61&colon;"), "ja:");
        assert_eq!(markup("&lt;script&gt;"), "<script>");
        assert_eq!(markup("rock &amp; roll & more"), "rock & roll & more");
        assert_eq!(markup("\\u0061l\\x65rt"), "alert");
        assert_eq!(markup("&#99999999999;"), "\u{FFFD}");
        assert!(matches!(markup("plain"), Cow::Borrowed(_)));
    }

    #[test]
    fn bounded_respects_char_boundaries() {
        assert_eq!(bounded("héllo", 2), "h");
        assert_eq!(bounded("abc", 10), "abc");
    }
}
