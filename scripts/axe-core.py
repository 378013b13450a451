#!/usr/bin/env python3
"""Prints the path of axe-core's axe.min.js (Deque's accessibility engine, which the browser journey
runs on every page), fetched once from the npm registry into .axe-core/ and checked against the
registry's published sha512 before use. Standard library only: no Node.js needed."""

import base64
import hashlib
import io
import os
import sys
import tarfile
import urllib.request

VERSION = "4.14.1"
URL = f"https://registry.npmjs.org/axe-core/-/axe-core-{VERSION}.tgz"
INTEGRITY = "sha512-FHfa+lmNjQZfJz1q8wKqIDwC6DExcHt/pkjNQb09a3NPjCKg2rhu5qb2S4r76ASyFNNtuFooJpZe37OgudVGtQ=="

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".axe-core", VERSION)
target = os.path.normpath(os.path.join(root, "axe.min.js"))
if not os.path.exists(target):
    with urllib.request.urlopen(URL, timeout=120) as r:
        data = r.read()
    digest = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
    if digest != INTEGRITY:
        sys.exit(f"axe-core {VERSION}: the download's sha512 is {digest}, not the pinned {INTEGRITY}")
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        script = tar.extractfile("package/axe.min.js").read()
    os.makedirs(root, exist_ok=True)
    with open(target + ".tmp", "wb") as f:
        f.write(script)
    os.replace(target + ".tmp", target)
print(target)
