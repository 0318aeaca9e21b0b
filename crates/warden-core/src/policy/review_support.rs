//! Helpers the adversarial reviews' tests share: a one-host policy, the analysis of a
//! command, and the assertions that every command is denied or classed destructive.

use std::sync::Arc;

use super::*;
use crate::config::Config;
use crate::inventory::Inventory;

pub const HOST: &str = "hosts:\n  - {id: web-1, address: a}\n";
pub const DENY_TOUCH: &str = "policy:\n  deny_commands: ['touch\\b.*', 'rm\\b.*']\n";
pub const ALLOW_LIST: &str = "policy:\n  allow_commands: ['cat .*', 'ls.*', 'grep .*', 'git (status|log|diff).*', 'echo .*']\n  deny_paths: ['.*/\\.ssh(/.*)?', '/etc/shadow']\n";
pub const DENY_PATHS: &str = "policy:\n  deny_paths: ['.*/\\.ssh(/.*)?', '/etc/shadow']\n";

/// `policy` (YAML from `policy:` on) over one host, `web-1`.
pub fn policy_of(policy: &str) -> (Policy, Arc<Host>) {
    let config =
        Config::parse(&format!("{HOST}{policy}")).unwrap_or_else(|error| panic!("{error}"));
    let inventory = Inventory::from_config(&config);
    let policy = Policy::new(&config.policy, &inventory).unwrap_or_else(|error| panic!("{error}"));
    let host = inventory
        .require("web-1")
        .unwrap_or_else(|error| panic!("{error}"));
    (policy, host)
}

pub fn analyze_in(policy: &Policy, command: &str, working_directory: Option<&str>) -> Analysis {
    policy.analyze(Input {
        working_directory,
        ..Input::shell(command)
    })
}

/// Every command must be denied under `policy`, run in `working_directory`.
pub fn assert_denied_in(policy: &str, working_directory: Option<&str>, commands: &[&str]) {
    let (policy, host) = policy_of(policy);
    let mut through = Vec::new();
    for command in commands {
        let analysis = analyze_in(&policy, command, working_directory);
        let decision = policy.evaluate(&host, "tester", &analysis, CommandOrigin::Caller);
        if decision.decision != Verdict::Denied {
            let shown: String = command.chars().take(160).collect();
            through.push(format!(
                "{shown:?} → {:?}: {}",
                decision.decision,
                decision.reason.chars().take(160).collect::<String>()
            ));
        }
    }
    assert!(through.is_empty(), "let through:\n{}", through.join("\n"));
}

pub fn assert_denied(policy: &str, commands: &[&str]) {
    assert_denied_in(policy, None, commands);
}

/// Every command must be classed destructive (previewed without confirm).
pub fn assert_destructive(commands: &[&str]) {
    let (policy, _) = policy_of("policy: {}\n");
    let mut missed = Vec::new();
    for command in commands {
        let analysis = analyze_in(&policy, command, None);
        if analysis.class != Class::Destructive {
            missed.push(format!(
                "{command:?} → {:?} cmds={:?}",
                analysis.class,
                analysis
                    .commands
                    .iter()
                    .map(SimpleCommand::text)
                    .collect::<Vec<_>>()
            ));
        }
    }
    assert!(missed.is_empty(), "not destructive:\n{}", missed.join("\n"));
}
