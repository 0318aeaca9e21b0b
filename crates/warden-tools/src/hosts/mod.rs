//! The inventory: hosts, groups and tags.

pub mod hosts_groups;
pub mod hosts_list;
pub mod hosts_show;
