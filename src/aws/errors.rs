//! AWS failures, typed and classified. Every SDK error becomes an [`AwsError::Call`] naming the service, the
//! API call and the resource, with its [`Class`] decided here from the SDK's structure: the `SdkError`
//! variant, the HTTP status, the modeled retry kind and the error code, looked up in one table of AWS codes
//! per class. The provider's other failures (something the desired state needs is not in the account, a
//! refresh that ended badly, a wait that timed out, a request converge could not build) are variants of
//! their own, each with its class. Code decides on the class, never on a message or a code's text.

use std::fmt;

use aws_credential_types::provider::error::CredentialsError;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use aws_smithy_types::retry::{ErrorKind, ProvideErrorKind};

use crate::error::{Class, Classify, Failure};

/// An AWS failure, naming what it was about.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AwsError {
    /// An API call failed: AWS's answer, or the transport's, classified by [`classify`].
    #[error("{service}:{operation} for {resource} failed: {message}")]
    Call { service: &'static str, operation: &'static str, resource: String, class: Class, code: Option<String>, message: String },
    /// `fleet.account` is set, and the credentials are another account's.
    #[error("refusing to run against account {actual}: the fleet belongs to account {expected} (fleet.account)")]
    WrongAccount { expected: String, actual: String },
    /// Something the desired state relies on is not in the account.
    #[error(transparent)]
    Missing(#[from] Missing),
    /// The SDK refused to build a request converge made (a required field unset): a bug in converge.
    #[error("{resource}: {message}")]
    RequestBuild { resource: String, message: String },
    /// An apply step lacks what an earlier step should have given it: a skipped change, or a bug.
    #[error(transparent)]
    Unresolved(#[from] Unresolved),
    /// AWS answered a create without the version number converge pins groups to.
    #[error("launch template {template}: AWS returned no version number")]
    NoVersionReturned { template: String },
    /// A database to create has no `password_env`.
    #[error("{address}: no password_env to create it with")]
    NoPasswordEnv { address: String },
    /// The variable `password_env` names is not set (its value is never part of an error).
    #[error("{address}: the environment variable {var} (password_env) is not set; set it to the master password to create the database")]
    PasswordUnset { address: String, var: String },
    /// An alias record in a region whose ELB hosted zone converge does not know.
    #[error("record {record}: no known ELB hosted zone for region {region}")]
    NoElbZone { record: String, region: String },
    /// An instance refresh ended without success (Failed, Cancelled, rolled back).
    #[error("{address}: instance refresh {id} ended {status}: {reason}")]
    RefreshEnded { address: String, id: String, status: String, reason: String },
    /// A database in a status it does not leave by waiting (`failed`, `incompatible-parameters`, ...).
    #[error("{address}: RDS reports the instance `{status}`; see its events in the RDS console (aws rds describe-events --source-identifier {identifier})")]
    DbFailed { address: String, identifier: String, status: String },
    /// The instance refresh being waited for is no longer listed.
    #[error("{address}: instance refresh {id} is no longer listed")]
    RefreshVanished { address: String, id: String },
    /// The database being waited for to become available is gone.
    #[error("{address}: {identifier} disappeared while waiting for it")]
    DbVanished { address: String, identifier: String },
    /// S3 answered a lock read or write without the ETag every later conditional write needs.
    #[error("{resource}: S3 returned no ETag")]
    NoETag { resource: String },
    /// The lock object is not a converge lock document.
    #[error("{resource}: {message}; remove it (converge unlock) if nothing holds it")]
    LockUnreadable { resource: String, message: String },
    /// The lock was lost while held: its object changed, or its lease ran out before a renewal.
    #[error("the apply lock was lost: {reason}")]
    LockLost { resource: String, reason: String },
    /// Writing the local lock file failed.
    #[error("the lock file {resource}: {message}")]
    LockFile { resource: String, message: String },
    /// A setting of converge's in the environment (`CONVERGE_ATTEMPT_TIMEOUT`, ...) is malformed.
    #[error("{variable}: {message}")]
    Setting { variable: String, message: String },
    /// A create answered "already exists", and the object there is not this fleet's (it lacks the tags at
    /// this address): someone made it since the plan.
    #[error(
        "{address}: {call} answered that a {noun} named `{name}` already exists, and it is not this fleet's ({owner}); nothing of it was touched. Run `converge plan`: it shows what to do about it"
    )]
    Taken { address: String, call: &'static str, noun: &'static str, name: String, owner: String },
    /// converge stopped waiting; what it waited for goes on in AWS.
    #[error("{address}: {waiting} after {minutes} minutes{then}")]
    WaitTimedOut { address: String, waiting: String, minutes: u64, then: &'static str },
    /// A hostname is pointed only at an instance that is available and takes writes.
    #[error(
        "record {record}: database {identifier} is {state}; the hostname is moved only to an instance that takes writes (available, or backing up or modifying) and is no replica"
    )]
    DbNotReady { record: String, identifier: String, state: String },
}

/// What the desired state relies on and the account lacks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Missing {
    #[error("region {region} has no default VPC: set network.vpc in the desired state")]
    DefaultVpc { region: String },
    #[error("fleet.dns_zone `{zone}`: this account has no public hosted zone of that name; create it, or correct dns_zone")]
    FleetZone { zone: String },
    #[error("site.{site} (dns = \"managed\"): this account has no hosted zone for {domain}; create the client's zone, or set dns = \"client\"")]
    SiteZone { site: String, domain: String },
    #[error("database.{database}: this account has no hosted zone for its hostname {hostname}; create the zone (a private one works), or correct hostname")]
    HostnameZone { database: String, hostname: String },
    #[error("image.{name} (owners {owners}, name {pattern}): no available image matches in {region}; check the pattern and owners, or give `id`")]
    NoImageMatches { name: String, owners: String, pattern: String, region: String },
    #[error("image.{name}: image {id} does not exist in {region} (or is not shared with this account)")]
    Image { name: String, id: String, region: String },
    /// A record's load balancer, created in this apply, is not found when its DNS name is read.
    #[error("record {record}: load balancer {name} not found")]
    TargetLoadBalancer { record: String, name: String },
    /// A hostname's database is not found when its endpoint is read.
    #[error("record {record}: database {identifier} not found")]
    TargetDatabase { record: String, identifier: String },
}

/// What an apply step needed from an earlier one (an id, a version, a DNS name) and did not find.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unresolved {
    #[error("security_group.{name} does not exist in AWS (was its creation skipped?)")]
    Group { name: String },
    /// `what`: `group`, `launch template`.
    #[error("{address} has no {what} id")]
    Id { address: String, what: &'static str },
    #[error("launch template {template} has no new version (was its change skipped?)")]
    NewVersion { template: String },
    #[error("launch template {template}: the plan did not pin a version")]
    Unpinned { template: String },
    #[error("{address}: a replica without a primary")]
    ReplicaSource { address: String },
    #[error("record {record}: load balancer {name} has no DNS name yet (region {region})")]
    DnsName { record: String, name: String, region: String },
}

impl Classify for AwsError {
    fn class(&self) -> Class {
        match self {
            AwsError::Call { class, .. } => *class,
            AwsError::WrongAccount { .. } => Class::Denied,
            AwsError::Missing(_) | AwsError::RefreshVanished { .. } | AwsError::DbVanished { .. } => Class::NotFound,
            AwsError::RequestBuild { .. } | AwsError::Unresolved(_) | AwsError::NoVersionReturned { .. } => Class::Internal,
            AwsError::NoPasswordEnv { .. } | AwsError::PasswordUnset { .. } | AwsError::NoElbZone { .. } => Class::Invalid,
            AwsError::RefreshEnded { .. } | AwsError::DbFailed { .. } => Class::Failed,
            AwsError::WaitTimedOut { .. } => Class::WaitTimedOut,
            AwsError::NoETag { .. } | AwsError::LockFile { .. } => Class::Internal,
            AwsError::LockUnreadable { .. } | AwsError::Setting { .. } => Class::Invalid,
            AwsError::LockLost { .. } => Class::PreconditionFailed,
            AwsError::Taken { .. } | AwsError::DbNotReady { .. } => Class::Conflict,
        }
    }
}

impl AwsError {
    /// The AWS error code (e.g. `DependencyViolation`), when AWS gave one: for people and programs to read.
    /// Decisions are made on [`Classify::class`].
    pub fn code(&self) -> Option<&str> {
        match self {
            AwsError::Call { code, .. } => code.as_deref(),
            _ => None,
        }
    }

    /// The API call, `service:Operation`, when the failure was one.
    pub fn operation(&self) -> Option<String> {
        match self {
            AwsError::Call { service, operation, .. } => Some(format!("{service}:{operation}")),
            _ => None,
        }
    }

    /// What the failure is about: the object a call named, the address waited for, what is missing.
    pub fn resource(&self) -> String {
        match self {
            AwsError::Call { resource, .. }
            | AwsError::RequestBuild { resource, .. }
            | AwsError::NoETag { resource }
            | AwsError::LockUnreadable { resource, .. }
            | AwsError::LockLost { resource, .. }
            | AwsError::LockFile { resource, .. } => resource.clone(),
            AwsError::WrongAccount { actual, .. } => format!("account {actual}"),
            AwsError::Setting { variable, .. } => variable.clone(),
            AwsError::Missing(m) => match m {
                Missing::DefaultVpc { region } => format!("region {region}"),
                Missing::FleetZone { zone } => zone.clone(),
                Missing::SiteZone { domain, .. } => domain.clone(),
                Missing::HostnameZone { hostname, .. } => hostname.clone(),
                Missing::NoImageMatches { name, .. } | Missing::Image { name, .. } => format!("image.{name}"),
                Missing::TargetLoadBalancer { name, .. } => name.clone(),
                Missing::TargetDatabase { record, .. } => record.clone(),
            },
            AwsError::Unresolved(u) => match u {
                Unresolved::Group { name } => format!("security_group.{name}"),
                Unresolved::Id { address, .. } | Unresolved::ReplicaSource { address } => address.clone(),
                Unresolved::NewVersion { template } | Unresolved::Unpinned { template } => template.clone(),
                Unresolved::DnsName { record, .. } => record.clone(),
            },
            AwsError::NoVersionReturned { template } => template.clone(),
            AwsError::NoElbZone { record, .. } | AwsError::DbNotReady { record, .. } => record.clone(),
            AwsError::NoPasswordEnv { address }
            | AwsError::PasswordUnset { address, .. }
            | AwsError::RefreshEnded { address, .. }
            | AwsError::DbFailed { address, .. }
            | AwsError::RefreshVanished { address, .. }
            | AwsError::DbVanished { address, .. }
            | AwsError::WaitTimedOut { address, .. }
            | AwsError::Taken { address, .. } => address.clone(),
        }
    }
}

impl From<&AwsError> for Failure {
    fn from(e: &AwsError) -> Failure {
        Failure { class: e.class(), operation: e.operation(), resource: Some(e.resource()), code: e.code().map(str::to_string), message: e.to_string() }
    }
}

/// Maps an SDK error to [`AwsError::Call`], classified: `.map_err(call("ec2", "CreateSecurityGroup", &name))`.
pub(crate) fn call<E>(service: &'static str, operation: &'static str, resource: impl fmt::Display) -> impl FnOnce(SdkError<E, HttpResponse>) -> AwsError
where
    E: ProvideErrorMetadata + ProvideErrorKind + std::error::Error + Send + Sync + 'static,
{
    let resource = resource.to_string();
    move |err| {
        let class = classify(&err);
        let code = ProvideErrorMetadata::code(&err).map(str::to_string);
        let message = match (ProvideErrorMetadata::code(&err), err.message()) {
            (Some(c), Some(m)) => format!("{c}: {m}"),
            (Some(c), None) => c.to_string(),
            _ => {
                let text = chain(&err);
                if matches!(credentials_error(&err), Some(CredentialsError::CredentialsNotLoaded(_))) {
                    format!(
                        "no AWS credentials: set AWS_PROFILE (after `aws sso login` for SSO profiles) or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY. {text}"
                    )
                } else {
                    text
                }
            }
        };
        AwsError::Call { service, operation, resource, class, code, message }
    }
}

/// Maps the SDK's refusal to build a request (a required field unset) to [`AwsError::RequestBuild`].
pub(crate) fn built<B: fmt::Display>(resource: impl fmt::Display) -> impl FnOnce(B) -> AwsError {
    let resource = resource.to_string();
    move |e| AwsError::RequestBuild { resource, message: e.to_string() }
}

/// The class of an SDK error, from its structure. The SDK's own retry rules come first (its throttling and
/// transient codes, errors modeled as retryable, HTTP 500/502/503/504, timeouts, unparseable responses,
/// I/O and connector errors it retries), so that everything the SDK retries is `Throttled` or `Transient`;
/// then the tables of codes, then the HTTP status.
pub(crate) fn classify<E>(err: &SdkError<E, HttpResponse>) -> Class
where
    E: ProvideErrorMetadata + ProvideErrorKind + std::error::Error + 'static,
{
    match err {
        SdkError::ServiceError(e) => service_class(e.raw().status().as_u16(), ProvideErrorMetadata::code(e.err()), e.err().retryable_error_kind()),
        SdkError::TimeoutError(_) | SdkError::ResponseError(_) => Class::Transient,
        SdkError::DispatchFailure(d) => match credentials_error(err) {
            // Credentials are resolved before the request is sent: a failure there is a dispatch failure.
            Some(CredentialsError::ProviderTimedOut(_)) => Class::Transient,
            Some(_) => Class::Denied,
            None if d.is_io() || d.is_timeout() => Class::Transient,
            None => match d.as_other() {
                Some(kind) => kind_class(kind),
                // A request that could not be sent as configured (an endpoint, a region, a signing failure).
                None => Class::Invalid,
            },
        },
        SdkError::ConstructionFailure(_) => Class::Internal,
        _ => Class::Internal,
    }
}

/// An error kind the SDK retries on: the SDK retries every kind, so each is a retryable class.
fn kind_class(kind: ErrorKind) -> Class {
    if kind == ErrorKind::ThrottlingError { Class::Throttled } else { Class::Transient }
}

/// The class of an error response: its HTTP status, its code, and the retry kind its model gives it.
pub(crate) fn service_class(status: u16, code: Option<&str>, modeled: Option<ErrorKind>) -> Class {
    let coded = |table: &[&str]| code.is_some_and(|c| table.iter().any(|p| matches(p, c)));
    if coded(THROTTLED) {
        return Class::Throttled;
    }
    if coded(TRANSIENT) {
        return Class::Transient;
    }
    if let Some(kind) = modeled {
        return kind_class(kind);
    }
    if matches!(status, 500 | 502 | 503 | 504) {
        return Class::Transient;
    }
    for (table, class) in [
        (DENIED, Class::Denied),
        (CONFLICT, Class::Conflict),
        (ALREADY_EXISTS, Class::AlreadyExists),
        (NOT_FOUND, Class::NotFound),
        (PRECONDITION_FAILED, Class::PreconditionFailed),
    ] {
        if coded(table) {
            return class;
        }
    }
    match status {
        401 | 403 => Class::Denied,
        404 => Class::NotFound,
        409 => Class::Conflict,
        412 => Class::PreconditionFailed,
        429 => Class::Throttled,
        s if s >= 500 => Class::Transient,
        _ => Class::Invalid,
    }
}

/// A code matches a table entry exactly, or by the entry's one `*` (`*NotFound`, `NoSuch*`, `Invalid*State`).
fn matches(pattern: &str, code: &str) -> bool {
    match pattern.split_once('*') {
        Some((prefix, suffix)) => code.len() >= prefix.len() + suffix.len() && code.starts_with(prefix) && code.ends_with(suffix),
        None => pattern == code,
    }
}

/// The SDK's throttling codes (`aws_runtime::retries::classifiers::THROTTLING_ERRORS`, tested to be here),
/// and ELB's throttled dependency.
pub(crate) const THROTTLED: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
    "DependencyThrottle",
];

/// The SDK's transient codes, and the codes of AWS's internal errors (whatever status they come with).
pub(crate) const TRANSIENT: &[&str] = &[
    "RequestTimeout",
    "RequestTimeoutException",
    "InternalError",
    "InternalFailure",
    "InternalServerError",
    "ServiceUnavailable",
    "Unavailable",
    "ServiceFailure",
];

/// Access denied; credentials missing, expired, invalid or badly signed; the account not opted in.
const DENIED: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "AuthFailure",
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidClientTokenId",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "IncompleteSignature",
    "MissingAuthenticationToken",
    "UnrecognizedClientException",
    "NotAuthorizedException",
    "RequestExpired",
    "OptInRequired",
    "Blocked",
];

const ALREADY_EXISTS: &[&str] = &[
    "*AlreadyExists",
    "*AlreadyExistsFault",
    "*AlreadyExistsException",
    "*.Duplicate",
    "BucketAlreadyOwnedByYou",
    "DuplicateLoadBalancerName",
    "DuplicateListener",
    "DuplicatePolicyName",
    "DuplicateCertificate",
];

const NOT_FOUND: &[&str] = &["*NotFound", "*NotFoundFault", "*NotFoundException", "*NotFoundError", "NoSuch*"];

/// The object's state refuses the call for now.
const CONFLICT: &[&str] = &[
    "DependencyViolation",
    "*InUse",
    "*InUseException",
    "Invalid*State",
    "Invalid*StateFault",
    "IncorrectState",
    "IncorrectInstanceState",
    "ScalingActivityInProgress",
    "InstanceRefreshInProgress",
    "IdempotentCallInProgress",
    "ResourceContention",
    "DBInstanceNotReady",
    "BucketNotEmpty",
    // S3's bucket names are global: this one is another account's. Not "already exists" (which a create
    // looks into as possibly its own), but a name someone else holds.
    "BucketAlreadyExists",
    "HostedZoneNotEmpty",
    "OperationAborted",
    "DeleteConflict",
    "ConcurrentModification",
    "EntityTemporarilyUnmodifiable",
    "RequestInProgressException",
    // S3: a conditional write raced another conditional request on the same key (409); read, then retry.
    "ConditionalRequestConflict",
];

/// A conditional request's condition did not hold (S3's 412 on `If-None-Match` / `If-Match`).
const PRECONDITION_FAILED: &[&str] = &["PreconditionFailed"];

/// The credentials error behind an SDK error, if resolving credentials is what failed.
fn credentials_error<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a CredentialsError> {
    let mut source = err.source();
    while let Some(s) = source {
        if let Some(c) = s.downcast_ref::<CredentialsError>() {
            return Some(c);
        }
        source = s.source();
    }
    None
}

/// An error and its sources, by their Display only (the SDK's Debug forms are pages long).
fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![err.to_string()];
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests;
