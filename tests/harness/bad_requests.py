"""One request per rule the harness knows, each one AWS refuses: sent with botocore's own client
validation off (so the request reaches the wire as written) to the harness on the port given.
Prints one JSON line per request: the rule it breaks, the error code and message it got back
(null when it was accepted)."""

import base64
import json
import sys

import boto3
from botocore.config import Config

PORT = int(sys.argv[1])
URL = f"http://127.0.0.1:{PORT}"
KW = dict(
    endpoint_url=URL,
    region_name="us-east-1",
    aws_access_key_id="test",
    aws_secret_access_key="test",
    config=Config(parameter_validation=False, retries={"max_attempts": 1}),
)


def client(name):
    return boto3.client(name, **KW)


ec2, elb, rds, s3, asg, sm, efs = (
    client(n) for n in ("ec2", "elbv2", "rds", "s3", "autoscaling", "secretsmanager", "efs")
)


def extra_param(params, **_):
    params["body"]["NotAParameter"] = "1"


def no_such_action(params, **_):
    params["body"]["Action"] = "DescribeUnicorns"


ec2.meta.events.register("before-call.ec2.DescribeRegions", extra_param)
ec2.meta.events.register("before-call.ec2.DescribeAccountAttributes", no_such_action)

AMI = "ami-0d27e0fb3bac4d724"
LISTENER = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/x/1/2"
FORWARD = [{"Type": "forward", "TargetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/tg/1"}]


def vpc_tags(tags):
    return {"CidrBlock": "10.9.0.0/16", "TagSpecifications": [{"ResourceType": "vpc", "Tags": tags}]}


CASES = [
    ("model:required", lambda: elb.create_target_group(Protocol="HTTP", Port=80, VpcId="vpc-1")),
    ("model:enum", lambda: ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1, InstanceType="t3.bogus")),
    ("model:length", lambda: sm.create_secret(Name="n" * 600, SecretString="x")),
    ("model:pattern", lambda: efs.create_file_system(CreationToken="t", KmsKeyId="not a key")),
    ("model:range", lambda: elb.create_target_group(Name="tg", Protocol="HTTP", Port=80, VpcId="vpc-1", HealthCheckIntervalSeconds=1)),
    ("model:type", lambda: ec2.run_instances(ImageId=AMI, MinCount="one", MaxCount=1, InstanceType="t3.micro")),
    ("model:unknown-parameter", lambda: ec2.describe_regions()),
    ("model:operation", lambda: ec2.describe_account_attributes()),
    # botocore base64-encodes RunInstances' user data itself.
    ("limit:user-data", lambda: ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1, InstanceType="t3.micro", UserData="#" * 16385)),
    ("limit:tags-count", lambda: ec2.create_vpc(**vpc_tags([{"Key": f"k{i}", "Value": "v"} for i in range(51)]))),
    ("limit:tag-key", lambda: ec2.create_vpc(**vpc_tags([{"Key": "k" * 129, "Value": "v"}]))),
    ("limit:tag-value", lambda: ec2.create_vpc(**vpc_tags([{"Key": "k", "Value": "v" * 257}]))),
    ("limit:tag-aws-prefix", lambda: ec2.create_vpc(**vpc_tags([{"Key": "aws:owner", "Value": "me"}]))),
    ("limit:elb-name", lambda: elb.create_load_balancer(Name="n" * 33, Subnets=["subnet-1", "subnet-2"])),
    ("limit:elb-name", lambda: elb.create_load_balancer(Name="internal-shop", Subnets=["subnet-1", "subnet-2"])),
    ("limit:elb-name", lambda: elb.create_target_group(Name="-shop", Protocol="HTTP", Port=80, VpcId="vpc-1")),
    ("limit:health-check-timeout", lambda: elb.create_target_group(Name="tg", Protocol="HTTP", Port=80, VpcId="vpc-1", HealthCheckIntervalSeconds=10, HealthCheckTimeoutSeconds=10)),
    ("limit:ssl-policy", lambda: elb.create_listener(LoadBalancerArn="arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/x/1", Protocol="HTTPS", Port=443, SslPolicy="ELBSecurityPolicy-Made-Up", DefaultActions=[{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "200"}}])),
    ("limit:rule-values", lambda: elb.create_rule(ListenerArn=LISTENER, Priority=10, Conditions=[{"Field": "path-pattern", "PathPatternConfig": {"Values": [f"/p{i}" for i in range(6)]}}], Actions=FORWARD)),
    ("limit:rule-wildcards", lambda: elb.create_rule(ListenerArn=LISTENER, Priority=10, Conditions=[{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/a/*/*", "/b/*/*", "/c/*/*"]}}], Actions=FORWARD)),
    ("limit:rule-path-pattern", lambda: elb.create_rule(ListenerArn=LISTENER, Priority=10, Conditions=[{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/" + "a" * 128]}}], Actions=FORWARD)),
    ("limit:rule-path-pattern", lambda: elb.create_rule(ListenerArn=LISTENER, Priority=10, Conditions=[{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/books/{id}"]}}], Actions=FORWARD)),
    ("model:range", lambda: elb.create_rule(ListenerArn=LISTENER, Priority=50001, Conditions=[{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/a"]}}], Actions=FORWARD)),
    ("limit:rds-identifier", lambda: rds.create_db_instance(DBInstanceIdentifier="shop--db", DBInstanceClass="db.t3.micro", Engine="mysql")),
    ("limit:rds-identifier", lambda: rds.create_db_instance(DBInstanceIdentifier="1shop", DBInstanceClass="db.t3.micro", Engine="mysql")),
    ("limit:rds-subnet-group-name", lambda: rds.create_db_subnet_group(DBSubnetGroupName="default", DBSubnetGroupDescription="d", SubnetIds=["subnet-1"])),
    ("limit:bucket-name", lambda: s3.create_bucket(Bucket="Shop_Artifacts")),
    ("limit:bucket-name", lambda: s3.create_bucket(Bucket="192.168.1.1")),
    ("limit:security-group-name", lambda: ec2.create_security_group(GroupName="sg-web", Description="web")),
    ("limit:security-group-description", lambda: ec2.create_security_group(GroupName="web", Description="caf\u00e9 web")),
    ("limit:launch-template-name", lambda: ec2.create_launch_template(LaunchTemplateName="a b", LaunchTemplateData={"ImageId": AMI})),
    ("limit:user-data", lambda: ec2.create_launch_template(LaunchTemplateName="web-lt", LaunchTemplateData={"ImageId": AMI, "UserData": base64.b64encode(b"#" * 16385).decode()})),
    ("limit:asg-name", lambda: asg.create_auto_scaling_group(AutoScalingGroupName="shop:web", MinSize=1, MaxSize=1, LaunchTemplate={"LaunchTemplateName": "web-lt"}, VPCZoneIdentifier="subnet-1")),
]

for rule, call in CASES:
    try:
        call()
        code, message = None, None
    except Exception as e:  # botocore.exceptions.ClientError: what the harness answered
        err = getattr(e, "response", {}).get("Error", {})
        code, message = err.get("Code"), err.get("Message", str(e))
    print(json.dumps({"rule": rule, "code": code, "message": message}), flush=True)
