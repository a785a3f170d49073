//! The result of decoding one request: the valid records, and what was rejected.

use tracewarden_model::Batch;

/// At most this many distinct problem messages are kept per request; the
/// counts stay exact.
pub const MAX_MESSAGES: usize = 8;

/// A decoded request. `batch` holds every record that was valid; rejected
/// records are counted, with a short message per kind of problem, so the
/// receiver can answer with an OTLP partial success.
#[derive(Debug, Default)]
pub struct Decoded {
    pub batch: Batch,
    pub rejected_spans: u64,
    pub rejected_logs: u64,
    /// Problems that did not reject a record (a value truncated, an unknown
    /// enum value mapped to unspecified, attributes over the limit dropped).
    pub warnings: u64,
    messages: Vec<String>,
}

impl Decoded {
    /// Records that a span was rejected and why.
    pub fn reject_span(&mut self, why: impl Into<String>) {
        self.rejected_spans += 1;
        self.note(why.into());
    }

    /// Records that a log record was rejected and why.
    pub fn reject_log(&mut self, why: impl Into<String>) {
        self.rejected_logs += 1;
        self.note(why.into());
    }

    /// Records a problem that was corrected without rejecting the record.
    pub fn warn(&mut self, why: impl Into<String>) {
        self.warnings += 1;
        self.note(why.into());
    }

    fn note(&mut self, message: String) {
        if self.messages.len() < MAX_MESSAGES && !self.messages.contains(&message) {
            self.messages.push(message);
        }
    }

    /// The distinct problem messages, at most [`MAX_MESSAGES`].
    pub fn messages(&self) -> &[String] {
        &self.messages
    }

    /// The text for OTLP's `partial_success.error_message`: empty when all was well.
    pub fn error_message(&self) -> String {
        if self.messages.is_empty() {
            return String::new();
        }
        let mut text = String::new();
        if self.rejected_spans > 0 {
            text.push_str(&format!("{} span(s) rejected; ", self.rejected_spans));
        }
        if self.rejected_logs > 0 {
            text.push_str(&format!("{} log record(s) rejected; ", self.rejected_logs));
        }
        if self.warnings > 0 {
            text.push_str(&format!("{} record(s) corrected; ", self.warnings));
        }
        text.push_str(&self.messages.join("; "));
        text
    }
}
