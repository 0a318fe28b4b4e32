//! What kind of failure an error is. The provider (`aws`) puts every failure into one [`Class`]; apply's
//! report, the JSON output and the reconcile loop carry it, and every decision on a failure is made on the
//! class, never on an error's text. This module knows nothing of AWS: the core (`apply`, `reconcile`) uses it.

use std::fmt;

use serde::Serialize;

/// The closed set of failure classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    /// AWS asked the caller to slow down (Throttling, RequestLimitExceeded, SlowDown, ...).
    Throttled,
    /// The same request may succeed when sent again: a 5xx, a timeout, a connection that failed or dropped.
    Transient,
    /// What a create names exists already.
    AlreadyExists,
    /// What a call names does not exist; or something the desired state relies on is not in the account.
    NotFound,
    /// The object's state refuses the call for now: in use, a dependency, a state that forbids it; or a
    /// conditional write raced another on the same object (S3's 409 ConditionalRequestConflict: read again).
    Conflict,
    /// A conditional request's condition did not hold (HTTP 412): the object exists (`If-None-Match: *`) or
    /// its ETag is no longer the one named (`If-Match`). The apply lock decides on this class.
    PreconditionFailed,
    /// Access denied, or credentials missing, expired, invalid, or for another account.
    Denied,
    /// The request is invalid (AWS's code and message say why), or what it is made from (the desired
    /// state, the environment) lacks something it needs.
    Invalid,
    /// AWS accepted a change that then ended badly: an instance refresh failed or was cancelled, a database
    /// in a state it does not leave by waiting.
    Failed,
    /// converge stopped waiting for something that goes on in AWS (an instance refresh, a deletion).
    WaitTimedOut,
    /// converge's own mistake: a request it could not build, an answer it cannot use, a plan that apply
    /// could not follow.
    Internal,
}

impl Class {
    /// Whether sending the same request again soon may succeed. Only these classes are retried, by the
    /// SDK (within a call) and by the reconcile loop's backoff (between passes); the others wait for a
    /// person or for the next regular pass.
    pub fn retryable(self) -> bool {
        matches!(self, Class::Throttled | Class::Transient)
    }

    /// The class's name in JSON documents (`already_exists`).
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Throttled => "throttled",
            Class::Transient => "transient",
            Class::AlreadyExists => "already_exists",
            Class::NotFound => "not_found",
            Class::Conflict => "conflict",
            Class::PreconditionFailed => "precondition_failed",
            Class::Denied => "denied",
            Class::Invalid => "invalid",
            Class::Failed => "failed",
            Class::WaitTimedOut => "wait_timed_out",
            Class::Internal => "internal",
        }
    }

    /// The class in words, for people (`already exists`).
    pub fn words(self) -> &'static str {
        match self {
            Class::Throttled => "throttled",
            Class::Transient => "transient",
            Class::AlreadyExists => "already exists",
            Class::NotFound => "not found",
            Class::Conflict => "conflict",
            Class::PreconditionFailed => "precondition failed",
            Class::Denied => "access denied",
            Class::Invalid => "invalid request",
            Class::Failed => "failed in AWS",
            Class::WaitTimedOut => "wait timed out",
            Class::Internal => "internal error",
        }
    }

    /// The class that decides for several failures at once (an apply with more than one failed change):
    /// retryable only when every one is, so that nothing retries a failure that retrying cannot fix.
    pub fn of_all(classes: impl IntoIterator<Item = Class>) -> Option<Class> {
        let mut first = None;
        for c in classes {
            if !c.retryable() {
                return Some(c);
            }
            first.get_or_insert(c);
        }
        first
    }
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.words())
    }
}

/// An error that knows its class.
pub trait Classify {
    fn class(&self) -> Class;
}

impl Classify for Class {
    fn class(&self) -> Class {
        *self
    }
}

/// A failure as plain data: what apply's report, the JSON output and the reconcile loop carry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    pub class: Class,
    /// The API call, `service:Operation` (`ec2:DeleteSecurityGroup`), when the failure was one.
    pub operation: Option<String>,
    /// What the failure is about: the object a call named, or an address, a region, a zone.
    pub resource: Option<String>,
    /// AWS's error code, when AWS gave one.
    pub code: Option<String>,
    /// The whole error, for people.
    pub message: String,
}

impl Failure {
    /// A failure outside any API call.
    pub fn new(class: Class, message: impl Into<String>) -> Failure {
        Failure { class, operation: None, resource: None, code: None, message: message.into() }
    }
}

impl Classify for Failure {
    fn class(&self) -> Class {
        self.class
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_throttled_and_transient_are_retryable() {
        let all = [
            Class::Throttled,
            Class::Transient,
            Class::AlreadyExists,
            Class::NotFound,
            Class::Conflict,
            Class::PreconditionFailed,
            Class::Denied,
            Class::Invalid,
            Class::Failed,
            Class::WaitTimedOut,
            Class::Internal,
        ];
        let retryable: Vec<Class> = all.into_iter().filter(|c| c.retryable()).collect();
        assert_eq!(retryable, vec![Class::Throttled, Class::Transient]);
        for c in all {
            assert_eq!(serde_json::to_value(c).unwrap(), serde_json::Value::String(c.as_str().into()), "the JSON name is as_str");
        }
    }

    #[test]
    fn several_failures_are_retryable_only_when_all_are() {
        assert_eq!(Class::of_all([]), None);
        assert_eq!(Class::of_all([Class::Throttled, Class::Transient]), Some(Class::Throttled));
        assert_eq!(Class::of_all([Class::Throttled, Class::Denied, Class::Invalid]), Some(Class::Denied));
    }
}
