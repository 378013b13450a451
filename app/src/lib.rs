//! The BookStore web app: a second-hand book marketplace. Server-rendered HTML that works without
//! JavaScript; SQLite by default, MySQL in production; stateless replicas.

pub mod accounts;
pub mod catalog;
pub mod config;
pub mod connections;
pub mod db;
pub mod error;
pub mod form;
pub mod internal;
pub mod money;
pub mod orders;
pub mod ports;
pub mod reads;
pub mod routing;
pub mod split_derive;
pub mod split_setup;
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
    /// The split: the other services this one calls (None: all in this process).
    pub peers: Option<Arc<internal::Peers>>,
    /// The split's accounts service: what signs identity tokens.
    pub signer: Option<Arc<accounts::token::Signer>>,
    /// The split's catalog and orders services: what verifies identity tokens.
    pub verifier: Option<Arc<accounts::token::Verifier>>,
}

impl AppState {
    pub fn new(db: Db, config: Config) -> Result<AppState, String> {
        let split = config.split.clone();
        let peers = split.as_ref().map(|s| {
            let key: Arc<str> = Arc::from(s.internal_key.as_str());
            let peer = |service, host: &Option<String>| {
                host.clone()
                    .map(|h| internal::Peer::new(service, h, Arc::clone(&key)))
            };
            Arc::new(internal::Peers {
                accounts: peer(config::Service::Accounts, &s.accounts),
                catalog: peer(config::Service::Catalog, &s.catalog),
                orders: peer(config::Service::Orders, &s.orders),
            })
        });
        let signer = match &split {
            Some(s) if s.service == config::Service::Accounts => {
                Some(Arc::new(accounts::token::Signer::new(&s.identity_keys)?))
            }
            _ => None,
        };
        let verifier = match &split {
            Some(s) if s.service != config::Service::Accounts => Some(Arc::default()),
            _ => None,
        };
        Ok(AppState {
            peers,
            signer,
            verifier,
            db,
            hashing: Arc::new(accounts::Hashing::new(config.hash_workers)),
            in_flight: Arc::new(tokio::sync::Semaphore::new(config.max_requests)),
            names: Arc::default(),
            config: Arc::new(config),
        })
    }

    /// The peer serving this part, when it is another service.
    fn peer(
        &self,
        pick: fn(&internal::Peers) -> &Option<internal::Peer>,
    ) -> Option<&internal::Peer> {
        self.peers.as_deref().and_then(|p| pick(p).as_ref())
    }

    /// What catalog and orders ask of accounts (`ports::Identity`).
    pub fn accounts(&self) -> accounts::api::Port<'_> {
        match self.peer(|p| &p.accounts) {
            Some(peer) => accounts::api::Port::Remote(accounts::api::Remote(peer, &self.names)),
            None => accounts::api::Port::Local(accounts::Local {
                db: &self.db,
                names: &self.names,
            }),
        }
    }

    /// What orders ask of catalog (`ports::Stock`).
    pub fn catalog(&self) -> catalog::api::Port<'_> {
        match self.peer(|p| &p.catalog) {
            Some(peer) => catalog::api::Port::Remote(catalog::api::Remote(peer)),
            None => catalog::api::Port::Local(catalog::Local { db: &self.db }),
        }
    }

    /// What catalog asks of orders (`ports::BookOrders`).
    pub fn orders(&self) -> orders::api::Port<'_> {
        match self.peer(|p| &p.orders) {
            Some(peer) => orders::api::Port::Remote(orders::api::Remote(peer)),
            None => orders::api::Port::Local(orders::Local { db: &self.db }),
        }
    }

    /// Which part of the BookStore this process serves.
    pub fn service(&self) -> config::Service {
        self.config
            .split
            .as_ref()
            .map_or(config::Service::All, |s| s.service)
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
pub(crate) async fn bounded(
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

/// GET /healthz: 200 only when the database answers (one trivial query: cheap for a load
/// balancer) and, for a service of the split, the services it calls answer theirs.
/// 200 when the database answers and so do the services this one calls (`?own`: the database
/// only, a container's liveness: two services each waiting for the other's health would never
/// start). The load balancer asks without `?own`.
async fn healthz(
    State(state): State<AppState>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> impl IntoResponse {
    if let Err(e) = sqlx::query("SELECT 1").execute(&state.db.pool).await {
        tracing::warn!(error = %e, "health check: database unavailable");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "database unavailable".to_string(),
        );
    }
    if query.as_deref() == Some("own") {
        return (StatusCode::OK, "ok".to_string());
    }
    match internal::peers_answer(&state).await {
        Ok(()) => (StatusCode::OK, "ok".to_string()),
        Err(peer) => {
            tracing::warn!(
                peer,
                "health check: a service this one calls does not answer"
            );
            (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the {peer} service does not answer"),
            )
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
    let accounts_pages = Router::new()
        .route(
            "/register",
            get(accounts::register_form).post(accounts::register),
        )
        .route("/login", get(accounts::login_form).post(accounts::login))
        .route("/logout", post(accounts::logout))
        .route("/admin/users", get(admin::users))
        .route("/admin/claim", get(admin::claim_form).post(admin::claim));
    let catalog_pages = Router::new()
        .route("/", get(catalog::home))
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
        .route(
            "/sell",
            get(selling::sell_form)
                .post(selling::sell)
                .layer(form_limit()),
        )
        .route("/my/books", get(selling::my_books));
    let orders_pages = Router::new()
        .route("/books/{id}/buy", post(orders::buy))
        .route("/orders", get(orders::mine))
        .route("/orders/{id}", get(orders::show))
        .route("/orders/{id}/pay", post(orders::pay))
        .route(
            "/orders/{id}/cancel",
            get(orders::cancel_form).post(orders::cancel),
        )
        .route("/orders/{id}/address", post(orders::address))
        .route("/orders/{id}/ship", post(orders::ship))
        .route("/sales", get(orders::sales));
    // A service of the split serves its own pages (the load balancer routes by path); each serves
    // the style and script every page links to, and its health.
    use config::Service;
    let service = state.service();
    let mut pages = Router::new().route("/healthz", get(healthz));
    if matches!(service, Service::All | Service::Accounts) {
        pages = pages.merge(accounts_pages);
    }
    if matches!(service, Service::All | Service::Catalog) {
        pages = pages.merge(catalog_pages);
    }
    if matches!(service, Service::All | Service::Orders) {
        pages = pages.merge(orders_pages);
    }
    let pages = pages.layer(cache("no-store"));
    let covers = if matches!(service, Service::All | Service::Catalog) {
        covers
    } else {
        Router::new()
    };
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
    // A service of the split owns its domain's tables only, in a database of its own.
    let service = config
        .split
        .as_ref()
        .map_or(config::Service::All, |s| s.service);
    let domains: &[db::Domain] = match service {
        config::Service::All => &db::Domain::ALL,
        config::Service::Accounts => &[db::Domain::Accounts],
        config::Service::Catalog => &[db::Domain::Catalog],
        config::Service::Orders => &[db::Domain::Orders],
    };
    db.migrate(domains)
        .await
        .map_err(|e| format!("cannot migrate the database: {e}"))?;
    let bind = |addr: std::net::SocketAddr| async move {
        tokio::net::TcpListener::bind(addr)
            .await
            .and_then(tokio::net::TcpListener::into_std)
            .map_err(|e| format!("cannot listen on {addr}: {e}"))
    };
    let listener = bind(config.addr).await?;
    let internal_listener = match &config.split {
        Some(s) => Some(bind(s.internal_addr).await?),
        None => None,
    };
    if matches!(service, config::Service::All | config::Service::Accounts)
        && let Err(e) = admin::offer_setup_token(&db, &config).await
    {
        tracing::warn!(error = %e, "admin setup: could not make a setup token");
    }
    let state = AppState::new(db, config)?;
    if state.verifier.is_some() {
        tokio::spawn(web::follow_accounts(state.clone()));
    }
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
        let internal_listener = internal_listener
            .as_ref()
            .map(std::net::TcpListener::try_clone)
            .transpose()
            .map_err(|e| format!("cannot share the internal listening socket: {e}"))?;
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
                            // The split's internal API, on the same event loops.
                            let mut internal_stopped = stopped.clone();
                            let internal = match internal_listener {
                                Some(l) => Some((
                                    tokio::net::TcpListener::from_std(l)
                                        .map_err(|e| format!("cannot listen: {e}"))?,
                                    internal::router(state.clone(), state.service()),
                                )),
                                None => None,
                            };
                            let app = router(state)
                                .into_make_service_with_connect_info::<std::net::SocketAddr>();
                            let public = async {
                                axum::serve(listener, app)
                                    .with_graceful_shutdown(async move {
                                        let _ = stopped.wait_for(|stop| *stop).await;
                                    })
                                    .await
                                    .map_err(|e| e.to_string())
                            };
                            let internal = async {
                                match internal {
                                    Some((l, api)) => axum::serve(l, api)
                                        .with_graceful_shutdown(async move {
                                            let _ = internal_stopped.wait_for(|stop| *stop).await;
                                        })
                                        .await
                                        .map_err(|e| e.to_string()),
                                    None => Ok(()),
                                }
                            };
                            let (a, b) = tokio::join!(public, internal);
                            a.and(b)
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
