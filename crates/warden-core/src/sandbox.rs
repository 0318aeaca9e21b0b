//! Confinement of file tools to a root, decided on the target host.
//!
//! A path is resolved one component at a time against the host's own file system
//! (`lstat`, and `readlink` for symlinks), never by comparing strings: `..` that climbs
//! out of the root, symlinks anywhere on the way whose target leaves it (relative or
//! absolute), and siblings that share a prefix (`/srv/app-evil` for root `/srv/app`)
//! all answer `PATH_OUTSIDE_ROOT`, as do NUL bytes and over-long paths or names.
//! Once a walk is inside the root, leaving it even briefly is refused. The final path
//! is then checked against `deny_paths`.
//!
//! What remains is the window between this check and the operation that uses the
//! path: someone with write access inside the root could swap a checked directory for a
//! symlink in between. ARCHITECTURE.md records the window and what closes it.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::error::{Error, ErrorCode, Result};
use crate::files::{FileKind, FileMeta, HostFiles};

/// Longest path accepted (Linux `PATH_MAX`).
pub const MAX_PATH_BYTES: usize = 4096;
/// Longest single name accepted (Linux `NAME_MAX`).
pub const MAX_NAME_BYTES: usize = 255;
/// Symlinks followed in one resolution before it counts as a loop (Linux `MAXSYMLINKS`).
const MAX_LINKS: usize = 40;

/// Whether a symlink in the last component is followed (reads) or is itself the
/// object (`fs_readlink`, `fs_remove`, `fs_stat` of the link).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Last {
    Follow,
    NoFollow,
}

/// A path resolved inside the root.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub path: String,
    /// `None` when nothing exists there (yet).
    pub meta: Option<FileMeta>,
    /// A directory on the way does not exist either (`create_dirs` may make it).
    pub parent_missing: bool,
}

impl Resolved {
    pub fn parent(&self) -> &str {
        parent_of(&self.path)
    }

    pub fn name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or_default()
    }
}

/// Policy's say on a resolved path (`deny_paths`), supplied by the engine.
pub type PathGuard = Arc<dyn Fn(&str) -> Result<()> + Send + Sync>;

/// A root on one host, with its working directory, and the host's file primitives.
#[derive(Clone)]
pub struct Sandbox {
    files: Arc<dyn HostFiles>,
    root: String,
    cwd: String,
    guard: PathGuard,
}

impl Sandbox {
    /// `root` and `cwd` must already be resolved (see [`Sandbox::resolve_root`]).
    pub fn new(files: Arc<dyn HostFiles>, root: String, cwd: String, guard: PathGuard) -> Sandbox {
        Sandbox {
            files,
            root,
            cwd,
            guard,
        }
    }

    /// Resolves an absolute directory from `/` (symlinks followed), for session roots
    /// and `allowed_roots`.
    pub async fn resolve_root(
        files: Arc<dyn HostFiles>,
        path: &str,
        guard: PathGuard,
    ) -> Result<String> {
        if !path.starts_with('/') {
            return Err(
                Error::invalid_input(format!("root {path:?} must be an absolute path"))
                    .with_path(path),
            );
        }
        let whole = Sandbox::new(files, "/".into(), "/".into(), guard);
        let resolved = whole.resolve(path, Last::Follow).await?;
        match resolved.meta {
            Some(meta) if meta.kind == FileKind::Dir => Ok(resolved.path),
            Some(_) => Err(
                Error::invalid_input(format!("root {path:?} is not a directory")).with_path(path),
            ),
            None => Err(Error::new(
                ErrorCode::FileNotFound,
                format!("root {path:?} does not exist"),
            )
            .with_path(path)),
        }
    }

    /// The same host and guard confined to `root`, a resolved directory inside this
    /// sandbox's root (the tree a sync copies, where its symlinks must stay).
    pub fn below(&self, root: &str) -> Result<Sandbox> {
        if !within(&self.root, root) {
            return Err(outside(root, "it is not inside the root"));
        }
        Ok(Sandbox::new(
            Arc::clone(&self.files),
            root.to_owned(),
            root.to_owned(),
            Arc::clone(&self.guard),
        ))
    }

    pub fn root(&self) -> &str {
        &self.root
    }

    /// The same root and guard, resolving relative paths from `cwd` (a resolved
    /// directory inside the root): a symlink's text is relative to its own directory.
    pub fn with_cwd(&self, cwd: &str) -> Sandbox {
        Sandbox {
            cwd: cwd.to_owned(),
            ..self.clone()
        }
    }

    pub fn files(&self) -> &Arc<dyn HostFiles> {
        &self.files
    }

    /// Policy's check alone, for entries met during a walk below a resolved path.
    pub fn check(&self, path: &str) -> Result<()> {
        (self.guard)(path)
    }

    /// Resolves a symlink's `text` as the kernel will from `directory`, the link's own
    /// directory: one that exists, or whose missing tail the caller makes as real
    /// directories (a tree being copied, synced or extracted). `directory` is resolved
    /// first, so a leading `..` in `text` climbs from where it really is.
    pub async fn resolve_link(&self, directory: &str, text: &str) -> Result<Resolved> {
        check_syntax(text)?;
        if text.starts_with('/') {
            return self.resolve(text, Last::Follow).await;
        }
        let base = self.resolve(directory, Last::Follow).await?;
        self.with_cwd(&base.path).resolve(text, Last::Follow).await
    }

    /// Resolves `input` (relative to the working directory, or absolute) on the host.
    pub async fn resolve(&self, input: &str, last: Last) -> Result<Resolved> {
        check_syntax(input)?;
        let (mut current, mut pending) = self.start(input);
        let mut inside = within(&self.root, &join(&current));
        let mut links = 0;
        let mut meta = None;
        let mut missing = false;
        while let Some(name) = pending.pop_front() {
            match name.as_str() {
                "" | "." => continue,
                ".." if missing => {
                    // `x/..` is not "nothing" when x does not exist: the kernel would
                    // climb back through whatever x becomes (a symlink made later).
                    return Err(outside(
                        input,
                        "it climbs back through a component that does not exist",
                    ));
                }
                ".." => {
                    current.pop();
                    meta = None;
                }
                _ if missing => current.push(name),
                _ => {
                    current.push(name);
                    let path = join(&current);
                    let is_last = pending.iter().all(|rest| rest.is_empty() || rest == ".");
                    match self.files.lstat(&path).await? {
                        None => {
                            missing = true;
                            meta = None;
                        }
                        Some(found)
                            if found.kind == FileKind::Symlink
                                && (!is_last || last == Last::Follow) =>
                        {
                            links += 1;
                            if links > MAX_LINKS {
                                return Err(outside(input, "too many symlinks (a loop?)"));
                            }
                            let target = self.files.read_link(&path).await?;
                            check_syntax(&target)?;
                            current.pop();
                            if target.starts_with('/') {
                                // An absolute target is walked from `/` like a new path;
                                // it must come back inside without leaving again.
                                current.clear();
                                inside = false;
                            }
                            for part in target.split('/').rev() {
                                pending.push_front(part.to_owned());
                            }
                            continue;
                        }
                        Some(found) => meta = Some(found),
                    }
                }
            }
            let path = join(&current);
            if within(&self.root, &path) {
                inside = true;
            } else if inside || !within(&path, &self.root) {
                // Left the root, or wandered off the way down to it.
                return Err(outside(input, "it leaves the root"));
            }
        }
        let path = join(&current);
        if !within(&self.root, &path) {
            return Err(outside(input, "it is not inside the root"));
        }
        if meta.is_none() && !missing && path != "/" {
            // The last step was `..`: look at where it landed.
            meta = self.files.lstat(&path).await?;
            missing = meta.is_none();
        }
        (self.guard)(&path)?;
        let parent_missing = missing && meta.is_none() && {
            let parent = parent_of(&path);
            self.files.lstat(parent).await?.is_none()
        };
        Ok(Resolved {
            path,
            meta,
            parent_missing,
        })
    }

    /// Where resolution starts: the root itself for absolute paths under it (its
    /// ancestors are known directories), `/` for other absolute paths, else the cwd.
    fn start(&self, input: &str) -> (Vec<String>, VecDeque<String>) {
        let parts = |text: &str| -> Vec<String> {
            text.split('/')
                .filter(|part| !part.is_empty())
                .map(str::to_owned)
                .collect()
        };
        if let Some(rest) = input
            .strip_prefix(&self.root)
            .filter(|rest| self.root == "/" || rest.is_empty() || rest.starts_with('/'))
            && input.starts_with('/')
        {
            return (parts(&self.root), parts(rest).into());
        }
        if input.starts_with('/') {
            return (Vec::new(), parts(input).into());
        }
        (parts(&self.cwd), parts(input).into())
    }
}

fn check_syntax(path: &str) -> Result<()> {
    if path.is_empty() {
        return Err(Error::invalid_input("empty path"));
    }
    if path.contains('\0') {
        return Err(outside(path, "it contains a NUL byte"));
    }
    if path.len() > MAX_PATH_BYTES {
        return Err(outside(path, "it is longer than 4096 bytes"));
    }
    if path.split('/').any(|name| name.len() > MAX_NAME_BYTES) {
        return Err(outside(path, "a name in it is longer than 255 bytes"));
    }
    Ok(())
}

fn outside(path: &str, why: &str) -> Error {
    let shown: String = path
        .chars()
        .take(200)
        .map(|c| if c == '\0' { '\u{FFFD}' } else { c })
        .collect();
    Error::new(
        ErrorCode::PathOutsideRoot,
        format!("{shown:?} is refused: {why}"),
    )
    .with_path(shown)
}

/// `path` is `root` or below it, by whole components.
pub fn within(root: &str, path: &str) -> bool {
    root == "/"
        || path == root
        || path
            .strip_prefix(root)
            .is_some_and(|rest| rest.starts_with('/'))
}

fn join(parts: &[String]) -> String {
    if parts.is_empty() {
        return "/".into();
    }
    parts.iter().fold(String::new(), |mut path, part| {
        path.push('/');
        path.push_str(part);
        path
    })
}

pub fn parent_of(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(index) => &path[..index],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parent_of_stops_at_the_root() {
        assert_eq!(parent_of("/etc/hosts"), "/etc");
        assert_eq!(parent_of("/hosts"), "/");
    }
}
