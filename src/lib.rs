//! converge: a declarative reconciler for a web-hosting fleet on AWS.
//!
//! The pure core ([`model`]'s schema and checks, [`resource`], [`live`], [`plan`], [`render`]) does no IO
//! ([`model`]'s loader reads the desired-state files, which is its job); [`aws`] is the only module that talks
//! to AWS; [`planner`] reads AWS and plans; [`apply`] executes a plan's changes through an
//! [`apply::Executor`]; [`reconcile`] is the loop; [`cli`] is the binary's thin layer. See
//! `docs/ARCHITECTURE.md`.

pub mod apply;
pub mod aws;
pub mod cli;
pub mod error;
pub mod import;
pub mod live;
pub mod lock;
pub mod model;
pub mod plan;
pub mod planner;
pub mod reconcile;
pub mod render;
pub mod resource;

#[cfg(test)]
mod testing;
