//! The BookStore web app: a second-hand book marketplace. Server-rendered HTML that works without
//! JavaScript; SQLite by default, MySQL in production; stateless replicas.

pub mod accounts;
pub mod catalog;
pub mod config;
pub mod connections;
pub mod db;
pub mod error;
pub mod form;
pub mod money;
pub mod orders;
pub mod ports;
pub mod reads;
pub mod sweep;
pub mod web;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use tower_http::LatencyUnit;
use tower_http::compression::CompressionLayer;
use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use accounts::admin;
use catalog::selling;

pub use config::Config;
pub use db::Db;

const STYLE_CSS: &str = include_str!("../static/style.css");
const APP_JS: &str = include_str!("../static/app.js");

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub config: Arc<Config>,
    pub hashing: Arc<accounts::Hashing>,
    /// Requests in service; more than `max_requests` are refused with 503 (bounded work).
    pub in_flight: Arc<tokio::sync::Semaphore>,
    /// Users' names as read, shared by every server thread (`accounts::Names`).
    pub names: Arc<accounts::Names>,
}

impl AppState {
    pub fn new(db: Db, config: Config) -> AppState {
        AppState {
            db,
            hashing: Arc::new(accounts::Hashing::new(config.hash_workers)),
            in_flight: Arc::new(tokio::sync::Semaphore::new(config.max_requests)),
            names: Arc::default(),
            config: Arc::new(config),
        }
    }

    /// What catalog and orders ask of accounts (`ports::Identity`).
    pub fn accounts(&self) -> accounts::Local<'_> {
        accounts::Local {
            db: &self.db,
            names: &self.names,
        }
    }

    /// What orders ask of catalog (`ports::Stock`).
    pub fn catalog(&self) -> catalog::Local<'_> {
        catalog::Local { db: &self.db }
    }

    /// What catalog asks of orders (`ports::BookOrders`).
    pub fn orders(&self) -> orders::Local<'_> {
        orders::Local { db: &self.db }
    }

    /// The state for a server thread's own event loop. A MySQL connection belongs to the loop that
    /// opened it (its socket is that loop's to watch), so each loop opens its own pools, a share of
    /// `db_connections`, and follows the secret file itself; SQLite's connections serve any thread.
    async fn for_this_thread(self) -> Result<AppState, String> {
        if self.db.engine == db::Engine::Sqlite {
            return Ok(self);
        }
        let share = self
            .config
            .db_connections
            .div_ceil(self.config.threads as u32)
            .max(2);
        let url = self
            .config
            .reread_credentials()?
            .unwrap_or_else(|| self.config.database_url.clone());
        let db = Db::connect(&url, share)
            .await
            .map_err(|e| format!("cannot connect to the database: {e}"))?;
        tokio::spawn(db::watch_secret(db.clone(), Arc::clone(&self.config)));
        Ok(AppState { db, ..self })
    }
}

/// Bounded work per server: at most `max_requests` at once (503 beyond, never an unbounded queue),
/// each answered within the request timeout (503 when it is not).
async fn bounded(
    State(state): State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let Ok(_permit) = state.in_flight.try_acquire() else {
        return error::AppError::Busy.into_response();
    };
    let limit = Duration::from_secs(state.config.request_timeout_secs);
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(seconds = limit.as_secs(), "request timed out");
            error::AppError::Busy.into_response()
        }
    }
}

/// GET /healthz: 200 only when the database answers. One trivial query: cheap for a load balancer.
async fn healthz(State(state): State<AppState>) -> impl IntoResponse {
    match sqlx::query("SELECT 1").execute(&state.db.pool).await {
        Ok(_) => (StatusCode::OK, "ok"),
        Err(e) => {
            tracing::warn!(error = %e, "health check: database unavailable");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable")
        }
    }
}

async fn not_found() -> error::AppError {
    error::AppError::NotFound
}

pub fn router(state: AppState) -> Router {
    let upload_limit = state.config.max_upload_bytes + 64 * 1024;
    // The sell and edit forms take a cover up to 8 times too large, read and thrown away, so the
    // form comes back filled in with the reason (past this the browser's own check has spoken).
    let form_limit = || DefaultBodyLimit::max(state.config.max_upload_bytes * 8 + 64 * 1024);
    let cache = |v: &'static str| {
        SetResponseHeaderLayer::overriding(header::CACHE_CONTROL, HeaderValue::from_static(v))
    };
    // In the binary: an image or a machine that has only the binary serves them too.
    let static_files = Router::new()
        .route(
            "/static/style.css",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
                    STYLE_CSS,
                )
            }),
        )
        .route(
            "/static/app.js",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
                    APP_JS,
                )
            }),
        )
        .layer(cache("public, max-age=3600"));
    // Cover names are random and never reused: cache them for a long time.
    let covers = Router::new()
        .nest_service("/covers", ServeDir::new(&state.config.uploads_dir))
        .layer(cache("public, max-age=31536000, immutable"));
    let pages = Router::new()
        .route("/", get(catalog::home))
        .route("/healthz", get(healthz))
        .route(
            "/register",
            get(accounts::register_form).post(accounts::register),
        )
        .route("/login", get(accounts::login_form).post(accounts::login))
        .route("/logout", post(accounts::logout))
        .route("/books", get(catalog::list))
        .route("/books/{id}", get(catalog::detail))
        .route(
            "/books/{id}/edit",
            get(selling::edit_form)
                .post(selling::edit)
                .layer(form_limit()),
        )
        .route(
            "/books/{id}/delete",
            get(selling::delete_form).post(selling::delete),
        )
        .route("/books/{id}/buy", post(orders::buy))
        .route(
            "/sell",
            get(selling::sell_form)
                .post(selling::sell)
                .layer(form_limit()),
        )
        .route("/my/books", get(selling::my_books))
        .route("/orders", get(orders::mine))
        .route("/orders/{id}", get(orders::show))
        .route("/orders/{id}/pay", post(orders::pay))
        .route(
            "/orders/{id}/cancel",
            get(orders::cancel_form).post(orders::cancel),
        )
        .route("/orders/{id}/address", post(orders::address))
        .route("/orders/{id}/ship", post(orders::ship))
        .route("/sales", get(orders::sales))
        .route("/admin/users", get(admin::users))
        .route("/admin/claim", get(admin::claim_form).post(admin::claim))
        .layer(cache("no-store"));
    Router::new()
        .merge(pages)
        .merge(static_files)
        .merge(covers)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(upload_limit))
        .layer(axum::middleware::from_fn_with_state(state.clone(), bounded))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            web::around_every_request,
        ))
        .layer(CompressionLayer::new())
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &axum::http::Request<_>| {
                    let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
                    // The path only: query strings may carry search terms, never secrets, but stay out anyway.
                    tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
                })
                .on_response(DefaultOnResponse::new().level(Level::INFO).latency_unit(LatencyUnit::Micros)),
        )
        .layer(SetRequestIdLayer::x_request_id(web::RequestIds))
        .with_state(state)
}

/// Connects, migrates, and serves until SIGTERM or Ctrl-C, finishing the requests in flight.
///
/// Requests are served by `threads` event loops (one thread and one single-threaded runtime each)
/// accepting on the same socket: an idle loop takes the next connection, and a request never wakes
/// another thread. On these 2-core machines that is 5-10 % more requests per second than one
/// work-stealing runtime, whose idle workers are woken for every burst. This runtime keeps the
/// start-up, the sweeps and the signal.
pub async fn serve(config: Config) -> Result<(), String> {
    std::fs::create_dir_all(&config.uploads_dir).map_err(|e| {
        format!(
            "cannot create the uploads directory {}: {e}",
            config.uploads_dir.display()
        )
    })?;
    if let Some(path) = config.database_url.strip_prefix("sqlite://")
        && let Some(parent) = std::path::Path::new(path.split('?').next().unwrap_or(path)).parent()
    {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create the data directory {}: {e}", parent.display()))?;
    }
    // With MySQL the server threads open their own connections: this runtime's (start-up, sweeps)
    // need few. SQLite's are shared by every thread.
    let setup_connections = match db::Engine::of(&config.database_url) {
        db::Engine::Sqlite => config.db_connections,
        db::Engine::Mysql => 2,
    };
    let db = Db::connect(&config.database_url, setup_connections)
        .await
        .map_err(|e| format!("cannot connect to the database: {e}"))?;
    db.migrate(&db::Domain::ALL)
        .await
        .map_err(|e| format!("cannot migrate the database: {e}"))?;
    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .and_then(tokio::net::TcpListener::into_std)
        .map_err(|e| format!("cannot listen on {}: {e}", config.addr))?;
    if let Err(e) = admin::offer_setup_token(&db, &config).await {
        tracing::warn!(error = %e, "admin setup: could not make a setup token");
    }
    let state = AppState::new(db, config);
    tokio::spawn(sweep::run(state.clone()));
    tokio::spawn(db::watch_secret(
        state.db.clone(),
        Arc::clone(&state.config),
    ));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let (done_tx, mut done) = tokio::sync::mpsc::unbounded_channel();
    for n in 0..state.config.threads {
        let listener = listener
            .try_clone()
            .map_err(|e| format!("cannot share the listening socket: {e}"))?;
        let (state, mut stopped, done_tx) = (state.clone(), stopped.clone(), done_tx.clone());
        std::thread::Builder::new()
            .name(format!("serve-{n}"))
            .spawn(move || {
                let result = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| format!("cannot start an event loop: {e}"))
                    .and_then(|runtime| {
                        runtime.block_on(async move {
                            let state = state.for_this_thread().await?;
                            let listener = tokio::net::TcpListener::from_std(listener)
                                .map_err(|e| format!("cannot listen: {e}"))?;
                            let app = router(state)
                                .into_make_service_with_connect_info::<std::net::SocketAddr>();
                            axum::serve(listener, app)
                                .with_graceful_shutdown(async move {
                                    let _ = stopped.wait_for(|stop| *stop).await;
                                })
                                .await
                                .map_err(|e| e.to_string())
                        })
                    });
                let _ = done_tx.send(result);
            })
            .map_err(|e| format!("cannot start a server thread: {e}"))?;
    }
    drop(done_tx);
    tracing::info!(addr = %state.config.addr, threads = state.config.threads, "bookstore-app listening");
    // A loop that ends before the signal (its database refused it) ends the server.
    let early = tokio::select! {
        () = shutdown_signal() => None,
        result = done.recv() => Some(result.unwrap_or(Ok(()))),
    };
    let _ = stop.send(true);
    if let Some(result) = early {
        result?;
    }
    while let Some(result) = done.recv().await {
        result?;
    }
    Ok(())
}

async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
    }
    // Behind a load balancer or swarm DNS, the replica is taken out of rotation as it is told to
    // stop; serving a few seconds more lets the clients that still have its address finish.
    let drain = std::env::var("BOOKSTORE_SHUTDOWN_DELAY_SECS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0)
        .min(60);
    if drain > 0 {
        tracing::info!(
            seconds = drain,
            "stop requested: still serving while clients move away"
        );
        tokio::time::sleep(std::time::Duration::from_secs(drain)).await;
    }
    tracing::info!("shutting down: finishing requests in flight");
}
