//! Parser: every construct parses and prints canonically; every error says
//! where, what was expected and what was found.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use tracewarden_traceql::{
    AttributeScope, CompareOp, Condition, Field, Intrinsic, MAX_DEPTH, MAX_QUERY_LEN,
    ParseErrorKind, Static, parse,
};

/// Parses, prints canonically, and checks the printed form parses to the
/// same canonical form.
fn canonical(text: &str) -> String {
    let query = parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
    let printed = query.to_string();
    let again = parse(&printed).unwrap_or_else(|e| panic!("reparse of {printed}: {e}"));
    assert_eq!(again.to_string(), printed, "canonical form is not stable");
    printed
}

#[test]
fn constructs_parse_to_canonical_form() {
    let cases = [
        ("{}", "{ }"),
        ("{ true }", "{ }"),
        ("{ false }", "{ false }"),
        (r#"{ name = "GET /" }"#, r#"{ name = "GET /" }"#),
        ("{ span:name != `a\\b` }", r#"{ name != "a\\b" }"#),
        ("{ status = error }", "{ status = error }"),
        ("{ span:status = ok }", "{ status = ok }"),
        ("{ status != unset }", "{ status != unset }"),
        (
            r#"{ statusMessage =~ "time.*" }"#,
            r#"{ statusMessage =~ "time.*" }"#,
        ),
        ("{ kind = server }", "{ kind = server }"),
        (
            "{ kind = unspecified || kind = internal || kind = client || kind = producer || kind = consumer }",
            "{ (kind = unspecified) || (kind = internal) || (kind = client) || (kind = producer) || (kind = consumer) }",
        ),
        ("{ duration > 1.5s }", "{ duration > 1500ms }"),
        ("{ span:duration >= 1h30m }", "{ duration >= 90m }"),
        ("{ duration < 10µs }", "{ duration < 10us }"),
        ("{ duration < 250ns }", "{ duration < 250ns }"),
        (r#"{ span:id = "0102" }"#, r#"{ span:id = "0102" }"#),
        ("{ span:parentID = nil }", "{ span:parentID = nil }"),
        (r#"{ rootName = "a" }"#, r#"{ rootName = "a" }"#),
        (r#"{ trace:rootName = "a" }"#, r#"{ rootName = "a" }"#),
        (
            r#"{ rootServiceName = "a" }"#,
            r#"{ rootServiceName = "a" }"#,
        ),
        (
            r#"{ trace:rootService = "a" }"#,
            r#"{ rootServiceName = "a" }"#,
        ),
        ("{ traceDuration > 1s }", "{ traceDuration > 1s }"),
        ("{ trace:duration > 1s }", "{ traceDuration > 1s }"),
        (r#"{ trace:id = "ab" }"#, r#"{ trace:id = "ab" }"#),
        (
            r#"{ event:name = "exception" }"#,
            r#"{ event:name = "exception" }"#,
        ),
        (
            "{ event:timeSinceStart > 2ms }",
            "{ event:timeSinceStart > 2ms }",
        ),
        (r#"{ link:traceID = "ab" }"#, r#"{ link:traceID = "ab" }"#),
        (r#"{ link:spanID = "ab" }"#, r#"{ link:spanID = "ab" }"#),
        (
            r#"{ instrumentation:name = "x" }"#,
            r#"{ instrumentation:name = "x" }"#,
        ),
        (
            r#"{ instrumentation:version = "1" }"#,
            r#"{ instrumentation:version = "1" }"#,
        ),
        (
            "{ span.http.status_code >= 400 }",
            "{ span.http.status_code >= 400 }",
        ),
        (
            r#"{ resource.k8s.pod-name = "a" }"#,
            r#"{ resource.k8s.pod-name = "a" }"#,
        ),
        (
            r#"{ event.exception.type = "E" }"#,
            r#"{ event.exception.type = "E" }"#,
        ),
        (r#"{ link.kind = "x" }"#, r#"{ link.kind = "x" }"#),
        (
            r#"{ instrumentation.team = "x" }"#,
            r#"{ instrumentation.team = "x" }"#,
        ),
        ("{ .foo = 1.25 }", "{ .foo = 1.25 }"),
        (r#"{ span."foo bar" = "x" }"#, r#"{ span."foo bar" = "x" }"#),
        ("{ span.x = -3 }", "{ span.x = -3 }"),
        ("{ span.x = 2.0 }", "{ span.x = 2.0 }"),
        ("{ span.x = 1e3 }", "{ span.x = 1000.0 }"),
        ("{ span.x != nil }", "{ span.x != nil }"),
        ("{ span.x = true }", "{ span.x = true }"),
        ("{ span.x }", "{ span.x }"),
        ("{ 3 < span.x }", "{ span.x > 3 }"),
        (r#"{ span.a = "x\n\"y\"" }"#, r#"{ span.a = "x\n\"y\"" }"#),
        (
            "{ !(span.a = 1) && (span.b = 2 || span.c = 3) }",
            "{ !(span.a = 1) && ((span.b = 2) || (span.c = 3)) }",
        ),
        ("{.a=1}>{.b=1}", "{ .a = 1 } > { .b = 1 }"),
        ("{} >> {}", "{ } >> { }"),
        ("{} < {}", "{ } < { }"),
        ("{} << {}", "{ } << { }"),
        ("{} ~ {}", "{ } ~ { }"),
        ("{} !> {}", "{ } !> { }"),
        ("{} !>> {}", "{ } !>> { }"),
        ("{} !< {}", "{ } !< { }"),
        ("{} !<< {}", "{ } !<< { }"),
        ("{} !~ {}", "{ } !~ { }"),
        ("{} &> {}", "{ } &> { }"),
        ("{} &>> {}", "{ } &>> { }"),
        ("{} &< {}", "{ } &< { }"),
        ("{} &<< {}", "{ } &<< { }"),
        ("{} &~ {}", "{ } &~ { }"),
        ("{} && {} || {}", "({ } && { }) || { }"),
        ("{} || {} && {}", "{ } || ({ } && { })"),
        ("{} > {} && {}", "({ } > { }) && { }"),
        ("({} || {}) > {}", "({ } || { }) > { }"),
        ("(({}))", "{ }"),
        ("{} | count() > 2", "{ } | count() > 2"),
        ("{} | avg(duration) > 1s", "{ } | avg(duration) > 1s"),
        ("{} | min(span.x) <= 2.5", "{ } | min(span.x) <= 2.5"),
        ("{} | max(duration) = 3ms", "{ } | max(duration) = 3ms"),
        ("{} | sum(span.bytes) != 0", "{ } | sum(span.bytes) != 0"),
        (
            "{} | by(resource.service.name)",
            "{ } | by(resource.service.name)",
        ),
        ("{} | by(name, kind)", "{ } | by(name, kind)"),
        (
            "{} | select(span.a, status)",
            "{ } | select(span.a, status)",
        ),
        ("{} | coalesce()", "{ } | coalesce()"),
        (
            "{} | { .a = 1 } | count() > 1",
            "{ } | { .a = 1 } | count() > 1",
        ),
        ("({} | count() > 1) && {}", "({ } | count() > 1) && { }"),
        (
            "{ span.a = 1 }\n| count()\n> 1",
            "{ span.a = 1 } | count() > 1",
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(canonical(text), expected, "query: {text}");
    }
}

#[test]
fn attribute_names_with_special_characters_round_trip() {
    for name in ["a b", "a=b", "x\"y", "{}", "tab\there"] {
        let mut text = String::from("{ span.");
        text.push('"');
        text.push_str(
            &name
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\t', "\\t"),
        );
        text.push_str("\" = 1 }");
        let query = parse(&text).unwrap();
        let conditions = query.required_conditions();
        assert_eq!(
            conditions[0][0].field,
            Field::Attribute {
                scope: AttributeScope::Span,
                name: name.into()
            }
        );
        canonical(&text);
    }
}

#[test]
fn conditions_carry_fields_and_values() {
    let query = parse(r#"{ span.http.route = "/login" && duration > 1s && .x =~ "a.*" }"#).unwrap();
    assert_eq!(
        query.required_conditions(),
        vec![vec![
            Condition {
                field: Field::Attribute {
                    scope: AttributeScope::Span,
                    name: "http.route".into()
                },
                op: CompareOp::Eq,
                value: Static::Str("/login".into()),
            },
            Condition {
                field: Field::Intrinsic(Intrinsic::Duration),
                op: CompareOp::Gt,
                value: Static::Duration(1_000_000_000),
            },
            Condition {
                field: Field::Attribute {
                    scope: AttributeScope::Unscoped,
                    name: "x".into()
                },
                op: CompareOp::Regex,
                value: Static::Str("a.*".into()),
            },
        ]]
    );
}

/// (query, kind, line, column, message)
#[test]
fn errors_say_where_what_was_expected_and_what_was_found() {
    use ParseErrorKind::*;
    let cases: &[(&str, ParseErrorKind, u32, u32, &str)] = &[
        (
            "{ span.http.method foo }",
            Syntax,
            1,
            20,
            r#"expected a comparison operator (= != > >= < <= =~ !~), found "foo""#,
        ),
        (
            "",
            Syntax,
            1,
            1,
            "expected a spanset filter `{ ... }` or `(`, found end of query",
        ),
        (
            "name = 1",
            Syntax,
            1,
            1,
            r#"expected a spanset filter `{ ... }` or `(`, found "name""#,
        ),
        (
            "{ span.a = 1",
            Syntax,
            1,
            13,
            "expected `}` or `&&`, `||` to continue the filter, found end of query",
        ),
        (
            "{ span.a = }",
            Syntax,
            1,
            12,
            r#"expected a field or a value, found "}""#,
        ),
        (
            "{ foo = 1 }",
            Syntax,
            1,
            3,
            r#"expected a field or a value, found "foo""#,
        ),
        (
            "{ span.a = 1 } {",
            Syntax,
            1,
            16,
            r#"expected `|`, `&&`, `||`, a structural operator or end of query, found "{""#,
        ),
        ("{ } )", Syntax, 1, 5, "unbalanced `)`: no `(` to close"),
        ("({ }", Syntax, 1, 5, "expected `)`, found end of query"),
        (
            "{ span. = 1 }",
            Syntax,
            1,
            3,
            r#"expected an attribute name, found ' '"#,
        ),
        (r#"{ name = "abc }"#, Syntax, 1, 10, "unterminated string"),
        (
            r#"{ name = "a\qb" }"#,
            InvalidLiteral,
            1,
            12,
            r"unknown escape \q in string (use \\ for a backslash)",
        ),
        (
            "{ duration > 3parsecs }",
            InvalidLiteral,
            1,
            14,
            r#"invalid duration "3parsecs": expected a unit (ns, us, µs, ms, s, m, h), found "parsecs""#,
        ),
        (
            "{ span.x = 99999999999999999999 }",
            InvalidLiteral,
            1,
            12,
            "integer 99999999999999999999 is out of range",
        ),
        (
            "{ span:foo = 1 }",
            Syntax,
            1,
            3,
            "span:foo is not a TraceQL intrinsic (known after span: name, status, statusMessage, kind, duration, id, parentID)",
        ),
        (
            "{ status = \"error\" }",
            Type,
            1,
            12,
            "cannot compare status (a status) with a string",
        ),
        (
            "{ duration > 5 }",
            Type,
            1,
            14,
            "cannot compare duration (a duration) with an integer",
        ),
        (
            "{ kind > server }",
            Type,
            1,
            8,
            "kind can only be compared with = or !=",
        ),
        (
            "{ duration =~ \"1\" }",
            Type,
            1,
            12,
            "duration is a duration: it cannot be matched with a regular expression",
        ),
        (
            "{ span.x =~ 1 }",
            Type,
            1,
            13,
            "=~ needs a string holding a regular expression, found an integer",
        ),
        (
            "{ span.x > nil }",
            Type,
            1,
            10,
            "nil can only be compared with = or !=, not >",
        ),
        (
            "{ name }",
            Type,
            1,
            3,
            "name is a string, not a condition: compare it with a value",
        ),
        (
            "{ 1 }",
            Type,
            1,
            3,
            "an integer value is not a condition: a filter needs a boolean",
        ),
        (
            "{ \"x\" =~ span.a }",
            Syntax,
            1,
            3,
            "the regular expression goes on the right of =~ and !~",
        ),
        (
            r#"{ span.x =~ "(" }"#,
            InvalidRegex,
            1,
            13,
            r#"invalid regular expression "(": error: unclosed group"#,
        ),
        (
            "{ } | count(name) > 1",
            Syntax,
            1,
            13,
            r#"expected `)`: count() takes no arguments, found "name""#,
        ),
        (
            "{ } | avg(name) > 1",
            Type,
            1,
            11,
            "avg(name) needs a numeric field, name is a string",
        ),
        (
            "{ } | max(duration) > 2",
            Type,
            1,
            23,
            "cannot compare max(duration) (duration) with an integer",
        ),
        (
            "{ } | count() =~ 2",
            Type,
            1,
            15,
            "count() is a number: it cannot be matched with a regular expression",
        ),
        (
            "{ } | count()",
            Syntax,
            1,
            14,
            "expected a comparison operator (= != > >= < <= =~ !~) after count(), found end of query",
        ),
        (
            "{ } | by()",
            Syntax,
            1,
            10,
            r#"expected a field in by(...), found ")""#,
        ),
        (
            "{ } | coalesce(name)",
            Syntax,
            1,
            16,
            r#"expected `)`: coalesce takes no arguments, found "name""#,
        ),
        (
            "{ } | frobnicate()",
            Syntax,
            1,
            7,
            r#"expected a spanset filter, an aggregate (count avg min max sum), by, select or coalesce, found "frobnicate""#,
        ),
        (
            "{ } & { }",
            Syntax,
            1,
            5,
            "expected `&&`, `&>`, `&>>`, `&<`, `&<<` or `&~` after `&`",
        ),
        (
            "{ span.a = 1 }\n  | count() >\n  name",
            Syntax,
            3,
            3,
            r#"expected a value to compare count() with, found "name""#,
        ),
        ("{ # }", Syntax, 1, 3, "unexpected character '#'"),
        // Unsupported features are named.
        (
            "{ } | rate()",
            Unsupported,
            1,
            7,
            "metrics function rate() is not supported",
        ),
        (
            "{ } | count_over_time() by (name)",
            Unsupported,
            1,
            7,
            "metrics function count_over_time() is not supported",
        ),
        (
            "{ } | quantile_over_time(duration, .9)",
            Unsupported,
            1,
            7,
            "metrics function quantile_over_time() is not supported",
        ),
        (
            "{ } | histogram_over_time(duration)",
            Unsupported,
            1,
            7,
            "metrics function histogram_over_time() is not supported",
        ),
        (
            "{ } | compare({ status = error })",
            Unsupported,
            1,
            7,
            "metrics function compare() is not supported",
        ),
        (
            "{ } | topk(5)",
            Unsupported,
            1,
            7,
            "metrics function topk() is not supported",
        ),
        (
            "{ } with (most_recent=true)",
            Unsupported,
            1,
            5,
            "query hints `with(...)` are not supported",
        ),
        (
            "{ span.a + 1 = 2 }",
            Unsupported,
            1,
            10,
            r#"arithmetic ("+") in field expressions is not supported"#,
        ),
        (
            "{ span.a = 2 * 3 }",
            Unsupported,
            1,
            14,
            r#"arithmetic ("*") in field expressions is not supported"#,
        ),
        (
            "{ } | avg(duration) * 2 > 1s",
            Unsupported,
            1,
            21,
            "arithmetic on aggregates is not supported",
        ),
        (
            "{ parent.a = 1 }",
            Unsupported,
            1,
            3,
            "the parent scope (`parent.`) is not supported",
        ),
        (
            "{ childCount > 1 }",
            Unsupported,
            1,
            3,
            "intrinsic childCount is not supported",
        ),
        (
            "{ span:childCount > 1 }",
            Unsupported,
            1,
            3,
            "span:childCount is not supported (known after span: name, status, statusMessage, kind, duration, id, parentID)",
        ),
        (
            "{ span.a = span.b }",
            Unsupported,
            1,
            3,
            "comparing two fields is not supported; compare a field with a value",
        ),
    ];
    for (text, kind, line, column, message) in cases {
        let err = parse(text)
            .err()
            .unwrap_or_else(|| panic!("{text:?} parsed"));
        assert_eq!(
            (err.kind, err.line, err.column, err.message.as_str()),
            (*kind, *line, *column, *message),
            "query: {text:?}"
        );
        assert_eq!(err.to_string(), format!("{line}:{column}: {message}"));
    }
}

#[test]
fn error_offsets_are_bytes_and_columns_are_chars() {
    let err = parse("{ name = \"é\" && foo }").unwrap_err();
    // "é" is two bytes but one character.
    assert_eq!(err.offset, 17);
    assert_eq!(err.column, 17);
}

#[test]
fn limits() {
    let long = format!("{{ name = \"{}\" }}", "a".repeat(MAX_QUERY_LEN));
    assert_eq!(parse(&long).unwrap_err().kind, ParseErrorKind::TooLong);

    let deep = format!(
        "{{ {}span.a = 1{} }}",
        "(".repeat(MAX_DEPTH + 1),
        ")".repeat(MAX_DEPTH + 1)
    );
    let err = parse(&deep).unwrap_err();
    assert_eq!(err.kind, ParseErrorKind::TooDeep);
    let ok = format!(
        "{{ {}span.a = 1{} }}",
        "(".repeat(MAX_DEPTH - 1),
        ")".repeat(MAX_DEPTH - 1)
    );
    assert!(parse(&ok).is_ok());

    let nots = format!("{{ {}span.a = 1 }}", "!".repeat(MAX_DEPTH + 1));
    assert_eq!(parse(&nots).unwrap_err().kind, ParseErrorKind::TooDeep);

    let spansets = format!(
        "{}{{ }}{}",
        "(".repeat(MAX_DEPTH + 1),
        ")".repeat(MAX_DEPTH + 1)
    );
    assert_eq!(parse(&spansets).unwrap_err().kind, ParseErrorKind::TooDeep);

    // Chains of spanset operators make deep trees: bounded.
    let chain = vec!["{ }"; 200].join(" > ");
    assert!(parse(&chain).is_ok());
    let chain = vec!["{ }"; 300].join(" > ");
    assert_eq!(parse(&chain).unwrap_err().kind, ParseErrorKind::TooDeep);

    // Long chains of conditions inside a filter are flat and fine, up to the
    // query length limit.
    let conditions = vec!["span.a = 1"; 4000].join(" && ");
    let query = parse(&format!("{{ {conditions} }}")).unwrap();
    assert_eq!(query.required_conditions()[0].len(), 4000);
    let alternatives = vec!["span.a = 1"; 4000].join(" || ");
    assert!(parse(&format!("{{ {alternatives} }}")).is_ok());

    // A regex whose compiled form is too large is refused, not built.
    let huge = "{ name =~ \"(a{1000}){1000}\" }";
    assert_eq!(parse(huge).unwrap_err().kind, ParseErrorKind::InvalidRegex);
}
