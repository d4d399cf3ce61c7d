//! JSON log lines that carry an audit record as a nested object.
//!
//! An audit record is logged as a field `audit` holding its JSON (see the module above). The
//! JSON log formatter writes every field value as a string, so the record would arrive as a
//! string inside the JSON line, and a log store could neither index nor query its fields
//! (`audit.user`, `audit.event`). [`NestedAudit`] wraps the formatter and, for lines of the
//! target `audit`, puts the record in as the object it is. The rest of the line stays exactly
//! as the formatter wrote it (key order included), and a line that does not hold a record
//! (an error of the audit trail itself) is left alone. The text format keeps `audit={...}`,
//! which a person can read as it is.
//!
//! `mfa-gateway admin reapply --from` reads both forms, so logs written before this change
//! can still be used after a restore.

use std::fmt;

use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The log target of audit records.
pub const TARGET: &str = "audit";

/// A JSON event formatter (`F`) whose audit lines carry the record as an object.
#[derive(Debug, Clone)]
pub struct NestedAudit<F>(pub F);

impl<S, N, F> FormatEvent<S, N> for NestedAudit<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        if event.metadata().target() != TARGET {
            return self.0.format_event(ctx, writer, event);
        }
        let mut line = String::new();
        self.0.format_event(ctx, Writer::new(&mut line), event)?;
        writer.write_str(&nest_record(&line))
    }
}

/// `line` (one JSON object) with its `audit` field, a string holding a JSON object, replaced
/// by that object; `line` unchanged when it is not of that shape.
pub fn nest_record(line: &str) -> String {
    let Ok(serde_json::Value::Object(fields)) = serde_json::from_str(line.trim_end()) else {
        return line.to_string();
    };
    let Some(serde_json::Value::String(record)) = fields.get("audit") else {
        return line.to_string();
    };
    if !matches!(
        serde_json::from_str::<serde_json::Value>(record),
        Ok(serde_json::Value::Object(_))
    ) {
        return line.to_string();
    }
    // The field as the formatter wrote it (serde_json's string encoding, which it uses).
    let Ok(encoded) = serde_json::to_string(record) else {
        return line.to_string();
    };
    let field = format!("\"audit\":{encoded}");
    let nested = line.replacen(&field, &format!("\"audit\":{record}"), 1);
    // Only if the replacement happened and the line is still one JSON object.
    match serde_json::from_str::<serde_json::Value>(nested.trim_end()) {
        Ok(v) if v["audit"].is_object() => nested,
        _ => line.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_record_becomes_an_object_and_the_rest_stays() {
        let record = r#"{"v":1,"event":"reset","user":"al\"ice","reason":"a\\b"}"#;
        let line = serde_json::json!({
            "timestamp": "2026-01-01T00:00:00Z",
            "level": "INFO",
            "message": "reset",
            "audit": record,
            "target": "audit"
        })
        .to_string()
            + "\n";
        let nested = nest_record(&line);
        assert!(nested.ends_with("}\n"), "{nested}");
        let v: serde_json::Value = serde_json::from_str(&nested).unwrap();
        assert_eq!(v["audit"]["user"], "al\"ice");
        assert_eq!(v["audit"]["reason"], "a\\b");
        assert_eq!(v["message"], "reset");
        assert_eq!(v["target"], "audit");
        // Nothing else changed.
        assert_eq!(
            nested.replace(record, "R"),
            line.replace(&serde_json::to_string(record).unwrap(), "R")
        );
    }

    #[test]
    fn other_lines_are_left_alone() {
        for line in [
            "not json\n",
            "{\"message\":\"audit record not stored in Redis\",\"error\":\"x\"}\n",
            "{\"audit\":\"not a record\"}\n",
            "{\"audit\":\"[1,2]\"}\n",
            "{\"audit\":{\"v\":1}}\n",
        ] {
            assert_eq!(nest_record(line), line);
        }
    }

    /// Through tracing's own JSON formatter, as the binary sets it up.
    #[test]
    fn a_logged_record_is_an_object_in_the_json_log() {
        #[derive(Clone, Default)]
        struct Buf(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Buf {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buf = Buf::default();
        let out = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
            .event_format(NestedAudit(
                tracing_subscriber::fmt::format()
                    .json()
                    .flatten_event(true)
                    .with_current_span(false),
            ))
            .with_writer(move || out.clone())
            .finish();
        let record = r#"{"v":1,"event":"reset","user":"alice"}"#;
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(target: "audit", audit = %record, "reset");
            tracing::info!(target: "other", audit = %record, "not an audit line");
        });
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(lines[0]["audit"]["user"], "alice", "{text}");
        assert_eq!(lines[0]["level"], "INFO");
        assert_eq!(lines[0]["target"], "audit");
        assert!(lines[1]["audit"].is_string(), "{text}");
    }
}
