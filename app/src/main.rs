//! `bookstore-app`: serves the BookStore. Configuration comes from the environment (see README).
//! `bookstore-app healthcheck` asks the running server's `/healthz` and exits 0 or 1: the probe of
//! container and load-balancer health checks where the image has no shell and no curl.

use std::io::{Read, Write};
use std::time::Duration;

use tracing_subscriber::EnvFilter;

fn main() {
    match std::env::args().nth(1).as_deref() {
        None | Some("serve") => serve(),
        Some("healthcheck") => std::process::exit(healthcheck()),
        Some("--help" | "-h" | "help") => {
            println!(
                "bookstore-app [serve|healthcheck]\n  serve        run the BookStore (the default); settings from BOOKSTORE_* and DATABASE_URL\n  healthcheck  exit 0 when the server on BOOKSTORE_ADDR answers /healthz with 200, else 1"
            );
        }
        Some("--version" | "-V") => println!("bookstore-app {}", env!("CARGO_PKG_VERSION")),
        Some(other) => {
            eprintln!("error: unknown command `{other}`; try `bookstore-app --help`");
            std::process::exit(2);
        }
    }
}

fn serve() {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("BOOKSTORE_LOG")
                .unwrap_or_else(|_| EnvFilter::new("info,tower_http=info,sqlx=warn")),
        )
        .with_ansi(std::env::var_os("NO_COLOR").is_none())
        .init();
    let config = match bookstore_app::Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    if let Err(e) = runtime.block_on(bookstore_app::serve(config)) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

/// GET /healthz on the server's own address (0.0.0.0 is asked on 127.0.0.1), within 3 s.
fn healthcheck() -> i32 {
    let addr = std::env::var("BOOKSTORE_ADDR").unwrap_or_else(|_| "127.0.0.1:8080".into());
    let port = addr.rsplit(':').next().unwrap_or("8080");
    let host = match addr.rsplit_once(':').map(|(h, _)| h) {
        Some("0.0.0.0") | Some("") | None => "127.0.0.1",
        Some(h) => h,
    };
    let target = format!("{host}:{port}");
    let answer = (|| -> std::io::Result<String> {
        let addr = std::net::ToSocketAddrs::to_socket_addrs(&target)?
            .next()
            .ok_or_else(|| std::io::Error::other("no address"))?;
        let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(3))?;
        s.set_read_timeout(Some(Duration::from_secs(3)))?;
        write!(
            s,
            "GET /healthz HTTP/1.0\r\nHost: {target}\r\nConnection: close\r\n\r\n"
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
