//! Recursive-descent parser: tokens to [`Pipeline`].
//!
//! Grammar (lowest precedence first):
//! ```text
//! query     = pipeline EOF
//! pipeline  = spanset ( "|" stage )*
//! stage     = "by" "(" fields ")" | "select" "(" fields ")" | "coalesce" "(" ")"
//!           | aggregate cmp static | spanset
//! spanset   = or ; or = and ("||" and)* ; and = struct ("&&" struct)*
//! struct    = primary ( (">" | ">>" | "<" | "<<" | "~" | "!>" | ... | "&~") primary )*
//! primary   = "{" [ expr ] "}" | "(" pipeline ")"
//! expr      = f_and ("||" f_and)* ; f_and = f_not ("&&" f_not)*
//! f_not     = "!" f_not | operand [ cmp operand ]
//! operand   = "(" expr ")" | field | static
//! ```

use regex::RegexBuilder;
use tracewarden_model::VerdictSlot;

use crate::ast::{
    Aggregate, AggregateKind, Expr, Field, Intrinsic, Pipeline, SpansetExpr, SpansetOp, Stage,
};
use crate::error::{ParseError, ParseErrorKind};
use crate::lexer::{Lexer, Tok, Token};
use crate::pattern::Pattern;
use crate::value::{CompareOp, Static, ValueType, compare};
use crate::{MAX_DEPTH, MAX_QUERY_LEN};

/// Compiled size limit of one regular expression: generous for real
/// patterns, small enough that a hostile query cannot exhaust memory.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Most spanset operators (`&&`, `||`, structural) in one query.
const MAX_SPANSET_OPERATORS: usize = 256;

const COMPARISON_OPS: &str = "a comparison operator (= != > >= < <= =~ !~)";

pub(crate) fn parse(text: &str) -> Result<Pipeline, ParseError> {
    if text.len() > MAX_QUERY_LEN {
        return Err(ParseError::at(
            text,
            MAX_QUERY_LEN,
            ParseErrorKind::TooLong,
            format!(
                "query is {} bytes, longer than the limit of {MAX_QUERY_LEN} bytes",
                text.len()
            ),
        ));
    }
    let tokens = Lexer::tokenize(text)?;
    let mut parser = Parser {
        text,
        tokens,
        pos: 0,
        depth: 0,
        spanset_operators: 0,
    };
    let pipeline = parser.pipeline()?;
    let token = parser.peek_token();
    match &token.tok {
        Tok::Eof => Ok(pipeline),
        Tok::Ident(word) if word == "with" => Err(parser.error_at(
            token,
            ParseErrorKind::Unsupported,
            "query hints `with(...)` are not supported",
        )),
        Tok::RParen => Err(parser.error_at(
            token,
            ParseErrorKind::Syntax,
            "unbalanced `)`: no `(` to close",
        )),
        _ => Err(parser.expected(
            token,
            "`|`, `&&`, `||`, a structural operator or end of query",
        )),
    }
}

struct Parser<'a> {
    text: &'a str,
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
    spanset_operators: usize,
}

/// One side of a comparison inside a filter, before it is resolved.
enum Operand {
    Expr(Expr),
    Field(Field),
    Static(Static),
}

impl<'a> Parser<'a> {
    fn peek_token(&self) -> Token {
        self.tokens
            .get(self.pos)
            .or_else(|| self.tokens.last())
            .cloned()
            .unwrap_or(Token {
                tok: Tok::Eof,
                start: self.text.len(),
                end: self.text.len(),
            })
    }

    fn peek(&self) -> &Tok {
        self.tokens.get(self.pos).map_or(&Tok::Eof, |t| &t.tok)
    }

    fn peek2(&self) -> &Tok {
        self.tokens.get(self.pos + 1).map_or(&Tok::Eof, |t| &t.tok)
    }

    fn next(&mut self) -> Token {
        let token = self.peek_token();
        if self.pos < self.tokens.len() {
            self.pos += 1;
        }
        token
    }

    fn error_at(
        &self,
        token: Token,
        kind: ParseErrorKind,
        message: impl Into<String>,
    ) -> ParseError {
        ParseError::at(self.text, token.start, kind, message)
    }

    /// "expected X, found Y" at the token.
    fn expected(&self, token: Token, what: &str) -> ParseError {
        let found = self.describe(&token);
        self.error_at(
            token,
            ParseErrorKind::Syntax,
            format!("expected {what}, found {found}"),
        )
    }

    fn describe(&self, token: &Token) -> String {
        if token.tok == Tok::Eof {
            return "end of query".to_owned();
        }
        let text = self.text.get(token.start..token.end).unwrap_or("");
        // Long tokens (strings) are cut so messages stay readable.
        let short: String = text.chars().take(40).collect();
        if short.len() < text.len() {
            format!("{short:?}...")
        } else {
            format!("{short:?}")
        }
    }

    fn expect(&mut self, tok: &Tok, what: &str) -> Result<Token, ParseError> {
        if self.peek() == tok {
            Ok(self.next())
        } else {
            Err(self.expected(self.peek_token(), what))
        }
    }

    fn enter(&mut self, token: &Token) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(ParseError::at(
                self.text,
                token.start,
                ParseErrorKind::TooDeep,
                format!("query nests deeper than {MAX_DEPTH} levels"),
            ));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    // ---- spanset level ----

    fn pipeline(&mut self) -> Result<Pipeline, ParseError> {
        let head = self.spanset_expr(0)?;
        let mut stages = Vec::new();
        while *self.peek() == Tok::Pipe {
            self.next();
            stages.push(self.stage()?);
        }
        Ok(Pipeline { head, stages })
    }

    fn spanset_op(&self) -> Option<SpansetOp> {
        Some(match self.peek() {
            Tok::And => SpansetOp::And,
            Tok::Or => SpansetOp::Or,
            Tok::Gt => SpansetOp::Child,
            Tok::Desc => SpansetOp::Descendant,
            Tok::Lt => SpansetOp::Parent,
            Tok::Anc => SpansetOp::Ancestor,
            Tok::Tilde => SpansetOp::Sibling,
            Tok::NotChild => SpansetOp::NotChild,
            Tok::NotDesc => SpansetOp::NotDescendant,
            Tok::NotParent => SpansetOp::NotParent,
            Tok::NotAnc => SpansetOp::NotAncestor,
            Tok::Nre => SpansetOp::NotSibling,
            Tok::UnionChild => SpansetOp::UnionChild,
            Tok::UnionDesc => SpansetOp::UnionDescendant,
            Tok::UnionParent => SpansetOp::UnionParent,
            Tok::UnionAnc => SpansetOp::UnionAncestor,
            Tok::UnionSibling => SpansetOp::UnionSibling,
            _ => return None,
        })
    }

    /// Precedence climbing over spanset operators (all left-associative).
    fn spanset_expr(&mut self, min_prec: u8) -> Result<SpansetExpr, ParseError> {
        let mut lhs = self.spanset_primary()?;
        while let Some(op) = self.spanset_op() {
            let prec = op.precedence();
            if prec <= min_prec {
                break;
            }
            let token = self.next();
            // Chains build a tree as deep as they are long: bound them so
            // evaluation, printing and dropping cannot overflow the stack.
            self.spanset_operators += 1;
            if self.spanset_operators > MAX_SPANSET_OPERATORS {
                return Err(ParseError::at(
                    self.text,
                    token.start,
                    ParseErrorKind::TooDeep,
                    format!("query has more than {MAX_SPANSET_OPERATORS} spanset operators"),
                ));
            }
            self.enter(&token)?;
            let rhs = self.spanset_expr(prec);
            self.leave();
            lhs = SpansetExpr::Binary {
                op,
                lhs: Box::new(lhs),
                rhs: Box::new(rhs?),
            };
        }
        Ok(lhs)
    }

    fn spanset_primary(&mut self) -> Result<SpansetExpr, ParseError> {
        let token = self.peek_token();
        match &token.tok {
            Tok::LBrace => {
                self.next();
                if *self.peek() == Tok::RBrace {
                    self.next();
                    return Ok(SpansetExpr::Filter(Expr::Const(true)));
                }
                let expr = self.filter_expr()?;
                self.expect(&Tok::RBrace, "`}` or `&&`, `||` to continue the filter")
                    .map_err(|e| self.closing_error(e))?;
                Ok(SpansetExpr::Filter(expr))
            }
            Tok::LParen => {
                self.next();
                self.enter(&token)?;
                let inner = self.pipeline();
                self.leave();
                let inner = inner?;
                self.expect(&Tok::RParen, "`)`")?;
                // `({ a })` is just `{ a }`.
                if inner.stages.is_empty() {
                    Ok(inner.head)
                } else {
                    Ok(SpansetExpr::Pipeline(Box::new(inner)))
                }
            }
            Tok::Ident(word) => Err(self.unsupported_word(&token, word).unwrap_or_else(|| {
                self.expected(token.clone(), "a spanset filter `{ ... }` or `(`")
            })),
            _ => Err(self.expected(token, "a spanset filter `{ ... }` or `(`")),
        }
    }

    /// A better message when a comparison operator is missing inside a filter.
    fn closing_error(&self, err: ParseError) -> ParseError {
        let token = self.peek_token();
        if matches!(
            token.tok,
            Tok::Ident(_) | Tok::Str(_) | Tok::Int(_) | Tok::Float(_) | Tok::Attribute(..)
        ) {
            return self.expected(token, &format!("{COMPARISON_OPS}, `&&`, `||` or `}}`"));
        }
        err
    }

    fn stage(&mut self) -> Result<Stage, ParseError> {
        let token = self.peek_token();
        let Tok::Ident(word) = &token.tok else {
            return Ok(Stage::Spanset(self.spanset_expr(0)?));
        };
        match word.as_str() {
            "by" => {
                self.next();
                Ok(Stage::By(self.field_list("by")?))
            }
            "select" => {
                self.next();
                Ok(Stage::Select(self.field_list("select")?))
            }
            "coalesce" => {
                self.next();
                self.expect(&Tok::LParen, "`(` after coalesce")?;
                self.expect(&Tok::RParen, "`)`: coalesce takes no arguments")?;
                Ok(Stage::Coalesce)
            }
            "count" | "avg" | "min" | "max" | "sum" => self.scalar_filter(),
            _ => match self.unsupported_word(&token, word) {
                Some(err) => Err(err),
                None => Err(self.expected(
                    token,
                    "a spanset filter, an aggregate (count avg min max sum), by, select or coalesce",
                )),
            },
        }
    }

    fn field_list(&mut self, what: &str) -> Result<Vec<Field>, ParseError> {
        self.expect(&Tok::LParen, &format!("`(` after {what}"))?;
        let mut fields = Vec::new();
        loop {
            fields.push(self.field(&format!("a field in {what}(...)"))?);
            let token = self.next();
            match token.tok {
                Tok::Comma => {}
                Tok::RParen => return Ok(fields),
                Tok::Arith(_) => return Err(self.arithmetic(token)),
                _ => return Err(self.expected(token, "`,` or `)`")),
            }
        }
    }

    fn scalar_filter(&mut self) -> Result<Stage, ParseError> {
        let token = self.next();
        let kind = match &token.tok {
            Tok::Ident(w) if w == "count" => AggregateKind::Count,
            Tok::Ident(w) if w == "avg" => AggregateKind::Avg,
            Tok::Ident(w) if w == "min" => AggregateKind::Min,
            Tok::Ident(w) if w == "max" => AggregateKind::Max,
            _ => AggregateKind::Sum,
        };
        self.expect(&Tok::LParen, &format!("`(` after {}", kind.as_str()))?;
        let field_token = self.peek_token();
        let field = if kind == AggregateKind::Count {
            None
        } else {
            Some(self.field(&format!("a field in {}(...)", kind.as_str()))?)
        };
        let close = self.next();
        match close.tok {
            Tok::RParen => {}
            Tok::Arith(_) => return Err(self.arithmetic(close)),
            _ if kind == AggregateKind::Count => {
                return Err(self.expected(close, "`)`: count() takes no arguments"));
            }
            _ => return Err(self.expected(close, "`)`")),
        }
        let aggregate = Aggregate { kind, field };
        let op_token = self.next();
        let op = match comparison_op(&op_token.tok) {
            Some(op) => op,
            None if matches!(op_token.tok, Tok::Arith(_)) => {
                return Err(self.error_at(
                    op_token,
                    ParseErrorKind::Unsupported,
                    "arithmetic on aggregates is not supported",
                ));
            }
            None => {
                return Err(self.expected(op_token, &format!("{COMPARISON_OPS} after {aggregate}")));
            }
        };
        if matches!(op, CompareOp::Regex | CompareOp::NotRegex) {
            return Err(self.error_at(
                op_token,
                ParseErrorKind::Type,
                format!("{aggregate} is a number: it cannot be matched with a regular expression"),
            ));
        }
        let value_token = self.peek_token();
        let value = match self.static_value()? {
            Some(value) => value,
            None => {
                if matches!(value_token.tok, Tok::Ident(ref w) if AGGREGATES.contains(&w.as_str()))
                {
                    return Err(self.error_at(
                        value_token,
                        ParseErrorKind::Unsupported,
                        "comparing two aggregates is not supported",
                    ));
                }
                return Err(
                    self.expected(value_token, &format!("a value to compare {aggregate} with"))
                );
            }
        };
        let aggregate_type = match (&aggregate.kind, &aggregate.field) {
            (AggregateKind::Count, _) => Some(ValueType::Int),
            (_, Some(Field::Intrinsic(i))) => Some(i.value_type()),
            _ => None,
        };
        if let Some(t) = aggregate_type {
            let numeric_ok = matches!(t, ValueType::Int | ValueType::Float | ValueType::Duration);
            if !numeric_ok {
                return Err(self.error_at(
                    field_token,
                    ParseErrorKind::Type,
                    format!(
                        "{aggregate} needs a numeric field, {} is {}",
                        aggregate
                            .field
                            .as_ref()
                            .map_or_else(String::new, ToString::to_string),
                        t.a_name()
                    ),
                ));
            }
            let vt = value.value_type();
            let ok = vt == ValueType::Nil
                || t.comparable(vt)
                // avg() of an integer field is a float, count() compares with floats.
                || (t == ValueType::Int && vt == ValueType::Float);
            if !ok {
                return Err(self.error_at(
                    value_token,
                    ParseErrorKind::Type,
                    format!(
                        "cannot compare {aggregate} ({}) with {}",
                        t.name(),
                        vt.a_name()
                    ),
                ));
            }
        }
        Ok(Stage::Scalar {
            aggregate,
            op,
            value,
        })
    }

    /// Refusals for TraceQL words tracewarden does not implement.
    fn unsupported_word(&self, token: &Token, word: &str) -> Option<ParseError> {
        let message = match word {
            "rate"
            | "count_over_time"
            | "min_over_time"
            | "max_over_time"
            | "avg_over_time"
            | "sum_over_time"
            | "quantile_over_time"
            | "histogram_over_time"
            | "compare" => {
                format!("metrics function {word}() is not supported")
            }
            "topk" | "bottomk" => format!("metrics function {word}() is not supported"),
            "with" => "query hints `with(...)` are not supported".to_owned(),
            "childCount" | "nestedSetLeft" | "nestedSetRight" | "nestedSetParent" => {
                format!("intrinsic {word} is not supported")
            }
            "quantile" | "stddev" => format!("aggregate {word}() is not supported"),
            _ => return None,
        };
        Some(self.error_at(token.clone(), ParseErrorKind::Unsupported, message))
    }

    fn arithmetic(&self, token: Token) -> ParseError {
        let found = self.describe(&token);
        self.error_at(
            token,
            ParseErrorKind::Unsupported,
            format!("arithmetic ({found}) in field expressions is not supported"),
        )
    }

    // ---- filter level ----

    fn filter_expr(&mut self) -> Result<Expr, ParseError> {
        let mut operands = vec![self.filter_and()?];
        while *self.peek() == Tok::Or {
            self.next();
            operands.push(self.filter_and()?);
        }
        Ok(flat(operands, Expr::Or))
    }

    fn filter_and(&mut self) -> Result<Expr, ParseError> {
        let mut operands = vec![self.filter_not()?];
        while *self.peek() == Tok::And {
            self.next();
            operands.push(self.filter_not()?);
        }
        Ok(flat(operands, Expr::And))
    }

    fn filter_not(&mut self) -> Result<Expr, ParseError> {
        if *self.peek() == Tok::Not {
            let token = self.next();
            self.enter(&token)?;
            let inner = self.filter_not();
            self.leave();
            return Ok(Expr::Not(Box::new(inner?)));
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Expr, ParseError> {
        let lhs_token = self.peek_token();
        let lhs = self.operand()?;
        let op_token = self.peek_token();
        let Some(op) = comparison_op(&op_token.tok) else {
            if let Tok::Arith(_) = op_token.tok {
                return Err(self.arithmetic(op_token));
            }
            return self.lone_operand(lhs, lhs_token);
        };
        self.next();
        let rhs_token = self.peek_token();
        let rhs = self.operand()?;
        if let Tok::Arith(_) = self.peek() {
            return Err(self.arithmetic(self.peek_token()));
        }
        match (lhs, rhs) {
            (Operand::Field(field), Operand::Static(value)) => {
                self.field_comparison(field, op, value, &op_token, &rhs_token)
            }
            (Operand::Static(value), Operand::Field(field)) => {
                if matches!(op, CompareOp::Regex | CompareOp::NotRegex) {
                    return Err(self.error_at(
                        lhs_token,
                        ParseErrorKind::Syntax,
                        "the regular expression goes on the right of =~ and !~",
                    ));
                }
                self.field_comparison(field, op.flipped(), value, &op_token, &lhs_token)
            }
            (Operand::Static(a), Operand::Static(b)) => {
                if matches!(op, CompareOp::Regex | CompareOp::NotRegex) {
                    let regex = self.compile_regex(&b, &rhs_token)?;
                    return Ok(Expr::Const(compare(
                        a.as_val(),
                        op,
                        b.as_val(),
                        Some(&regex),
                    )));
                }
                Ok(Expr::Const(compare(a.as_val(), op, b.as_val(), None)))
            }
            (Operand::Field(_), Operand::Field(_)) => Err(self.error_at(
                lhs_token,
                ParseErrorKind::Unsupported,
                "comparing two fields is not supported; compare a field with a value",
            )),
            (Operand::Expr(_), _) => Err(self.error_at(
                op_token,
                ParseErrorKind::Syntax,
                format!("{} cannot follow a parenthesised condition", op.as_str()),
            )),
            (_, Operand::Expr(_)) => Err(self.error_at(
                rhs_token,
                ParseErrorKind::Syntax,
                "expected a value, found a parenthesised condition",
            )),
        }
    }

    fn lone_operand(&self, operand: Operand, token: Token) -> Result<Expr, ParseError> {
        match operand {
            Operand::Expr(expr) => Ok(expr),
            Operand::Static(Static::Bool(b)) => Ok(Expr::Const(b)),
            Operand::Field(field) => {
                if let Field::Intrinsic(i) = &field {
                    let next = self.peek_token();
                    if i.value_type() != ValueType::Bool && next.tok != Tok::RBrace {
                        return Err(self.expected(next, COMPARISON_OPS));
                    }
                }
                match &field {
                    Field::Intrinsic(i) => Err(self.error_at(
                        token,
                        ParseErrorKind::Type,
                        format!(
                            "{} is {}, not a condition: compare it with a value",
                            i.as_str(),
                            i.value_type().a_name()
                        ),
                    )),
                    Field::Attribute { .. } => {
                        let next = self.peek_token();
                        if !matches!(next.tok, Tok::RBrace | Tok::And | Tok::Or | Tok::RParen) {
                            return Err(self.expected(next, COMPARISON_OPS));
                        }
                        Ok(Expr::Truthy(field))
                    }
                }
            }
            Operand::Static(value) => {
                let next = self.peek_token();
                if !matches!(next.tok, Tok::RBrace | Tok::And | Tok::Or | Tok::RParen) {
                    return Err(self.expected(next, COMPARISON_OPS));
                }
                Err(self.error_at(
                    token,
                    ParseErrorKind::Type,
                    format!(
                        "{} value is not a condition: a filter needs a boolean",
                        value.value_type().a_name()
                    ),
                ))
            }
        }
    }

    fn field_comparison(
        &self,
        field: Field,
        op: CompareOp,
        value: Static,
        op_token: &Token,
        value_token: &Token,
    ) -> Result<Expr, ParseError> {
        let is_regex = matches!(op, CompareOp::Regex | CompareOp::NotRegex);
        if let Static::Nil = value
            && !matches!(op, CompareOp::Eq | CompareOp::Ne)
        {
            return Err(self.error_at(
                op_token.clone(),
                ParseErrorKind::Type,
                format!("nil can only be compared with = or !=, not {}", op.as_str()),
            ));
        }
        if is_regex && !matches!(value, Static::Str(_)) {
            return Err(self.error_at(
                value_token.clone(),
                ParseErrorKind::Type,
                format!(
                    "{} needs a string holding a regular expression, found {}",
                    op.as_str(),
                    value.value_type().a_name()
                ),
            ));
        }
        if let Field::Intrinsic(i) = &field {
            let ft = i.value_type();
            let vt = value.value_type();
            if is_regex && ft != ValueType::Str {
                return Err(self.error_at(
                    op_token.clone(),
                    ParseErrorKind::Type,
                    format!(
                        "{} is {}: it cannot be matched with a regular expression",
                        i.as_str(),
                        ft.a_name()
                    ),
                ));
            }
            if vt != ValueType::Nil && !ft.comparable(vt) {
                return Err(self.error_at(
                    value_token.clone(),
                    ParseErrorKind::Type,
                    format!(
                        "cannot compare {} ({}) with {}",
                        i.as_str(),
                        ft.a_name(),
                        vt.a_name()
                    ),
                ));
            }
            if matches!(ft, ValueType::Status | ValueType::Kind | ValueType::Bool)
                && !matches!(op, CompareOp::Eq | CompareOp::Ne)
            {
                return Err(self.error_at(
                    op_token.clone(),
                    ParseErrorKind::Type,
                    format!("{} can only be compared with = or !=", i.as_str()),
                ));
            }
        }
        let regex = if is_regex {
            Some(self.compile_regex(&value, value_token)?)
        } else {
            None
        };
        Ok(Expr::Compare {
            field,
            op,
            value,
            regex,
            verdict: VerdictSlot::new(),
        })
    }

    /// Compiles a pattern anchored at both ends: recent Tempo matches the
    /// whole value (`=~ "GET"` does not match "GET /x"), like PromQL.
    fn compile_regex(&self, value: &Static, token: &Token) -> Result<Pattern, ParseError> {
        let Static::Str(pattern) = value else {
            return Err(self.error_at(
                token.clone(),
                ParseErrorKind::Type,
                "a regular expression must be a string",
            ));
        };
        RegexBuilder::new(&format!("^(?s:{pattern})$"))
            .size_limit(REGEX_SIZE_LIMIT)
            .dfa_size_limit(REGEX_SIZE_LIMIT)
            .nest_limit(64)
            .build()
            .map(Pattern::new)
            .map_err(|e| {
                let detail = match e {
                    regex::Error::CompiledTooBig(limit) => {
                        format!(
                            "regular expression is too large (compiled size over {limit} bytes)"
                        )
                    }
                    other => {
                        // The regex crate's message spans lines; keep the last
                        // line, which says what is wrong.
                        let text = other.to_string();
                        let last = text.lines().last().unwrap_or("").trim().to_owned();
                        format!("invalid regular expression {pattern:?}: {last}")
                    }
                };
                self.error_at(token.clone(), ParseErrorKind::InvalidRegex, detail)
            })
    }

    fn operand(&mut self) -> Result<Operand, ParseError> {
        let token = self.peek_token();
        match &token.tok {
            Tok::LParen => {
                self.next();
                self.enter(&token)?;
                let inner = self.filter_expr();
                self.leave();
                let inner = inner?;
                let close = self.peek_token();
                if close.tok != Tok::RParen {
                    if let Tok::Arith(_) = close.tok {
                        return Err(self.arithmetic(close));
                    }
                    if comparison_op(&close.tok).is_some() {
                        return Err(self.expected(close, "`)`, `&&` or `||`"));
                    }
                    return Err(self.expected(close, "`)`"));
                }
                self.next();
                Ok(Operand::Expr(inner))
            }
            Tok::Attribute(..) | Tok::ScopedIntrinsic(..) | Tok::ParentAttribute(_) => {
                Ok(Operand::Field(self.field("a field")?))
            }
            Tok::Ident(word) if is_field_word(word) => Ok(Operand::Field(self.field("a field")?)),
            Tok::Arith('-') => {
                // A negative number; any other use of `-` is arithmetic.
                match self.peek2() {
                    Tok::Int(_) | Tok::Float(_) | Tok::Duration(_) => {}
                    _ => return Err(self.arithmetic(token)),
                }
                self.next();
                let number = self.next();
                match number.tok {
                    Tok::Int(i) => Ok(Operand::Static(Static::Int(i.saturating_neg()))),
                    Tok::Float(f) => Ok(Operand::Static(Static::Float(-f))),
                    _ => Err(self.error_at(
                        token,
                        ParseErrorKind::InvalidLiteral,
                        "durations cannot be negative",
                    )),
                }
            }
            _ => match self.static_value()? {
                Some(value) => Ok(Operand::Static(value)),
                None => {
                    if let Tok::Ident(word) = &token.tok
                        && let Some(err) = self.unsupported_word(&token, word)
                    {
                        return Err(err);
                    }
                    Err(self.expected(token, "a field or a value"))
                }
            },
        }
    }

    /// A literal, consumed; `None` (nothing consumed) when the next token
    /// is not one.
    fn static_value(&mut self) -> Result<Option<Static>, ParseError> {
        let token = self.peek_token();
        let value = match &token.tok {
            Tok::Str(s) => Static::Str(s.clone()),
            Tok::Int(i) => Static::Int(*i),
            Tok::Float(f) => Static::Float(*f),
            Tok::Duration(d) => Static::Duration(*d),
            Tok::Arith('-') => {
                let value = match self.peek2() {
                    Tok::Int(i) => Static::Int(i.saturating_neg()),
                    Tok::Float(f) => Static::Float(-f),
                    _ => return Ok(None),
                };
                self.next();
                self.next();
                return Ok(Some(value));
            }
            Tok::Ident(word) => match word.as_str() {
                "true" => Static::Bool(true),
                "false" => Static::Bool(false),
                "nil" => Static::Nil,
                "ok" => Static::Status(tracewarden_model::StatusCode::Ok),
                "error" => Static::Status(tracewarden_model::StatusCode::Error),
                "unset" => Static::Status(tracewarden_model::StatusCode::Unset),
                "unspecified" => Static::Kind(tracewarden_model::SpanKind::Unspecified),
                "internal" => Static::Kind(tracewarden_model::SpanKind::Internal),
                "server" => Static::Kind(tracewarden_model::SpanKind::Server),
                "client" => Static::Kind(tracewarden_model::SpanKind::Client),
                "producer" => Static::Kind(tracewarden_model::SpanKind::Producer),
                "consumer" => Static::Kind(tracewarden_model::SpanKind::Consumer),
                _ => return Ok(None),
            },
            _ => return Ok(None),
        };
        self.next();
        Ok(Some(value))
    }

    fn field(&mut self, what: &str) -> Result<Field, ParseError> {
        let token = self.next();
        match &token.tok {
            Tok::Attribute(scope, name) => Ok(Field::Attribute {
                scope: *scope,
                name: name.clone().into(),
            }),
            Tok::ParentAttribute(_) => Err(self.error_at(
                token,
                ParseErrorKind::Unsupported,
                "the parent scope (`parent.`) is not supported",
            )),
            Tok::ScopedIntrinsic(scope, name) => match Intrinsic::lookup(Some(scope), name) {
                Some(i) => Ok(Field::Intrinsic(i)),
                None => {
                    let known = match scope.as_str() {
                        "span" => "name, status, statusMessage, kind, duration, id, parentID",
                        "trace" => "rootName, rootService, duration, id",
                        "event" => "name, timeSinceStart",
                        "link" => "traceID, spanID",
                        _ => "name, version",
                    };
                    let kind = if matches!(
                        (scope.as_str(), name.as_str()),
                        ("span", "childCount" | "parentID2")
                            | (
                                "span",
                                "nestedSetLeft" | "nestedSetRight" | "nestedSetParent"
                            )
                            | ("link", "traceState")
                    ) {
                        ParseErrorKind::Unsupported
                    } else {
                        ParseErrorKind::Syntax
                    };
                    let verb = if kind == ParseErrorKind::Unsupported {
                        "is not supported"
                    } else {
                        "is not a TraceQL intrinsic"
                    };
                    Err(self.error_at(
                        token.clone(),
                        kind,
                        format!("{scope}:{name} {verb} (known after {scope}: {known})"),
                    ))
                }
            },
            Tok::Ident(word) => match Intrinsic::lookup(None, word) {
                Some(i) => Ok(Field::Intrinsic(i)),
                None => Err(self
                    .unsupported_word(&token, word)
                    .unwrap_or_else(|| self.expected(token.clone(), what))),
            },
            _ => Err(self.expected(token, what)),
        }
    }
}

/// One operand stays itself; several make an n-ary node.
fn flat(mut operands: Vec<Expr>, make: fn(Vec<Expr>) -> Expr) -> Expr {
    if operands.len() == 1
        && let Some(only) = operands.pop()
    {
        return only;
    }
    make(operands)
}

const AGGREGATES: [&str; 5] = ["count", "avg", "min", "max", "sum"];

fn is_field_word(word: &str) -> bool {
    Intrinsic::lookup(None, word).is_some()
}

fn comparison_op(tok: &Tok) -> Option<CompareOp> {
    Some(match tok {
        Tok::Eq => CompareOp::Eq,
        Tok::Ne => CompareOp::Ne,
        Tok::Gt => CompareOp::Gt,
        Tok::Ge => CompareOp::Ge,
        Tok::Lt => CompareOp::Lt,
        Tok::Le => CompareOp::Le,
        Tok::Re => CompareOp::Regex,
        Tok::Nre => CompareOp::NotRegex,
        _ => return None,
    })
}
