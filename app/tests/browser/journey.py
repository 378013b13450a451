#!/usr/bin/env python3
"""The whole BookStore journey in a real browser: Debian's headless Chromium driven over the W3C
WebDriver protocol (chromedriver), with nothing but the standard library.

    journey.py APP_BINARY

Runs APP_BINARY (scripts/test.sh: the suite's debug build) in one process and as the split's three services behind a
routing proxy (`--service accounts|catalog|orders`), each on SQLite and, when BOOKSTORE_TEST_MYSQL_URL names a MariaDB
server, again on a fresh database there. Each run, as people use the shop:
  - a visitor asks to sell, is sent to log in, registers instead and comes back to the sell form;
  - the browser itself refuses a cover too large or not an image (nothing is uploaded);
  - "1,250" is refused beside the price with how it was read, the form and the chosen cover kept;
    "12,50" publishes at $12.50 with the kept cover; an edit and a delete (with its confirmation);
  - a buyer is sent to log in from Buy and comes back to the book; buys; goes back and sees the
    unpaid-order warning; buys again and cancels that order (confirmation); pays the first with a
    shipping address; every action's message is checked;
  - one total ($75.00) on the receipt, in My orders and in My sales; the seller opens the order,
    sees the address and the carrier, ships it; the buyer sees the dates; an error page keeps the
    menu and the way back;
  - at phone size: the menu is collapsed behind a button, targets are at least 44 px, and Buy is on
    the first screen.
Every page is checked by axe-core (BOOKSTORE_TEST_AXE: the path of axe.min.js; scripts/test.sh
fetches it) against WCAG 2.1 A and AA: no serious or critical violation. A screenshot of every page
goes to app/tests/browser/screenshots/ (BOOKSTORE_SCREENSHOTS to change it).
Exits non-zero with the step that failed and the page it was on.
"""

import base64
import fnmatch
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGMAAQAABQABDQottAAAAABJRU5ErkJggg=="
)


def png(width, height):
    """A real cover-sized PNG (a dark jacket with a lighter band), made with zlib."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b""
    for y in range(height):
        band = height // 3 < y < height // 2
        rows += b"\0" + (bytes((230, 200, 120)) if band else bytes((40, 60, 110))) * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, seconds=30):
    end = time.time() + seconds
    while time.time() < end:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except (urllib.error.URLError, ConnectionError, OSError):
            time.sleep(0.1)
    raise SystemExit(f"{url} did not answer within {seconds} s")


class Browser:
    def __init__(self, driver_url):
        self.driver = driver_url
        caps = {
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": {
                        "binary": "/usr/bin/chromium",
                        "args": [
                            "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                            "--no-first-run", "--disable-background-networking",
                            "--disable-component-update", "--disable-sync",
                            "--disable-dev-shm-usage",
                            f"--user-data-dir={tempfile.mkdtemp(prefix='bookstore-chromium-')}",
                        ],
                    },
                }
            }
        }
        self.session = self.call("POST", "/session", caps)["sessionId"]

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        if method == "POST" and data is None:
            data = b"{}"
        req = urllib.request.Request(self.driver + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return json.loads(r.read() or b"{}").get("value")
        except urllib.error.HTTPError as e:
            raise SystemExit(f"webdriver {method} {path}: {e.code} {e.read()[:500]!r}")

    def s(self, method, path, body=None):
        return self.call(method, f"/session/{self.session}{path}", body)

    def go(self, url):
        self.s("POST", "/url", {"url": url})

    def find(self, css):
        found = self.s("POST", "/elements", {"using": "css selector", "value": css})
        if not found:
            raise SystemExit(f"no element {css!r} on {self.url()}:\n{self.text()[:1500]}")
        return next(iter(found[0].values()))

    def type(self, css, text):
        el = self.find(css)
        self.s("POST", f"/element/{el}/clear")
        self.s("POST", f"/element/{el}/value", {"text": text})

    def click(self, css):
        self.s("POST", f"/element/{self.find(css)}/click")

    def url(self):
        return self.s("GET", "/url")

    def text(self):
        return self.s("POST", "/execute/sync", {"script": "return document.body.innerText", "args": []})

    def js(self, script, *args):
        return self.s("POST", "/execute/sync", {"script": script, "args": list(args)})

    def js_async(self, script):
        return self.s("POST", "/execute/async", {"script": script, "args": []})

    def size(self, width, height):
        self.s("POST", "/window/rect", {"width": width, "height": height})

    def screenshot(self, path):
        with open(path, "wb") as f:
            f.write(base64.b64decode(self.s("GET", "/screenshot")))

    def back(self):
        self.s("POST", "/back")

    def quit(self):
        self.s("DELETE", "")


def expect(browser, condition, what, seconds=10):
    """Waits until `condition()` holds (a click's navigation completes on its own time)."""
    end = time.time() + seconds
    while not condition():
        if time.time() > end:
            raise SystemExit(f"FAILED: {what}\n  at {browser.url()}\n{browser.text()[:1500]}")
        time.sleep(0.1)
    print(f"ok: {what}")


AXE_RUN = """
const done = arguments[arguments.length - 1];
axe.run(document, {runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}})
  .then(r => done(r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
     targets: v.nodes.slice(0, 3).map(n => n.target.join(" "))}))))
  .catch(e => done([{id: "axe-error", impact: "critical", help: String(e), targets: []}]));
"""


class Journey:
    def __init__(self, browser, base, engine, axe_source, shots):
        self.b, self.base, self.engine = browser, base, engine
        self.axe, self.shots, self.pages = axe_source, shots, 0
        self.checked = {}

    def url(self, path):
        return self.base + path

    def check_page(self, name):
        """A screenshot, and axe-core on the page as it is now: no serious or critical violation."""
        b = self.b
        expect(b, lambda: b.js("return document.readyState") == "complete", f"{name}: loaded", 10)
        self.pages += 1
        b.screenshot(os.path.join(self.shots, f"{self.engine}-{self.pages:02d}-{name}.png"))
        if not b.js("return typeof axe !== 'undefined'"):
            b.js(self.axe + "\nreturn true;")
        violations = b.js_async(AXE_RUN)
        bad = [v for v in violations if v["impact"] in ("serious", "critical")]
        for v in violations:
            if v not in bad:
                print(f"  note ({name}): axe {v['impact']}: {v['id']}: {v['help']} at {v['targets']}")
        if bad:
            raise SystemExit(f"FAILED: {name}: {len(bad)} serious accessibility violations at {b.url()}:\n"
                             + "\n".join(f"  {v['impact']} {v['id']}: {v['help']} at {v['targets']}" for v in bad))
        self.checked[name] = len(violations)
        print(f"ok: {name}: screenshot and accessibility (axe: 0 serious, {len(violations)} minor)")

    def flash(self):
        return self.b.js("const f = document.querySelector('.flash'); return f ? f.innerText : null")

    def expect_flash(self, text, what):
        expect(self.b, lambda: self.flash() == text, f"{what}: the page says {text!r}")

    def total_of(self, order_path):
        """The Total cell of this order's row in a list of orders."""
        return self.b.js("const a = document.querySelector(`tr a[href='${arguments[0]}']`);"
                         " return a ? a.closest('tr').querySelector('td.total').innerText : null", order_path)

    def text_of(self, css):
        return self.b.js("const e = document.querySelector(arguments[0]); return e ? e.innerText : null", css)


def start_single(app_binary, database_urls, work):
    """The app in one process; its address and its processes."""
    app_port = free_port()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "BOOKSTORE_ADDR": f"127.0.0.1:{app_port}",
           "BOOKSTORE_DATA_DIR": f"{work}/data", "BOOKSTORE_LOG": "warn", "NO_COLOR": "1"}
    if database_urls:
        env["DATABASE_URL"] = database_urls[0]
    app = subprocess.Popen([app_binary], env=env, stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{app_port}"
    wait_http(f"{base}/healthz")
    return base, [app], None


SERVICES = ["accounts", "catalog", "orders"]


def _routes():
    """The split's routing table, read from the app's source (app/src/routing.rs): the table the
    load balancer's rules are made from."""
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "src", "routing.rs")
    with open(src) as f:
        text = f.read()
    table = text[text.index("pub const ROUTES"):]
    table = table[:table.index("];")]
    # Whatever rustfmt makes of the layout: `("service", &["pattern", …])` entries.
    routes = [(service, re.findall(r'"([^"]+)"', patterns))
              for service, patterns in re.findall(r'\(\s*"(\w+)",\s*&\[([^\]]*)\],?\s*\)', table)]
    default = re.search(r'pub const DEFAULT: &str = "(\w+)";', text).group(1)
    named = sorted([s for s, _ in routes] + [default])
    assert named == sorted(SERVICES) and all(p for _, p in routes), \
        f"app/src/routing.rs: ROUTES read as {routes}, default {default}"
    return routes, default


ROUTES, DEFAULT_SERVICE = _routes()


def service_for(path):
    """The service of the split a path goes to (ALB path patterns: `*` any run, `?` one)."""
    p = path.split("?")[0]
    for service, patterns in ROUTES:
        if any(fnmatch.fnmatchcase(p, pattern) for pattern in patterns):
            return service
    return DEFAULT_SERVICE


def routing_proxy(backends):
    """A small load balancer: each request (the browser keeps connections open, so request by
    request) goes to its service's port; the answer comes back whole, every header kept."""
    import http.client
    import http.server
    import threading

    hop = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade"}

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def forward(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            conn = http.client.HTTPConnection("127.0.0.1", backends[service_for(self.path)], timeout=60)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in hop}
            try:
                conn.request(self.command, self.path, body=body, headers=headers)
                r = conn.getresponse()
                data = r.read()
            except OSError:
                self.send_response(502)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response_only(r.status, r.reason)
            for k, v in r.getheaders():
                if k.lower() not in hop and k.lower() != "content-length":
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            conn.close()

        do_GET = do_POST = do_HEAD = forward

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def start_split(app_binary, database_urls, work):
    """The three services of the split (`--service`), each on its own database, behind the
    routing proxy; its address and the services' processes."""
    os.makedirs(f"{work}/keys", exist_ok=True)
    internal_key = f"{work}/keys/internal.key"
    with open(internal_key, "w") as f:
        f.write(base64.b64encode(os.urandom(32)).decode())
    identity_key = f"{work}/keys/identity.key"
    with open(identity_key, "w") as f:
        f.write(subprocess.run([app_binary, "identity-key"], check=True, capture_output=True, text=True).stdout)
    public = {s: free_port() for s in SERVICES}
    internal = {s: free_port() for s in SERVICES}
    apps = []
    for i, service in enumerate(SERVICES):
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "BOOKSTORE_ADDR": f"127.0.0.1:{public[service]}",
               "BOOKSTORE_DATA_DIR": f"{work}/data-{service}", "BOOKSTORE_UPLOADS_DIR": f"{work}/uploads",
               "BOOKSTORE_LOG": "warn", "NO_COLOR": "1", "BOOKSTORE_SERVICE": service,
               "BOOKSTORE_INTERNAL_ADDR": f"127.0.0.1:{internal[service]}",
               "BOOKSTORE_INTERNAL_KEY_FILE": internal_key, "BOOKSTORE_IDENTITY_KEY_FILE": identity_key}
        for peer in SERVICES:
            env[f"BOOKSTORE_{peer.upper()}_URL"] = f"http://127.0.0.1:{internal[peer]}"
        if database_urls:
            env["DATABASE_URL"] = database_urls[i]
        apps.append(subprocess.Popen([app_binary], env=env, stdout=subprocess.DEVNULL))
    for service in SERVICES:
        wait_http(f"http://127.0.0.1:{public[service]}/healthz")
    proxy = routing_proxy(public)
    base = f"http://127.0.0.1:{proxy.server_address[1]}"
    wait_http(f"{base}/healthz")
    return base, apps, proxy


def run(start, app_binary, database_urls, engine, work, driver_url, axe_source, shots):
    apps, proxy = [], None
    browser = None
    try:
        base, apps, proxy = start(app_binary, database_urls, work)
        browser = Browser(driver_url)
        browser.size(1280, 900)
        j = Journey(browser, base, engine, axe_source, shots)
        b = browser
        cover = os.path.join(work, "cover.png")
        with open(cover, "wb") as f:
            f.write(png(300, 450))
        big = os.path.join(work, "big-cover.png")
        with open(big, "wb") as f:
            f.write(PNG + b"\0" * (3 * 1024 * 1024))
        notes = os.path.join(work, "notes.txt")
        with open(notes, "w") as f:
            f.write("not an image")

        def fill(fields):
            for css, value in fields:
                b.type(css, value)

        def attach(path):
            b.s("POST", f"/element/{b.find('input[name=cover]')}/value", {"text": path})

        def log_in(email, flash="You are logged in."):
            b.go(j.url("/login"))
            fill([("input[name=email]", email), ("input[name=password]", "correct horse battery")])
            b.click("form[action='/login'] button")
            expect(b, lambda: "Log out" in b.text(), f"{email} logged in")
            j.expect_flash(flash, "log in")

        def log_out():
            b.click("form[action='/logout'] button")
            expect(b, lambda: b.js("return !!document.querySelector(\"nav a[href='/login']\")"), "logged out")
            j.expect_flash("You are logged out. See you soon.", "log out")

        # A visitor: the home page, then Sell, which asks to log in and comes back after registering.
        b.go(j.url("/"))
        j.check_page("home")
        b.click("a.button.secondary[href='/sell']")
        expect(b, lambda: "/login?next=%2Fsell" in b.url(), "Sell sends a visitor to log in, with the way back")
        j.check_page("login-to-sell")
        b.click("a[href^='/register?next=']")
        expect(b, lambda: "/register?next=%2Fsell" in b.url(), "registering keeps the way back")
        fill([("input[name=name]", "Sam Seller"), ("input[name=email]", "sam@example.com"),
              ("input[name=password]", "correct horse battery")])
        j.check_page("register")
        b.click("form[action='/register'] button")
        expect(b, lambda: b.url().endswith("/sell") and "Log out" in b.text(), "registered, back on the sell form")
        j.expect_flash("Welcome! Your account is ready and you are logged in.", "register")
        j.check_page("sell")

        # The browser refuses a cover too large or not an image before anything is sent.
        attach(big)
        expect(b, lambda: (j.text_of("#cover-error") or "").startswith("This image is 3.0 MB: a cover may be at most 2048 KB"),
               "a 3 MB cover is refused in the browser, beside the field")
        expect(b, lambda: b.js("return document.querySelector('#cover').files.length") == 0, "and it is not sent")
        attach(notes)
        expect(b, lambda: "not a JPEG, PNG or WebP image" in (j.text_of("#cover-error") or ""), "a text file is refused too")

        # "1,250" could be read two ways: refused beside the price, the form and the cover kept.
        fill([("input[name=title]", "The Browser Book"), ("input[name=author]", "Chromium Headless"),
              ("textarea[name=description]", "Bought and sold in a real browser."),
              ("input[name=price]", "1,250"), ("input[name=stock]", "3")])
        attach(cover)
        expect(b, lambda: j.text_of("#cover-error") == "", "a good cover clears the message")
        b.click("form.stack button")
        expect(b, lambda: "could be read two ways: 1,250 or 1.250" in (j.text_of("#price-error") or ""),
               "an ambiguous price is refused beside the field, saying how it was read")
        expect(b, lambda: b.js("return document.querySelector('#title').value") == "The Browser Book"
               and b.js("return document.querySelector('#description').value") == "Bought and sold in a real browser."
               and b.js("return document.querySelector('#price').getAttribute('aria-invalid')") == "true",
               "the form came back filled in, the price marked")
        expect(b, lambda: "The image you chose is kept" in b.text(), "the chosen cover is kept")
        j.check_page("sell-refused-price")
        b.type("input[name=price]", "12,50")
        b.click("form.stack button")
        expect(b, lambda: "/books/" in b.url() and "The Browser Book" in b.text(), "published")
        j.expect_flash("Your book is on sale at $12.50.", "publish with a decimal comma")
        expect(b, lambda: j.text_of(".book .price") == "$12.50", "the page shows the price as read")
        expect(b, lambda: b.js("const i = document.querySelector('.book img'); return i && i.complete && i.naturalWidth") == 300,
               "the kept cover is served and displayed")
        book_url = b.url()
        j.check_page("book-own")

        # Edit, then a second listing deleted through its confirmation.
        b.click("a[href$='/edit']")
        expect(b, lambda: "Edit your listing" in b.text(), "edit form")
        b.type("input[name=stock]", "4")
        b.click("form.stack button")
        j.expect_flash("Your changes are saved. The price is $12.50.", "edit")
        b.go(j.url("/sell"))
        fill([("input[name=title]", "A Book To Delete"), ("input[name=author]", "Nobody"),
              ("input[name=price]", "3"), ("input[name=stock]", "1")])
        b.click("form.stack button")
        j.expect_flash("Your book is on sale at $3.00.", "second listing")
        j.check_page("book-without-cover")
        b.click("a.button.danger[href$='/delete']")
        expect(b, lambda: "Delete “A Book To Delete”?" in b.text(), "Delete asks first")
        j.check_page("confirm-delete")
        b.click("form button.danger")
        j.expect_flash("The listing is deleted.", "delete")
        b.go(j.url("/sell"))
        fill([("input[name=title]", "A Jacket Without A Cover"), ("input[name=author]", "Anonymous"),
              ("input[name=price]", "1.250,00"), ("input[name=stock]", "1")])
        b.click("form.stack button")
        j.expect_flash("Your book is on sale at $1,250.00.", "a price with thousands, European style")
        b.go(j.url("/my/books"))
        j.check_page("my-books")
        log_out()

        # A buyer: Buy asks to log in and comes back to the book after registering.
        b.go(book_url)
        j.check_page("book-visitor")
        b.click("form[action$='/buy'] button")
        expect(b, lambda: "/login?next=%2Fbooks%2F" in b.url(), "Buy sends a visitor to log in")
        b.click("a[href^='/register?next=']")
        fill([("input[name=name]", "Bea Buyer"), ("input[name=email]", "bea@example.com"),
              ("input[name=password]", "correct horse battery")])
        b.click("form[action='/register'] button")
        expect(b, lambda: b.url() == book_url, "registered, back on the book")
        b.type("input[name=quantity]", "2")
        b.click("form[action$='/buy'] button")
        expect(b, lambda: "/orders/" in b.url() and "pending payment" in b.text().lower(), "ordered 2 copies")
        j.expect_flash("Your copies are reserved. Enter where to ship them, choose delivery and pay below.", "buy")
        order_url = b.url()
        expect(b, lambda: "$25.00" in b.text(), "the server computed the books' total")
        j.check_page("checkout")

        # Back to the book: the unpaid order is named, with its link; buying again, then cancelling.
        b.back()
        expect(b, lambda: "You already have an unpaid order of this book" in b.text(), "Back: the warning")
        expect(b, lambda: b.js("return document.querySelector('.warning a').getAttribute('href')") == order_url[len(base):],
               "the warning links to the unpaid order")
        j.check_page("book-unpaid-warning")
        b.click("form[action$='/buy'] button")
        expect(b, lambda: "/orders/" in b.url() and b.url() != order_url, "Buy again opens a second order")
        b.click("a[href$='/cancel']")
        expect(b, lambda: "Cancel order #" in b.text(), "Cancel asks first")
        j.check_page("confirm-cancel")
        b.click("form button.danger")
        j.expect_flash("The order is cancelled and its copies are back on sale.", "cancel")

        # Pay the first with an address.
        b.go(order_url)
        fill([("#ship_name", "Bea Buyer"), ("#ship_street", "12 Long Road"), ("#ship_city", "Bogotá"),
              ("#ship_postcode", "110111"), ("#ship_country", "Colombia")])
        b.click("input[name=provider][value='1']")
        b.click("input[name=method][value=card]")
        b.click("form[action$='/pay'] button")
        j.expect_flash("Payment received: $75.00. The seller ships your order next.", "pay")
        expect(b, lambda: "$75.00 by card" in b.text() and "Colombia" in b.text(), "the receipt: total and address")
        j.check_page("receipt")
        b.go(j.url("/orders"))
        expect(b, lambda: j.total_of(order_url[len(base):]) == "$75.00", "My orders: the same total")
        j.check_page("my-orders")
        log_out()

        # The seller: the same total, the order page with the address and the carrier, ships it.
        log_in("sam@example.com")
        b.go(j.url("/sales"))
        expect(b, lambda: j.total_of(order_url[len(base):]) == "$75.00" and "Bea Buyer" in b.text(),
               "My sales: the same total")
        j.check_page("my-sales")
        b.click(f"td a[href='{order_url[len(base):]}']")
        expect(b, lambda: "12 Long Road" in b.text() and "with DHL" in b.text(), "the seller's order page: address and carrier")
        j.check_page("seller-order")
        b.click("form[action$='/ship'] button")
        j.expect_flash("Marked as shipped: the buyer sees it in their orders.", "ship")
        b.go(j.url("/orders/999999"))
        expect(b, lambda: "Not found" in b.text() and "Sam Seller" in b.text() and "Go to my orders" in b.text(),
               "an error page keeps the menu and the way back")
        j.check_page("error-not-found")
        b.go(book_url)
        expect(b, lambda: "2 in stock" in b.text(), "stock went from 4 to 2")
        log_out()

        log_in("bea@example.com")
        b.go(order_url)
        expect(b, lambda: "Shipped" in b.text() and "On its way with DHL" in b.text(), "the buyer sees it shipped, with the carrier")
        j.check_page("order-shipped")

        b.go(j.url("/books"))
        expect(b, lambda: b.js("return getComputedStyle(document.querySelector('.card img')).objectFit") == "contain"
               and b.js("return !!document.querySelector('.card .nocover span')"),
               "the catalog shows whole covers, and a jacket with the title where there is none")
        expect(b, lambda: j.text_of(".results") == "2 books.", "the catalog says how many books it found")
        j.check_page("catalog")

        # Phone size: the menu behind a button, 44 px targets, Buy on the first screen.
        b.size(390, 844)
        b.go(j.url("/books"))
        expect(b, lambda: b.js("return getComputedStyle(document.querySelector('.bar nav')).display") == "none",
               "phone: the menu is collapsed")
        j.check_page("phone-catalog")
        b.click("label.menu-button")
        expect(b, lambda: b.js("return getComputedStyle(document.querySelector('.bar nav')).display") != "none",
               "phone: the Menu button opens it")
        small = b.js("return [...document.querySelectorAll('.bar nav a, .bar nav button, .menu-button')]"
                     ".filter(e => e.getBoundingClientRect().height < 44).map(e => e.innerText)")
        if small:
            raise SystemExit(f"FAILED: phone: targets under 44 px: {small}")
        print("ok: phone: every menu target is at least 44 px high")
        j.check_page("phone-menu-open")
        log_out()
        b.go(book_url)
        expect(b, lambda: b.js("const r = document.querySelector('form[action$=\"/buy\"] button').getBoundingClientRect();"
                               " return r.bottom <= window.innerHeight && r.top >= 0"),
               "phone: Buy is on the first screen")
        j.check_page("phone-book")
        print(f"browser journey ({engine}): passed, {j.pages} pages checked by axe-core and captured")
    finally:
        if browser:
            try:
                browser.quit()
            except SystemExit:
                pass
        if proxy:
            proxy.shutdown()
        for app in apps:
            app.terminate()
        for app in apps:
            try:
                app.wait(10)
            except subprocess.TimeoutExpired:
                app.kill()


def mysql_database(url, suffix=""):
    """A fresh database on the MariaDB server of `url` (mysql://user:pass@host:port); its URL."""
    rest = url[len("mysql://"):]
    creds, hostport = rest.rsplit("@", 1)
    user, password = creds.split(":", 1)
    host, port = hostport.split("/")[0].split(":")
    name = f"bs_journey_{os.getpid()}{suffix}"
    client = ["mariadb", "--protocol=tcp", "-h", host, "-P", port, "-u", user, f"-p{password}"]
    subprocess.run(client + ["-e", f"DROP DATABASE IF EXISTS {name}; CREATE DATABASE {name} CHARACTER SET utf8mb4"],
                   check=True)
    return f"{url.rstrip('/')}/{name}", lambda: subprocess.run(client + ["-e", f"DROP DATABASE IF EXISTS {name}"])


def main():
    app_binary = sys.argv[1]
    axe_path = os.environ.get("BOOKSTORE_TEST_AXE")
    if not axe_path or not os.path.exists(axe_path):
        raise SystemExit("BOOKSTORE_TEST_AXE must name axe.min.js: run scripts/test.sh (scripts/axe-core.py fetches it)")
    with open(axe_path) as f:
        axe_source = f.read()
    shots = os.environ.get("BOOKSTORE_SCREENSHOTS",
                           os.path.join(os.path.dirname(os.path.abspath(__file__)), "screenshots"))
    shutil.rmtree(shots, ignore_errors=True)
    os.makedirs(shots)
    driver_port = free_port()
    driver = subprocess.Popen(["chromedriver", f"--port={driver_port}"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_http(f"http://127.0.0.1:{driver_port}/status")
        driver_url = f"http://127.0.0.1:{driver_port}"
        mysql = os.environ.get("BOOKSTORE_TEST_MYSQL_URL")
        if not mysql:
            print("browser journey on MariaDB: skipped (BOOKSTORE_TEST_MYSQL_URL is not set)")
        # One process, then the split's three services behind their router; SQLite, then MariaDB.
        for label, start in (("", start_single), ("-split", start_split)):
            for engine in ("sqlite", "mariadb"):
                if engine == "mariadb" and not mysql:
                    continue
                work = tempfile.mkdtemp(prefix="bookstore-journey-")
                drops = []
                try:
                    urls = None
                    if engine == "mariadb":
                        made = [mysql_database(mysql, f"_{s}") for s in SERVICES]
                        urls = [u for u, _ in made]
                        drops = [d for _, d in made]
                    run(start, app_binary, urls, engine + label, work, driver_url, axe_source, shots)
                finally:
                    for drop in drops:
                        drop()
                    shutil.rmtree(work, ignore_errors=True)
        print(f"screenshots: {shots}")
    finally:
        driver.terminate()
        try:
            driver.wait(10)
        except subprocess.TimeoutExpired:
            driver.kill()


if __name__ == "__main__":
    main()
