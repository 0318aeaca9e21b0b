//! What outlives a call: artifacts, the whole output of streams an answer cut.

pub mod artifacts_get;
pub mod artifacts_list;
pub mod artifacts_tail;
pub mod slice;
