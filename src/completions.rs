//! `bookstore completions SHELL` and `bookstore man`: generated from the same clap definition the
//! binary parses with (clap_complete, clap_mangen), so they never disagree with the flags. Both
//! write to stdout and need no AWS access.

use std::io::Write;

use clap::CommandFactory;

use crate::cli::Cli;

/// The shell's completion script, e.g. `bookstore completions bash > ~/.local/share/bash-completion/completions/bookstore`.
pub fn completions(shell: clap_complete::Shell, out: &mut dyn Write) {
    clap_complete::generate(shell, &mut Cli::command(), "bookstore", out);
}

/// The man page (roff) of bookstore and, after it, one section per command.
pub fn man(out: &mut dyn Write) -> std::io::Result<()> {
    let command = Cli::command();
    clap_mangen::Man::new(command.clone()).render(out)?;
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        let page =
            clap_mangen::Man::new(sub.clone()).title(format!("bookstore-{}", sub.get_name()));
        page.render_title(out)?;
        page.render_name_section(out)?;
        page.render_synopsis_section(out)?;
        page.render_description_section(out)?;
        page.render_options_section(out)?;
    }
    Ok(())
}
