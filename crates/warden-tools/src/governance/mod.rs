//! Policy and audit tools.

pub mod approval_list;
pub mod approval_status;
pub mod audit_export;
pub mod audit_filters;
pub mod audit_search;
pub mod audit_verify;
pub mod policy_capabilities;
pub mod policy_lint;
pub mod policy_test;
pub mod policy_test_batch;
