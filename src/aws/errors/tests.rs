//! Classification on SDK-constructed errors: what the SDK hands converge, built the way the SDK builds it.

use std::time::Duration;

use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_ec2::operation::delete_security_group::DeleteSecurityGroupError;
use aws_sdk_rds::operation::describe_db_instances::DescribeDBInstancesError;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::{ConnectorError, SdkError};
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::error::ErrorMetadata;
use aws_smithy_types::retry::ErrorKind;

use super::*;

fn response(status: u16) -> HttpResponse {
    HttpResponse::new(StatusCode::try_from(status).unwrap(), SdkBody::empty())
}

/// An EC2 error as the SDK makes it: EC2 models no errors, so each is "unhandled" with its code.
fn ec2(status: u16, code: &str, message: &str) -> SdkError<DeleteSecurityGroupError, HttpResponse> {
    SdkError::service_error(DeleteSecurityGroupError::generic(ErrorMetadata::builder().code(code).message(message).build()), response(status))
}

type Ec2Error = SdkError<DeleteSecurityGroupError, HttpResponse>;

fn class_of(err: Ec2Error) -> Class {
    classify(&err)
}

#[test]
fn each_class_has_its_aws_codes() {
    let cases: &[(u16, &str, Class)] = &[
        (400, "Throttling", Class::Throttled),
        (400, "ThrottlingException", Class::Throttled),
        (400, "RequestLimitExceeded", Class::Throttled),
        (503, "SlowDown", Class::Throttled),
        (400, "TooManyRequestsException", Class::Throttled),
        (400, "PriorRequestNotComplete", Class::Throttled),
        (400, "DependencyThrottle", Class::Throttled),
        (503, "ServiceUnavailable", Class::Transient),
        (500, "InternalError", Class::Transient),
        (500, "InternalFailure", Class::Transient),
        (400, "RequestTimeout", Class::Transient),
        (400, "InvalidPermission.Duplicate", Class::AlreadyExists),
        (400, "InvalidGroup.Duplicate", Class::AlreadyExists),
        (400, "DuplicateLoadBalancerName", Class::AlreadyExists),
        (400, "AlreadyExists", Class::AlreadyExists),
        (409, "BucketAlreadyOwnedByYou", Class::AlreadyExists),
        (409, "BucketAlreadyExists", Class::Conflict),
        (400, "DBInstanceAlreadyExists", Class::AlreadyExists),
        (400, "DBParameterGroupAlreadyExists", Class::AlreadyExists),
        (400, "InvalidLaunchTemplateName.AlreadyExistsException", Class::AlreadyExists),
        (400, "AlreadyExistsFault", Class::AlreadyExists),
        (400, "InvalidGroup.NotFound", Class::NotFound),
        (400, "InvalidLaunchTemplateId.VersionNotFound", Class::NotFound),
        (400, "InvalidLaunchTemplateName.NotFoundException", Class::NotFound),
        (400, "InvalidAMIID.NotFound", Class::NotFound),
        (404, "NoSuchBucket", Class::NotFound),
        (404, "NoSuchTagSet", Class::NotFound),
        (404, "NoSuchBucketPolicy", Class::NotFound),
        (404, "NoSuchPublicAccessBlockConfiguration", Class::NotFound),
        (400, "LoadBalancerNotFound", Class::NotFound),
        (400, "CertificateNotFound", Class::NotFound),
        (404, "DBInstanceNotFound", Class::NotFound),
        (404, "DBParameterGroupNotFound", Class::NotFound),
        (404, "NoSuchHostedZone", Class::NotFound),
        (400, "ActiveInstanceRefreshNotFound", Class::NotFound),
        (400, "ResourceNotFoundException", Class::NotFound),
        (400, "DependencyViolation", Class::Conflict),
        (400, "InvalidGroup.InUse", Class::Conflict),
        (400, "ResourceInUse", Class::Conflict),
        (400, "InvalidDBInstanceState", Class::Conflict),
        (400, "InvalidDBParameterGroupState", Class::Conflict),
        (400, "ScalingActivityInProgress", Class::Conflict),
        (400, "InstanceRefreshInProgress", Class::Conflict),
        (400, "ResourceContention", Class::Conflict),
        (409, "BucketNotEmpty", Class::Conflict),
        (409, "OperationAborted", Class::Conflict),
        (409, "ConditionalRequestConflict", Class::Conflict),
        (412, "PreconditionFailed", Class::PreconditionFailed),
        (403, "AccessDenied", Class::Denied),
        (400, "AccessDeniedException", Class::Denied),
        (403, "UnauthorizedOperation", Class::Denied),
        (400, "ExpiredToken", Class::Denied),
        (403, "InvalidClientTokenId", Class::Denied),
        (401, "AuthFailure", Class::Denied),
        (403, "SignatureDoesNotMatch", Class::Denied),
        (400, "ValidationError", Class::Invalid),
        (400, "InvalidParameterValue", Class::Invalid),
        (400, "InvalidChangeBatch", Class::Invalid),
        (400, "DuplicateTagKeys", Class::Invalid),
        (400, "MalformedPolicy", Class::Invalid),
        (400, "InvalidConfigurationRequest", Class::Invalid),
    ];
    for &(status, code, class) in cases {
        assert_eq!(class_of(ec2(status, code, "words")), class, "{status} {code}");
    }
}

#[test]
fn without_a_known_code_the_status_decides() {
    for (status, class) in [
        (400, Class::Invalid),
        (401, Class::Denied),
        (403, Class::Denied),
        (404, Class::NotFound),
        (409, Class::Conflict),
        (412, Class::PreconditionFailed),
        (429, Class::Throttled),
        (500, Class::Transient),
        (501, Class::Transient),
        (503, Class::Transient),
    ] {
        assert_eq!(class_of(ec2(status, "SomethingNew", "words")), class, "{status}");
        assert_eq!(service_class(status, None, None), class, "{status} without a code");
    }
}

#[test]
fn everything_the_sdk_retries_is_a_retryable_class() {
    for code in aws_runtime::retries::classifiers::THROTTLING_ERRORS {
        assert_eq!(class_of(ec2(400, code, "slow down")), Class::Throttled, "{code}");
    }
    for code in aws_runtime::retries::classifiers::TRANSIENT_ERRORS {
        assert_eq!(class_of(ec2(400, code, "try again")), Class::Transient, "{code}");
    }
    // The SDK retries these statuses whatever the code says.
    for status in [500, 502, 503, 504] {
        assert!(class_of(ec2(status, "DependencyViolation", "x")).retryable(), "{status}");
    }
    // An error its model marks retryable, whatever its code and status.
    assert_eq!(service_class(400, Some("DependencyViolation"), Some(ErrorKind::ThrottlingError)), Class::Throttled);
    assert_eq!(service_class(400, Some("AccessDenied"), Some(ErrorKind::TransientError)), Class::Transient);
    assert_eq!(service_class(400, None, Some(ErrorKind::ServerError)), Class::Transient);
}

#[test]
fn transport_failures_are_classified_by_the_sdk_variant() {
    let timeout: Ec2Error = SdkError::timeout_error("operation timed out");
    assert_eq!(classify(&timeout), Class::Transient);
    let unparseable: Ec2Error = SdkError::response_error("connection closed mid-body", response(200));
    assert_eq!(classify(&unparseable), Class::Transient);
    let io: Ec2Error = SdkError::dispatch_failure(ConnectorError::io("connection reset by peer".into()));
    assert_eq!(classify(&io), Class::Transient);
    let slow: Ec2Error = SdkError::dispatch_failure(ConnectorError::timeout("connect timed out".into()));
    assert_eq!(classify(&slow), Class::Transient);
    let incomplete: Ec2Error = SdkError::dispatch_failure(ConnectorError::other("incomplete message".into(), Some(ErrorKind::TransientError)));
    assert_eq!(classify(&incomplete), Class::Transient);
    let unknown: Ec2Error = SdkError::dispatch_failure(ConnectorError::other("no endpoint for this region".into(), None));
    assert_eq!(classify(&unknown), Class::Invalid);
    let user: Ec2Error = SdkError::dispatch_failure(ConnectorError::user("invalid URI".into()));
    assert_eq!(classify(&user), Class::Invalid);
    let unbuilt: Ec2Error = SdkError::construction_failure("GroupId must be set");
    assert_eq!(classify(&unbuilt), Class::Internal);
}

#[test]
fn missing_or_failing_credentials_are_denied_and_say_what_to_set() {
    // Credentials are resolved before sending: their failure arrives as a dispatch failure around it.
    let none: Ec2Error = SdkError::dispatch_failure(ConnectorError::other(
        Box::new(CredentialsError::not_loaded("no credentials found in chain. Attempted: Environment")),
        None,
    ));
    let e = call("ec2", "DeleteSecurityGroup", "security_group.lb")(none);
    assert_eq!(e.class(), Class::Denied);
    assert!(e.to_string().starts_with("ec2:DeleteSecurityGroup for security_group.lb failed: no AWS credentials: set AWS_PROFILE"), "{e}");
    let expired: Ec2Error = SdkError::dispatch_failure(ConnectorError::other(Box::new(CredentialsError::provider_error("the SSO session has expired")), None));
    assert_eq!(classify(&expired), Class::Denied);
    let slow: Ec2Error = SdkError::dispatch_failure(ConnectorError::other(Box::new(CredentialsError::provider_timed_out(Duration::from_secs(5))), None));
    assert_eq!(classify(&slow), Class::Transient);
}

#[test]
fn a_call_names_its_operation_and_resource_and_keeps_code_and_message() {
    let e = call("ec2", "DeleteSecurityGroup", "security_group.lb")(ec2(400, "DependencyViolation", "resource sg-1 has a dependent object"));
    assert_eq!(e.class(), Class::Conflict);
    assert_eq!(e.code(), Some("DependencyViolation"));
    assert_eq!(e.operation().as_deref(), Some("ec2:DeleteSecurityGroup"));
    assert_eq!(e.resource(), "security_group.lb");
    assert_eq!(e.to_string(), "ec2:DeleteSecurityGroup for security_group.lb failed: DependencyViolation: resource sg-1 has a dependent object");
    let f = Failure::from(&e);
    assert_eq!(
        f,
        Failure {
            class: Class::Conflict,
            operation: Some("ec2:DeleteSecurityGroup".into()),
            resource: Some("security_group.lb".into()),
            code: Some("DependencyViolation".into()),
            message: e.to_string(),
        }
    );
}

#[test]
fn a_modeled_error_is_classified_like_its_code() {
    let fault = aws_sdk_rds::types::error::DbInstanceNotFoundFault::builder()
        .message("DBInstance agency-sites not found.")
        .meta(ErrorMetadata::builder().code("DBInstanceNotFound").message("DBInstance agency-sites not found.").build())
        .build();
    let err: SdkError<DescribeDBInstancesError, HttpResponse> =
        SdkError::service_error(DescribeDBInstancesError::DbInstanceNotFoundFault(fault), response(404));
    let e = call("rds", "DescribeDBInstances", "db_instance.sites")(err);
    assert_eq!(e.class(), Class::NotFound, "{e}");
    assert_eq!(e.to_string(), "rds:DescribeDBInstances for db_instance.sites failed: DBInstanceNotFound: DBInstance agency-sites not found.");
}

#[test]
fn the_provider_s_own_failures_have_their_class_resource_and_words() {
    let cases: Vec<(AwsError, Class, &str, &str)> = vec![
        (
            Missing::DefaultVpc { region: "eu-west-1".into() }.into(),
            Class::NotFound,
            "region eu-west-1",
            "region eu-west-1 has no default VPC: set network.vpc in the desired state",
        ),
        (
            Missing::FleetZone { zone: "sites.agency.net".into() }.into(),
            Class::NotFound,
            "sites.agency.net",
            "fleet.dns_zone `sites.agency.net`: this account has no public hosted zone of that name; create it, or correct dns_zone",
        ),
        (
            Missing::NoImageMatches { name: "nightly".into(), owners: "self".into(), pattern: "sites-*".into(), region: "eu-west-1".into() }.into(),
            Class::NotFound,
            "image.nightly",
            "image.nightly (owners self, name sites-*): no available image matches in eu-west-1; check the pattern and owners, or give `id`",
        ),
        (
            AwsError::RequestBuild { resource: "listener 443".into(), message: "protocol was not specified".into() },
            Class::Internal,
            "listener 443",
            "listener 443: protocol was not specified",
        ),
        (
            Unresolved::Group { name: "web".into() }.into(),
            Class::Internal,
            "security_group.web",
            "security_group.web does not exist in AWS (was its creation skipped?)",
        ),
        (
            AwsError::PasswordUnset { address: "db_instance.sites".into(), var: "DB_PASSWORD".into() },
            Class::Invalid,
            "db_instance.sites",
            "db_instance.sites: the environment variable DB_PASSWORD (password_env) is not set; set it to the master password to create the database",
        ),
        (
            AwsError::RefreshEnded { address: "auto_scaling_group.web".into(), id: "r-1".into(), status: "Cancelled".into(), reason: "by hand".into() },
            Class::Failed,
            "auto_scaling_group.web",
            "auto_scaling_group.web: instance refresh r-1 ended Cancelled: by hand",
        ),
        (
            AwsError::DbFailed { address: "db_instance.sites".into(), identifier: "agency-sites".into(), status: "failed".into() },
            Class::Failed,
            "db_instance.sites",
            "db_instance.sites: RDS reports the instance `failed`; see its events in the RDS console (aws rds describe-events --source-identifier agency-sites)",
        ),
        (
            AwsError::WaitTimedOut { address: "auto_scaling_group.web".into(), waiting: "still being deleted".into(), minutes: 20, then: "" },
            Class::WaitTimedOut,
            "auto_scaling_group.web",
            "auto_scaling_group.web: still being deleted after 20 minutes",
        ),
        (
            AwsError::WrongAccount { expected: "210987654321".into(), actual: "123456789012".into() },
            Class::Denied,
            "account 123456789012",
            "refusing to run against account 123456789012: the fleet belongs to account 210987654321 (fleet.account)",
        ),
    ];
    for (e, class, resource, words) in cases {
        assert_eq!(e.class(), class, "{e}");
        assert_eq!(e.resource(), resource, "{e}");
        assert_eq!(e.to_string(), words);
        let f = Failure::from(&e);
        assert_eq!((f.class, f.operation, f.code, f.message), (class, None, None, words.to_string()));
    }
}
