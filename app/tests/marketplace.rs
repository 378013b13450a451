//! The BookStore end to end through HTTP, each scenario on SQLite and on MariaDB.

mod common;

use common::{
    App, Client, PNG, TempDir, TestDb, engines, execute, id_from, on_each_engine, publish,
    with_address,
};

#[test]
fn accounts_register_login_logout_and_rate_limit() {
    on_each_engine(&[], |engine, app, _| {
        let mut ann = app.client();
        let r = ann.register("Ann", "ann@example.com");
        assert_eq!(r.status, 303, "{engine:?}: {}", r.text());
        assert!(ann.cookies.contains_key("bs_session"));
        let session = r
            .headers
            .iter()
            .find(|(k, v)| k.eq_ignore_ascii_case("set-cookie") && v.starts_with("bs_session"))
            .unwrap()
            .1
            .clone();
        assert!(
            session.contains("HttpOnly")
                && session.contains("SameSite=Lax")
                && !session.contains("Secure"),
            "{session}"
        );
        assert!(
            ann.get("/books").text().contains("Ann"),
            "logged in after registering"
        );

        let mut other = app.client();
        let dup = other.post(
            "/register",
            &[
                ("name", "Ann 2"),
                ("email", "ANN@example.com"),
                ("password", "another long password"),
            ],
        );
        assert_eq!(dup.status, 400);
        assert!(dup.text().contains("already exists"), "{}", dup.text());
        let short = other.post(
            "/register",
            &[
                ("name", "Bo"),
                ("email", "bo@example.com"),
                ("password", "short"),
            ],
        );
        assert_eq!(short.status, 400);
        assert!(short.text().contains("at least 10 characters"));
        let bad = other.post(
            "/register",
            &[
                ("name", "Bo"),
                ("email", "not-an-email"),
                ("password", "long enough password"),
            ],
        );
        assert_eq!(bad.status, 400);

        let wrong = other.post(
            "/login",
            &[
                ("email", "ann@example.com"),
                ("password", "wrong password!"),
            ],
        );
        assert_eq!(wrong.status, 401);
        let ok = other.post(
            "/login",
            &[
                ("email", "ann@example.com"),
                ("password", "correct horse battery"),
            ],
        );
        assert_eq!(ok.status, 303);
        assert!(other.get("/books").text().contains("Log out"));
        let out = other.post("/logout", &[]);
        assert_eq!(out.status, 303);
        assert!(!other.cookies.contains_key("bs_session"));
        assert_eq!(
            other.get("/orders").status,
            303,
            "logged out: sent to the login page"
        );

        // Per-account limit: 5 failures, then refused even with the right password.
        let mut attacker = app.client();
        for _ in 0..5 {
            assert_eq!(
                attacker
                    .post(
                        "/login",
                        &[
                            ("email", "ann@example.com"),
                            ("password", "guess guess guess")
                        ]
                    )
                    .status,
                401
            );
        }
        let locked = attacker.post(
            "/login",
            &[
                ("email", "ann@example.com"),
                ("password", "correct horse battery"),
            ],
        );
        assert_eq!(locked.status, 429, "{}", locked.text());
        assert!(locked.text().contains("try again in"));
    });
}

#[test]
fn catalog_pagination_search_and_covers() {
    on_each_engine(&[], |engine, app, _| {
        let mut seller = app.client();
        seller.register("Sam Seller", "sam@example.com");
        for i in 0..52 {
            publish(
                &mut seller,
                &format!("Filler volume {i:02}"),
                "Anon",
                "5",
                "1",
                None,
            );
        }
        let dune = publish(
            &mut seller,
            "Dune",
            "Frank Herbert",
            "12.50",
            "3",
            Some(("dune.png", PNG)),
        );
        publish(&mut seller, "Sold Out Story", "Nobody", "4", "0", None);

        let mut visitor = app.client();
        let first = visitor.get("/books").text();
        assert_eq!(
            first.matches("class=\"card\"").count(),
            50,
            "{engine:?}: 50 per page"
        );
        assert!(
            first.find("Sold Out Story").unwrap() < first.find("Dune").unwrap(),
            "newest first"
        );
        assert!(first.contains("rel=\"next\""));
        let second = visitor.get("/books?page=2").text();
        assert_eq!(second.matches("class=\"card\"").count(), 4);
        assert!(!second.contains("rel=\"next\""));
        // The Older link carries a cursor (keyset pagination) and lands on the same page; its
        // Newer link leads back to the first page's books.
        let link = |page: &str, rel: &str| link(page, rel).unwrap();
        let older = link(&first, "next");
        assert!(older.contains("before="), "{older}");
        let by_cursor = visitor.get(&older).text();
        assert_eq!(by_cursor.matches("class=\"card\"").count(), 4);
        assert!(by_cursor.contains("Page 2"));
        let back = visitor.get(&link(&by_cursor, "prev")).text();
        assert_eq!(back.matches("class=\"card\"").count(), 50);
        assert!(back.contains("Sold Out Story") && back.contains("Page 1"));
        assert_eq!(
            visitor.get("/books?page=201").status,
            400,
            "deep pages by cursor only"
        );
        assert_eq!(visitor.get("/books?page=abc").status, 400);
        assert_eq!(visitor.get("/books?page=-1").status, 400);

        let search = visitor.get("/books?q=herbert").text();
        assert_eq!(
            search.matches("class=\"card\"").count(),
            1,
            "search by author"
        );
        assert!(
            visitor
                .get("/books?q=DUNE")
                .text()
                .contains("Frank Herbert"),
            "search by title, any case"
        );
        assert!(
            visitor
                .get("/books?q=%25")
                .text()
                .contains("No books found"),
            "% is a literal, not a wildcard"
        );
        let in_stock = visitor.get("/books?q=story&in_stock=1").text();
        assert!(
            in_stock.contains("No books found"),
            "the sold-out book is filtered"
        );

        let detail = visitor.get(&format!("/books/{dune}")).text();
        assert!(
            detail.contains("$12.50")
                && detail.contains("Sam Seller")
                && detail.contains("3 in stock")
                && detail.contains("A fine copy.")
        );
        let cover = detail
            .split("/covers/")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .to_string();
        let image = visitor.get(&format!("/covers/{cover}"));
        assert_eq!(image.status, 200);
        assert_eq!(image.body, PNG);
        assert!(image.header("cache-control").unwrap().contains("immutable"));
        assert_eq!(visitor.get("/books/999999").status, 404);
        assert_eq!(visitor.get("/books/not-a-number").status, 404);
        let css = visitor.get("/static/style.css");
        assert_eq!(css.status, 200);
        assert!(css.header("cache-control").unwrap().contains("max-age"));
        assert_eq!(css.header("content-type"), Some("text/css; charset=utf-8"));
        // Served from the binary itself (an image with the binary alone serves them too).
        let js = visitor.get("/static/app.js");
        assert_eq!(
            js.header("content-type"),
            Some("text/javascript; charset=utf-8")
        );
        assert_eq!(js.text(), include_str!("../static/app.js"));
    });
}

#[test]
fn selling_validates_input_and_only_the_seller_changes_a_listing() {
    on_each_engine(&[], |_, app, db| {
        let mut sam = app.client();
        sam.register("Sam", "sam@example.com");
        let mut eve = app.client();
        eve.register("Eve", "eve@example.com");

        let not_image = sam.post_multipart(
            "/sell",
            &[
                ("title", "T"),
                ("author", "A"),
                ("price", "3"),
                ("stock", "1"),
            ],
            Some(("evil.png", b"<?php system($_GET['c']); ?>")),
        );
        assert_eq!(not_image.status, 400, "{}", not_image.text());
        assert!(not_image.text().contains("JPEG, PNG or WebP"));
        let big = vec![0xFFu8; 3 * 1024 * 1024];
        let too_big = sam.post_multipart(
            "/sell",
            &[
                ("title", "T"),
                ("author", "A"),
                ("price", "3"),
                ("stock", "1"),
            ],
            Some(("big.jpg", &big)),
        );
        // Too large or not an image: the form comes back filled in, the reason beside the cover.
        assert_eq!(too_big.status, 400);
        assert!(
            too_big.text().contains("a cover may be at most 2048 KB")
                && too_big.text().contains(r#"name="title" value="T""#),
            "{}",
            too_big.text()
        );
        for (price, stock) in [
            ("-5", "1"),
            ("abc", "1"),
            ("0", "1"),
            ("3", "-2"),
            ("3", "many"),
        ] {
            let r = sam.post_multipart(
                "/sell",
                &[
                    ("title", "T"),
                    ("author", "A"),
                    ("price", price),
                    ("stock", stock),
                ],
                None,
            );
            assert_eq!(r.status, 400, "price {price} stock {stock}");
        }
        assert_eq!(
            db.query_i64("SELECT COUNT(*) FROM books"),
            0,
            "nothing was stored"
        );

        let book = publish(&mut sam, "Emma", "Jane Austen", "7", "2", None);
        assert_eq!(eve.get(&format!("/books/{book}/edit")).status, 403);
        let hijack = eve.post_multipart(
            &format!("/books/{book}/edit"),
            &[
                ("title", "Mine now"),
                ("author", "Eve"),
                ("price", "1"),
                ("stock", "9"),
            ],
            None,
        );
        assert_eq!(hijack.status, 403);
        assert_eq!(eve.post(&format!("/books/{book}/delete"), &[]).status, 403);
        let edit = sam.post_multipart(
            &format!("/books/{book}/edit"),
            &[
                ("title", "Emma (annotated)"),
                ("author", "Jane Austen"),
                ("price", "8.25"),
                ("stock", "2"),
                ("stock_was", "2"),
            ],
            None,
        );
        assert_eq!(edit.status, 303);
        assert!(
            sam.get(&format!("/books/{book}"))
                .text()
                .contains("Emma (annotated)")
        );
        assert_eq!(
            db.query_i64(&format!("SELECT price_cents FROM books WHERE id = {book}")),
            825
        );

        // A listing without orders is deleted; one with orders is withdrawn and history stays.
        let spare = publish(&mut sam, "Spare", "X", "1", "1", None);
        assert_eq!(
            sam.post(&format!("/books/{spare}/delete"), &[("confirm", "yes")])
                .status,
            303
        );
        assert_eq!(sam.get(&format!("/books/{spare}")).status, 404);
        let order = eve.post(&format!("/books/{book}/buy"), &[("quantity", "1")]);
        assert_eq!(order.status, 303);
        assert_eq!(
            sam.post(&format!("/books/{book}/delete"), &[("confirm", "yes")])
                .status,
            303
        );
        assert_eq!(
            eve.get(&format!("/books/{book}")).status,
            404,
            "withdrawn: hidden"
        );
        assert!(!eve.get("/books").text().contains("Emma"));
        assert!(
            eve.get("/orders").text().contains("Emma (annotated)"),
            "the buyer's history keeps the book"
        );
        assert!(sam.get("/my/books").text().contains("withdrawn"));
    });
}

#[test]
fn buying_paying_and_authorization_on_every_order() {
    on_each_engine(&[], |_, app, db| {
        let mut admin = app.client();
        admin.register("Ada Admin", "ada@example.com");
        let mut sam = app.client();
        sam.register("Sam", "sam@example.com");
        let mut bob = app.client();
        bob.register("Bob", "bob@example.com");
        let mut eve = app.client();
        eve.register("Eve", "eve@example.com");
        let book = publish(&mut sam, "Ulysses", "James Joyce", "40", "5", None);

        // The client cannot set the price: a price field is ignored; bad quantities are refused.
        for q in ["-3", "0", "abc", "1000"] {
            assert_eq!(
                bob.post(
                    &format!("/books/{book}/buy"),
                    &[("quantity", q), ("price", "0.01")]
                )
                .status,
                400,
                "quantity {q}"
            );
        }
        assert_eq!(
            db.query_i64(&format!("SELECT stock FROM books WHERE id = {book}")),
            5
        );
        assert_eq!(
            sam.post(&format!("/books/{book}/buy"), &[("quantity", "1")])
                .status,
            400,
            "no buying your own book"
        );
        let r = bob.post(
            &format!("/books/{book}/buy"),
            &[("quantity", "2"), ("price", "0.01"), ("total_cents", "1")],
        );
        assert_eq!(r.status, 303);
        let order = id_from(r.location());
        assert_eq!(
            db.query_i64(&format!(
                "SELECT total_cents FROM orders WHERE id = {order}"
            )),
            8000
        );
        assert_eq!(
            db.query_i64(&format!("SELECT stock FROM books WHERE id = {book}")),
            3,
            "reserved at once"
        );
        let page = bob.get(&format!("/orders/{order}")).text();
        assert!(
            page.contains("$80.00")
                && page.contains("pending payment")
                && page.contains("Servientrega"),
            "{page}"
        );

        // Nobody else sees, pays, cancels or ships it.
        assert_eq!(eve.get(&format!("/orders/{order}")).status, 404);
        assert_eq!(
            eve.post(
                &format!("/orders/{order}/pay"),
                &with_address(&[("method", "card"), ("provider", "1")])
            )
            .status,
            404
        );
        assert_eq!(
            eve.post(&format!("/orders/{order}/cancel"), &[]).status,
            404
        );
        assert_eq!(eve.post(&format!("/orders/{order}/ship"), &[]).status, 404);
        assert_eq!(
            sam.post(&format!("/orders/{order}/ship"), &[]).status,
            409,
            "the seller ships only a paid order"
        );
        assert_eq!(
            app.client().get(&format!("/orders/{order}")).status,
            303,
            "anonymous: to the login page"
        );

        // Payment is exactly the total plus the chosen delivery; a tampered amount is refused.
        let dhl = db.query_i64("SELECT id FROM delivery_providers WHERE name = 'DHL'");
        let tampered = bob.post(
            &format!("/orders/{order}/pay"),
            &with_address(&[
                ("method", "card"),
                ("provider", &dhl.to_string()),
                ("amount_cents", "100"),
            ]),
        );
        assert_eq!(tampered.status, 400);
        assert_eq!(
            bob.post(
                &format!("/orders/{order}/pay"),
                &with_address(&[("method", "cash"), ("provider", &dhl.to_string())])
            )
            .status,
            400
        );
        assert_eq!(
            bob.post(
                &format!("/orders/{order}/pay"),
                &with_address(&[("method", "card"), ("provider", "999")])
            )
            .status,
            400
        );
        let paid = bob.post(
            &format!("/orders/{order}/pay"),
            &with_address(&[
                ("method", "paypal"),
                ("provider", &dhl.to_string()),
                ("amount_cents", "13000"),
            ]),
        );
        assert_eq!(paid.status, 303, "{}", paid.text());
        assert_eq!(
            db.query_i64(&format!("SELECT paid_cents FROM orders WHERE id = {order}")),
            8000 + 5000
        );
        assert_eq!(
            bob.post(
                &format!("/orders/{order}/pay"),
                &with_address(&[("method", "card"), ("provider", &dhl.to_string())])
            )
            .status,
            409,
            "paid once"
        );
        assert_eq!(
            bob.post(&format!("/orders/{order}/cancel"), &[]).status,
            409,
            "a paid order is not cancelled"
        );
        assert_eq!(
            bob.post(&format!("/orders/{order}/ship"), &[]).status,
            404,
            "the buyer does not mark their own order shipped"
        );
        assert!(sam.get("/sales").text().contains("Mark as shipped"));
        assert_eq!(sam.post(&format!("/orders/{order}/ship"), &[]).status, 303);
        assert!(bob.get("/orders").text().contains("shipped"));
        assert!(!sam.get("/sales").text().contains("Mark as shipped"));

        // Cancelling gives the copies back.
        let second = id_from(
            bob.post(&format!("/books/{book}/buy"), &[("quantity", "3")])
                .location(),
        );
        assert_eq!(
            db.query_i64(&format!("SELECT stock FROM books WHERE id = {book}")),
            0
        );
        assert_eq!(
            bob.post(&format!("/orders/{second}/cancel"), &[("confirm", "yes")])
                .status,
            303
        );
        assert_eq!(
            db.query_i64(&format!("SELECT stock FROM books WHERE id = {book}")),
            3
        );
        assert!(bob.get("/orders").text().contains("cancelled"));
        let sales = sam.get("/sales").text();
        assert!(
            sales.contains("Ulysses") && sales.contains("Bob") && sales.contains("shipped"),
            "{sales}"
        );

        // The users list: admins only. Registering first makes nobody an admin; the operator does.
        assert_eq!(admin.get("/admin/users").status, 403);
        let (code, out, err) = common::app_command(&db.url, &["admin", "grant", "ADA@example.com"]);
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("ada@example.com is an administrator"), "{out}");
        let (code, _, err) =
            common::app_command(&db.url, &["admin", "grant", "nobody@example.com"]);
        assert_eq!(code, 1);
        assert!(err.contains("must register first"), "{err}");
        assert_eq!(admin.get("/admin/users").status, 200);
        assert!(admin.get("/admin/users").text().contains("eve@example.com"));
        assert_eq!(eve.get("/admin/users").status, 403);
        assert_eq!(app.client().get("/admin/users").status, 303);
    });
}

#[test]
fn csrf_is_required_on_every_state_changing_form() {
    on_each_engine(&[], |_, app, db| {
        let mut sam = app.client();
        sam.register("Sam", "sam@example.com");
        let book = publish(&mut sam, "Walden", "Thoreau", "3", "2", None);
        let mut bob = app.client();
        bob.register("Bob", "bob@example.com");
        let buy = format!("/books/{book}/buy");
        assert_eq!(
            bob.request(
                "POST",
                &buy,
                Some("application/x-www-form-urlencoded"),
                b"quantity=1"
            )
            .status,
            403,
            "no token"
        );
        assert_eq!(
            bob.post(
                &buy,
                &[
                    ("quantity", "1"),
                    ("csrf", "forged-token-forged-token-forged-token-123")
                ]
            )
            .status,
            403,
            "wrong token"
        );
        let mut cross = bob.clone();
        cross
            .extra_headers
            .push(("Origin".into(), "http://evil.example".into()));
        assert_eq!(
            cross.post(&buy, &[("quantity", "1")]).status,
            403,
            "another site's page"
        );
        let mut fresh = app.client();
        assert_eq!(
            fresh
                .request(
                    "POST",
                    "/register",
                    Some("application/x-www-form-urlencoded"),
                    b"name=X&email=x%40example.com&password=aaaaaaaaaaaa"
                )
                .status,
            403
        );
        assert_eq!(
            bob.request(
                "POST",
                "/logout",
                Some("application/x-www-form-urlencoded"),
                b""
            )
            .status,
            403
        );
        let edit = sam.post_multipart(
            &format!("/books/{book}/edit"),
            &[
                ("csrf", "nope"),
                ("title", "X"),
                ("author", "Y"),
                ("price", "1"),
                ("stock", "1"),
            ],
            None,
        );
        assert_eq!(edit.status, 403);
        assert_eq!(db.query_i64("SELECT COUNT(*) FROM orders"), 0);
        assert_eq!(
            db.query_i64(&format!("SELECT stock FROM books WHERE id = {book}")),
            2
        );
        assert_eq!(
            bob.post(&buy, &[("quantity", "1")]).status,
            303,
            "with the token it works"
        );
    });
}

#[test]
fn forty_concurrent_buyers_of_five_copies_buy_exactly_five() {
    on_each_engine(&[], |engine, app, db| {
        let mut sam = app.client();
        sam.register("Sam", "sam@example.com");
        let book = publish(&mut sam, "Scarce", "Rare Author", "10", "5", None);
        let buyers: Vec<Client> = (0..8)
            .map(|i| {
                let mut c = app.client();
                c.register(&format!("Buyer {i}"), &format!("buyer{i}@example.com"));
                c.csrf();
                c
            })
            .collect();
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(40));
        let handles: Vec<_> = (0..40)
            .map(|i| {
                let mut c = buyers[i % 8].clone();
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    barrier.wait();
                    let r = c.post(&format!("/books/{book}/buy"), &[("quantity", "1")]);
                    (r.status, r.text())
                })
            })
            .collect();
        let results: Vec<(u16, String)> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let sold = results.iter().filter(|(s, _)| *s == 303).count();
        let refused: Vec<_> = results.iter().filter(|(s, _)| *s != 303).collect();
        assert_eq!(sold, 5, "{engine:?}: exactly five sold");
        assert!(
            refused
                .iter()
                .all(|(s, t)| *s == 409 && t.contains("not enough stock")),
            "{engine:?}: {:?}",
            refused.iter().map(|(s, _)| s).collect::<Vec<_>>()
        );
        assert_eq!(
            db.query_i64(&format!("SELECT stock FROM books WHERE id = {book}")),
            0
        );
        assert_eq!(db.query_i64(&format!("SELECT CAST(COALESCE(SUM(quantity), 0) AS SIGNED INTEGER) FROM orders WHERE book_id = {book}")), 5);
    });
}

#[test]
fn an_unpaid_order_releases_its_stock_after_the_timeout() {
    on_each_engine(
        &[
            ("BOOKSTORE_ORDER_TIMEOUT_SECS", "1"),
            ("BOOKSTORE_SWEEP_SECS", "4"),
        ],
        |_, app, db| {
            let mut sam = app.client();
            sam.register("Sam", "sam@example.com");
            let book = publish(&mut sam, "Fleeting", "Author", "2", "4", None);
            let mut bob = app.client();
            bob.register("Bob", "bob@example.com");
            let order = id_from(
                bob.post(&format!("/books/{book}/buy"), &[("quantity", "3")])
                    .location(),
            );
            assert_eq!(
                db.query_i64(&format!("SELECT stock FROM books WHERE id = {book}")),
                1
            );
            std::thread::sleep(std::time::Duration::from_millis(1100));
            // Past the deadline the page says so at once; it does not write (the sweeper does).
            assert!(
                bob.get(&format!("/orders/{order}"))
                    .text()
                    .contains("expired")
            );
            assert_eq!(
                db.query_i64("SELECT COUNT(*) FROM orders WHERE status = 'pending_payment'"),
                1,
                "a page view wrote nothing"
            );
            let start = std::time::Instant::now();
            while db.query_i64(&format!("SELECT stock FROM books WHERE id = {book}")) != 4 {
                assert!(
                    start.elapsed().as_secs() < 9,
                    "the sweeper gives the copies back within a few sweeps"
                );
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            assert!(
                bob.get(&format!("/orders/{order}"))
                    .text()
                    .contains("cancelled")
            );
            assert_eq!(
                bob.post(
                    &format!("/orders/{order}/pay"),
                    &with_address(&[("method", "card"), ("provider", "1")])
                )
                .status,
                409
            );
        },
    );
}

#[test]
fn two_replicas_share_sessions_and_covers() {
    for engine in engines() {
        let db = TestDb::new(&engine);
        let uploads = TempDir::new("shared");
        // Both start at once against an empty database: the migration lock keeps them apart.
        let (a, b) = std::thread::scope(|s| {
            let a = s.spawn(|| App::start(&db.url, &uploads.0, &[]));
            let b = s.spawn(|| App::start(&db.url, &uploads.0, &[]));
            (a.join().unwrap(), b.join().unwrap())
        });
        let mut on_a = a.client();
        on_a.register("Rita", "rita@example.com");
        let book = publish(
            &mut on_a,
            "Replicated",
            "Twin",
            "9",
            "1",
            Some(("c.png", PNG)),
        );
        let mut on_b = on_a.on(b.port);
        let page = on_b.get(&format!("/books/{book}")).text();
        assert!(
            page.contains("Log out") && page.contains("Rita"),
            "{engine:?}: the session from A is valid on B"
        );
        let cover = page
            .split("/covers/")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .to_string();
        assert_eq!(
            on_b.get(&format!("/covers/{cover}")).body,
            PNG,
            "B serves the cover uploaded through A"
        );
        assert_eq!(db.query_i64("SELECT COUNT(*) FROM schema_migrations"), 4);
    }
}

#[test]
fn health_headers_errors_and_graceful_shutdown() {
    on_each_engine(&[], |_, app, _| {
        let mut c = app.client();
        let health = c.get("/healthz");
        assert_eq!((health.status, health.text().as_str()), (200, "ok"));
        let home = c.get("/");
        assert!(home.header("x-request-id").is_some());
        assert_eq!(home.header("x-content-type-options"), Some("nosniff"));
        assert!(
            home.header("content-security-policy")
                .unwrap()
                .contains("frame-ancestors 'none'")
        );
        let mut via_lb = c.clone();
        via_lb.cookies.clear();
        via_lb
            .extra_headers
            .push(("X-Forwarded-Proto".into(), "https".into()));
        assert!(
            via_lb.get("/").header("set-cookie").is_none(),
            "a page without a form sets no cookie"
        );
        let secure = via_lb.get("/login");
        assert!(
            secure.header("set-cookie").unwrap().contains("Secure"),
            "Secure cookies behind an HTTPS load balancer"
        );
        assert!(secure.header("strict-transport-security").is_some());
        let missing = c.get("/no/such/page");
        assert_eq!(missing.status, 404);
        assert!(
            missing.text().contains("Not found") && missing.text().contains("Back to the catalog")
        );
    });
    let db = TestDb::new(&common::Engine::Sqlite);
    let uploads = TempDir::new("stop");
    let app = App::start(&db.url, &uploads.0, &[]);
    std::process::Command::new("kill")
        .args(["-TERM", &app.pid().to_string()])
        .status()
        .unwrap();
    assert!(app.wait().success(), "SIGTERM ends the server cleanly");
}

#[test]
fn the_mysql_password_can_come_from_a_secrets_manager_json_secret() {
    let (_, db) = TestDb::mysql();
    // The URL without credentials, as the stack renders it; the secret as RDS stores it.
    let (creds, host) = db.credentials_and_host();
    let (user, password) = creds.split_once(':').unwrap();
    let dir = TempDir::new("secret");
    let secret = dir.0.join("db-secret.json");
    std::fs::write(
        &secret,
        format!(r#"{{"username": "{user}", "password": "{password}"}}"#),
    )
    .unwrap();
    let app = App::start(
        &format!("mysql://{host}"),
        &dir.0,
        &[("BOOKSTORE_DB_SECRET_FILE", secret.to_str().unwrap())],
    );
    let mut c = app.client();
    assert_eq!(c.register("Sec", "sec@example.com").status, 303);
    assert_eq!(db.query_i64("SELECT COUNT(*) FROM users"), 1);
}

/// Inserts books by SQL, 200 rows a statement: each row `(seller_id, title, author, description,
/// price_cents, stock, cover, status, created_at)`.
fn insert_books(db: &TestDb, rows: &[String]) {
    for chunk in rows.chunks(200) {
        db.execute(&format!(
            "INSERT INTO books (seller_id, title, author, description, price_cents, stock, cover, status, created_at) VALUES {}",
            chunk.join(", ")
        ));
    }
}

/// The ids of a catalog page's cards, in the order shown.
fn card_ids(page: &str) -> Vec<i64> {
    let grid = &page[page.find("<ul class=\"grid\">").unwrap()..];
    grid[..grid.find("</ul>").unwrap()]
        .split("href=\"/books/")
        .skip(1)
        .map(|rest| rest[..rest.find('"').unwrap()].parse().unwrap())
        .collect()
}

/// The target of a page's `rel` link ("next": Older, "prev": Newer), unescaped.
fn link(page: &str, rel: &str) -> Option<String> {
    let marker = format!("rel=\"{rel}\" href=\"");
    let rest = &page[page.find(&marker)? + marker.len()..];
    Some(
        rest[..rest.find('"').unwrap()]
            .replace("&#38;", "&")
            .replace("&amp;", "&"),
    )
}

/// Every page of a listing, by its Older links: the ids shown, in order.
fn all_pages(c: &mut Client, first: &str) -> Vec<i64> {
    let mut ids = Vec::new();
    let mut path = first.to_string();
    loop {
        let page = c.get(&path).text();
        ids.extend(card_ids(&page));
        let Some(next) = link(&page, "next") else {
            return ids;
        };
        path = next;
    }
}

#[test]
fn a_search_finds_every_match_newest_first_however_old() {
    // More books than a search checks in the listing's own scan (SQLite: the newest 500 ids), so
    // rare matches come from the trigram index below it, common ones from the scan, and pages of
    // either join without a gap or a repeat.
    on_each_engine(&[], |engine, app, db| {
        let mut seller = app.client();
        seller.register("Sam Seller", "sam@example.com");
        let seller_id = db.query_i64("SELECT id FROM users WHERE email = 'sam@example.com'");
        let rare = |i: i64| [3, 10, 650, 699, 700, 701, 800, 900, 1000, 1100, 1199].contains(&i);
        let row = |i: i64| {
            let (title, author) = match i {
                1100 => (format!("Volume {i}"), "ZEPHYR KING".to_string()),
                1150 => ("Ørsted's notebooks".to_string(), "H. C. Ørsted".to_string()),
                _ if rare(i) => (format!("Zephyr volume {i}"), "Various".to_string()),
                _ => (format!("Volume {i}"), "Various".to_string()),
            };
            let stock = if i == 800 { 0 } else { 1 };
            let status = if i == 1000 { "withdrawn" } else { "active" };
            format!(
                "({seller_id}, '{}', '{}', 'A copy.', 500, {stock}, NULL, '{status}', 0)",
                title.replace('\'', "''"),
                author
            )
        };
        insert_books(db, &(1..=1200).map(row).collect::<Vec<_>>());
        let ids =
            |q: &str| db.query_i64s(&format!("SELECT id FROM books WHERE {q} ORDER BY id DESC"));
        let mut visitor = app.client();

        let zephyr = ids("id IN (3, 10, 650, 699, 700, 701, 800, 900, 1100, 1199)");
        assert_eq!(
            all_pages(&mut visitor, "/books?q=zephyr"),
            zephyr,
            "{engine:?}: rare term, any case, not the withdrawn"
        );
        let in_stock: Vec<i64> = zephyr.iter().copied().filter(|&i| i != 800).collect();
        assert_eq!(
            all_pages(&mut visitor, "/books?q=Zephyr&in_stock=1"),
            in_stock,
            "{engine:?}"
        );

        // A common term: 24 pages, each by its Older link, the last one from the trigram index.
        let volume = ids("status = 'active' AND (title LIKE '%volume%')");
        assert_eq!(volume.len(), 1198);
        let pages = all_pages(&mut visitor, "/books?q=volume");
        assert_eq!(pages, volume, "{engine:?}: every page of a common term");

        // A short term cannot use the trigram index: the scan goes on below the window.
        let sevens = ids("status = 'active' AND title LIKE '%77%'");
        assert_eq!(all_pages(&mut visitor, "/books?q=77"), sevens, "{engine:?}");

        // Beyond ASCII: case folded as the index does.
        assert_eq!(
            all_pages(&mut visitor, "/books?q=%C3%98RSTED"),
            vec![1150],
            "{engine:?}"
        );

        // A renamed book is found by its new name only.
        let edit = seller.post_multipart(
            "/books/1199/edit",
            &[
                ("title", "Quokka almanac"),
                ("author", "Various"),
                ("price", "5"),
                ("stock", "1"),
                ("stock_was", "1"),
            ],
            None,
        );
        assert_eq!(edit.status, 303, "{}", edit.text());
        assert_eq!(all_pages(&mut visitor, "/books?q=quokka"), vec![1199]);
        assert_eq!(
            all_pages(&mut visitor, "/books?q=zephyr"),
            zephyr[1..].to_vec()
        );
    });
}

#[test]
fn on_mysql_a_catalog_page_reads_only_its_own_rows_however_deep() {
    // Left to itself, MariaDB read the cards index by `status` alone and skipped to the cursor row
    // by row: page n of the Older links read 50·n index entries. The server's table statistics
    // (`userstat`, per database: this test's own) count the rows each page reads.
    let (base, db) = TestDb::mysql();
    execute(&base, "SET GLOBAL userstat = 1");
    let uploads = TempDir::new("uploads");
    let app = App::start(&db.url, &uploads.0, &[]);
    let mut seller = app.client();
    seller.register("Sam Seller", "sam@example.com");
    let seller_id = db.query_i64("SELECT id FROM users WHERE email = 'sam@example.com'");
    let rows: Vec<String> = (1..=1200)
        .map(|i| {
            format!("({seller_id}, 'Volume {i}', 'Various', 'A copy.', 500, 1, NULL, 'active', 0)")
        })
        .collect();
    insert_books(&db, &rows);
    let name = db.name();
    let rows_read = || {
        db.query_i64(&format!(
            "SELECT CAST(IFNULL(SUM(ROWS_READ), 0) AS SIGNED) FROM information_schema.TABLE_STATISTICS \
             WHERE TABLE_SCHEMA = '{name}' AND TABLE_NAME = 'books'"
        ))
    };
    let mut visitor = app.client();
    for (first, rel) in [
        ("/books", "next"),
        ("/books?q=volume", "next"),
        // Back up from the oldest books by the Newer links.
        ("/books?after=1&page=25", "prev"),
    ] {
        let mut path = first.to_string();
        let mut pages = 0;
        loop {
            let before = rows_read();
            let page = visitor.get(&path).text();
            let read = rows_read() - before;
            pages += 1;
            assert!(
                read <= 52,
                "{path}: {read} rows read for a page of 50 (and the one that tells another follows)"
            );
            let Some(next) = link(&page, rel) else { break };
            path = next;
        }
        assert!(pages >= 24, "{first}: only {pages} pages");
    }
}

#[test]
fn on_mysql_reads_asked_for_at_once_share_statements_and_each_gets_its_own() {
    // With every connection busy, the reads asked for meanwhile (catalog pages, book pages,
    // sessions) are made together in one statement per kind (a UNION ALL, each row tagged with its
    // read). Each must still be exactly the one asked for: the same as when it is asked alone.
    // The server's per-user statistics (this test's own user) count the statements.
    let (base, db) = TestDb::mysql();
    let (_, host) = db.credentials_and_host();
    let dbname = db.name();
    execute(&base, "SET GLOBAL userstat = 1");
    let user = db.user("batch", "batch-password");
    let server = host.split_once('/').unwrap().0;
    let uploads = TempDir::new("uploads");
    // One event loop with 2 connections, so that 48 requests at once must share them.
    let app = App::start(
        &format!("mysql://{user}:batch-password@{server}/{dbname}"),
        &uploads.0,
        &[
            ("BOOKSTORE_THREADS", "1"),
            ("BOOKSTORE_DB_CONNECTIONS", "2"),
        ],
    );
    let mut seller = app.client();
    seller.register("Sam Seller", "sam@example.com");
    let seller_id = db.query_i64("SELECT id FROM users WHERE email = 'sam@example.com'");
    let values: Vec<String> = (1..=400)
        .map(|i| {
            let title = if i % 7 == 0 {
                format!("Zephyr volume {i}")
            } else {
                format!("Volume {i}")
            };
            let stock = i64::from(i % 3 != 0);
            format!(
                "({seller_id}, '{title}', 'Various', 'A copy.', 500, {stock}, NULL, 'active', 0)"
            )
        })
        .collect();
    insert_books(&db, &values);
    let paths: Vec<String> = [
        "/books",
        "/books?page=2",
        "/books?page=5",
        "/books?before=300&page=3",
        "/books?before=123&page=6",
        "/books?after=1&page=8",
        "/books?after=250&page=3",
        "/books?q=zephyr",
        "/books?q=zephyr&before=200&page=2",
        "/books?q=volume+3",
        "/books?in_stock=1",
        "/books?in_stock=1&q=zephyr&after=40&page=2",
    ]
    .iter()
    .map(|p| p.to_string())
    .collect();
    let page_of = |path: &str| card_ids(&app.client().get(path).text());
    let alone: Vec<Vec<i64>> = paths.iter().map(|p| page_of(p)).collect();
    assert!(alone.iter().all(|ids| !ids.is_empty()), "{alone:?}");

    let selects = || {
        db.query_i64(&format!(
            "SELECT CAST(IFNULL(SUM(SELECT_COMMANDS), 0) AS SIGNED) FROM information_schema.USER_STATISTICS WHERE USER = '{user}'"
        ))
    };
    // Logged-in readers: each page's session lookup is batched with the others', and each must
    // still be its own reader's (a mix-up would show one reader another's account).
    let readers: Vec<Client> = (0..4)
        .map(|r| {
            let mut c = app.client();
            assert_eq!(
                c.register(&format!("Reader {r}"), &format!("reader{r}@example.com"))
                    .status,
                303
            );
            c
        })
        .collect();
    let title = |id: i64| {
        if id % 7 == 0 {
            format!("<h1>Zephyr volume {id}</h1>")
        } else {
            format!("<h1>Volume {id}</h1>")
        }
    };

    let before = selects();
    let n = paths.len();
    // 4 of each catalog page, 16 book pages, 4 pages for each of the 4 readers.
    let (catalog, books, reading) = (4 * n, 16, 16);
    let requests = catalog + books + reading;
    let start = std::sync::Barrier::new(requests);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..requests)
            .map(|i| {
                let (start, paths, alone, page_of, readers, title) =
                    (&start, &paths, &alone, &page_of, &readers, &title);
                let port = app.port;
                s.spawn(move || {
                    if i < catalog {
                        start.wait();
                        let path = &paths[i % n];
                        assert_eq!(page_of(path), alone[i % n], "{path}: asked for with others");
                    } else if i < catalog + books {
                        let id = 10 + (i - catalog) as i64;
                        let mut c = Client::new(port);
                        start.wait();
                        let page = c.get(&format!("/books/{id}")).text();
                        assert!(page.contains(&title(id)), "book {id} asked for with others");
                    } else {
                        let r = (i - catalog - books) % readers.len();
                        let mut c = readers[r].on(port);
                        start.wait();
                        let page = c.get("/books?page=2").text();
                        assert!(
                            page.contains(&format!("class=\"who\">Reader {r}</span>")),
                            "reader {r} asked for a page with others: not shown as themselves"
                        );
                        assert_eq!(card_ids(&page), alone[1], "reader {r}'s catalog page");
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
    });
    let statements = selects() - before;
    // Alone, every request is one statement, a reader's two (the session, the page).
    let alone_statements = (catalog + books + 2 * reading) as i64;
    assert!(
        statements < alone_statements / 2,
        "{requests} requests at once took {statements} statements (alone: {alone_statements}): few batches were shared"
    );
}
