//! Test doubles' building blocks for other crates' tests, behind the `test-support`
//! feature that only dev-dependencies enable: the local file port and a sandbox built
//! without the engine, for tests of walks and unpacking under hostile file systems.

use std::sync::Arc;

use crate::files::HostFiles;
use crate::sandbox::{PathGuard, Sandbox};

/// The raw file primitives of warden's own machine.
pub fn local_files() -> Arc<dyn HostFiles> {
    Arc::new(crate::local_files::LocalFiles)
}

/// A sandbox over `files` confined to `root` (resolved), guarded by `guard`.
pub fn sandbox(files: Arc<dyn HostFiles>, root: &str, guard: PathGuard) -> Sandbox {
    Sandbox::new(
        files,
        root.to_owned(),
        root.to_owned(),
        guard,
        Default::default(),
    )
}
