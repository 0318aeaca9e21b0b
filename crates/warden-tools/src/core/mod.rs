//! warden's own tools: status, doctor, explain and tool discovery.

pub mod doctor;
pub mod explain;
pub mod status;
pub mod tools_schema;
pub mod tools_search;
