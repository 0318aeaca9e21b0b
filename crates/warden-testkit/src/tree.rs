//! The tree the catalogue's examples work on (`ToolInfo::example` names `/srv/app`):
//! a small application directory with a config, notes, nested data, a release to push,
//! an archive to unpack, a link inside the root and a link out of it.

use std::fs;
use std::io;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Builds `base/srv/app` and returns `base/srv` (the allowed root to configure).
pub fn example_tree(base: &Path) -> io::Result<PathBuf> {
    let srv = base.join("srv");
    let app = srv.join("app");
    fs::create_dir_all(app.join("data/sub"))?;
    fs::create_dir_all(app.join("release"))?;
    fs::write(app.join("app.conf"), "port = 80\n")?;
    fs::write(app.join("notes.txt"), "hello\nworld\n")?;
    fs::write(app.join("data/a.txt"), "alpha\n")?;
    fs::write(app.join("data/sub/b.txt"), "beta\n")?;
    fs::write(app.join("release/app.conf"), "port = 8080\n")?;
    symlink("app.conf", app.join("link"))?;
    // Hostile: a walk must report it, never follow it.
    symlink("/etc", app.join("escape"))?;
    let bundle = base.join("bundle");
    fs::create_dir_all(bundle.join("conf"))?;
    fs::write(bundle.join("conf/site.conf"), "site = on\n")?;
    let packed = Command::new("tar")
        .arg("-czf")
        .arg(app.join("bundle.tar.gz"))
        .arg("-C")
        .arg(&bundle)
        .arg("conf")
        .status()?;
    if !packed.success() {
        return Err(io::Error::other("tar could not pack the example bundle"));
    }
    fs::remove_dir_all(&bundle)?;
    Ok(srv)
}
