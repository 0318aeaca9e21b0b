//! Tests of the catalogue through the engine: the registry invariants (`registry`) and
//! the file and fleet tools' suites on real directories.

use std::path::Path;
use std::sync::Arc;

use warden_core::Engine;
use warden_core::config::{Config, LoadedConfig};
use warden_core::transport::Transport;

/// An engine over `yaml` with the catalogue, its state under `state_dir`, reaching
/// hosts through `transport` (the local one stands in for SSH in these suites).
pub fn engine_over(yaml: &str, state_dir: &Path, transport: Arc<dyn Transport>) -> Engine {
    let loaded = LoadedConfig {
        config: Config::parse(yaml).unwrap(),
        source: None,
        state_dir: state_dir.to_path_buf(),
    };
    let store = store_for(&loaded);
    Engine::new(loaded, transport, Arc::clone(crate::registry()), store).unwrap()
}

/// The real SQLite store under the config's state dir.
pub fn store_for(loaded: &LoadedConfig) -> Arc<dyn warden_core::store::Store> {
    Arc::new(warden_store::SqliteStore::open(&loaded.store_path()).unwrap())
}

mod archive_tests;
mod audit_tests;
mod file_edit_tests;
mod file_tests;
mod file_walk_tests;
mod fleet_file_tests;
mod interactive_tests;
mod output_tests;
mod registry;
mod review2_tests;
mod review4_tests;
mod review_tests;
mod rollout_tests;
mod stream_tests;
mod tree_safety_tests;
