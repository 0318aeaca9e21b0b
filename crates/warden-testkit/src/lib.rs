//! warden-testkit: real OpenSSH `sshd` processes on loopback for warden's tests
//! ([`Sshd`], [`Fleet`]), plus the ordinary login user they need ([`non_root_user`]),
//! the tree the tool examples work on ([`tree`]) and a JSON Schema checker for
//! answers ([`schema_check`]).
//!
//! Test-only code: it panics freely and shells out to `ssh-keygen`, `kill`, `id` and
//! `useradd`. Each sshd lives in its own temp dir with its own host key; `Drop` kills it
//! with every process it forked and removes the dir.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fleet;
pub mod schema_check;
mod sshd;

pub mod tree;

pub use fleet::Fleet;
pub use sshd::{
    KeyType, Sshd, SshdOptions, generate_key, non_root_user, require_sshd, require_sudo,
    require_tmux,
};
