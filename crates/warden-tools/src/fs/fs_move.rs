//! `fs_move`: renames a file, directory or symlink (the link itself, never what it
//! points to) within one host's file system. Replacing an existing destination needs
//! `confirm: true`; without it the answer says what would be replaced.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::fs::file_args::{self, FileScope};
use crate::fs::walk::{self, MAX_WALK_ENTRIES};
use warden_core::error::{Error, ErrorCode, Result};
use warden_core::files::FileKind;
use warden_core::sandbox::{Last, Sandbox, parent_of, within};
use warden_core::sessions::Event;
use warden_core::tool::{Domain, Effect, Plan, Tool, ToolInfo};
use warden_core::{PlanContext, RunContext};

pub struct FsMove;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct FsMoveParams {
    #[serde(flatten)]
    pub scope: FileScope,
    /// Path to move.
    pub from: String,
    /// New path (not a folder to move into).
    pub to: String,
    /// Required to replace an existing destination; without it, a preview.
    #[serde(default)]
    pub confirm: bool,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct FsMoveOutput {
    pub from: String,
    pub to: String,
    /// Moved (false: a preview, nothing changed).
    pub moved: bool,
    /// What was at `to` and is replaced (or would be).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replaced: Option<FileKind>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preview: Option<String>,
}

impl Tool for FsMove {
    type Params = FsMoveParams;
    type Output = FsMoveOutput;

    const INFO: ToolInfo = ToolInfo {
        name: "fs_move",
        domain: Domain::Fs,
        summary: "Move from to to",
        description: "Rename a file, directory or symlink on one file system. Replacing an existing destination needs confirm: true (else a preview). Errors: PATH_OUTSIDE_ROOT, POLICY_DENIED, FILE_NOT_FOUND, INVALID_INPUT, SFTP_FAILED (e.g. across file systems).",
        effect: Effect::Destructive,
        idempotent: false,
        open_world: true,
        example: r#"{"host_id": "web-1", "from": "/srv/app/notes.txt", "to": "/srv/app/data/notes.txt"}"#,
    };

    fn plan(&self, params: &FsMoveParams, planning: &PlanContext) -> Result<Plan> {
        // A session root named relatively is known before anything is resolved; an
        // absolute root is caught in `run`, once resolved.
        let names_the_root = !params.from.starts_with('/')
            && params
                .from
                .split('/')
                .all(|name| name.is_empty() || name == ".");
        if names_the_root {
            return Err(Error::invalid_input("the root itself cannot be moved"));
        }
        params.scope.plan(
            planning,
            Effect::Destructive,
            &[(&params.from, Last::NoFollow), (&params.to, Last::NoFollow)],
        )
    }

    fn run(
        &self,
        params: FsMoveParams,
        context: RunContext,
    ) -> impl Future<Output = Result<FsMoveOutput>> + Send + 'static {
        async move {
            let (host, source) = file_args::open(&context, &params.from).await?;
            let destination = context.sandbox(&host, &params.to).await?;
            // Neither end follows a final symlink: the link itself moves or is replaced.
            let (from, meta) = file_args::existing(&source, &params.from, Last::NoFollow).await?;
            if from.path == source.root() {
                return Err(
                    Error::invalid_input("the root itself cannot be moved").with_path(&from.path)
                );
            }
            let to = destination.resolve(&params.to, Last::NoFollow).await?;
            if to.path == destination.root() {
                return Err(
                    Error::invalid_input("the root itself cannot be replaced").with_path(&to.path)
                );
            }
            file_args::check_destination(&from.path, &to)?;
            if meta.kind == FileKind::Dir && within(&from.path, &to.path) {
                return Err(file_args::into_itself("move", &from.path, &to.path));
            }
            if meta.kind == FileKind::Symlink {
                // A relative link means something else elsewhere: it must still
                // resolve inside the root from its new directory.
                let text = source.files().read_link(&from.path).await?;
                destination
                    .with_cwd(parent_of(&to.path))?
                    .resolve(&text, Last::Follow)
                    .await?;
            }
            if meta.kind == FileKind::Dir {
                check_tree(
                    &source,
                    &destination,
                    &from.path,
                    &to.path,
                    MAX_WALK_ENTRIES,
                )
                .await?;
            }
            let replaced = to.meta.as_ref().map(|existing| existing.kind);
            if let Some(existing) = replaced {
                let clash = (existing == FileKind::Dir) != (meta.kind == FileKind::Dir);
                if clash {
                    return Err(Error::invalid_input(format!(
                        "{} exists and is a {existing:?}, while {} is a {:?}: remove it first",
                        to.path, from.path, meta.kind
                    ))
                    .with_path(&to.path));
                }
            }
            let mut output = FsMoveOutput {
                from: from.path.clone(),
                to: to.path.clone(),
                moved: false,
                replaced,
                preview: None,
            };
            if let Some(existing) = replaced
                && !params.confirm
            {
                output.preview = Some(format!(
                    "would replace the {existing:?} {} with {}; call again with confirm: true",
                    to.path, from.path
                ));
                return Ok(output);
            }
            source
                .files()
                .rename(&from.path, &to.path)
                .await
                .map_err(|error| refused(error, &from.path, &to.path))?;
            context.note(Event::Written, &from.path);
            context.note(Event::Written, &to.path);
            output.moved = true;
            Ok(output)
        }
    }
}

/// A directory moves with everything in it, so every entry must be allowed by
/// `deny_paths` both where it is and where it lands, and every relative symlink in it
/// must still resolve inside the root from its new directory. Nothing is moved
/// otherwise; more than `cap` entries is refused too.
pub(crate) async fn check_tree(
    source: &Sandbox,
    destination: &Sandbox,
    from: &str,
    to: &str,
    cap: usize,
) -> Result<()> {
    for entry in walk::whole_tree(source, from, cap).await? {
        let landing = format!("{to}/{}", entry.relative);
        destination.check(&landing)?;
        if entry.meta.kind != FileKind::Symlink {
            continue;
        }
        let text = source.files().read_link(&entry.path).await?;
        if !text.starts_with('/') {
            // Its new directory does not exist until the rename: taken as the
            // directory it will be.
            destination.resolve_link(parent_of(&landing), &text).await?;
        }
    }
    Ok(())
}

/// The host's refusal, said as such: a rename cannot cross file systems, nor replace
/// a non-empty directory.
fn refused(error: Error, from: &str, to: &str) -> Error {
    if matches!(
        error.code,
        ErrorCode::FileNotFound | ErrorCode::PermissionDenied | ErrorCode::OutcomeUnknown
    ) {
        return error;
    }
    let message = format!(
        "the host refused to rename {from} to {to}: {}",
        error.message
    );
    Error {
        message,
        ..error
    }
    .with_hint(
        "A rename cannot cross file systems (use fs_copy, then fs_remove) nor replace a non-empty directory.",
    )
}
