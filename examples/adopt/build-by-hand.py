"""A small fleet built by hand, as agencies build them in the console: no converge tags anywhere.

`scripts/demo examples/adopt` runs this against the emulator, then `converge import` writes the desired
state for it, and the plan adopts every object with tags only. It expects what the demo prepares: the
nightly image and the hosted zones sites.agency.net and acme.co.uk.
"""
import json

import boto3

region = "eu-west-1"
ec2 = boto3.client("ec2", region_name=region)
elb = boto3.client("elb", region_name=region)
asg = boto3.client("autoscaling", region_name=region)
rds = boto3.client("rds", region_name=region)
route53 = boto3.client("route53", region_name=region)
s3 = boto3.client("s3", region_name=region)

vpc = next(v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"] if v["IsDefault"])
image = ec2.describe_images(Filters=[{"Name": "name", "Values": ["sites-nightly-*"]}])["Images"][0]["ImageId"]


def group(name, description):
    return ec2.create_security_group(GroupName=name, Description=description, VpcId=vpc)["GroupId"]


def tcp(port, **peer):
    return {"IpProtocol": "tcp", "FromPort": port, "ToPort": port, **peer}


lb_sg = group("web-lb", "HTTP(S) from anywhere")
web_sg = group("web-servers", "Web servers: HTTP from the load balancers")
db_sg = group("sites-db", "MySQL from the web servers")
anywhere = [{"CidrIp": "0.0.0.0/0"}]
ec2.authorize_security_group_ingress(GroupId=lb_sg, IpPermissions=[tcp(80, IpRanges=anywhere), tcp(443, IpRanges=anywhere)])
ec2.authorize_security_group_ingress(GroupId=web_sg, IpPermissions=[tcp(80, UserIdGroupPairs=[{"GroupId": lb_sg}])])
ec2.authorize_security_group_ingress(GroupId=db_sg, IpPermissions=[tcp(3306, UserIdGroupPairs=[{"GroupId": web_sg}])])

elb.create_load_balancer(
    LoadBalancerName="shared",
    Listeners=[{"Protocol": "HTTP", "LoadBalancerPort": 80, "InstanceProtocol": "HTTP", "InstancePort": 80}],
    AvailabilityZones=["eu-west-1a", "eu-west-1b"],
    SecurityGroups=[lb_sg],
)
elb.configure_health_check(
    LoadBalancerName="shared",
    HealthCheck={"Target": "HTTP:80/healthz", "Interval": 30, "Timeout": 5, "HealthyThreshold": 3, "UnhealthyThreshold": 2},
)
dns = elb.describe_load_balancers(LoadBalancerNames=["shared"])["LoadBalancerDescriptions"][0]["DNSName"]

ec2.create_launch_template(
    LaunchTemplateName="web-template",
    LaunchTemplateData={
        "ImageId": image,
        "InstanceType": "t3.small",
        "SecurityGroupIds": [web_sg],
        "UserData": "IyEvYmluL3NoCmVjaG8gd2ViID4gL2V0Yy9yb2xlCg==",  # #!/bin/sh / echo web > /etc/role
        "TagSpecifications": [{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": "web"}]}],
    },
)
asg.create_auto_scaling_group(
    AutoScalingGroupName="web-asg",
    LaunchTemplate={"LaunchTemplateName": "web-template", "Version": "1"},
    MinSize=1,
    MaxSize=3,
    DesiredCapacity=1,
    AvailabilityZones=["eu-west-1a", "eu-west-1b"],
    LoadBalancerNames=["shared"],
    HealthCheckType="ELB",
    HealthCheckGracePeriod=120,
)

rds.create_db_parameter_group(DBParameterGroupName="sites-mysql", DBParameterGroupFamily="mysql8.0", Description="Tuned for the sites")
rds.modify_db_parameter_group(
    DBParameterGroupName="sites-mysql",
    Parameters=[{"ParameterName": "max_connections", "ParameterValue": "600", "ApplyMethod": "pending-reboot"}],
)
rds.create_db_instance(
    DBInstanceIdentifier="sites-db",
    Engine="mysql",
    EngineVersion="8.0.39",
    DBInstanceClass="db.t3.medium",
    AllocatedStorage=20,
    MasterUsername="admin",
    MasterUserPassword="set-by-hand",
    DBParameterGroupName="sites-mysql",
    VpcSecurityGroupIds=[db_sg],
    BackupRetentionPeriod=7,
)
rds.create_db_instance_read_replica(DBInstanceIdentifier="sites-db-replica", SourceDBInstanceIdentifier="sites-db", VpcSecurityGroupIds=[db_sg])

zones = {z["Name"].rstrip("."): z["Id"] for z in route53.list_hosted_zones()["HostedZones"]}


def cname(name, value):
    return {"Action": "CREATE", "ResourceRecordSet": {"Name": name, "Type": "CNAME", "TTL": 300, "ResourceRecords": [{"Value": value}]}}


route53.change_resource_record_sets(
    HostedZoneId=zones["sites.agency.net"],
    ChangeBatch={"Changes": [cname("acme.sites.agency.net", dns), cname("globex.sites.agency.net", dns)]},
)
apex = {"Name": "acme.co.uk", "Type": "A", "AliasTarget": {"DNSName": dns, "HostedZoneId": "Z32O12XQLNTSW2", "EvaluateTargetHealth": False}}
route53.change_resource_record_sets(
    HostedZoneId=zones["acme.co.uk"],
    ChangeBatch={"Changes": [{"Action": "CREATE", "ResourceRecordSet": apex}, cname("www.acme.co.uk", "acme.sites.agency.net")]},
)

for site in ["acme", "globex"]:
    bucket = f"agency-{site}-media"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region}, ObjectOwnership="BucketOwnerEnforced")
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": False, "RestrictPublicBuckets": False},
    )
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Sid": "PublicReadMedia", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*"}],
    }
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))

print("built by hand, untagged: 3 security groups, a load balancer, a pool (web-template, web-asg), a parameter group,")
print("a MySQL primary and its replica, 4 records in sites.agency.net and acme.co.uk, 2 media buckets")
