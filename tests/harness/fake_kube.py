"""A fake Kubernetes API server per EKS cluster, as strict as the real one where bookstore uses it.

Each cluster the harness makes gets its own HTTPS server on loopback, with a certificate from the
harness's own CA (given to DescribeCluster as the cluster's CA). It accepts only a valid EKS token
for that cluster: `k8s-aws-v1.` + base64url of a presigned STS GetCallerIdentity URL — its form,
service, action, expiry, signed headers, and its SigV4 signature recomputed with the caller's
secret key and `x-k8s-aws-id: <this cluster>`, so a token for another cluster is refused. It
implements server-side apply for Namespaces, Secrets, Services and Deployments (the content type,
fieldManager, names and namespaces as the API server checks them), validates every object against
Kubernetes' OpenAPI schemas in strict mode (kubernetes-validate), keeps them, and reports a
Deployment's replicas available once its pending time has passed.
"""

import base64
import datetime
import hashlib
import hmac
import json
import ssl
import tempfile
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import kubernetes_validate
import yaml

KUBERNETES_VERSION = "1.35.0"
# The emulator's callers sign with these (the tests' AWS_SECRET_ACCESS_KEY).
SECRETS = {"test": "test"}
PENDING = {"seconds": 0.0}
# A test's switch: Jobs fail as a Job whose pods keep failing does (backoff limit reached).
JOB_FAILS = {"value": False}

_TLS = {}


def _tls_files():
    """The harness's CA and a server certificate for 127.0.0.1 it signed (made once)."""
    if _TLS:
        return _TLS
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    import ipaddress

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubernetes (bookstore harness)")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    folder = tempfile.mkdtemp(prefix="bookstore-kube-")
    cert_file = f"{folder}/server.pem"
    key_file = f"{folder}/server.key"
    with open(cert_file, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_file, "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    _TLS.update(
        cert=cert_file,
        key=key_file,
        ca_pem=ca.public_bytes(serialization.Encoding.PEM),
    )
    return _TLS


def ca_data():
    """The cluster CA as DescribeCluster gives it: base64 of the PEM."""
    return base64.b64encode(_tls_files()["ca_pem"]).decode()


def _sign(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def check_token(token, cluster, region):
    """None when `token` is a valid EKS token for `cluster`, else why not."""
    prefix = "k8s-aws-v1."
    if not token.startswith(prefix):
        return "not an EKS token (k8s-aws-v1.)"
    b64 = token[len(prefix):]
    if "=" in b64:
        return "the token's base64url must have no padding"
    try:
        url = base64.urlsafe_b64decode(b64 + "=" * (-len(b64) % 4)).decode()
    except Exception:
        return "the token is not base64url"
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "https" or parts.netloc not in (f"sts.{region}.amazonaws.com", "sts.amazonaws.com"):
        return f"the token is not for STS: {parts.scheme}://{parts.netloc}"
    if parts.path not in ("", "/"):
        return "the token's path must be /"
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    params = dict(query)
    if params.get("Action") != "GetCallerIdentity" or params.get("Version") != "2011-06-15":
        return "the token must presign GetCallerIdentity (2011-06-15)"
    if params.get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256":
        return "the token must be signed with SigV4"
    signed = params.get("X-Amz-SignedHeaders", "").split(";")
    if "x-k8s-aws-id" not in signed or "host" not in signed:
        return "the token must sign the host and x-k8s-aws-id headers"
    try:
        expires = int(params.get("X-Amz-Expires", "0"))
    except ValueError:
        return "X-Amz-Expires is not a number"
    if not 0 < expires <= 900:
        return "the token's presign expiry must be 1-900 seconds"
    amz_date = params.get("X-Amz-Date", "")
    try:
        signed_at = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)
    except ValueError:
        return "X-Amz-Date is malformed"
    age = (datetime.datetime.now(datetime.timezone.utc) - signed_at).total_seconds()
    if age > 15 * 60 or age < -300:
        return "the token has expired"
    credential = params.get("X-Amz-Credential", "").split("/")
    if len(credential) != 5 or credential[3] != "sts" or credential[4] != "aws4_request":
        return "the token's credential scope is not STS's"
    access_key, day, scope_region = credential[0], credential[1], credential[2]
    secret = SECRETS.get(access_key)
    if secret is None:
        return f"unknown access key {access_key}"
    canonical_query = "&".join(
        f"{urllib.parse.quote(k, safe='-_.~')}={urllib.parse.quote(v, safe='-_.~')}"
        for k, v in sorted((k, v) for k, v in query if k != "X-Amz-Signature")
    )
    headers = {"host": parts.netloc, "x-k8s-aws-id": cluster}
    canonical_headers = "".join(f"{h}:{headers.get(h, '')}\n" for h in signed)
    key = _sign(("AWS4" + secret).encode(), day)
    for part in (scope_region, "sts", "aws4_request"):
        key = _sign(key, part)
    for payload in (hashlib.sha256(b"").hexdigest(), "UNSIGNED-PAYLOAD"):
        canonical = "\n".join(["GET", "/", canonical_query, canonical_headers, ";".join(signed), payload])
        to_sign = "\n".join(
            ["AWS4-HMAC-SHA256", amz_date, f"{day}/{scope_region}/sts/aws4_request", hashlib.sha256(canonical.encode()).hexdigest()]
        )
        if hmac.compare_digest(hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest(), params.get("X-Amz-Signature", "")):
            return None
    return "the token's signature does not match (signed for another cluster?)"


ROUTES = {
    # (api prefix, plural) -> (apiVersion, kind, namespaced)
    ("/api/v1", "namespaces"): ("v1", "Namespace", False),
    ("/api/v1", "secrets"): ("v1", "Secret", True),
    ("/api/v1", "services"): ("v1", "Service", True),
    ("/api/v1", "persistentvolumes"): ("v1", "PersistentVolume", False),
    ("/api/v1", "persistentvolumeclaims"): ("v1", "PersistentVolumeClaim", True),
    ("/apis/apps/v1", "deployments"): ("apps/v1", "Deployment", True),
    ("/apis/batch/v1", "jobs"): ("batch/v1", "Job", True),
}


class Cluster:
    def __init__(self, name, region):
        self.name = name
        self.region = region
        self.objects = {}  # (kind, namespace, name) -> object
        self.lock = threading.Lock()
        self.requests = []
        tls = _tls_files()
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(tls["cert"], tls["key"])
        cluster = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                cluster.handle(self, "GET")

            def do_PATCH(self):
                cluster.handle(self, "PATCH")

            def do_DELETE(self):
                cluster.handle(self, "DELETE")

            def do_POST(self):
                cluster.handle(self, "POST")

            def do_PUT(self):
                cluster.handle(self, "PUT")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.endpoint = f"https://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    @staticmethod
    def status(code, reason, message):
        return code, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message, "reason": reason, "code": code}

    def handle(self, req, method):
        length = int(req.headers.get("Content-Length") or 0)
        body = req.rfile.read(length) if length else b""
        auth = req.headers.get("Authorization", "")
        why = check_token(auth[len("Bearer "):], self.name, self.region) if auth.startswith("Bearer ") else "no bearer token"
        if why:
            code, answer = self.status(401, "Unauthorized", why)
        else:
            with self.lock:
                code, answer = self.route(method, req.path, req.headers.get("Content-Type", ""), body)
        with self.lock:
            self.requests.append({"method": method, "path": req.path, "code": code})
        payload = json.dumps(answer).encode()
        req.send_response(code)
        req.send_header("Content-Type", "application/json")
        req.send_header("Content-Length", str(len(payload)))
        req.end_headers()
        req.wfile.write(payload)

    def parse(self, path):
        """(apiVersion, kind, namespaced, namespace, name) of an object's path, or None."""
        for (prefix, plural), (api, kind, namespaced) in ROUTES.items():
            if not path.startswith(prefix + "/"):
                continue
            rest = path[len(prefix) + 1:].split("/")
            if not namespaced and rest[:1] == [plural] and len(rest) == 2:
                return api, kind, False, None, rest[1]
            if namespaced and len(rest) == 4 and rest[0] == "namespaces" and rest[2] == plural:
                return api, kind, True, rest[1], rest[3]
        return None

    def route(self, method, raw_path, content_type, body):
        parts = urllib.parse.urlsplit(raw_path)
        query = dict(urllib.parse.parse_qsl(parts.query))
        path = parts.path
        if method == "GET" and path.endswith("/pods") and path.startswith("/api/v1/namespaces/"):
            return 200, {"kind": "PodList", "apiVersion": "v1", "items": self.pods(path.split("/")[4])}
        target = self.parse(path)
        if target is None:
            return self.status(404, "NotFound", f"the server could not find the requested resource ({path})")
        api, kind, namespaced, ns, name = target
        key = (kind, ns, name)
        if namespaced and ("Namespace", None, ns) not in self.objects and method == "PATCH":
            return self.status(404, "NotFound", f'namespaces "{ns}" not found')
        if method == "GET":
            obj = self.objects.get(key)
            if obj is None:
                return self.status(404, "NotFound", f'{kind.lower()}s "{name}" not found')
            return 200, self.with_status(obj)
        if method == "DELETE":
            if key not in self.objects:
                return self.status(404, "NotFound", f'{kind.lower()}s "{name}" not found')
            del self.objects[key]
            if kind == "Namespace":
                for k in [k for k in self.objects if k[1] == name]:
                    del self.objects[k]
            return 200, {"kind": "Status", "apiVersion": "v1", "status": "Success"}
        if method != "PATCH":
            return self.status(405, "MethodNotAllowed", f"{method} is not how bookstore talks to the API")
        if content_type != "application/apply-patch+yaml":
            return self.status(415, "UnsupportedMediaType", f"server-side apply needs application/apply-patch+yaml, not {content_type!r}")
        if not query.get("fieldManager"):
            return self.status(422, "Invalid", "fieldManager is required for apply requests")
        try:
            obj = yaml.safe_load(body)
        except yaml.YAMLError as e:
            return self.status(400, "BadRequest", f"the body is not YAML: {e}")
        if not isinstance(obj, dict):
            return self.status(400, "BadRequest", "the body is not an object")
        meta = obj.get("metadata") or {}
        if obj.get("apiVersion") != api or obj.get("kind") != kind:
            return self.status(400, "BadRequest", f"the object is {obj.get('apiVersion')}/{obj.get('kind')}, the path {api}/{kind}")
        if meta.get("name") != name:
            return self.status(400, "BadRequest", f"the name of the object ({meta.get('name')}) does not match the name on the URL ({name})")
        if namespaced and meta.get("namespace", ns) != ns:
            return self.status(400, "BadRequest", "the namespace of the object does not match the namespace on the URL")
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as e:
            return self.status(422, "Invalid", f"{kind} {name}: {e.message} at {'.'.join(str(p) for p in e.path)}")
        except Exception as e:  # noqa: BLE001 - anything else the validator refuses
            return self.status(422, "Invalid", f"{kind} {name}: {e}")
        old = self.objects.get(key)
        if kind == "Job" and old is not None and old["spec"].get("template") != obj.get("spec", {}).get("template"):
            # As the API server: a Job's pod template cannot change.
            return self.status(422, "Invalid", f'Job.batch "{name}" is invalid: spec.template: Invalid value: field is immutable')
        stored = json.loads(json.dumps(obj))
        stored.setdefault("metadata", {})
        if namespaced:
            stored["metadata"]["namespace"] = ns
        generation = 1
        if old is not None:
            generation = old["metadata"]["generation"] + (old.get("spec") != stored.get("spec"))
            stored["metadata"]["uid"] = old["metadata"]["uid"]
        else:
            stored["metadata"]["uid"] = hashlib.sha256(f"{self.name}/{key}/{time.time()}".encode()).hexdigest()[:36]
        stored["metadata"]["generation"] = generation
        stored["metadata"]["resourceVersion"] = str(int(time.time() * 1000))
        stored["_changed"] = time.time() if old is None or old.get("spec") != stored.get("spec") else old["_changed"]
        if kind == "Service" and stored["spec"].get("type") == "NodePort":
            used = {
                p.get("nodePort") for (k, _, _), o in self.objects.items() if k == "Service" and o is not old
                for p in o["spec"].get("ports", [])
            }
            for p in stored["spec"]["ports"]:
                if p.get("nodePort") in used:
                    return self.status(422, "Invalid", f"spec.ports.nodePort: provided port {p['nodePort']} is already allocated")
        if kind == "Job":
            # Its pods fail or not as the switch said when it was made; a failed Job stays so.
            stored["_fails"] = old["_fails"] if old is not None else JOB_FAILS["value"]
        self.objects[key] = stored
        return (200 if old is not None else 201), self.with_status(stored)

    def missing_secrets(self, obj):
        """The Secrets a pod template mounts that the namespace does not hold: its pods stay in
        ContainerCreating, as the kubelet leaves them."""
        ns = obj["metadata"].get("namespace")
        names = []
        for v in obj["spec"]["template"]["spec"].get("volumes", []):
            if "secret" in v:
                names.append(v["secret"].get("secretName"))
            for source in (v.get("projected") or {}).get("sources", []):
                if "secret" in source:
                    names.append(source["secret"].get("name"))
        return [n for n in names if ("Secret", ns, n) not in self.objects]

    def unbound_claims(self, obj):
        """The claims a pod template mounts that are not bound to a volume: its pods stay Pending."""
        ns = obj["metadata"].get("namespace")
        out = []
        for v in obj["spec"]["template"]["spec"].get("volumes", []):
            name = (v.get("persistentVolumeClaim") or {}).get("claimName")
            if name is None:
                continue
            claim = self.objects.get(("PersistentVolumeClaim", ns, name))
            volume = claim and self.objects.get(("PersistentVolume", None, claim["spec"].get("volumeName")))
            ref = (volume or {}).get("spec", {}).get("claimRef") or {}
            if not volume or ref.get("name") != name or ref.get("namespace") != ns:
                out.append(name)
        return out

    def pod_security(self, obj):
        """What the namespace's enforced pod security level refuses in a pod template (the
        `restricted` standard's checks, as the API server's admission makes them): the
        ReplicaSet's or Job's pods are then forbidden and never exist."""
        ns = self.objects.get(("Namespace", None, obj["metadata"].get("namespace"))) or {}
        level = ns.get("metadata", {}).get("labels", {}).get("pod-security.kubernetes.io/enforce")
        if level != "restricted":
            return []
        pod = obj["spec"]["template"]["spec"]
        why = []
        allowed = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"}
        for v in pod.get("volumes", []):
            kinds = set(v) - {"name"}
            if not kinds <= allowed:
                why.append(f'restricted volume types (volume "{v["name"]}" uses restricted volume type "{sorted(kinds - allowed)[0]}")')
        pod_ctx = pod.get("securityContext") or {}
        for c in pod.get("containers", []) + pod.get("initContainers", []):
            ctx = c.get("securityContext") or {}
            if ctx.get("allowPrivilegeEscalation") is not False:
                why.append(f'allowPrivilegeEscalation != false (container "{c["name"]}")')
            if "ALL" not in ((ctx.get("capabilities") or {}).get("drop") or []):
                why.append(f'unrestricted capabilities (container "{c["name"]}")')
            if not ctx.get("runAsNonRoot", pod_ctx.get("runAsNonRoot")):
                why.append(f'runAsNonRoot != true (container "{c["name"]}")')
            seccomp = (ctx.get("seccompProfile") or pod_ctx.get("seccompProfile") or {}).get("type")
            if seccomp not in ("RuntimeDefault", "Localhost"):
                why.append(f'seccompProfile (container "{c["name"]}")')
        return why

    def running(self, obj):
        return (time.time() - obj["_changed"] >= PENDING["seconds"] and not self.missing_secrets(obj)
                and not self.unbound_claims(obj) and not self.pod_security(obj))

    def with_status(self, obj):
        out = {k: v for k, v in obj.items() if k not in ("_changed", "_fails")}
        if obj.get("kind") == "Job":
            done = self.running(obj)
            if done and obj.get("_fails"):
                out["status"] = {"failed": obj["spec"].get("backoffLimit", 6) + 1, "conditions": [{
                    "type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                    "message": "Job has reached the specified backoff limit"}]}
            elif done:
                out["status"] = {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}
            else:
                out["status"] = {"active": 1}
        if obj.get("kind") == "Deployment":
            want = obj["spec"].get("replicas", 1)
            ready = self.running(obj)
            n = want if ready else 0
            out["status"] = {
                "observedGeneration": obj["metadata"]["generation"],
                "replicas": want,
                "updatedReplicas": n,
                "readyReplicas": n,
                "availableReplicas": n,
            }
            refused = self.pod_security(obj)
            if refused:
                out["status"]["conditions"] = [{
                    "type": "ReplicaFailure", "status": "True", "reason": "FailedCreate",
                    "message": f'pods "{obj["metadata"]["name"]}-x" is forbidden: violates PodSecurity "restricted:latest": ' + ", ".join(refused),
                }]
        return out

    def pods(self, ns):
        items = []
        for (kind, namespace, name), obj in self.objects.items():
            if kind != "Deployment" or namespace != ns:
                continue
            ready = self.running(obj)
            for i in range(obj["spec"].get("replicas", 1)):
                items.append({
                    "metadata": {"name": f"{name}-{obj['metadata']['generation']}-{i}", "namespace": ns,
                                 "labels": obj["spec"]["template"]["metadata"]["labels"]},
                    "spec": {"nodeName": f"node-{i % 2}"},
                    "status": {"phase": "Running" if ready else "Pending",
                               "containerStatuses": [{"name": "app", "ready": ready, "restartCount": 0}]},
                })
        return items

    def snapshot(self):
        with self.lock:
            return {
                "objects": [self.with_status(o) for o in self.objects.values()],
                "requests": list(self.requests),
            }
