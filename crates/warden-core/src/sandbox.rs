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
//! Tools never hold the host's raw file port. [`Sandbox::files`] is a confined view
//! (`Confined`): it remembers the entries this sandbox has seen to be real
//! directories and regular files inside the root (met by `resolve`, listed by
//! `read_dir`, made by `mkdir` or `create_new`), and a primitive acts only on such an
//! entry (to open or change it) or on a plain name inside such a directory (to look at,
//! make, rename or remove it), after `deny_paths`. So whatever string a tool passes, a
//! primitive can neither leave the root nor follow a symlink it has not resolved.
//!
//! What remains is the window between this check and the operation that uses the
//! path: someone with write access inside the root could swap a checked directory for a
//! symlink in between. ARCHITECTURE.md records the window and what closes it.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use crate::error::{Error, ErrorCode, Result};
use crate::files::{DirEntry, FileKind, FileMeta, HostFiles};

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
    /// This resolution of `input` as a root: a directory, or the error that says why
    /// it cannot be one.
    pub(crate) fn into_root(self, input: &str) -> Result<String> {
        match self.meta {
            Some(meta) if meta.kind == FileKind::Dir => Ok(self.path),
            Some(_) => Err(
                Error::invalid_input(format!("root {input:?} is not a directory")).with_path(input),
            ),
            None => Err(Error::new(
                ErrorCode::FileNotFound,
                format!("root {input:?} does not exist"),
            )
            .with_path(input)),
        }
    }

    pub fn parent(&self) -> &str {
        parent_of(&self.path)
    }

    pub fn name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or_default()
    }
}

/// The account databases a sandbox reads for names (see [`Sandbox::read_accounts`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountDb {
    Passwd,
    Group,
}

/// Policy's say on a resolved path (`deny_paths`), supplied by the engine.
pub type PathGuard = Arc<dyn Fn(&str) -> Result<()> + Send + Sync>;

/// A root on one host, with its working directory, and the host's file primitives
/// seen through the confined view.
#[derive(Clone)]
pub struct Sandbox {
    view: Arc<Confined>,
    /// The root as configured when that is a symlink to it (`/var/www` for
    /// `/data/www`): paths written under it resolve as under the root.
    alias: Option<String>,
    /// The same view, as the file port tools are handed.
    files: Arc<dyn HostFiles>,
    cwd: String,
}

impl Sandbox {
    /// `root` and `cwd` must already be resolved (see [`Sandbox::resolve_root`]).
    /// `known` is what the call has learnt of this host's file system so far (shared
    /// by every sandbox of one call on one host: a move's source and destination).
    pub(crate) fn new(
        files: Arc<dyn HostFiles>,
        root: String,
        cwd: String,
        guard: PathGuard,
        known: Known,
    ) -> Sandbox {
        lock(&known).insert(root.clone(), FileKind::Dir);
        Sandbox::over(
            Confined {
                raw: files,
                root,
                guard,
                known,
                scope: Arc::default(),
            },
            cwd,
        )
    }

    /// The same sandbox, acting only on `scope` (the resolved paths the plan names
    /// on this host), what lies below them, the hidden temp and upload files beside
    /// them, and for looking or making directories, what lies above them.
    pub(crate) fn scoped(self, scope: Vec<String>) -> Sandbox {
        let view = Confined {
            raw: Arc::clone(&self.view.raw),
            root: self.view.root.clone(),
            guard: Arc::clone(&self.view.guard),
            known: Arc::clone(&self.view.known),
            scope: Arc::new(scope),
        };
        Sandbox::over(view, self.cwd)
    }

    fn over(view: Confined, cwd: String) -> Sandbox {
        let view = Arc::new(view);
        Sandbox {
            files: Arc::clone(&view) as Arc<dyn HostFiles>,
            view,
            alias: None,
            cwd,
        }
    }

    /// Resolves an absolute directory from `/` (symlinks followed), for session roots
    /// and `allowed_roots`.
    pub(crate) async fn resolve_root(
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
        let whole = Sandbox::new(files, "/".into(), "/".into(), guard, Known::default());
        whole.resolve(path, Last::Follow).await?.into_root(path)
    }

    /// The same host and guard confined to `root`, a resolved directory inside this
    /// sandbox's root (the tree a sync copies, where its symlinks must stay).
    pub fn below(&self, root: &str) -> Result<Sandbox> {
        // A root not known to be a real directory (one a dry run has yet to make) is
        // allowed: the confined view acts on nothing below it until it is one.
        if !is_normal_absolute(root) || !within(&self.view.root, root) {
            return Err(outside(root, "it is not inside the root"));
        }
        let view = Confined {
            raw: Arc::clone(&self.view.raw),
            root: root.to_owned(),
            guard: Arc::clone(&self.view.guard),
            known: Arc::clone(&self.view.known),
            scope: Arc::clone(&self.view.scope),
        };
        Ok(Sandbox::over(view, root.to_owned()))
    }

    pub fn root(&self) -> &str {
        &self.view.root
    }

    /// The same root and guard, resolving relative paths from `cwd` (a resolved
    /// directory inside the root): a symlink's text is relative to its own directory.
    pub fn with_cwd(&self, cwd: &str) -> Result<Sandbox> {
        if !is_normal_absolute(cwd) || !within(&self.view.root, cwd) {
            return Err(outside(
                cwd,
                "it is not a resolved directory inside the root",
            ));
        }
        Ok(Sandbox {
            cwd: cwd.to_owned(),
            ..self.clone()
        })
    }

    /// The host's file primitives, confined to what this sandbox has resolved (see
    /// the module doc): never the raw port.
    pub fn files(&self) -> &Arc<dyn HostFiles> {
        &self.files
    }

    /// Up to `max` bytes of the host's account database (`fs_chown` resolves names):
    /// a fixed system file, read whatever the root, never returned to the caller.
    pub async fn read_accounts(&self, db: AccountDb, max: u64) -> Result<Vec<u8>> {
        let path = match db {
            AccountDb::Passwd => "/etc/passwd",
            AccountDb::Group => "/etc/group",
        };
        self.check(path)?;
        self.view.raw.read(path, 0, max).await
    }

    /// Whether a resolved path is one this call may change (see `Sandbox::scoped`):
    /// for tools that check a whole batch of writes before making the first.
    pub fn check_scope(&self, path: &str) -> Result<()> {
        self.view.in_scope(path, Reach::Change)
    }

    /// Policy's check alone, for entries met during a walk below a resolved path.
    pub fn check(&self, path: &str) -> Result<()> {
        (self.view.guard)(path)
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
        self.with_cwd(&base.path)?.resolve(text, Last::Follow).await
    }

    /// Resolves `input` (relative to the working directory, or absolute) on the host.
    pub async fn resolve(&self, input: &str, last: Last) -> Result<Resolved> {
        check_syntax(input)?;
        let (mut current, mut pending) = self.start(input);
        let mut inside = within(&self.view.root, &join(&current));
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
                    match self.view.raw.lstat(&path).await? {
                        None => {
                            missing = true;
                            meta = None;
                        }
                        Some(found)
                            if found.kind == FileKind::Symlink
                                && (!is_last || last == Last::Follow) =>
                        {
                            // A directory the view knew may have been swapped for this
                            // link: forget it, so no primitive goes through it.
                            self.view.learn(&path, FileKind::Symlink);
                            links += 1;
                            if links > MAX_LINKS {
                                return Err(outside(input, "too many symlinks (a loop?)"));
                            }
                            let target = self.view.raw.read_link(&path).await?;
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
                        Some(found) => {
                            self.view.learn(&path, found.kind);
                            meta = Some(found);
                        }
                    }
                }
            }
            let path = join(&current);
            if within(&self.view.root, &path) {
                inside = true;
            } else if inside || !within(&path, &self.view.root) {
                // Left the root, or wandered off the way down to it.
                return Err(outside(input, "it leaves the root"));
            }
        }
        let path = join(&current);
        if !within(&self.view.root, &path) {
            return Err(outside(input, "it is not inside the root"));
        }
        if meta.is_none() && !missing {
            // The last step was `..`: look at where it landed.
            meta = self.view.raw.lstat(&path).await?;
            missing = meta.is_none();
            if let Some(found) = &meta {
                self.view.learn(&path, found.kind);
            }
        }
        (self.view.guard)(&path)?;
        let parent_missing = missing && meta.is_none() && {
            let parent = parent_of(&path);
            self.view.raw.lstat(parent).await?.is_none()
        };
        Ok(Resolved {
            path,
            meta,
            parent_missing,
        })
    }

    /// Where resolution starts: the root itself for absolute paths under it (its
    /// ancestors are known directories), `/` for other absolute paths, else the cwd.
    /// Paths written under the alias now resolve as under the root.
    pub(crate) fn aliased(mut self, alias: Option<String>) -> Sandbox {
        self.alias = alias.filter(|alias| *alias != self.view.root);
        self
    }

    fn start(&self, input: &str) -> (Vec<String>, VecDeque<String>) {
        if let Some(alias) = &self.alias
            && let Some(rest) = input.strip_prefix(alias.as_str())
            && (rest.is_empty() || rest.starts_with('/'))
        {
            let input = format!("{}{rest}", self.view.root);
            return self.start_unaliased(&input);
        }
        self.start_unaliased(input)
    }

    fn start_unaliased(&self, input: &str) -> (Vec<String>, VecDeque<String>) {
        let parts = |text: &str| -> Vec<String> {
            text.split('/')
                .filter(|part| !part.is_empty())
                .map(str::to_owned)
                .collect()
        };
        if let Some(rest) = input
            .strip_prefix(&self.view.root)
            .filter(|rest| self.view.root == "/" || rest.is_empty() || rest.starts_with('/'))
            && input.starts_with('/')
        {
            return (parts(&self.view.root), parts(rest).into());
        }
        if input.starts_with('/') {
            return (Vec::new(), parts(input).into());
        }
        (parts(&self.cwd), parts(input).into())
    }
}

/// The host's file primitives as a sandbox's tools see them. `known` holds the
/// entries seen to be real directories and regular files inside the root (shared by
/// the sandboxes made from one another: `with_cwd`, `below`).
struct Confined {
    raw: Arc<dyn HostFiles>,
    root: String,
    guard: PathGuard,
    known: Known,
    /// The planned paths this view may act on; empty: the whole root.
    scope: Arc<Vec<String>>,
}

/// How far a primitive reaches: looking at or making a directory above a planned
/// path is part of working on it (`create_dirs`); anything else stays at or below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reach {
    Look,
    Make,
    Change,
}

/// Entries of one host seen to be real directories and regular files, by path.
pub(crate) type Known = Arc<Mutex<BTreeMap<String, FileKind>>>;

fn lock(known: &Known) -> std::sync::MutexGuard<'_, BTreeMap<String, FileKind>> {
    // A panic while holding the lock cannot leave the map half-updated in a way that
    // widens access: every update is one insert or one removal.
    known
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Confined {
    fn known(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, FileKind>> {
        lock(&self.known)
    }

    fn kind_of(&self, path: &str) -> Option<FileKind> {
        self.known().get(path).copied()
    }

    /// Records what `path` is now: real directories and files inside the root are
    /// remembered, anything else (a symlink, a device, nothing) is forgotten with what
    /// was known below it.
    fn learn(&self, path: &str, kind: FileKind) {
        if !within(&self.root, path) {
            return;
        }
        let mut known = self.known();
        forget_below(&mut known, path);
        match kind {
            FileKind::Dir | FileKind::File => {
                known.insert(path.to_owned(), kind);
            }
            FileKind::Symlink | FileKind::Special => {
                known.remove(path);
            }
        }
    }

    fn forget(&self, path: &str) {
        let mut known = self.known();
        forget_below(&mut known, path);
        known.remove(path);
    }

    /// Invariant: a primitive acts only on what the plan named (see [`Sandbox::scoped`]).
    fn in_scope(&self, path: &str, reach: Reach) -> Result<()> {
        let planned = |planned: &String| {
            within(planned, path)
                || (reach != Reach::Change && within(path, planned))
                || (parent_of(path) == parent_of(planned)
                    && path
                        .rsplit('/')
                        .next()
                        .is_some_and(|name| name.starts_with(&hidden_prefix(planned))))
        };
        if self.scope.is_empty() || self.scope.iter().any(planned) {
            return Ok(());
        }
        Err(outside(path, "it is not a path this call planned"))
    }

    /// A primitive that opens or changes `path` itself: it must be a real directory or
    /// file inside the root (never a symlink that would be followed). An entry not
    /// yet known is looked at once (`lstat`) inside its real directory.
    async fn require_entry(&self, path: &str, reach: Reach) -> Result<FileKind> {
        check_syntax(path)?;
        if !is_normal_absolute(path) {
            return Err(unconfined(path));
        }
        self.in_scope(path, reach)?;
        if let Some(kind) = self.kind_of(path).filter(|_| within(&self.root, path)) {
            (self.guard)(path)?;
            return Ok(kind);
        }
        self.require_name(path, reach).await?;
        match self.raw.lstat(path).await? {
            Some(meta) if matches!(meta.kind, FileKind::Dir | FileKind::File) => {
                self.learn(path, meta.kind);
                Ok(meta.kind)
            }
            Some(_) => Err(outside(
                path,
                "it is a symlink or special file; resolve the path it stands for",
            )),
            None => Err(Error::new(
                ErrorCode::FileNotFound,
                format!("{path}: no such file or directory"),
            )
            .with_path(path)),
        }
    }

    /// A primitive on the name `path` itself (look, make, rename, remove, link): it
    /// must be a plain name inside a real directory of the root.
    async fn require_name(&self, path: &str, reach: Reach) -> Result<()> {
        check_syntax(path)?;
        if !is_normal_absolute(path) {
            return Err(unconfined(path));
        }
        self.in_scope(path, reach)?;
        let name = path.rsplit('/').next().unwrap_or_default();
        if !is_plain_name(name) || !within(&self.root, path) || path == self.root {
            return Err(unconfined(path));
        }
        self.require_real_dir(parent_of(path)).await?;
        (self.guard)(path)
    }

    /// `directory` and every directory between it and the root are real directories
    /// (no symlink on the way): known ones are trusted, the rest looked at once each.
    async fn require_real_dir(&self, directory: &str) -> Result<()> {
        let mut unknown = Vec::new();
        let mut current = directory.to_owned();
        while self.kind_of(&current) != Some(FileKind::Dir) {
            if !within(&self.root, &current) || current == self.root {
                return Err(unconfined(directory));
            }
            let parent = parent_of(&current).to_owned();
            unknown.push(current);
            current = parent;
        }
        for path in unknown.iter().rev() {
            match self.raw.lstat(path).await? {
                Some(meta) if meta.kind == FileKind::Dir => self.learn(path, FileKind::Dir),
                Some(_) => return Err(unconfined(directory)),
                None => {
                    return Err(Error::new(
                        ErrorCode::FileNotFound,
                        format!("{path}: no such directory"),
                    )
                    .with_path(path));
                }
            }
        }
        Ok(())
    }

    async fn require_dir(&self, path: &str) -> Result<()> {
        match self.require_entry(path, Reach::Look).await? {
            FileKind::Dir => Ok(()),
            _ => Err(Error::invalid_input(format!("{path} is not a directory")).with_path(path)),
        }
    }
}

/// An absolute path spelt one way only: every component a plain name (no `.`, `..`,
/// empty names or trailing `/`), so string comparisons with it mean what they say.
fn is_normal_absolute(path: &str) -> bool {
    path == "/" || (path.starts_with('/') && path[1..].split('/').all(is_plain_name))
}

/// A name is one component; anything else is not trusted.
fn is_plain_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\0'])
}

/// Drops what was known strictly below `path` (it was removed, renamed or replaced).
fn forget_below(known: &mut BTreeMap<String, FileKind>, path: &str) {
    let prefix = format!("{}/", path.trim_end_matches('/'));
    let below: Vec<String> = known
        .range(prefix.clone()..)
        .take_while(|(key, _)| key.starts_with(&prefix))
        .map(|(key, _)| key.clone())
        .collect();
    for key in below {
        known.remove(&key);
    }
}

/// A path the sandbox has not resolved: a tool bug or an attempt to get around it.
fn unconfined(path: &str) -> Error {
    outside(
        path,
        "it does not lie inside the root through real directories (resolve it first)",
    )
}

#[async_trait]
impl HostFiles for Confined {
    async fn lstat(&self, path: &str) -> Result<Option<FileMeta>> {
        if self.kind_of(path).is_some() && within(&self.root, path) {
            check_syntax(path)?;
            self.in_scope(path, Reach::Look)?;
            (self.guard)(path)?;
        } else {
            match self.require_name(path, Reach::Look).await {
                // A directory on the way is missing: nothing is there.
                Err(error) if error.code == ErrorCode::FileNotFound => return Ok(None),
                checked => checked?,
            }
        }
        let meta = self.raw.lstat(path).await?;
        match &meta {
            Some(meta) => self.learn(path, meta.kind),
            None => self.forget(path),
        }
        Ok(meta)
    }

    async fn read_link(&self, path: &str) -> Result<String> {
        self.require_name(path, Reach::Look).await?;
        self.raw.read_link(path).await
    }

    async fn read(&self, path: &str, offset: u64, length: u64) -> Result<Vec<u8>> {
        self.require_entry(path, Reach::Change).await?;
        self.raw.read(path, offset, length).await
    }

    async fn create_new(&self, path: &str, data: &[u8], mode: u32) -> Result<()> {
        self.require_name(path, Reach::Change).await?;
        self.raw.create_new(path, data, mode).await?;
        self.learn(path, FileKind::File);
        Ok(())
    }

    async fn rename(&self, from: &str, to: &str) -> Result<()> {
        self.require_name(from, Reach::Change).await?;
        self.require_name(to, Reach::Change).await?;
        let kind = self.kind_of(from);
        self.raw.rename(from, to).await?;
        self.forget(from);
        match kind {
            Some(kind) => self.learn(to, kind),
            None => self.forget(to),
        }
        Ok(())
    }

    async fn read_dir(&self, path: &str) -> Result<Vec<DirEntry>> {
        self.require_dir(path).await?;
        let entries = self.raw.read_dir(path).await?;
        for entry in &entries {
            if is_plain_name(&entry.name) {
                let child = format!("{}/{}", path.trim_end_matches('/'), entry.name);
                self.learn(&child, entry.meta.kind);
            }
        }
        Ok(entries)
    }

    async fn mkdir(&self, path: &str, mode: u32) -> Result<()> {
        self.require_name(path, Reach::Make).await?;
        self.raw.mkdir(path, mode).await?;
        self.learn(path, FileKind::Dir);
        Ok(())
    }

    async fn remove_file(&self, path: &str) -> Result<()> {
        self.require_name(path, Reach::Change).await?;
        self.raw.remove_file(path).await?;
        self.forget(path);
        Ok(())
    }

    async fn remove_dir(&self, path: &str) -> Result<()> {
        self.require_name(path, Reach::Change).await?;
        self.raw.remove_dir(path).await?;
        self.forget(path);
        Ok(())
    }

    async fn symlink(&self, target: &str, link_path: &str) -> Result<()> {
        self.require_name(link_path, Reach::Change).await?;
        self.raw.symlink(target, link_path).await?;
        self.forget(link_path);
        Ok(())
    }

    async fn set_mode(&self, path: &str, mode: u32) -> Result<()> {
        self.require_entry(path, Reach::Change).await?;
        self.raw.set_mode(path, mode).await
    }

    async fn set_owner(&self, path: &str, uid: u32, gid: u32) -> Result<()> {
        self.require_entry(path, Reach::Change).await?;
        self.raw.set_owner(path, uid, gid).await
    }

    async fn write_at(&self, path: &str, offset: u64, data: &[u8]) -> Result<()> {
        self.require_entry(path, Reach::Change).await?;
        self.raw.write_at(path, offset, data).await
    }

    async fn truncate(&self, path: &str, length: u64) -> Result<()> {
        self.require_entry(path, Reach::Change).await?;
        self.raw.truncate(path, length).await
    }

    async fn sync(&self, path: &str) -> Result<()> {
        self.require_entry(path, Reach::Change).await?;
        self.raw.sync(path).await
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

/// A fresh hidden name in `path`'s directory, for a file renamed over `path` later
/// (an atomic write): `.<name>.warden-<random>.tmp`.
pub fn temp_beside(path: &str) -> String {
    // `parent_of` is "/" for files at the top: no doubled slash.
    format!(
        "{}/{}{}.tmp",
        parent_of(path).trim_end_matches('/'),
        hidden_prefix(path),
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

/// How hidden files warden keeps beside `path` begin (temp files, upload parts): a
/// scoped sandbox lets a call work on these beside the paths it planned.
pub fn hidden_prefix(path: &str) -> String {
    format!(".{}.warden-", short_name(path))
}

/// The last component of `path`, cut to 128 bytes (on a character boundary): names of
/// temp and partial files add to it and must stay under the 255-byte limit.
pub fn short_name(path: &str) -> &str {
    let name = path.rsplit('/').next().unwrap_or("file");
    let mut end = name.len().min(128);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
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
