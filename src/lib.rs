//! converge: a declarative reconciler for a web-hosting fleet on AWS.
//!
//! The pure core ([`model`], [`resource`], [`plan`], [`render`]) does no IO; [`aws`] is the only module that
//! talks to AWS; [`apply`] executes a plan's changes through an [`apply::Executor`]. See docs/ARCHITECTURE.md.

pub mod apply;
pub mod aws;
pub mod cli;
pub mod coverage;
pub mod error;
pub mod model;
pub mod plan;
pub mod reconcile;
pub mod render;
pub mod resource;
pub mod session;

pub mod diff;
pub mod notify;
pub mod saved;
#[cfg(test)]
mod testing;
