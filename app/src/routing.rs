//! Which service of the split serves a path: the one table that the app's tests route by and
//! that the load balancer's listener rules are made from (the CLI includes this file, so the two
//! cannot disagree). It depends on nothing.
//!
//! Patterns are ALB path patterns: case-sensitive, matched against the path without the query
//! string, `*` any run of characters (`/` included), `?` exactly one.

/// Each service's patterns, in the order the load balancer tries them; a path that none matches
/// goes to [`DEFAULT`]. An ALB rule takes at most 5 values and 5 wildcards.
pub const ROUTES: &[(&str, &[&str])] = &[
    ("accounts", &["/register", "/login", "/logout", "/admin/*"]),
    (
        "orders",
        &["/orders", "/orders/*", "/sales", "/books/*/buy"],
    ),
];

/// The service behind the listener's default action: the catalog (home, books, selling, covers,
/// static files).
pub const DEFAULT: &str = "catalog";

/// The service that serves this path (or path and query).
pub fn service_of(path: &str) -> &'static str {
    let path = path.split('?').next().unwrap_or(path);
    ROUTES
        .iter()
        .find(|(_, patterns)| patterns.iter().any(|p| matches(p, path)))
        .map_or(DEFAULT, |(service, _)| service)
}

/// An ALB path pattern against a path: `*` any run, `?` one character, the rest literally.
pub fn matches(pattern: &str, path: &str) -> bool {
    let (p, s) = (pattern.as_bytes(), path.as_bytes());
    // Iterative glob matching: on a mismatch, let the last `*` take one more character.
    let (mut i, mut j, mut star, mut from) = (0, 0, None, 0);
    while j < s.len() {
        if i < p.len() && (p[i] == b'?' || p[i] == s[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == b'*' {
            star = Some(i);
            from = j;
            i += 1;
        } else if let Some(k) = star {
            i = k + 1;
            from += 1;
            j = from;
        } else {
            return false;
        }
    }
    p[i..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_as_the_load_balancer_does() {
        assert!(matches("/admin/*", "/admin/"));
        assert!(matches("/admin/*", "/admin/users/3"));
        assert!(!matches("/admin/*", "/admin"));
        assert!(matches("/books/*/buy", "/books/12/buy"));
        assert!(matches("/books/*/buy", "/books/a/b/buy"));
        assert!(!matches("/books/*/buy", "/books/buy"));
        assert!(!matches("/books/*/buy", "/books/12/buyer"));
        assert!(!matches("/login", "/Login"));
        assert!(matches("/a?c", "/abc"));
        assert!(!matches("/a?c", "/ac"));
    }

    #[test]
    fn each_path_has_one_service() {
        for (path, service) in [
            ("/", "catalog"),
            ("/books", "catalog"),
            ("/books/7", "catalog"),
            ("/books/7/edit", "catalog"),
            ("/sell", "catalog"),
            ("/static/app.css", "catalog"),
            ("/login?next=/sell", "accounts"),
            ("/logout", "accounts"),
            ("/admin/users", "accounts"),
            ("/orders", "orders"),
            ("/orders/3/pay", "orders"),
            ("/sales", "orders"),
            ("/books/7/buy", "orders"),
        ] {
            assert_eq!(service_of(path), service, "{path}");
        }
    }

    /// What AWS takes in one rule: at most 5 values and 5 wildcards, each value 1–128 characters.
    #[test]
    fn every_rule_fits_an_alb_rule() {
        for (service, patterns) in ROUTES {
            assert!(patterns.len() <= 5, "{service}");
            let wildcards: usize = patterns.iter().map(|p| p.matches(['*', '?']).count()).sum();
            assert!(wildcards <= 5, "{service}");
            assert!(patterns.iter().all(|p| (1..=128).contains(&p.len())));
        }
    }
}
