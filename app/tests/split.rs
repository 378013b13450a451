//! The BookStore as three services (`--service accounts|catalog|orders`), each with its own
//! database, behind a router that sends each path to its service: the marketplace works across
//! them, identity crosses them only as accounts signed it, stock is never oversold, and no service
//! can read another's tables.

mod common;

use std::time::{Duration, Instant};

use bookstore_app::config::Service;
use common::split::Split;
use common::*;

const PNG: &[u8] = &[
    0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 0x0D, b'I', b'H', b'D', b'R',
];

fn dhl(split: &Split) -> String {
    query_i64s(
        &split.part(Service::Orders).url,
        "SELECT id FROM delivery_providers WHERE name = 'DHL'",
    )[0]
    .to_string()
}

#[test]
fn the_marketplace_works_across_three_services() {
    for engine in engines() {
        let split = Split::start(&engine, &[]);
        let mut sam = split.client();
        assert_eq!(sam.register("Sam Seller", "sam@example.com").status, 303);
        let book = publish(
            &mut sam,
            "Split Ends",
            "A. Author",
            "12.50",
            "3",
            Some(("c.png", PNG)),
        );
        let page = sam.get(&format!("/books/{book}")).text();
        assert!(
            page.contains("Split Ends") && page.contains("Sold by Sam Seller"),
            "{engine:?}: catalog names the seller through accounts: {page}"
        );
        // Catalog knew Sam from the identity token accounts signed at registration.
        assert!(sam.cookies.contains_key("bs_id"), "{engine:?}");

        let mut bob = split.client();
        bob.register("Bob Buyer", "bob@example.com");
        let r = bob.post(&format!("/books/{book}/buy"), &[("quantity", "2")]);
        assert_eq!(r.status, 303, "{engine:?}: {}", r.text());
        let order = id_from(r.location());
        let page = bob.get(&format!("/orders/{order}")).text();
        assert!(
            page.contains("Split Ends") && page.contains("Sam Seller") && page.contains("25.00"),
            "{engine:?}: the order shows its book's title and seller through the ports: {page}"
        );
        assert_eq!(
            query_i64s(
                &split.part(Service::Catalog).url,
                &format!("SELECT stock FROM books WHERE id = {book}")
            ),
            vec![1],
            "{engine:?}: two copies reserved in catalog's database"
        );
        // The book's page (catalog) knows Bob's unpaid order (orders).
        assert!(
            bob.get(&format!("/books/{book}"))
                .text()
                .contains(&format!("/orders/{order}")),
            "{engine:?}"
        );
        let paid = bob.post(
            &format!("/orders/{order}/pay"),
            &with_address(&[("method", "card"), ("provider", &dhl(&split))]),
        );
        assert_eq!(paid.status, 303, "{engine:?}: {}", paid.text());

        let sales = sam.get("/sales").text();
        assert!(
            sales.contains(&format!("/orders/{order}")) && sales.contains("Bob Buyer"),
            "{engine:?}: the seller's sales name the buyer: {sales}"
        );
        assert_eq!(
            sam.post(&format!("/orders/{order}/ship"), &[]).status,
            303,
            "{engine:?}"
        );
        assert!(bob.get("/orders").text().contains("shipped"), "{engine:?}");

        // A second order, cancelled: its copy goes back to catalog.
        let r = bob.post(&format!("/books/{book}/buy"), &[("quantity", "1")]);
        let second = id_from(r.location());
        let stock = || {
            query_i64s(
                &split.part(Service::Catalog).url,
                &format!("SELECT stock FROM books WHERE id = {book}"),
            )[0]
        };
        assert_eq!(stock(), 0, "{engine:?}");
        let r = bob.post(&format!("/orders/{second}/cancel"), &[("confirm", "yes")]);
        assert_eq!(r.status, 303, "{engine:?}: {}", r.text());
        assert_eq!(stock(), 1, "{engine:?}: the cancelled order's copy is back");

        // Withdrawing a book with orders (catalog asks orders): withdrawn, not deleted.
        let r = sam.post(&format!("/books/{book}/delete"), &[("confirm", "yes")]);
        assert_eq!(r.status, 303, "{engine:?}: {}", r.text());
        assert_eq!(
            query_i64s(
                &split.part(Service::Catalog).url,
                &format!("SELECT COUNT(*) FROM books WHERE id = {book} AND status = 'withdrawn'")
            ),
            vec![1],
            "{engine:?}"
        );
        // A book without orders is deleted.
        let lone = publish(&mut sam, "Lonely", "B. Author", "3.00", "1", None);
        sam.post(&format!("/books/{lone}/delete"), &[("confirm", "yes")]);
        assert_eq!(sam.get(&format!("/books/{lone}")).status, 404, "{engine:?}");

        // Logging out (accounts) ends the identity on catalog and orders too, within the poll.
        let kept_bs_id = bob.cookies.clone();
        bob.post("/logout", &[]);
        let mut replay = split.client();
        replay.cookies = kept_bs_id;
        let start = Instant::now();
        for (service, path) in [("orders", "/orders"), ("catalog", "/sell")] {
            loop {
                let r = replay.get(path);
                if r.status == 303 && r.location().starts_with("/login") {
                    break;
                }
                assert!(
                    start.elapsed() < Duration::from_secs(5),
                    "{engine:?}: {service} still honours the logged-out session's token"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        eprintln!(
            "{engine:?}: a logout reached orders and catalog within {:?}",
            start.elapsed()
        );
    }
}

#[test]
fn forty_buyers_of_five_copies_across_services_get_exactly_five() {
    for engine in engines() {
        let split = Split::start(&engine, &[]);
        let mut sam = split.client();
        sam.register("Sam Seller", "sam@example.com");
        let book = publish(&mut sam, "Scarce", "C. Author", "9.00", "5", None);
        let buyers: Vec<Client> = (0..40)
            .map(|i| {
                let mut c = split.client();
                assert_eq!(
                    c.register(&format!("Buyer {i}"), &format!("b{i}@example.com"))
                        .status,
                    303
                );
                c.csrf();
                c
            })
            .collect();
        let statuses: Vec<u16> = std::thread::scope(|s| {
            let handles: Vec<_> = buyers
                .into_iter()
                .map(|mut c| {
                    s.spawn(move || {
                        c.post(&format!("/books/{book}/buy"), &[("quantity", "1")])
                            .status
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let ok = statuses.iter().filter(|s| **s == 303).count();
        assert_eq!(ok, 5, "{engine:?}: {statuses:?}\n{}", split.logs());
        assert!(
            statuses.iter().all(|s| *s == 303 || *s == 409),
            "{engine:?}: the rest told 'not enough stock': {statuses:?}\n{}",
            split.logs()
        );
        let orders = &split.part(Service::Orders).url;
        assert_eq!(
            query_i64s(
                orders,
                "SELECT COUNT(*) FROM orders WHERE status = 'pending_payment'"
            ),
            vec![5],
            "{engine:?}"
        );
        assert_eq!(
            query_i64s(
                &split.part(Service::Catalog).url,
                &format!("SELECT stock FROM books WHERE id = {book}")
            ),
            vec![0],
            "{engine:?}"
        );
        assert_eq!(
            query_i64s(
                &split.part(Service::Catalog).url,
                "SELECT COUNT(*) FROM reservations WHERE given_back = 0"
            ),
            vec![5],
            "{engine:?}: one reservation per order"
        );
    }
}

#[test]
fn a_forged_or_foreign_identity_and_the_internal_api_without_its_key_are_refused() {
    let engine = engines().remove(0);
    let split = Split::start(&engine, &[]);
    let mut ann = split.client();
    ann.register("Ann", "ann@example.com");
    assert_eq!(ann.get("/orders").status, 200);
    let token = ann.cookies["bs_id"].clone();
    let (kid, rest) = token.split_once('.').unwrap();
    let (_, signature) = rest.split_once('.').unwrap();
    use base64::Engine as _;
    let forged_claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(br#"{"u":1,"n":"Mallory","a":true,"s":"x","e":99999999999}"#);
    // A forged token alone (no session cookie to refresh with): nobody.
    let mut mallory = split.client();
    mallory
        .cookies
        .insert("bs_id".into(), format!("{kid}.{forged_claims}.{signature}"));
    for path in ["/orders", "/sell", "/sales", "/my/books"] {
        let r = mallory.get(path);
        assert_eq!(r.status, 303, "{path}: a forged token is nobody");
        assert!(r.location().starts_with("/login"), "{path}");
    }
    // Ann's real token with another session's cookie: the token names another session.
    let mut other = split.client();
    other.cookies.insert("bs_id".into(), token.clone());
    other
        .cookies
        .insert("bs_session".into(), "not-a-session".into());
    assert_eq!(other.get("/orders").status, 303);

    // The internal API answers only with the key, and only on its own port.
    let catalog = split.part(Service::Catalog);
    let mut raw = Client::new(catalog.internal_port);
    assert_eq!(raw.get("/internal/healthz").status, 401);
    raw.extra_headers.push((
        "Authorization".into(),
        format!("Bearer {}", split.internal_key),
    ));
    assert_eq!(raw.get("/internal/healthz").status, 200);
    assert_eq!(
        Client::new(catalog.app.port)
            .get("/internal/healthz")
            .status,
        404,
        "not on the public port"
    );
}

#[test]
fn no_service_can_read_another_services_tables() {
    let Engine::Mysql(_) = engines().remove(1) else {
        panic!("the second engine is MariaDB")
    };
    let split = Split::start(&engines().remove(1), &[]);
    let name = |s: Service| split.part(s).db.name().to_string();
    for (service, other, table) in [
        (Service::Catalog, Service::Accounts, "users"),
        (Service::Orders, Service::Catalog, "books"),
        (Service::Accounts, Service::Orders, "orders"),
        (Service::Orders, Service::Accounts, "sessions"),
    ] {
        let url = &split.part(service).url;
        let query = format!("SELECT COUNT(*) FROM {}.{table}", name(other));
        match try_query_i64s(url, &query) {
            Ok(rows) => panic!("{} read {}.{table}: {rows:?}", service.name(), name(other)),
            Err(e) => assert!(e.contains("denied"), "{}: {e}", service.name()),
        }
    }
    // Each reads its own.
    assert_eq!(
        query_i64s(
            &split.part(Service::Catalog).url,
            "SELECT COUNT(*) FROM books"
        ),
        vec![0]
    );
}

/// Buyers buy and pay one copy at a time while catalog, then orders, is SIGKILLed and started
/// again. Afterwards (once the sweep has finished what the kills left), every copy is on sale or
/// in a live order, each live order has its reservation, and every payment a buyer was told of
/// is there.
#[test]
fn killing_catalog_or_orders_mid_purchase_loses_no_copy_and_no_paid_order() {
    for engine in engines() {
        let mut split = Split::start(&engine, &[("BOOKSTORE_SWEEP_SECS", "1")]);
        let mut sam = split.client();
        sam.register("Sam Seller", "sam@example.com");
        const COPIES: i64 = 400;
        let book = publish(
            &mut sam,
            "Sturdy",
            "D. Author",
            "4.00",
            &COPIES.to_string(),
            None,
        );
        let dhl = dhl(&split);
        let buyers: Vec<Client> = (0..8)
            .map(|i| {
                let mut c = split.client();
                c.register(&format!("Buyer {i}"), &format!("k{i}@example.com"));
                c.csrf();
                c
            })
            .collect();
        let stop = std::sync::atomic::AtomicBool::new(false);
        let confirmed: Vec<Vec<i64>> = std::thread::scope(|s| {
            let handles: Vec<_> = buyers
                .into_iter()
                .map(|mut c| {
                    let (stop, dhl) = (&stop, dhl.clone());
                    s.spawn(move || {
                        let mut paid = Vec::new();
                        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                            let once =
                                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                                    let r =
                                        c.post(&format!("/books/{book}/buy"), &[("quantity", "1")]);
                                    if r.status != 303 {
                                        return None;
                                    }
                                    let order = id_from(r.location());
                                    let r = c.post(
                                        &format!("/orders/{order}/pay"),
                                        &with_address(&[("method", "card"), ("provider", &dhl)]),
                                    );
                                    (r.status == 303).then_some(order)
                                }));
                            if let Ok(Some(order)) = once {
                                paid.push(order);
                            }
                            std::thread::sleep(Duration::from_millis(20));
                        }
                        paid
                    })
                })
                .collect();
            std::thread::sleep(Duration::from_millis(700));
            split.kill_and_restart(Service::Catalog);
            std::thread::sleep(Duration::from_millis(700));
            split.kill_and_restart(Service::Orders);
            std::thread::sleep(Duration::from_millis(700));
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let confirmed: Vec<i64> = confirmed.into_iter().flatten().collect();
        assert!(
            !confirmed.is_empty(),
            "{engine:?}: some purchases went through"
        );
        let orders = split.part(Service::Orders).url.clone();
        let catalog = split.part(Service::Catalog).url.clone();
        // The sweep gives back what the kills left half done (`reserving` after 15 s).
        let start = Instant::now();
        while query_i64s(
            &orders,
            "SELECT COUNT(*) FROM orders WHERE status IN ('reserving', 'cancelling')",
        )[0] > 0
        {
            assert!(
                start.elapsed() < Duration::from_secs(40),
                "{engine:?}: orders left half done\n{}",
                split.logs()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
        let live = query_i64s(
            &orders,
            "SELECT CAST(COALESCE(SUM(quantity), 0) AS SIGNED INTEGER) FROM orders WHERE status IN ('pending_payment', 'paid', 'shipped')",
        )[0];
        let stock = query_i64s(
            &catalog,
            &format!("SELECT stock FROM books WHERE id = {book}"),
        )[0];
        assert_eq!(
            stock + live,
            COPIES,
            "{engine:?}: {stock} on sale + {live} in live orders\n{}",
            split.logs()
        );
        let held = query_i64s(
            &catalog,
            "SELECT CAST(COALESCE(SUM(quantity), 0) AS SIGNED INTEGER) FROM reservations WHERE given_back = 0",
        )[0];
        assert_eq!(
            held, live,
            "{engine:?}: each live order holds its reservation, no other does"
        );
        let paid: Vec<i64> = query_i64s(
            &orders,
            "SELECT id FROM orders WHERE status = 'paid' ORDER BY id",
        );
        for order in &confirmed {
            assert!(
                paid.contains(order),
                "{engine:?}: paid order {order} is lost"
            );
        }
        eprintln!(
            "{engine:?}: {} payments confirmed, {live} copies in live orders, {stock} on sale",
            confirmed.len()
        );
    }
}

/// A service is ready only when what it calls answers: with orders down, catalog's /healthz says
/// so (a load balancer then sends nobody to it), and it is healthy again once orders is back.
#[test]
fn a_service_is_healthy_only_when_the_services_it_calls_answer() {
    let engine = engines().remove(0);
    let mut split = Split::start(&engine, &[]);
    let catalog = split.part(Service::Catalog).app.port;
    let health = |port: u16| {
        let r = Client::new(port).get("/healthz");
        (r.status, r.text())
    };
    assert_eq!(health(catalog), (200, "ok".to_string()));
    split.parts[2].app.kill();
    let (status, text) = health(catalog);
    assert_eq!(status, 503, "{text}");
    assert!(text.contains("orders"), "{text}");
    // Its own health (`?own`, a container's liveness) is its database only: still 200.
    let own = Client::new(catalog).get("/healthz?own");
    assert_eq!((own.status, own.text()), (200, "ok".to_string()));
    // Accounts calls nobody: still healthy.
    assert_eq!(health(split.part(Service::Accounts).app.port).0, 200);
    split.kill_and_restart(Service::Orders);
    assert_eq!(health(catalog).0, 200);
}

/// Rotating accounts' signing key: the new key first in the file, the old one after it. Tokens
/// signed before keep working on the other services; new ones carry the new key, which the others
/// fetch when they first see it.
#[test]
fn identity_keys_rotate_without_logging_anyone_out() {
    let engine = engines().remove(0);
    let mut split = Split::start(&engine, &[]);
    let mut ann = split.client();
    ann.register("Ann", "ann@example.com");
    assert_eq!(ann.get("/orders").status, 200);
    let old_token = ann.cookies["bs_id"].clone();
    let old_kid = old_token.split('.').next().unwrap().to_string();

    let file = split.keys.0.join("identity.key");
    let old = std::fs::read_to_string(&file).unwrap();
    let (code, new, _) = app_command("sqlite::memory:", &["identity-key"]);
    assert_eq!(code, 0);
    std::fs::write(&file, format!("{new}{old}")).unwrap();
    split.kill_and_restart(Service::Accounts);

    // The old token is still good on orders and catalog.
    assert_eq!(ann.get("/orders").status, 200);
    assert_eq!(ann.cookies["bs_id"], old_token, "no new token was needed");
    assert_eq!(ann.get("/sell").status, 200);
    // A new log-in gets a token of the new key, which orders accepts without asking again.
    let mut ann2 = split.client();
    let r = ann2.post(
        "/login",
        &[
            ("email", "ann@example.com"),
            ("password", "correct horse battery"),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.text());
    let new_token = ann2.cookies["bs_id"].clone();
    assert_ne!(
        new_token.split('.').next().unwrap(),
        old_kid,
        "signed with the new key"
    );
    assert_eq!(ann2.get("/orders").status, 200);
    assert_eq!(ann2.cookies["bs_id"], new_token, "verified, not replaced");
}

/// A service of the split started without what it needs says which flag (and variable) to give.
#[test]
fn a_split_service_started_without_its_peers_says_what_to_give() {
    let (code, _, err) = app_command("sqlite::memory:", &["--service", "catalog"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--internal-addr (BOOKSTORE_INTERNAL_ADDR)"),
        "{err}"
    );
    let (code, _, err) = app_command(
        "sqlite::memory:",
        &["--service", "orders", "--internal-addr", "127.0.0.1:9999"],
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--accounts-url (BOOKSTORE_ACCOUNTS_URL)"),
        "{err}"
    );
    let (code, _, err) = app_command(
        "sqlite::memory:",
        &[
            "--service",
            "orders",
            "--internal-addr",
            "127.0.0.1:9999",
            "--accounts-url",
            "10.0.0.1:9000",
        ],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("must be http://HOST:PORT"), "{err}");
}

/// A reservation that reaches catalog after orders gave up on it (and gave its copies back) is
/// refused, not kept: giving back leaves a tombstone for the order. Asked twice, a reservation
/// takes copies once; given back twice, returns them once.
#[test]
fn reservations_are_once_per_order_even_out_of_order() {
    let engine = engines().remove(0);
    let split = Split::start(&engine, &[]);
    let mut sam = split.client();
    sam.register("Sam Seller", "sam@example.com");
    let book = publish(&mut sam, "Tomb", "E. Author", "5.00", "3", None);
    let catalog = split.part(Service::Catalog);
    let mut api = Client::new(catalog.internal_port);
    api.extra_headers.push((
        "Authorization".into(),
        format!("Bearer {}", split.internal_key),
    ));
    let stock = || {
        query_i64s(
            &catalog.url,
            &format!("SELECT stock FROM books WHERE id = {book}"),
        )[0]
    };
    let reserve = |api: &mut Client, order: i64| {
        api.request(
            "POST",
            "/internal/reservations",
            Some("application/json"),
            format!(r#"{{"order":{order},"book":{book},"quantity":1,"buyer":999}}"#).as_bytes(),
        )
        .status
    };
    // Twice the same order: one copy.
    assert_eq!(reserve(&mut api, 501), 200);
    assert_eq!(reserve(&mut api, 501), 200);
    assert_eq!(stock(), 2);
    // Given back twice: one copy back.
    assert_eq!(
        api.request("DELETE", "/internal/reservations/501", None, b"")
            .status,
        200
    );
    assert_eq!(
        api.request("DELETE", "/internal/reservations/501", None, b"")
            .status,
        200
    );
    assert_eq!(stock(), 3);
    // Given back before it arrived: the late reservation is refused and takes nothing.
    assert_eq!(
        api.request("DELETE", "/internal/reservations/502", None, b"")
            .status,
        200
    );
    assert_eq!(reserve(&mut api, 502), 409);
    assert_eq!(stock(), 3);
}
