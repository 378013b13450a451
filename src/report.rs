//! Progress on stderr, in one of three shapes: a live line per resource on a TTY (indicatif),
//! append-only lines elsewhere (CI logs), or JSON lines with `--output json`; the last two get a
//! heartbeat every 10 s naming whatever is still in progress (a bake's create takes 5-20 minutes),
//! so a log never goes quiet. Results and data go to stdout elsewhere; nothing here writes to stdout.

use std::collections::{BTreeMap, HashMap};
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use crate::kinds::Kind;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    Creating,
    Waiting,
    Ready,
    Exists,
    Updating,
    Updated,
    Drifted,
    Deleting,
    Retrying,
    Deleted,
    Failed,
    Skipped,
}

impl Phase {
    fn word(self) -> &'static str {
        match self {
            Phase::Creating => "creating",
            Phase::Waiting => "waiting",
            Phase::Ready => "ready",
            Phase::Exists => "exists",
            Phase::Updating => "updating",
            Phase::Updated => "updated",
            Phase::Drifted => "drifted",
            Phase::Deleting => "deleting",
            Phase::Retrying => "retrying",
            Phase::Deleted => "deleted",
            Phase::Failed => "FAILED",
            Phase::Skipped => "skipped",
        }
    }

    fn is_final(self) -> bool {
        matches!(
            self,
            Phase::Ready
                | Phase::Exists
                | Phase::Updated
                | Phase::Drifted
                | Phase::Deleted
                | Phase::Failed
                | Phase::Skipped
        )
    }
}

pub struct Reporter {
    format: OutputFormat,
    multi: Option<MultiProgress>,
    bars: Mutex<HashMap<String, ProgressBar>>,
    /// Resources in progress (creating, updating, waiting, deleting), for the heartbeat:
    /// key → (since, phase, state).
    waiting: Mutex<BTreeMap<String, (Instant, Phase, String)>>,
    started: Instant,
}

#[derive(Serialize)]
struct JsonEvent<'a> {
    event: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kind: Option<Kind>,
    #[serde(skip_serializing_if = "Option::is_none")]
    phase: Option<Phase>,
    #[serde(skip_serializing_if = "str::is_empty")]
    message: &'a str,
    elapsed_ms: u128,
}

impl Reporter {
    pub fn new(format: OutputFormat) -> Arc<Reporter> {
        let tty =
            std::io::stderr().is_terminal() && std::env::var_os("TERM").is_none_or(|t| t != "dumb");
        let multi = (format == OutputFormat::Text && tty)
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        Arc::new(Reporter {
            format,
            multi,
            bars: Mutex::new(HashMap::new()),
            waiting: Mutex::new(BTreeMap::new()),
            started: Instant::now(),
        })
    }

    fn color() -> bool {
        std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stderr().is_terminal()
    }

    fn line(&self, text: &str) {
        match &self.multi {
            Some(m) => {
                let _ = m.println(text);
            }
            None => {
                let _ = writeln!(std::io::stderr(), "{text}");
            }
        }
    }

    fn json(&self, e: JsonEvent) {
        if let Ok(s) = serde_json::to_string(&e) {
            let _ = writeln!(std::io::stderr(), "{s}");
        }
    }

    /// A plain message (preflight, summaries).
    pub fn info(&self, message: &str) {
        match self.format {
            OutputFormat::Json => self.json(JsonEvent {
                event: "info",
                key: None,
                kind: None,
                phase: None,
                message,
                elapsed_ms: self.started.elapsed().as_millis(),
            }),
            OutputFormat::Text => self.line(message),
        }
    }

    pub fn warn(&self, message: &str) {
        match self.format {
            OutputFormat::Json => self.json(JsonEvent {
                event: "warning",
                key: None,
                kind: None,
                phase: None,
                message,
                elapsed_ms: self.started.elapsed().as_millis(),
            }),
            OutputFormat::Text => self.line(&format!("warning: {message}")),
        }
    }

    pub fn resource(&self, key: &str, kind: Kind, phase: Phase, detail: &str) {
        {
            let mut waiting = self.waiting.lock().expect("reporter lock");
            if !phase.is_final() {
                let since = waiting.get(key).map_or_else(Instant::now, |(t, _, _)| *t);
                waiting.insert(key.to_string(), (since, phase, detail.to_string()));
            } else {
                waiting.remove(key);
            }
        }
        match self.format {
            OutputFormat::Json => self.json(JsonEvent {
                event: "resource",
                key: Some(key),
                kind: Some(kind),
                phase: Some(phase),
                message: detail,
                elapsed_ms: self.started.elapsed().as_millis(),
            }),
            OutputFormat::Text => match &self.multi {
                Some(multi) => self.bar(multi, key, kind, phase, detail),
                None => {
                    let sep = if detail.is_empty() { "" } else { ": " };
                    self.line(&format!(
                        "[{:>5.1}s] {key} ({}) {}{sep}{detail}",
                        self.started.elapsed().as_secs_f64(),
                        kind.as_str(),
                        phase.word()
                    ));
                }
            },
        }
    }

    fn bar(&self, multi: &MultiProgress, key: &str, kind: Kind, phase: Phase, detail: &str) {
        let mut bars = self.bars.lock().expect("reporter lock");
        let bar = bars.entry(key.to_string()).or_insert_with(|| {
            let b = multi.add(ProgressBar::new_spinner());
            b.set_style(
                ProgressStyle::with_template("{spinner} {prefix:<16} {wide_msg} {elapsed:>4}")
                    .expect("template")
                    .tick_chars("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏✓"),
            );
            b.set_prefix(key.to_string());
            b.enable_steady_tick(Duration::from_millis(120));
            b
        });
        let word = phase.word();
        let word = if Self::color() {
            match phase {
                Phase::Failed => format!("\x1b[31m{word}\x1b[0m"),
                Phase::Ready | Phase::Exists | Phase::Updated | Phase::Deleted => {
                    format!("\x1b[32m{word}\x1b[0m")
                }
                Phase::Drifted | Phase::Retrying => format!("\x1b[33m{word}\x1b[0m"),
                _ => word.to_string(),
            }
        } else {
            word.to_string()
        };
        let sep = if detail.is_empty() { "" } else { ": " };
        let msg = format!("{:<16} {word}{sep}{detail}", kind.as_str());
        if phase.is_final() {
            bar.finish_with_message(msg);
        } else {
            bar.set_message(msg);
        }
    }

    /// Without a TTY (lines or JSON), says every 10 s what is still in progress and for how long.
    /// BOOKSTORE_HEARTBEAT_SECS changes the period (the tests use 1).
    pub fn start_heartbeat(self: &Arc<Self>) -> Option<tokio::task::JoinHandle<()>> {
        if self.multi.is_some() {
            return None;
        }
        let every = std::env::var("BOOKSTORE_HEARTBEAT_SECS")
            .ok()
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|s| *s > 0.0 && *s <= 10.0)
            .unwrap_or(10.0);
        let me = Arc::clone(self);
        Some(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs_f64(every));
            // A tick missed while a thread was busy is late, not doubled.
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let busy: Vec<String> = me
                    .waiting
                    .lock()
                    .expect("reporter lock")
                    .iter()
                    .map(|(k, (since, phase, state))| {
                        let state = if state.is_empty() {
                            String::new()
                        } else {
                            format!(" {state}")
                        };
                        format!(
                            "{k} ({}{state}, {}s)",
                            phase.word(),
                            since.elapsed().as_secs()
                        )
                    })
                    .collect();
                if busy.is_empty() {
                    continue;
                }
                let message = format!("still in progress: {}", busy.join(", "));
                match me.format {
                    OutputFormat::Json => me.json(JsonEvent {
                        event: "heartbeat",
                        key: None,
                        kind: None,
                        phase: None,
                        message: &message,
                        elapsed_ms: me.started.elapsed().as_millis(),
                    }),
                    OutputFormat::Text => me.line(&format!(
                        "[{:>5.1}s] {message}",
                        me.started.elapsed().as_secs_f64()
                    )),
                }
            }
        }))
    }

    /// Stops the spinners, leaving each resource's last line on screen.
    pub fn finish(&self) {
        for bar in self.bars.lock().expect("reporter lock").values() {
            if !bar.is_finished() {
                bar.abandon();
            }
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}
