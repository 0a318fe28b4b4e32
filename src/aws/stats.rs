//! Counting API calls: an SDK interceptor that records every HTTP attempt by service and operation.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use serde::Serialize;

/// Calls made so far, shared by every client of a run.
#[derive(Debug, Clone, Default)]
pub struct Stats(Arc<Mutex<BTreeMap<(String, String), u64>>>);

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallCount {
    pub service: String,
    pub operation: String,
    pub calls: u64,
}

impl Stats {
    pub fn counts(&self) -> Vec<CallCount> {
        let map = self.0.lock().expect("stats lock");
        map.iter().map(|((service, operation), calls)| CallCount { service: service.clone(), operation: operation.clone(), calls: *calls }).collect()
    }

    /// Calls of one operation, e.g. `stats.calls("AuthorizeSecurityGroupIngress")`.
    pub fn calls(&self, operation: &str) -> u64 {
        self.0.lock().expect("stats lock").iter().filter(|((_, op), _)| op == operation).map(|(_, n)| n).sum()
    }

    pub fn total(&self) -> u64 {
        self.0.lock().expect("stats lock").values().sum()
    }

    pub fn reset(&self) {
        self.0.lock().expect("stats lock").clear();
    }
}

impl Intercept for Stats {
    fn name(&self) -> &'static str {
        "converge-call-stats"
    }

    // Once per HTTP attempt, so retries count: they cost rate limit like any other call.
    fn read_before_transmit(&self, _: &BeforeTransmitInterceptorContextRef<'_>, _: &RuntimeComponents, cfg: &mut ConfigBag) -> Result<(), BoxError> {
        if let Some(m) = cfg.load::<Metadata>() {
            *self.0.lock().expect("stats lock").entry((m.service().to_string(), m.name().to_string())).or_default() += 1;
        }
        Ok(())
    }
}
