//! Command rules, as operators write them: a regex matched in full against a
//! normalized simple command, or a structured `{program, flags, args}` rule that
//! cannot be talked around by reordering flags. [`lint`] warns about regex rules that
//! do not mean what they look like.

use globset::{Glob, GlobMatcher};
use regex::Regex;
use serde::{Deserialize, Serialize};

use super::analysis::SimpleCommand;
use super::wrappers::basename;
use crate::error::{Error, Result};

/// A rule as written in `warden.yaml`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum RuleSpec {
    /// A regex, matched in full (implicitly anchored) against each simple command.
    Pattern(String),
    Structured(StructuredSpec),
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StructuredSpec {
    /// A glob over the program's basename (or its path, when the glob has a `/`).
    pub program: String,
    /// Flags that must all be present in any spelling: `r` matches `-r`, `-rf`,
    /// `-fr`; `recursive` matches `--recursive`; `r|R|recursive` any of them.
    #[serde(default)]
    pub flags: Vec<String>,
    /// Globs matched in order against the arguments; `**` spans any number of them.
    /// Absent: any arguments.
    #[serde(default)]
    pub args: Option<Vec<String>>,
}

impl std::fmt::Display for RuleSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RuleSpec::Pattern(pattern) => f.write_str(pattern),
            RuleSpec::Structured(spec) => {
                write!(f, "{{program: {}", spec.program)?;
                if !spec.flags.is_empty() {
                    write!(f, ", flags: [{}]", spec.flags.join(", "))?;
                }
                if let Some(args) = &spec.args {
                    write!(f, ", args: [{}]", args.join(", "))?;
                }
                f.write_str("}")
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct Rule {
    /// The rule as written, for answers and the audit record.
    pub pattern: String,
    /// `policy.deny_commands[0]`, `policy.roles[ops].allow_commands[2]`.
    pub source: String,
    matcher: Matcher,
    /// The rule names the program by path.
    by_path: bool,
}

/// Where a bare program name is found on the hosts warden targets.
const STANDARD_PATH: &[&str] = &[
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
];

#[derive(Debug, Clone)]
enum Matcher {
    Regex(Regex),
    Structured {
        program: GlobMatcher,
        by_path: bool,
        flags: Vec<Vec<String>>,
        args: Option<Vec<ArgGlob>>,
    },
}

#[derive(Debug, Clone)]
enum ArgGlob {
    Any,
    One { glob: GlobMatcher, star: bool },
}

/// Whether a rule is asked to deny (an unknown argument may be anything, so it
/// matches) or to allow (an unknown argument matches only `*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Deny,
    Allow,
}

impl Rule {
    pub fn compile(spec: &RuleSpec, source: String) -> Result<Rule> {
        let bad = |what: &str, error: &dyn std::fmt::Display| {
            Error::invalid_input(format!("{source}: bad {what} {spec}: {error}"))
        };
        let matcher = match spec {
            RuleSpec::Pattern(pattern) => Matcher::Regex(
                Regex::new(&format!("(?s)^(?:{pattern})$"))
                    .map_err(|error| bad("regex", &error))?,
            ),
            RuleSpec::Structured(structured) => {
                let glob = |text: &str| {
                    Glob::new(text)
                        .map(|glob| glob.compile_matcher())
                        .map_err(|error| bad("glob", &error))
                };
                let args = match &structured.args {
                    Some(args) => Some(
                        args.iter()
                            .map(|arg| match arg.as_str() {
                                "**" => Ok(ArgGlob::Any),
                                _ => Ok(ArgGlob::One {
                                    glob: glob(arg)?,
                                    star: arg == "*",
                                }),
                            })
                            .collect::<Result<Vec<_>>>()?,
                    ),
                    None => None,
                };
                Matcher::Structured {
                    program: glob(&structured.program)?,
                    by_path: structured.program.contains('/'),
                    flags: structured
                        .flags
                        .iter()
                        .map(|group| group.split('|').map(str::to_owned).collect())
                        .collect(),
                    args,
                }
            }
        };
        let by_path = match spec {
            RuleSpec::Pattern(pattern) => pattern.starts_with('/'),
            RuleSpec::Structured(structured) => structured.program.contains('/'),
        };
        Ok(Rule {
            pattern: spec.to_string(),
            source,
            matcher,
            by_path,
        })
    }

    /// Whether the rule matches `command`. A deny rule also matches the whole
    /// privileged invocation (`sudo -u x cmd`); an allow rule must match that when
    /// there is one.
    pub fn matches(&self, command: &SimpleCommand, purpose: Purpose) -> bool {
        let mut own = self.matches_argv(&command.argv, &command.expands, purpose);
        if purpose == Purpose::Deny && command.may_wrap && !own {
            // Bounded like the analysis that marked it (an unknown program with very
            // many arguments is opaque anyway).
            own = (1..command.argv.len().min(257))
                .filter(|&at| !command.argv[at].starts_with('-'))
                .any(|at| {
                    self.matches_argv(
                        &command.argv[at..],
                        command.expands.get(at..).unwrap_or_default(),
                        purpose,
                    )
                });
        }
        match (&command.privileged, purpose) {
            (Some(privileged), Purpose::Allow) => self.matches_text(privileged, purpose),
            (Some(privileged), Purpose::Deny) => own || self.matches_text(privileged, purpose),
            (None, _) => own,
        }
    }

    fn matches_text(&self, text: &str, purpose: Purpose) -> bool {
        let argv: Vec<String> = text.split(' ').map(str::to_owned).collect();
        let expands = vec![false; argv.len()];
        self.matches_argv(&argv, &expands, purpose)
    }

    fn matches_argv(&self, argv: &[String], expands: &[bool], purpose: Purpose) -> bool {
        let Some(program) = argv.first() else {
            return false;
        };
        // A rule written with a path (`/usr/bin/touch .*`) also holds for the bare
        // name: `touch` is tried as each standard PATH directory's program.
        if self.by_path && !program.starts_with('/') {
            let name = basename(program);
            return STANDARD_PATH.iter().any(|directory| {
                let mut spelt = argv.to_vec();
                spelt[0] = format!("{directory}/{name}");
                self.matches_spelling(&spelt, expands, purpose)
            }) || self.matches_spelling(argv, expands, purpose);
        }
        self.matches_spelling(argv, expands, purpose)
    }

    fn matches_spelling(&self, argv: &[String], expands: &[bool], purpose: Purpose) -> bool {
        let Some(program) = argv.first() else {
            return false;
        };
        match &self.matcher {
            Matcher::Regex(regex) => {
                let text = argv.join(" ");
                if regex.is_match(&text) {
                    return true;
                }
                let name = basename(program);
                // `/usr/bin/rm` is `rm`; an allow rule for `cat` does not cover `./cat`,
                // a program in the working directory.
                let standard = !program.contains('/')
                    || STANDARD_PATH.iter().any(|directory| {
                        program
                            .strip_prefix(directory)
                            .is_some_and(|rest| rest.starts_with('/'))
                    });
                name != program && (purpose == Purpose::Deny || standard) && {
                    let mut short = vec![name.to_owned()];
                    short.extend(argv[1..].iter().cloned());
                    regex.is_match(&short.join(" "))
                }
            }
            Matcher::Structured {
                program: glob,
                by_path,
                flags,
                args,
            } => {
                let named = if *by_path {
                    glob.is_match(program)
                } else {
                    glob.is_match(basename(program))
                };
                let rest = &argv[1..];
                let rest_expands = expands.get(1..).unwrap_or_default();
                named
                    && flags
                        .iter()
                        .all(|group| has_flag(rest, rest_expands, group, purpose))
                    && args
                        .as_ref()
                        .is_none_or(|globs| args_match(globs, rest, rest_expands, purpose))
            }
        }
    }
}

/// One of `names` present as `-x` inside a short cluster or as `--name`.
fn has_flag(args: &[String], expands: &[bool], names: &[String], purpose: Purpose) -> bool {
    args.iter().enumerate().any(|(index, arg)| {
        if purpose == Purpose::Deny && expands.get(index).copied().unwrap_or(false) {
            return true;
        }
        names.iter().any(|name| {
            if name.chars().count() == 1 {
                // Letters up to a glued value (`-i.bak`, `-cr/etc/x`).
                arg.starts_with('-')
                    && !arg.starts_with("--")
                    && arg[1..]
                        .chars()
                        .take_while(char::is_ascii_alphanumeric)
                        .any(|c| name.starts_with(c))
            } else {
                // `--recursive`, `--recursive=…`, or any unambiguous prefix (`--recu`).
                arg.strip_prefix("--").is_some_and(|long| {
                    let given = long.split('=').next().unwrap_or(long);
                    given.len() >= 3 && name.starts_with(given)
                })
            }
        })
    })
}

fn args_match(globs: &[ArgGlob], args: &[String], expands: &[bool], purpose: Purpose) -> bool {
    match globs.split_first() {
        None => args.is_empty(),
        Some((ArgGlob::Any, rest)) => (0..=args.len()).any(|skip| {
            args_match(
                rest,
                &args[skip..],
                &expands[skip.min(expands.len())..],
                purpose,
            )
        }),
        Some((ArgGlob::One { glob, star }, rest)) => {
            let Some(arg) = args.first() else {
                return false;
            };
            // `~` and `~user` are home directories: for a deny rule, any path.
            let unknown = expands.first().copied().unwrap_or(false)
                || (purpose == Purpose::Deny && arg.starts_with('~'));
            let here = if unknown {
                purpose == Purpose::Deny || *star
            } else {
                glob.is_match(arg)
            };
            here && args_match(
                rest,
                &args[1..],
                expands.get(1..).unwrap_or_default(),
                purpose,
            )
        }
    }
}

pub fn compile_all(specs: &[RuleSpec], source: &str) -> Result<Vec<Rule>> {
    specs
        .iter()
        .enumerate()
        .map(|(index, spec)| Rule::compile(spec, format!("{source}[{index}]")))
        .collect()
}

/// A rule that does not mean what it looks like.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Lint {
    pub source: String,
    pub rule: String,
    pub warning: String,
}

/// Programs whose options can run other commands: an allow rule `find .*` admits
/// `find -exec` (which warden then checks, but the operator likely did not mean it).
const EXEC_CAPABLE: &[&str] = &[
    "find",
    "sed",
    "awk",
    "gawk",
    "tar",
    "git",
    "rsync",
    "ssh",
    "xargs",
    "env",
    "sudo",
    "doas",
    "sh",
    "bash",
    "zsh",
    "dash",
    "python",
    "python3",
    "perl",
    "ruby",
    "node",
    "docker",
    "kubectl",
    "systemd-run",
    "nice",
    "timeout",
    "nohup",
    "watch",
    "flock",
    "su",
    "vim",
    "vi",
    "less",
    "man",
    "make",
    "npm",
];

/// Warnings for rules in `source` (`deny` tells which list they are in).
pub fn lint(specs: &[RuleSpec], source: &str, deny: bool) -> Vec<Lint> {
    let mut lints = Vec::new();
    let flag_cluster = Regex::new(r"(^|\s|\\s[+*]?|\s\+|\])-[A-Za-z]{2,}").ok();
    for (index, spec) in specs.iter().enumerate() {
        let RuleSpec::Pattern(pattern) = spec else {
            continue;
        };
        let mut warn = |warning: String| {
            lints.push(Lint {
                source: format!("{source}[{index}]"),
                rule: pattern.clone(),
                warning,
            });
        };
        if pattern.starts_with('^') || (pattern.ends_with('$') && !pattern.ends_with("\\$")) {
            warn("rules match the whole simple command already; a leading ^ or trailing $ is redundant, and inside an alternation it anchors only one branch".into());
        }
        if flag_cluster
            .as_ref()
            .is_some_and(|regex| regex.is_match(pattern))
        {
            warn(format!(
                "flags can be written in other orders or apart ({}), which this regex does not match; use a structured rule with flags: [..]",
                reorderings(pattern)
            ));
        }
        let program = pattern
            .split(|c: char| c.is_whitespace() || c == '\\' || c == '(' || c == '.')
            .next()
            .unwrap_or_default();
        if !deny
            && EXEC_CAPABLE.contains(&program)
            && (pattern.ends_with(".*") || pattern.ends_with(".*)?") || pattern.ends_with(".+"))
        {
            warn(format!(
                "`{program}` takes options that run other commands; `{pattern}` allows all of them (warden treats them as opaque and denies them, but name the subcommands or arguments you mean)"
            ));
        }
    }
    lints
}

fn reorderings(pattern: &str) -> String {
    match pattern
        .split_whitespace()
        .find(|word| word.starts_with('-') && word.len() > 2 && !word.starts_with("--"))
    {
        Some(cluster) => {
            let letters: Vec<char> = cluster[1..]
                .chars()
                .filter(char::is_ascii_alphabetic)
                .collect();
            let reversed: String = letters.iter().rev().collect();
            let apart: Vec<String> = letters.iter().map(|c| format!("-{c}")).collect();
            format!("-{reversed}, {}", apart.join(" "))
        }
        None => "e.g. -fr for -rf, or -r -f".into(),
    }
}
