#!/usr/bin/env python3
"""The whole BookStore journey in a real browser: Debian's headless Chromium driven over the W3C
WebDriver protocol (chromedriver), with nothing but the standard library.

    journey.py APP_BINARY

Starts APP_BINARY (the release build) on SQLite in a temporary directory and chromedriver on free
loopback ports, then: register a seller, publish a book with a cover uploaded through the file
input, log out, register a buyer, buy, pay, log out, the seller ships, and both histories show it.
Cookies, CSRF tokens, redirects and the multipart upload go through the browser, as people use them.
Exits non-zero with the step that failed and the page it was on.
"""

import base64
import json
import os
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

    def js(self, script):
        return self.s("POST", "/execute/sync", {"script": script, "args": []})

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


def main():
    app_binary = sys.argv[1]
    work = tempfile.mkdtemp(prefix="bookstore-journey-")
    app_port, driver_port = free_port(), free_port()
    base = f"http://127.0.0.1:{app_port}"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "BOOKSTORE_ADDR": f"127.0.0.1:{app_port}",
           "BOOKSTORE_DATA_DIR": f"{work}/data", "BOOKSTORE_LOG": "warn", "NO_COLOR": "1"}
    app = subprocess.Popen([app_binary], env=env, stdout=subprocess.DEVNULL)
    driver = subprocess.Popen(["chromedriver", f"--port={driver_port}"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    browser = None
    try:
        wait_http(f"{base}/healthz")
        wait_http(f"http://127.0.0.1:{driver_port}/status")
        browser = Browser(f"http://127.0.0.1:{driver_port}")
        cover = os.path.join(work, "cover.png")
        with open(cover, "wb") as f:
            f.write(PNG)

        def register(name, email):
            browser.go(f"{base}/register")
            browser.type("input[name=name]", name)
            browser.type("input[name=email]", email)
            browser.type("input[name=password]", "correct horse battery")
            browser.click("form[action='/register'] button")
            expect(browser, lambda: "Log out" in browser.text(), f"{name} registered and is logged in")

        def log_in(email):
            browser.go(f"{base}/login")
            browser.type("input[name=email]", email)
            browser.type("input[name=password]", "correct horse battery")
            browser.click("form[action='/login'] button")
            expect(browser, lambda: "Log out" in browser.text(), f"{email} logged in")

        def log_out():
            browser.click("form[action='/logout'] button")
            expect(browser, lambda: "Log in" in browser.text(), "logged out")

        register("Sam Seller", "sam@example.com")
        browser.go(f"{base}/sell")
        browser.type("input[name=title]", "The Browser Book")
        browser.type("input[name=author]", "Chromium Headless")
        browser.type("textarea[name=description]", "Bought and sold in a real browser.")
        browser.type("input[name=price]", "12.50")
        browser.type("input[name=stock]", "3")
        browser.s("POST", f"/element/{browser.find('input[name=cover]')}/value", {"text": cover})
        browser.click("form.stack button")
        expect(browser, lambda: "/books/" in browser.url() and "The Browser Book" in browser.text(), "published")
        book_url = browser.url()
        expect(browser, lambda: browser.js("const i = document.querySelector('article img'); return i && i.complete && i.naturalWidth") == 1, "the uploaded cover is served and displayed")
        log_out()

        register("Bea Buyer", "bea@example.com")
        browser.go(book_url)
        browser.type("input[name=quantity]", "2")
        browser.click("form[action$='/buy'] button")
        expect(browser, lambda: "/orders/" in browser.url() and "pending payment" in browser.text(), "ordered 2 copies")
        expect(browser, lambda: "$25.00" in browser.text(), "the server computed the total")
        browser.click("input[name=provider]")
        browser.click("input[name=method][value=card]")
        browser.click("form[action$='/pay'] button")
        expect(browser, lambda: "paid" in browser.text() and "the seller ships it next" in browser.text(), "paid")
        log_out()

        log_in("sam@example.com")
        browser.go(f"{base}/sales")
        expect(browser, lambda: "Bea Buyer" in browser.text(), "the sale is in the seller's history")
        browser.click("form[action$='/ship'] button")
        expect(browser, lambda: "shipped" in browser.text() and "Mark as shipped" not in browser.text(), "the seller shipped")
        browser.go(book_url)
        expect(browser, lambda: "1 in stock" in browser.text(), "stock went from 3 to 1")
        log_out()

        log_in("bea@example.com")
        browser.go(f"{base}/orders")
        expect(browser, lambda: "The Browser Book" in browser.text() and "shipped" in browser.text(),
               "the buyer's history shows the order shipped")
        print("browser journey: passed")
    finally:
        if browser:
            try:
                browser.quit()
            except SystemExit:
                pass
        for p in (driver, app):
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
