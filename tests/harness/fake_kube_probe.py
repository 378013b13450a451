"""Probes the harness's fake cluster API as `aws eks get-token` users would: two clusters, each
token tried at its own cluster and at the other, and the apply rules. Prints {case: HTTP code}.
Usage: fake_kube_probe.py MOTO_PORT
"""

import json
import os
import ssl
import subprocess
import sys
import tempfile
import time
import base64
import urllib.request

import boto3

port = sys.argv[1]
url = f"http://127.0.0.1:{port}"
kw = dict(endpoint_url=url, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")
ec2 = boto3.client("ec2", **kw)
eks = boto3.client("eks", **kw)
iam = boto3.client("iam", **kw)
vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
subnets = [
    ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.9.{i}.0/24", AvailabilityZone=f"us-east-1{z}")["Subnet"]["SubnetId"]
    for i, z in ((1, "a"), (2, "b"))
]
role = next(r["Arn"] for r in iam.list_roles()["Roles"] if "LabEksClusterRole" in r["RoleName"])
for name in ("probe-a", "probe-b"):
    eks.create_cluster(name=name, roleArn=role, resourcesVpcConfig={"subnetIds": subnets})
for _ in range(100):
    if all(eks.describe_cluster(name=n)["cluster"]["status"] == "ACTIVE" for n in ("probe-a", "probe-b")):
        break
    time.sleep(0.1)
a = eks.describe_cluster(name="probe-a")["cluster"]
ca = tempfile.NamedTemporaryFile(delete=False, suffix=".pem")
ca.write(base64.b64decode(a["certificateAuthority"]["data"]))
ca.close()
context = ssl.create_default_context(cafile=ca.name)


def token(cluster):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
    env.update(AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_DEFAULT_REGION="us-east-1")
    out = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "aws"), "eks", "get-token", "--cluster-name", cluster],
        env=env, capture_output=True, text=True, check=True,
    )
    return json.loads(out.stdout)["status"]["token"]


def call(method, path, tok=None, body=None, content_type="application/apply-patch+yaml"):
    req = urllib.request.Request(a["endpoint"] + path, method=method, data=body)
    if tok:
        req.add_header("Authorization", f"Bearer {tok}")
    if body is not None:
        req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, context=context, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


ns = json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "probe"}}).encode()
bad = json.dumps({
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "x", "namespace": "probe"},
    "spec": {"replicas": 1, "selector": {"matchLabels": {"a": "b"}}, "colour": "blue",
             "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}},
}).encode()
ta, tb = token("probe-a"), token("probe-b")


def read(path):
    req = urllib.request.Request(a["endpoint"] + path, headers={"Authorization": f"Bearer {ta}"})
    with urllib.request.urlopen(req, context=context, timeout=10) as r:
        return json.loads(r.read())


def restricted_deployment(name, volume):
    """A Deployment that meets the `restricted` standard but for `volume`."""
    ctx = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
    return json.dumps({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "strict"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"a": name}},
                 "template": {"metadata": {"labels": {"a": name}}, "spec": {
                     "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
                     "containers": [{"name": "c", "image": "i", "securityContext": ctx,
                                     "volumeMounts": [{"name": "v", "mountPath": "/v"}]}],
                     "volumes": [dict(name="v", **volume)]}}},
    }).encode()


strict = json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {
    "name": "strict", "labels": {"pod-security.kubernetes.io/enforce": "restricted"}}}).encode()
call("PATCH", "/api/v1/namespaces/strict?fieldManager=t", ta, strict)
call("PATCH", "/apis/apps/v1/namespaces/strict/deployments/nfs?fieldManager=t", ta,
     restricted_deployment("nfs", {"nfs": {"server": "fs-1.efs.us-east-1.amazonaws.com", "path": "/"}}))
call("PATCH", "/apis/apps/v1/namespaces/strict/deployments/tmp?fieldManager=t", ta,
     restricted_deployment("tmp", {"emptyDir": {}}))
nfs = read("/apis/apps/v1/namespaces/strict/deployments/nfs")["status"]
tmp = read("/apis/apps/v1/namespaces/strict/deployments/tmp")["status"]
print(json.dumps({
    "restricted: an nfs volume's pods": [nfs["availableReplicas"]] + [c["message"] for c in nfs.get("conditions", [])],
    "restricted: an emptyDir's pods": [tmp["availableReplicas"]] + [c["message"] for c in tmp.get("conditions", [])],
    "no token": call("GET", "/api/v1/namespaces/probe"),
    "another cluster's token": call("GET", "/api/v1/namespaces/probe", tb),
    "a forged token": call("GET", "/api/v1/namespaces/probe", ta[:-4] + "AAAA"),
    "its own token": call("GET", "/api/v1/namespaces/probe", ta),
    "apply without fieldManager": call("PATCH", "/api/v1/namespaces/probe", ta, ns),
    "apply as a merge patch": call("PATCH", "/api/v1/namespaces/probe?fieldManager=t", ta, ns, "application/merge-patch+json"),
    "apply": call("PATCH", "/api/v1/namespaces/probe?fieldManager=t", ta, ns),
    "an unknown field": call("PATCH", "/apis/apps/v1/namespaces/probe/deployments/x?fieldManager=t", ta, bad),
}))
