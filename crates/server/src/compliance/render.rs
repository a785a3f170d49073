//! The report as CSV (one table of accesses) and as one self-contained,
//! printable HTML document (inline CSS, no script, no external resource,
//! every value escaped).

use std::fmt::Write as _;

use tracewarden_search::format_time;

use super::ComplianceReport;

/// The CSV header: one row per (user, service, classification); times
/// RFC 3339 UTC; `user` empty for spans without `enduser.id`.
pub const CSV_HEADER: &str = "user,service,classification,count,first_seen,last_seen";

/// A time field of the report (Unix nanoseconds as a string) as RFC 3339.
fn time(ns: &str) -> String {
    ns.parse::<u64>()
        .map_or_else(|_| ns.to_string(), format_time)
}

/// One CSV field: quoted when it holds a comma, quote or line break, and
/// prefixed with `'` when a spreadsheet would take it for a formula
/// (`=`, `+`, `-`, `@`, tab, CR at the start: values come from traces).
fn csv_field(out: &mut String, value: &str) {
    let formula = value
        .chars()
        .next()
        .is_some_and(|c| matches!(c, '=' | '+' | '-' | '@' | '\t' | '\r'));
    let quote = formula || value.contains([',', '"', '\n', '\r']);
    if quote {
        out.push('"');
    }
    if formula {
        out.push('\'');
    }
    for c in value.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    if quote {
        out.push('"');
    }
}

/// The accesses table, header first, CRLF line ends (RFC 4180).
pub fn csv(report: &ComplianceReport) -> String {
    let mut out = String::with_capacity(64 * (report.accesses.len() + 1));
    out.push_str(CSV_HEADER);
    out.push_str("\r\n");
    for a in &report.accesses {
        let count = a.count.to_string();
        let fields = [
            a.user.as_str(),
            &a.service,
            &a.classification,
            &count,
            &time(&a.first_seen),
            &time(&a.last_seen),
        ];
        for (i, field) in fields.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            csv_field(&mut out, field);
        }
        out.push_str("\r\n");
    }
    out
}

/// `text` with the five HTML-significant characters escaped.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font:11pt/1.4 Georgia,serif;margin:2em;color:#111}\
h1{font-size:18pt;margin:0 0 .2em}h2{font-size:13pt;margin:1.4em 0 .4em;border-bottom:1px solid #999}\
table{border-collapse:collapse;width:100%;font-size:9.5pt;margin-bottom:.8em}\
th,td{border:1px solid #bbb;padding:.2em .4em;text-align:left;vertical-align:top}\
th{background:#eee}td.n{text-align:right}.ok{color:#070}.bad{color:#a00;font-weight:bold}\
.muted{color:#666}dl{display:grid;grid-template-columns:max-content auto;gap:.1em 1em}\
dt{font-weight:bold}dd{margin:0}@media print{body{margin:0}h2{break-after:avoid}tr{break-inside:avoid}}";

/// A table: header cells, then rows of already-escaped cells (`(text,
/// numeric)`), or a line saying there is nothing.
fn table(out: &mut String, header: &[&str], rows: &[Vec<(String, bool)>], empty: &str) {
    if rows.is_empty() {
        let _ = writeln!(out, "<p class=\"muted\">{}</p>", escape(empty));
        return;
    }
    out.push_str("<table><thead><tr>");
    for h in header {
        let _ = write!(out, "<th>{}</th>", escape(h));
    }
    out.push_str("</tr></thead><tbody>\n");
    for row in rows {
        out.push_str("<tr>");
        for (cell, numeric) in row {
            if *numeric {
                let _ = write!(out, "<td class=\"n\">{cell}</td>");
            } else {
                let _ = write!(out, "<td>{cell}</td>");
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody></table>\n");
}

fn text(value: &str) -> (String, bool) {
    (escape(value), false)
}

fn number(value: u64) -> (String, bool) {
    (value.to_string(), true)
}

fn list(values: &[String]) -> (String, bool) {
    (escape(&values.join(", ")), false)
}

fn when(ns: &str) -> (String, bool) {
    (escape(&time(ns)), false)
}

/// The report as one printable HTML document.
pub fn html(report: &ComplianceReport) -> String {
    let mut out = String::with_capacity(16 * 1024);
    let period = format!("{} to {}", time(&report.start), time(&report.end));
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>Compliance report {}</title><style>{STYLE}</style></head><body>\n",
        escape(&period)
    );
    let _ = writeln!(
        out,
        "<h1>Personal data compliance report</h1>\n<p>Period: <b>{}</b> (UTC). Generated {} by tracewarden.</p>",
        escape(&period),
        escape(&time(&report.generated_at))
    );
    if report.incomplete {
        let _ = writeln!(
            out,
            "<p class=\"bad\">Incomplete: some stored data could not be read ({}).</p>",
            escape(&report.unreadable_segments.join("; "))
        );
    }

    let i = &report.integrity;
    out.push_str("<h2>Store integrity</h2>\n<dl>");
    let (class, status) = if i.ok {
        ("ok", "intact: the manifest chain verifies")
    } else {
        ("bad", "NOT intact: see the failures below")
    };
    let _ = write!(
        out,
        "<dt>Status</dt><dd class=\"{class}\">{}</dd>",
        escape(status)
    );
    let _ = write!(
        out,
        "<dt>Signatures</dt><dd>{}{}</dd>",
        escape(&i.signatures),
        i.key_id
            .as_deref()
            .map(|k| format!(" (key {})", escape(k)))
            .unwrap_or_default()
    );
    let segments: Vec<String> = i.segments_in_period.iter().map(u64::to_string).collect();
    let _ = write!(
        out,
        "<dt>Segments in the period</dt><dd>{}</dd>",
        if segments.is_empty() {
            "none (the period's spans, if any, are not yet in a segment)".to_string()
        } else {
            escape(&segments.join(", "))
        }
    );
    let _ = write!(
        out,
        "<dt>Checked</dt><dd>{} segments, {} files, {} bytes</dd>",
        i.segments_checked, i.files_checked, i.bytes_checked
    );
    if let (Some(id), Some(sha)) = (i.head_segment, &i.head_sha256) {
        let _ = write!(
            out,
            "<dt>Chain head</dt><dd>segment {id}, manifest SHA-256 <code>{}</code></dd>",
            escape(sha)
        );
    }
    out.push_str("</dl>\n");
    if !i.failures.is_empty() {
        out.push_str("<ul>");
        for failure in &i.failures {
            let _ = write!(out, "<li class=\"bad\">{}</li>", escape(failure));
        }
        out.push_str("</ul>\n");
    }

    let s = &report.summary;
    out.push_str("<h2>Summary</h2>\n");
    let rows = vec![
        vec![text("Spans in the period"), number(s.spans)],
        vec![
            text("Spans carrying personal data"),
            number(s.personal_data_spans),
        ],
        vec![text("Users who accessed personal data"), number(s.users)],
        vec![
            text("Services that handled personal data"),
            number(s.services),
        ],
        vec![text("Calls to third parties"), number(s.third_party_calls)],
        vec![
            text("Calls to third parties carrying personal data"),
            number(s.third_party_calls_with_personal_data),
        ],
        vec![text("Policy violations (alerts)"), number(s.violations)],
    ];
    table(&mut out, &["Figure", "Value"], &rows, "");

    out.push_str("<h2>Users</h2>\n");
    let rows: Vec<_> = report
        .users
        .iter()
        .map(|u| {
            vec![
                text(&u.user),
                number(u.accesses),
                list(&u.services),
                list(&u.classifications),
                when(&u.first_seen),
                when(&u.last_seen),
            ]
        })
        .collect();
    table(
        &mut out,
        &["User", "Accesses", "Services", "Data", "First", "Last"],
        &rows,
        "No user accessed personal data in the period.",
    );

    out.push_str("<h2>Services</h2>\n");
    let rows: Vec<_> = report
        .services
        .iter()
        .map(|s| {
            vec![
                text(&s.service),
                number(s.accesses),
                number(s.users),
                list(&s.classifications),
                when(&s.first_seen),
                when(&s.last_seen),
            ]
        })
        .collect();
    table(
        &mut out,
        &["Service", "Accesses", "Users", "Data", "First", "Last"],
        &rows,
        "No service handled personal data in the period.",
    );

    out.push_str("<h2>Flows to third parties</h2>\n");
    let rows: Vec<_> = report
        .third_party_flows
        .iter()
        .map(|f| {
            vec![
                text(&f.service),
                text(&f.destination),
                text(&f.field),
                number(f.calls),
                number(f.with_personal_data),
                list(&f.classifications),
                when(&f.first_seen),
                when(&f.last_seen),
            ]
        })
        .collect();
    table(
        &mut out,
        &[
            "From",
            "Third party",
            "By",
            "Calls",
            "With personal data",
            "Data",
            "First",
            "Last",
        ],
        &rows,
        "No call reached a third party (or the site declares none).",
    );

    out.push_str("<h2>Policy violations</h2>\n");
    let rows: Vec<_> = report
        .violations
        .iter()
        .map(|v| {
            let labels: Vec<String> = v.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            vec![
                text(&v.rule_id),
                text(&v.severity),
                text(&v.state),
                text(&v.title),
                list(&labels),
                number(v.count),
                when(&v.first_seen),
                when(&v.last_seen),
            ]
        })
        .collect();
    table(
        &mut out,
        &[
            "Rule", "Severity", "State", "Title", "Key", "Count", "First", "Last",
        ],
        &rows,
        "No data-flow or topology alert in the period.",
    );

    out.push_str("<h2>Accesses</h2>\n");
    let rows: Vec<_> = report
        .accesses
        .iter()
        .map(|a| {
            vec![
                text(if a.user.is_empty() {
                    "(no user)"
                } else {
                    &a.user
                }),
                text(&a.service),
                text(&a.classification),
                number(a.count),
                when(&a.first_seen),
                when(&a.last_seen),
            ]
        })
        .collect();
    table(
        &mut out,
        &["User", "Service", "Data", "Count", "First", "Last"],
        &rows,
        "No access to personal data in the period.",
    );
    out.push_str("</body></html>\n");
    out
}
