//! `bookstore-app`: serves the BookStore (`serve`, the default), probes it (`healthcheck`, exit 0/1,
//! for containers without a shell or curl), and grants administrators (`admin`). Flags or their
//! environment variables configure it (`--help`).

use std::io::{Read, Write};
use std::time::Duration;

use bookstore_app::config::Command;
use clap::Parser;
use tracing_subscriber::EnvFilter;

/// glibc's allocator serialized the server's threads on its arena locks (a quarter of the CPU in
/// a catalog benchmark) and kept a login flood's 1.8 GB afterwards; mimalloc does neither.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    // SQLite's memory statistics take a global mutex on every allocation, which the server's
    // threads then queue on; nothing reads them. Must come before SQLite's first use.
    // SAFETY: called once, before any SQLite connection exists.
    unsafe {
        rusqlite::ffi::sqlite3_config(rusqlite::ffi::SQLITE_CONFIG_MEMSTATUS, 0);
    }
    let cli = bookstore_app::config::Cli::parse();
    let config = |cli: &bookstore_app::config::Cli| match bookstore_app::Config::from_settings(
        &cli.settings,
    ) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    match &cli.command {
        None | Some(Command::Serve) => serve(config(&cli)),
        Some(Command::Healthcheck { own }) => {
            std::process::exit(healthcheck(cli.settings.addr, *own))
        }
        Some(Command::IdentityKey) => match bookstore_app::accounts::token::generate() {
            Ok(key) => println!("{key}"),
            Err(e) => {
                eprintln!("error: {e}");
                std::process::exit(1);
            }
        },
        Some(Command::SplitSetup {
            users_only: true, ..
        }) => {
            let config = config(&cli);
            match runtime().block_on(bookstore_app::split_setup::users(&config)) {
                Ok(text) => print!("{text}"),
                Err(e) => {
                    eprintln!("error: {e}");
                    std::process::exit(1);
                }
            }
        }
        Some(Command::SplitSetup { split_dir, .. }) => {
            let Some(dir) = split_dir.as_ref().filter(|d| !d.as_os_str().is_empty()) else {
                println!("not split (BOOKSTORE_SPLIT_DIR is not set): nothing to do");
                return;
            };
            let config = config(&cli);
            match runtime().block_on(bookstore_app::split_setup::run(&config, dir)) {
                Ok(text) => print!("{text}"),
                Err(e) => {
                    eprintln!("error: {e}");
                    std::process::exit(1);
                }
            }
        }
        Some(Command::Admin { action }) => {
            let config = config(&cli);
            let runtime = runtime();
            match runtime.block_on(bookstore_app::accounts::admin::command(&config, action)) {
                Ok(text) => print!("{text}"),
                Err(e) => {
                    eprintln!("error: {e}");
                    std::process::exit(1);
                }
            }
        }
    }
}

/// Start-up, sweeps and admin commands; requests have their own threads (`bookstore_app::serve`).
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn serve(config: bookstore_app::Config) {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("BOOKSTORE_LOG")
                .unwrap_or_else(|_| EnvFilter::new("info,tower_http=info,sqlx=warn")),
        )
        .with_ansi(std::env::var_os("NO_COLOR").is_none())
        .init();
    if let Err(e) = runtime().block_on(bookstore_app::serve(config)) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

/// GET /healthz on the server's own address (0.0.0.0 is asked on 127.0.0.1), within 3 s.
fn healthcheck(addr: std::net::SocketAddr, own: bool) -> i32 {
    let path = if own { "/healthz?own" } else { "/healthz" };
    let mut addr = addr;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let target = addr.to_string();
    let answer = (|| -> std::io::Result<String> {
        let addr = std::net::ToSocketAddrs::to_socket_addrs(&target)?
            .next()
            .ok_or_else(|| std::io::Error::other("no address"))?;
        let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(3))?;
        s.set_read_timeout(Some(Duration::from_secs(3)))?;
        write!(
            s,
            "GET {path} HTTP/1.0\r\nHost: {target}\r\nConnection: close\r\n\r\n"
        )?;
        let mut response = String::new();
        s.read_to_string(&mut response)?;
        Ok(response)
    })();
    match answer {
        Ok(r) if r.starts_with("HTTP/1.1 200") || r.starts_with("HTTP/1.0 200") => 0,
        Ok(r) => {
            eprintln!(
                "unhealthy: {}",
                r.lines().next().unwrap_or("no status line")
            );
            1
        }
        Err(e) => {
            eprintln!("unhealthy: {target}: {e}");
            1
        }
    }
}
