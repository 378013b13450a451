//! `bookstore-app`: serves the BookStore. Configuration comes from the environment (see README).

use tracing_subscriber::EnvFilter;

fn main() {
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
