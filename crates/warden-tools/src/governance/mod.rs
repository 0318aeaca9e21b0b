//! Policy and audit tools.

pub mod audit_search;
pub mod audit_verify;
pub mod policy_test;
