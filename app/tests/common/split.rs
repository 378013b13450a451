//! The split in the test world: accounts, catalog and orders as three processes of the real binary
//! on loopback, each with its own database — three SQLite files, or three MariaDB databases, each
//! with a user of its own that may use that database only —, the internal key and the identity
//! key in files, and a router in front that sends each path to its service as the load balancer's
//! path rules do (`Service::serving`).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bookstore_app::config::Service;

use super::*;

pub const SERVICES: [Service; 3] = [Service::Accounts, Service::Catalog, Service::Orders];

/// One service: its process, database and ports.
pub struct Part {
    pub service: Service,
    pub app: App,
    pub db: TestDb,
    /// The database URL the service uses (its own user's, on MariaDB).
    pub url: String,
    pub internal_port: u16,
    env: Vec<(String, String)>,
}

pub struct Split {
    pub parts: Vec<Part>,
    pub router: Router,
    pub uploads: TempDir,
    pub keys: TempDir,
    pub internal_key: String,
}

fn index(service: Service) -> usize {
    SERVICES.iter().position(|s| *s == service).unwrap()
}

impl Split {
    /// The three services on `engine`, healthy, behind the router; `env` goes to each.
    pub fn start(engine: &Engine, extra: &[(&str, &str)]) -> Split {
        let keys = TempDir::new("keys");
        let internal_key = format!("{}{}", random_suffix(), random_suffix()).repeat(4);
        let key_file = keys.0.join("internal.key");
        std::fs::write(&key_file, &internal_key).unwrap();
        let (code, identity, err) = app_command("sqlite::memory:", &["identity-key"]);
        assert_eq!(code, 0, "identity-key: {err}");
        let identity_file = keys.0.join("identity.key");
        std::fs::write(&identity_file, identity).unwrap();
        let uploads = TempDir::new("uploads");
        let internal_ports: Vec<u16> = SERVICES.iter().map(|_| free_port()).collect();
        let peer = |s: Service| format!("http://127.0.0.1:{}", internal_ports[index(s)]);
        let mut parts = Vec::new();
        for (i, service) in SERVICES.iter().enumerate() {
            let db = TestDb::new(engine);
            let url = match engine {
                Engine::Sqlite => db.url.clone(),
                Engine::Mysql(_) => {
                    let password = format!("pw-{}", random_suffix());
                    let user = db.user(&service.name()[..3], &password);
                    let (_, host) = db.credentials_and_host();
                    format!("mysql://{user}:{password}@{host}")
                }
            };
            let mut env: Vec<(String, String)> = vec![
                ("BOOKSTORE_SERVICE".into(), service.name().into()),
                (
                    "BOOKSTORE_INTERNAL_ADDR".into(),
                    format!("127.0.0.1:{}", internal_ports[i]),
                ),
                ("BOOKSTORE_ACCOUNTS_URL".into(), peer(Service::Accounts)),
                ("BOOKSTORE_CATALOG_URL".into(), peer(Service::Catalog)),
                ("BOOKSTORE_ORDERS_URL".into(), peer(Service::Orders)),
                (
                    "BOOKSTORE_INTERNAL_KEY_FILE".into(),
                    key_file.display().to_string(),
                ),
                (
                    "BOOKSTORE_IDENTITY_KEY_FILE".into(),
                    identity_file.display().to_string(),
                ),
                ("BOOKSTORE_REVOCATION_POLL_SECS".into(), "1".into()),
            ];
            env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
            let app = spawn(&url, &uploads.0, &env);
            parts.push(Part {
                service: *service,
                app,
                db,
                url,
                internal_port: internal_ports[i],
                env,
            });
        }
        for part in &mut parts {
            part.app.wait_healthy();
        }
        let router = Router::start(parts.iter().map(|p| p.app.port).collect());
        Split {
            parts,
            router,
            uploads,
            keys,
            internal_key,
        }
    }

    pub fn port(&self) -> u16 {
        self.router.port
    }

    pub fn client(&self) -> Client {
        Client::new(self.router.port)
    }

    /// The split as a single-process scenario sees an app and its database.
    pub fn views(&self) -> (App, TestDb) {
        let accounts = self.part(Service::Accounts);
        let mut routes = Vec::new();
        for (service, tables) in [
            (
                Service::Accounts,
                &[
                    "users",
                    "sessions",
                    "login_failures",
                    "login_known",
                    "admin_setup",
                    "session_revocations",
                ][..],
            ),
            (
                Service::Catalog,
                &["books", "books_search", "reservations"][..],
            ),
            (Service::Orders, &["orders", "delivery_providers"][..]),
        ] {
            for t in tables {
                routes.push((t.to_string(), self.part(service).url.clone()));
            }
        }
        (
            App::view(self.router.port, accounts.app.log.clone()),
            TestDb::view(accounts.url.clone(), routes),
        )
    }

    /// The three services' logs, for a failure's message.
    pub fn logs(&self) -> String {
        self.parts
            .iter()
            .map(|p| format!("--- {}:\n{}", p.service.name(), p.app.log_text()))
            .collect()
    }

    pub fn part(&self, service: Service) -> &Part {
        &self.parts[index(service)]
    }

    /// SIGKILL a service and start it again on the same ports and database, healthy.
    pub fn kill_and_restart(&mut self, service: Service) {
        let part = &mut self.parts[index(service)];
        let port = part.app.port;
        part.app.kill();
        let mut env = part.env.clone();
        env.push(("BOOKSTORE_ADDR".into(), format!("127.0.0.1:{port}")));
        part.app = spawn(&part.url, &self.uploads.0, &env);
        part.app.port = port;
        part.app.wait_healthy();
    }
}

fn spawn(url: &str, uploads: &std::path::Path, env: &[(String, String)]) -> App {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    App::spawn(url, uploads, &env)
}

/// The load balancer of the test world: each connection goes to the service its request's path
/// belongs to (one request per connection: the test client says `Connection: close`).
pub struct Router {
    pub port: u16,
    stop: Arc<AtomicBool>,
}

impl Router {
    /// `backends`: the public ports of accounts, catalog and orders, in that order.
    pub fn start(backends: Vec<u16>) -> Router {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if stopping.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(client) = client else { continue };
                let backends = backends.clone();
                std::thread::spawn(move || {
                    let _ = forward(client, &backends);
                });
            }
        });
        Router { port, stop }
    }
}

impl Drop for Router {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn forward(mut client: TcpStream, backends: &[u16]) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut byte = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = client.read(&mut byte)?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&byte[..n]);
    }
    let line = String::from_utf8_lossy(&head[..head.iter().position(|b| *b == b'\r').unwrap_or(0)])
        .into_owned();
    let path = line.split(' ').nth(1).unwrap_or("/");
    let backend = backends[index(Service::serving(path))];
    // A service that is down or dies before answering gets the load balancer's 502.
    let bad_gateway = |mut client: TcpStream| {
        let _ = client.write_all(
            b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
        // Shut down, not only dropped: the copy thread holds a clone of the socket.
        let _ = client.shutdown(std::net::Shutdown::Both);
        Ok(())
    };
    let Ok(mut server) = TcpStream::connect(("127.0.0.1", backend)) else {
        return bad_gateway(client);
    };
    if server.write_all(&head).is_err() {
        return bad_gateway(client);
    }
    let mut upstream = client.try_clone()?;
    let mut to_server = server.try_clone()?;
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut upstream, &mut to_server);
    });
    let copied = std::io::copy(&mut server, &mut client).unwrap_or(0);
    if copied == 0 {
        return bad_gateway(client);
    }
    let _ = client.shutdown(std::net::Shutdown::Both);
    Ok(())
}
