//! Parse errors: what went wrong, where (byte offset, line and column) and why.

use std::fmt;

/// The class of a [`ParseError`], so callers can tell a typo from a feature
/// tracewarden does not implement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ParseErrorKind {
    /// The text is not TraceQL.
    Syntax,
    /// Valid TraceQL (or a feature of it) that tracewarden refuses rather than
    /// silently ignoring; the message names the feature.
    Unsupported,
    /// A regular expression that does not compile or is too large.
    InvalidRegex,
    /// A literal that cannot be read: bad escape, number out of range, ...
    InvalidLiteral,
    /// A comparison between types that can never match (`status = "error"`).
    Type,
    /// The query is longer than [`crate::MAX_QUERY_LEN`] bytes.
    TooLong,
    /// Parentheses, braces or `!` nested deeper than [`crate::MAX_DEPTH`].
    TooDeep,
}

/// A TraceQL parse error with its position in the query.
///
/// Displays as `line:column: message`, for example
/// `1:18: expected a comparison operator (= != > >= < <= =~ !~), found "foo"`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ParseError {
    pub kind: ParseErrorKind,
    /// Byte offset into the query text.
    pub offset: usize,
    /// 1-based line.
    pub line: u32,
    /// 1-based column, counted in characters.
    pub column: u32,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.column, self.message)
    }
}

impl ParseError {
    /// An error at byte `offset` of `text`; line and column are computed here
    /// so every error carries a position a UI can point at.
    pub(crate) fn at(
        text: &str,
        offset: usize,
        kind: ParseErrorKind,
        message: impl Into<String>,
    ) -> ParseError {
        let offset = offset.min(text.len());
        // Clamp to a char boundary so slicing below cannot panic.
        let mut boundary = offset;
        while boundary > 0 && !text.is_char_boundary(boundary) {
            boundary -= 1;
        }
        let before = text.get(..boundary).unwrap_or("");
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
        ParseError {
            kind,
            offset: boundary,
            line: u32::try_from(line).unwrap_or(u32::MAX),
            column: u32::try_from(column).unwrap_or(u32::MAX),
            message: message.into(),
        }
    }
}
