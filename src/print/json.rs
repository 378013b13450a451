//! The JSON printer: one pretty-printed object per command.

use super::Report;

pub fn render(report: &Report) -> String {
    serde_json::to_string_pretty(report).expect("results serialize to JSON")
}
