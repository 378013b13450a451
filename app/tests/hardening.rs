//! The BookStore as an attacker and an operator meet it, through HTTP and the binary's command
//! line: login limits under concurrency and forged addresses, a login flood's memory, admins granted
//! explicitly, the seller's side, stock edits racing buyers, withdrawn books, the per-buyer cap, and
//! a rotated database password.

mod common;

use std::sync::{Arc, Barrier};

use common::{
    App, Client, Engine, TempDir, TestDb, app_command, id_from, on_each_engine, publish,
    with_address,
};

/// A client whose requests arrive through one trusted proxy that saw them come from `address`
/// (what the load balancer appends), after whatever the client itself wrote (`forged`).
fn via_proxy(app: &App, address: &str, forged: Option<&str>) -> Client {
    let mut c = app.client();
    let value = match forged {
        Some(f) => format!("{f}, {address}"),
        None => address.to_string(),
    };
    c.extra_headers.push(("X-Forwarded-For".into(), value));
    c.csrf();
    c
}

fn login(c: &mut Client, email: &str, password: &str) -> u16 {
    c.post("/login", &[("email", email), ("password", password)])
        .status
}

/// Runs `n` copies of `f` at once (released together by a barrier); their results.
fn at_once<T: Send + 'static>(n: usize, f: impl Fn(usize) -> T + Send + Sync + 'static) -> Vec<T> {
    let barrier = Arc::new(Barrier::new(n));
    let f = Arc::new(f);
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let (barrier, f) = (barrier.clone(), f.clone());
            std::thread::spawn(move || {
                barrier.wait();
                f(i)
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

const RIGHT: &str = "correct horse battery";

#[test]
fn login_limits_hold_under_concurrency_ignore_forged_hops_and_never_lock_the_owner_out() {
    on_each_engine(&[("BOOKSTORE_TRUSTED_PROXIES", "1")], |engine, app, _| {
        let mut ann = via_proxy(app, "10.0.0.5", None);
        assert_eq!(ann.register("Ann", "ann@example.com").status, 303);
        let mut ann_home = via_proxy(app, "10.0.0.5", None);
        assert_eq!(
            login(&mut ann_home, "ann@example.com", RIGHT),
            303,
            "{engine:?}"
        );
        // The longest e-mail the form takes, from an address as long as an IPv6 prints: its
        // counter subject (299 characters) fits the column on both engines.
        let long = format!("{}@example.com", "x".repeat(242));
        let mut v6 = via_proxy(app, "2001:db8:ffff:ffff:ffff:ffff:255.255.255.255", None);
        assert_eq!(login(&mut v6, &long, "wrong password!!"), 401, "{engine:?}");

        // 30 simultaneous wrong passwords from one address, each with a different forged first
        // hop: the attempt is counted before the hash, on the address the proxy appended.
        let template = via_proxy(app, "10.0.0.66", None);
        let statuses = at_once(30, move |i| {
            let mut c = template.clone();
            c.extra_headers = vec![(
                "X-Forwarded-For".into(),
                format!("203.0.113.{i}, 10.0.0.66"),
            )];
            login(&mut c, "ann@example.com", "wrong password!!")
        });
        let hashed = statuses.iter().filter(|s| **s == 401).count();
        let refused = statuses.iter().filter(|s| **s == 429).count();
        assert_eq!(hashed + refused, 30, "{engine:?}: {statuses:?}");
        assert!(hashed <= 5, "{engine:?}: {hashed} of 30 reached the hash");

        // Forging the owner's address as the first hop blames nobody but the real sender.
        let mut bob = via_proxy(app, "10.0.0.9", None);
        assert_eq!(bob.register("Bob", "bob@example.com").status, 303);
        let lies: Vec<u16> = (0..8)
            .map(|_| {
                let mut liar = via_proxy(app, "10.0.0.66", Some("10.0.0.9"));
                login(&mut liar, "bob@example.com", "not his password")
            })
            .collect();
        assert_eq!(lies, [401, 401, 401, 401, 401, 429, 429, 429], "{engine:?}");
        let mut bob_again = via_proxy(app, "10.0.0.9", None);
        assert_eq!(
            login(&mut bob_again, "bob@example.com", RIGHT),
            303,
            "{engine:?}: bob is not locked out by failures forged in his name"
        );

        // A distributed attack (5 tries from each of 8 addresses) trips the account-wide limit:
        // new addresses are refused, the owner's known address still logs in.
        for k in 0..8 {
            let mut c = via_proxy(app, &format!("10.0.1.{k}"), None);
            for _ in 0..5 {
                login(&mut c, "ann@example.com", "still guessing");
            }
        }
        let mut stranger = via_proxy(app, "10.0.2.1", None);
        assert_eq!(
            login(&mut stranger, "ann@example.com", RIGHT),
            429,
            "{engine:?}: an unknown address is held back while the account is under attack"
        );
        let mut ann_home = via_proxy(app, "10.0.0.5", None);
        assert_eq!(
            login(&mut ann_home, "ann@example.com", RIGHT),
            303,
            "{engine:?}: the owner logs in from an address she used before"
        );
    });
}

#[test]
fn password_spraying_from_one_address_is_limited_and_never_locks_an_owner_out() {
    on_each_engine(&[("BOOKSTORE_TRUSTED_PROXIES", "1")], |engine, app, _| {
        let nat = "10.0.9.9";
        for i in 0..5 {
            let mut c = via_proxy(app, &format!("10.1.0.{i}"), None);
            assert_eq!(
                c.register(&format!("User {i}"), &format!("user{i}@example.com"))
                    .status,
                303
            );
        }
        // A class behind one NAT: 25 students (more than the limit), each with one typo, then the
        // right password. A success gives its account's count back: nobody is refused.
        for i in 0..25 {
            let mut c = via_proxy(app, &format!("10.2.0.{i}"), None);
            c.register(&format!("Student {i}"), &format!("student{i}@example.com"));
            let mut at_school = via_proxy(app, nat, None);
            let email = format!("student{i}@example.com");
            assert_eq!(
                login(&mut at_school, &email, "correct horse batery"),
                401,
                "{engine:?}"
            );
            assert_eq!(
                login(&mut at_school, &email, RIGHT),
                303,
                "{engine:?}: student {i}"
            );
        }
        // Spraying: one password on 25 e-mails (5 real, 20 unknown) from that address. The first
        // 20 accounts reach the hash, the rest are refused before it.
        let statuses: Vec<u16> = (0..25)
            .map(|i| {
                let email = if i < 5 {
                    format!("user{i}@example.com")
                } else {
                    format!("nobody{i}@example.com")
                };
                login(&mut via_proxy(app, nat, None), &email, "Spring2026!")
            })
            .collect();
        assert_eq!(statuses[..20], [401; 20], "{engine:?}: {statuses:?}");
        assert_eq!(statuses[20..], [429; 5], "{engine:?}: {statuses:?}");
        // The owners: user 0 from home logs in; a student who logged in from the NAT before
        // still does from there; an account new to the NAT waits for the window to pass there.
        assert_eq!(
            login(
                &mut via_proxy(app, "10.1.0.0", None),
                "user0@example.com",
                RIGHT
            ),
            303
        );
        assert_eq!(
            login(
                &mut via_proxy(app, nat, None),
                "student3@example.com",
                RIGHT
            ),
            303
        );
        via_proxy(app, "10.1.1.1", None).register("Late", "late@example.com");
        assert_eq!(
            login(&mut via_proxy(app, nat, None), "late@example.com", RIGHT),
            429,
            "{engine:?}: an account new to the sprayed address waits there"
        );
        assert_eq!(
            login(
                &mut via_proxy(app, "10.1.1.1", None),
                "late@example.com",
                RIGHT
            ),
            303
        );

        // At once: 40 e-mails from another address, each counted before any hash: exactly 20
        // are let through (to the hash or to the hashing pool's 503), 20 refused.
        let template = via_proxy(app, "10.0.8.8", None);
        let statuses = at_once(40, move |i| {
            let mut c = template.clone();
            login(&mut c, &format!("spray{i}@example.com"), "Spring2026!")
        });
        let refused = statuses.iter().filter(|s| **s == 429).count();
        assert_eq!(refused, 20, "{engine:?}: {statuses:?}");
        assert!(
            statuses.iter().all(|s| [401, 429, 503].contains(s)),
            "{statuses:?}"
        );
    });
}

#[test]
fn a_login_flood_is_bounded_in_memory_and_the_catalog_keeps_answering() {
    let db = TestDb::new(&Engine::Sqlite);
    let uploads = TempDir::new("uploads");
    let app = App::start(
        &db.url,
        &uploads.0,
        &[
            ("BOOKSTORE_TRUSTED_PROXIES", "1"),
            ("BOOKSTORE_HASH_WORKERS", "2"),
        ],
    );
    let before = app.peak_rss_mib();
    // 200 logins at once, each from its own address for its own account: no limit stops them
    // before the hash, so only the bounded pool does.
    let template = app.client().clone();
    let mut seed = template.clone();
    let csrf = seed.csrf();
    let flood = std::thread::spawn(move || {
        at_once(200, move |i| {
            let mut c = template.clone();
            c.cookies.insert("bs_csrf".into(), csrf.clone());
            c.extra_headers = vec![(
                "X-Forwarded-For".into(),
                format!("10.9.{}.{}", i / 200, i % 200),
            )];
            let r = c.post(
                "/login",
                &[
                    ("email", &format!("user{i}@example.com")),
                    ("password", "wrong password"),
                ],
            );
            (r.status, r.header("retry-after").map(str::to_string))
        })
    });
    let mut catalog = Vec::new();
    while !flood.is_finished() {
        let start = std::time::Instant::now();
        catalog.push((app.client().get("/books").status, start.elapsed()));
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let results = flood.join().unwrap();
    let busy = results.iter().filter(|(s, _)| *s == 503).count();
    let checked = results.iter().filter(|(s, _)| *s == 401).count();
    assert_eq!(busy + checked, 200, "{results:?}");
    assert!(
        busy > 0 && checked > 0,
        "some hashed ({checked}), the rest refused ({busy})"
    );
    assert!(
        results
            .iter()
            .filter(|(s, _)| *s == 503)
            .all(|(_, retry)| retry.as_deref() == Some("1")),
        "503 says when to retry"
    );
    let peak = app.peak_rss_mib();
    println!(
        "login flood: {checked} hashed, {busy} refused with 503; peak RSS {before} -> {peak} MiB; catalog {} answers during it",
        catalog.len()
    );
    assert!(peak < 100, "peak RSS {peak} MiB under the flood");
    assert!(
        !catalog.is_empty() && catalog.iter().all(|(s, _)| *s == 200),
        "{catalog:?}"
    );
}

#[test]
fn admins_are_granted_explicitly_never_by_registering_first() {
    on_each_engine(
        &[("BOOKSTORE_ADMIN_EMAIL", "Ada@Example.com")],
        |engine, app, db| {
            // Two simultaneous first sign-ups: neither becomes an admin.
            let port = app.port;
            at_once(2, move |i| {
                Client::new(port).register(&format!("First {i}"), &format!("first{i}@example.com"))
            });
            assert_eq!(db.query_i64("SELECT COUNT(*) FROM users"), 2);
            assert_eq!(
                db.query_i64("SELECT COUNT(*) FROM users WHERE is_admin <> 0"),
                0
            );

            // The setup token is in the server's log, for the named account's owner only.
            let log = app.log_text();
            let token = log
                .split("setup_token=")
                .nth(1)
                .and_then(|rest| rest.split_whitespace().next())
                .unwrap_or_else(|| panic!("{engine:?}: no setup token in the log:\n{log}"))
                .to_string();
            let mut first = Client::new(port);
            assert_eq!(login(&mut first, "first0@example.com", RIGHT), 303);
            let stolen = first.post("/admin/claim", &[("token", &token)]);
            assert_eq!(stolen.status, 403, "another account cannot use the token");
            let mut ada = app.client();
            assert_eq!(ada.register("Ada", "ada@example.com").status, 303);
            assert_eq!(ada.get("/admin/users").status, 403);
            assert_eq!(ada.post("/admin/claim", &[("token", "guess")]).status, 403);
            assert_eq!(ada.post("/admin/claim", &[("token", &token)]).status, 303);
            assert_eq!(ada.get("/admin/users").status, 200);
            assert_eq!(
                ada.post("/admin/claim", &[("token", &token)]).status,
                403,
                "the token works once"
            );

            // The operator's command line: list and revoke.
            let (code, out, err) = app_command(&db.url, &["admin", "list"]);
            assert_eq!((code, out.trim()), (0, "ada@example.com"), "{err}");
            let (code, _, err) = app_command(&db.url, &["admin", "revoke", "ada@example.com"]);
            assert_eq!(code, 0, "{err}");
            assert_eq!(ada.get("/admin/users").status, 403);
        },
    );
}

#[test]
fn the_binary_has_a_real_command_line() {
    let (code, out, _) = app_command("sqlite::memory:", &["--help"]);
    assert_eq!(code, 0);
    for word in [
        "serve",
        "healthcheck",
        "admin",
        "--trusted-proxies",
        "BOOKSTORE_TRUSTED_PROXIES",
    ] {
        assert!(out.contains(word), "--help names {word}:\n{out}");
    }
    let (code, out, _) = app_command("sqlite::memory:", &["--version"]);
    assert_eq!(
        (code, out.trim()),
        (0, concat!("bookstore-app ", env!("CARGO_PKG_VERSION")))
    );
    let (code, _, err) = app_command("sqlite::memory:", &["frobnicate"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = app_command("sqlite::memory:", &["healthcheck", "--addr", "127.0.0.1:1"]);
    assert_eq!(code, 1, "nothing listens there: {err}");
    let (code, _, err) = app_command("postgres://x", &["serve"]);
    assert_eq!(code, 2);
    assert!(err.contains("must start with sqlite: or mysql://"), "{err}");
}

#[test]
fn stock_edits_race_buyers_without_losing_an_order_and_withdrawn_books_are_not_paid() {
    on_each_engine(&[], |engine, app, db| {
        let mut sam = app.client();
        sam.register("Sam", "sam@example.com");
        let book = publish(&mut sam, "Plenty", "A. Writer", "10", "50", None);
        let form = sam.get(&format!("/books/{book}/edit")).text();
        assert!(form.contains(r#"name="stock_was" value="50""#), "{form}");
        let buyers: Vec<Client> = (0..8)
            .map(|i| {
                let mut c = app.client();
                c.register(&format!("Buyer {i}"), &format!("buyer{i}@example.com"));
                c.csrf();
                c
            })
            .collect();
        // 40 purchases of one copy and the seller's "50 → 60" at the same moment.
        let seller = sam.clone();
        let racers = buyers.clone();
        let results = at_once(41, move |i| {
            if i == 40 {
                let mut s = seller.clone();
                return s
                    .post_multipart(
                        &format!("/books/{book}/edit"),
                        &[
                            ("title", "Plenty"),
                            ("author", "A. Writer"),
                            ("price", "10"),
                            ("stock", "60"),
                            ("stock_was", "50"),
                        ],
                        None,
                    )
                    .status;
            }
            let mut c = racers[i % 8].clone();
            c.post(&format!("/books/{book}/buy"), &[("quantity", "1")])
                .status
        });
        assert!(results.iter().all(|s| *s == 303), "{engine:?}: {results:?}");
        assert_eq!(
            db.query_i64(&format!("SELECT stock FROM books WHERE id = {book}")),
            20,
            "{engine:?}: 50 + 10 added - 40 bought"
        );
        assert_eq!(
            db.query_i64(&format!(
                "SELECT COUNT(*) FROM orders WHERE book_id = {book}"
            )),
            40
        );

        // The cap: buyer 0 holds 5 unpaid copies; 5 more is the limit, one beyond is refused.
        let mut b0 = app.client();
        assert_eq!(login(&mut b0, "buyer0@example.com", RIGHT), 303);
        assert_eq!(
            b0.post(&format!("/books/{book}/buy"), &[("quantity", "5")])
                .status,
            303
        );
        let over = b0.post(&format!("/books/{book}/buy"), &[("quantity", "1")]);
        assert_eq!(over.status, 409);
        assert!(
            over.text().contains("at most 10 unpaid copies"),
            "{}",
            over.text()
        );

        // An edit that the orders made impossible is refused, not clamped.
        let stale = sam.post_multipart(
            &format!("/books/{book}/edit"),
            &[
                ("title", "Plenty"),
                ("author", "A. Writer"),
                ("price", "10"),
                ("stock", "0"),
                ("stock_was", "60"),
            ],
            None,
        );
        assert_eq!(stale.status, 409, "{}", stale.text());

        // Withdrawing cancels unpaid orders; such an order cannot be paid afterwards.
        let order = id_from(
            buyers[1]
                .clone()
                .post(&format!("/books/{book}/buy"), &[("quantity", "1")])
                .location(),
        );
        assert_eq!(
            sam.post(&format!("/books/{book}/delete"), &[("confirm", "yes")])
                .status,
            303
        );
        let mut b1 = buyers[1].clone();
        let pay = b1.post(
            &format!("/orders/{order}/pay"),
            &with_address(&[("method", "card"), ("provider", "1")]),
        );
        assert_eq!(pay.status, 409, "{engine:?}: {}", pay.text());
        assert_eq!(
            db.query_i64(&format!(
                "SELECT COUNT(*) FROM orders WHERE book_id = {book} AND status = 'paid'"
            )),
            0
        );
        assert_eq!(app.client().get(&format!("/books/{book}")).status, 404);
    });
}

#[test]
fn orphan_covers_are_swept_and_a_replaced_cover_is_removed() {
    let db = TestDb::new(&Engine::Sqlite);
    let uploads = TempDir::new("uploads");
    let app = App::start(
        &db.url,
        &uploads.0,
        &[
            ("BOOKSTORE_SWEEP_SECS", "1"),
            ("BOOKSTORE_COVER_GRACE_SECS", "0"),
        ],
    );
    let mut sam = app.client();
    sam.register("Sam", "sam@example.com");
    let r = sam.post_multipart(
        "/sell",
        &[
            ("title", "Covered"),
            ("author", "X"),
            ("price", "3"),
            ("stock", "1"),
        ],
        Some(("a.png", common::PNG)),
    );
    let book = id_from(r.location());
    let files = || {
        std::fs::read_dir(&uploads.0)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(files().len(), 1);
    std::fs::write(uploads.0.join("left-behind.png"), common::PNG).unwrap();
    let edit = sam.post_multipart(
        &format!("/books/{book}/edit"),
        &[
            ("title", "Covered"),
            ("author", "X"),
            ("price", "3"),
            ("stock", "1"),
            ("stock_was", "1"),
        ],
        Some(("b.png", common::PNG)),
    );
    assert_eq!(edit.status, 303);
    let start = std::time::Instant::now();
    while files().len() != 1 {
        assert!(start.elapsed().as_secs() < 10, "left: {:?}", files());
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let page = app.client().get(&format!("/books/{book}")).text();
    assert!(
        page.contains(&format!("/covers/{}", files()[0])),
        "the current cover stays"
    );
}

#[test]
fn the_app_follows_a_rotated_database_password() {
    let (base, db) = TestDb::mysql();
    let (_, host) = db.credentials_and_host();
    let user = db.user("rot", "first-password");
    let admin = |sql: &str| common::execute(&base, sql);
    let dir = TempDir::new("secret");
    let secret = dir.0.join("db-secret.json");
    let write = |password: &str| {
        std::fs::write(
            &secret,
            format!(r#"{{"username": "{user}", "password": "{password}"}}"#),
        )
        .unwrap()
    };
    write("first-password");
    let app = App::start(
        &format!("mysql://{host}"),
        &dir.0,
        &[("BOOKSTORE_DB_SECRET_FILE", secret.to_str().unwrap())],
    );
    let mut c = app.client();
    assert_eq!(c.register("Rot", "rot@example.com").status, 303);
    // The rotation: the secret and the password change; every open connection is dropped, so the
    // next request needs a new one.
    write("second-password");
    admin(&format!(
        "ALTER USER '{user}'@'127.0.0.1' IDENTIFIED BY 'second-password'"
    ));
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let ids = common::query_i64s(
        &base,
        &format!(
            "SELECT CAST(id AS SIGNED) FROM information_schema.processlist WHERE user = '{user}'"
        ),
    );
    assert!(!ids.is_empty(), "the app holds connections as {user}");
    for id in ids {
        admin(&format!("KILL {id}"));
    }
    assert_eq!(
        c.get("/healthz").status,
        200,
        "a new connection with the new password"
    );
    assert!(c.get("/books").status == 200 && c.get("/orders").status == 200);
}
