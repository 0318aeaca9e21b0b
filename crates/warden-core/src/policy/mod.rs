//! Policy: pure decisions over data. Given a host, a caller and a command (as the
//! grammar reads it, see [`analysis`]), is it allowed, and which rule decided?
//!
//! Rules match each normalized simple command (regex in full, or structured). Deny
//! wins over allow; a non-empty allow list (global plus the roles that apply) makes
//! every command it does not cover denied. What cannot be seen (opaque) is denied in
//! enforce mode whenever any rule applies to the host, unless `allow_opaque` says
//! otherwise. Environment names that change what programs run are refused unless
//! `allow_env` names them. Paths a command names are checked against `deny_paths`
//! and warden's own files. `mode: warn` reports what enforce would deny but lets it
//! run; `mode: off` decides nothing.

pub mod analysis;
pub mod classes;
#[cfg(test)]
mod corpus_tests;
pub mod patterns;
pub mod programs;
#[cfg(test)]
mod review3_tests;
#[cfg(test)]
mod review4_tests;
#[cfg(test)]
mod review5_tests;
#[cfg(test)]
mod review6_tests;
#[cfg(test)]
mod review7_tests;
#[cfg(test)]
mod review_support;
pub mod rules;
pub mod shell;
pub mod wrappers;

use regex::Regex;
use serde::Serialize;
use sha2::{Digest, Sha256};

use std::sync::Arc;

pub use analysis::{Analysis, Input, SimpleCommand};
pub use classes::Class;
use rules::{Purpose, Rule};

use crate::config::{PolicyConfig, PolicyMode};
use crate::error::{Error, Result};
use crate::inventory::{Host, Inventory};

/// Environment names that change which program runs or what a shell does before it
/// runs anything. `policy.allow_env` admits a name.
const DANGEROUS_ENV: &[&str] = &[
    "PATH",
    "BASH_ENV",
    "ENV",
    "IFS",
    "PROMPT_COMMAND",
    "SHELLOPTS",
    "BASHOPTS",
    "PS4",
    "CDPATH",
    "GLOBIGNORE",
    "GIT_SSH",
    "GIT_SSH_COMMAND",
    "GIT_EXEC_PATH",
    "GIT_EXTERNAL_DIFF",
    "GIT_PAGER",
    "GIT_EDITOR",
    "GIT_SEQUENCE_EDITOR",
    "GIT_ASKPASS",
    "PAGER",
    "EDITOR",
    "VISUAL",
    "LESSOPEN",
    "PYTHONPATH",
    "PYTHONSTARTUP",
    "PYTHONHOME",
    "PERL5OPT",
    "PERL5LIB",
    "PERLLIB",
    "RUBYOPT",
    "RUBYLIB",
    "NODE_OPTIONS",
    "NODE_PATH",
    "TAR_OPTIONS",
    "GIT_ALLOW_PROTOCOL",
    "GIT_PROXY_COMMAND",
    "RSYNC_RSH",
    "LESSCLOSE",
    "MANPAGER",
    "SYSTEMD_PAGER",
    "SUDO_ASKPASS",
    "SSH_ASKPASS",
    "BROWSER",
    "PERL5DB",
    "ZDOTDIR",
    // `~`, a bare `cd` and `~+`/`~-` follow these: set, they move paths unseen.
    "HOME",
    "PWD",
    "OLDPWD",
];

/// Prefixes of dangerous names (`LD_PRELOAD`, `LD_LIBRARY_PATH`, `BASH_FUNC_x%%`,
/// `GIT_CONFIG_*`).
const DANGEROUS_ENV_PREFIXES: &[&str] = &["LD_", "DYLD_", "BASH_FUNC_", "GIT_CONFIG"];

/// The rules that apply somewhere. Shared, not copied: `rules_for` gathers one per
/// call and host, and a path rule holds a DFA.
#[derive(Debug, Clone, Default)]
struct RuleSet {
    deny: Vec<Arc<Rule>>,
    allow: Vec<Arc<Rule>>,
    deny_paths: Vec<Arc<PathRule>>,
    allowed_roots: Vec<String>,
}

impl RuleSet {
    fn extend(&mut self, other: &RuleSet) {
        self.deny.extend(other.deny.iter().cloned());
        self.allow.extend(other.allow.iter().cloned());
        self.deny_paths.extend(other.deny_paths.iter().cloned());
        self.allowed_roots
            .extend(other.allowed_roots.iter().cloned());
    }

    /// Whether any command or path rule is set: then what cannot be seen is denied.
    fn any_rule(&self) -> bool {
        !self.deny.is_empty() || !self.allow.is_empty() || !self.deny_paths.is_empty()
    }
}

#[derive(Debug, Clone)]
struct PathRule {
    pattern: String,
    regex: Regex,
    source: String,
    /// The paths it covers as a DFA, for globs and expansions (`None`: too large to
    /// build; such a word is then taken to meet it).
    language: Option<patterns::Language>,
}

/// A role, and whom it applies to.
#[derive(Debug, Clone)]
struct RoleRules {
    /// Host ids the role covers (by `hosts[].role` or `roles[].hosts`); `None` when
    /// the role names no hosts and applies on every host to its identities.
    hosts: Option<Vec<String>>,
    /// Caller identities it is for; empty: everyone.
    identities: Vec<String>,
    rules: RuleSet,
}

#[derive(Debug, Clone, Default)]
pub struct Policy {
    mode: PolicyMode,
    allow_opaque: bool,
    allow_env: Vec<String>,
    global: RuleSet,
    roles: Vec<RoleRules>,
    /// The operator's classes, consulted before the built-in table.
    classes: Vec<(Class, Rule)>,
    /// warden's own config file, state and audit directories: denied to every file
    /// tool and redirection on `local`, whatever else the policy says.
    protected: Vec<String>,
    /// The same as languages, for globs and expansions.
    protected_languages: Vec<Option<patterns::Language>>,
    /// On `local`, where `~` and relative paths of a command lead (warden's home and
    /// working directory), so its own files are found under any spelling.
    local_home: Option<String>,
    local_cwd: Option<String>,
    /// A digest of the policy as configured: plan tokens are bound to it.
    version: String,
}

/// What policy said about one command on one host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Allowed,
    /// Would be denied in enforce mode; `mode: warn` lets it run.
    Warned,
    Denied,
}

#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    pub allowed: bool,
    pub decision: Verdict,
    pub mode: PolicyMode,
    /// The rule that decided, if one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    pub reason: String,
    /// What to do instead, when it was denied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    pub simple_commands: Vec<String>,
}

/// How a command reaches policy: agent-supplied text, or a fixed probe warden wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandOrigin {
    /// From the caller: every rule applies.
    Caller,
    /// A built-in read-only probe (facts): deny rules apply to its name, allow lists
    /// and the opaque check do not, so a policy written for agents' commands does not
    /// blind warden.
    BuiltinProbe,
}

impl Policy {
    pub fn new(config: &PolicyConfig, inventory: &Inventory) -> Result<Policy> {
        let global = RuleSet {
            deny: shared(rules::compile_all(
                &config.deny_commands,
                "policy.deny_commands",
            )?),
            allow: shared(rules::compile_all(
                &config.allow_commands,
                "policy.allow_commands",
            )?),
            deny_paths: shared(compile_paths(&config.deny_paths, "policy.deny_paths")?),
            allowed_roots: config.allowed_roots.clone(),
        };
        let mut roles = Vec::new();
        for role in &config.roles {
            let source = |list: &str| format!("policy.roles[{}].{list}", role.name);
            let rules = RuleSet {
                deny: shared(rules::compile_all(
                    &role.deny_commands,
                    &source("deny_commands"),
                )?),
                allow: shared(rules::compile_all(
                    &role.allow_commands,
                    &source("allow_commands"),
                )?),
                deny_paths: shared(compile_paths(&role.deny_paths, &source("deny_paths"))?),
                allowed_roots: role.allowed_roots.clone(),
            };
            let mut members: Vec<String> = inventory
                .hosts()
                .iter()
                .filter(|host| host.role.as_deref() == Some(role.name.as_str()))
                .map(|host| host.id.to_string())
                .collect();
            for selector in &role.hosts {
                // A selector matching nothing is not an error here: roles may be written
                // ahead of the hosts they will cover.
                if let Ok(hosts) = inventory.resolve(selector) {
                    members.extend(hosts.iter().map(|host| host.id.to_string()));
                }
            }
            let by_identity_only =
                members.is_empty() && role.hosts.is_empty() && !role.identities.is_empty();
            roles.push(RoleRules {
                hosts: (!by_identity_only).then_some(members),
                identities: role.identities.clone(),
                rules,
            });
        }
        let mut classes = Vec::new();
        for (class, specs, list) in [
            (
                Class::Destructive,
                &config.classes.destructive,
                "destructive",
            ),
            (Class::Mutating, &config.classes.mutating, "mutating"),
            (Class::ReadOnly, &config.classes.read_only, "read_only"),
        ] {
            for rule in rules::compile_all(specs, &format!("policy.classes.{list}"))? {
                classes.push((class, rule));
            }
        }
        let version = hex::encode(Sha256::digest(format!("{config:?}").as_bytes()));
        Ok(Policy {
            mode: config.mode,
            allow_opaque: config.allow_opaque,
            allow_env: config.allow_env.clone(),
            global,
            roles,
            classes,
            protected: Vec::new(),
            protected_languages: Vec::new(),
            local_home: None,
            local_cwd: None,
            version,
        })
    }

    /// Adds warden's own files (config, state dir, audit dir) to what no file tool or
    /// redirection on `local` may touch; `home` and `cwd` say where `~/x` and `./x`
    /// lead there.
    pub fn protect(
        mut self,
        paths: impl IntoIterator<Item = String>,
        home: Option<String>,
        cwd: Option<String>,
    ) -> Policy {
        self.protected.extend(paths);
        self.protected_languages = self
            .protected
            .iter()
            .map(|own| patterns::Language::of_rule(&regex::escape(own)))
            .collect();
        self.local_home = home;
        self.local_cwd = cwd;
        self
    }

    /// `path` as it reads on `local`: `~/x` under warden's home, `./x` in its cwd.
    fn on_local(&self, path: &str) -> String {
        let expanded = match (path.strip_prefix('~'), path.strip_prefix("./")) {
            (Some(rest), _) if rest.is_empty() || rest.starts_with('/') => {
                self.local_home.as_ref().map(|home| format!("{home}{rest}"))
            }
            (_, Some(rest)) => self.local_cwd.as_ref().map(|cwd| format!("{cwd}/{rest}")),
            _ => None,
        };
        analysis::normalize(expanded.as_deref().unwrap_or(path), None)
    }

    pub fn mode(&self) -> PolicyMode {
        self.mode
    }

    /// Whether `allow_opaque` relaxes the opaque check (logged and audited).
    pub fn allows_opaque(&self) -> bool {
        self.allow_opaque
    }

    pub fn version(&self) -> &str {
        &self.version
    }

    /// A command as policy sees it, with the operator's classes.
    pub fn analyze(&self, input: Input) -> Analysis {
        analysis::analyze(input, &|command| self.operator_class(command))
    }

    /// [`Policy::analyze`] for a command whose starting directory warden cannot tell
    /// (see [`analysis::analyze_unplaced`]).
    pub fn analyze_unplaced(&self, input: Input) -> Analysis {
        analysis::analyze_unplaced(input, &|command| self.operator_class(command))
    }

    /// The class the operator's table gives `command`, if any.
    fn operator_class(&self, command: &SimpleCommand) -> Option<Class> {
        self.classes
            .iter()
            .find(|(_, rule)| rule.matches(command, Purpose::Deny))
            .map(|(class, _)| *class)
    }

    /// The rules that apply on `host` for a caller with `identity`.
    fn rules_for(&self, host: &Host, identity: &str) -> RuleSet {
        let mut rules = self.global.clone();
        for role in &self.roles {
            let on_host = role
                .hosts
                .as_ref()
                .is_none_or(|hosts| hosts.iter().any(|id| id == host.id.as_str()));
            let for_caller =
                role.identities.is_empty() || role.identities.iter().any(|known| known == identity);
            if on_host && for_caller {
                rules.extend(&role.rules);
            }
        }
        rules
    }

    /// The decision for a command (already analysed) on one host for one caller.
    pub fn evaluate(
        &self,
        host: &Host,
        identity: &str,
        analysis: &Analysis,
        origin: CommandOrigin,
    ) -> Decision {
        let texts: Vec<String> = analysis.commands.iter().map(SimpleCommand::text).collect();
        if self.mode == PolicyMode::Off {
            return self.allowed(None, "policy mode is off".into(), texts);
        }
        let rules = self.rules_for(host, identity);
        let deny = |rule: Option<&Rule>, reason: String, hint: &str| {
            self.denied(
                rule.map(|rule| (rule.pattern.clone(), rule.source.clone())),
                reason,
                Some(hint.to_owned()),
                texts.clone(),
            )
        };
        for rule in &rules.deny {
            if let Some(hit) = analysis
                .commands
                .iter()
                .chain(&analysis.spellings)
                .find(|command| rule.matches(command, Purpose::Deny))
            {
                return deny(
                    Some(rule),
                    format!("{:?} matches a deny rule", hit.text()),
                    "This command is not allowed here; policy_capabilities shows what is.",
                );
            }
        }
        if origin == CommandOrigin::BuiltinProbe {
            return self.allowed(None, "no rule denies warden's probe".into(), texts);
        }
        if let Some(name) = analysis.env.iter().find(|name| self.dangerous_env(name)) {
            return deny(
                None,
                format!("setting {name} changes which program runs or what the shell does first"),
                "Drop the variable, or ask the operator to add it to policy.allow_env.",
            );
        }
        for path in &analysis.paths {
            let decision = self.path_verdict(host, &rules, &path.path);
            if decision.decision != Verdict::Allowed {
                return decision_with_commands(decision, texts.clone());
            }
        }
        for pattern in &analysis.patterns {
            if let Some((rule, source)) = self.pattern_meets(host, &rules, pattern) {
                return self.denied(
                    Some((rule, source)),
                    format!(
                        "{:?} may name a path it covers once the shell expands it",
                        pattern.path
                    ),
                    Some(
                        "Write the path out (no glob, no variable), or list the directory first."
                            .into(),
                    ),
                    texts,
                );
            }
        }
        if !analysis.opaque.is_empty() && rules.any_rule() && !self.allow_opaque {
            return deny(
                None,
                format!(
                    "the command cannot be checked: {}",
                    analysis.opaque.join("; ")
                ),
                "Give argv (no shell), write out the commands the script runs, or put the script in a file under an allowed root and ask the operator to allow it by name.",
            );
        }
        if rules.allow.is_empty() {
            return self.allowed(None, "no rule denies it".into(), texts);
        }
        // An allow list says which programs run, not where they write: output goes
        // only under an allowed root (`echo … >> .git/config` would arm a hook).
        if let Some(path) = analysis.paths.iter().find(|path| {
            path.write
                && !rules
                    .allowed_roots
                    .iter()
                    .any(|root| within_root(&path.path, root))
        }) {
            return deny(
                None,
                format!("{:?} is written outside the allowed roots", path.path),
                "With an allow list, commands write only under policy.allowed_roots (or to /dev/null); write files with fs_write.",
            );
        }
        let mut deciding = None;
        for command in &analysis.commands {
            match rules
                .allow
                .iter()
                .find(|rule| rule.matches(command, Purpose::Allow))
            {
                Some(rule) => deciding = Some(rule),
                None => {
                    let what = command.privileged.clone().unwrap_or_else(|| command.text());
                    return deny(
                        None,
                        format!("{what:?} is not covered by any allow rule"),
                        "Only allowed commands run here; policy_capabilities lists them.",
                    );
                }
            }
        }
        match deciding {
            Some(rule) => self.allowed(
                Some((rule.pattern.clone(), rule.source.clone())),
                "every simple command is allowed".into(),
                texts,
            ),
            None => deny(
                None,
                "an allow list is set and the command is empty".into(),
                "Give a command.",
            ),
        }
    }

    /// The rule a glob or expansion may meet: a `deny_paths` rule, or warden's own
    /// files on `local`.
    fn pattern_meets(
        &self,
        host: &Host,
        rules: &RuleSet,
        pattern: &analysis::PathPattern,
    ) -> Option<(String, String)> {
        let Some(language) = &pattern.language else {
            return Some((pattern.path.clone(), "a path too complex to check".into()));
        };
        let meets = |rule: &Option<patterns::Language>| {
            rule.as_ref().is_none_or(|rule| language.meets(rule))
        };
        if host.is_local()
            && let Some(own) = self
                .protected
                .iter()
                .zip(&self.protected_languages)
                .find(|(_, rule)| meets(rule))
        {
            return Some((own.0.clone(), "warden's own files".into()));
        }
        if self.mode == PolicyMode::Off {
            return None;
        }
        rules
            .deny_paths
            .iter()
            .find(|rule| meets(&rule.language))
            .map(|rule| (rule.pattern.clone(), rule.source.clone()))
    }

    fn dangerous_env(&self, name: &str) -> bool {
        let dangerous = DANGEROUS_ENV.contains(&name)
            || DANGEROUS_ENV_PREFIXES
                .iter()
                .any(|prefix| name.starts_with(prefix));
        dangerous && !self.allow_env.iter().any(|allowed| allowed == name)
    }

    /// Whether a resolved absolute path may be touched: denied when the path or one of
    /// its parent directories matches a `deny_paths` regex in full (so `/root/\.ssh`
    /// covers everything below it), or is one of warden's own files on `local`.
    pub fn evaluate_path(&self, host: &Host, identity: &str, path: &str) -> Decision {
        let rules = self.rules_for(host, identity);
        self.path_verdict(host, &rules, path)
    }

    fn path_verdict(&self, host: &Host, rules: &RuleSet, path: &str) -> Decision {
        let local = host.is_local().then(|| self.on_local(path));
        if let Some(local) = &local
            && let Some(own) = self
                .protected
                .iter()
                .find(|own| path_and_parents(local).any(|candidate| candidate == own.as_str()))
        {
            // Always, in every mode: warden's own files are not the agent's to change.
            return Decision {
                allowed: false,
                decision: Verdict::Denied,
                mode: self.mode,
                rule: Some(own.clone()),
                source: Some("warden's own files".into()),
                reason: format!("{path:?} is warden's own config, state or audit log"),
                hint: Some("warden's files are never open to its tools.".into()),
                simple_commands: Vec::new(),
            };
        }
        if self.mode == PolicyMode::Off {
            return self.allowed(None, "policy mode is off".into(), Vec::new());
        }
        let hit = rules.deny_paths.iter().find_map(|rule| {
            path_and_parents(path)
                .find(|candidate| rule.regex.is_match(candidate))
                .map(|candidate| (rule, candidate))
        });
        match hit {
            Some((rule, candidate)) => self.denied(
                Some((rule.pattern.clone(), rule.source.clone())),
                format!("{candidate:?} matches a deny_paths rule"),
                Some("This path is off limits; work on another path.".into()),
                Vec::new(),
            ),
            None => self.allowed(None, "no deny_paths rule matches".into(), Vec::new()),
        }
    }

    /// `policy.allowed_roots` plus those of the roles that apply: where file tools may
    /// work outside a session, and where sessions may be rooted.
    pub fn allowed_roots(&self, host: &Host, identity: &str) -> Vec<String> {
        self.rules_for(host, identity).allowed_roots
    }

    /// What a caller may do on a host, in brief: for `policy_capabilities`.
    pub fn capabilities(&self, host: &Host, identity: &str) -> Capabilities {
        let rules = self.rules_for(host, identity);
        let patterns = |list: &[Arc<Rule>]| list.iter().map(|rule| rule.pattern.clone()).collect();
        Capabilities {
            mode: self.mode,
            allow_commands: patterns(&rules.allow),
            deny_commands: patterns(&rules.deny),
            deny_paths: rules
                .deny_paths
                .iter()
                .map(|rule| rule.pattern.clone())
                .collect(),
            allowed_roots: rules.allowed_roots.clone(),
            opaque: if self.mode == PolicyMode::Off || !rules.any_rule() || self.allow_opaque {
                "allowed"
            } else {
                "denied"
            },
            allow_env: self.allow_env.clone(),
            advisory: rules.allow.is_empty() && self.mode != PolicyMode::Off,
        }
    }

    fn allowed(
        &self,
        rule: Option<(String, String)>,
        reason: String,
        simple_commands: Vec<String>,
    ) -> Decision {
        let (rule, source) = rule.unzip();
        Decision {
            allowed: true,
            decision: Verdict::Allowed,
            mode: self.mode,
            rule,
            source,
            reason,
            hint: None,
            simple_commands,
        }
    }

    fn denied(
        &self,
        rule: Option<(String, String)>,
        reason: String,
        hint: Option<String>,
        simple_commands: Vec<String>,
    ) -> Decision {
        let enforced = self.mode == PolicyMode::Enforce;
        let (rule, source) = rule.unzip();
        Decision {
            allowed: !enforced,
            decision: if enforced {
                Verdict::Denied
            } else {
                Verdict::Warned
            },
            mode: self.mode,
            rule,
            source,
            reason,
            hint,
            simple_commands,
        }
    }
}

/// What a caller may do on one host (`policy_capabilities`).
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Capabilities {
    pub mode: PolicyMode,
    /// Non-empty: only these commands run.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allow_commands: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub deny_commands: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub deny_paths: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allowed_roots: Vec<String>,
    /// Whether commands warden cannot check (`eval`, `sh` on a pipe, `python -c`) run.
    pub opaque: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allow_env: Vec<String>,
    /// Only a deny list: it stops the commands it names, not arbitrary code.
    pub advisory: bool,
}

fn decision_with_commands(mut decision: Decision, texts: Vec<String>) -> Decision {
    decision.simple_commands = texts;
    decision
}

fn shared<T>(items: Vec<T>) -> Vec<Arc<T>> {
    items.into_iter().map(Arc::new).collect()
}

/// `path` is `root` or below it (both normalized).
fn within_root(path: &str, root: &str) -> bool {
    let root = root.trim_end_matches('/');
    root.is_empty()
        || path == root
        || path
            .strip_prefix(root)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// `/a/b/c`, `/a/b`, `/a`, `/`.
fn path_and_parents(path: &str) -> impl Iterator<Item = &str> {
    std::iter::successors(Some(path), |current| {
        let parent = &current[..current.rfind('/')?];
        match (parent.is_empty(), *current == "/") {
            (_, true) => None,
            (true, false) => Some("/"),
            (false, false) => Some(parent),
        }
    })
}

fn compile_paths(patterns: &[String], source: &str) -> Result<Vec<PathRule>> {
    patterns
        .iter()
        .enumerate()
        .map(|(index, pattern)| {
            let source = format!("{source}[{index}]");
            // `.` matches a newline too: a path may hold one.
            let regex = Regex::new(&format!("(?s)^(?:{pattern})$")).map_err(|error| {
                Error::invalid_input(format!("{source}: bad regex {pattern:?}: {error}"))
            })?;
            Ok(PathRule {
                pattern: pattern.clone(),
                regex,
                source,
                language: patterns::Language::of_rule(pattern),
            })
        })
        .collect()
}

/// Lint warnings for every rule list of the policy.
pub fn lint(config: &PolicyConfig) -> Vec<rules::Lint> {
    let mut lints = rules::lint(&config.deny_commands, "policy.deny_commands", true);
    lints.extend(rules::lint(
        &config.allow_commands,
        "policy.allow_commands",
        false,
    ));
    for role in &config.roles {
        lints.extend(rules::lint(
            &role.deny_commands,
            &format!("policy.roles[{}].deny_commands", role.name),
            true,
        ));
        lints.extend(rules::lint(
            &role.allow_commands,
            &format!("policy.roles[{}].allow_commands", role.name),
            false,
        ));
    }
    lints
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn check(yaml: &str, host: &str, command: &str, expect: Verdict) {
        let config = Config::parse(yaml).unwrap_or_else(|error| panic!("{error}"));
        let inventory = Inventory::from_config(&config);
        let policy =
            Policy::new(&config.policy, &inventory).unwrap_or_else(|error| panic!("{error}"));
        let host = inventory
            .require(host)
            .unwrap_or_else(|error| panic!("{error}"));
        let analysis = policy.analyze(Input::shell(command));
        let decision = policy.evaluate(&host, "tester", &analysis, CommandOrigin::Caller);
        assert_eq!(
            decision.decision, expect,
            "{command:?}: {decision:?} {analysis:?}"
        );
    }

    const HOSTS: &str = "hosts:\n  - {id: web-1, address: a}\n  - {id: db-1, address: b}\n";

    #[test]
    fn deny_paths_cover_the_path_and_everything_below() {
        let yaml = format!("{HOSTS}policy:\n  deny_paths: ['/root/\\.ssh', '.*\\.pem']\n");
        let config = Config::parse(&yaml).unwrap();
        let inventory = Inventory::from_config(&config);
        let policy = Policy::new(&config.policy, &inventory).unwrap();
        let host = inventory.require("web-1").unwrap();
        let verdict = |path: &str| policy.evaluate_path(&host, "tester", path).decision;
        assert_eq!(verdict("/root/.ssh"), Verdict::Denied);
        assert_eq!(verdict("/root/.ssh/authorized_keys"), Verdict::Denied);
        assert_eq!(verdict("/srv/tls/key.pem"), Verdict::Denied);
        assert_eq!(verdict("/root/.sshx"), Verdict::Allowed);
        assert_eq!(verdict("/srv/app"), Verdict::Allowed);
        assert_eq!(
            path_and_parents("/a/b").collect::<Vec<_>>(),
            ["/a/b", "/a", "/"]
        );
    }

    #[test]
    fn deny_list_blocks_each_simple_command() {
        let yaml = format!("{HOSTS}policy:\n  deny_commands: ['rm\\s+-rf\\s+.*']\n");
        check(&yaml, "web-1", "uptime", Verdict::Allowed);
        check(&yaml, "web-1", "rm -rf /", Verdict::Denied);
        check(&yaml, "web-1", "uptime; rm -rf /", Verdict::Denied);
        check(&yaml, "web-1", "/bin/rm -rf /", Verdict::Denied);
        check(&yaml, "web-1", "echo 'rm -rf x'", Verdict::Allowed);
    }

    #[test]
    fn allow_list_denies_everything_else() {
        let yaml = format!("{HOSTS}policy:\n  allow_commands: ['uptime', 'ls( .*)?']\n");
        check(&yaml, "web-1", "uptime", Verdict::Allowed);
        check(&yaml, "web-1", "ls -la && uptime", Verdict::Allowed);
        check(&yaml, "web-1", "uptime && reboot", Verdict::Denied);
        check(&yaml, "web-1", "ls $(reboot)", Verdict::Denied);
    }

    #[test]
    fn deny_wins_over_allow() {
        let yaml = format!(
            "{HOSTS}policy:\n  allow_commands: ['ls.*']\n  deny_commands: ['ls /root.*']\n"
        );
        check(&yaml, "web-1", "ls /tmp", Verdict::Allowed);
        check(&yaml, "web-1", "ls /root", Verdict::Denied);
    }

    #[test]
    fn roles_apply_to_their_hosts_only() {
        let yaml = "hosts:\n  - {id: web-1, address: a}\n  - {id: db-1, address: b, role: dba}\n\
                    policy:\n  roles:\n    - name: dba\n      deny_commands: ['dropdb.*']\n";
        check(yaml, "db-1", "dropdb prod", Verdict::Denied);
        check(yaml, "web-1", "dropdb prod", Verdict::Allowed);
    }

    #[test]
    fn warn_and_off_modes() {
        let warn = format!("{HOSTS}policy:\n  mode: warn\n  deny_commands: ['reboot']\n");
        check(&warn, "web-1", "reboot", Verdict::Warned);
        let off = format!("{HOSTS}policy:\n  mode: off\n  deny_commands: ['reboot']\n");
        check(&off, "web-1", "reboot", Verdict::Allowed);
    }

    #[test]
    fn bad_regex_names_its_place() {
        let config = Config::parse("policy:\n  deny_commands: ['(']\n").unwrap_or_default();
        let error = Policy::new(&config.policy, &Inventory::from_config(&config)).err();
        let message = error.map(|error| error.message).unwrap_or_default();
        assert!(message.contains("policy.deny_commands[0]"), "{message}");
    }
}
