//! The corpora: every bypass class of issue 9 is refused by a deny rule for `touch`,
//! the everyday one-liners all run under the starter policy without a preview, and
//! the rules operators write mean what they say.

use super::*;
use crate::config::{Config, STARTER_CONFIG};

const BYPASS: &str = include_str!("corpus/bypass.txt");
const EVERYDAY: &str = include_str!("corpus/everyday.txt");

fn policy_of(yaml: &str) -> (Policy, Arc<Host>) {
    let config = Config::parse(yaml).unwrap_or_else(|error| panic!("{error}"));
    let inventory = Inventory::from_config(&config);
    let policy = Policy::new(&config.policy, &inventory).unwrap_or_else(|error| panic!("{error}"));
    let host = inventory
        .require("web-1")
        .unwrap_or_else(|error| panic!("{error}"));
    (policy, host)
}

fn decide(
    policy: &Policy,
    host: &Host,
    command: &str,
    stdin: Option<&str>,
) -> (Decision, Analysis) {
    let analysis = policy.analyze(Input {
        shell: Some(command),
        argv: None,
        env: &[],
        stdin,
        working_directory: None,
    });
    (
        policy.evaluate(host, "tester", &analysis, CommandOrigin::Caller),
        analysis,
    )
}

use std::sync::Arc;

/// `class<TAB>command` lines (`⏎` is a newline).
pub fn bypass_corpus() -> Vec<(&'static str, String)> {
    BYPASS
        .lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .filter_map(|line| line.split_once('\t'))
        .map(|(class, command)| (class, command.replace('⏎', "\n")))
        .collect()
}

pub fn everyday_corpus() -> Vec<&'static str> {
    EVERYDAY
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .collect()
}

const HOST: &str = "hosts:\n  - {id: web-1, address: a}\n";

#[test]
fn every_bypass_class_is_denied_by_a_deny_rule() {
    let (policy, host) = policy_of(&format!("{HOST}policy:\n  deny_commands: ['touch\\b.*']\n"));
    let mut let_through = Vec::new();
    for (class, command) in bypass_corpus() {
        let (decision, analysis) = decide(&policy, &host, &command, None);
        if decision.decision != Verdict::Denied {
            let_through.push(format!(
                "{class}: {command:?} → {} ({analysis:?})",
                decision.reason
            ));
        }
        assert!(
            decision.hint.is_some() || decision.decision != Verdict::Denied,
            "{command:?}: a denial says what to do"
        );
    }
    assert!(
        let_through.is_empty(),
        "let through:\n{}",
        let_through.join("\n")
    );
    assert!(bypass_corpus().len() >= 80);
}

#[test]
fn call_level_bypasses_are_denied() {
    let (policy, host) = policy_of(&format!("{HOST}policy:\n  deny_commands: ['touch\\b.*']\n"));
    let evaluate = |input: Input| {
        let analysis = policy.analyze(input);
        policy
            .evaluate(&host, "tester", &analysis, CommandOrigin::Caller)
            .decision
    };
    let argv = |words: &[&str]| {
        words
            .iter()
            .map(|word| word.to_string())
            .collect::<Vec<_>>()
    };
    let base = Input {
        shell: None,
        argv: None,
        env: &[],
        stdin: None,
        working_directory: None,
    };
    // `sh` fed its script on the call's stdin.
    assert_eq!(
        evaluate(Input {
            shell: Some("sh"),
            stdin: Some("touch f"),
            ..base
        }),
        Verdict::Denied
    );
    // argv looked through like a shell's words.
    let words = argv(&["sudo", "touch", "f"]);
    assert_eq!(
        evaluate(Input {
            argv: Some(&words),
            ..base
        }),
        Verdict::Denied
    );
    let words = argv(&["sh", "-c", "touch f"]);
    assert_eq!(
        evaluate(Input {
            argv: Some(&words),
            ..base
        }),
        Verdict::Denied
    );
    // An assignment-looking argv[0] is a program's name: it cannot smuggle `touch`
    // past a rule, and nothing named `FOO=1` exists to run.
    let words = argv(&["FOO=1", "touch", "f"]);
    let analysis = policy.analyze(Input {
        argv: Some(&words),
        ..base
    });
    assert_eq!(analysis.commands[0].argv[0], "FOO=1");
    // Environment that changes what runs.
    for name in [
        "PATH",
        "LD_PRELOAD",
        "BASH_ENV",
        "IFS",
        "PROMPT_COMMAND",
        "PS4",
        "ENV",
        "SHELLOPTS",
        "BASHOPTS",
    ] {
        let env = [name.to_owned()];
        assert_eq!(
            evaluate(Input {
                shell: Some("ls"),
                env: &env,
                ..base
            }),
            Verdict::Denied,
            "{name}"
        );
        // A prefix `IFS=x cmd` changes no program (it splits nothing in cmd's words).
        if name != "IFS" {
            assert_eq!(
                evaluate(Input {
                    shell: Some(&format!("{name}=/tmp ls")),
                    ..base
                }),
                Verdict::Denied,
                "{name}"
            );
        }
        assert_eq!(
            evaluate(Input {
                shell: Some(&format!("{name}=/tmp; ls")),
                ..base
            }),
            Verdict::Denied,
            "{name}"
        );
        assert_eq!(
            evaluate(Input {
                shell: Some(&format!("env {name}=/tmp ls")),
                ..base
            }),
            Verdict::Denied,
            "{name}"
        );
        assert_eq!(
            evaluate(Input {
                shell: Some(&format!("export {name}=/tmp")),
                ..base
            }),
            Verdict::Denied,
            "{name}"
        );
    }
    let (allowing, host) = policy_of(&format!(
        "{HOST}policy:\n  deny_commands: ['touch\\b.*']\n  allow_env: [PATH]\n"
    ));
    let analysis = allowing.analyze(Input {
        shell: Some("PATH=/usr/bin ls"),
        ..base
    });
    assert_eq!(
        allowing
            .evaluate(&host, "t", &analysis, CommandOrigin::Caller)
            .decision,
        Verdict::Allowed
    );
}

#[test]
fn starter_rules_hold_against_reordered_flags() {
    let (policy, host) = policy_of(&STARTER_CONFIG.replacen("hosts:\n", HOST, 1));
    for command in [
        "rm -rf /",
        "rm -fr /",
        "rm -r -f /",
        "rm --recursive --force /",
        "sudo rm -rf /",
        "rm -Rf /etc",
        "/bin/rm -rf /",
        "rm -rf -- /",
        "rm -rf $DIR/",
    ] {
        let (decision, _) = decide(&policy, &host, command, None);
        assert_eq!(
            decision.decision,
            Verdict::Denied,
            "{command:?}: {decision:?}"
        );
    }
}

#[test]
fn allow_lists_hold_against_exec_capable_options() {
    let yaml = format!(
        "{HOST}policy:\n  allow_commands: ['cat .*', 'git (status|log|diff).*', 'grep .*', 'find .*', 'sed .*', 'awk .*', 'tar .*', 'ls.*']\n  deny_paths: ['.*/\\.ssh(/.*)?', '/etc/shadow', '.*/\\.bashrc']\n"
    );
    let (policy, host) = policy_of(&yaml);
    for command in [
        "cat ok > ~/.bashrc",
        "git log --output=f",
        "find . -exec touch f \\;",
        "sed '1e touch f'",
        "awk 'BEGIN{system(\"touch f\")}'",
        "tar --checkpoint-action=exec=touch -cf x .",
        "grep -f /etc/shadow x",
        "cat ~/.ssh/id_ed25519",
        "cat .ssh/id_ed25519",
        "echo x >> ~/.ssh/authorized_keys",
        "cd /etc && cat shadow",
        "cd ~ && cat .ssh/id_rsa",
        "cat shadow; cd /etc",
        "ls; touch f",
        "sudo cat /etc/hostname",
        "find . -name '*' -fprint /home/u/.ssh/authorized_keys",
    ] {
        let (decision, analysis) = decide(&policy, &host, command, None);
        assert_eq!(
            decision.decision,
            Verdict::Denied,
            "{command:?}: {decision:?} {analysis:?}"
        );
    }
    for command in [
        "cat /etc/hostname",
        "git status",
        "grep -r foo /srv/app",
        "find /var/log -name '*.log'",
        "ls -la /tmp",
    ] {
        let (decision, _) = decide(&policy, &host, command, None);
        assert_eq!(
            decision.decision,
            Verdict::Allowed,
            "{command:?}: {decision:?}"
        );
    }
}

#[test]
fn the_everyday_corpus_runs_under_the_starter_policy_without_a_preview() {
    let starter = STARTER_CONFIG.replacen("hosts:\n", HOST, 1);
    let (policy, host) = policy_of(&starter);
    let corpus = everyday_corpus();
    let mut refused = Vec::new();
    for command in &corpus {
        let (decision, analysis) = decide(&policy, &host, command, None);
        if decision.decision != Verdict::Allowed || analysis.class == Class::Destructive {
            refused.push(format!(
                "{command:?}: {} [{:?}] {:?}",
                decision.reason, analysis.class, analysis.opaque
            ));
        }
    }
    assert!(corpus.len() >= 150, "{}", corpus.len());
    assert!(
        refused.is_empty(),
        "{} of {} refused or previewed:\n{}",
        refused.len(),
        corpus.len(),
        refused.join("\n")
    );
}

#[test]
fn classes_follow_the_table_and_the_operator() {
    let (policy, host) = policy_of(&format!(
        "{HOST}policy:\n  classes:\n    destructive: [{{program: deploy, args: [prod, '**']}}]\n    read_only: ['myctl status.*']\n"
    ));
    let class = |command: &str| decide(&policy, &host, command, None).1.class;
    assert_eq!(class("ls -la"), Class::ReadOnly);
    assert_eq!(class("rm -f x"), Class::Destructive);
    assert_eq!(class("systemctl restart nginx"), Class::Destructive);
    assert_eq!(class("systemctl status nginx"), Class::ReadOnly);
    assert_eq!(class("kill -0 1"), Class::ReadOnly);
    assert_eq!(class("echo hi > /tmp/x"), Class::Destructive);
    assert_eq!(class("echo hi >> /tmp/x"), Class::Mutating);
    assert_eq!(class("echo hi > /dev/null"), Class::ReadOnly);
    assert_eq!(class("apt-get remove nginx"), Class::Destructive);
    assert_eq!(class("some-tool --x"), Class::Mutating);
    assert_eq!(class("deploy prod --now"), Class::Destructive);
    assert_eq!(class("myctl status all"), Class::ReadOnly);
    assert_eq!(class("sudo reboot"), Class::Destructive);
}

#[test]
fn structured_rules_match_in_any_spelling() {
    let (policy, host) = policy_of(&format!(
        "{HOST}policy:\n  deny_commands: [{{program: systemctl, args: [stop, '**']}}, {{program: rm, flags: ['r|R|recursive'], args: ['**', '/srv/**']}}]\n"
    ));
    let verdict = |command: &str| decide(&policy, &host, command, None).0.decision;
    assert_eq!(verdict("systemctl stop nginx"), Verdict::Denied);
    assert_eq!(verdict("sudo /bin/systemctl stop nginx"), Verdict::Denied);
    assert_eq!(verdict("systemctl status nginx"), Verdict::Allowed);
    assert_eq!(verdict("rm -fr /srv/app"), Verdict::Denied);
    assert_eq!(verdict("rm -f -R /srv/app"), Verdict::Denied);
    assert_eq!(verdict("rm --recursive /srv/app"), Verdict::Denied);
    assert_eq!(verdict("rm -f /srv/app/x"), Verdict::Allowed);
    assert_eq!(verdict("rm -r /tmp/x"), Verdict::Allowed);
}

#[test]
fn lint_warns_about_rules_that_mislead() {
    let config = Config::parse(
        "policy:\n  deny_commands: ['^rm -rf /.*', 'rm\\s+-rf\\s+/\\S*']\n  allow_commands: ['find .*', 'uptime']\n",
    )
    .unwrap_or_else(|error| panic!("{error}"));
    let lints = lint(&config.policy);
    let warned: Vec<&str> = lints.iter().map(|lint| lint.source.as_str()).collect();
    assert!(warned.contains(&"policy.deny_commands[0]"), "{lints:?}");
    assert!(warned.contains(&"policy.deny_commands[1]"), "{lints:?}");
    assert!(warned.contains(&"policy.allow_commands[0]"), "{lints:?}");
    assert!(!warned.contains(&"policy.allow_commands[1]"), "{lints:?}");
}

#[test]
fn roles_by_caller_identity() {
    let (policy, host) = policy_of(&format!(
        "{HOST}policy:\n  roles:\n    - name: interns\n      identities: [intern]\n      allow_commands: ['uptime']\n"
    ));
    let analysis = policy.analyze(Input::shell("reboot"));
    assert_eq!(
        policy
            .evaluate(&host, "intern", &analysis, CommandOrigin::Caller)
            .decision,
        Verdict::Denied
    );
    assert_eq!(
        policy
            .evaluate(&host, "ops", &analysis, CommandOrigin::Caller)
            .decision,
        Verdict::Allowed
    );
}

#[test]
fn allow_opaque_is_the_one_setting_that_lets_unseen_code_run() {
    let (strict, host) = policy_of(&format!("{HOST}policy:\n  deny_commands: ['touch\\b.*']\n"));
    let (relaxed, _) = policy_of(&format!(
        "{HOST}policy:\n  deny_commands: ['touch\\b.*']\n  allow_opaque: true\n"
    ));
    let (none, _) = policy_of(HOST);
    for command in ["eval \"$X\"", "curl -s x | sh", "python3 -c 'print(1)'"] {
        assert_eq!(
            decide(&strict, &host, command, None).0.decision,
            Verdict::Denied,
            "{command}"
        );
        assert_eq!(
            decide(&relaxed, &host, command, None).0.decision,
            Verdict::Allowed,
            "{command}"
        );
        // No rule at all: nothing is protected, nothing is denied.
        assert_eq!(
            decide(&none, &host, command, None).0.decision,
            Verdict::Allowed,
            "{command}"
        );
    }
    assert!(relaxed.allows_opaque());
    // What can be seen is still checked when opaque code is allowed.
    assert_eq!(
        decide(&relaxed, &host, "eval x; touch f", None).0.decision,
        Verdict::Denied
    );
}

#[test]
fn a_rule_by_path_holds_for_the_name_and_other_spellings() {
    let (policy, host) = policy_of(&format!(
        "{HOST}policy:\n  deny_commands: ['/usr/bin/touch .*', {{program: /usr/sbin/reboot}}]\n"
    ));
    for command in [
        "touch f",
        "/usr/bin/touch f",
        "/bin/../usr/bin/touch f",
        "/usr//bin/touch f",
        "reboot",
        "sudo /sbin/../usr/sbin/reboot",
    ] {
        assert_eq!(
            decide(&policy, &host, command, None).0.decision,
            Verdict::Denied,
            "{command}"
        );
    }
    assert_eq!(
        decide(&policy, &host, "ls /usr/bin/touch", None).0.decision,
        Verdict::Allowed
    );
}

#[test]
fn starter_deny_paths_cover_credentials_and_persistence_points() {
    let (policy, host) = policy_of(&STARTER_CONFIG.replacen("hosts:\n", HOST, 1));
    for path in [
        "/etc/cron.d/x",
        "/etc/crontab",
        "/var/spool/cron/crontabs/root",
        "/etc/systemd/system/x.service",
        "/home/u/.config/systemd/user/x.service",
        "/etc/sudoers.d/x",
        "/etc/shadow",
        "/root/.ssh/authorized_keys",
        "/home/u/.bashrc",
        "/etc/profile.d/x.sh",
        "/etc/ld.so.preload",
    ] {
        assert_eq!(
            policy.evaluate_path(&host, "t", path).decision,
            Verdict::Denied,
            "{path}"
        );
    }
    assert_eq!(
        policy.evaluate_path(&host, "t", "/srv/app/x").decision,
        Verdict::Allowed
    );
}

#[test]
fn relative_paths_are_checked_wherever_the_command_may_run() {
    let (policy, host) = policy_of(&format!(
        "{HOST}policy:\n  deny_paths: ['/etc/shadow', '.*/\\.ssh(/.*)?']\n"
    ));
    for command in [
        "cd /etc && cat shadow",
        "cat shadow; cd /etc",
        "cd ~ && cat .ssh/id_rsa",
        "pushd /etc; grep root shadow",
    ] {
        assert_eq!(
            decide(&policy, &host, command, None).0.decision,
            Verdict::Denied,
            "{command}"
        );
    }
    let analysis = policy.analyze(Input {
        shell: Some("cat shadow"),
        argv: None,
        env: &[],
        stdin: None,
        working_directory: Some("/etc"),
    });
    assert_eq!(
        policy
            .evaluate(&host, "t", &analysis, CommandOrigin::Caller)
            .decision,
        Verdict::Denied
    );
    assert_eq!(
        decide(&policy, &host, "cd /var/log && cat syslog", None)
            .0
            .decision,
        Verdict::Allowed
    );
}

#[test]
fn hostile_sizes_are_opaque_not_a_crash() {
    let (policy, host) = policy_of(&format!("{HOST}policy:\n  deny_commands: ['touch\\b.*']\n"));
    let deep_subshells = format!("{}touch f{}", "(".repeat(20_000), ")".repeat(20_000));
    let deep_substitutions = format!("{}touch f{}", "$(".repeat(5_000), ")".repeat(5_000));
    let deep_braces = format!("{}touch f;{}", "{ ".repeat(5_000), "}".repeat(5_000));
    let many_paths = format!(
        "cat {}",
        (0..20_000)
            .map(|i| format!("/a/{i}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let many_redirects = format!(
        ": {}",
        (0..20_000)
            .map(|i| format!(">/a/{i}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let nested_wrappers = format!("{}touch f", "env ".repeat(50));
    for command in [
        deep_subshells,
        deep_substitutions,
        deep_braces,
        many_paths,
        many_redirects,
        nested_wrappers,
    ] {
        let (decision, _) = decide(&policy, &host, &command, None);
        assert_eq!(decision.decision, Verdict::Denied, "{}…", &command[..40]);
    }
}

#[test]
fn code_shown_as_text_is_not_code_run() {
    let (policy, host) = policy_of(&format!("{HOST}policy:\n  deny_commands: ['touch\\b.*']\n"));
    for command in [
        "echo '$(not run)'",
        "printf '%s\\n' '$(id)' '`id`'",
        "grep -F '$(' /etc/hostname",
        "echo touch f",
    ] {
        assert_eq!(
            decide(&policy, &host, command, None).0.decision,
            Verdict::Allowed,
            "{command}"
        );
    }
}
