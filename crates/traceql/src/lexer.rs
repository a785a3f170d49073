//! Splits query text into tokens, each with its byte range.
//!
//! Attributes are lexed as one token (`span.http.request.method`,
//! `resource."service name"`) because their names may contain dots and
//! dashes that would otherwise be operators.

use crate::ast::AttributeScope;
use crate::error::{ParseError, ParseErrorKind};

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Tok {
    LBrace,
    RBrace,
    LParen,
    RParen,
    Pipe,
    Comma,
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    Re,
    /// `!~`: not-regex inside a filter, not-sibling between spansets.
    Nre,
    Not,
    And,
    Or,
    Desc,
    Anc,
    Tilde,
    NotChild,
    NotDesc,
    NotParent,
    NotAnc,
    UnionChild,
    UnionDesc,
    UnionParent,
    UnionAnc,
    UnionSibling,
    /// `+ - * / % ^`: arithmetic, which is refused (except `-` before a number).
    Arith(char),
    Str(String),
    Int(i64),
    Float(f64),
    Duration(u64),
    Ident(String),
    /// `span:name`, `trace:id`, ...: scope and name.
    ScopedIntrinsic(String, String),
    Attribute(AttributeScope, String),
    /// `parent.x`: Tempo's parent scope, refused by the parser.
    ParentAttribute(String),
    Eof,
}

#[derive(Clone, Debug)]
pub(crate) struct Token {
    pub tok: Tok,
    pub start: usize,
    pub end: usize,
}

/// Characters that end an unquoted attribute name (as Tempo's lexer):
/// whitespace and the operator and bracket characters.
pub(crate) fn is_attribute_char(c: char) -> bool {
    !c.is_whitespace()
        && !matches!(
            c,
            '{' | '}' | '(' | ')' | '=' | '~' | '!' | '<' | '>' | '&' | '|' | '^' | ',' | '"' | '`'
        )
}

const DURATION_UNITS: [(&str, u128); 7] = [
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

pub(crate) struct Lexer<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    pub(crate) fn tokenize(text: &'a str) -> Result<Vec<Token>, ParseError> {
        let mut lexer = Lexer { text, pos: 0 };
        let mut tokens = Vec::new();
        loop {
            let token = lexer.next_token()?;
            let eof = token.tok == Tok::Eof;
            tokens.push(token);
            if eof {
                return Ok(tokens);
            }
        }
    }

    fn rest(&self) -> &'a str {
        self.text.get(self.pos..).unwrap_or("")
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn peek_at(&self, n: usize) -> Option<char> {
        self.rest().chars().nth(n)
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn error(&self, offset: usize, kind: ParseErrorKind, message: impl Into<String>) -> ParseError {
        ParseError::at(self.text, offset, kind, message)
    }

    fn next_token(&mut self) -> Result<Token, ParseError> {
        while self.peek().is_some_and(char::is_whitespace) {
            self.bump();
        }
        let start = self.pos;
        let Some(c) = self.bump() else {
            return Ok(Token {
                tok: Tok::Eof,
                start,
                end: start,
            });
        };
        let tok = match c {
            '{' => Tok::LBrace,
            '}' => Tok::RBrace,
            '(' => Tok::LParen,
            ')' => Tok::RParen,
            ',' => Tok::Comma,
            '~' => Tok::Tilde,
            '|' => {
                if self.eat('|') {
                    Tok::Or
                } else {
                    Tok::Pipe
                }
            }
            '=' => {
                if self.eat('~') {
                    Tok::Re
                } else {
                    Tok::Eq
                }
            }
            '!' => {
                if self.eat('=') {
                    Tok::Ne
                } else if self.eat('~') {
                    Tok::Nre
                } else if self.eat('>') {
                    if self.eat('>') {
                        Tok::NotDesc
                    } else {
                        Tok::NotChild
                    }
                } else if self.eat('<') {
                    if self.eat('<') {
                        Tok::NotAnc
                    } else {
                        Tok::NotParent
                    }
                } else {
                    Tok::Not
                }
            }
            '>' => {
                if self.eat('=') {
                    Tok::Ge
                } else if self.eat('>') {
                    Tok::Desc
                } else {
                    Tok::Gt
                }
            }
            '<' => {
                if self.eat('=') {
                    Tok::Le
                } else if self.eat('<') {
                    Tok::Anc
                } else {
                    Tok::Lt
                }
            }
            '&' => {
                if self.eat('&') {
                    Tok::And
                } else if self.eat('>') {
                    if self.eat('>') {
                        Tok::UnionDesc
                    } else {
                        Tok::UnionChild
                    }
                } else if self.eat('<') {
                    if self.eat('<') {
                        Tok::UnionAnc
                    } else {
                        Tok::UnionParent
                    }
                } else if self.eat('~') {
                    Tok::UnionSibling
                } else {
                    return Err(self.error(
                        start,
                        ParseErrorKind::Syntax,
                        "expected `&&`, `&>`, `&>>`, `&<`, `&<<` or `&~` after `&`",
                    ));
                }
            }
            '+' | '-' | '*' | '/' | '%' | '^' => Tok::Arith(c),
            '"' => Tok::Str(self.quoted_string(start)?),
            '`' => Tok::Str(self.raw_string(start)?),
            '.' => {
                let name = self.attribute_name(start)?;
                Tok::Attribute(AttributeScope::Unscoped, name)
            }
            c if c.is_ascii_digit() => self.number(start)?,
            c if c.is_alphabetic() || c == '_' => self.word(start)?,
            other => {
                return Err(self.error(
                    start,
                    ParseErrorKind::Syntax,
                    format!("unexpected character {other:?}"),
                ));
            }
        };
        Ok(Token {
            tok,
            start,
            end: self.pos,
        })
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.bump();
            true
        } else {
            false
        }
    }

    fn word(&mut self, start: usize) -> Result<Tok, ParseError> {
        while self.peek().is_some_and(|c| c.is_alphanumeric() || c == '_') {
            self.bump();
        }
        let word = self.text.get(start..self.pos).unwrap_or("");
        match (word, self.peek()) {
            ("span" | "resource" | "event" | "link" | "instrumentation" | "parent", Some('.')) => {
                self.bump();
                let name = self.attribute_name(start)?;
                Ok(match word {
                    "span" => Tok::Attribute(AttributeScope::Span, name),
                    "resource" => Tok::Attribute(AttributeScope::Resource, name),
                    "event" => Tok::Attribute(AttributeScope::Event, name),
                    "link" => Tok::Attribute(AttributeScope::Link, name),
                    "instrumentation" => Tok::Attribute(AttributeScope::Instrumentation, name),
                    _ => Tok::ParentAttribute(name),
                })
            }
            ("span" | "trace" | "event" | "link" | "instrumentation", Some(':')) => {
                self.bump();
                let name_start = self.pos;
                while self.peek().is_some_and(|c| c.is_alphanumeric() || c == '_') {
                    self.bump();
                }
                let name = self.text.get(name_start..self.pos).unwrap_or("");
                if name.is_empty() {
                    return Err(self.error(
                        name_start,
                        ParseErrorKind::Syntax,
                        format!("expected an intrinsic name after `{word}:`"),
                    ));
                }
                Ok(Tok::ScopedIntrinsic(word.to_owned(), name.to_owned()))
            }
            _ => Ok(Tok::Ident(word.to_owned())),
        }
    }

    /// The name after `span.`, `.`, ...: unquoted up to an operator,
    /// bracket or space, or a quoted string.
    fn attribute_name(&mut self, start: usize) -> Result<String, ParseError> {
        if self.peek() == Some('"') {
            let quote = self.pos;
            self.bump();
            let name = self.quoted_string(quote)?;
            if name.is_empty() {
                return Err(self.error(quote, ParseErrorKind::Syntax, "empty attribute name"));
            }
            return Ok(name);
        }
        let name_start = self.pos;
        while self.peek().is_some_and(is_attribute_char) {
            self.bump();
        }
        let name = self.text.get(name_start..self.pos).unwrap_or("");
        if name.is_empty() {
            let found = match self.peek() {
                Some(c) => format!("{c:?}"),
                None => "end of query".to_owned(),
            };
            return Err(self.error(
                start,
                ParseErrorKind::Syntax,
                format!("expected an attribute name, found {found}"),
            ));
        }
        Ok(name.to_owned())
    }

    /// A `"..."` string; the opening quote is consumed.
    fn quoted_string(&mut self, start: usize) -> Result<String, ParseError> {
        let mut out = String::new();
        loop {
            let here = self.pos;
            let Some(c) = self.bump() else {
                return Err(self.error(start, ParseErrorKind::Syntax, "unterminated string"));
            };
            match c {
                '"' => return Ok(out),
                '\\' => {
                    let Some(e) = self.bump() else {
                        return Err(self.error(
                            start,
                            ParseErrorKind::Syntax,
                            "unterminated string",
                        ));
                    };
                    match e {
                        '"' => out.push('"'),
                        '\'' => out.push('\''),
                        '\\' => out.push('\\'),
                        'n' => out.push('\n'),
                        'r' => out.push('\r'),
                        't' => out.push('\t'),
                        'u' => out.push(self.unicode_escape(here)?),
                        other => {
                            return Err(self.error(
                                here,
                                ParseErrorKind::InvalidLiteral,
                                format!(
                                    "unknown escape \\{other} in string (use \\\\ for a backslash)"
                                ),
                            ));
                        }
                    }
                }
                c => out.push(c),
            }
        }
    }

    fn unicode_escape(&mut self, at: usize) -> Result<char, ParseError> {
        let digits = self.rest().get(..4).unwrap_or("");
        let code = if digits.len() == 4 && digits.chars().all(|c| c.is_ascii_hexdigit()) {
            u32::from_str_radix(digits, 16).ok()
        } else {
            None
        };
        match code.and_then(char::from_u32) {
            Some(c) => {
                self.pos += 4;
                Ok(c)
            }
            None => Err(self.error(
                at,
                ParseErrorKind::InvalidLiteral,
                "expected four hex digits of a character after \\u",
            )),
        }
    }

    /// A `` `...` `` string: no escapes, as Go raw strings in Tempo.
    fn raw_string(&mut self, start: usize) -> Result<String, ParseError> {
        let body_start = self.pos;
        match self.rest().find('`') {
            Some(len) => {
                let body = self.text.get(body_start..body_start + len).unwrap_or("");
                self.pos = body_start + len + 1;
                Ok(body.to_owned())
            }
            None => Err(self.error(start, ParseErrorKind::Syntax, "unterminated string")),
        }
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.bump();
        }
    }

    /// An integer, a float, or a duration (`1.5s`, `1h30m`); the first digit
    /// is consumed.
    fn number(&mut self, start: usize) -> Result<Tok, ParseError> {
        self.digits();
        let mut is_float = false;
        if self.peek() == Some('.') && self.peek_at(1).is_some_and(|c| c.is_ascii_digit()) {
            self.bump();
            self.digits();
            is_float = true;
        }
        let unit_follows = self.peek().is_some_and(|c| c.is_alphabetic() || c == 'µ');
        if !unit_follows {
            let text = self.text.get(start..self.pos).unwrap_or("");
            return self.plain_number(start, text, is_float);
        }
        // Exponent (`1e3`, `2.5E-3`).
        if matches!(self.peek(), Some('e' | 'E'))
            && (self.peek_at(1).is_some_and(|c| c.is_ascii_digit())
                || (matches!(self.peek_at(1), Some('+' | '-'))
                    && self.peek_at(2).is_some_and(|c| c.is_ascii_digit())))
        {
            self.bump();
            if matches!(self.peek(), Some('+' | '-')) {
                self.bump();
            }
            self.digits();
            let text = self.text.get(start..self.pos).unwrap_or("");
            return self.plain_number(start, text, true);
        }
        self.pos = start;
        self.duration(start)
    }

    fn plain_number(&self, start: usize, text: &str, is_float: bool) -> Result<Tok, ParseError> {
        if let Some(c) = self.peek().filter(|c| c.is_alphanumeric() || *c == '_') {
            return Err(self.error(
                start,
                ParseErrorKind::InvalidLiteral,
                format!("invalid number {text:?} followed by {c:?}"),
            ));
        }
        if is_float {
            match text.parse::<f64>() {
                Ok(f) if f.is_finite() => Ok(Tok::Float(f)),
                _ => Err(self.error(
                    start,
                    ParseErrorKind::InvalidLiteral,
                    format!("float {text} is out of range"),
                )),
            }
        } else {
            text.parse::<i64>().map(Tok::Int).map_err(|_| {
                self.error(
                    start,
                    ParseErrorKind::InvalidLiteral,
                    format!("integer {text} is out of range"),
                )
            })
        }
    }

    /// A sequence of `<number><unit>` parts, summed exactly in nanoseconds.
    fn duration(&mut self, start: usize) -> Result<Tok, ParseError> {
        let mut total: u128 = 0;
        loop {
            let part_start = self.pos;
            self.digits();
            let whole = self.text.get(part_start..self.pos).unwrap_or("");
            let mut fraction = "";
            if self.peek() == Some('.') && self.peek_at(1).is_some_and(|c| c.is_ascii_digit()) {
                self.bump();
                let f_start = self.pos;
                self.digits();
                fraction = self.text.get(f_start..self.pos).unwrap_or("");
            }
            let unit_start = self.pos;
            while self.peek().is_some_and(|c| c.is_alphabetic()) {
                self.bump();
            }
            let unit = self.text.get(unit_start..self.pos).unwrap_or("");
            let Some(&(_, scale)) = DURATION_UNITS.iter().find(|(name, _)| *name == unit) else {
                let text = self.text.get(start..self.pos).unwrap_or("");
                return Err(self.error(
                    start,
                    ParseErrorKind::InvalidLiteral,
                    format!(
                        "invalid duration {text:?}: expected a unit (ns, us, µs, ms, s, m, h), found {unit:?}"
                    ),
                ));
            };
            let out_of_range = || {
                self.error(
                    start,
                    ParseErrorKind::InvalidLiteral,
                    "duration is out of range",
                )
            };
            // Digits beyond what a u64 of nanoseconds can hold are refused
            // rather than rounded.
            if whole.len() > 20 || fraction.len() > 20 {
                return Err(out_of_range());
            }
            let whole_n: u128 = whole.parse().map_err(|_| out_of_range())?;
            let mut part = whole_n.checked_mul(scale).ok_or_else(out_of_range)?;
            if !fraction.is_empty() {
                let frac_n: u128 = fraction.parse().map_err(|_| out_of_range())?;
                let denom = 10u128
                    .checked_pow(u32::try_from(fraction.len()).map_err(|_| out_of_range())?)
                    .ok_or_else(out_of_range)?;
                part = part
                    .checked_add(frac_n.checked_mul(scale).ok_or_else(out_of_range)? / denom)
                    .ok_or_else(out_of_range)?;
            }
            total = total.checked_add(part).ok_or_else(out_of_range)?;
            if !self.peek().is_some_and(|c| c.is_ascii_digit()) {
                break;
            }
        }
        let ns = u64::try_from(total).map_err(|_| {
            self.error(
                start,
                ParseErrorKind::InvalidLiteral,
                "duration is out of range",
            )
        })?;
        Ok(Tok::Duration(ns))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(text: &str) -> Vec<Tok> {
        Lexer::tokenize(text)
            .unwrap()
            .into_iter()
            .map(|t| t.tok)
            .collect()
    }

    #[test]
    fn attributes_keep_dots_and_dashes() {
        assert_eq!(
            toks("span.http.request-id=1"),
            vec![
                Tok::Attribute(AttributeScope::Span, "http.request-id".into()),
                Tok::Eq,
                Tok::Int(1),
                Tok::Eof
            ]
        );
        assert_eq!(
            toks(r#"resource."a b""#),
            vec![
                Tok::Attribute(AttributeScope::Resource, "a b".into()),
                Tok::Eof
            ]
        );
    }

    #[test]
    fn durations() {
        assert_eq!(toks("1.5s")[0], Tok::Duration(1_500_000_000));
        assert_eq!(toks("1h30m")[0], Tok::Duration(5_400_000_000_000));
        assert_eq!(toks("10µs")[0], Tok::Duration(10_000));
        assert_eq!(toks("3ns")[0], Tok::Duration(3));
        assert!(Lexer::tokenize("3parsecs").is_err());
        assert!(Lexer::tokenize("99999999999999999999h").is_err());
    }

    #[test]
    fn numbers() {
        assert_eq!(toks("42")[0], Tok::Int(42));
        assert_eq!(toks("4.25")[0], Tok::Float(4.25));
        assert_eq!(toks("1e3")[0], Tok::Float(1000.0));
        assert!(Lexer::tokenize("99999999999999999999").is_err());
    }

    #[test]
    fn operators() {
        assert_eq!(
            toks("!> !>> !< !<< !~ &> &>> &< &<< &~ >> <<"),
            vec![
                Tok::NotChild,
                Tok::NotDesc,
                Tok::NotParent,
                Tok::NotAnc,
                Tok::Nre,
                Tok::UnionChild,
                Tok::UnionDesc,
                Tok::UnionParent,
                Tok::UnionAnc,
                Tok::UnionSibling,
                Tok::Desc,
                Tok::Anc,
                Tok::Eof
            ]
        );
    }

    #[test]
    fn strings() {
        assert_eq!(toks(r#""a\"b\\c\u00e9""#)[0], Tok::Str("a\"b\\cé".into()));
        assert_eq!(toks(r"`a\.b`")[0], Tok::Str(r"a\.b".into()));
        assert!(Lexer::tokenize("\"abc").is_err());
        assert!(Lexer::tokenize(r#""\q""#).is_err());
    }
}
