//! converge's integration tests: one binary (every test binary links the whole AWS SDK), one module per
//! area. Tests that need AWS start their own emulator (moto's server) on a free loopback port.

mod proxy;
mod support;

mod accounts;
mod adopt;
mod alarms;
mod buckets;
mod certificates;
mod cli;
mod crashes;
mod databases;
mod dns;
mod drift;
mod faults;
mod load_balancers;
mod lock;
mod policies;
mod pools;
mod reconcile;
mod saved_plans;
mod security_groups;
