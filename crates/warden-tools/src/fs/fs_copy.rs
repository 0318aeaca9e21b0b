//! `fs_copy`: a file, or with `recursive: true` a directory tree, to `to` on the same
//! host. Every file lands atomically (a temp file beside its destination, renamed
//! over it); big files stream through in chunks, never whole in memory. Symlinks in a
//! tree are recreated as links only when they resolve inside the root, at the source
//! and at the destination. Replacing anything that exists needs `confirm: true`;
//! without it the answer lists what would be replaced and nothing changes.

use std::collections::HashMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::fs::file_args::{self, CHUNK_BYTES, FileScope};
use crate::fs::fs_write::{symlink_atomic, write_atomic};
use crate::fs::walk::{MAX_WALK_ENTRIES, too_many_entries};
use warden_core::error::{Error, Result};
use warden_core::files::FileKind;
use warden_core::sandbox::temp_beside;
use warden_core::sandbox::{Last, Sandbox, parent_of, within};
use warden_core::sessions::Event;
use warden_core::tool::{Domain, Effect, Plan, Tool, ToolInfo};
use warden_core::{PlanContext, RunContext};

pub struct FsCopy;

/// Replaced paths named in the answer; the count covers the rest.
const PREVIEW_PATHS: usize = 50;
/// Set-user-ID and set-group-ID bits, not carried over (as `cp` without `-p`): a copy
/// belongs to warden's login, and a set-id bit would lend it that login's rights.
const SET_ID_BITS: u32 = 0o6000;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct FsCopyParams {
    #[serde(flatten)]
    pub scope: FileScope,
    /// Source file or directory.
    pub from: String,
    /// Destination path (not a folder to copy into).
    pub to: String,
    /// Copy a directory tree.
    #[serde(default)]
    pub recursive: bool,
    /// Required to replace existing files; without it, a preview.
    #[serde(default)]
    pub confirm: bool,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct FsCopyOutput {
    pub from: String,
    pub to: String,
    /// Copied (false: a preview, nothing changed).
    pub copied: bool,
    pub files: usize,
    pub dirs: usize,
    pub symlinks: usize,
    /// Bytes of the files copied.
    pub bytes: u64,
    /// Existing destination entries replaced (or that would be).
    pub replaced_count: usize,
    /// The first of them.
    pub replaced: Vec<String>,
    /// FIFOs, sockets and devices in the tree, not copied.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preview: Option<String>,
}

impl Tool for FsCopy {
    type Params = FsCopyParams;
    type Output = FsCopyOutput;

    const INFO: ToolInfo = ToolInfo {
        name: "fs_copy",
        domain: Domain::Fs,
        summary: "Copy from to to",
        description: "Copy a file, or a tree with recursive: true, atomically per file, keeping modes (not set-id bits). Replacing existing files needs confirm: true (else a preview). Errors: PATH_OUTSIDE_ROOT, FILE_NOT_FOUND, INVALID_INPUT, POLICY_DENIED.",
        effect: Effect::Destructive,
        idempotent: true,
        open_world: true,
        example: r#"{"host_id": "web-1", "from": "/srv/app/app.conf", "to": "/srv/app/app.conf.bak"}"#,
    };

    fn plan(&self, params: &FsCopyParams, planning: &PlanContext) -> Result<Plan> {
        params.scope.plan(
            planning,
            Effect::Destructive,
            &[(&params.from, Last::Follow), (&params.to, Last::Follow)],
        )
    }

    fn run(
        &self,
        params: FsCopyParams,
        context: RunContext,
    ) -> impl Future<Output = Result<FsCopyOutput>> + Send + 'static {
        async move {
            let (host, source) = file_args::open(&context, &params.from).await?;
            let destination = context.sandbox(&host, &params.to).await?;
            let steps = plan_copy(&source, &destination, &params, MAX_WALK_ENTRIES).await?;
            let mut output = FsCopyOutput {
                from: steps.from.clone(),
                to: steps.to.clone(),
                copied: false,
                files: 0,
                dirs: 0,
                symlinks: 0,
                bytes: 0,
                replaced_count: 0,
                replaced: Vec::new(),
                skipped: steps.skipped.clone(),
                preview: None,
            };
            for step in &steps.steps {
                match &step.what {
                    What::Dir => output.dirs += 1,
                    What::File { size } => {
                        output.files += 1;
                        output.bytes += size;
                    }
                    What::Link { .. } => output.symlinks += 1,
                }
                if step.replaces {
                    output.replaced_count += 1;
                    if output.replaced.len() < PREVIEW_PATHS {
                        output.replaced.push(step.to.clone());
                    }
                }
            }
            if output.replaced_count > 0 && !params.confirm {
                output.preview = Some(format!(
                    "would replace {} existing entr{} under {}; call again with confirm: true",
                    output.replaced_count,
                    if output.replaced_count == 1 {
                        "y"
                    } else {
                        "ies"
                    },
                    steps.to
                ));
                return Ok(output);
            }
            run_copy(&source, &destination, &steps.steps).await?;
            context.note(Event::Read, &steps.from);
            context.note(Event::Written, &steps.to);
            output.copied = true;
            Ok(output)
        }
    }
}

/// One entry to copy, in an order where directories come before their content.
struct Step {
    from: String,
    to: String,
    mode: u32,
    what: What,
    /// Something of the same kind is at `to` and will be replaced (a directory that
    /// exists is merged into, not replaced).
    replaces: bool,
    /// `to` is an existing directory: nothing to create.
    exists: bool,
}

enum What {
    Dir,
    File { size: u64 },
    Link { text: String },
}

pub(crate) struct CopyPlan {
    from: String,
    to: String,
    steps: Vec<Step>,
    skipped: Vec<String>,
}

/// Resolves both ends and walks the source (never following its symlinks), deciding
/// every step before anything changes: an escape, a denied path, a kind clash
/// anywhere or more than `cap` entries refuses the whole copy.
pub(crate) async fn plan_copy(
    source: &Sandbox,
    destination: &Sandbox,
    params: &FsCopyParams,
    cap: usize,
) -> Result<CopyPlan> {
    let (from, meta) = file_args::existing(source, &params.from, Last::Follow).await?;
    let to = destination.resolve(&params.to, Last::Follow).await?;
    file_args::check_destination(&from.path, &to)?;
    match meta.kind {
        FileKind::Dir if !params.recursive => {
            return Err(Error::invalid_input(format!(
                "{} is a directory; give recursive: true",
                from.path
            ))
            .with_path(&from.path));
        }
        FileKind::Dir if within(&from.path, &to.path) => {
            return Err(file_args::into_itself("copy", &from.path, &to.path));
        }
        FileKind::Special => {
            return Err(Error::invalid_input(format!(
                "{} is not a regular file, directory or symlink",
                from.path
            ))
            .with_path(&from.path));
        }
        _ => {}
    }
    let mut plan = CopyPlan {
        from: from.path.clone(),
        to: to.path.clone(),
        steps: Vec::new(),
        skipped: Vec::new(),
    };
    let top = step(
        source,
        destination,
        &from.path,
        &to.path,
        &meta,
        to.meta.as_ref().map(|m| m.kind),
    )
    .await?;
    let mut pending = vec![top];
    while let Some(current) = pending.pop() {
        let is_dir = matches!(current.what, What::Dir);
        let (from_dir, to_dir, exists) = (current.from.clone(), current.to.clone(), current.exists);
        plan.steps.push(current);
        if !is_dir {
            continue;
        }
        // What the destination directory already holds, by name (one listing).
        let present: HashMap<String, FileKind> = if exists {
            destination
                .files()
                .read_dir(&to_dir)
                .await?
                .into_iter()
                .map(|entry| (entry.name, entry.meta.kind))
                .collect()
        } else {
            HashMap::new()
        };
        let mut children = source.files().read_dir(&from_dir).await?;
        // Reversed onto the stack: the copy then runs in name order.
        children.sort_by(|a, b| b.name.cmp(&a.name));
        for child in children {
            if plan.steps.len() + pending.len() + plan.skipped.len() >= cap {
                return Err(too_many_entries(&plan.from, cap));
            }
            let child_from = format!("{from_dir}/{}", child.name);
            let child_to = format!("{to_dir}/{}", child.name);
            if child.meta.kind == FileKind::Special {
                source.check(&child_from)?;
                plan.skipped.push(child_from);
                continue;
            }
            let existing = present.get(&child.name).copied();
            pending.push(
                step(
                    source,
                    destination,
                    &child_from,
                    &child_to,
                    &child.meta,
                    existing,
                )
                .await?,
            );
        }
    }
    Ok(plan)
}

/// One entry's step: deny_paths on both ends, the kind at the destination, and for a
/// symlink its text, which must resolve inside the root from both places.
async fn step(
    source: &Sandbox,
    destination: &Sandbox,
    from: &str,
    to: &str,
    meta: &warden_core::files::FileMeta,
    existing: Option<FileKind>,
) -> Result<Step> {
    source.check(from)?;
    destination.check(to)?;
    let what = match meta.kind {
        FileKind::Dir => What::Dir,
        FileKind::File => What::File { size: meta.size },
        FileKind::Symlink => {
            let text = source.files().read_link(from).await?;
            source
                .with_cwd(parent_of(from))?
                .resolve(&text, Last::Follow)
                .await?;
            destination
                .with_cwd(parent_of(to))?
                .resolve(&text, Last::Follow)
                .await?;
            What::Link { text }
        }
        FileKind::Special => {
            return Err(
                Error::invalid_input(format!("{from} is not copied: a special file"))
                    .with_path(from),
            );
        }
    };
    if let Some(existing) = existing
        && existing != meta.kind
    {
        return Err(Error::invalid_input(format!(
            "{to} exists and is a {existing:?}, while {from} is a {:?}: remove it first, or name the full destination path",
            meta.kind
        ))
        .with_path(to));
    }
    let same_kind = existing == Some(meta.kind);
    Ok(Step {
        from: from.to_owned(),
        to: to.to_owned(),
        mode: meta.mode & !SET_ID_BITS,
        replaces: same_kind && meta.kind != FileKind::Dir,
        exists: same_kind && meta.kind == FileKind::Dir,
        what,
    })
}

async fn run_copy(source: &Sandbox, destination: &Sandbox, steps: &[Step]) -> Result<()> {
    let files = destination.files();
    for step in steps {
        match &step.what {
            // Made owner-writable so its content can be written, given its mode after.
            What::Dir if !step.exists => files.mkdir(&step.to, 0o700).await?,
            What::Dir => {}
            What::File { .. } => {
                copy_file(source, destination, &step.from, &step.to, step.mode).await?
            }
            What::Link { text } if step.replaces => {
                symlink_atomic(files.as_ref(), text, &step.to).await?
            }
            What::Link { text } => files.symlink(text, &step.to).await?,
        }
    }
    // Deepest first: a directory made read-only still lets its parent be set.
    for step in steps.iter().rev() {
        if matches!(step.what, What::Dir) && !step.exists {
            files.set_mode(&step.to, step.mode).await?;
        }
    }
    Ok(())
}

/// Copies one regular file atomically: small ones in one write, big ones chunk by
/// chunk into an empty temp file that is synced and renamed over `to`.
async fn copy_file(
    source: &Sandbox,
    destination: &Sandbox,
    from: &str,
    to: &str,
    mode: u32,
) -> Result<()> {
    let first = source.files().read(from, 0, CHUNK_BYTES).await?;
    if (first.len() as u64) < CHUNK_BYTES {
        return write_atomic(destination, to, &first, mode).await;
    }
    let files = destination.files();
    let temp = temp_beside(to);
    files.create_new(&temp, &[], 0o600).await?;
    let copied = async {
        let mut offset = 0u64;
        let mut chunk = first;
        while !chunk.is_empty() {
            files.write_at(&temp, offset, &chunk).await?;
            offset += chunk.len() as u64;
            if (chunk.len() as u64) < CHUNK_BYTES {
                break;
            }
            chunk = source.files().read(from, offset, CHUNK_BYTES).await?;
        }
        files.sync(&temp).await?;
        files.set_mode(&temp, mode).await?;
        files.rename(&temp, to).await
    }
    .await;
    if copied.is_err() {
        let _ = files.remove_file(&temp).await;
    }
    copied
}
