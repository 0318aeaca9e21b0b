//! Policy, first layer: pure decisions over data. Given a host and a command, is it
//! allowed, and which rule decided?
//!
//! Rules are regexes matched in full against each simple command of the string (see
//! [`command`]) and against the same command with its program written as a basename.
//! Deny wins over allow; a non-empty allow list (global plus the host's roles) makes
//! every command it does not cover denied. `mode: warn` reports what enforce would
//! deny but lets it run; `mode: off` decides nothing.

pub mod command;

use std::collections::BTreeMap;

use regex::Regex;
use serde::Serialize;

use crate::config::{PolicyConfig, PolicyMode};
use crate::error::{Error, Result};
use crate::inventory::{Host, Inventory};

#[derive(Debug, Clone)]
struct Rule {
    pattern: String,
    regex: Regex,
    /// "policy.deny_commands" or "roles[ops].allow_commands": where to look it up.
    source: String,
}

impl Rule {
    fn compile(pattern: &str, source: String) -> Result<Rule> {
        let regex = Regex::new(&format!("^(?:{pattern})$")).map_err(|error| {
            Error::invalid_input(format!("{source}: bad regex {pattern:?}: {error}"))
        })?;
        Ok(Rule {
            pattern: pattern.to_owned(),
            regex,
            source,
        })
    }

    fn matches(&self, simple_command: &str) -> bool {
        self.regex.is_match(simple_command)
            || command::with_program_basename(simple_command)
                .is_some_and(|basename| self.regex.is_match(&basename))
    }
}

#[derive(Debug, Clone, Default)]
struct RuleSet {
    deny: Vec<Rule>,
    allow: Vec<Rule>,
    deny_paths: Vec<Rule>,
    allowed_roots: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Policy {
    mode: PolicyMode,
    global: RuleSet,
    /// Role rules per host id (a host may take several roles).
    host_rules: BTreeMap<String, RuleSet>,
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
    pub simple_commands: Vec<String>,
}

/// How a command reaches policy: agent-supplied text, or a fixed probe warden wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandOrigin {
    /// From the caller: every rule applies.
    Caller,
    /// A built-in read-only probe (facts): deny rules apply to its name, allow lists
    /// do not, so an allow list written for agents' commands does not blind warden.
    BuiltinProbe,
}

impl Policy {
    pub fn new(config: &PolicyConfig, inventory: &Inventory) -> Result<Policy> {
        let global = RuleSet {
            deny: compile_all(&config.deny_commands, "policy.deny_commands")?,
            allow: compile_all(&config.allow_commands, "policy.allow_commands")?,
            deny_paths: compile_all(&config.deny_paths, "policy.deny_paths")?,
            allowed_roots: config.allowed_roots.clone(),
        };
        let mut host_rules: BTreeMap<String, RuleSet> = BTreeMap::new();
        for role in &config.roles {
            let deny = compile_all(
                &role.deny_commands,
                &format!("policy.roles[{}].deny_commands", role.name),
            )?;
            let allow = compile_all(
                &role.allow_commands,
                &format!("policy.roles[{}].allow_commands", role.name),
            )?;
            let deny_paths = compile_all(
                &role.deny_paths,
                &format!("policy.roles[{}].deny_paths", role.name),
            )?;
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
            for member in members {
                let rules = host_rules.entry(member).or_default();
                rules.deny.extend(deny.iter().cloned());
                rules.allow.extend(allow.iter().cloned());
                rules.deny_paths.extend(deny_paths.iter().cloned());
                rules
                    .allowed_roots
                    .extend(role.allowed_roots.iter().cloned());
            }
        }
        Ok(Policy {
            mode: config.mode,
            global,
            host_rules,
        })
    }

    pub fn mode(&self) -> PolicyMode {
        self.mode
    }

    pub fn evaluate(&self, host: &Host, command_text: &str, origin: CommandOrigin) -> Decision {
        let analysis = command::analyze(command_text);
        let role_rules = self.host_rules.get(host.id.as_str());
        let deny = self
            .global
            .deny
            .iter()
            .chain(role_rules.into_iter().flat_map(|rules| rules.deny.iter()));
        let allow: Vec<&Rule> = self
            .global
            .allow
            .iter()
            .chain(role_rules.into_iter().flat_map(|rules| rules.allow.iter()))
            .collect();
        let decide = |rule: Option<&Rule>, reason: String| -> Decision {
            self.denied(rule, reason, analysis.simple_commands.clone())
        };
        if self.mode == PolicyMode::Off {
            return self.allowed(None, "policy mode is off".into(), analysis.simple_commands);
        }
        for rule in deny {
            if let Some(hit) = analysis
                .simple_commands
                .iter()
                .find(|simple| rule.matches(simple))
            {
                return decide(Some(rule), format!("{hit:?} matches a deny rule"));
            }
        }
        if allow.is_empty() || origin == CommandOrigin::BuiltinProbe {
            return self.allowed(None, "no rule denies it".into(), analysis.simple_commands);
        }
        if let Some(why) = analysis.opaque {
            return decide(
                None,
                format!("an allow list is set and the command uses {why}, which cannot be checked"),
            );
        }
        let mut deciding = None;
        for simple in &analysis.simple_commands {
            match allow.iter().find(|rule| rule.matches(simple)) {
                Some(rule) => deciding = Some(*rule),
                None => {
                    return decide(None, format!("{simple:?} is not covered by any allow rule"));
                }
            }
        }
        match deciding {
            Some(rule) => self.allowed(
                Some(rule),
                "every simple command is allowed".into(),
                analysis.simple_commands,
            ),
            None => decide(None, "an allow list is set and the command is empty".into()),
        }
    }

    /// Whether a resolved absolute path may be touched: denied when the path or one of
    /// its parent directories matches a `deny_paths` regex in full (so `/root/\.ssh`
    /// covers everything below it).
    pub fn evaluate_path(&self, host: &Host, path: &str) -> Decision {
        if self.mode == PolicyMode::Off {
            return self.allowed(None, "policy mode is off".into(), Vec::new());
        }
        let role_rules = self.host_rules.get(host.id.as_str());
        let mut rules = self.global.deny_paths.iter().chain(
            role_rules
                .into_iter()
                .flat_map(|rules| rules.deny_paths.iter()),
        );
        let hit = rules.find_map(|rule| {
            path_and_parents(path)
                .find(|candidate| rule.regex.is_match(candidate))
                .map(|candidate| (rule, candidate))
        });
        match hit {
            Some((rule, candidate)) => self.denied(
                Some(rule),
                format!("{candidate:?} matches a deny_paths rule"),
                Vec::new(),
            ),
            None => self.allowed(None, "no deny_paths rule matches".into(), Vec::new()),
        }
    }

    /// `policy.allowed_roots` plus those of the host's roles: where file tools may work
    /// outside a session, and where sessions may be rooted.
    pub fn allowed_roots(&self, host: &Host) -> Vec<String> {
        let role_rules = self.host_rules.get(host.id.as_str());
        self.global
            .allowed_roots
            .iter()
            .chain(
                role_rules
                    .into_iter()
                    .flat_map(|rules| rules.allowed_roots.iter()),
            )
            .cloned()
            .collect()
    }

    fn allowed(
        &self,
        rule: Option<&Rule>,
        reason: String,
        simple_commands: Vec<String>,
    ) -> Decision {
        Decision {
            allowed: true,
            decision: Verdict::Allowed,
            mode: self.mode,
            rule: rule.map(|rule| rule.pattern.clone()),
            source: rule.map(|rule| rule.source.clone()),
            reason,
            simple_commands,
        }
    }

    fn denied(
        &self,
        rule: Option<&Rule>,
        reason: String,
        simple_commands: Vec<String>,
    ) -> Decision {
        let enforced = self.mode == PolicyMode::Enforce;
        Decision {
            allowed: !enforced,
            decision: if enforced {
                Verdict::Denied
            } else {
                Verdict::Warned
            },
            mode: self.mode,
            rule: rule.map(|rule| rule.pattern.clone()),
            source: rule.map(|rule| rule.source.clone()),
            reason,
            simple_commands,
        }
    }
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

fn compile_all(patterns: &[String], source: &str) -> Result<Vec<Rule>> {
    patterns
        .iter()
        .enumerate()
        .map(|(index, pattern)| Rule::compile(pattern, format!("{source}[{index}]")))
        .collect()
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
        let decision = policy.evaluate(&host, command, CommandOrigin::Caller);
        assert_eq!(decision.decision, expect, "{command:?}: {decision:?}");
    }

    const HOSTS: &str = "hosts:\n  - {id: web-1, address: a}\n  - {id: db-1, address: b}\n";

    #[test]
    fn deny_paths_cover_the_path_and_everything_below() {
        let yaml = format!("{HOSTS}policy:\n  deny_paths: ['/root/\\.ssh', '.*\\.pem']\n");
        let config = Config::parse(&yaml).unwrap();
        let inventory = Inventory::from_config(&config);
        let policy = Policy::new(&config.policy, &inventory).unwrap();
        let host = inventory.require("web-1").unwrap();
        let verdict = |path: &str| policy.evaluate_path(&host, path).decision;
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
        check(&yaml, "web-1", "echo 'rm -rf /'", Verdict::Allowed);
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
