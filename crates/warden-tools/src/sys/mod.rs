//! Structured system facts, read by built-in probes.

pub mod facts;
