//! The three domains — accounts, catalog, orders — each own their tables: no SQL of one names
//! another's, and a database made by the release before the domains (one schema, shared
//! migrations 1–4, orders without their seller) upgrades in place without losing an order.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;

const DOMAINS: &[&str] = &["accounts", "catalog", "orders"];

/// The tables a domain's migrations create.
fn tables_of(domain: &str) -> BTreeSet<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(domain);
    let mut tables = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        let words: Vec<&str> = text.split_whitespace().collect();
        for w in words.windows(4) {
            match w {
                ["CREATE", "TABLE", name, ..] | ["CREATE", "VIRTUAL", "TABLE", name] => {
                    tables.insert(
                        name.trim_matches(|c: char| !c.is_alphanumeric() && c != '_')
                            .to_string(),
                    );
                }
                _ => {}
            }
        }
    }
    assert!(!tables.is_empty(), "no table in {}", dir.display());
    tables
}

/// Every table a Rust file's SQL names after FROM, JOIN, INTO, UPDATE or TABLE (comments skipped).
fn tables_named(code: &str, known: &BTreeSet<String>) -> BTreeSet<String> {
    let mut named = BTreeSet::new();
    for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
        let words: Vec<&str> = line
            .split(|c: char| c.is_whitespace() || c == '(' || c == '"' || c == ',')
            .filter(|w| !w.is_empty())
            .collect();
        for pair in words.windows(2) {
            if ["FROM", "JOIN", "INTO", "UPDATE", "TABLE", "EXISTS"].contains(&pair[0])
                && known.contains(pair[1])
            {
                named.insert(pair[1].to_string());
            }
        }
    }
    named
}

fn rust_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

#[test]
fn each_domain_queries_only_its_own_tables() {
    let owners: BTreeMap<String, &str> = DOMAINS
        .iter()
        .flat_map(|d| tables_of(d).into_iter().map(move |t| (t, *d)))
        .collect();
    for expected in [
        "users",
        "sessions",
        "books",
        "books_search",
        "orders",
        "delivery_providers",
    ] {
        assert!(
            owners.contains_key(expected),
            "{expected} has no owner: {owners:?}"
        );
    }
    let known: BTreeSet<String> = owners.keys().cloned().collect();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut seen = BTreeMap::<&str, BTreeSet<String>>::new();
    let mut trespass = Vec::new();
    for file in rust_files(&src) {
        let code = std::fs::read_to_string(&file).unwrap();
        let rel = file
            .strip_prefix(&src)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        // Code outside the domains (the server, the sweeps' timer, the database plumbing) names
        // no domain's table at all.
        let domain = DOMAINS
            .iter()
            .copied()
            .find(|d| rel.starts_with(&format!("{d}/")));
        for table in tables_named(&code, &known) {
            let owner = owners[&table];
            if domain != Some(owner) {
                trespass.push(format!("{rel} names {table} (a table of {owner})"));
            }
            if let Some(d) = domain {
                seen.entry(d).or_default().insert(table);
            }
        }
    }
    assert!(
        trespass.is_empty(),
        "SQL across domains:\n{}",
        trespass.join("\n")
    );
    // The scan reads the SQL at all: each domain's code names its main tables.
    for (domain, table) in [
        ("accounts", "users"),
        ("catalog", "books"),
        ("orders", "orders"),
    ] {
        assert!(
            seen.get(domain).is_some_and(|t| t.contains(table)),
            "{domain}: {seen:?}"
        );
    }
}

#[test]
fn a_database_of_the_release_before_the_domains_upgrades_in_place() {
    for engine in engines() {
        let db = TestDb::new(&engine);
        let uploads = TempDir::new("uploads");
        let env = [("BOOKSTORE_SWEEP_SECS", "1")];
        let app = App::start(&db.url, &uploads.0, &env);
        let mut sam = app.client();
        sam.register("Sam Seller", "sam@example.com");
        let book = publish(&mut sam, "Old Stock", "A. Author", "12.00", "3", None);
        let mut bob = app.client();
        bob.register("Bob Buyer", "bob@example.com");
        let order = id_from(
            bob.post(&format!("/books/{book}/buy"), &[("quantity", "1")])
                .location(),
        );
        let dhl = db
            .query_i64("SELECT id FROM delivery_providers WHERE name = 'DHL'")
            .to_string();
        let paid = bob.post(
            &format!("/orders/{order}/pay"),
            &with_address(&[("method", "card"), ("provider", &dhl)]),
        );
        assert_eq!(paid.status, 303, "{engine:?}: {}", paid.text());
        drop(app);

        // The previous release's database: no domain bookkeeping, orders without their seller.
        let drop_index = match engine {
            Engine::Sqlite => "DROP INDEX orders_seller",
            Engine::Mysql(_) => "DROP INDEX orders_seller ON orders",
        };
        for statement in [
            drop_index,
            "ALTER TABLE orders DROP COLUMN seller_id",
            "DROP TABLE domain_migrations",
            "DROP TABLE reservations",
            "DROP TABLE session_revocations",
        ] {
            execute(&db.url, statement);
        }
        assert_eq!(db.query_i64("SELECT COUNT(*) FROM schema_migrations"), 4);

        let app = App::start(&db.url, &uploads.0, &env);
        // Only the new migrations ran (1–4 again would have failed on existing tables).
        assert_eq!(
            query_i64s(
                &db.url,
                "SELECT version FROM domain_migrations ORDER BY domain, version"
            ),
            vec![6, 6, 5],
            "{engine:?}: accounts 6, catalog 6, orders 5"
        );
        assert_eq!(db.query_i64("SELECT COUNT(*) FROM schema_migrations"), 4);
        // The sweep gives the old order its seller (through catalog): the seller sees the sale.
        let mut sam = sam.on(app.port);
        let start = Instant::now();
        while !sam
            .get("/sales")
            .text()
            .contains(&format!("/orders/{order}"))
        {
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "{engine:?}: the old order never reached the seller's sales"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        let page = sam.get(&format!("/orders/{order}")).text();
        assert!(
            page.contains("Bob Buyer") && page.contains("Old Stock"),
            "{engine:?}"
        );
        assert_eq!(
            sam.post(&format!("/orders/{order}/ship"), &[]).status,
            303,
            "{engine:?}: the seller ships the old order"
        );
        let mut bob = bob.on(app.port);
        let mine = bob.get("/orders").text();
        assert!(
            mine.contains("shipped") && mine.contains("Old Stock"),
            "{engine:?}"
        );
        assert_eq!(
            db.query_i64(&format!("SELECT stock FROM books WHERE id = {book}")),
            2,
            "{engine:?}"
        );
    }
}
