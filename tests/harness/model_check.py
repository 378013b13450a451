"""Every request checked against AWS's own API models and documented limits, before moto sees it.

moto accepts much that AWS refuses (a 19 KB user data, a 40-character load balancer name, a tag
key with `aws:`). The spec here is what AWS publishes: the botocore service models that moto
installs (`service-2.json`: required members, enums, lengths, patterns, ranges, list sizes, the
members that exist) and the limits AWS documents but the models do not carry (LIMITS below).

A request is read back from its wire format (ec2 and query form fields, JSON, rest-json, rest-xml)
into the operation's input shape, then checked. `check()` returns the violations; the harness
answers the first one as AWS would (its error code and message) and records all of them, and the
test world fails any test whose emulator saw one.
"""

import base64
import json
import re
import urllib.parse
import xml.etree.ElementTree as ET

import botocore.loaders

_LOADER = botocore.loaders.Loader()
_MODELS = {}
_PATTERNS = {}

# Signing names (the credential scope) to botocore's service names.
SIGNING = {
    "ec2": "ec2",
    "autoscaling": "autoscaling",
    "rds": "rds",
    "elasticfilesystem": "efs",
    "acm": "acm",
    "ssm": "ssm",
    "secretsmanager": "secretsmanager",
    "tagging": "resourcegroupstaggingapi",
    "s3": "s3",
    "sts": "sts",
    "iam": "iam",
    "ecr": "ecr",
    "eks": "eks",
}

# The error code each service gives a request that breaks its model.
INVALID_CODE = {
    "ec2": "InvalidParameterValue",
    "rds": "InvalidParameterValue",
    "elbv2": "ValidationError",
    "autoscaling": "ValidationError",
    "iam": "ValidationError",
    "sts": "ValidationError",
    "efs": "BadRequest",
    "s3": "InvalidArgument",
}
MISSING_CODE = {"ec2": "MissingParameter", "rds": "MissingParameter"}
UNKNOWN_CODE = {"ec2": "UnknownParameter"}


class Violation:
    def __init__(self, service, action, rule, message, code=None, status=400):
        self.protocol = "json"
        self.service = service
        self.action = action
        self.rule = rule
        self.message = message
        self.code = code or INVALID_CODE.get(service, "ValidationException")
        self.status = status

    def as_dict(self):
        return {
            "service": self.service,
            "action": self.action,
            "rule": self.rule,
            "code": self.code,
            "message": self.message,
        }


def model(service):
    if service not in _MODELS:
        _MODELS[service] = _LOADER.load_service_model(service, "service-2")
    return _MODELS[service]


def shape_of(m, name):
    return m["shapes"][name]


# ---------------------------------------------------------------------------------------------
# Reading requests back into the input shape
# ---------------------------------------------------------------------------------------------


class QueryReader:
    """The ec2 and query protocols: flat form fields (`Tag.1.Key`, `Subnets.member.1`)."""

    def __init__(self, m, params, ec2):
        self.m = m
        self.params = params
        self.ec2 = ec2
        self.used = set()

    def name(self, member, default):
        if self.ec2:
            if "queryName" in member:
                return member["queryName"]
            if "locationName" in member:
                n = member["locationName"]
                return n[0].upper() + n[1:]
            return default[0].upper() + default[1:]
        return member.get("locationName", default)

    def has_prefix(self, prefix):
        p = prefix + "."
        return any(k == prefix or k.startswith(p) for k in self.params)

    def read(self, shape_name, prefix):
        shape = shape_of(self.m, shape_name)
        t = shape["type"]
        if t == "structure":
            out = {}
            for key, member in shape.get("members", {}).items():
                name = self.name(member, key)
                p = f"{prefix}.{name}" if prefix else name
                if self.has_prefix(p):
                    out[key] = self.read(member["shape"], p)
            return out
        if t == "list":
            member = shape["member"]
            if prefix in self.params and self.params[prefix] == "":
                self.used.add(prefix)
                return []
            if self.ec2:
                base = prefix
            elif shape.get("flattened"):
                base = prefix
                if "locationName" in member:
                    base = ".".join(prefix.split(".")[:-1] + [member["locationName"]])
            else:
                base = f"{prefix}.{member.get('locationName', 'member')}"
            indices = set()
            rx = re.compile(re.escape(base) + r"\.(\d+)(?:\.|$)")
            for k in self.params:
                mt = rx.match(k)
                if mt:
                    indices.add(int(mt.group(1)))
            return [self.read(member["shape"], f"{base}.{i}") for i in sorted(indices)]
        if t == "map":
            base = prefix if shape.get("flattened") else f"{prefix}.entry"
            kname = shape["key"].get("locationName", "key")
            vname = shape["value"].get("locationName", "value")
            rx = re.compile(re.escape(base) + r"\.(\d+)\.")
            out = {}
            for i in sorted({int(mt.group(1)) for k in self.params if (mt := rx.match(k))}):
                k = self.read(shape["key"]["shape"], f"{base}.{i}.{kname}")
                out[k] = self.read(shape["value"]["shape"], f"{base}.{i}.{vname}")
            return out
        self.used.add(prefix)
        return self.params.get(prefix)

    def unknown(self):
        return sorted(k for k in self.params if k not in self.used and k not in ("Action", "Version"))


def _json_members(m, members, value, path, unknown):
    """A JSON object by wire names (jsonName/locationName) back into member names; a name the
    model does not have goes to `unknown`."""
    by_wire = {mm.get("jsonName", mm.get("locationName", k)): k for k, mm in members.items()}
    out = {}
    for k, v in value.items():
        if k not in by_wire:
            unknown.append(f"{path}.{k}" if path else k)
            continue
        key = by_wire[k]
        out[key] = _json_read(m, members[key]["shape"], v, f"{path}.{key}" if path else key, unknown)
    return out


def _json_read(m, shape_name, value, path, unknown):
    shape = shape_of(m, shape_name)
    t = shape["type"]
    if t == "structure" and isinstance(value, dict):
        return _json_members(m, shape.get("members", {}), value, path, unknown)
    if t == "list" and isinstance(value, list):
        return [_json_read(m, shape["member"]["shape"], v, f"{path}[{i}]", unknown) for i, v in enumerate(value)]
    if t == "map" and isinstance(value, dict):
        return {k: _json_read(m, shape["value"]["shape"], v, f"{path}.{k}", unknown) for k, v in value.items()}
    return value


def _xml_read(m, shape_name, elem):
    shape = shape_of(m, shape_name)
    t = shape["type"]
    local = lambda e: e.tag.split("}")[-1]  # noqa: E731
    if t == "structure":
        out = {}
        members = shape.get("members", {})
        for key, member in members.items():
            if member.get("location"):
                continue
            name = member.get("locationName", key)
            mshape = shape_of(m, member["shape"])
            if mshape["type"] == "list" and mshape.get("flattened"):
                name = mshape["member"].get("locationName", name)
                items = [c for c in elem if local(c) == name]
                if items:
                    out[key] = [_xml_read(m, mshape["member"]["shape"], c) for c in items]
                continue
            child = next((c for c in elem if local(c) == name), None)
            if child is not None:
                out[key] = _xml_read(m, member["shape"], child)
        return out
    if t == "list":
        name = shape["member"].get("locationName", "member")
        return [_xml_read(m, shape["member"]["shape"], c) for c in elem if local(c) == name]
    return elem.text or ""


def _uri_match(m, op, method, path, query, headers):
    http = op["http"]
    if http["method"] != method:
        return None
    # Operations on one path told apart by a header or query parameter they require (CopyObject's
    # x-amz-copy-source, AbortMultipartUpload's uploadId).
    shape = shape_of(m, op["input"]["shape"]) if op.get("input") else {}
    for req in shape.get("required", []):
        member = shape["members"][req]
        if member.get("location") == "header" and member.get("locationName", req).lower() not in headers:
            return None
        if member.get("location") == "querystring" and member.get("locationName", req) not in query:
            return None
    uri, _, literal = http["requestUri"].partition("?")
    wanted = dict(urllib.parse.parse_qsl(literal, keep_blank_values=True)) if literal else {}
    for k, v in wanted.items():
        if k == "x-id":  # the SDKs' operation hint: AWS routes without it
            if k in query and query[k] != v:
                return None
            continue
        if k not in query or (v and query[k] != v):
            return None
    regex = ""
    labels = []
    for part in re.split(r"(\{[^}]+\})", uri):
        if part.startswith("{"):
            name = part[1:-1]
            greedy = name.endswith("+")
            name = name.rstrip("+")
            labels.append(name)
            regex += "(.+)" if greedy else "([^/]+)"
        else:
            regex += re.escape(part)
    mt = re.fullmatch(regex, path)
    if mt is None and len(path) > 1 and path.endswith("/"):
        mt = re.fullmatch(regex, path.rstrip("/"))
    if mt is None:
        return None
    score = sum(1 for k in wanted if k != "x-id" or k in query)
    values = {n: urllib.parse.unquote(v) for n, v in zip(labels, mt.groups())}
    return score, len(uri), values


def _rest_read(m, op, labels, query, headers, body, xml):
    shape_name = op.get("input", {}).get("shape")
    if not shape_name:
        return {}, []
    shape = shape_of(m, shape_name)
    out = {}
    unknown = []
    payload = shape.get("payload")
    body_members = {}
    for key, member in shape.get("members", {}).items():
        loc = member.get("location")
        name = member.get("locationName", key)
        if loc == "uri":
            if name in labels:
                out[key] = labels[name]
        elif loc == "querystring":
            mshape = shape_of(m, member["shape"])
            if mshape["type"] == "map":
                continue
            if name in query:
                out[key] = query[name] if mshape["type"] != "list" else query[name].split(",")
        elif loc == "header":
            if name.lower() in headers:
                out[key] = headers[name.lower()]
        elif loc == "headers":
            continue
        elif key != payload:
            body_members[key] = member
    if payload:
        member = shape["members"][payload]
        pshape = shape_of(m, member["shape"])
        if pshape["type"] == "structure" and body:
            if xml:
                try:
                    out[payload] = _xml_read(m, member["shape"], ET.fromstring(body))
                except ET.ParseError:
                    unknown.append(f"{payload}: not XML")
            else:
                out[payload] = _json_read(m, member["shape"], json.loads(body), payload, unknown)
        elif pshape["type"] != "structure":
            out[payload] = body
    elif body_members and body and not xml:
        out.update(_json_members(m, body_members, json.loads(body), "", unknown))
    return out, unknown


def read_request(service_signing, environ, body):
    """(service, action, protocol, input dict, unknown parameters) or None when it is not an AWS call."""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    query_string = environ.get("QUERY_STRING", "")
    raw_query = dict(urllib.parse.parse_qsl(query_string, keep_blank_values=True))
    scope = re.search(r"Credential=[^/]+/\d{8}/([a-z0-9-]+)/([a-z0-9-]+)/aws4_request", auth)
    if scope is None and "X-Amz-Credential" in raw_query:
        parts = raw_query["X-Amz-Credential"].split("/")
        scope_service = parts[3] if len(parts) > 3 else ""
    else:
        scope_service = scope.group(2) if scope else ""
    signing = service_signing or scope_service
    target = environ.get("HTTP_X_AMZ_TARGET")
    method = environ.get("REQUEST_METHOD", "GET")
    if signing == "elasticloadbalancing":
        form = dict(urllib.parse.parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        version = form.get("Version") or raw_query.get("Version")
        service = "elbv2" if version == "2015-12-01" else "elb"
    else:
        service = SIGNING.get(signing)
    if service is None:
        return None
    m = model(service)
    protocol = m["metadata"]["protocol"]
    if target:
        action = target.split(".")[-1]
        op = m["operations"].get(action)
        if op is None:
            return service, action, "json", None, [f"no operation {action}"]
        data = json.loads(body or b"{}")
        shape = op.get("input", {}).get("shape")
        unknown = []
        if shape:
            data = _json_read(m, shape, data, "", unknown)
        return service, action, "json", (shape, data), unknown
    if protocol in ("ec2", "query"):
        form = urllib.parse.parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        params = dict(urllib.parse.parse_qsl(query_string, keep_blank_values=True))
        params.update(dict(form))
        action = params.get("Action", "")
        op = m["operations"].get(action)
        if op is None:
            return service, action or "?", protocol, None, [f"The action {action} is not valid for this web service."]
        shape = op.get("input", {}).get("shape")
        if not shape:
            return service, action, protocol, (None, {}), []
        reader = QueryReader(m, params, protocol == "ec2")
        data = reader.read(shape, "")
        return service, action, protocol, (shape, data), reader.unknown()
    if protocol in ("rest-json", "rest-xml"):
        path = environ.get("PATH_INFO", "/")
        headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
        if "CONTENT_TYPE" in environ:
            headers["content-type"] = environ["CONTENT_TYPE"]
        if "CONTENT_LENGTH" in environ:
            headers["content-length"] = environ["CONTENT_LENGTH"]
        best = None
        for name, op in m["operations"].items():
            found = _uri_match(m, op, method, path, raw_query, headers)
            if found and (best is None or found[:2] > best[0][:2]):
                best = (found, name, op)
        if best is None:
            return service, f"{method} {path}", protocol, None, [f"no operation for {method} {path}"]
        (_, _, labels), action, op = best
        xml = protocol == "rest-xml"
        payload = body
        if not xml and not op.get("input"):
            payload = b""
        # S3 objects are bodies, not documents; only structured payloads are read.
        data, unknown = _rest_read(m, op, labels, raw_query, headers, payload, xml)
        return service, action, protocol, (op.get("input", {}).get("shape"), data), unknown
    return None


# ---------------------------------------------------------------------------------------------
# The model's constraints
# ---------------------------------------------------------------------------------------------


def _pattern(p):
    """The models write Java regexes: the supplementary planes as UTF-16 surrogate pairs, and
    Unicode classes (\\p{L}) that only the `regex` module reads. What neither reads is skipped
    (and counted by tests/harness.rs)."""
    if p not in _PATTERNS:
        text = p.replace("\\uD800\\uDC00-\\uDBFF\\uDFFF", "\\U00010000-\\U0010FFFF")
        compiled = None
        try:
            compiled = re.compile(text)
        except re.error:
            try:
                import regex

                compiled = regex.compile(text)
            except Exception:  # regex.error, or the module missing
                compiled = None
        _PATTERNS[p] = compiled
    return _PATTERNS[p]


def _fmt(value):
    text = str(value)
    return text if len(text) <= 80 else text[:77] + "..."


def validate(m, shape_name, value, path, out):
    """Appends (rule, message, missing) for every constraint of the shape the value breaks."""
    shape = shape_of(m, shape_name)
    t = shape["type"]
    if t == "structure":
        if not isinstance(value, dict):
            return
        for req in shape.get("required", []):
            if req not in value or value[req] is None:
                out.append(("model:required", f"Value null at '{path + '.' if path else ''}{req}' failed to satisfy constraint: Member must not be null", True))
        for key, v in value.items():
            member = shape["members"].get(key)
            if member is not None and v is not None:
                validate(m, member["shape"], v, f"{path}.{key}" if path else key, out)
        return
    if t == "list":
        if not isinstance(value, list):
            return
        if "min" in shape and len(value) < shape["min"]:
            out.append(("model:length", f"Value at '{path}' failed to satisfy constraint: Member must have length greater than or equal to {shape['min']}", False))
        if "max" in shape and len(value) > shape["max"]:
            out.append(("model:length", f"Value at '{path}' failed to satisfy constraint: Member must have length less than or equal to {shape['max']}", False))
        for i, v in enumerate(value):
            validate(m, shape["member"]["shape"], v, f"{path}.{i + 1}", out)
        return
    if t == "map":
        if not isinstance(value, dict):
            return
        if "max" in shape and len(value) > shape["max"]:
            out.append(("model:length", f"Value at '{path}' failed to satisfy constraint: Member must have length less than or equal to {shape['max']}", False))
        for k, v in value.items():
            validate(m, shape["key"]["shape"], k, f"{path}.key", out)
            validate(m, shape["value"]["shape"], v, f"{path}.{k}", out)
        return
    if t == "string":
        if not isinstance(value, str):
            value = str(value)
        if "enum" in shape and value not in shape["enum"]:
            out.append(("model:enum", f"Value '{_fmt(value)}' at '{path}' failed to satisfy constraint: Member must satisfy enum value set: [{', '.join(shape['enum'][:12])}{', ...' if len(shape['enum']) > 12 else ''}]", False))
        if "min" in shape and len(value) < shape["min"]:
            out.append(("model:length", f"Value '{_fmt(value)}' at '{path}' failed to satisfy constraint: Member must have length greater than or equal to {shape['min']}", False))
        if "max" in shape and len(value) > shape["max"]:
            out.append(("model:length", f"Value '{_fmt(value)}' at '{path}' failed to satisfy constraint: Member must have length less than or equal to {shape['max']}", False))
        if "pattern" in shape:
            rx = _pattern(shape["pattern"])
            if rx is not None and rx.search(value) is None:
                out.append(("model:pattern", f"Value '{_fmt(value)}' at '{path}' failed to satisfy constraint: Member must satisfy regular expression pattern: {shape['pattern']}", False))
        return
    if t in ("integer", "long"):
        try:
            n = int(value) if not isinstance(value, bool) else None
        except (TypeError, ValueError):
            n = None
        if n is None:
            out.append(("model:type", f"Value '{_fmt(value)}' at '{path}' is not a valid integer", False))
            return
        if "min" in shape and n < shape["min"]:
            out.append(("model:range", f"Value '{n}' at '{path}' failed to satisfy constraint: Member must have value greater than or equal to {shape['min']}", False))
        if "max" in shape and n > shape["max"]:
            out.append(("model:range", f"Value '{n}' at '{path}' failed to satisfy constraint: Member must have value less than or equal to {shape['max']}", False))
        return
    if t in ("double", "float"):
        try:
            float(value)
        except (TypeError, ValueError):
            out.append(("model:type", f"Value '{_fmt(value)}' at '{path}' is not a number", False))
        return
    if t == "boolean":
        if not isinstance(value, bool) and str(value) not in ("true", "false"):
            out.append(("model:type", f"Value '{_fmt(value)}' at '{path}' is not a boolean", False))
        return


# ---------------------------------------------------------------------------------------------
# What AWS documents but the models do not carry
# ---------------------------------------------------------------------------------------------

USER_DATA_MAX = 16384
ELB_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,30}[A-Za-z0-9])?$")
RDS_ID = re.compile(r"^[A-Za-z](?:[A-Za-z0-9-]{0,62})$")
SG_TEXT = re.compile(r"^[A-Za-z0-9 ._\-:/()#,@\[\]+=&;{}!$*]*$")
LT_NAME = re.compile(r"^[A-Za-z0-9().\-/_]{3,128}$")
# The Application Load Balancer's predefined security policies (AWS's "Security policies for your
# Application Load Balancer" page); it has no custom ones.
ELB_SSL_POLICIES = {
    "ELBSecurityPolicy-TLS13-1-2-Res-PQ-2025-09", "ELBSecurityPolicy-TLS13-1-2-Res-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-PQ-2025-09", "ELBSecurityPolicy-TLS13-1-2-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-Ext0-PQ-2025-09", "ELBSecurityPolicy-TLS13-1-2-Ext1-PQ-2025-09",
    "ELBSecurityPolicy-TLS13-1-2-Ext2-PQ-2025-09", "ELBSecurityPolicy-TLS13-1-2-Ext1-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-Ext2-2021-06", "ELBSecurityPolicy-TLS13-1-1-2021-06",
    "ELBSecurityPolicy-TLS13-1-0-2021-06", "ELBSecurityPolicy-TLS13-1-3-2021-06",
    "ELBSecurityPolicy-TLS13-1-3-PQ-2025-09", "ELBSecurityPolicy-TLS13-1-2-FIPS-2023-04",
    "ELBSecurityPolicy-TLS13-1-2-Res-FIPS-2023-04", "ELBSecurityPolicy-TLS13-1-2-Ext0-FIPS-2023-04",
    "ELBSecurityPolicy-TLS13-1-2-Ext1-FIPS-2023-04", "ELBSecurityPolicy-TLS13-1-2-Ext2-FIPS-2023-04",
    "ELBSecurityPolicy-TLS13-1-1-FIPS-2023-04", "ELBSecurityPolicy-TLS13-1-0-FIPS-2023-04",
    "ELBSecurityPolicy-TLS13-1-3-FIPS-2023-04", "ELBSecurityPolicy-TLS13-1-2-FIPS-PQ-2025-09",
    "ELBSecurityPolicy-TLS13-1-2-Res-FIPS-PQ-2025-09", "ELBSecurityPolicy-TLS13-1-3-FIPS-PQ-2025-09",
    "ELBSecurityPolicy-2016-08", "ELBSecurityPolicy-TLS-1-0-2015-04", "ELBSecurityPolicy-TLS-1-1-2017-01",
    "ELBSecurityPolicy-TLS-1-2-2017-01", "ELBSecurityPolicy-TLS-1-2-Ext-2018-06",
    "ELBSecurityPolicy-FS-2018-06", "ELBSecurityPolicy-FS-1-1-2019-08", "ELBSecurityPolicy-FS-1-2-2019-08",
    "ELBSecurityPolicy-FS-1-2-Res-2019-08", "ELBSecurityPolicy-FS-1-2-Res-2020-10",
    "ELBSecurityPolicy-2015-05",
}
IPV4 = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")


def _user_data(value, what):
    if value is None:
        return []
    try:
        raw = base64.b64decode(value, validate=True)
    except ValueError:
        return [("limit:user-data", f"Invalid BASE64 encoding of user data ({what})", "InvalidUserData.Malformed")]
    if len(raw) > USER_DATA_MAX:
        return [("limit:user-data", f"User data is limited to {USER_DATA_MAX} bytes ({what} has {len(raw)} bytes before base64)", None)]
    return []


TAG_MEMBERS = ("tags", "tag", "tagset", "taglist")


def _tag_lists(m, shape_name, value, path, found):
    """Every list of {Key, Value} structures and every tag map in the input."""
    if value is None:
        return
    shape = shape_of(m, shape_name)
    t = shape["type"]
    if t == "structure" and isinstance(value, dict):
        for key, v in value.items():
            member = shape["members"].get(key)
            if member is None or v is None:
                continue
            at = f"{path}.{key}" if path else key
            mshape = shape_of(m, member["shape"])
            if key.lower() in TAG_MEMBERS and mshape["type"] == "map" and isinstance(v, dict):
                found.append((at, list(v.items())))
                continue
            if key.lower() in TAG_MEMBERS and mshape["type"] == "list" and isinstance(v, list):
                item = shape_of(m, mshape["member"]["shape"])
                names = {k.lower(): k for k in item.get("members", {})}
                if item["type"] == "structure" and "key" in names and "value" in names:
                    found.append((at, [(e.get(names["key"]), e.get(names["value"])) for e in v if isinstance(e, dict)]))
                    continue
            _tag_lists(m, member["shape"], v, at, found)
    elif t == "list" and isinstance(value, list):
        for i, v in enumerate(value):
            _tag_lists(m, shape["member"]["shape"], v, f"{path}.{i + 1}", found)


def check_tags(m, shape_name, data):
    found = []
    _tag_lists(m, shape_name, data, "", found)
    out = []
    for path, pairs in found:
        if len(pairs) > 50:
            out.append(("limit:tags-count", f"'{path}' has {len(pairs)} tags; a resource takes at most 50", "TagLimitExceeded"))
        for k, v in pairs:
            k = k or ""
            v = v if v is not None else ""
            if len(k) > 128:
                out.append(("limit:tag-key", f"Tag key '{_fmt(k)}' at '{path}' is longer than 128 characters", None))
            if len(v) > 256:
                out.append(("limit:tag-value", f"Tag value '{_fmt(v)}' of '{k}' at '{path}' is longer than 256 characters", None))
            if k.lower().startswith("aws:"):
                out.append(("limit:tag-aws-prefix", f"Tag key '{k}' at '{path}': the aws: prefix is reserved for AWS use", None))
    return out


def check_bucket_name(name):
    problems = []
    if not 3 <= len(name) <= 63:
        problems.append("must be 3 to 63 characters long")
    if not re.fullmatch(r"[a-z0-9.-]+", name):
        problems.append("may hold only lower-case letters, digits, dots and hyphens")
    if not re.match(r"^[a-z0-9].*[a-z0-9]$|^[a-z0-9]$", name):
        problems.append("must begin and end with a letter or digit")
    if ".." in name or ".-" in name or "-." in name:
        problems.append("must not have two adjacent periods or a period next to a hyphen")
    if IPV4.match(name):
        problems.append("must not be formatted as an IP address")
    for prefix in ("xn--", "sthree-", "amzn-s3-demo-"):
        if name.startswith(prefix):
            problems.append(f"must not start with {prefix}")
    for suffix in ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"):
        if name.endswith(suffix):
            problems.append(f"must not end with {suffix}")
    return problems


# ALB path patterns: what the Elastic Load Balancing guide allows in a value.
PATH_PATTERN = re.compile(r"[A-Za-z0-9_.$/~\"'@:+&*?-]{1,128}")


def _rule_conditions(conditions):
    """A rule's conditions against the ALB quotas: 5 condition values and 5 wildcards per rule,
    path patterns of at most 128 characters from the allowed set."""
    out = []
    values = []
    for c in conditions:
        values += [("", v) for v in c.get("Values") or []]
        for config in ("HostHeaderConfig", "PathPatternConfig", "HttpRequestMethodConfig", "SourceIpConfig"):
            values += [(c.get("Field"), v) for v in (c.get(config) or {}).get("Values") or []]
        if c.get("Field") == "path-pattern":
            for v in (c.get("PathPatternConfig") or {}).get("Values") or c.get("Values") or []:
                if not PATH_PATTERN.fullmatch(v):
                    out.append(("limit:rule-path-pattern", f"Path pattern '{_fmt(v)}' must be 1 to 128 characters of A-Z a-z 0-9 _ - . $ / ~ \" ' @ : + & * ?", None))
    if len(values) > 5:
        out.append(("limit:rule-values", f"A rule can have at most 5 condition values, not {len(values)}", "TooManyConditionValues"))
    wildcards = sum(str(v).count("*") + str(v).count("?") for _, v in values)
    if wildcards > 5:
        out.append(("limit:rule-wildcards", f"A rule can have at most 5 wildcards, not {wildcards}", None))
    return out


def check_limits(service, action, data):
    """The documented limits: (rule, message, code or None)."""
    out = []
    d = data or {}
    if service == "ec2":
        if action == "RunInstances":
            out += _user_data(d.get("UserData"), "RunInstances")
        if action in ("CreateLaunchTemplate", "CreateLaunchTemplateVersion"):
            out += _user_data((d.get("LaunchTemplateData") or {}).get("UserData"), action)
            name = d.get("LaunchTemplateName")
            if name is not None and not LT_NAME.match(name):
                out.append(("limit:launch-template-name", f"Launch template name '{_fmt(name)}' must be 3 to 128 letters, digits and ( ) . - / _", "InvalidLaunchTemplateName.MalformedException"))
        if action == "CreateSecurityGroup":
            name = d.get("GroupName") or ""
            desc = d.get("Description") or ""
            if name.lower().startswith("sg-"):
                out.append(("limit:security-group-name", f"Group names may not be in the format sg-*: '{name}'", None))
            if len(name) > 255 or not SG_TEXT.match(name):
                out.append(("limit:security-group-name", f"Invalid security group name '{_fmt(name)}': at most 255 of a-z A-Z 0-9 spaces ._-:/()#,@[]+=&;{{}}!$*", None))
            if len(desc) > 255 or not SG_TEXT.match(desc):
                out.append(("limit:security-group-description", f"Invalid security group description '{_fmt(desc)}': at most 255 of a-z A-Z 0-9 spaces ._-:/()#,@[]+=&;{{}}!$*", None))
        if action in ("AuthorizeSecurityGroupIngress", "AuthorizeSecurityGroupEgress"):
            for perm in d.get("IpPermissions") or []:
                for rng in (perm.get("IpRanges") or []) + (perm.get("Ipv6Ranges") or []) + (perm.get("UserIdGroupPairs") or []):
                    desc = rng.get("Description")
                    if desc is not None and (len(desc) > 255 or not SG_TEXT.match(desc)):
                        out.append(("limit:security-group-description", f"Invalid rule description '{_fmt(desc)}'", None))
    if service == "elbv2":
        if action in ("CreateLoadBalancer", "CreateTargetGroup"):
            name = d.get("Name") or ""
            what = "Load balancer" if action == "CreateLoadBalancer" else "Target group"
            if not ELB_NAME.match(name):
                out.append(("limit:elb-name", f"{what} name '{_fmt(name)}' cannot be longer than 32 characters, may hold only alphanumeric characters and hyphens, and cannot begin or end with a hyphen", None))
            if action == "CreateLoadBalancer" and name.lower().startswith("internal-"):
                out.append(("limit:elb-name", f"Load balancer name '{name}' cannot begin with 'internal-'", None))
        if action in ("CreateListener", "ModifyListener"):
            policy = d.get("SslPolicy")
            if policy is not None and policy not in ELB_SSL_POLICIES:
                out.append(("limit:ssl-policy", f"SSL policy '{_fmt(policy)}' not found", "SSLPolicyNotFound"))
        if action in ("CreateRule", "ModifyRule"):
            out += _rule_conditions(d.get("Conditions") or [])
        if action in ("CreateTargetGroup", "ModifyTargetGroup"):
            timeout = d.get("HealthCheckTimeoutSeconds")
            interval = d.get("HealthCheckIntervalSeconds")
            if timeout is not None and int(timeout) >= int(interval if interval is not None else 30):
                out.append(("limit:health-check-timeout", "Health check timeout must be smaller than the interval", None))
    if service == "rds":
        if action == "CreateDBInstance":
            ident = d.get("DBInstanceIdentifier") or ""
            if not RDS_ID.match(ident) or "--" in ident or ident.endswith("-"):
                out.append(("limit:rds-identifier", f"DBInstanceIdentifier '{_fmt(ident)}' is not a valid identifier. Identifiers must begin with a letter; must contain only ASCII letters, digits, and hyphens; and must not end with a hyphen or contain two consecutive hyphens.", None))
        if action == "CreateDBSubnetGroup":
            name = d.get("DBSubnetGroupName") or ""
            if len(name) > 255 or not re.fullmatch(r"[A-Za-z0-9._ -]+", name) or name.lower() == "default":
                out.append(("limit:rds-subnet-group-name", f"DBSubnetGroupName '{_fmt(name)}': at most 255 letters, digits, periods, underscores, spaces and hyphens, and not 'default'", None))
    if service == "autoscaling" and action == "CreateAutoScalingGroup":
        name = d.get("AutoScalingGroupName") or ""
        if not 1 <= len(name) <= 255 or ":" in name:
            out.append(("limit:asg-name", f"AutoScalingGroupName '{_fmt(name)}' must be 1 to 255 characters without ':'", None))
    if service == "s3" and action == "CreateBucket":
        for problem in check_bucket_name(d.get("Bucket") or ""):
            out.append(("limit:bucket-name", f"The specified bucket is not valid: '{_fmt(d.get('Bucket'))}' {problem}", "InvalidBucketName"))
    return out


def check(service_signing, environ, body):
    """(operation, [Violation]): the operation the request was read as and checked against (None
    when it is not an AWS API call of a known model), and what AWS would refuse in it."""
    found = _check(service_signing, environ, body)
    if found is None:
        return None, []
    operation, violations = found
    return operation, violations


def _check(service_signing, environ, body):
    try:
        found = read_request(service_signing, environ, body)
    except (ValueError, KeyError) as e:  # a body we cannot read is not one AWS could either
        v = Violation(service_signing or "unknown", "?", "model:malformed", f"malformed request: {e}", "SerializationException")
        v.protocol = "json"
        return "?", [v]
    if found is None:
        return None
    service, action, protocol, parsed, unknown = found
    if parsed is None:
        code = "InvalidAction" if protocol in ("ec2", "query") else "UnknownOperationException"
        v = Violation(service, action, "model:operation", "; ".join(unknown), code)
        v.protocol = protocol
        return action, [v]
    shape, data = parsed
    m = model(service)
    violations = []
    for name in unknown:
        violations.append(
            Violation(service, action, "model:unknown-parameter", f"The parameter {name} is not recognized",
                      UNKNOWN_CODE.get(service, INVALID_CODE.get(service, "ValidationException")))
        )
    if shape:
        problems = []
        validate(m, shape, data, "", problems)
        for rule, message, missing in problems:
            code = MISSING_CODE.get(service) if missing else None
            violations.append(Violation(service, action, rule, f"1 validation error detected: {message}", code))
        for rule, message, code in check_tags(m, shape, data):
            violations.append(Violation(service, action, rule, message, code))
    for rule, message, code in check_limits(service, action, data):
        violations.append(Violation(service, action, rule, message, code))
    for v in violations:
        v.protocol = protocol
    return action, violations
