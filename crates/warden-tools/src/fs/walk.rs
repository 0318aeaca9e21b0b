//! The one tree walker file tools share (`fs_list`, `fs_find`, `fs_grep`, `fs_du`, and
//! archives).
//!
//! API: [`walk`] collects the entries below a directory into a [`Walk`]; [`visit`] hands
//! them one at a time to a closure that may stop the walk (for filters and totals that
//! need not keep every entry). Both start from a directory the caller already resolved
//! with `Sandbox::resolve` and guarantee:
//! - breadth first, names sorted within a directory: a directory always comes before
//!   its contents, and results are stable between calls;
//! - a symlink is reported as an entry and never descended into, so a walk can neither
//!   leave the root through a link nor loop;
//! - every entry is checked against `deny_paths` (`Sandbox::check`); a denied entry is
//!   neither reported nor descended into, only counted in `skipped_denied`;
//! - `max_depth` and `max_entries` bound the work; reaching `max_entries` with entries
//!   left sets `truncated`;
//! - a directory that vanishes or cannot be read below the start does not fail the walk
//!   (a vanished one is skipped, an unreadable one counted in `unreadable`).
//!
//! [`whole_tree`] is the strict variant for a tool that changes every entry (`fs_move`):
//! same order and no links followed, but a denied entry, an unreadable directory or
//! more than [`MAX_WALK_ENTRIES`] entries fail it. Recursive tools cap their own
//! walks at [`MAX_WALK_ENTRIES`] too ([`too_many_entries`]).
//!
//! Types come from one listing per directory, so the race window of `sandbox.rs`
//! applies: a directory swapped for a symlink after its parent was listed would be
//! listed through the link (SFTP cannot open a directory without following).

use std::collections::VecDeque;
use std::ops::ControlFlow;

use warden_core::error::{Error, ErrorCode, Result};
use warden_core::files::{FileKind, FileMeta};
use warden_core::sandbox::Sandbox;

/// Entries a tool's walk visits at most: enough for real trees, bounded memory.
pub const MAX_WALK_ENTRIES: usize = 100_000;

/// Bounds of one walk.
#[derive(Debug, Clone, Copy)]
pub struct WalkOptions {
    /// Levels reported: 1 (or 0) is the start's own entries; `usize::MAX` for all.
    pub max_depth: usize,
    /// Entries reported before the walk stops with `truncated`.
    pub max_entries: usize,
}

/// One entry met by a walk.
#[derive(Debug, Clone)]
pub struct WalkEntry {
    /// Absolute path on the host (the start's resolved path plus names).
    pub path: String,
    /// Path relative to the start, e.g. `conf/app.ini`.
    pub relative: String,
    /// As `lstat` saw it: a symlink is `FileKind::Symlink`, never its target.
    pub meta: FileMeta,
}

/// What a walk found and why it may be incomplete.
#[derive(Debug, Default)]
pub struct Walk {
    pub entries: Vec<WalkEntry>,
    pub stats: WalkStats,
}

/// Why a walk may have missed entries.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WalkStats {
    /// Stopped before the end: `max_entries` reached, or the visitor stopped it.
    pub truncated: bool,
    /// Entries hidden by `deny_paths` (and not descended into).
    pub skipped_denied: usize,
    /// Directories below the start that could not be listed (permission denied).
    pub unreadable: usize,
}

/// Collects every entry below `start` (a resolved directory), within `options`.
pub async fn walk(sandbox: &Sandbox, start: &str, options: WalkOptions) -> Result<Walk> {
    let mut entries = Vec::new();
    let stats = visit(sandbox, start, options, |entry| {
        entries.push(entry);
        ControlFlow::Continue(())
    })
    .await?;
    Ok(Walk { entries, stats })
}

/// Hands every entry below `start` (a resolved directory) to `visitor` in walk order;
/// `ControlFlow::Break` ends the walk with `truncated` set. Fails only when `start`
/// itself cannot be listed.
pub async fn visit(
    sandbox: &Sandbox,
    start: &str,
    options: WalkOptions,
    mut visitor: impl FnMut(WalkEntry) -> ControlFlow<()> + Send,
) -> Result<WalkStats> {
    let mut stats = WalkStats::default();
    let mut reported = 0;
    let mut pending = VecDeque::from([(start.to_owned(), String::new(), 0)]);
    while let Some((directory, relative, depth)) = pending.pop_front() {
        let mut children = match sandbox.files().read_dir(&directory).await {
            Ok(children) => children,
            Err(error) if depth == 0 => return Err(error),
            // Removed since its parent was listed: nothing left to report.
            Err(error) if error.code == ErrorCode::FileNotFound => continue,
            Err(error) if error.code == ErrorCode::PermissionDenied => {
                stats.unreadable += 1;
                continue;
            }
            Err(error) => return Err(error),
        };
        children.sort_by(|a, b| a.name.cmp(&b.name));
        for child in children {
            if !is_plain_name(&child.name) {
                continue;
            }
            let path = format!("{}/{}", directory.trim_end_matches('/'), child.name);
            if sandbox.check(&path).is_err() {
                stats.skipped_denied += 1;
                continue;
            }
            if reported == options.max_entries {
                stats.truncated = true;
                return Ok(stats);
            }
            reported += 1;
            let entry_relative = if relative.is_empty() {
                child.name
            } else {
                format!("{relative}/{}", child.name)
            };
            let entry_depth = depth + 1;
            if child.meta.kind == FileKind::Dir && entry_depth < options.max_depth {
                pending.push_back((path.clone(), entry_relative.clone(), entry_depth));
            }
            let entry = WalkEntry {
                path,
                relative: entry_relative,
                meta: child.meta,
            };
            if visitor(entry).is_break() {
                stats.truncated = true;
                return Ok(stats);
            }
        }
    }
    Ok(stats)
}

/// A name is one component; anything else from a server is not trusted.
fn is_plain_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\0'])
}

/// The refusal of a tool whose tree holds more than `cap` entries: it changes nothing
/// rather than hold an unbounded list.
pub fn too_many_entries(path: &str, cap: usize) -> Error {
    Error::invalid_input(format!(
        "{path} holds more than {cap} entries; work on a smaller tree"
    ))
    .with_path(path)
}

/// Every entry below `start` (a resolved directory), parents before children, for a
/// tool about to change them all (`fs_move`): symlinks are entries, never followed;
/// the first entry denied by `deny_paths` is the error, as is a directory that cannot
/// be listed (what it holds is unknown) and more than `cap` entries.
pub async fn whole_tree(sandbox: &Sandbox, start: &str, cap: usize) -> Result<Vec<WalkEntry>> {
    let mut entries = Vec::new();
    let mut pending = VecDeque::from([(start.to_owned(), String::new())]);
    while let Some((directory, relative)) = pending.pop_front() {
        let mut children = sandbox.files().read_dir(&directory).await?;
        children.sort_by(|a, b| a.name.cmp(&b.name));
        for child in children {
            if !is_plain_name(&child.name) {
                continue;
            }
            if entries.len() == cap {
                return Err(too_many_entries(start, cap));
            }
            let path = format!("{}/{}", directory.trim_end_matches('/'), child.name);
            sandbox.check(&path)?;
            let entry_relative = if relative.is_empty() {
                child.name
            } else {
                format!("{relative}/{}", child.name)
            };
            if child.meta.kind == FileKind::Dir {
                pending.push_back((path.clone(), entry_relative.clone()));
            }
            entries.push(WalkEntry {
                path,
                relative: entry_relative,
                meta: child.meta,
            });
        }
    }
    Ok(entries)
}
