//! Query-string parameters of the search endpoints, and turning Tempo's
//! legacy `tags` search into TraceQL.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use tracewarden_search::{
    DEFAULT_LIMIT, DEFAULT_SPANS_PER_SPANSET, SearchRequest, parse_duration, parse_time,
};

use crate::api::ApiError;

/// The parameters both search endpoints accept (Tempo's names). Values stay
/// strings so a malformed one gets our message rather than the extractor's.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchParams {
    /// TraceQL.
    pub q: Option<String>,
    /// Tempo's legacy search: logfmt `key=value` pairs, all of which must hold.
    pub tags: Option<String>,
    /// Unix seconds or RFC 3339.
    pub start: Option<String>,
    pub end: Option<String>,
    /// A duration back from now (`1h`); ours, instead of `start`.
    pub since: Option<String>,
    pub limit: Option<String>,
    /// Spans per spanset.
    pub spss: Option<String>,
    pub min_duration: Option<String>,
    pub max_duration: Option<String>,
}

impl SearchParams {
    /// The validated search request.
    pub fn request(&self) -> Result<SearchRequest, ApiError> {
        let bad = ApiError::BadRequest;
        let text = match (self.q.as_deref().map(str::trim), self.tags.as_deref()) {
            (Some(q), _) if !q.is_empty() => q.to_string(),
            (_, Some(tags)) if !tags.trim().is_empty() => tags_to_traceql(tags).map_err(bad)?,
            _ => "{}".to_string(),
        };
        let query = tracewarden_traceql::parse(&text).map_err(ApiError::InvalidQuery)?;
        let now = now_unix_nano();
        let end = match self.end.as_deref().filter(|s| !s.trim().is_empty()) {
            Some(end) => parse_time(end).map_err(bad)?,
            // A little ahead of now: clocks of senders drift.
            None => now.saturating_add(3_600_000_000_000),
        };
        let start = match (self.start.as_deref(), self.since.as_deref()) {
            (Some(start), _) if !start.trim().is_empty() => parse_time(start).map_err(bad)?,
            (_, Some(since)) if !since.trim().is_empty() => {
                now.saturating_sub(parse_duration(since).map_err(bad)?)
            }
            _ => 0,
        };
        // Tempo's `end` is inclusive, in whole seconds.
        let end = if self.end.is_some() {
            end.saturating_add(1)
        } else {
            end
        };
        let mut request = SearchRequest::new(query, start, end)
            .map_err(|e| ApiError::BadRequest(e.to_string()))?;
        let limit = number(self.limit.as_deref(), "limit")?.unwrap_or(DEFAULT_LIMIT);
        request = request
            .with_limit(limit)
            .map_err(|e| ApiError::BadRequest(e.to_string()))?;
        request.spans_per_spanset = number(self.spss.as_deref(), "spss")?
            .unwrap_or(DEFAULT_SPANS_PER_SPANSET)
            .clamp(1, 1_000);
        request.min_trace_duration_nanos = duration(self.min_duration.as_deref())?;
        request.max_trace_duration_nanos = duration(self.max_duration.as_deref())?;
        Ok(request)
    }
}

fn number(text: Option<&str>, name: &str) -> Result<Option<usize>, ApiError> {
    match text.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(text) => text.parse().map(Some).map_err(|_| {
            ApiError::BadRequest(format!("{name} must be a positive integer, not `{text}`"))
        }),
    }
}

fn duration(text: Option<&str>) -> Result<Option<u64>, ApiError> {
    match text.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(text) => parse_duration(text).map(Some).map_err(ApiError::BadRequest),
    }
}

fn now_unix_nano() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Tempo's legacy `tags=` search (`service.name=api http.status_code=500`)
/// as a TraceQL spanset filter: each pair matches a span or resource
/// attribute (`.key`); a value that is a number also matches the integer.
pub fn tags_to_traceql(tags: &str) -> Result<String, String> {
    let mut conditions = Vec::new();
    for (key, value) in logfmt(tags)? {
        let field = format!(".{}", attribute_name(&key));
        let string = format!("{field} = {}", quote(&value));
        conditions.push(match value.parse::<i64>() {
            Ok(number) => format!("({string} || {field} = {number})"),
            Err(_) => string,
        });
    }
    Ok(format!("{{ {} }}", conditions.join(" && ")))
}

/// An attribute name as TraceQL accepts it, quoted when it has characters
/// an unquoted name cannot.
fn attribute_name(name: &str) -> String {
    let plain = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '/' | ':'));
    if plain { name.to_string() } else { quote(name) }
}

fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Splits logfmt: `a=b c="d e"`.
fn logfmt(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut pairs = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            return Ok(pairs);
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        if chars.next() != Some('=') || key.is_empty() {
            return Err(format!(
                "tags must be logfmt key=value pairs; `{key}` has no value"
            ));
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some(c) => value.push(c),
                        None => return Err("tags: unterminated quoted value".into()),
                    },
                    Some(c) => value.push(c),
                    None => return Err("tags: unterminated quoted value".into()),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        pairs.push((key, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_become_traceql_that_parses() {
        let q = tags_to_traceql(r#"service.name=api http.response.status_code=500 msg="a \"b\"""#)
            .unwrap();
        assert_eq!(
            q,
            r#"{ .service.name = "api" && (.http.response.status_code = "500" || .http.response.status_code = 500) && .msg = "a \"b\"" }"#
        );
        assert!(tracewarden_traceql::parse(&q).is_ok());
        assert!(tags_to_traceql("novalue").is_err());
        assert!(tags_to_traceql(r#"a="open"#).is_err());
        // A key TraceQL cannot take unquoted is quoted.
        let odd = tags_to_traceql(r#"a"b(c)=x"#).unwrap();
        assert_eq!(odd, r#"{ ."a\"b(c)" = "x" }"#);
        assert!(tracewarden_traceql::parse(&odd).is_ok(), "{odd}");
    }

    #[test]
    fn request_defaults_and_errors() {
        let params = SearchParams::default();
        let request = params.request().unwrap();
        assert_eq!(request.limit, DEFAULT_LIMIT);
        assert_eq!(request.start_unix_nano, 0);
        let bad = |p: SearchParams| p.request().unwrap_err().to_string();
        assert!(
            bad(SearchParams {
                q: Some("{ span.a = }".into()),
                ..Default::default()
            })
            .contains("invalid TraceQL")
        );
        assert!(
            bad(SearchParams {
                limit: Some("x".into()),
                ..Default::default()
            })
            .contains("limit")
        );
        assert!(
            bad(SearchParams {
                limit: Some("0".into()),
                ..Default::default()
            })
            .contains("limit")
        );
        assert!(
            bad(SearchParams {
                start: Some("yesterday".into()),
                ..Default::default()
            })
            .contains("not a time")
        );
        assert!(
            bad(SearchParams {
                start: Some("20".into()),
                end: Some("10".into()),
                ..Default::default()
            })
            .contains("empty")
        );
        assert!(
            bad(SearchParams {
                min_duration: Some("fast".into()),
                ..Default::default()
            })
            .contains("fast")
        );
        let request = SearchParams {
            start: Some("10".into()),
            end: Some("20".into()),
            spss: Some("5".into()),
            min_duration: Some("100ms".into()),
            ..Default::default()
        }
        .request()
        .unwrap();
        assert_eq!(request.start_unix_nano, 10_000_000_000);
        assert_eq!(request.end_unix_nano, 20_000_000_001);
        assert_eq!(request.spans_per_spanset, 5);
        assert_eq!(request.min_trace_duration_nanos, Some(100_000_000));
    }
}
