//! Files from warden's machine to many hosts: `push` and `sync`.

pub mod push;
pub mod sync;
pub(crate) mod transfer;
