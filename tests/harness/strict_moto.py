"""A stricter, slower moto server for bookstore's tests.

moto says yes to deletes that AWS refuses and makes every resource ready at once; a green run against
it proves little about teardown order or waiting. This launcher patches moto 5.2.5 (pinned: it relies on
its internals) before serving:

* every request is checked against AWS's own API models and documented limits first
  (model_check.py); what AWS would refuse is answered with AWS's error and listed under
  /_harness/violations, which fails the test that caused it;
* deletes that AWS refuses fail the same way: a security group referenced by another group's rule, by a
  network interface, an instance or a load balancer; a subnet with a load balancer, network interface or
  instance in it; detaching an internet gateway while a load balancer still maps public addresses in the
  VPC; an ACM certificate used by a listener; a DB subnet group a database uses; a database without
  SkipFinalSnapshot or a final snapshot name; an Auto Scaling group with instances, without ForceDelete;
* VPCs, subnets, load balancers, instances, images (CreateImage), DB instances, file systems and mount
  targets stay pending/provisioning/creating for --pending-seconds after creation, and each
  Create*/Import*/Request*/Run* call can take --create-call-seconds;
* a bake's builder instance (user-data that ends with BOOKSTORE-BAKE-OK) runs its script: it powers
  itself off --bake-seconds after it starts running, and its console shows the verdict (or
  BOOKSTORE-BAKE-FAILED when the config says `bake_fails`); Auto Scaling instances stay Pending while
  their EC2 instance is pending; StartInstanceRefresh (which moto lacks) replaces the group's
  instances with ones from its launch template as it is now;
* Elastic IPs, data volumes and instances behave as AWS does for the monolith: releasing an associated
  address is refused (InvalidIPAddress.InUse); an address cannot be associated with an instance that
  is not running; a new volume is `creating` for --pending-seconds and cannot be attached meanwhile;
  a volume attaches only to an instance in its own zone (InvalidVolume.ZoneMismatch), to one instance
  at a time (VolumeInUse), and only to a running or stopped instance (IncorrectState); terminating
  an instance detaches its data volumes and disassociates its address; a stopped-then-started
  instance gets a new public IP unless an Elastic IP is associated; public addresses are in
  127.0.0.0/8, so nothing a test reaches leaves the machine;
* a VM with an Elastic IP answers GET /healthz on that address, port HEALTH_PORT (printed after
  PORT; HTTPS with a self-signed certificate, or HTTP), as its nginx and app would: 200, or the
  status the config's `vm_health` holds; nothing answers while the instance is not running;
* IAM holds what a Learner Lab account holds: LabRole and LabInstanceProfile (RunInstances refuses an
  instance profile that does not exist); its policy simulator (SimulatePrincipalPolicy, which moto
  lacks) allows every action but those the config's `iam_denied` lists per principal, and refuses
  the call itself with `iam_simulator_refused`;
* S3's conditional writes (If-None-Match: *, If-Match: <etag>) are decided atomically, as S3 does:
  of two writers racing for one key exactly one wins (moto checks then writes, unlocked);
* a small control API under /_harness/: the log of every AWS call received (GET/DELETE /_harness/calls)
  and injected faults (POST/DELETE /_harness/faults), e.g. a throttling storm or an expired token.

It prints "PORT=<n>" on stdout once it accepts connections, and binds 127.0.0.1 only.
"""

import argparse
import base64
import copy
import datetime
import gzip
import io
import json
import random
import re
import socket
import sys
import threading
import time
import urllib.parse

from werkzeug.serving import make_server
from xml.sax.saxutils import escape as xml_escape

import fake_ecr_registry
import fake_kube
import model_check

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)

# The fake API server of each EKS cluster, by cluster name.
KUBE_CLUSTERS = {}
PENDING_SECONDS = 0.0
CREATE_CALL_SECONDS = 0.0
BAKE_SECONDS = 0.5
BAKE_FAILS = False
MUTATING = re.compile(r"^(Create|Import|Request|Run|Allocate|POST |PUT )")


# ---------------------------------------------------------------------------------------------
# Slow provisioning: new resources start pending and become ready PENDING_SECONDS later.
# ---------------------------------------------------------------------------------------------


def _later(obj, attr, value):
    if PENDING_SECONDS <= 0:
        setattr(obj, attr, value)
        return
    timer = threading.Timer(PENDING_SECONDS, setattr, args=(obj, attr, value))
    timer.daemon = True
    timer.start()


def patch_pending_states():
    from moto.ec2.models.subnets import Subnet
    from moto.ec2.models.vpcs import VPC
    from moto.elbv2.models import FakeLoadBalancer

    for cls in (VPC, Subnet):
        original = cls.__init__

        def init(self, *args, __original=original, **kwargs):
            __original(self, *args, **kwargs)
            if PENDING_SECONDS > 0:
                self.state = "pending"
                _later(self, "state", "available")

        cls.__init__ = init

    from moto.ec2.models.amis import AmiBackend
    from moto.ec2.models.instances import Instance, InstanceState
    from moto.efs.models import FileSystem, MountTarget
    from moto.rds.models import DBInstance

    instance_init = Instance.__init__

    def instance_init_pending(self, *args, **kwargs):
        instance_init(self, *args, **kwargs)
        if PENDING_SECONDS > 0:
            self._state = InstanceState("pending", 0)

            def run():
                if self._state.name == "pending":  # not stopped or terminated meanwhile
                    self._state = InstanceState("running", 16)

            timer = threading.Timer(PENDING_SECONDS, run)
            timer.daemon = True
            timer.start()

    Instance.__init__ = instance_init_pending

    # The builder "runs" its user-data: after BAKE_SECONDS of running it powers itself off.
    def user_data_text(instance):
        data = getattr(instance, "user_data", None)
        if isinstance(data, list):
            data = data[0] if data else None
        if not data:
            return ""
        try:
            raw = base64.b64decode(str(data))
        except ValueError:
            return str(data)
        if raw[:2] == b"\x1f\x8b":  # gzip-compressed, as cloud-init reads it
            try:
                raw = gzip.decompress(raw)
            except OSError:
                return ""
        return raw.decode("utf-8", "replace")

    instance_init_baking = Instance.__init__

    def instance_init_bake(self, *args, **kwargs):
        instance_init_baking(self, *args, **kwargs)
        if "BOOKSTORE-BAKE-OK" not in user_data_text(self):
            return
        verdict = "BOOKSTORE-BAKE-FAILED at line 42" if BAKE_FAILS else "BOOKSTORE-BAKE-OK"
        self._harness_console = f"cloud-init: running user-data\nbookstore-bake: {verdict}\nreboot: Power down\n"

        def power_off():
            if self._state.name == "running":
                self.stop()
            elif self._state.name == "pending":  # not running yet: look again shortly
                retry = threading.Timer(0.2, power_off)
                retry.daemon = True
                retry.start()

        timer = threading.Timer(PENDING_SECONDS + BAKE_SECONDS, power_off)
        timer.daemon = True
        timer.start()

    Instance.__init__ = instance_init_bake

    from moto.ec2.responses.general import General
    from moto.core.responses import ActionResult
    from moto.core.utils import utcnow
    from moto.ec2.utils import Base64EncodedString

    console_output = General.get_console_output

    def get_console_output(self):
        instance = self.ec2_backend.get_instance(self._get_param("InstanceId"))
        text = getattr(instance, "_harness_console", None)
        if text is None:
            return console_output(self)
        return ActionResult(
            {"InstanceId": instance.id, "Timestamp": utcnow(), "Output": Base64EncodedString.from_raw_string(text)}
        )

    General.get_console_output = get_console_output

    # Auto Scaling reports an instance InService at once; AWS keeps it Pending while it boots.
    from moto.autoscaling.models import InstanceState as GroupInstanceState

    def lifecycle(self):
        state = self._harness_lifecycle
        ec2_state = getattr(getattr(self.instance, "_state", None), "name", "running")
        return "Pending" if state == "InService" and ec2_state == "pending" else state

    def set_lifecycle(self, value):
        self._harness_lifecycle = value

    GroupInstanceState.lifecycle_state = property(lifecycle, set_lifecycle)

    # moto registers a group's new instances in its target groups at once, and the target group
    # refuses pending ones; AWS registers each instance once it runs.
    from moto.autoscaling.models import AutoScalingBackend

    def update_attached_target_groups(self, group_name):
        group = self.autoscaling_groups.get(group_name)
        if group is None or not group.target_group_arns:
            return
        states = [s.instance._state.name for s in group.instance_states]
        running = [s.instance.id for s in group.instance_states if s.instance._state.name == "running"]
        for target_group in self.elbv2_backend.describe_target_groups(
            target_group_arns=group.target_group_arns, load_balancer_arn=None, names=None
        ):
            if running:
                self.elbv2_backend.register_targets(
                    target_group.arn, [{"Id": i, "Port": target_group.port} for i in running]
                )
        if "pending" in states:
            retry = threading.Timer(0.5, update_attached_target_groups, args=(self, group_name))
            retry.daemon = True
            retry.start()

    AutoScalingBackend.update_attached_target_groups = update_attached_target_groups

    # moto starts all of a group's instances in its first subnet; AWS balances them over the
    # group's zones (a node group's nodes land in both of the stack's zones).
    from moto.autoscaling.models import FakeAutoScalingGroup

    replace_instances = FakeAutoScalingGroup.replace_autoscaling_group_instances

    def balanced_replace(self, count_needed, propagated_tags):
        subnets = [s for s in (self.vpc_zone_identifier or "").split(",") if s]
        if len(subnets) < 2:
            return replace_instances(self, count_needed, propagated_tags)
        whole = self.vpc_zone_identifier
        try:
            for _ in range(count_needed):
                used = {s: 0 for s in subnets}
                for state in self.instance_states:
                    if state.instance.subnet_id in used:
                        used[state.instance.subnet_id] += 1
                self.vpc_zone_identifier = min(subnets, key=lambda s: used[s])
                replace_instances(self, 1, dict(propagated_tags))
        finally:
            self.vpc_zone_identifier = whole

    FakeAutoScalingGroup.replace_autoscaling_group_instances = balanced_replace

    # CreateLaunchTemplateVersion keeps UserData as a plain string, which moto's own Auto Scaling
    # then refuses (an assertion) when it launches from that version.
    from moto.ec2.models.launch_templates import LaunchTemplateVersion

    def version_user_data(self):
        data = self.data.get("UserData")
        if data is not None and not isinstance(data, Base64EncodedString):
            data = Base64EncodedString(str(data))
        return data

    LaunchTemplateVersion.user_data = property(version_user_data)

    for cls, attr in ((DBInstance, "status"), (FileSystem, "life_cycle_state"), (MountTarget, "life_cycle_state")):
        original = cls.__init__

        def init(self, *args, __original=original, __attr=attr, **kwargs):
            __original(self, *args, **kwargs)
            if PENDING_SECONDS > 0:
                setattr(self, __attr, "creating")
                _later(self, __attr, "available")

        cls.__init__ = init

    create_image = AmiBackend.create_image

    def create_image_pending(self, *args, **kwargs):
        ami = create_image(self, *args, **kwargs)
        if PENDING_SECONDS > 0:
            ami.state = "pending"
            _later(ami, "state", "available")
        return ami

    AmiBackend.create_image = create_image_pending

    lb_init = FakeLoadBalancer.__init__

    def lb_init_timed(self, *args, **kwargs):
        lb_init(self, *args, **kwargs)
        self._harness_ready_at = time.monotonic() + PENDING_SECONDS

    def activate(self):
        # moto flips a load balancer to active on the first describe; AWS takes minutes.
        if self.state == "provisioning" and time.monotonic() >= getattr(self, "_harness_ready_at", 0):
            self.state = "active"

    FakeLoadBalancer.__init__ = lb_init_timed
    FakeLoadBalancer.activate = activate


# ---------------------------------------------------------------------------------------------
# Strict deletes: refuse what AWS refuses.
# ---------------------------------------------------------------------------------------------


def _load_balancers(account_id, region):
    from moto.elbv2.models import elbv2_backends

    try:
        return list(elbv2_backends[account_id][region].load_balancers.values())
    except KeyError:
        return []


def _live_instances(ec2_backend):
    for reservation in ec2_backend.reservations.values():
        for instance in reservation.instances:
            if instance.state not in ("terminated",):
                yield instance


def _live_enis(ec2_backend):
    # moto keeps a terminated instance's primary interface "in-use"; AWS deletes it with the instance.
    for eni in ec2_backend.enis.values():
        instance = getattr(eni, "instance", None)
        if instance is None or instance.state != "terminated":
            yield eni


def patch_strict_deletes():
    from moto.acm.models import AWSCertificateManagerBackend
    from moto.core.exceptions import AWSError
    from moto.ec2.exceptions import DependencyViolationError
    from moto.ec2.models.internet_gateways import InternetGatewayBackend
    from moto.ec2.models.security_groups import SecurityGroupBackend
    from moto.ec2.models.subnets import SubnetBackend

    class ResourceInUse(AWSError):
        TYPE = "ResourceInUseException"

    sg_delete = SecurityGroupBackend.delete_security_group

    # A rule is its protocol, ports and source: AWS matches a revoke (and refuses a second
    # authorize as InvalidPermission.Duplicate) whatever the descriptions say. moto compares a
    # source group's description too, so revoking a described group rule failed (NotFound).
    from moto.ec2.models.security_groups import SecurityGroupRule

    rule_eq = SecurityGroupRule.__eq__

    def without_description(group):
        return {k: v for k, v in group.items() if k != "Description"} if isinstance(group, dict) else group

    def rule_eq_ignoring_descriptions(self, other):
        if not isinstance(other, SecurityGroupRule):
            return NotImplemented
        # Shallow copies without the descriptions: the rules themselves stay as stored.
        a, b = copy.copy(self), copy.copy(other)
        a.source_group = without_description(self.source_group)
        b.source_group = without_description(other.source_group)
        return rule_eq(a, b)

    SecurityGroupRule.__eq__ = rule_eq_ignoring_descriptions

    def delete_security_group(self, name=None, group_id=None):
        group = self.get_security_group_by_name_or_id(group_id or name)
        if group is not None:
            gid = group.id
            for groups in self.groups.values():
                for other in groups.values():
                    if other.id == gid:
                        continue
                    for rule in list(other.ingress_rules) + list(other.egress_rules):
                        if (rule.source_group or {}).get("GroupId") == gid:
                            raise DependencyViolationError(
                                f"resource {gid} has a dependent object"
                            )
            for eni in _live_enis(self):
                if any(g.id == gid for g in eni.group_set):
                    raise DependencyViolationError(f"resource {gid} has a dependent object")
            for lb in _load_balancers(self.account_id, self.region_name):
                if gid in (lb.security_groups or []):
                    raise DependencyViolationError(f"resource {gid} has a dependent object")
            for instance in _live_instances(self):
                if any(g.id == gid for g in instance.security_groups):
                    raise DependencyViolationError(f"resource {gid} has a dependent object")
        return sg_delete(self, name=name, group_id=group_id)

    SecurityGroupBackend.delete_security_group = delete_security_group

    subnet_delete = SubnetBackend.delete_subnet

    def delete_subnet(self, subnet_id):
        busy = any(
            any(s.id == subnet_id for s in lb.subnets)
            for lb in _load_balancers(self.account_id, self.region_name)
        )
        busy = busy or any(
            getattr(eni.subnet, "id", None) == subnet_id for eni in _live_enis(self)
        )
        busy = busy or any(i.subnet_id == subnet_id for i in _live_instances(self))
        if busy:
            raise DependencyViolationError(
                f"The subnet '{subnet_id}' has dependencies and cannot be deleted."
            )
        return subnet_delete(self, subnet_id)

    SubnetBackend.delete_subnet = delete_subnet

    igw_detach = InternetGatewayBackend.detach_internet_gateway

    def detach_internet_gateway(self, internet_gateway_id, vpc_id):
        for lb in _load_balancers(self.account_id, self.region_name):
            if lb.vpc_id == vpc_id and lb.scheme == "internet-facing":
                raise DependencyViolationError(
                    f"Network {vpc_id} has some mapped public address(es). "
                    "Please unmap those public address(es) before detaching the gateway."
                )
        return igw_detach(self, internet_gateway_id, vpc_id)

    InternetGatewayBackend.detach_internet_gateway = detach_internet_gateway

    cert_delete = AWSCertificateManagerBackend.delete_certificate

    def delete_certificate(self, arn):
        for lb in _load_balancers(self.account_id, self.region_name):
            for listener in lb.listeners.values():
                if arn in (listener.certificates or []):
                    raise ResourceInUse(f"Certificate {arn} in use by {listener.arn}")
        return cert_delete(self, arn)

    AWSCertificateManagerBackend.delete_certificate = delete_certificate

    from moto.autoscaling.exceptions import AutoscalingClientError
    from moto.autoscaling.responses import AutoScalingResponse
    from moto.rds.exceptions import InvalidParameterCombination, RDSClientError
    from moto.rds.models import RDSBackend

    class GroupInUse(AutoscalingClientError):
        code = "ResourceInUse"
        message = (
            "You cannot delete an AutoScalingGroup while there are instances or pending Spot "
            "instance request(s) still in the group."
        )

    asg_delete = AutoScalingResponse.delete_auto_scaling_group

    def delete_auto_scaling_group(self):
        name = self._get_param("AutoScalingGroupName")
        force = str(self._get_param("ForceDelete") or "false").lower() == "true"
        group = self.autoscaling_backend.autoscaling_groups.get(name)
        if group is not None and not force and group.instance_states:
            raise GroupInUse()
        return asg_delete(self)

    AutoScalingResponse.delete_auto_scaling_group = delete_auto_scaling_group

    subnet_group_delete = RDSBackend.delete_subnet_group

    def delete_subnet_group(self, subnet_name):
        for db in self.databases.values():
            # moto keeps the name behind a write-only property.
            if getattr(db, "_db_subnet_group_name", None) == subnet_name:
                raise RDSClientError(
                    "InvalidDBSubnetGroupStateFault",
                    f"Cannot delete the subnet group '{subnet_name}' because at least one database instance: "
                    f"{db.db_instance_identifier} is still using it.",
                )
        return subnet_group_delete(self, subnet_name)

    RDSBackend.delete_subnet_group = delete_subnet_group

    db_delete = RDSBackend.delete_db_instance

    def delete_db_instance(self, db_instance_identifier, final_db_snapshot_identifier=None, skip_final_snapshot=False, **kwargs):
        if not skip_final_snapshot and not final_db_snapshot_identifier:
            raise InvalidParameterCombination(
                "FinalDBSnapshotIdentifier is required unless SkipFinalSnapshot is specified."
            )
        return db_delete(self, db_instance_identifier, final_db_snapshot_identifier, skip_final_snapshot, **kwargs)

    RDSBackend.delete_db_instance = delete_db_instance


# ---------------------------------------------------------------------------------------------
# Elastic IPs, volumes and instances: what the monolith relies on, as AWS does it.
# ---------------------------------------------------------------------------------------------


def patch_listener_rules():
    """Listener rules as AWS keeps them: at most 100 per load balancer besides the listeners'
    defaults (TooManyRules), and deleting a rule that does not exist is RuleNotFound (moto says
    nothing). Per-request limits (values, wildcards, patterns) are in model_check."""
    from moto.elbv2.exceptions import ELBClientError, RuleNotFoundError
    from moto.elbv2.models import ELBv2Backend

    class TooManyRules(ELBClientError):
        def __init__(self):
            super().__init__("TooManyRules", "You've reached the limit on the number of rules per load balancer")

    create_rule = ELBv2Backend.create_rule

    def strict_create_rule(self, listener_arn, conditions, priority, actions, tags=None):
        for balancer in self.load_balancers.values():
            if listener_arn in balancer.listeners:
                count = sum(len(listener._non_default_rules) for listener in balancer.listeners.values())
                if count >= 100:
                    raise TooManyRules()
        return create_rule(self, listener_arn, conditions, priority, actions, tags)

    def strict_delete_rule(self, arn):
        for balancer in self.load_balancers.values():
            for listener in balancer.listeners.values():
                if arn in listener._non_default_rules:
                    listener.remove_rule(arn)
                    return
        raise RuleNotFoundError()

    ELBv2Backend.create_rule = strict_create_rule
    ELBv2Backend.delete_rule = strict_delete_rule


def patch_monolith():
    from moto.ec2.exceptions import EC2ClientError as Ec2Error
    from moto.ec2.models.elastic_block_store import Volume
    from moto.ec2.models.elastic_ip_addresses import ElasticAddressBackend
    from moto.ec2.models.instances import Instance
    from moto.ec2.models import elastic_network_interfaces
    from moto.ec2.responses.elastic_block_store import ElasticBlockStore
    from moto.ec2 import utils

    # Public addresses in the loopback range, as moto's Elastic IPs already are: whatever a test
    # connects to (status reads a monolith's certificate) stays on this machine.
    def random_public_ip():
        return utils.random_ip()

    utils.random_public_ip = random_public_ip
    elastic_network_interfaces.random_public_ip = random_public_ip

    release = ElasticAddressBackend.release_address

    def release_address(self, address=None, allocation_id=None):
        eips = self.address_by_ip([address]) if address else self.address_by_allocation([allocation_id])
        if eips and (eips[0].instance is not None or eips[0].eni is not None):
            raise Ec2Error("InvalidIPAddress.InUse", "Address is in use.")
        return release(self, address=address, allocation_id=allocation_id)

    ElasticAddressBackend.release_address = release_address

    associate = ElasticAddressBackend.associate_address

    def associate_address(self, instance=None, eni=None, address=None, allocation_id=None, reassociate=False):
        if instance is not None and instance._state.name != "running":
            raise Ec2Error(
                "IncorrectInstanceState",
                f"The pending instance '{instance.id}' is not in a valid state for this operation.",
            )
        result = associate(self, instance=instance, eni=eni, address=address, allocation_id=allocation_id, reassociate=reassociate)
        eips = self.address_by_ip([address]) if address else self.address_by_allocation([allocation_id])
        if instance is not None and eips and HEALTH_PORT:
            serve_vm_health(eips[0])
        return result

    ElasticAddressBackend.associate_address = associate_address

    volume_init = Volume.__init__

    def volume_init_timed(self, *args, **kwargs):
        volume_init(self, *args, **kwargs)
        self._harness_ready_at = time.monotonic() + PENDING_SECONDS

    def volume_status(self):
        if self.attachment:
            return "in-use"
        if time.monotonic() < getattr(self, "_harness_ready_at", 0):
            return "creating"
        return "available"

    Volume.__init__ = volume_init_timed
    Volume.status = property(volume_status)

    # The AttachVolume API only: moto attaches launch-time volumes through the same backend call.
    attach = ElasticBlockStore.attach_volume

    def attach_volume(self):
        volume_id = self._get_param("VolumeId")
        instance_id = self._get_param("InstanceId")
        volume = self.ec2_backend.get_volume(volume_id)
        instance = self.ec2_backend.get_instance(instance_id)
        if volume.status == "creating":
            raise Ec2Error("IncorrectState", f"vol '{volume_id}' is not 'available'.")
        if volume.attachment is not None:
            raise Ec2Error("VolumeInUse", f"vol '{volume_id}' is already attached to an instance")
        if instance._state.name not in ("running", "stopped"):
            raise Ec2Error("IncorrectState", f"Instance '{instance_id}' is not 'running'.")
        if volume.zone.name != instance.availability_zone:
            raise Ec2Error(
                "InvalidVolume.ZoneMismatch",
                f"The volume '{volume_id}' is not in the same availability zone as instance '{instance_id}'",
            )
        return attach(self)

    ElasticBlockStore.attach_volume = attach_volume

    terminate = Instance.terminate

    def terminate_releasing(self):
        backend = self.ec2_backend
        for volume in list(backend.volumes.values()):
            attachment = volume.attachment
            if attachment is not None and attachment.instance is self and attachment.device != "/dev/xvda":
                volume.attachment = None
                self.block_device_mapping.pop(attachment.device, None)
        for eip in backend.addresses:
            if eip.instance is self:
                eip.instance = None
                eip.eni = None
                eip.association_id = None
        return terminate(self)

    Instance.terminate = terminate_releasing

    start = Instance.start

    def start_with_new_ip(self):
        previous = start(self)
        eips = [eip for eip in self.ec2_backend.addresses if eip.instance is self]
        nic = self.nics[0] if self.nics else None
        if nic is not None and eips:
            nic.public_ip = eips[0].public_ip  # the Elastic IP stays the instance's address
        elif nic is not None and nic.public_ip is not None:
            nic.public_ip = random_public_ip()
        return previous

    Instance.start = start_with_new_ip


# ---------------------------------------------------------------------------------------------
# The VM behind an Elastic IP answers: what nginx in front of the app does on a real monolith VM.
# ---------------------------------------------------------------------------------------------

HEALTH_PORT = 0
VM_HEALTH = {"status": 200}  # what GET /healthz answers; the tests set e.g. 503
HEALTH_LISTENERS = {}
_TLS_CONTEXT = []


def _tls_context():
    # A self-signed certificate, made once: the VM's fallback before any ACME certificate.
    import datetime
    import ssl
    import tempfile

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    with LOCK:
        if _TLS_CONTEXT:
            return _TLS_CONTEXT[0]
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "harness vm (self-signed)")])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256())
        )
        pem = tempfile.NamedTemporaryFile(suffix=".pem", delete=False)
        pem.write(cert.public_bytes(serialization.Encoding.PEM))
        pem.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        pem.close()
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(pem.name)
        _TLS_CONTEXT.append(context)
        return context


def _answer(conn, eip):
    try:
        conn.settimeout(5)
        instance = eip.instance
        if instance is None or instance._state.name != "running":
            return  # nothing runs behind the address: the connection just closes
        if conn.recv(1, socket.MSG_PEEK) == b"\x16":  # a TLS ClientHello: HTTPS (443), else HTTP (80)
            conn = _tls_context().wrap_socket(conn, server_side=True)
        request = b""
        while b"\r\n\r\n" not in request and len(request) < 8192:
            chunk = conn.recv(1024)
            if not chunk:
                return
            request += chunk
        status = int(VM_HEALTH.get("status", 200))
        body = b"ok" if status == 200 else b"unavailable"
        conn.sendall(
            f"HTTP/1.1 {status} {'OK' if status == 200 else 'Service Unavailable'}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body
        )
    except OSError:
        pass
    finally:
        conn.close()


def serve_vm_health(eip):
    # One listener per address on HEALTH_PORT, for the life of the harness; the instance behind
    # the address is looked up on each connection.
    ip = eip.public_ip
    with LOCK:
        if ip in HEALTH_LISTENERS:
            HEALTH_LISTENERS[ip][1][0] = eip
            return
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((ip, HEALTH_PORT))
        except OSError:
            return
        sock.listen(16)
        holder = [eip]
        HEALTH_LISTENERS[ip] = (sock, holder)

    def accept():
        while True:
            conn, _ = sock.accept()
            threading.Thread(target=_answer, args=(conn, holder[0]), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()


# ---------------------------------------------------------------------------------------------
# Control API, call log and fault injection (a WSGI middleware in front of moto).
# ---------------------------------------------------------------------------------------------

CALLS = []
VIOLATIONS = []
FAULTS = []
LOCK = threading.Lock()
CREDENTIAL_SCOPE = re.compile(r"Credential=[^/]+/\d+/([^/]+)/([^/]+)/")


# Target health the test holds: {"*" or an instance id: {"state", "reason", "description"}}.
TARGET_HEALTH = {}


def patch_target_health():
    # moto reports a registered, running target healthy at once. AWS keeps it "initial" while its
    # first health checks run (interval x healthy threshold: here the pending seconds), and
    # "unhealthy" with a reason when the app does not answer: a test can hold that state.
    from moto.elbv2.models import FakeHealthStatus, FakeTargetGroup

    register, deregister, health_for = (
        FakeTargetGroup.register,
        FakeTargetGroup.deregister,
        FakeTargetGroup.health_for,
    )

    def register_timed(self, targets):
        register(self, targets)
        since = self.__dict__.setdefault("_harness_registered", {})
        for target in targets:  # a re-registration keeps the first time
            since.setdefault(target["Id"], time.time())

    def deregister_timed(self, targets):
        deregister(self, targets)
        for target in targets:
            self.__dict__.get("_harness_registered", {}).pop(target["Id"], None)

    def health_for_strict(self, target, ec2_backend):
        status = health_for(self, target, ec2_backend)
        if status.status != "healthy":
            return status
        with LOCK:
            # By instance and port (one service of the split), by instance, or for all.
            held = (
                TARGET_HEALTH.get(f"{target['Id']}:{status.port}")
                or TARGET_HEALTH.get(f"*:{status.port}")
                or TARGET_HEALTH.get(target["Id"])
                or TARGET_HEALTH.get("*")
            )
        if held:
            return FakeHealthStatus(
                status.instance_id, status.port, status.health_check_port,
                held["state"], held.get("reason"), held.get("description"),
            )
        since = self.__dict__.get("_harness_registered", {}).get(target["Id"])
        if since is not None and time.time() - since < PENDING_SECONDS:
            return FakeHealthStatus(
                status.instance_id, status.port, status.health_check_port,
                "initial", "Elb.RegistrationInProgress", "Target registration is in progress",
            )
        return status

    FakeTargetGroup.register = register_timed
    FakeTargetGroup.deregister = deregister_timed
    FakeTargetGroup.health_for = health_for_strict


def describe_call(environ, body):
    auth = environ.get("HTTP_AUTHORIZATION", "")
    match = CREDENTIAL_SCOPE.search(auth)
    service = match.group(2) if match else "unknown"
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return service, target.split(".")[-1], "json"
    params = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
    if not params.get("Action") and body and b"Action=" in body:
        params = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
    if params.get("Action"):
        return service, params["Action"][0], "ec2" if service == "ec2" else "query"
    return service, f"{environ.get('REQUEST_METHOD')} {environ.get('PATH_INFO')}", "rest"


def error_response(start_response, protocol, status, code, message):
    text = xml_escape(message)  # for the XML protocols
    if protocol in ("json", "rest"):
        payload = json.dumps({"__type": code, "message": message}).encode()
        headers = [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-ErrorType", code)]
    elif protocol == "xml":  # S3
        payload = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            f"<Error><Code>{code}</Code><Message>{text}</Message><RequestId>harness</RequestId></Error>"
        ).encode()
        headers = [("Content-Type", "application/xml")]
    elif protocol == "ec2":
        payload = (
            '<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error>'
            f"<Code>{code}</Code><Message>{text}</Message></Error></Errors>"
            "<RequestID>harness-fault</RequestID></Response>"
        ).encode()
        headers = [("Content-Type", "text/xml")]
    else:
        payload = (
            "<ErrorResponse><Error><Type>Sender</Type>"
            f"<Code>{code}</Code><Message>{text}</Message></Error>"
            "<RequestId>harness-fault</RequestId></ErrorResponse>"
        ).encode()
        headers = [("Content-Type", "text/xml")]
    headers.append(("Content-Length", str(len(payload))))
    start_response(f"{status} Fault", headers)
    return [payload]


def take_fault(service, action):
    with LOCK:
        for fault in FAULTS:
            if fault["action"] != action or fault.get("service", service) != service:
                continue
            if fault["count"] == 0:
                continue
            if fault["count"] > 0:
                fault["count"] -= 1
            return fault
    return None


def control(environ, start_response):
    path = environ["PATH_INFO"]
    method = environ["REQUEST_METHOD"]
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    result = {"ok": True}
    with LOCK:
        if path == "/_harness/calls" and method == "GET":
            result = CALLS
        elif path == "/_harness/calls" and method == "DELETE":
            CALLS.clear()
        elif path == "/_harness/violations" and method == "GET":
            result = VIOLATIONS
        elif path == "/_harness/violations" and method == "DELETE":
            # The rule tests take back exactly the violations they caused and asserted, one by one
            # ({"action", "rule"}); whatever else was seen stays and fails the test.
            for want in json.loads(body or b"[]"):
                match = next(
                    (v for v in VIOLATIONS if v["action"] == want["action"] and v["rule"] == want["rule"]), None
                )
                if match is not None:
                    VIOLATIONS.remove(match)
            result = VIOLATIONS
        elif path == "/_harness/registry" and method == "GET":
            result = fake_ecr_registry.snapshot()
        elif path == "/_harness/kube" and method == "GET":
            result = {name: api.snapshot() for name, api in KUBE_CLUSTERS.items()}
        elif path == "/_harness/faults" and method == "POST":
            for fault in json.loads(body or b"[]"):
                fault.setdefault("count", -1)
                fault.setdefault("status", 400)
                fault.setdefault("message", "injected by the test harness")
                FAULTS.append(fault)
        elif path == "/_harness/faults" and method == "DELETE":
            FAULTS.clear()
        elif path == "/_harness/config" and method == "POST":
            global PENDING_SECONDS, CREATE_CALL_SECONDS, BAKE_SECONDS, BAKE_FAILS
            conf = json.loads(body or b"{}")
            BAKE_SECONDS = float(conf.get("bake_seconds", BAKE_SECONDS))
            BAKE_FAILS = bool(conf.get("bake_fails", BAKE_FAILS))
            PENDING_SECONDS = float(conf.get("pending_seconds", PENDING_SECONDS))
            fake_kube.PENDING["seconds"] = PENDING_SECONDS
            CREATE_CALL_SECONDS = float(conf.get("create_call_seconds", CREATE_CALL_SECONDS))
            if "vm_health" in conf:
                VM_HEALTH["status"] = int(conf["vm_health"])
            if "kube_job_fails" in conf:
                fake_kube.JOB_FAILS["value"] = bool(conf["kube_job_fails"])
            if "iam_denied" in conf:
                IAM_DENIED.clear()
                IAM_DENIED.update(conf["iam_denied"] or {})
            if "iam_simulator_refused" in conf:
                IAM_SIMULATOR["refused"] = bool(conf["iam_simulator_refused"])
            if "target_health" in conf:
                TARGET_HEALTH.clear()
                TARGET_HEALTH.update(conf["target_health"] or {})
        else:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"unknown harness endpoint"]
        payload = json.dumps(result).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))])
    return [payload]


def start_instance_refresh(environ, body, start_response):
    # moto has no instance refresh: replace every instance of the group with one launched from the
    # launch template as it is now, as a finished refresh would leave it.
    from moto.autoscaling.models import autoscaling_backends

    params = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
    name = params.get("AutoScalingGroupName", [""])[0]
    match = CREDENTIAL_SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
    region = match.group(1) if match else "us-east-1"
    backend = autoscaling_backends["123456789012"][region]
    group = backend.autoscaling_groups.get(name)
    if group is None:
        return error_response(start_response, "query", 400, "ValidationError", f"group {name} not found")
    old = [s.instance.id for s in group.instance_states]
    backend.detach_instances(name, old, should_decrement=False)
    for target_group in group.target_group_arns:  # AWS deregisters what it replaces
        backend.elbv2_backend.deregister_targets(target_group, [{"Id": i} for i in old])
    backend.ec2_backend.terminate_instances(old)
    with LOCK:
        REFRESHES.append({"group": name, "replaced": old})
    payload = (
        '<StartInstanceRefreshResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/">'
        f"<StartInstanceRefreshResult><InstanceRefreshId>harness-{len(REFRESHES)}</InstanceRefreshId>"
        "</StartInstanceRefreshResult><ResponseMetadata><RequestId>harness</RequestId></ResponseMetadata>"
        "</StartInstanceRefreshResponse>"
    ).encode()
    start_response("200 OK", [("Content-Type", "text/xml"), ("Content-Length", str(len(payload)))])
    return [payload]


REFRESHES = []
S3_CONDITIONAL = threading.Lock()
# IAM's policy simulator, which moto lacks: every action allowed (the Learner Lab's roles are
# broad) but those a test denies, per principal ARN or "*"; `refused` answers as to credentials
# that may not call the simulator itself.
IAM_DENIED = {}
IAM_SIMULATOR = {"refused": False}


def simulate_principal_policy(body, start_response):
    from moto.iam.models import iam_backends

    params = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
    principal = params.get("PolicySourceArn", [""])[0]
    indexed = sorted((int(k.rsplit(".", 1)[1]), v[0]) for k, v in params.items() if k.startswith("ActionNames.member."))
    actions = [a for _, a in indexed]
    if IAM_SIMULATOR["refused"]:
        return error_response(
            start_response, "query", 403, "AccessDenied",
            f"User: {principal} is not authorized to perform: iam:SimulatePrincipalPolicy",
        )
    if ":role/" in principal:
        name = principal.rsplit("/", 1)[-1]
        if name not in {r.name for r in iam_backends["123456789012"]["global"].roles.values()}:
            return error_response(start_response, "query", 404, "NoSuchEntity", f"The role with name {name} cannot be found.")
    with LOCK:
        denied = set(IAM_DENIED.get(principal, [])) | set(IAM_DENIED.get("*", []))
    members = "".join(
        "<member><EvalActionName>{}</EvalActionName><EvalResourceName>*</EvalResourceName>"
        "<EvalDecision>{}</EvalDecision><MatchedStatements/><MissingContextValues/></member>".format(
            xml_escape(a), "implicitDeny" if a in denied else "allowed"
        )
        for a in actions
    )
    payload = (
        '<SimulatePrincipalPolicyResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">'
        f"<SimulatePrincipalPolicyResult><IsTruncated>false</IsTruncated><EvaluationResults>{members}"
        "</EvaluationResults></SimulatePrincipalPolicyResult>"
        "<ResponseMetadata><RequestId>harness</RequestId></ResponseMetadata></SimulatePrincipalPolicyResponse>"
    ).encode()
    start_response("200 OK", [("Content-Type", "text/xml"), ("Content-Length", str(len(payload)))])
    return [payload]


class Harness:
    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO", "").startswith("/_harness/"):
            return control(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        service, action, protocol = describe_call(environ, body)
        # AWS validates before anything else: what its models and limits refuse never reaches moto.
        operation, violations = model_check.check(None, environ, body)
        with LOCK:
            CALLS.append(
                {"service": service, "action": action, "t": time.time(), "checked": operation is not None, "operation": operation}
            )
        if violations:
            with LOCK:
                VIOLATIONS.extend(v.as_dict() for v in violations)
            first = violations[0]
            wire = {"ec2": "ec2", "query": "query", "json": "json", "rest-json": "rest", "rest-xml": "xml"}
            return error_response(start_response, wire.get(first.protocol, "json"), first.status, first.code, first.message)
        fault = take_fault(service, action)
        if fault is not None:
            return error_response(
                start_response, protocol, fault["status"], fault["code"], fault["message"]
            )
        if CREATE_CALL_SECONDS > 0 and MUTATING.match(action):
            time.sleep(CREATE_CALL_SECONDS)
        if service == "autoscaling" and action == "StartInstanceRefresh":
            return start_instance_refresh(environ, body, start_response)
        if service == "iam" and action == "SimulatePrincipalPolicy":
            return simulate_principal_policy(body, start_response)
        conditional = "HTTP_IF_MATCH" in environ or "HTTP_IF_NONE_MATCH" in environ
        if service == "s3" and conditional and environ.get("REQUEST_METHOD") in ("PUT", "DELETE"):
            none_match = environ.get("HTTP_IF_NONE_MATCH")
            if environ["REQUEST_METHOD"] == "PUT" and none_match not in (None, "*"):
                return error_response(
                    start_response, "query", 501, "NotImplemented",
                    "A header you provided implies functionality that is not implemented (If-None-Match takes only *)",
                )
            # S3 decides a conditional write atomically: of two racing writers one gets 412.
            # moto checks, then writes, and serves requests on threads: serialize these.
            with S3_CONDITIONAL:
                return self.app(environ, start_response)
        return self.app(environ, start_response)


def patch_eks():
    """EKS as AWS behaves: the cluster role must exist (EKS assumes it), subnets in two zones at
    least, the cluster CREATING for a while before ACTIVE, EKS's own cluster security group in the
    VPC (made with the cluster, deleted with it: the VPC cannot go first), and the upgrade policy
    and access configuration kept as sent, with AWS's defaults when not sent (extended support,
    ConfigMap authentication)."""
    from moto.ec2.models import ec2_backends
    from moto.eks import models as eks_models
    from moto.eks import responses as eks_responses
    from moto.eks.exceptions import InvalidParameterException
    from moto.iam.models import iam_backends

    create_cluster = eks_models.EKSBackend.create_cluster
    delete_cluster = eks_models.EKSBackend.delete_cluster

    def strict_create_cluster(self, name, role_arn, resources_vpc_config, *args, **kwargs):
        iam = iam_backends[self.account_id]["global"]
        if not any(r.arn == role_arn for r in iam.roles.values()):
            raise InvalidParameterException(
                message=f"Role with arn: {role_arn}, could not be assumed because it does not exist or the trusted entity is not correct"
            )
        ec2 = ec2_backends[self.account_id][self.region_name]
        subnets = [ec2.get_subnet(s) for s in resources_vpc_config.get("subnetIds", [])]
        if len({s.availability_zone for s in subnets}) < 2:
            raise InvalidParameterException(
                message="Subnets specified must be in at least two different AZs"
            )
        cluster = create_cluster(self, name, role_arn, resources_vpc_config, *args, **kwargs)
        vpc_id = subnets[0].vpc_id
        sg = ec2.create_security_group(
            name=f"eks-cluster-sg-{name}-{random.randint(10**9, 10**10 - 1)}",
            description="EKS created security group applied to ENI that is attached to EKS Control Plane master nodes, as well as any managed workloads.",
            vpc_id=vpc_id,
            tags={"aws:eks:cluster-name": name},
        )
        cluster.resources_vpc_config = dict(
            resources_vpc_config, clusterSecurityGroupId=sg.id, vpcId=vpc_id
        )
        cluster.cluster_security_group = sg.id
        # Its API: a fake API server of its own, behind the harness's CA.
        api = fake_kube.Cluster(name, self.region_name)
        KUBE_CLUSTERS[name] = api
        cluster.endpoint = api.endpoint
        cluster.certificate_authority = {"data": fake_kube.ca_data()}
        cluster.status = "CREATING"
        _later(cluster, "status", "ACTIVE")
        return cluster

    def strict_delete_cluster(self, name):
        cluster = self.clusters.get(name)
        if cluster is not None and cluster.status != "ACTIVE":
            from moto.eks.exceptions import ResourceInUseException

            raise ResourceInUseException(
                clusterName=name,
                nodegroupName=None,
                addonName=None,
                message=f"Cluster {name} is currently being created",
            )
        result = delete_cluster(self, name)
        api = KUBE_CLUSTERS.pop(name, None)
        if api is not None:
            api.stop()
        sg = getattr(result, "cluster_security_group", None)
        if sg:
            ec2_backends[self.account_id][self.region_name].delete_security_group(group_id=sg)
        return result

    eks_models.EKSBackend.create_cluster = strict_create_cluster
    eks_models.EKSBackend.delete_cluster = strict_delete_cluster

    respond_create = eks_responses.EKSResponse.create_cluster

    def create_cluster_response(self):
        result = respond_create(self)
        cluster = self.eks_backend.clusters[self._get_param("name")]
        policy = self._get_param("upgradePolicy") or {}
        cluster.upgrade_policy = {"supportType": policy.get("supportType", "EXTENDED")}
        access = self._get_param("accessConfig") or {}
        cluster.access_config = {
            "authenticationMode": access.get("authenticationMode", "CONFIG_MAP"),
            "bootstrapClusterCreatorAdminPermissions": access.get(
                "bootstrapClusterCreatorAdminPermissions", True
            ),
        }
        return result

    eks_responses.EKSResponse.create_cluster = create_cluster_response

    create_nodegroup = eks_models.EKSBackend.create_nodegroup
    delete_nodegroup = eks_models.EKSBackend.delete_nodegroup

    def strict_create_nodegroup(self, cluster_name, node_role, nodegroup_name, subnets, *args, **kwargs):
        iam = iam_backends[self.account_id]["global"]
        if not any(r.arn == node_role for r in iam.roles.values()):
            raise InvalidParameterException(
                message=f"Following required service principals [ec2.amazonaws.com] were not found in the trust relationships of nodeRole {node_role}"
            )
        ec2 = ec2_backends[self.account_id][self.region_name]
        lt = kwargs.get("launch_template") or {}
        data = {}
        if lt:
            template = ec2.get_launch_template(lt["id"])
            data = template.get_version(lt.get("version") or "$Default").data
            if data.get("IamInstanceProfile"):
                raise InvalidParameterException(
                    message="Launch template should not specify an instance profile. The node group's role is used."
                )
            if data.get("InstanceType") and kwargs.get("instance_types"):
                raise InvalidParameterException(
                    message="Instance type in launch template and instanceTypes in the request cannot both be specified"
                )
        group = create_nodegroup(self, cluster_name, node_role, nodegroup_name, subnets, *args, **kwargs)
        # EKS's own Auto Scaling group starts the nodes from the template (AWS names it
        # eks-<group>-<uuid> and tags it, not with the node group's tags): the CLI may attach it to
        # a target group, and its nodes are registered there as they run.
        from moto.autoscaling.models import autoscaling_backends

        scaling = kwargs.get("scaling_config") or {}
        asg_name = f"eks-{nodegroup_name}-{group.uuid}"
        group.resources = {"autoScalingGroups": [{"name": asg_name}], "remoteAccessSecurityGroup": None}
        asg = autoscaling_backends[self.account_id][self.region_name]
        # EKS launches from its own copy of the template, with the image of the AMI type and the
        # request's instance type added.
        copy = ec2.create_launch_template(
            f"eks-{group.uuid}",
            "EKS's copy of the node group's launch template",
            dict(
                data,
                ImageId="ami-eks-al2023",
                InstanceType=(kwargs.get("instance_types") or ["t3.medium"])[0],
            ),
            {"launch-template": {"eks:cluster-name": cluster_name, "eks:nodegroup-name": nodegroup_name}},
        )
        group.harness_template = copy.id
        asg.create_auto_scaling_group(
            name=asg_name,
            availability_zones=[],
            desired_capacity=0,
            max_size=int(scaling.get("maxSize", 2)),
            min_size=int(scaling.get("minSize", 1)),
            launch_config_name=None,
            launch_template={"LaunchTemplateId": copy.id, "Version": "$Default"},
            vpc_zone_identifier=",".join(subnets),
            default_cooldown=None,
            health_check_period=None,
            health_check_type="EC2",
            load_balancers=[],
            target_group_arns=[],
            placement_group=None,
            termination_policies=[],
            tags=[
                {"ResourceId": asg_name, "ResourceType": "auto-scaling-group", "Key": k, "Value": v, "PropagateAtLaunch": True}
                for k, v in (("eks:cluster-name", cluster_name), ("eks:nodegroup-name", nodegroup_name))
            ],
        )
        made = asg.autoscaling_groups[asg_name]
        asg.set_desired_capacity(asg_name, int(scaling.get("desiredSize", 2)))
        # moto takes the groups and disks from the template; not its metadata options.
        for state in made.instance_states:
            state.instance.metadata_options = data.get("MetadataOptions", {})
        group.harness_asg = asg_name
        group.status = "CREATING"
        _later(group, "status", "ACTIVE")
        return group

    def strict_delete_nodegroup(self, cluster_name, nodegroup_name):
        group = self.clusters.get(cluster_name) and self.clusters[cluster_name].nodegroups.get(nodegroup_name)
        if group is not None and group.status != "ACTIVE":
            from moto.eks.exceptions import ResourceInUseException

            raise ResourceInUseException(
                clusterName=cluster_name,
                nodegroupName=nodegroup_name,
                addonName=None,
                message=f"Nodegroup {nodegroup_name} is currently {group.status}",
            )
        result = delete_nodegroup(self, cluster_name, nodegroup_name)
        asg_name = getattr(result, "harness_asg", None)
        if asg_name:
            from moto.autoscaling.models import autoscaling_backends

            autoscaling_backends[self.account_id][self.region_name].delete_auto_scaling_group(asg_name)
            ec2_backends[self.account_id][self.region_name].delete_launch_template(
                None, result.harness_template
            )
        return result

    eks_models.EKSBackend.create_nodegroup = strict_create_nodegroup
    eks_models.EKSBackend.delete_nodegroup = strict_delete_nodegroup

    # ECR's registry endpoint: a real registry on loopback (fake_ecr_registry), a fresh password
    # per GetAuthorizationToken, valid 12 hours, as AWS gives them.
    from moto.ecr import responses as ecr_responses
    from moto.core.responses import ActionResult

    def get_authorization_token(self):
        endpoint, token = fake_ecr_registry.endpoint()
        expires = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=12)
        return ActionResult(
            {"authorizationData": [{"authorizationToken": token, "expiresAt": expires, "proxyEndpoint": endpoint}]}
        )

    ecr_responses.ECRResponse.get_authorization_token = get_authorization_token



def learner_lab_iam():
    # What every Learner Lab account has, and all it has: LabRole and its instance profile.
    from moto.iam.models import iam_backends

    iam = iam_backends["123456789012"]["global"]
    iam.create_role("LabRole", "{}", "/", None, "the Learner Lab's role", [], None)
    iam.create_instance_profile("LabInstanceProfile", "/", ["LabRole"])
    # EKS's roles, named as the lab names them: a prefix and a random suffix.
    for role in ("LabEksClusterRole", "LabEksNodeRole"):
        iam.create_role(
            f"c142813a3791540l8740561t1w1-{role}-Ke9s0hySLUDZ", "{}", "/", None, role, [], None
        )


def main():
    global PENDING_SECONDS, CREATE_CALL_SECONDS, BAKE_SECONDS, HEALTH_PORT
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--pending-seconds", type=float, default=0.0)
    parser.add_argument("--create-call-seconds", type=float, default=0.0)
    parser.add_argument("--bake-seconds", type=float, default=0.5)
    args = parser.parse_args()
    BAKE_SECONDS = args.bake_seconds
    PENDING_SECONDS = args.pending_seconds
    fake_kube.PENDING["seconds"] = PENDING_SECONDS
    CREATE_CALL_SECONDS = args.create_call_seconds

    patch_pending_states()
    patch_strict_deletes()
    patch_listener_rules()
    patch_monolith()
    patch_target_health()
    patch_eks()
    learner_lab_iam()

    app = Harness(DomainDispatcherApplication(create_backend_app))
    server = make_server(
        "127.0.0.1", args.port, app, threaded=True, request_handler=MotoRequestHandler
    )
    # A free port for the VMs' health answers (the same on every Elastic IP, as 443 is).
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    HEALTH_PORT = probe.getsockname()[1]
    probe.close()
    print(f"PORT={server.server_port}", flush=True)
    print(f"HEALTH_PORT={HEALTH_PORT}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
