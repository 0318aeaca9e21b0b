//! `fs_chmod`: permission bits of a path or, with `recursive: true`, a tree. Modes are
//! octal ("0644", "755") or symbolic as chmod(1) takes them ("u+x", "go-w", "a=r",
//! "u=rwx,g=rx,o=", "+x"; no umask: "+x" is "a+x"). Symlinks are never followed: a
//! link as the path is refused, a link met in a walk is skipped.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::fs::file_args::{self, FileScope, parse_mode};
use warden_core::error::{Error, Result};
use warden_core::files::FileKind;
use warden_core::sandbox::Last;
use warden_core::sessions::Event;
use warden_core::tool::{Domain, Effect, Plan, Tool, ToolInfo};
use warden_core::{PlanContext, RunContext};

pub struct FsChmod;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct FsChmodParams {
    #[serde(flatten)]
    pub scope: FileScope,
    /// Path to change.
    pub path: String,
    /// Octal ("0644") or symbolic ("u+x", "go-w", "a=r").
    pub mode: String,
    /// Also everything below a directory.
    #[serde(default)]
    pub recursive: bool,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct FsChmodOutput {
    pub path: String,
    /// The path's mode now, in octal.
    pub mode: String,
    /// Entries whose mode changed.
    pub changed: usize,
    /// Entries looked at (symlinks excluded).
    pub entries: usize,
    /// Symlinks met in the walk and left alone.
    pub skipped_symlinks: usize,
}

impl Tool for FsChmod {
    type Params = FsChmodParams;
    type Output = FsChmodOutput;

    const INFO: ToolInfo = ToolInfo {
        name: "fs_chmod",
        domain: Domain::Fs,
        summary: "Chmod path",
        description: "Set permission bits, octal (\"0644\") or symbolic (\"u+x\", \"go-w\", \"a=r\"); recursive: true for a tree. Never follows symlinks. Errors: INVALID_INPUT, FILE_NOT_FOUND, PATH_OUTSIDE_ROOT, PERMISSION_DENIED.",
        effect: Effect::Mutating,
        idempotent: true,
        open_world: true,
        example: r#"{"host_id": "web-1", "path": "/srv/app/app.conf", "mode": "0640"}"#,
    };

    fn plan(&self, params: &FsChmodParams, planning: &PlanContext) -> Result<Plan> {
        ModeChange::parse(&params.mode)?;
        params.scope.plan(
            planning,
            Effect::Mutating,
            &[(&params.path, Last::NoFollow)],
        )
    }

    fn run(
        &self,
        params: FsChmodParams,
        context: RunContext,
    ) -> impl Future<Output = Result<FsChmodOutput>> + Send + 'static {
        async move {
            let change = ModeChange::parse(&params.mode)?;
            let (_, sandbox) = file_args::open(&context, &params.path).await?;
            let targets =
                file_args::change_targets(&sandbox, &params.path, params.recursive, "fs_chmod")
                    .await?;
            let mut output = FsChmodOutput {
                path: targets.resolved.path.clone(),
                mode: format!("{:04o}", targets.meta.mode),
                changed: 0,
                entries: targets.entries.len(),
                skipped_symlinks: targets.skipped_symlinks,
            };
            // Deepest first: a directory losing its search bit is changed after
            // what is below it.
            for (path, entry) in targets.entries.iter().rev() {
                let mode = change.apply(entry.mode, entry.kind == FileKind::Dir);
                if mode != entry.mode {
                    sandbox.files().set_mode(path, mode).await?;
                    output.changed += 1;
                }
                if *path == targets.resolved.path {
                    output.mode = format!("{mode:04o}");
                }
            }
            context.note(Event::Written, &targets.resolved.path);
            Ok(output)
        }
    }
}

/// A parsed `mode` argument.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ModeChange {
    Octal(u32),
    Symbolic(Vec<Clause>),
}

/// One comma-separated part of a symbolic mode: who, then operations in order.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Clause {
    /// Classes changed, as shifts: 6 (user), 3 (group), 0 (others).
    who: Vec<u32>,
    actions: Vec<(Op, Perms)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Add,
    Remove,
    Set,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Perms {
    /// `rwx` as 0o7, `X`, `s`, `t`.
    Bits {
        rwx: u32,
        search: bool,
        set_id: bool,
        sticky: bool,
    },
    /// Another class's current `rwx` ("g=u"), as its shift.
    Copy(u32),
}

const USER: u32 = 6;
const GROUP: u32 = 3;
const OTHERS: u32 = 0;

impl ModeChange {
    fn parse(text: &str) -> Result<ModeChange> {
        if !text.is_empty() && text.chars().all(|c| c.is_ascii_digit()) {
            return parse_mode(text).map(ModeChange::Octal);
        }
        let bad = |why: &str| {
            Error::invalid_input(format!(
                "mode {text:?} is {why}; give octal (\"0644\") or symbolic like \"u+x\", \"go-w\", \"u=rwx,g=rx,o=\""
            ))
        };
        if text.is_empty() {
            return Err(bad("empty"));
        }
        let mut clauses = Vec::new();
        for part in text.split(',') {
            let mut chars = part.chars().peekable();
            let mut who = Vec::new();
            while let Some(&c) = chars.peek() {
                let shifts: &[u32] = match c {
                    'u' => &[USER],
                    'g' => &[GROUP],
                    'o' => &[OTHERS],
                    'a' => &[USER, GROUP, OTHERS],
                    _ => break,
                };
                for shift in shifts {
                    if !who.contains(shift) {
                        who.push(*shift);
                    }
                }
                chars.next();
            }
            if who.is_empty() {
                who = vec![USER, GROUP, OTHERS];
            }
            let mut actions = Vec::new();
            while let Some(c) = chars.next() {
                let op = match c {
                    '+' => Op::Add,
                    '-' => Op::Remove,
                    '=' => Op::Set,
                    other => return Err(bad(&format!("not understood at {other:?}"))),
                };
                let perms = match chars.peek() {
                    Some(&source @ ('u' | 'g' | 'o')) => {
                        chars.next();
                        Perms::Copy(match source {
                            'u' => USER,
                            'g' => GROUP,
                            _ => OTHERS,
                        })
                    }
                    _ => {
                        let (mut rwx, mut search, mut set_id, mut sticky) =
                            (0, false, false, false);
                        while let Some(&c) = chars.peek() {
                            match c {
                                'r' => rwx |= 4,
                                'w' => rwx |= 2,
                                'x' => rwx |= 1,
                                'X' => search = true,
                                's' => set_id = true,
                                't' => sticky = true,
                                _ => break,
                            }
                            chars.next();
                        }
                        Perms::Bits {
                            rwx,
                            search,
                            set_id,
                            sticky,
                        }
                    }
                };
                actions.push((op, perms));
            }
            if actions.is_empty() {
                return Err(bad(&format!("missing an operator (+, - or =) in {part:?}")));
            }
            clauses.push(Clause { who, actions });
        }
        Ok(ModeChange::Symbolic(clauses))
    }

    /// The new permission bits of an entry whose bits are `mode`.
    fn apply(&self, mode: u32, is_dir: bool) -> u32 {
        let clauses = match self {
            ModeChange::Octal(mode) => return *mode,
            ModeChange::Symbolic(clauses) => clauses,
        };
        let mut mode = mode & 0o7777;
        for clause in clauses {
            for (op, perms) in &clause.actions {
                let bits = clause_bits(&clause.who, *perms, mode, is_dir);
                mode = match op {
                    Op::Add => mode | bits,
                    Op::Remove => mode & !bits,
                    Op::Set => (mode & !class_mask(&clause.who)) | bits,
                };
            }
        }
        mode
    }
}

/// The bits `perms` stands for in the classes `who`, given the current `mode`.
fn clause_bits(who: &[u32], perms: Perms, mode: u32, is_dir: bool) -> u32 {
    let (rwx, set_id, sticky) = match perms {
        Perms::Copy(shift) => ((mode >> shift) & 0o7, false, false),
        Perms::Bits {
            rwx,
            search,
            set_id,
            sticky,
        } => {
            // X: execute only for directories and files someone may execute already.
            let search = search && (is_dir || mode & 0o111 != 0);
            (rwx | u32::from(search), set_id, sticky)
        }
    };
    who.iter().fold(0, |bits, shift| {
        let mut bits = bits | (rwx << shift);
        if set_id && *shift == USER {
            bits |= 0o4000;
        }
        if set_id && *shift == GROUP {
            bits |= 0o2000;
        }
        if sticky && *shift == OTHERS {
            bits |= 0o1000;
        }
        bits
    })
}

/// Everything `=` resets for `who`: its rwx bits and its special bit.
fn class_mask(who: &[u32]) -> u32 {
    who.iter().fold(0, |mask, shift| {
        mask | (0o7 << shift)
            | match *shift {
                USER => 0o4000,
                GROUP => 0o2000,
                _ => 0o1000,
            }
    })
}

#[cfg(test)]
mod tests {
    use super::ModeChange;

    fn apply(mode: &str, from: u32, is_dir: bool) -> u32 {
        ModeChange::parse(mode).unwrap().apply(from, is_dir)
    }

    #[test]
    fn octal_modes_replace_the_bits() {
        assert_eq!(apply("0644", 0o777, false), 0o644);
        assert_eq!(apply("755", 0o600, true), 0o755);
        assert_eq!(apply("4755", 0o600, false), 0o4755);
        assert!(ModeChange::parse("888").is_err());
        assert!(ModeChange::parse("17777").is_err());
    }

    #[test]
    fn symbolic_modes_follow_chmod() {
        assert_eq!(apply("u+x", 0o644, false), 0o744);
        assert_eq!(apply("go-w", 0o666, false), 0o644);
        assert_eq!(apply("a=r", 0o755, false), 0o444);
        assert_eq!(apply("u=rwx,g=rx,o=", 0o666, false), 0o750);
        assert_eq!(
            apply("+x", 0o644, false),
            0o755,
            "no who means all (no umask)"
        );
        assert_eq!(apply("-x", 0o755, false), 0o644);
        assert_eq!(apply("ug+rw", 0o400, false), 0o660);
        assert_eq!(apply("o-rwx", 0o777, true), 0o770);
        assert_eq!(apply("u+r-w", 0o200, false), 0o400, "operations chain");
        assert_eq!(apply("g=u", 0o640, false), 0o660, "copy another class");
        assert_eq!(apply("o=g", 0o750, false), 0o755);
        assert_eq!(apply("u+s,g+s", 0o755, false), 0o6755);
        assert_eq!(apply("+t", 0o777, true), 0o1777);
        assert_eq!(
            apply("u=rw", 0o4755, false),
            0o0655,
            "= clears the set-id bit"
        );
        assert_eq!(apply("a=", 0o777, false), 0);
    }

    #[test]
    fn capital_x_is_for_directories_and_executables() {
        assert_eq!(apply("a+X", 0o644, true), 0o755);
        assert_eq!(apply("a+X", 0o644, false), 0o644);
        assert_eq!(apply("a+X", 0o744, false), 0o755);
    }

    #[test]
    fn malformed_modes_are_refused() {
        for bad in ["", "u", "z+x", "u+x,", "u+q", "rwx", "u+x;g-w", "0o644"] {
            assert!(ModeChange::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
