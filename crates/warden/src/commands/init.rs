//! `warden init`: write the commented starter config.

use std::path::Path;

use warden_core::config::STARTER_CONFIG;

use crate::output::{self, EXIT_OK, EXIT_USAGE};

pub fn run(path: &Path, force: bool) -> u8 {
    if path.exists() && !force {
        eprintln!(
            "error: {} exists; pass --force to overwrite it",
            path.display()
        );
        return EXIT_USAGE;
    }
    if let Err(error) = std::fs::write(path, STARTER_CONFIG) {
        eprintln!("error: cannot write {}: {error}", path.display());
        return EXIT_USAGE;
    }
    output::print(&format!(
        "wrote {}; add hosts, then run `warden config check`",
        path.display()
    ));
    EXIT_OK
}
