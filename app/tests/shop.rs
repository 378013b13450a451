//! The shop as people use it, through HTTP on both engines: prices as they type them, forms that
//! come back filled in with each reason beside its field, the shipping address from checkout to
//! the seller's order page, one total everywhere, a message after every action, confirmation
//! steps, the return after logging in, error pages inside the site, and the unpaid-order warning.

mod common;

use common::{ADDRESS, App, Client, PNG, TestDb, id_from, on_each_engine, publish, with_address};

/// The text of the element with this id (the first tag's content, tags stripped).
fn by_id(page: &str, id: &str) -> Option<String> {
    let start = page.find(&format!("id=\"{id}\""))?;
    let open = start + page[start..].find('>')? + 1;
    let close = open + page[open..].find("</")?;
    Some(page[open..close].trim().to_string())
}

fn flash(page: &str) -> Option<String> {
    let start = page.find("class=\"flash\"")?;
    let open = start + page[start..].find('>')? + 1;
    let close = open + page[open..].find("</p>")?;
    Some(page[open..close].to_string())
}

/// Follows one redirect and returns the page it led to.
fn follow(c: &mut Client, r: &common::Resp) -> String {
    assert!(
        (300..400).contains(&r.status),
        "a redirect: {} {}",
        r.status,
        r.text()
    );
    c.get(r.location()).text()
}

fn sell_fields(price: &str) -> Vec<(&str, &str)> {
    vec![
        ("title", "The Comma Book"),
        ("author", "Ana Decimal"),
        ("description", "Typed with care."),
        ("price", price),
        ("stock", "4"),
    ]
}

#[test]
fn prices_are_read_as_typed_and_refused_forms_come_back_filled_in() {
    on_each_engine(&[], |engine, app, db| {
        let mut sam = app.client();
        sam.register("Sam", "sam@example.com");

        // "12,50" is twelve dollars fifty, said back on the next page; "1.250,50" and "1,250.50"
        // are the same price; "1,250" could be either, and is refused saying so.
        let r = sam.post_multipart("/sell", &sell_fields("12,50"), None);
        let book = id_from(r.location());
        let page = follow(&mut sam, &r);
        assert_eq!(
            flash(&page).as_deref(),
            Some("Your book is on sale at $12.50."),
            "{engine:?}"
        );
        assert!(page.contains("$12.50"));
        assert_eq!(
            db.query_i64(&format!("SELECT price_cents FROM books WHERE id = {book}")),
            1250
        );
        assert!(
            flash(&sam.get(&format!("/books/{book}")).text()).is_none(),
            "{engine:?}: a message is shown once"
        );
        for typed in ["1.250,50", "1,250.50", "$1,250.50"] {
            let r = sam.post_multipart("/sell", &sell_fields(typed), None);
            let id = id_from(r.location());
            assert_eq!(
                db.query_i64(&format!("SELECT price_cents FROM books WHERE id = {id}")),
                125_050,
                "{typed}"
            );
            assert!(
                sam.get(&format!("/books/{id}"))
                    .text()
                    .contains("$1,250.50")
            );
        }
        let ambiguous = sam.post_multipart("/sell", &sell_fields("1,250"), None);
        assert_eq!(ambiguous.status, 400);
        let page = ambiguous.text();
        let error = by_id(&page, "price-error").expect("the error beside the price");
        assert!(
            error.contains("could be read two ways: 1,250 or 1.250"),
            "{error}"
        );
        assert!(page.contains(r#"aria-invalid="true""#));
        for kept in [
            r#"value="The Comma Book""#,
            r#"value="Ana Decimal""#,
            "Typed with care.</textarea>",
            r#"value="1,250""#,
            r#"value="4""#,
        ] {
            assert!(page.contains(kept), "{engine:?}: the form keeps {kept}");
        }

        // A cover too large or not an image: the rest of the form is kept, the reason beside the
        // cover. Past the form's own limit (8 times the cover's), the page says so in the site.
        let big = vec![0xFFu8; 3 * 1024 * 1024];
        let too_big = sam.post_multipart("/sell", &sell_fields("9.99"), Some(("big.jpg", &big)));
        assert_eq!(too_big.status, 400);
        let page = too_big.text();
        assert_eq!(
            by_id(&page, "cover-error").as_deref(),
            Some("This image is 3.0 MB: a cover may be at most 2048 KB. Choose a smaller one.")
        );
        assert!(page.contains(r#"value="9.99""#) && page.contains(r#"value="The Comma Book""#));
        let text = sam.post_multipart(
            "/sell",
            &sell_fields("9.99"),
            Some(("notes.txt", b"just text")),
        );
        assert_eq!(text.status, 400);
        assert!(
            by_id(&text.text(), "cover-error")
                .unwrap()
                .contains("not a JPEG, PNG or WebP image")
        );
        // Past the form's own limit (8 times a cover's) the upload is cut off, and still the
        // fields sent before the file come back.
        let huge = vec![0xFFu8; 17 * 1024 * 1024];
        let cut = sam.post_multipart("/sell", &sell_fields("9.99"), Some(("huge.jpg", &huge)));
        assert_eq!(cut.status, 400);
        let page = cut.text();
        assert!(
            by_id(&page, "cover-error")
                .is_some_and(|e| e.starts_with("This image is more than 16"))
                && page.contains(r#"value="The Comma Book""#),
            "{engine:?}: {page}"
        );

        // A good cover sent with a bad price is kept: fixing the price publishes it with the cover.
        let first = sam.post_multipart("/sell", &sell_fields("abc"), Some(("c.png", PNG)));
        assert_eq!(first.status, 400);
        let page = first.text();
        let kept = page
            .split(r#"name="cover_kept" value=""#)
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap()
            .to_string();
        assert!(kept.ends_with(".png"), "{engine:?}: {kept:?}");
        assert!(page.contains("The image you chose is kept"));
        let mut fields = sell_fields("7.50");
        fields.push(("cover_kept", &kept));
        let r = sam.post_multipart("/sell", &fields, None);
        let id = id_from(r.location());
        assert!(
            sam.get(&format!("/books/{id}"))
                .text()
                .contains(&format!("/covers/{kept}"))
        );
        // Another book's cover cannot be taken (deleting one would remove the other's file).
        let mut fields = sell_fields("7.50");
        fields.push(("cover_kept", &kept));
        let taken = sam.post_multipart("/sell", &fields, None);
        assert_eq!(taken.status, 400);
        assert!(
            by_id(&taken.text(), "cover-error")
                .unwrap()
                .contains("no longer kept")
        );
    });
}

/// Publishes a book, buys it as a new buyer and pays with DHL ($50.00); (seller, buyer, book, order).
fn sold(app: &App, price: &str, quantity: &str) -> (Client, Client, i64, i64) {
    let mut sam = app.client();
    sam.register("Sam Seller", "sam@example.com");
    let book = publish(&mut sam, "Ulysses", "James Joyce", price, "10", None);
    let mut bob = app.client();
    bob.register("Bob Buyer", "bob@example.com");
    let order = id_from(
        bob.post(&format!("/books/{book}/buy"), &[("quantity", quantity)])
            .location(),
    );
    (sam, bob, book, order)
}

fn dhl(db: &TestDb) -> String {
    db.query_i64("SELECT id FROM delivery_providers WHERE name = 'DHL'")
        .to_string()
}

#[test]
fn checkout_asks_where_to_ship_and_only_the_seller_and_buyer_see_it() {
    on_each_engine(&[], |engine, app, db| {
        let (mut sam, mut bob, _, order) = sold(app, "18.50", "2");
        let dhl = dhl(db);
        let path = format!("/orders/{order}");

        // Paying without an address: every missing field is named beside it; the choices stay.
        let r = bob.post(
            &format!("{path}/pay"),
            &[
                ("method", "paypal"),
                ("provider", &dhl),
                ("ship_city", "Lima"),
            ],
        );
        assert_eq!(r.status, 400, "{engine:?}");
        let page = r.text();
        for (id, says) in [
            ("ship_name-error", "Enter the name to ship to"),
            ("ship_street-error", "Enter the street and number"),
            ("ship_postcode-error", "Enter the postal code"),
            ("ship_country-error", "Enter the country"),
        ] {
            assert!(
                by_id(&page, id).is_some_and(|e| e.contains(says)),
                "{engine:?}: {id}"
            );
        }
        assert!(by_id(&page, "ship_city-error").is_none());
        assert!(page.contains(r#"value="Lima""#));
        assert!(
            page.contains(r#"value="paypal" checked"#)
                || page.contains(r#"value="paypal"  checked"#)
        );
        assert_eq!(
            db.query_i64(&format!(
                "SELECT COUNT(*) FROM orders WHERE id = {order} AND status = 'paid'"
            )),
            0
        );

        let r = bob.post(
            &format!("{path}/pay"),
            &with_address(&[("method", "card"), ("provider", &dhl)]),
        );
        let page = follow(&mut bob, &r);
        assert_eq!(
            flash(&page).as_deref(),
            Some("Payment received: $87.00. The seller ships your order next.")
        );
        // One total everywhere: books $37.00 + delivery $50.00 = $87.00, on the receipt and both
        // histories (which once showed the books alone).
        assert!(page.contains("$37.00") && page.contains("$50.00 by DHL"));
        assert!(page.contains("<td>$87.00 by card</td>"), "{page}");
        for (who, list) in [(&mut bob, "/orders"), (&mut sam, "/sales")] {
            let page = who.get(list).text();
            assert!(
                page.contains(r#"<td class="total">$87.00</td>"#),
                "{engine:?}: {list}: {page}"
            );
        }

        // The seller's order page: where to ship, the carrier, the dates, the button.
        let seller_view = sam.get(&path);
        assert_eq!(
            seller_view.status, 200,
            "{engine:?}: the seller opens the order"
        );
        let page = seller_view.text();
        for (_, value) in ADDRESS {
            assert!(page.contains(value), "{engine:?}: the seller sees {value}");
        }
        assert!(
            page.contains("Bob Buyer")
                && page.contains("with DHL")
                && page.contains("Mark as shipped")
        );
        assert!(
            !page.contains("Cancel this order"),
            "the seller cannot cancel"
        );

        // Nobody else sees it.
        let mut eve = app.client();
        eve.register("Eve", "eve@example.com");
        assert_eq!(eve.get(&path).status, 404);
        assert!(!eve.get("/sales").text().contains("Long Road"));

        // The buyer changes the address until the order ships; the seller sees the new one.
        let mut moved: Vec<(&str, &str)> = ADDRESS.to_vec();
        moved[1] = ("ship_street", "7 New Street");
        let r = bob.post(&format!("{path}/address"), &moved);
        assert_eq!(
            flash(&follow(&mut bob, &r)).as_deref(),
            Some("The shipping address is saved.")
        );
        assert!(sam.get(&path).text().contains("7 New Street"));
        assert_eq!(
            sam.post(&format!("{path}/address"), &moved).status,
            404,
            "only the buyer"
        );

        let r = sam.post(&format!("{path}/ship"), &[("from", "order")]);
        assert_eq!(r.location(), path);
        let page = follow(&mut sam, &r);
        assert_eq!(
            flash(&page).as_deref(),
            Some("Marked as shipped: the buyer sees it in their orders.")
        );
        let page = bob.get(&path).text();
        assert!(
            page.contains("Shipped</th>") && page.contains("On its way with DHL"),
            "{page}"
        );
        assert!(page.contains("<time datetime=\"") && page.contains(" UTC)</span>"));
        assert_eq!(
            bob.post(&format!("{path}/address"), &moved).status,
            409,
            "shipped: fixed"
        );
    });
}

#[test]
fn every_action_says_what_it_did_and_destructive_ones_ask_first() {
    on_each_engine(&[], |engine, app, db| {
        let mut ann = app.client();
        let r = ann.register("Ann", "ann@example.com");
        assert_eq!(
            flash(&follow(&mut ann, &r)).as_deref(),
            Some("Welcome! Your account is ready and you are logged in."),
            "{engine:?}"
        );
        let r = ann.post("/logout", &[]);
        assert_eq!(
            flash(&follow(&mut ann, &r)).as_deref(),
            Some("You are logged out. See you soon.")
        );
        let r = ann.post(
            "/login",
            &[
                ("email", "ann@example.com"),
                ("password", "correct horse battery"),
            ],
        );
        assert_eq!(
            flash(&follow(&mut ann, &r)).as_deref(),
            Some("You are logged in.")
        );

        let book = publish(&mut ann, "Spare", "X", "3", "2", None);
        let edit = ann.post_multipart(
            &format!("/books/{book}/edit"),
            &[
                ("title", "Spare"),
                ("author", "X"),
                ("price", "4,25"),
                ("stock", "2"),
                ("stock_was", "2"),
            ],
            None,
        );
        assert_eq!(
            flash(&follow(&mut ann, &edit)).as_deref(),
            Some("Your changes are saved. The price is $4.25.")
        );

        // Delete asks first, on a page of its own (no script needed); only its button deletes.
        let ask = ann.post(&format!("/books/{book}/delete"), &[]);
        assert_eq!(ask.location(), format!("/books/{book}/delete"));
        let page = ann.get(ask.location()).text();
        assert!(page.contains("Delete “Spare”?") && page.contains(r#"name="confirm" value="yes""#));
        assert_eq!(
            db.query_i64(&format!("SELECT COUNT(*) FROM books WHERE id = {book}")),
            1
        );
        let r = ann.post(&format!("/books/{book}/delete"), &[("confirm", "yes")]);
        assert_eq!(
            flash(&follow(&mut ann, &r)).as_deref(),
            Some("The listing is deleted.")
        );
        assert_eq!(
            db.query_i64(&format!("SELECT COUNT(*) FROM books WHERE id = {book}")),
            0
        );

        // Buying says what comes next; Cancel asks first and sits apart from Pay.
        let (_, mut bob, book, order) = sold(app, "5", "1");
        let page = bob.get(&format!("/orders/{order}")).text();
        let pay = page.find("/pay").unwrap();
        let cancel = page.find(&format!("/orders/{order}/cancel")).unwrap();
        assert!(
            page[pay..cancel].contains("</form>")
                && page[pay..cancel].contains("Changed your mind?"),
            "{engine:?}: Cancel is a link to its own step, after the payment form"
        );
        let ask = bob.post(&format!("/orders/{order}/cancel"), &[]);
        assert_eq!(ask.location(), format!("/orders/{order}/cancel"));
        assert!(
            bob.get(ask.location())
                .text()
                .contains(&format!("Cancel order #{order}?"))
        );
        assert_eq!(
            db.query_i64(&format!(
                "SELECT COUNT(*) FROM orders WHERE id = {order} AND status = 'pending_payment'"
            )),
            1
        );
        let r = bob.post(&format!("/orders/{order}/cancel"), &[("confirm", "yes")]);
        assert_eq!(
            flash(&follow(&mut bob, &r)).as_deref(),
            Some("The order is cancelled and its copies are back on sale.")
        );

        // Buy, back, buy: the book's page warns of the unpaid order and links to it.
        let r = bob.post(&format!("/books/{book}/buy"), &[("quantity", "1")]);
        let unpaid = id_from(r.location());
        assert_eq!(
            flash(&follow(&mut bob, &r)).as_deref(),
            Some(
                "Your copies are reserved. Enter where to ship them, choose delivery and pay below."
            )
        );
        let page = bob.get(&format!("/books/{book}")).text();
        assert!(
            page.contains("You already have an unpaid order of this book")
                && page.contains(&format!(r#"href="/orders/{unpaid}""#))
                && page.contains("Buy again"),
            "{engine:?}: {page}"
        );

        // Only our own messages can be shown: another value in the cookie shows nothing.
        let mut forged = app.client();
        forged
            .cookies
            .insert("bs_flash".into(), "Your%20account%20is%20locked.0".into());
        let page = forged.get("/books").text();
        assert!(flash(&page).is_none() && !page.contains("locked"));
    });
}

#[test]
fn logging_in_returns_where_the_visitor_was_and_errors_stay_inside_the_site() {
    on_each_engine(&[], |engine, app, _| {
        let mut sam = app.client();
        sam.register("Sam", "sam@example.com");
        let book = publish(&mut sam, "Dune", "Frank Herbert", "9", "3", None);

        let mut visitor = app.client();
        let r = visitor.get("/sell");
        assert_eq!(r.location(), "/login?next=%2Fsell", "{engine:?}");
        let r = visitor.post(&format!("/books/{book}/buy"), &[("quantity", "1")]);
        assert_eq!(r.location(), format!("/login?next=%2Fbooks%2F{book}"));
        let form = visitor.get(r.location()).text();
        assert!(form.contains(&format!(r#"name="next" value="/books/{book}""#)));
        assert!(form.contains(&format!("/register?next=%2Fbooks%2F{book}")));
        visitor.register("Vi", "vi@example.com");
        visitor.post("/logout", &[]);
        let r = visitor.post(
            "/login",
            &[
                ("email", "vi@example.com"),
                ("password", "correct horse battery"),
                ("next", &format!("/books/{book}")),
            ],
        );
        assert_eq!(r.location(), format!("/books/{book}"), "back to the book");
        // Only a path of this site: never another host, however it is spelled.
        for next in [
            "//evil.example/",
            "/\\evil.example",
            "https://evil.example/",
            "/login",
            "/a b",
        ] {
            let mut c = app.client();
            let r = c.post(
                "/login",
                &[
                    ("email", "vi@example.com"),
                    ("password", "correct horse battery"),
                    ("next", next),
                ],
            );
            assert_eq!(r.location(), "/books", "{engine:?}: next={next:?}");
        }
        let mut fresh = app.client();
        let r = fresh.post(
            "/register",
            &[
                ("name", "Newcomer"),
                ("email", "new@example.com"),
                ("password", "correct horse battery"),
                ("next", "/sell"),
            ],
        );
        assert_eq!(r.location(), "/sell", "registering returns too");

        // An error page keeps the visitor's menu, the reason, and the way back.
        let missing = visitor.get("/books/999999");
        assert_eq!(missing.status, 404);
        let page = missing.text();
        assert!(
            page.contains("class=\"who\">Vi</span>")
                && page.contains("Log out")
                && page.contains(r#"href="/books""#),
            "{engine:?}: {page}"
        );
        let too_many = visitor.post(&format!("/books/{book}/buy"), &[("quantity", "50")]);
        assert_eq!(too_many.status, 409);
        let page = too_many.text();
        assert!(
            page.contains("not enough stock")
                && page.contains(&format!(r#"href="/books/{book}""#))
                && page.contains("Back to the book")
                && page.contains("class=\"who\">Vi</span>"),
            "{engine:?}: {page}"
        );
        // The framework's own refusals are told in our words, inside the site.
        let garbled = visitor.request(
            "POST",
            &format!("/books/{book}/buy"),
            Some("application/json"),
            b"{}",
        );
        assert_eq!(garbled.status, 415);
        let page = garbled.text();
        assert!(
            page.contains("The form could not be read") && page.contains("class=\"who\">Vi</span>"),
            "{page}"
        );
    });
}
