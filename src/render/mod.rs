//! Renderers of plans and apply results for people and programs. Pure: they return strings.

pub mod text;

pub use text::{plan_text, summary_line};
