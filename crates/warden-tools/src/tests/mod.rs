//! Tests of the catalogue through the engine: the registry invariants (`registry`) and
//! the file and fleet tools' suites on real directories.

mod archive_tests;
mod file_edit_tests;
mod file_tests;
mod file_walk_tests;
mod fleet_file_tests;
mod registry;
mod review_tests;
mod stream_tests;
mod tree_safety_tests;
