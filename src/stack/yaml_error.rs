//! The YAML layer's errors in our words: what is wrong at that line and column and what to do,
//! for someone editing a stack file — never the parser's advice to its own programmer (such as
//! "set DuplicateKeyPolicy in Options").

use serde_saphyr::Error as E;

/// What went wrong and what to do about it.
pub struct Explained {
    pub message: String,
    pub hint: String,
}

fn explained(message: impl Into<String>, hint: impl Into<String>) -> Explained {
    Explained {
        message: message.into(),
        hint: hint.into(),
    }
}

/// `expected` as serde says it ("a sequence", "i64") in a stack file's words.
fn expected_words(expected: &str) -> String {
    let e = expected.trim();
    if e.contains("i64") || e.contains("u64") || e.contains("integer") || e.contains("u32") {
        return "a whole number, such as 8080".into();
    }
    if e.contains("bool") {
        return "true or false".into();
    }
    if e.contains("sequence") {
        return "a list (lines starting with `- `)".into();
    }
    if e.contains("map") || e.starts_with("struct") {
        return "a section of `key: value` lines, indented under it".into();
    }
    if e.contains("string") || e.contains("str") {
        return "a text value".into();
    }
    e.to_string()
}

/// What the parser's own texts mean for someone writing the file.
fn syntax(msg: &str) -> Explained {
    let lower = msg.to_lowercase();
    let (what, hint) = if lower.contains("unclosed quote") {
        (
            "a quoted value is not closed",
            "end the value with the same quote it starts with (\" or ')",
        )
    } else if lower.contains("tab") {
        (
            "a tab character is used for indentation",
            "indent with spaces only (YAML does not allow tabs)",
        )
    } else if lower.contains("mapping values are not allowed") {
        (
            "a `key: value` where a value was expected",
            "put a space after every `key:`, quote values that contain `: `, and check the indentation of this line against the lines above",
        )
    } else if lower.contains("did not find expected key") || lower.contains("invalid indentation") {
        (
            "this line's indentation does not match its section",
            "indent every key of a section by the same number of spaces",
        )
    } else if lower.contains("did not find expected") || lower.contains("unexpected end") {
        (
            "a list, section or quoted text is not closed",
            "close the quote or bracket that was opened before this point",
        )
    } else if lower.contains("found character that cannot start any token") {
        (
            "a character that cannot start a value here",
            "quote the value (values starting with `@`, `` ` `` or `%` must be quoted)",
        )
    } else {
        (
            "the file is not valid YAML here",
            "check the quoting and indentation of this line and the one above it",
        )
    };
    explained(what, hint)
}

/// A value that is not of its field's type (`ty` as serde names it: i64, u32, bool).
fn not_a(ty: &str) -> Explained {
    if ty.starts_with("bool") {
        return explained(
            "not a boolean",
            "write true or false (yes/no/on/off are not read as booleans)",
        );
    }
    explained(
        format!("not a valid value: expected {} here", expected_words(ty)),
        "write digits only, without quotes or units",
    )
}

/// serde's free-form messages ("invalid type: string \"x\", expected i64").
fn message(msg: &str) -> Explained {
    let first = msg.lines().next().unwrap_or_default().trim();
    let first = first.rfind(" at line ").map_or(first, |i| &first[..i]);
    if let Some(ty) = first.strip_prefix("invalid ")
        && let Some(word) = ty.split_whitespace().next()
        && ["i64", "i32", "u64", "u32", "u16", "u8", "bool"].contains(&word)
    {
        return not_a(word);
    }
    if let Some(rest) = first.strip_prefix("invalid type: ")
        && let Some((found, expected)) = rest.split_once(", expected ")
    {
        return explained(
            format!("found {found}, expected {}", expected_words(expected)),
            "change the value to the expected form",
        );
    }
    if first.to_lowercase().contains("duplicate") {
        return explained(
            "a key is set twice in the same section",
            "keep one of the two: delete or merge the other",
        );
    }
    syntax(first)
}

/// Our message for any error the YAML layer reports.
pub fn explain(e: &E) -> Explained {
    match e {
        E::WithSnippet { error, .. } | E::AliasError { error, .. } => explain(error),
        E::DuplicateMappingKey { key, .. } => explained(
            match key {
                Some(k) => format!("`{k}` is set twice in the same section"),
                None => "a key is set twice in the same section".into(),
            },
            "keep one of the two: delete or merge the other (a later value would silently replace the first)",
        ),
        E::SerdeUnknownField {
            field, expected, ..
        } => explained(
            format!("unknown field `{field}`"),
            if expected.is_empty() {
                "this section takes no fields; remove it".to_string()
            } else {
                format!("this section takes: {}", expected.join(", "))
            },
        ),
        E::SerdeMissingField { field, .. } => explained(
            format!("`{field}` is missing"),
            format!(
                "add `{field}:` (see the built-in stacks: `bookstore render` or stacks/*.yaml)"
            ),
        ),
        E::SerdeInvalidType {
            unexpected,
            expected,
            ..
        }
        | E::SerdeInvalidValue {
            unexpected,
            expected,
            ..
        } => explained(
            format!("found {unexpected}, expected {}", expected_words(expected)),
            "change the value to the expected form",
        ),
        E::SerdeUnknownVariant {
            variant, expected, ..
        } => explained(
            format!("`{variant}` is not one of the accepted values"),
            format!("use one of: {}", expected.join(", ")),
        ),
        E::Unexpected { expected, .. } => explained(
            format!("expected {} here", expected_words(expected)),
            "compare this part with the same section of a built-in stack (stacks/*.yaml)",
        ),
        E::InvalidScalar { ty, .. } => not_a(ty),
        E::InvalidBooleanStrict { .. } => not_a("bool"),
        E::NullIntoString { .. } => explained(
            "this value is empty",
            "write a value after the `:`, or remove the line",
        ),
        E::MultipleDocuments { .. } => explained(
            "the file holds more than one YAML document (a `---` line)",
            "keep one stack per file: remove the `---` and what follows, or split it into two files",
        ),
        E::Eof { .. } => explained(
            "the file is empty or ends too early",
            "a stack file needs at least `version: 1`, `name:` and `kind:`",
        ),
        E::UnknownAnchor { .. } => explained(
            "an alias (`*name`) refers to an anchor (`&name`) that is not defined above it",
            "define the anchor before its first use, or write the value out",
        ),
        E::MergeKeyNotAllowed { .. } | E::MergeValueNotMapOrSeqOfMaps { .. } => explained(
            "a `<<:` merge key that cannot be used here",
            "write the section's keys out instead of merging them",
        ),
        E::AliasReplayLimitExceeded { .. }
        | E::AliasExpansionLimitExceeded { .. }
        | E::AliasReplayStackDepthExceeded { .. }
        | E::AliasReplayCounterOverflow { .. }
        | E::Budget { .. } => explained(
            "the file expands to far more than a stack file can be (anchors and aliases nested too deep)",
            "write the values out instead of nesting aliases",
        ),
        E::InvalidUtf8Input => explained(
            "the file is not UTF-8 text",
            "save it as UTF-8 (without a byte-order mark)",
        ),
        E::IndentationError { .. } | E::FoldedBlockScalarMustIndentContent { .. } => {
            syntax("invalid indentation")
        }
        E::ExternalMessage { msg, .. } => syntax(msg),
        E::Message { msg, .. } => message(msg),
        _ => explained(
            "the file is not a stack file here",
            "compare this line with the same section of a built-in stack (`bookstore render --stack asg --out DIR`, or stacks/*.yaml)",
        ),
    }
}
