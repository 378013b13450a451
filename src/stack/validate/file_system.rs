//! `file_system` (asg and swarm): EFS for the covers, always encrypted at rest.

use super::*;

pub(super) fn file_system(c: &mut Checker, raw: &RawStack) -> FileSystem {
    let file_system = FileSystem {
        encrypted: raw
            .file_system
            .as_ref()
            .and_then(|f| f.value.encrypted.as_ref())
            .is_none_or(|v| v.value),
    };
    if !file_system.encrypted
        && let Some(f) = &raw.file_system
    {
        c.error(
            f.into(),
            "file_system.encrypted",
            "the file system must be encrypted at rest",
            Some("remove `encrypted: false`".into()),
        );
    }
    file_system
}

/// The stack kinds without a shared file system refuse the section.
pub(super) fn refuse(c: &mut Checker, raw: &RawStack, kind: StackKind) {
    if let Some(f) = raw.file_system.as_ref() {
        c.error(
            f.into(),
            "file_system",
            format!(
                "{} stack takes no `file_system` section",
                kind.with_article()
            ),
            Some("remove this section".into()),
        );
    }
}
