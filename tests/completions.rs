//! `bookstore completions SHELL` and `bookstore man`, through the real binary: bash loads the script
//! and completes a command's flags with it; the man page renders with the system's `man`.

mod common;

use std::process::Command;

fn bookstore(args: &[&str]) -> String {
    let out = common::run_ok(
        Command::new(env!("CARGO_BIN_EXE_bookstore"))
            .args(args)
            .env_clear(),
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn bash_completes_commands_and_flags_with_the_generated_script() {
    let script = bookstore(&["completions", "bash"]);
    let dir = std::env::temp_dir().join(format!("bookstore-completions-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bookstore.bash");
    std::fs::write(&path, script).unwrap();
    // What bash offers after `bookstore ` and after `bookstore up --st`.
    let complete = |line: &str| {
        let words: Vec<&str> = line.split(' ').collect();
        let probe = format!(
            "source {}; COMP_WORDS=({}); COMP_CWORD={}; COMP_LINE='{line}'; COMP_POINT={}; _bookstore bookstore '{}' '{}'; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            path.display(),
            words
                .iter()
                .map(|w| format!("'{w}'"))
                .collect::<Vec<_>>()
                .join(" "),
            words.len() - 1,
            line.len(),
            words[words.len() - 1],
            words[words.len() - 2],
        );
        String::from_utf8(common::run_ok(Command::new("bash").arg("-c").arg(probe)).stdout).unwrap()
    };
    let commands = complete("bookstore ");
    for c in ["up", "down", "plan", "status", "completions", "man"] {
        assert!(commands.lines().any(|l| l == c), "no `{c}` in {commands}");
    }
    let flags = complete("bookstore up --st");
    assert!(flags.lines().any(|l| l == "--stack"), "{flags}");
    assert!(flags.lines().any(|l| l == "--state-dir"), "{flags}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn zsh_and_fish_scripts_name_every_command() {
    let zsh = bookstore(&["completions", "zsh"]);
    assert!(zsh.starts_with("#compdef bookstore"), "{zsh}");
    let fish = bookstore(&["completions", "fish"]);
    for c in ["up", "down", "status", "outputs"] {
        assert!(zsh.contains(&format!("'{c}:")), "zsh lacks {c}");
        assert!(
            fish.contains(&format!("-a \"{c}\"")),
            "fish lacks {c}:\n{fish}"
        );
    }
}

#[test]
fn the_man_page_renders_and_documents_each_command() {
    let page = bookstore(&["man"]);
    assert!(page.starts_with(".ie \\n(.g .ds Aq") || page.contains(".TH bookstore"));
    let path = std::env::temp_dir().join(format!("bookstore-{}.1", std::process::id()));
    std::fs::write(&path, &page).unwrap();
    let out = Command::new("man")
        .arg("-l")
        .arg(&path)
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "100")
        .output();
    let _ = std::fs::remove_file(&path);
    let Ok(out) = out else {
        eprintln!("no `man` on this machine: the page is checked as text only");
        return;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for needle in [
        "bookstore",
        "--output",
        "--state-dir",
        "bookstore-up",
        "--parallelism",
        "bookstore-down",
        "--yes",
    ] {
        assert!(
            text.contains(needle),
            "the rendered page lacks `{needle}`:\n{text}"
        );
    }
}
