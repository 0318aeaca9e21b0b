//! File sessions: a root on one host that file tools stay inside.

pub mod session_close;
pub mod session_list;
pub mod session_open;
pub mod session_summary;
