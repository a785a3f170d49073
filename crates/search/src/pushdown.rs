//! Turning a query's necessary conditions into a [`SpanFilter`] the store
//! can prune with.
//!
//! [`Query::required_conditions`] lists conjunctions, each satisfied by at
//! least one span of every matching trace. The store can apply two kinds of
//! condition before decoding a span: the service name (`resource.service.name
//! = "..."`) and equality on a dedicated column, which holds the *span*
//! attribute of that name (so only `span.`-scoped conditions qualify: an
//! unscoped `.client.address` may also match a resource attribute, which the
//! column does not hold). Dedicated columns with bloom filters
//! (`client.address`, `enduser.id`, `session.id`) prune best, so the
//! conjunction with the most of those wins.
//!
//! Pushing down is only ever a pre-filter: every span the store returns is
//! still checked against the full query.

use tracewarden_model::semconv;
use tracewarden_store::{DedicatedColumn, SpanFilter};
use tracewarden_traceql::{AttributeScope, CompareOp, Condition, Field, Static};

/// What the store can do for one conjunction.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Pushdown {
    pub service_name: Option<String>,
    pub equals: Vec<(DedicatedColumn, String)>,
}

impl Pushdown {
    /// The best pushdown among `conjunctions` (empty when none helps).
    pub fn choose(conjunctions: &[Vec<Condition>]) -> Pushdown {
        conjunctions
            .iter()
            .map(|conditions| Pushdown::of(conditions))
            .max_by_key(Pushdown::score)
            .unwrap_or_default()
    }

    /// What the store can apply of one conjunction.
    pub fn of(conditions: &[Condition]) -> Pushdown {
        let mut pushdown = Pushdown::default();
        for condition in conditions {
            if condition.op != CompareOp::Eq {
                continue;
            }
            let Field::Attribute { scope, name } = &condition.field else {
                continue;
            };
            match (scope, &condition.value) {
                (AttributeScope::Resource, Static::Str(value)) if name == semconv::SERVICE_NAME => {
                    // Two different service names in one conjunction can
                    // never both hold: keep the first, the query still
                    // checks the other and matches nothing.
                    pushdown.service_name.get_or_insert_with(|| value.clone());
                }
                (AttributeScope::Span, value) => {
                    let Some(column) = DedicatedColumn::from_attribute_key(name) else {
                        continue;
                    };
                    let text = match value {
                        Static::Str(text) if !column.is_integer() => text.clone(),
                        Static::Int(number) if column.is_integer() => number.to_string(),
                        // A value of another type never equals what the
                        // column holds; the query itself decides.
                        _ => continue,
                    };
                    if !pushdown.equals.iter().any(|(c, _)| *c == column) {
                        pushdown.equals.push((column, text));
                    }
                }
                _ => {}
            }
        }
        pushdown
    }

    /// Higher prunes more: bloom-filtered columns first, then other
    /// dedicated columns, then the service name.
    fn score(&self) -> u32 {
        let blooms = self
            .equals
            .iter()
            .filter(|(c, _)| c.has_bloom_filter())
            .count() as u32;
        let others = self.equals.len() as u32 - blooms;
        blooms * 100 + others * 10 + u32::from(self.service_name.is_some())
    }

    /// Whether the store can prune anything with it.
    pub fn is_empty(&self) -> bool {
        self.service_name.is_none() && self.equals.is_empty()
    }

    /// The store filter for spans starting in `[start, end)`.
    pub fn filter(&self, start_unix_nano: u64, end_unix_nano: u64) -> SpanFilter {
        SpanFilter {
            start_unix_nano: Some(start_unix_nano),
            end_unix_nano: Some(end_unix_nano),
            service_name: self.service_name.clone(),
            equals: self.equals.clone(),
            // Not used: TraceQL compares arrays element-wise, and a
            // generic attribute's array is not in the string column.
            attribute_equals: Vec::new(),
            trace_ids: None,
            limit: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conditions(query: &str) -> Vec<Vec<Condition>> {
        tracewarden_traceql::parse(query)
            .map(|q| q.required_conditions())
            .unwrap_or_else(|e| panic!("{query}: {e}"))
    }

    #[test]
    fn span_scoped_dedicated_equality_is_pushed_down() {
        let p = Pushdown::choose(&conditions(
            r#"{ span.client.address = "10.0.0.1" && span.http.response.status_code = 401 }"#,
        ));
        assert_eq!(
            p.equals,
            vec![
                (DedicatedColumn::ClientAddress, "10.0.0.1".to_string()),
                (DedicatedColumn::HttpResponseStatusCode, "401".to_string()),
            ]
        );
        assert_eq!(p.service_name, None);
    }

    #[test]
    fn service_name_is_pushed_down() {
        let p = Pushdown::choose(&conditions(r#"{ resource.service.name = "auth" }"#));
        assert_eq!(p.service_name.as_deref(), Some("auth"));
        assert!(p.equals.is_empty());
    }

    #[test]
    fn what_the_store_cannot_decide_is_left_to_the_query() {
        for query in [
            r#"{ .client.address = "10.0.0.1" }"#,
            r#"{ span.client.address != "10.0.0.1" }"#,
            r#"{ span.client.address =~ "10.*" }"#,
            r#"{ span.http.response.status_code = "401" }"#,
            r#"{ span.client.address = 7 }"#,
            r#"{ span.app.tenant = "a" }"#,
            r#"{ span.client.address = "a" || span.client.address = "b" }"#,
            r#"{ span.client.address = "a" } || { span.client.address = "b" }"#,
            "{}",
        ] {
            assert!(Pushdown::choose(&conditions(query)).is_empty(), "{query}");
        }
    }

    #[test]
    fn the_most_selective_side_of_a_structural_query_wins() {
        let p = Pushdown::choose(&conditions(
            r#"{ resource.service.name = "gateway" } >> { span.enduser.id = "alice" }"#,
        ));
        assert_eq!(
            p.equals,
            vec![(DedicatedColumn::EnduserId, "alice".to_string())]
        );
    }
}
