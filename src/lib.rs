//! converge: a declarative reconciler for a web-hosting fleet on AWS.
//!
//! The pure core ([`model`], [`resource`], [`plan`], [`render`]) does no IO; [`aws`] is the only module that
//! talks to AWS; [`apply`] executes a plan's changes through an [`apply::Executor`]. See docs/ARCHITECTURE.md.

pub mod model;
pub mod resource;
pub mod plan;
pub mod coverage;
pub mod render;
pub mod apply;
pub mod aws;
pub mod cli;
pub mod session;
pub mod reconcile;

#[cfg(test)]
mod testing;
pub mod diff;
pub mod notify;
pub mod saved;
