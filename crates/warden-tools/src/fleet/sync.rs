//! `sync`: a directory on warden's own machine mirrored into a directory on every host
//! of a target, concurrently. Only changed files are copied (size first, then sha256),
//! missing directories are made, modes kept, symlinks recreated only when they stay
//! inside both trees. Host entries missing from the source go only with `delete: true`,
//! which needs `confirm: true`: without it the whole call is a preview. Walks never
//! follow symlinks, and `deny_paths` apply on both sides.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::OnceCell;

use crate::fleet::transfer::{self, copy_atomic};
use crate::fs::file_args::hash_file;
use crate::fs::fs_write::{make_dirs, symlink_atomic};
use crate::fs::walk::{MAX_WALK_ENTRIES, too_many_entries};
use warden_core::error::{Error, ErrorCode, Result};
use warden_core::files::{FileKind, FileMeta, HostFiles};
use warden_core::inventory::Host;
use warden_core::sandbox::{Last, Sandbox, parent_of};
use warden_core::tool::{
    Domain, Effect, Plan, RolloutHost, RolloutParams, RolloutReport, Summary, Tool, ToolInfo,
};
use warden_core::{PlanContext, RunContext};

pub struct SyncDir;

/// Most entries a source tree may hold (files, directories, symlinks).
const MAX_ENTRIES: usize = 100_000;
/// Paths listed per kind of change; `count` covers the rest.
const LISTED_PATHS: usize = 20;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct SyncParams {
    /// host:ID, host:GLOB, group:G, tag:K=V, all; comma-joined.
    pub target: String,
    /// Directory on warden's machine (absolute, under allowed_roots).
    pub source: String,
    /// Destination directory on each host (absolute).
    pub path: String,
    /// Also remove host entries not in source [false].
    #[serde(default)]
    pub delete: bool,
    /// Report what each host would get; change nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Required with delete; without it, a preview.
    #[serde(default)]
    pub confirm: bool,
    #[serde(flatten)]
    pub rollout: RolloutParams,
}

/// How many entries, and the first of them (relative to the synced directory).
#[derive(Debug, Default, Serialize, JsonSchema)]
pub struct PathList {
    pub count: usize,
    pub paths: Vec<String>,
}

impl PathList {
    fn add(&mut self, path: impl Into<String>) {
        self.count += 1;
        if self.paths.len() < LISTED_PATHS {
            self.paths.push(path.into());
        }
    }
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct HostSync {
    pub host_id: String,
    /// No error on this host (a preview is ok).
    pub ok: bool,
    /// The destination directory as resolved on the host.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    pub created: PathList,
    /// Content or mode changed (or an entry of another type replaced).
    pub updated: PathList,
    pub deleted: PathList,
    pub unchanged: PathList,
    /// Left alone on the host, each with why.
    pub skipped: PathList,
    /// Why nothing was changed (dry_run, or delete without confirm).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preview: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<serde_json::Map<String, Value>>")]
    pub error: Option<Value>,
    /// Not run: the rollout stopped before this host's batch (why).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_run: Option<String>,
    pub duration_ms: u64,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct SyncOutput {
    /// The source directory as resolved on warden's machine.
    pub source: String,
    /// Files, directories and symlinks synced from the source.
    pub entries: usize,
    /// Source entries left out, each with why.
    pub skipped: PathList,
    /// delete was asked without confirm: call again with confirm: true.
    pub confirm_needed: bool,
    pub results: Vec<HostSync>,
    /// The batches and how they went (a rollout was asked for).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollout: Option<RolloutReport>,
    pub summary: Summary,
}

impl Tool for SyncDir {
    type Params = SyncParams;
    type Output = SyncOutput;

    const JOBS: bool = true;

    const INFO: ToolInfo = ToolInfo {
        name: "sync",
        domain: Domain::Fleet,
        summary: "Sync directory to target",
        description: "Mirror a local directory (source) into path on every host of a target: only changed files are copied, modes kept, symlinks only if they stay inside. delete: true also removes host entries not in source and needs confirm: true (else a preview); dry_run changes nothing. Rolling: batch_size, batch_wait, subset, fail_fast, min_success_rate (as exec). Errors: PATH_OUTSIDE_ROOT, POLICY_DENIED, FILE_NOT_FOUND, TARGET_EMPTY; per host: SSH_*, PERMISSION_DENIED, CONFLICT.",
        effect: Effect::Destructive,
        idempotent: true,
        open_world: true,
        example: r#"{"target": "group:web", "source": "/srv/app/release", "path": "/srv/app/current"}"#,
    };

    fn plan(&self, params: &SyncParams, planning: &PlanContext) -> Result<Plan> {
        transfer::fleet_file_plan(
            planning,
            &params.target,
            &params.source,
            &params.path,
            params.dry_run,
            // delete without confirm changes nothing either (the whole call previews).
            (
                &params.rollout,
                params.dry_run || (params.delete && !params.confirm),
            ),
        )
    }

    fn run(
        &self,
        params: SyncParams,
        context: RunContext,
    ) -> impl Future<Output = Result<SyncOutput>> + Send + 'static {
        async move {
            let started = Instant::now();
            let sandbox = context.local_source(&params.source).await?;
            let resolved = sandbox.resolve(&params.source, Last::Follow).await?;
            match &resolved.meta {
                Some(meta) if meta.kind == FileKind::Dir => {}
                Some(_) => {
                    return Err(Error::invalid_input(format!(
                        "source {} is not a directory",
                        resolved.path
                    ))
                    .with_path(&resolved.path));
                }
                None => {
                    return Err(Error::new(
                        ErrorCode::FileNotFound,
                        format!("source {}: no such directory", resolved.path),
                    )
                    .with_path(&resolved.path));
                }
            }
            let (manifest, skipped) = Manifest::walk(&sandbox, &resolved.path).await?;
            let entries = manifest.entries.len();
            let confirm_needed = params.delete && !params.confirm;
            let preview = if params.dry_run {
                Some(String::from("dry run: nothing was changed"))
            } else if confirm_needed {
                Some(String::from(
                    "delete: true removes entries: nothing was changed; call again with confirm: true",
                ))
            } else {
                None
            };
            let job = Arc::new(Job {
                manifest,
                path: params.path,
                delete: params.delete,
                preview,
            });
            let preview = job.preview.clone();
            let rolled = context
                .rollout(
                    move |context, host| {
                        let job = Arc::clone(&job);
                        async move { sync_host(&context, &host, &job).await }
                    },
                    |host, error| HostSync::new(host.id.as_str(), preview.clone()).failed(&error),
                )
                .await;
            let summary = rolled.summary(context.job_id(), started);
            Ok(SyncOutput {
                source: resolved.path,
                entries,
                skipped,
                confirm_needed,
                results: rolled.results,
                rollout: rolled.report,
                summary,
            })
        }
    }
}

/// One entry of the source tree.
struct SourceEntry {
    /// Relative to the source directory.
    rel: String,
    kind: FileKind,
    size: u64,
    mode: u32,
    /// Where a symlink points, as written.
    link_target: Option<String>,
    /// Computed once, by the first host that needs it.
    sha256: OnceCell<String>,
}

/// The source tree as walked once, shared by every host.
struct Manifest {
    files: Arc<dyn HostFiles>,
    root: String,
    /// Parents before their children.
    entries: Vec<SourceEntry>,
    /// Every name met in the source, skipped ones too: never deleted on hosts.
    names: HashSet<String>,
}

impl Manifest {
    /// Walks `root` without following symlinks; entries denied by `deny_paths`,
    /// symlinks leaving the tree and special files are skipped and listed.
    async fn walk(sandbox: &Sandbox, root: &str) -> Result<(Manifest, PathList)> {
        let tree = sandbox.below(root)?;
        let files = Arc::clone(sandbox.files());
        let mut entries = Vec::new();
        let mut names = HashSet::new();
        let mut skipped = PathList::default();
        let mut pending = vec![String::new()];
        while let Some(directory) = pending.pop() {
            let mut children = files.read_dir(&absolute(root, &directory)).await?;
            children.sort_by(|a, b| a.name.cmp(&b.name));
            for child in children {
                let rel = relative(&directory, &child.name);
                let path = absolute(root, &rel);
                names.insert(rel.clone());
                if names.len() > MAX_ENTRIES {
                    return Err(Error::invalid_input(format!(
                        "source {root} holds more than {MAX_ENTRIES} entries; sync a smaller tree"
                    ))
                    .with_path(root));
                }
                if tree.check(&path).is_err() {
                    skipped.add(format!("{rel}: denied by deny_paths"));
                    continue;
                }
                let mut link_target = None;
                match child.meta.kind {
                    FileKind::File => {}
                    FileKind::Dir => pending.push(rel.clone()),
                    FileKind::Symlink => {
                        let target = files.read_link(&path).await?;
                        if tree.resolve(&path, Last::Follow).await.is_err() {
                            skipped.add(format!("{rel}: symlink to {target} leaves the source"));
                            continue;
                        }
                        link_target = Some(target);
                    }
                    FileKind::Special => {
                        skipped.add(format!("{rel}: not a file, directory or symlink"));
                        continue;
                    }
                }
                entries.push(SourceEntry {
                    rel,
                    kind: child.meta.kind,
                    size: child.meta.size,
                    mode: child.meta.mode,
                    link_target,
                    sha256: OnceCell::new(),
                });
            }
        }
        let manifest = Manifest {
            files,
            root: root.to_owned(),
            entries,
            names,
        };
        Ok((manifest, skipped))
    }

    async fn sha256(&self, entry: &SourceEntry) -> Result<String> {
        let path = absolute(&self.root, &entry.rel);
        let hash = entry
            .sha256
            .get_or_try_init(|| async {
                Ok::<_, Error>(hash_file(self.files.as_ref(), &path, u64::MAX).await?.0)
            })
            .await?;
        Ok(hash.clone())
    }

    /// Copies the source file of `entry` to `path` on a host, atomically, with its mode
    /// and the `owner` of the file it replaces.
    async fn copy(
        &self,
        entry: &SourceEntry,
        host: &dyn HostFiles,
        path: &str,
        owner: Option<(u32, u32)>,
    ) -> Result<()> {
        let source = absolute(&self.root, &entry.rel);
        copy_atomic(
            self.files.as_ref(),
            &source,
            entry.size,
            host,
            path,
            entry.mode,
            owner,
        )
        .await?;
        Ok(())
    }
}

/// One sync, shared by every host's task.
struct Job {
    manifest: Manifest,
    path: String,
    delete: bool,
    /// Set when nothing may change (dry_run, or delete without confirm): why.
    preview: Option<String>,
}

async fn sync_host(context: &RunContext, host: &Arc<Host>, job: &Job) -> HostSync {
    let started = Instant::now();
    let mut result = HostSync::new(host.id.as_str(), job.preview.clone());
    if let Err(error) = sync_into(context, host, job, &mut result).await {
        result = result.failed(&error);
    }
    result.duration_ms = started.elapsed().as_millis() as u64;
    result
}

impl RolloutHost for HostSync {
    fn succeeded(&self) -> bool {
        self.ok
    }

    fn not_run(host_id: &str, reason: &str) -> HostSync {
        HostSync {
            ok: false,
            not_run: Some(reason.to_owned()),
            ..HostSync::new(host_id, None)
        }
    }
}

impl HostSync {
    fn new(host_id: &str, preview: Option<String>) -> HostSync {
        HostSync {
            host_id: host_id.to_owned(),
            ok: true,
            path: None,
            created: PathList::default(),
            updated: PathList::default(),
            deleted: PathList::default(),
            unchanged: PathList::default(),
            skipped: PathList::default(),
            preview,
            error: None,
            not_run: None,
            duration_ms: 0,
        }
    }

    fn failed(mut self, error: &Error) -> HostSync {
        self.ok = false;
        self.error = Some(transfer::error_json(&self.host_id, error));
        self
    }
}

/// Fills `result` as it goes, so a failure still shows how far the host got.
async fn sync_into(
    context: &RunContext,
    host: &Arc<Host>,
    job: &Job,
    result: &mut HostSync,
) -> Result<()> {
    let sandbox = context.sandbox(host, &job.path).await?;
    let resolved = sandbox.resolve(&job.path, Last::Follow).await?;
    result.path = Some(resolved.path.clone());
    let exists = match &resolved.meta {
        Some(meta) if meta.kind == FileKind::Dir => true,
        Some(meta) => {
            return Err(Error::invalid_input(format!(
                "{} is a {:?}, not a directory",
                resolved.path, meta.kind
            ))
            .with_path(&resolved.path));
        }
        None => false,
    };
    let apply = job.preview.is_none();
    if !exists && apply {
        make_dirs(&sandbox, &resolved.path).await?;
    }
    let mut host_tree = HostTree {
        tree: sandbox.below(&resolved.path)?,
        root: resolved.path.clone(),
        apply,
        delete: job.delete,
        blocked: HashSet::new(),
        missing: HashSet::new(),
        present: Vec::new(),
        dir_modes: Vec::new(),
        result,
    };
    if exists {
        host_tree.present.push(String::new());
    } else {
        host_tree.missing.insert(String::new());
    }
    for entry in &job.manifest.entries {
        host_tree.sync_entry(&job.manifest, entry).await?;
    }
    if job.delete {
        host_tree.delete_extras(&job.manifest).await?;
    }
    host_tree.set_dir_modes().await
}

/// One host's side of a sync while it runs. Directories are entered only once seen
/// as real directories (or made by this sync), so no symlink on the host is followed.
struct HostTree<'a> {
    /// Confined to the destination directory.
    tree: Sandbox,
    root: String,
    apply: bool,
    delete: bool,
    /// Source directories not synced on this host: their entries are skipped.
    blocked: HashSet<String>,
    /// Directories absent on the host (made by this sync, or in a preview to be made):
    /// their entries need no look-up.
    missing: HashSet<String>,
    /// Directories that were already on the host: where extra entries may be.
    present: Vec<String>,
    /// Directory modes set last, deepest first, so a read-only mode cannot block the
    /// writes inside.
    dir_modes: Vec<(String, u32)>,
    result: &'a mut HostSync,
}

impl HostTree<'_> {
    fn files(&self) -> &dyn HostFiles {
        self.tree.files().as_ref()
    }

    async fn sync_entry(&mut self, manifest: &Manifest, entry: &SourceEntry) -> Result<()> {
        let rel = entry.rel.as_str();
        let parent = parent_rel(rel);
        if self.blocked.contains(parent) {
            self.skip(entry, format!("{rel}: inside a directory not synced"));
            return Ok(());
        }
        let path = absolute(&self.root, rel);
        if self.tree.check(&path).is_err() {
            self.skip(entry, format!("{rel}: denied by deny_paths on the host"));
            return Ok(());
        }
        if let Some(target) = &entry.link_target
            && !self.link_stays_inside(&path, target).await
        {
            self.skip(
                entry,
                format!("{rel}: symlink to {target} would leave {}", self.root),
            );
            return Ok(());
        }
        let existing = if self.missing.contains(parent) {
            None
        } else {
            self.files().lstat(&path).await?
        };
        let Some(meta) = existing else {
            self.create(manifest, entry, &path).await?;
            self.result.created.add(rel);
            return Ok(());
        };
        if meta.kind != entry.kind {
            if !self.delete {
                self.skip(
                    entry,
                    format!(
                        "{rel}: a {:?} is in the way (delete: true replaces it)",
                        meta.kind
                    ),
                );
                return Ok(());
            }
            if !self.remove_tree(&path, &meta).await? {
                self.skip(
                    entry,
                    format!("{rel}: the {:?} in the way holds denied paths", meta.kind),
                );
                return Ok(());
            }
            self.create(manifest, entry, &path).await?;
            self.result.updated.add(rel);
            return Ok(());
        }
        let changed = match entry.kind {
            FileKind::Dir => {
                self.present.push(rel.to_owned());
                if meta.mode != entry.mode {
                    self.dir_modes.push((path, entry.mode));
                }
                meta.mode != entry.mode
            }
            FileKind::File => self.update_file(manifest, entry, &path, &meta).await?,
            _ => self.update_link(entry, &path).await?,
        };
        if changed {
            self.result.updated.add(rel);
        } else {
            self.result.unchanged.add(rel);
        }
        Ok(())
    }

    fn skip(&mut self, entry: &SourceEntry, why: String) {
        if entry.kind == FileKind::Dir {
            self.blocked.insert(entry.rel.clone());
        }
        self.result.skipped.add(why);
    }

    /// A link made at `path` pointing to `target` would resolve inside the tree.
    /// (Its directory may not exist yet: this sync makes it, as a real directory.)
    async fn link_stays_inside(&self, path: &str, target: &str) -> bool {
        self.tree
            .resolve_link(parent_of(path), target)
            .await
            .is_ok()
    }

    /// Makes `entry` at `path`, where nothing is.
    async fn create(&mut self, manifest: &Manifest, entry: &SourceEntry, path: &str) -> Result<()> {
        match entry.kind {
            FileKind::Dir => {
                self.missing.insert(entry.rel.clone());
                if self.apply {
                    // Owner access while filling it; the real mode comes last.
                    self.mkdir(path, entry.mode | 0o700).await?;
                    if entry.mode | 0o700 != entry.mode {
                        self.dir_modes.push((path.to_owned(), entry.mode));
                    }
                }
            }
            FileKind::File if self.apply => {
                manifest.copy(entry, self.files(), path, None).await?;
            }
            FileKind::Symlink if self.apply => {
                let target = entry.link_target.as_deref().unwrap_or_default();
                if let Err(error) = self.files().symlink(target, path).await {
                    // Made meanwhile (hosts sharing a file system) with the same target.
                    let same = error.code == ErrorCode::Conflict
                        && self.files().read_link(path).await.ok().as_deref() == Some(target);
                    if !same {
                        return Err(error);
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    async fn mkdir(&self, path: &str, mode: u32) -> Result<()> {
        match self.files().mkdir(path, mode).await {
            Ok(()) => Ok(()),
            // Made meanwhile (hosts sharing a file system): fine if it is a directory.
            Err(error) if error.code == ErrorCode::Conflict => {
                match self.files().lstat(path).await? {
                    Some(meta) if meta.kind == FileKind::Dir => Ok(()),
                    _ => Err(error),
                }
            }
            Err(error) => Err(error),
        }
    }

    /// Copies a file whose content differs (size, then sha256), or fixes its mode.
    async fn update_file(
        &mut self,
        manifest: &Manifest,
        entry: &SourceEntry,
        path: &str,
        meta: &FileMeta,
    ) -> Result<bool> {
        let same_content = meta.size == entry.size
            && hash_file(self.files(), path, u64::MAX).await?.0 == manifest.sha256(entry).await?;
        if same_content {
            if meta.mode == entry.mode {
                return Ok(false);
            }
            if self.apply {
                self.files().set_mode(path, entry.mode).await?;
            }
            return Ok(true);
        }
        if self.apply {
            let owner = Some((meta.uid, meta.gid));
            manifest.copy(entry, self.files(), path, owner).await?;
        }
        Ok(true)
    }

    /// Points an existing link at the source's target (a new link renamed over it).
    async fn update_link(&mut self, entry: &SourceEntry, path: &str) -> Result<bool> {
        let target = entry.link_target.as_deref().unwrap_or_default();
        if self.files().read_link(path).await? == target {
            return Ok(false);
        }
        if self.apply {
            symlink_atomic(self.files(), target, path).await?;
        }
        Ok(true)
    }

    /// Removes host entries of synced directories that the source does not have.
    async fn delete_extras(&mut self, manifest: &Manifest) -> Result<()> {
        for directory in std::mem::take(&mut self.present) {
            let mut found = self
                .files()
                .read_dir(&absolute(&self.root, &directory))
                .await?;
            found.sort_by(|a, b| a.name.cmp(&b.name));
            for entry in found {
                let rel = relative(&directory, &entry.name);
                if manifest.names.contains(&rel) {
                    continue;
                }
                let path = absolute(&self.root, &rel);
                if !self.remove_tree(&path, &entry.meta).await? {
                    self.result
                        .skipped
                        .add(format!("{rel}: holds paths denied by deny_paths"));
                }
            }
        }
        Ok(())
    }

    /// Removes `path` and everything below it (symlinks themselves, never what they
    /// point to), counting each entry as deleted. Nothing is removed, and `false`
    /// returned, when an entry in it is denied by `deny_paths`.
    async fn remove_tree(&mut self, path: &str, meta: &FileMeta) -> Result<bool> {
        let Some(doomed) = doomed_tree(&self.tree, path, meta.kind, MAX_WALK_ENTRIES).await? else {
            return Ok(false);
        };
        for (doomed_path, kind) in doomed {
            if self.apply {
                let removed = match kind {
                    FileKind::Dir => self.files().remove_dir(&doomed_path).await,
                    _ => self.files().remove_file(&doomed_path).await,
                };
                match removed {
                    // Gone meanwhile (hosts sharing a file system): the goal is reached.
                    Err(error) if error.code != ErrorCode::FileNotFound => return Err(error),
                    _ => {}
                }
            }
            let rel = doomed_path
                .strip_prefix(&self.root)
                .unwrap_or(&doomed_path)
                .trim_start_matches('/');
            self.result.deleted.add(rel);
        }
        Ok(true)
    }

    async fn set_dir_modes(&mut self) -> Result<()> {
        if !self.apply {
            return Ok(());
        }
        while let Some((path, mode)) = self.dir_modes.pop() {
            self.files().set_mode(&path, mode).await?;
        }
        Ok(())
    }
}

/// `path` and everything below it, deepest first, symlinks not followed; `None` when
/// an entry is denied by `deny_paths`. More than `cap` entries is an error: nothing
/// is removed rather than an unbounded list held.
pub(crate) async fn doomed_tree(
    tree: &Sandbox,
    path: &str,
    kind: FileKind,
    cap: usize,
) -> Result<Option<Vec<(String, FileKind)>>> {
    let mut doomed = Vec::new();
    let mut seen = 0;
    let mut stack = vec![(path.to_owned(), kind, false)];
    while let Some((current, kind, expanded)) = stack.pop() {
        if !expanded {
            seen += 1;
            if seen > cap {
                return Err(too_many_entries(path, cap));
            }
        }
        if tree.check(&current).is_err() {
            return Ok(None);
        }
        if kind != FileKind::Dir || expanded {
            doomed.push((current, kind));
            continue;
        }
        stack.push((current.clone(), kind, true));
        for entry in tree.files().read_dir(&current).await? {
            stack.push((format!("{current}/{}", entry.name), entry.meta.kind, false));
        }
    }
    Ok(Some(doomed))
}

/// `rel` inside `root` on the file system.
fn absolute(root: &str, rel: &str) -> String {
    match (root, rel) {
        (_, "") => root.to_owned(),
        ("/", _) => format!("/{rel}"),
        _ => format!("{root}/{rel}"),
    }
}

fn relative(directory: &str, name: &str) -> String {
    if directory.is_empty() {
        name.to_owned()
    } else {
        format!("{directory}/{name}")
    }
}

/// The relative directory holding `rel` ("" at the top).
fn parent_rel(rel: &str) -> &str {
    rel.rfind('/').map_or("", |index| &rel[..index])
}
