"""Start moto's server for converge's tests and demo, on a free loopback port, with a few version-pinned
extensions where moto differs from AWS's documented behaviour.

Prints `port=<n>` on its first line of output, then serves until killed (or until its parent's stdin closes,
so a crashed test run never leaves an emulator behind).

Extensions (moto 5.2.5; each names the quirk it covers):
- ELB listeners ignore `InstanceProtocol` and report the front-end protocol instead (an HTTPS listener
  forwarding to HTTP instances reads back as HTTPS -> HTTPS). AWS keeps what was asked for.
- `DeleteLoadBalancerListeners` with several ports deletes none of them (each port's pass keeps the
  listeners of the others). AWS deletes every port named.
- `StartInstanceRefresh`, `DescribeInstanceRefreshes` and `CancelInstanceRefresh` are missing (moto answers
  500). Here a refresh is recorded with its preferences and desired configuration and advances one step per
  describe (Pending -> InProgress 50% -> Successful 100%), so a waiter polls for real; a second start while
  one runs fails with `InstanceRefreshInProgress`, as in AWS. As in AWS, `AutoRollback` without a desired
  configuration is refused (`ValidationError`), and the group takes the desired configuration (its launch
  template and version) when the refresh succeeds, not before; a cancelled one reads `Cancelled` and
  changes nothing. Instances are not replaced.
- `CreateAutoScalingGroup` turns a `HealthCheckGracePeriod` of 0 (or none) into 300. AWS keeps 0, its default.
- `UpdateAutoScalingGroup` ignores `TerminationPolicies`; AWS replaces the group's policies with those given.
- `PutNotificationConfiguration`, `DescribeNotificationConfigurations` and `DeleteNotificationConfiguration`
  are missing (moto answers 500). Here a group keeps, per SNS topic, the notification types put for it (a put
  replaces that topic's types; unknown types are refused, as in AWS), a describe lists one entry per group,
  topic and type of the groups named (all when none is), and a group's configurations go with it.
- `DeleteLaunchTemplateVersions` is missing. Here it deletes the versions named, refuses the default one
  (per-version error, as in AWS), and deleted versions no longer appear in `DescribeLaunchTemplateVersions`.
- RDS instances are `available` the moment they are created or modified, and every modification is applied
  at once. Here an instance goes `creating` -> `backing-up` -> `available` (one step per describe), a change
  applied immediately passes through `modifying`, and a change without `ApplyImmediately` is held in
  `PendingModifiedValues` (class, storage, version, multi-AZ, backup retention) as AWS holds it for the
  maintenance window.
- `DescribeEngineDefaultParameters` is missing: here it answers a short table of MySQL 8.0 parameters
  (which are static, which dynamic).
- `DeleteDBParameterGroup` deletes a group still used by an instance; here it refuses, as AWS does.
- `ResetDBParameterGroup` is missing. Here it resets the parameters named (or, with `ResetAllParameters`, every
  one) to the engine's default, so they are no longer set in the group, and refuses `immediate` for a static
  parameter (`InvalidParameterCombination`), as AWS does.
- `DescribeDBParameters` ignores `Source` and answers the parameters set in the group (all it keeps) without
  their `Source` or `ApplyType`. Here, with `Source=user` or none, it answers them as AWS does, each with
  source `user` and, for the parameters of the engine-default table below, its apply type; any other source
  answers none of them.
- `PromoteReadReplica` leaves the promoted instance reporting its former source; here it stands alone. Without
  `BackupRetentionPeriod` it keeps the replica's retention; AWS's default for the promotion is 1 day, and here
  so is the emulator's.
- `CreateDBInstanceReadReplica` makes the replica a copy of its primary, so it inherits the primary's
  backup retention. RDS creates read replicas with automated backups off (retention 0; the API takes no
  retention for a replica, which is set afterwards with ModifyDBInstance); here so does the emulator.
- S3's `GetBucketVersioning` answers with a `GetBucketVersioningResponse` root element, which no SDK but
  botocore accepts; AWS answers `VersioningConfiguration`. Here it does too.
- S3 conditional writes (`PutObject` with `If-None-Match: *` or `If-Match`, `DeleteObject` with `If-Match`)
  check the condition and then write, unguarded, on a threaded server: two conditional writes to one key at
  the same moment can both pass the check and both succeed, so two appliers could both take converge's
  lock. AWS evaluates the condition atomically with the write; a conditional request arriving while
  another is in progress on the same key fails with 409 `ConditionalRequestConflict`. Here too.
- `CreateLaunchTemplate` and `CreateLaunchTemplateVersion` ignore `ClientToken`: a retried request whose
  first answer was lost creates a second template (refused: the name exists) or a second version. AWS
  answers a repeated token with what the first request created, and a token reused with other parameters
  with `IdempotentParameterMismatch`. Here too.
- `GetResources` (Resource Groups Tagging API) without `TagsPerPage` still ends a page at 100 tags, so a
  request for 100 resources a page gets 16 of a fleet whose objects carry 6 tags each. AWS applies a tag
  limit only when `TagsPerPage` is given (it recommends `ResourcesPerPage` instead); here too.
- `UpdateSecurityGroupRuleDescriptionsIngress`/`Egress` leave a rule's description as it is when the
  request gives none; AWS removes it (that is how a description is taken off). Here too.
- A rule naming a security group is matched with its description (so a description update never finds
  it, and a revoke must repeat it); AWS matches a rule by protocol, ports and peer. Here too.
- `CreateLaunchTemplateVersion` keeps user data as a plain string, which moto's own auto-scaling code then
  rejects when it launches instances from that version; here it is kept base64-typed, as version 1 is.

Not a quirk of moto but of its server: werkzeug listens with a backlog of 128, so a fleet's reads arriving
together (four per bucket, hundreds at once) overflow it and wait a second for the kernel to retry their
connection. AWS's endpoints accept them; here the backlog is the kernel's largest (`somaxconn`).
"""

import sys
import threading

import moto
from werkzeug.serving import make_server

PINNED = "5.2.5"
if moto.__version__ != PINNED:
    sys.exit(f"launcher.py extends moto {PINNED}; found {moto.__version__}: re-check the extensions below")

from moto.elb import models as elb_models  # noqa: E402
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app  # noqa: E402


def _remember_instance_protocols(listeners, ports):
    by_port = {str(p.get("LoadBalancerPort")): p.get("InstanceProtocol") for p in ports or []}
    for listener in listeners:
        wanted = by_port.get(str(listener.load_balancer_port))
        if wanted:
            listener._instance_protocol = wanted.upper()


elb_models.FakeListener.instance_protocol = property(
    lambda self: getattr(self, "_instance_protocol", None) or self.protocol
)

_lb_init = elb_models.LoadBalancer.__init__


def _lb_init_keeping_instance_protocol(self, *args, **kwargs):
    _lb_init(self, *args, **kwargs)
    ports = kwargs.get("ports", args[3] if len(args) > 3 else [])
    _remember_instance_protocols(self.listeners, ports)


elb_models.LoadBalancer.__init__ = _lb_init_keeping_instance_protocol

_create_listeners = elb_models.ELBBackend.create_load_balancer_listeners


def _create_listeners_keeping_instance_protocol(self, name, ports):
    balancer = _create_listeners(self, name, ports)
    if balancer is not None:
        _remember_instance_protocols(balancer.listeners, ports)
    return balancer


elb_models.ELBBackend.create_load_balancer_listeners = _create_listeners_keeping_instance_protocol


def _delete_listeners(self, name, ports):
    balancer = self.get_load_balancer(name)
    if balancer:
        gone = {int(p) for p in ports}
        balancer.listeners = [l for l in balancer.listeners if int(l.load_balancer_port) not in gone]
    return balancer


elb_models.ELBBackend.delete_load_balancer_listeners = _delete_listeners


# --- Instance refreshes (auto scaling) -------------------------------------------------------------------

import uuid  # noqa: E402

from moto.autoscaling import models as asg_models  # noqa: E402
from moto.autoscaling import responses as asg_responses  # noqa: E402
from moto.autoscaling.exceptions import AutoscalingClientError, ValidationError  # noqa: E402
from moto.core.responses import ActionResult  # noqa: E402
from moto.core.utils import utcnow  # noqa: E402


class _RefreshInProgress(AutoscalingClientError):
    code = "InstanceRefreshInProgress"


_REFRESH_STEPS = [("Pending", 0), ("InProgress", 50), ("Successful", 100)]


def _refreshes(backend):
    if not hasattr(backend, "_converge_refreshes"):
        backend._converge_refreshes = {}
    return backend._converge_refreshes


def _group(backend, name):
    group = backend.autoscaling_groups.get(name)
    if group is None:
        raise ValidationError(f"AutoScalingGroup name not found - {name}")
    return group


def _true(value):
    return value is True or str(value).lower() == "true"


def _start_instance_refresh(self):
    name = self._get_param("AutoScalingGroupName")
    backend = self.autoscaling_backend
    _group(backend, name)
    runs = _refreshes(backend).setdefault(name, [])
    if any(r["step"] < len(_REFRESH_STEPS) - 1 for r in runs):
        raise _RefreshInProgress(f"An Instance Refresh is already in progress and blocks the execution of this Instance Refresh.")
    preferences = self._get_param("Preferences") or {}
    desired = self._get_param("DesiredConfiguration") or {}
    # AWS: a rollback needs a desired configuration to roll back from.
    if _true(preferences.get("AutoRollback")) and not desired:
        raise ValidationError(
            "The request isn't valid. The AutoRollback parameter cannot be set to true when the DesiredConfiguration parameter is empty. "
            "Set AutoRollback to false or specify a desired configuration and try again."
        )
    run = {
        "id": str(uuid.uuid4()),
        "step": 0,
        "start": utcnow(),
        "preferences": preferences,
        "desired": desired,
        "strategy": self._get_param("Strategy") or "Rolling",
    }
    runs.insert(0, run)
    return ActionResult({"InstanceRefreshId": run["id"]})


def _succeed(backend, name, run):
    """What AWS does when a refresh succeeds: the group takes the desired configuration."""
    template = (run.get("desired") or {}).get("LaunchTemplate")
    if template:
        _group(backend, name)._set_launch_configuration(None, template, None)


def _describe_instance_refreshes(self):
    name = self._get_param("AutoScalingGroupName")
    ids = self._get_param("InstanceRefreshIds") or []
    out = []
    for run in _refreshes(self.autoscaling_backend).get(name, []):
        if ids and run["id"] not in ids:
            continue
        status, percent = _REFRESH_STEPS[run["step"]]
        if run.get("cancelled"):
            status = "Cancelled"
        item = {
            "AutoScalingGroupName": name,
            "InstanceRefreshId": run["id"],
            "Status": status,
            "PercentageComplete": percent,
            "StartTime": run["start"],
            "Preferences": run["preferences"],
            "Strategy": run["strategy"],
        }
        if run.get("desired"):
            item["DesiredConfiguration"] = run["desired"]
        if status in ("Successful", "Cancelled"):
            item["EndTime"] = utcnow()
        out.append(item)
        if run["step"] < len(_REFRESH_STEPS) - 1:
            run["step"] += 1
            if run["step"] == len(_REFRESH_STEPS) - 1:
                _succeed(self.autoscaling_backend, name, run)
    return ActionResult({"InstanceRefreshes": out})


def _cancel_instance_refresh(self):
    name = self._get_param("AutoScalingGroupName")
    for run in _refreshes(self.autoscaling_backend).get(name, []):
        if run["step"] < len(_REFRESH_STEPS) - 1:
            run["step"] = len(_REFRESH_STEPS) - 1
            run["cancelled"] = True
            return ActionResult({"InstanceRefreshId": run["id"]})
    raise ValidationError("No in progress or pending Instance Refresh found")


# --- Notification configurations (auto scaling) -------------------------------------------------------------
# moto 5.2.5 answers PutNotificationConfiguration, DescribeNotificationConfigurations and
# DeleteNotificationConfiguration with 500 (not implemented). AWS keeps, per group, the notification types
# sent to each SNS topic: a put replaces the types of that topic; a describe lists one entry per group, topic
# and type, of the groups named (every group when none is), sorted by group and topic; a delete removes one
# topic's; a group's configurations go with the group.

_NOTIFICATION_TYPES = {
    "autoscaling:EC2_INSTANCE_LAUNCH",
    "autoscaling:EC2_INSTANCE_LAUNCH_ERROR",
    "autoscaling:EC2_INSTANCE_TERMINATE",
    "autoscaling:EC2_INSTANCE_TERMINATE_ERROR",
    "autoscaling:TEST_NOTIFICATION",
}


def _notifications(backend):
    if not hasattr(backend, "_converge_notifications"):
        backend._converge_notifications = {}
    # A deleted group's configurations are gone with it.
    for name in list(backend._converge_notifications):
        if name not in backend.autoscaling_groups:
            del backend._converge_notifications[name]
    return backend._converge_notifications


def _put_notification_configuration(self):
    name = self._get_param("AutoScalingGroupName")
    backend = self.autoscaling_backend
    _group(backend, name)
    topic = self._get_param("TopicARN")
    types = self._get_param("NotificationTypes") or []
    unknown = [t for t in types if t not in _NOTIFICATION_TYPES]
    if unknown:
        raise ValidationError(f"Notification type(s) not supported: {', '.join(unknown)}")
    _notifications(backend).setdefault(name, {})[topic] = set(types)
    return ActionResult({})


def _describe_notification_configurations(self):
    names = self._get_param("AutoScalingGroupNames") or []
    stored = _notifications(self.autoscaling_backend)
    out = []
    for group in sorted(names or stored):
        for topic, types in sorted(stored.get(group, {}).items()):
            out.extend({"AutoScalingGroupName": group, "TopicARN": topic, "NotificationType": t} for t in sorted(types))
    return ActionResult({"NotificationConfigurations": out})


def _delete_notification_configuration(self):
    name = self._get_param("AutoScalingGroupName")
    backend = self.autoscaling_backend
    _group(backend, name)
    _notifications(backend).get(name, {}).pop(self._get_param("TopicARN"), None)
    return ActionResult({})


# --- A group's health-check grace period ---------------------------------------------------------------------
# moto 5.2.5 creates a group given `HealthCheckGracePeriod=0` with 300 (and one given none with 300). AWS keeps
# the 0 asked for, and its default (none given) is 0 too.

_create_auto_scaling_group = asg_models.AutoScalingBackend.create_auto_scaling_group


def _create_auto_scaling_group_keeping_its_grace(self, *args, **kwargs):
    group = _create_auto_scaling_group(self, *args, **kwargs)
    period = kwargs.get("health_check_period")
    group.health_check_grace_period = int(period) if period is not None else 0
    return group


asg_models.AutoScalingBackend.create_auto_scaling_group = _create_auto_scaling_group_keeping_its_grace

# moto 5.2.5's `UpdateAutoScalingGroup` ignores `TerminationPolicies`; AWS replaces the group's list with it.
_update_auto_scaling_group = asg_responses.AutoScalingResponse.update_auto_scaling_group


def _update_auto_scaling_group_with_termination_policies(self):
    result = _update_auto_scaling_group(self)
    policies = self._get_param("TerminationPolicies")
    if policies:
        group = self.autoscaling_backend.autoscaling_groups[self._get_param("AutoScalingGroupName")]
        group.termination_policies = policies
    return result


asg_responses.AutoScalingResponse.update_auto_scaling_group = _update_auto_scaling_group_with_termination_policies

asg_responses.AutoScalingResponse.put_notification_configuration = _put_notification_configuration
asg_responses.AutoScalingResponse.describe_notification_configurations = _describe_notification_configurations
asg_responses.AutoScalingResponse.delete_notification_configuration = _delete_notification_configuration

asg_responses.AutoScalingResponse.start_instance_refresh = _start_instance_refresh
asg_responses.AutoScalingResponse.describe_instance_refreshes = _describe_instance_refreshes
asg_responses.AutoScalingResponse.cancel_instance_refresh = _cancel_instance_refresh

# --- Launch template versions (EC2) -----------------------------------------------------------------------

from moto.core.types import Base64EncodedString  # noqa: E402
from moto.ec2.models import launch_templates as lt_models  # noqa: E402
from moto.ec2.responses import launch_templates as lt_responses  # noqa: E402

_create_version = lt_models.LaunchTemplate.create_version


def _create_version_keeping_base64(self, data, description):
    user_data = data.get("UserData")
    if isinstance(user_data, str):
        data = dict(data, UserData=Base64EncodedString(user_data))
    return _create_version(self, data, description)


lt_models.LaunchTemplate.create_version = _create_version_keeping_base64

_describe_versions = lt_models.LaunchTemplateBackend.describe_launch_template_versions


def _describe_versions_without_deleted(self, *args, **kwargs):
    found = _describe_versions(self, *args, **kwargs)
    return [(t, v) for (t, v) in found if v.number not in getattr(t, "_converge_deleted", set())]


lt_models.LaunchTemplateBackend.describe_launch_template_versions = _describe_versions_without_deleted


def _delete_launch_template_versions(self):
    name = self._get_param("LaunchTemplateName")
    tid = self._get_param("LaunchTemplateId")
    template = self.ec2_backend.get_launch_template_by_name(name) if name else self.ec2_backend.get_launch_template(tid)
    deleted = template.__dict__.setdefault("_converge_deleted", set())
    ok, failed = [], []
    for v in self._get_param("Versions") or []:
        number = int(v)
        base = {"LaunchTemplateId": template.id, "LaunchTemplateName": template.name, "VersionNumber": number}
        if number == template.default_version_number:
            failed.append(dict(base, ResponseError={"Code": "launchTemplateVersionIsDefault", "Message": "the default version cannot be deleted"}))
        elif number < 1 or number > len(template.versions) or number in deleted:
            failed.append(dict(base, ResponseError={"Code": "launchTemplateVersionDoesNotExist", "Message": "no such version"}))
        else:
            deleted.add(number)
            ok.append(base)
    return ActionResult(
        {
            "SuccessfullyDeletedLaunchTemplateVersions": ok,
            "UnsuccessfullyDeletedLaunchTemplateVersions": failed,
        }
    )


lt_responses.LaunchTemplates.delete_launch_template_versions = _delete_launch_template_versions


from moto.ec2.exceptions import EC2ClientError  # noqa: E402

# Results of launch-template creates by (account, region, action, ClientToken), with the request they answered.
_BY_TOKEN = {}
_BY_TOKEN_LOCK = threading.Lock()


def _idempotent(action, original):
    def create(self):
        token = self._get_param("ClientToken")
        if not token:
            return original(self)
        key = (self.current_account, self.region, action, token)
        asked = sorted((k, tuple(v)) for k, v in self.querystring.items() if k not in ("ClientToken", "Action", "Version"))
        with _BY_TOKEN_LOCK:
            seen = _BY_TOKEN.get(key)
            if seen is not None:
                if seen[0] != asked:
                    raise EC2ClientError(
                        "IdempotentParameterMismatch",
                        "The client token you have provided is associated with a resource that has different parameters.",
                    )
                return seen[1]
            result = original(self)
            _BY_TOKEN[key] = (asked, result)
            return result

    return create


lt_responses.LaunchTemplates.create_launch_template = _idempotent("CreateLaunchTemplate", lt_responses.LaunchTemplates.create_launch_template)
lt_responses.LaunchTemplates.create_launch_template_version = _idempotent(
    "CreateLaunchTemplateVersion", lt_responses.LaunchTemplates.create_launch_template_version
)


# --- Security group rule descriptions (EC2) -------------------------------------------------------------------
# moto 5.2.5 updates a rule's description only when the request gives one; AWS removes it when it does not.

from moto.ec2.models import security_groups as sg_models  # noqa: E402

_sg_update_description = sg_models.SecurityGroupBackend._sg_update_description


def _sg_update_description_or_remove_it(self, security_rule, rule):
    _sg_update_description(self, security_rule, rule)
    same_range = any(k in rule.ip_range and rule.ip_range.get(k) == security_rule.ip_range.get(k) for k in ("CidrIp", "CidrIpv6"))
    if same_range and "Description" not in security_rule.ip_range:
        rule.ip_range.pop("Description", None)
    same_group = rule.source_group and security_rule.source_group.get("GroupId") == rule.source_group.get("GroupId")
    if same_group and "Description" not in security_rule.source_group:
        rule.source_group.pop("Description", None)


sg_models.SecurityGroupBackend._sg_update_description = _sg_update_description_or_remove_it

_rule_eq = sg_models.SecurityGroupRule.__eq__


def _rule_eq_whatever_its_description(self, other):
    if not (self.source_group or other.source_group):
        return _rule_eq(self, other)
    undescribed = [dict(r.source_group) for r in (self, other)]
    for group in undescribed:
        group.pop("Description", None)
    if undescribed[0] != undescribed[1]:
        return False
    saved = (self.source_group, other.source_group)
    self.source_group, other.source_group = undescribed
    try:
        return _rule_eq(self, other)
    finally:
        self.source_group, other.source_group = saved


sg_models.SecurityGroupRule.__eq__ = _rule_eq_whatever_its_description


# --- RDS: status transitions, pending modifications, engine defaults ---------------------------------------

from moto.rds import models as rds_models  # noqa: E402
from moto.rds import responses as rds_responses  # noqa: E402
from moto.rds import exceptions as rds_exceptions  # noqa: E402
from moto.rds.exceptions import RDSClientError  # noqa: E402

# The fields AWS holds for the maintenance window: moto's argument name -> PendingModifiedValues' member.
_PENDING = {
    "db_instance_class": "DBInstanceClass",
    "allocated_storage": "AllocatedStorage",
    "engine_version": "EngineVersion",
    "multi_az": "MultiAZ",
    "backup_retention_period": "BackupRetentionPeriod",
}


def _steps(database, now, *later):
    database.status = now
    database._converge_steps = list(later)


def _with_steps(original, now, *later):
    def patched(self):
        result = original(self)
        _steps(result.result["DBInstance"], now, *later)
        return result

    return patched


R = rds_responses.RDSResponse
R.create_db_instance = _with_steps(R.create_db_instance, "creating", "backing-up", "available")
R.create_db_instance_read_replica = _with_steps(R.create_db_instance_read_replica, "creating", "available")
R.promote_read_replica = _with_steps(R.promote_read_replica, "modifying", "available")

_describe_db_instances = R.describe_db_instances


def _describe_db_instances_stepping(self):
    for database in self.backend.databases.values():
        steps = getattr(database, "_converge_steps", None)
        if steps:
            database.status = steps.pop(0)
    return _describe_db_instances(self)


R.describe_db_instances = _describe_db_instances_stepping

_modify_db_instance = rds_models.RDSBackend.modify_db_instance


def _modify_db_instance_holding_pending(self, db_instance_identifier, db_kwargs):
    database = self.describe_db_instances(db_instance_identifier)[0]
    if db_kwargs.get("apply_immediately"):
        result = _modify_db_instance(self, db_instance_identifier, db_kwargs)
        pending = getattr(result, "pending_modified_values", None) or {}
        for key, member in _PENDING.items():
            if db_kwargs.get(key) is not None:
                pending.pop(member, None)
        result.pending_modified_values = pending or None
        _steps(result, "modifying", "available")
        return result
    pending = dict(getattr(database, "pending_modified_values", None) or {})
    for key, member in _PENDING.items():
        value = db_kwargs.pop(key, None)
        if value is not None:
            pending[member] = value
    result = _modify_db_instance(self, db_instance_identifier, db_kwargs)
    result.pending_modified_values = pending or None
    return result


rds_models.RDSBackend.modify_db_instance = _modify_db_instance_holding_pending

_MYSQL80 = [
    ("max_connections", "dynamic"),
    ("slow_query_log", "dynamic"),
    ("long_query_time", "dynamic"),
    ("innodb_log_file_size", "static"),
    ("innodb_buffer_pool_instances", "static"),
    ("performance_schema", "static"),
]


def _describe_engine_default_parameters(self):
    family = self.params.get("DBParameterGroupFamily")
    parameters = [
        {"ParameterName": n, "ApplyType": t, "IsModifiable": True, "Source": "engine-default", "DataType": "string"}
        for n, t in (_MYSQL80 if family == "mysql8.0" else [])
    ]
    return ActionResult({"EngineDefaults": {"DBParameterGroupFamily": family, "Parameters": parameters}})


R.describe_engine_default_parameters = _describe_engine_default_parameters


def _parameter_group(self, name):
    groups = self.backend.describe_db_parameter_groups({"db_parameter_group_name": name})
    if not groups:
        raise rds_exceptions.DBParameterGroupNotFoundError(name)
    return groups[0]


def _apply_types(group):
    return dict(_MYSQL80) if group.family == "mysql8.0" else {}


def _describe_db_parameters_as_set(self):
    group = _parameter_group(self, self.params.get("DBParameterGroupName"))
    kinds = _apply_types(group)
    parameters = []
    if self.params.get("Source") in (None, "user"):
        for name, p in group.parameters.items():
            kind = {"ApplyType": kinds[name]} if name in kinds else {}
            parameters.append({**p, "Source": "user", "IsModifiable": True, **kind})
    return ActionResult({"Parameters": parameters})


def _reset_db_parameter_group(self):
    group = _parameter_group(self, self.params.get("DBParameterGroupName"))
    named = [p.original_dict() if hasattr(p, "original_dict") else p for p in self.params.get("Parameters", [])]
    kinds = _apply_types(group)
    for p in named:
        if p.get("ApplyMethod") == "immediate" and kinds.get(p["ParameterName"]) == "static":
            raise RDSClientError("InvalidParameterCombination", f"cannot use immediate apply method for static parameter {p['ParameterName']}")
    if self.params.get("ResetAllParameters"):
        group.parameters.clear()
    for p in named:
        group.parameters.pop(p["ParameterName"], None)
    return ActionResult({"DBParameterGroupName": group.name})


R.describe_db_parameters = _describe_db_parameters_as_set
R.reset_db_parameter_group = _reset_db_parameter_group

_promote_read_replica = rds_models.RDSBackend.promote_read_replica


def _promote_read_replica_standing_alone(self, db_kwargs):
    database = self.databases[db_kwargs["db_instance_identifier"]]
    source = database.source_db_instance_identifier
    was_replica = database.is_replica
    if was_replica and db_kwargs.get("backup_retention_period") is None:
        db_kwargs["backup_retention_period"] = 1
    result = _promote_read_replica(self, db_kwargs)
    if was_replica and source:
        primary = self.databases.get(source)
        if primary is not None and result.db_instance_identifier in primary.replicas:
            primary.remove_replica(result)
        result.source_db_instance_identifier = None
    return result


rds_models.RDSBackend.promote_read_replica = _promote_read_replica_standing_alone

_create_db_instance_read_replica = rds_models.RDSBackend.create_db_instance_read_replica


def _create_db_instance_read_replica_without_backups(self, db_kwargs):
    replica = _create_db_instance_read_replica(self, db_kwargs)
    replica.backup_retention_period = 0
    return replica


rds_models.RDSBackend.create_db_instance_read_replica = _create_db_instance_read_replica_without_backups

_delete_db_parameter_group = rds_models.RDSBackend.delete_db_parameter_group


def _delete_db_parameter_group_unless_used(self, db_parameter_group_name):
    users = [d.db_instance_identifier for d in self.databases.values() if getattr(d, "db_parameter_group_name", None) == db_parameter_group_name]
    if users:
        raise RDSClientError(
            "InvalidDBParameterGroupState",
            f"One or more database instances are still members of this parameter group {db_parameter_group_name}, so the group cannot be deleted",
        )
    return _delete_db_parameter_group(self, db_parameter_group_name)


rds_models.RDSBackend.delete_db_parameter_group = _delete_db_parameter_group_unless_used


# --- S3 ----------------------------------------------------------------------------------------------------

from moto.s3 import responses as s3_responses  # noqa: E402


def _get_bucket_versioning(self):
    status = self.backend.get_bucket_versioning(self.bucket_name)
    inner = f"<Status>{status}</Status>" if status else ""
    body = f'<?xml version="1.0" encoding="UTF-8"?><VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">{inner}</VersioningConfiguration>'
    return 200, {}, body


s3_responses.S3Response.get_bucket_versioning = _get_bucket_versioning

# S3's error document, as AWS sends it with a 409 (moto's own exceptions take their status from its model,
# which has no shape for this code).
_CONDITIONAL_CONFLICT = (
    '<?xml version="1.0" encoding="UTF-8"?><Error><Code>ConditionalRequestConflict</Code>'
    "<Message>A conflicting conditional operation is currently in progress against this resource. Please try again.</Message>"
    "<RequestId>moto-conditional-conflict</RequestId></Error>"
)
_conditional_guard = threading.Lock()
_conditional_in_flight = set()


def _atomic_conditional(original):
    def patched(self):
        if not (self.headers.get("If-Match") or self.headers.get("If-None-Match")):
            return original(self)
        key = (self.bucket_name, self.parse_key_name())
        with _conditional_guard:
            if key in _conditional_in_flight:
                return 409, {"Content-Type": "application/xml"}, _CONDITIONAL_CONFLICT
            _conditional_in_flight.add(key)
        try:
            return original(self)
        finally:
            with _conditional_guard:
                _conditional_in_flight.discard(key)

    return patched


s3_responses.S3Response.put_object = _atomic_conditional(s3_responses.S3Response.put_object)
s3_responses.S3Response.delete_object = _atomic_conditional(s3_responses.S3Response.delete_object)


# --- Resource Groups Tagging API -----------------------------------------------------------------------------

from moto.resourcegroupstaggingapi import models as tagging_models  # noqa: E402
from moto.resourcegroupstaggingapi import responses as tagging_responses  # noqa: E402

_tagging_request = threading.local()
_original_get_resources_response = tagging_responses.ResourceGroupsTaggingAPIResponse.get_resources
_original_get_resources = tagging_models.ResourceGroupsTaggingAPIBackend.get_resources


def _get_resources_response(self):
    _tagging_request.tags_per_page_given = self._get_param("TagsPerPage") is not None
    return _original_get_resources_response(self)


def _get_resources_by_resources_per_page(self, *args, **kwargs):
    if not getattr(_tagging_request, "tags_per_page_given", True):
        kwargs["tags_per_page"] = sys.maxsize
    return _original_get_resources(self, *args, **kwargs)


tagging_responses.ResourceGroupsTaggingAPIResponse.get_resources = _get_resources_response
tagging_models.ResourceGroupsTaggingAPIBackend.get_resources = _get_resources_by_resources_per_page


def _exit_when_parent_goes():
    sys.stdin.read()
    import os

    os._exit(0)


def main():
    app = DomainDispatcherApplication(create_backend_app)
    from werkzeug.serving import ThreadedWSGIServer

    ThreadedWSGIServer.request_queue_size = 4096
    server = make_server("127.0.0.1", 0, app, threaded=True)
    print(f"port={server.server_port}", flush=True)
    if "--no-stdin-watch" not in sys.argv:
        threading.Thread(target=_exit_when_parent_goes, daemon=True).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
