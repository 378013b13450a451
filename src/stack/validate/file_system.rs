//! `file_system` (asg and swarm): EFS for the covers, always encrypted at rest.

use super::*;

pub(super) fn file_system(c: &mut Checker, raw: &RawStack, kind: StackKind) -> Option<FileSystem> {
    let file_system = match (kind, raw.file_system.as_ref()) {
        (StackKind::Asg | StackKind::Swarm, f) => Some(FileSystem {
            encrypted: f
                .and_then(|f| f.value.encrypted.as_ref())
                .is_none_or(|v| v.value),
        }),
        (_, Some(f)) => {
            c.error(
                f.into(),
                "file_system",
                format!("a {} stack takes no `file_system` section", kind.as_str()),
                Some("remove this section".into()),
            );
            None
        }
        (_, None) => None,
    };
    if let Some(fs) = &file_system
        && !fs.encrypted
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
