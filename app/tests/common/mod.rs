//! The app's test world: the real `bookstore-app` binary on a free loopback port, against SQLite
//! (a temporary file) and MariaDB (a fresh database on the server scripts/test.sh starts), and a
//! small HTTP client with a cookie jar.

#![allow(dead_code)]

pub mod split;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub enum Engine {
    Sqlite,
    Mysql(String),
}

/// Both engines. MariaDB is required: scripts/test.sh installs and starts it and sets the URL.
pub fn engines() -> Vec<Engine> {
    let url = std::env::var("BOOKSTORE_TEST_MYSQL_URL").unwrap_or_else(|_| {
        panic!("BOOKSTORE_TEST_MYSQL_URL is not set: run scripts/test.sh, which installs and starts MariaDB on 127.0.0.1")
    });
    vec![Engine::Sqlite, Engine::Mysql(url)]
}

pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "bookstore-app-{name}-{}-{}",
            std::process::id(),
            random_suffix()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn random_suffix() -> String {
    let mut b = [0u8; 6];
    getrandom::fill(&mut b).unwrap();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A database for one test: a SQLite file, or a new MariaDB database dropped at the end.
pub struct TestDb {
    pub url: String,
    /// The split: which service's database holds which table (`query_i64` follows it).
    routes: Vec<(String, String)>,
    admin_url: Option<String>,
    name: String,
    /// MariaDB users made for this database (`user`), dropped with it.
    users: std::sync::Mutex<Vec<String>>,
    _dir: TempDir,
}

impl TestDb {
    pub fn new(engine: &Engine) -> TestDb {
        let dir = TempDir::new("db");
        match engine {
            Engine::Sqlite => TestDb {
                routes: vec![],
                url: format!("sqlite://{}/test.db?mode=rwc", dir.0.display()),
                admin_url: None,
                name: String::new(),
                users: Default::default(),
                _dir: dir,
            },
            Engine::Mysql(base) => {
                let name = format!("bs_test_{}", random_suffix());
                sql(
                    base,
                    &format!("CREATE DATABASE {name} CHARACTER SET utf8mb4"),
                );
                TestDb {
                    routes: vec![],
                    url: format!("{}/{name}", base.trim_end_matches('/')),
                    admin_url: Some(base.clone()),
                    users: Default::default(),
                    name,
                    _dir: dir,
                }
            }
        }
    }

    pub fn query_i64(&self, query: &str) -> i64 {
        query_i64s(self.url_for(query), query)[0]
    }

    /// `query_i64s` on the database holding the query's table.
    pub fn query_i64s(&self, query: &str) -> Vec<i64> {
        query_i64s(self.url_for(query), query)
    }

    /// `execute` on the database holding the statement's table.
    pub fn execute(&self, statement: &str) {
        execute(self.url_for(statement), statement)
    }

    /// The split's databases as one: `url` is accounts' (admin commands run there), and a query
    /// goes to the database of the first table it names.
    pub fn view(url: String, routes: Vec<(String, String)>) -> TestDb {
        TestDb {
            url,
            routes,
            admin_url: None,
            name: String::new(),
            users: Default::default(),
            _dir: TempDir::new("view"),
        }
    }

    fn url_for(&self, query: &str) -> &str {
        let words: Vec<&str> = query
            .split(|c: char| c.is_whitespace() || c == '(' || c == ',')
            .filter(|w| !w.is_empty())
            .collect();
        let table = words
            .windows(2)
            .find(|w| ["FROM", "JOIN", "INTO", "UPDATE"].contains(&w[0]))
            .map(|w| w[1]);
        table
            .and_then(|t| self.routes.iter().find(|(name, _)| name == t))
            .map_or(&self.url, |(_, url)| url)
    }
}

impl TestDb {
    /// A fresh MariaDB database and the server's base URL (with the test user's credentials).
    pub fn mysql() -> (String, TestDb) {
        let Engine::Mysql(base) = engines().pop().expect("mysql engine") else {
            panic!("the last engine is MySQL")
        };
        let db = TestDb::new(&Engine::Mysql(base.clone()));
        (base, db)
    }

    /// The MariaDB database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A MariaDB user of this database only (`<prefix>_<the database's suffix>`, all privileges on
    /// it), with this password; dropped with the database. Its name.
    pub fn user(&self, prefix: &str, password: &str) -> String {
        let base = self.admin_url.as_ref().expect("a MySQL database");
        let user = format!("{prefix}_{}", &self.name["bs_test_".len()..]);
        sql(
            base,
            &format!("CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY '{password}'"),
        );
        sql(
            base,
            &format!(
                "GRANT ALL PRIVILEGES ON {}.* TO '{user}'@'127.0.0.1'",
                self.name
            ),
        );
        self.users.lock().unwrap().push(user.clone());
        user
    }

    /// A MySQL URL's `user:password` and `host:port/db`, as a stack splits them (the credentials
    /// go into the secret).
    pub fn credentials_and_host(&self) -> (&str, &str) {
        self.url
            .strip_prefix("mysql://")
            .and_then(|rest| rest.split_once('@'))
            .expect("a mysql:// URL with credentials")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(base) = &self.admin_url {
            for user in self.users.lock().unwrap_or_else(|e| e.into_inner()).iter() {
                sql(base, &format!("DROP USER IF EXISTS '{user}'@'127.0.0.1'"));
            }
            sql(base, &format!("DROP DATABASE IF EXISTS {}", self.name));
        }
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Runs one statement on `url` (the tests' MariaDB administration).
pub fn execute(url: &str, statement: &str) {
    sql(url, statement)
}

/// The first column of every row of `query`, as integers, or the database's refusal.
pub fn try_query_i64s(url: &str, query: &str) -> Result<Vec<i64>, String> {
    let (url, query) = (url.to_string(), query.to_string());
    rt().block_on(async move {
        sqlx::any::install_default_drivers();
        use sqlx::{Connection, Row};
        let mut conn = sqlx::AnyConnection::connect(&url)
            .await
            .map_err(|e| e.to_string())?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(query))
            .fetch_all(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        Ok(rows.iter().map(|r| r.get::<i64, _>(0)).collect())
    })
}

/// The first column of every row of `query`, as integers.
pub fn query_i64s(url: &str, query: &str) -> Vec<i64> {
    let (url, query) = (url.to_string(), query.to_string());
    rt().block_on(async move {
        sqlx::any::install_default_drivers();
        use sqlx::{Connection, Row};
        let mut conn = sqlx::AnyConnection::connect(&url).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(query))
            .fetch_all(&mut conn)
            .await
            .unwrap()
            .iter()
            .map(|r| r.get::<i64, _>(0))
            .collect()
    })
}

fn sql(url: &str, statement: &str) {
    let url = url.to_string();
    let statement = statement.to_string();
    rt().block_on(async move {
        sqlx::any::install_default_drivers();
        use sqlx::Connection;
        let mut conn = sqlx::AnyConnection::connect(&url)
            .await
            .unwrap_or_else(|e| panic!("cannot reach MariaDB at {url}: {e}"));
        sqlx::query(sqlx::AssertSqlSafe(statement))
            .execute(&mut conn)
            .await
            .unwrap();
    });
}

pub struct App {
    /// None: a view of the split (`split::Split::views`), whose services are its own.
    child: Option<Child>,
    pub port: u16,
    /// The server's log (its stdout), for what it tells operators (the admin setup token).
    pub log: PathBuf,
}

impl Drop for App {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
            let _ = std::fs::remove_file(&self.log);
        }
    }
}

/// Whether GET /healthz on `port` answers 200; any error is a no.
fn answers_health(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let request =
        format!("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    if s.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    s.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1 200")
}

/// A port nothing listens on, below the kernel's ephemeral range (32768 and up here): a port
/// the kernel handed out would be free only until it hands it to some connection's source,
/// between this check and the app's bind. Never the same one twice in a test process.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    loop {
        let port = 20_000 + (fastrand_u32() % 12_000) as u16;
        let mut given = GIVEN.lock().unwrap();
        if given.contains(&port) {
            continue;
        }
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            given.push(port);
            return port;
        }
    }
}

/// A random number from the OS, without a crate for it.
fn fastrand_u32() -> u32 {
    let mut b = [0u8; 4];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .expect("/dev/urandom");
    u32::from_le_bytes(b)
}

impl App {
    /// Starts the binary on `database_url` with covers under `uploads`, plus extra environment.
    pub fn start(database_url: &str, uploads: &Path, env: &[(&str, &str)]) -> App {
        let mut app = App::spawn(database_url, uploads, env);
        app.wait_healthy();
        app
    }

    /// Starts the binary without waiting for it (the split's services need each other up).
    pub fn spawn(database_url: &str, uploads: &Path, env: &[(&str, &str)]) -> App {
        let port = free_port();
        let log =
            std::env::temp_dir().join(format!("bookstore-app-{port}-{}.log", random_suffix()));
        let child = Command::new(env!("CARGO_BIN_EXE_bookstore-app"))
            .env_clear()
            .env("BOOKSTORE_ADDR", format!("127.0.0.1:{port}"))
            .env("DATABASE_URL", database_url)
            .env("BOOKSTORE_UPLOADS_DIR", uploads)
            .env("BOOKSTORE_LOG", "warn")
            .env("NO_COLOR", "1")
            .envs(env.iter().copied())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start bookstore-app");
        App {
            child: Some(child),
            port,
            log,
        }
    }

    /// The split as the single-process scenarios see it: the router's port, accounts' log.
    pub fn view(port: u16, log: PathBuf) -> App {
        App {
            child: None,
            port,
            log,
        }
    }

    /// Waits until GET /healthz answers 200 (30 s at most); fails with the log if the app exits.
    pub fn wait_healthy(&mut self) {
        let start = Instant::now();
        loop {
            // A probe that never panics: while the app boots, a connection may be refused, and a
            // connection to a port nothing listens on yet can even succeed (TCP's self-connect,
            // the kernel picking that same port as the source), so only a 200 counts.
            if answers_health(self.port) {
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!(
                    "the app exited while starting ({status}); its log: {}",
                    self.log_text()
                );
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the app did not become healthy; its log: {}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn client(&self) -> Client {
        Client::new(self.port)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Peak resident memory (VmHWM) in MiB, from /proc.
    pub fn peak_rss_mib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .unwrap()
            / 1024
    }

    /// SIGKILL, and wait for it to be gone.
    pub fn kill(&mut self) {
        let child = self.child.as_mut().expect("a process of its own");
        let _ = child.kill();
        let _ = child.wait();
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("a process of its own").id()
    }

    pub fn wait(mut self) -> std::process::ExitStatus {
        let status = self
            .child
            .as_mut()
            .expect("a process of its own")
            .wait()
            .unwrap();
        let _ = std::fs::remove_file(&self.log);
        std::mem::forget(self);
        status
    }
}

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn location(&self) -> &str {
        self.header("location").unwrap_or_default()
    }
}

/// One browser: a cookie jar and requests over fresh connections.
#[derive(Clone)]
pub struct Client {
    pub port: u16,
    pub cookies: HashMap<String, String>,
    pub extra_headers: Vec<(String, String)>,
}

impl Client {
    pub fn new(port: u16) -> Client {
        Client {
            port,
            cookies: HashMap::new(),
            extra_headers: vec![],
        }
    }

    /// The same cookies, talking to another server (another replica).
    pub fn on(&self, port: u16) -> Client {
        Client {
            port,
            ..self.clone()
        }
    }

    pub fn csrf(&mut self) -> String {
        if !self.cookies.contains_key("bs_csrf") {
            // A page with a form hands out the token, as a browser would get it.
            self.get("/login");
        }
        self.cookies["bs_csrf"].clone()
    }

    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Resp {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.port,
            body.len()
        );
        if let Some(ct) = content_type {
            head.push_str(&format!("Content-Type: {ct}\r\n"));
        }
        if !self.cookies.is_empty() {
            let jar: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            head.push_str(&format!("Cookie: {}\r\n", jar.join("; ")));
        }
        for (k, v) in &self.extra_headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        s.write_all(head.as_bytes()).unwrap();
        s.write_all(body).unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).unwrap();
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("a full response");
        let head = String::from_utf8_lossy(&raw[..split]).into_owned();
        let mut body = raw[split + 4..].to_vec();
        let mut lines = head.lines();
        let status: u16 = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        if headers
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"))
        {
            body = dechunk(&body);
        }
        for (k, v) in &headers {
            if k.eq_ignore_ascii_case("set-cookie")
                && let Some((name, rest)) = v.split_once('=')
            {
                let value = rest.split(';').next().unwrap_or_default().to_string();
                if value.is_empty() || v.contains("Max-Age=0") {
                    self.cookies.remove(name);
                } else {
                    self.cookies.insert(name.to_string(), value);
                }
            }
        }
        Resp {
            status,
            headers,
            body,
        }
    }

    pub fn get(&mut self, path: &str) -> Resp {
        self.request("GET", path, None, b"")
    }

    /// A form POST; the CSRF token is added unless the fields already carry one.
    pub fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Resp {
        let mut fields: Vec<(String, String)> = fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        if !fields.iter().any(|(k, _)| k == "csrf") {
            fields.push(("csrf".into(), self.csrf()));
        }
        let body: Vec<String> = fields
            .iter()
            .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
            .collect();
        self.request(
            "POST",
            path,
            Some("application/x-www-form-urlencoded"),
            body.join("&").as_bytes(),
        )
    }

    /// A multipart POST (the sell and edit forms), with an optional file `cover`.
    pub fn post_multipart(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
        cover: Option<(&str, &[u8])>,
    ) -> Resp {
        let boundary = "----bookstoreboundary7MA4YWxkTrZu0gW";
        let mut body = Vec::new();
        let csrf = self.csrf();
        let mut all: Vec<(&str, &str)> = fields.to_vec();
        if !all.iter().any(|(k, _)| *k == "csrf") {
            all.push(("csrf", &csrf));
        }
        for (k, v) in all {
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
                )
                .as_bytes(),
            );
        }
        if let Some((filename, bytes)) = cover {
            body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"cover\"; filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes());
            body.extend_from_slice(bytes);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        self.request(
            "POST",
            path,
            Some(&format!("multipart/form-data; boundary={boundary}")),
            &body,
        )
    }

    pub fn register(&mut self, name: &str, email: &str) -> Resp {
        self.post(
            "/register",
            &[
                ("name", name),
                ("email", email),
                ("password", "correct horse battery"),
            ],
        )
    }
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = data.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&data[..end]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.extend_from_slice(&data[end + 2..end + 2 + size]);
        data = &data[end + 2 + size + 2..];
    }
    out
}

/// A tiny valid PNG (1×1), for covers.
pub const PNG: &[u8] = &[
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F, 0x15, 0xC4,
    0x89, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0x00, 0x01, 0x00, 0x00,
    0x05, 0x00, 0x01, 0x0D, 0x0A, 0x2D, 0xB4, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE,
    0x42, 0x60, 0x82,
];

/// The id at the end of a redirect such as `/books/12`.
pub fn id_from(location: &str) -> i64 {
    location
        .rsplit('/')
        .next()
        .unwrap()
        .parse()
        .unwrap_or_else(|_| panic!("no id in {location:?}"))
}

/// `bookstore-app ARGS` on `database_url`: (exit code, stdout, stderr).
pub fn app_command(database_url: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_bookstore-app"))
        .env_clear()
        .env("DATABASE_URL", database_url)
        .args(args)
        .output()
        .expect("run bookstore-app");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `scenario` once per engine, each time on a fresh database and uploads directory: with
/// the app in one process, then as the split's three services behind their router.
pub fn on_each_engine(env: &[(&str, &str)], scenario: impl Fn(&Engine, &App, &TestDb)) {
    for engine in engines() {
        let db = TestDb::new(&engine);
        let uploads = TempDir::new("uploads");
        let app = App::start(&db.url, &uploads.0, env);
        scenario(&engine, &app, &db);
    }
    for engine in engines() {
        let split = split::Split::start(&engine, env);
        let (app, db) = split.views();
        let started = Instant::now();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            scenario(&engine, &app, &db)
        }));
        if let Err(e) = outcome {
            eprintln!(
                "the scenario failed on the split ({engine:?}, after {:?}); the services' logs:\n{}",
                started.elapsed(),
                split.logs()
            );
            std::panic::resume_unwind(e);
        }
    }
}

/// Publishes a book through the sell form (a description, the cover optional); its id.
pub fn publish(
    c: &mut Client,
    title: &str,
    author: &str,
    price: &str,
    stock: &str,
    cover: Option<(&str, &[u8])>,
) -> i64 {
    let r = c.post_multipart(
        "/sell",
        &[
            ("title", title),
            ("author", author),
            ("description", "A fine copy."),
            ("price", price),
            ("stock", stock),
        ],
        cover,
    );
    assert_eq!(r.status, 303, "publish {title}: {}", r.text());
    id_from(r.location())
}

/// A shipping address, as the checkout form asks for it.
pub const ADDRESS: &[(&str, &str)] = &[
    ("ship_name", "Bob Buyer"),
    ("ship_street", "12 Long Road"),
    ("ship_city", "Bogotá"),
    ("ship_postcode", "110111"),
    ("ship_country", "Colombia"),
];

/// The checkout's `fields` with the shipping address.
pub fn with_address<'a>(fields: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut all = fields.to_vec();
    all.extend_from_slice(ADDRESS);
    all
}
