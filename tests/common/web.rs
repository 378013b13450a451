//! Loopback HTTP and the test MariaDB, for the tests that run the app's processes for real.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// GET on loopback: (status, the whole response), or `None` when nothing answers.
pub fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    s.read_to_string(&mut response).ok()?;
    let status = response.split(' ').nth(1)?.parse().ok()?;
    Some((status, response))
}

/// One HTTP/1.1 request on loopback: (status, head, body). `cookies` go in a Cookie header.
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    cookies: &str,
    form: &str,
) -> (u16, String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n",
        form.len()
    );
    if !form.is_empty() {
        head.push_str("Content-Type: application/x-www-form-urlencoded\r\n");
    }
    if !cookies.is_empty() {
        head.push_str(&format!("Cookie: {cookies}\r\n"));
    }
    write!(s, "{head}\r\n{form}").unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head.to_string(), body.to_string())
}

/// The `name=value` pairs of a response's Set-Cookie headers.
pub fn set_cookies(head: &str) -> Vec<String> {
    head.lines()
        .filter_map(|l| {
            l.strip_prefix("set-cookie: ")
                .or_else(|| l.strip_prefix("Set-Cookie: "))
        })
        .map(|c| c.split(';').next().unwrap().to_string())
        .collect()
}

/// Registers Ada at `accounts_port` (the split's accounts service, or the whole app) and returns
/// the cookies a browser would then send.
pub fn register(accounts_port: u16) -> String {
    let (status, head, _) = http(accounts_port, "GET", "/register", "", "");
    assert_eq!(status, 200);
    let csrf = set_cookies(&head)
        .into_iter()
        .find(|c| c.starts_with("bs_csrf="))
        .expect("a CSRF cookie");
    let token = csrf.trim_start_matches("bs_csrf=");
    let form =
        format!("name=Ada&email=ada%40example.org&password=correct+horse+battery&csrf={token}");
    let (status, head, body) = http(accounts_port, "POST", "/register", &csrf, &form);
    assert!(status == 303 || status == 302, "{status}\n{head}\n{body}");
    let mut jar = vec![csrf.clone()];
    jar.extend(set_cookies(&head));
    jar.join("; ")
}

/// The parts of the test server's URL `mysql://user:pass@host:port`: (user, password, host, port).
pub fn mysql_parts(url: &str) -> (String, String, String, String) {
    let rest = url.trim_start_matches("mysql://");
    let (creds, host) = rest.split_once('@').unwrap();
    let (user, password) = creds.split_once(':').unwrap();
    let (host, port) = host.trim_end_matches('/').split_once(':').unwrap();
    (user.into(), password.into(), host.into(), port.into())
}

/// Runs `sql` on the test server as `user` with `password`: (success, stdout, stderr).
pub fn mariadb_as(url: &str, user: &str, password: &str, sql: &str) -> (bool, String, String) {
    let (_, _, host, port) = mysql_parts(url);
    let out = Command::new("mariadb")
        .args(["-h", &host, "-P", &port, "-u", user, "-N", "-e", sql])
        .env("MYSQL_PWD", password)
        .output()
        .expect("the mariadb client comes with scripts/mariadb.sh");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `sql` on the test server as the URL's (privileged) user; fails the test if it fails.
pub fn mariadb(url: &str, sql: &str) -> String {
    let (user, password, _, _) = mysql_parts(url);
    let (ok, out, err) = mariadb_as(url, &user, &password, sql);
    assert!(ok, "{sql}: {err}");
    out
}
