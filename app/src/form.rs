//! What a form says back: each error beside its field (and listed above the form, as links to
//! the fields), so a refused form comes back filled in with every reason where it applies; and
//! the confirmation step of a destructive action.

use askama::Template;
use askama_web::WebTemplate;

use crate::web::PageCtx;

/// "Delete …?" / "Cancel order …?": what the action does, its button (which posts
/// `confirm=yes`) and the way back. A page of its own, so it works without JavaScript.
#[derive(Template, WebTemplate)]
#[template(path = "confirm.html")]
pub struct ConfirmPage {
    pub ctx: PageCtx,
    pub heading: String,
    pub explain: String,
    pub action: String,
    pub confirm_label: &'static str,
    pub back: String,
    pub back_label: &'static str,
}

pub struct FieldError {
    /// The field's `id` (and name), for the link and `aria-describedby`.
    pub field: &'static str,
    pub message: String,
}

#[derive(Default)]
pub struct FieldErrors(Vec<FieldError>);

impl FieldErrors {
    pub fn add(&mut self, field: &'static str, message: impl Into<String>) {
        self.0.push(FieldError {
            field,
            message: message.into(),
        });
    }

    pub fn get(&self, field: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|e| e.field == field)
            .map(|e| e.message.as_str())
    }

    pub fn has(&self, field: &str) -> bool {
        self.get(field).is_some()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn list(&self) -> &[FieldError] {
        &self.0
    }
}
