//! Adversarial review 4: each test is one bypass that gets through today, asserting
//! the safe outcome. Every command here was run in bash 5.2 (GNU coreutils 9.1,
//! findutils 4.9, tar 1.34, git 2.47, mawk, perl, python3) in a temp dir and really
//! ran the program (created `f`), read the denied file, or did the damage named.

use super::review_support::*;
use super::*;

// ---- deny rule bypasses (critical) ----

#[test]
fn xargs_options_with_an_optional_value() {
    // GNU xargs' `-e[EOF]`, `-i[R]`, `-l[N]` take a value only when glued
    // (getopt `e::i::l::`); wrappers::SPECS lists them in short_values, so the next
    // word (the program) is skipped as their value and `f` read as the program.
    assert_denied(
        DENY_TOUCH,
        &[
            "echo x | xargs -i touch f",
            "echo x | xargs -e touch f",
            "echo x | xargs -l touch f",
        ],
    );
}

#[test]
fn env_assigns_any_word_holding_an_equals_sign() {
    // coreutils env treats every leading word containing `=` as NAME=VALUE
    // (`strchr(arg, '=')`); wrappers::env stops at the first word that is not a valid
    // shell name, so the assignment is read as the program. The first one also
    // smuggles BASH_FUNC_echo%% (an exported function) past the dangerous-env check.
    assert_denied(
        DENY_TOUCH,
        &[
            "env 'BASH_FUNC_echo%%=() { touch f; }' bash -c echo",
            "env 'a-b=1' sh -c ':; touch f'",
        ],
    );
}

#[test]
fn a_shell_reading_stdin_inside_a_compound_a_function_or_after_exec() {
    // shell.rs walks a compound's children with Stdin::Inherited (the pipe or
    // here-string is lost), a function body is walked where it is defined, and `exec
    // <<<` redirects the shell's own stdin. analysis.rs then meets ShellStdin with
    // Stdin::Inherited and no call stdin, and records nothing at all.
    assert_denied(
        DENY_TOUCH,
        &[
            "echo 'touch f' | { sh; }",
            "echo 'touch f' | (sh)",
            "echo 'touch f' | if true; then sh; fi",
            "f(){ sh; }; f <<< 'touch f'",
            "exec <<< 'touch f'; sh",
            "exec 0<<<'touch f'; bash",
        ],
    );
}

#[test]
fn unknown_wrappers_running_a_shell_script() {
    // may_wrap only regex-matches the suffixes of an unknown program's argv; it never
    // looks through them, so `sh -c ':; touch f'` (or vim's `!cmd`) after it is text.
    assert_denied(
        DENY_TOUCH,
        &[
            "setarch x86_64 sh -c ':; touch f'",
            "strace -o /dev/null sh -c ':; touch f'",
            "vim -es -c '!touch f' -c q",
        ],
    );
}

#[test]
fn known_programs_that_run_commands() {
    // classes::known() turns may_wrap off and programs::inspect knows none of these:
    // git aliases set with `git config`, `git grep -O/--open-files-in-pager`, `npm exec`.
    assert_denied(
        DENY_TOUCH,
        &[
            "git config alias.x '!touch f' && git x",
            "git grep -O'touch f' x",
            "git grep --open-files-in-pager='touch f' x",
            "npm exec -- touch f",
        ],
    );
}

#[test]
fn long_options_abbreviated_and_short_options_glued() {
    // getopt_long and git's parse-options accept any unambiguous prefix of a long
    // option; programs.rs matches exact names (`--expression=`, `--checkpoint-action`,
    // `--upload-pack`, `--exec`) and exact `-x`, `-f`.
    assert_denied(
        DENY_TOUCH,
        &[
            "sed --expr='1e touch f' /etc/hostname",
            "tar --checkpoint=1 --checkpoint-act='exec=touch f' -cf /dev/null /etc/hostname",
            "git ls-remote --upload-p='touch f; git-upload-pack' .",
            "git clone --no-local --upload-pa='touch f; git-upload-pack' r x",
            "git rebase -x'touch f' HEAD~1",
            "git rebase --exe='touch f' HEAD~1",
            "mawk -f/dev/stdin <<< 'BEGIN{system(\"touch f\")}'",
        ],
    );
}

#[test]
fn standard_input_given_as_a_script_or_config_file() {
    // programs::interpreter takes any non-dash word as a named script; only the shells
    // check `/dev/` and `/proc/`. A process substitution is a "script" too. ssh -F
    // reads a config (ProxyCommand) from the here-string.
    assert_denied(
        DENY_TOUCH,
        &[
            "perl /dev/stdin <<< 'system(\"touch f\")'",
            "perl -x /dev/stdin <<< '#!perl\nsystem \"touch f\"'",
            "perl -MPOSIX /proc/self/fd/0 <<< 'system \"touch f\"'",
            "python3 /dev/fd/0 <<< 'import os;os.system(\"touch f\")'",
            "python3 <(echo \"import os; os.system('touch f')\")",
            "ssh -F /dev/stdin x <<< 'ProxyCommand touch f'",
        ],
    );
}

#[test]
fn awk_programs_read_wrongly() {
    // awk_code skips `"…"` strings but not regex literals: the `"` in `/"/` opens a
    // "string" that swallows `system(`. mawk's `-W exec FILE` names the program file
    // (awk() skips `-W` as a flag and takes `exec` as the program).
    assert_denied(
        DENY_TOUCH,
        &[
            "awk '/\"/{} BEGIN{system(\"touch f\")}'",
            "mawk -W exec /dev/stdin <<< 'BEGIN{system(\"touch f\")}'",
            "awk -W exec /dev/stdin <<< 'BEGIN{system(\"touch f\")}'",
        ],
    );
}

#[test]
fn environment_names_that_run_programs() {
    // DANGEROUS_ENV misses TAR_OPTIONS (tar reads options from it) and
    // GIT_ALLOW_PROTOCOL (lets the `ext::` transport run a command).
    assert_denied(
        DENY_TOUCH,
        &[
            "TAR_OPTIONS='--checkpoint=1 --checkpoint-action=exec=touch\\ f' tar -cf /dev/null /etc/hostname",
            "GIT_ALLOW_PROTOCOL=ext git ls-remote 'ext::sh -c touch% f'",
        ],
    );
}

#[test]
fn builtins_that_run_a_string() {
    // `mapfile -C CALLBACK` and `compgen -C COMMAND` evaluate a string; `hash -rp`
    // (a cluster) binds a name to any program, and the glob keeps the path from the
    // may_wrap suffix match. ALWAYS_OPAQUE's `hash` test looks for `-p` first only.
    assert_denied(
        DENY_TOUCH,
        &[
            "mapfile -t -c1 -Ctouch arr <<< f",
            "compgen -C'touch f' x",
            "hash -rp /usr/bin/tou?h cat; cat f",
        ],
    );
}

#[test]
fn arithmetic_ignores_single_quotes() {
    // Inside `(( ))` and `$(( ))` bash expands `$(..)` even between single quotes; the
    // grammar reads a raw_string. `[[ ]]` with `-eq`/`-v` evaluates a subscript held
    // in a quoted operand; names_set covers `test`/`[` but not the `[[` keyword.
    assert_denied(
        DENY_TOUCH,
        &[
            "(( '$(touch f)' ))",
            "echo $(( '$(touch f)' ))",
            "[[ 'a[$(touch f)]' -eq 0 ]]",
            "[[ -v 'a[$(touch f)]' ]]",
        ],
    );
}

#[test]
fn values_reaching_arithmetic_from_arrays_input_and_substitutions() {
    // review3 made `x='a[$(..)]'` opaque only for a literal scalar value; an array
    // value, a here-string read into the name, or a substitution's output reach the
    // same arithmetic evaluation.
    assert_denied(
        DENY_TOUCH,
        &[
            "x=('a[$(touch f)]'); (( x ))",
            "declare -a x=('a[$(touch f)]'); (( x ))",
            "read x <<< 'a[$(touch f)]'; [[ $x -eq 0 ]]",
        ],
    );
}

// ---- allow list escapes (critical) ----

#[test]
fn allow_list_escapes() {
    assert_denied(
        ALLOW_LIST,
        &[
            // xargs -e swallows the real program: policy sees `cat x` and
            // `cat -exec …`; xargs runs `touch cat x` and `find cat -exec sh -c …`.
            "xargs -e touch cat x < /dev/null; xargs -e find cat -exec sh -c 'touch f' ';' < /dev/null",
            // A write outside any allowed root: xargs runs `touch cat f`.
            "echo x | xargs -i touch cat f",
            // The piped script is lost in the subshell; `sh` records nothing.
            "ls; echo 'touch f' | (sh)",
            // Arithmetic inside an allowed echo.
            "echo $(( '$(touch f)' ))",
            // `[[ ]]` is no command at all, so nothing needs allowing.
            "echo x; [[ 'a[$(touch f)]' -eq 0 ]]",
            // Reads /etc/shadow from any working directory (see the paths tests).
            "cat ../../../../../../../../etc/shadow",
            "git diff --no-index ../../../../../../../../etc/shadow /dev/null",
        ],
    );
}

// ---- deny_paths (critical) ----

#[test]
fn dotdot_above_an_unknown_start() {
    // analysis::normalize pops nothing above `./` or `~user`, so `../../etc/shadow`
    // becomes `./etc/shadow` and `~root/../etc/shadow` becomes `~root/etc/shadow`.
    assert_denied(
        DENY_PATHS,
        &[
            "cat ../../../../../../../../etc/shadow",
            "cat ~root/../etc/shadow",
            "cat ~/../../../etc/shadow",
            "cat ~+/../../../../../../etc/shadow",
        ],
    );
}

#[test]
fn globs_are_not_normalized() {
    // Analyzer::pattern builds the glob's language from the raw text: `//` and `/../`
    // stay, so `//etc/shado?` never meets `/etc/shadow`.
    assert_denied(DENY_PATHS, &["cat //etc/shado?", "cat /tmp/../etc/shado?"]);
}

#[test]
fn directories_relative_names_are_not_placed_in() {
    // A cd to a glob or expansion places nothing ("still checked where written": as
    // `./shadow`); a relative cd is normalized against the call's directory, not the
    // previous cd; env -C and git -C change directory unseen.
    assert_denied(
        DENY_PATHS,
        &[
            "cd /et? && cat shadow",
            "cd /; cd etc; cat shadow",
            "env -C /etc cat shadow",
            "git -C / diff --no-index etc/shadow /dev/null",
        ],
    );
}

#[test]
fn shopt_changes_what_globs_match() {
    // patterns::word_regex assumes the default glob: case-sensitive, `*`/`?` never
    // match a leading dot. nocaseglob and dotglob change both.
    assert_denied(
        DENY_PATHS,
        &[
            "shopt -s nocaseglob; cat /etc/SHADO?",
            "shopt -s nocaseglob; cat ~/.SS?/id_rsa",
            "shopt -s dotglob; cat ~/*/id_rsa",
        ],
    );
}

#[test]
fn working_directories_relative_or_denied() {
    // A relative working_directory is joined without `./`, so `.ssh/id_rsa` has no `/`
    // before `.ssh`; `../../etc` keeps its `..`; the working directory itself is no
    // path of the command, so `grep -r ''` (no operand: `.`) reads it whole.
    let (policy, host) = policy_of(DENY_PATHS);
    let mut through = Vec::new();
    for (directory, command) in [
        (".ssh", "cat id_rsa"),
        ("../../etc", "cat shadow"),
        ("/root/.ssh", "grep -r ''"),
    ] {
        let analysis = analyze_in(&policy, command, Some(directory));
        let decision = policy.evaluate(&host, "tester", &analysis, CommandOrigin::Caller);
        if decision.decision != Verdict::Denied {
            through.push(format!(
                "{command:?} in {directory:?} → {:?}",
                decision.decision
            ));
        }
    }
    assert!(through.is_empty(), "let through:\n{}", through.join("\n"));
}

// ---- destructive commands without a preview (high) ----

#[test]
fn destructive_commands_read_as_read_only() {
    assert_destructive(&[
        // builtin_class: any `-0`/`-l`/`-L` anywhere makes kill read-only; bash's kill
        // still sends SIGKILL to 1234 (then complains about `-l`).
        "kill -9 1234 -l",
        // xargs -e: policy classes `cat`, xargs runs `rm cat /srv/data`.
        "echo x | xargs -e rm cat /srv/data",
        // loginctl is READ_ONLY with no writes() case: this kills the user's processes.
        "loginctl terminate-user alice",
    ]);
}

#[test]
fn destructive_commands_the_table_misses() {
    assert_destructive(&[
        // Writing a block device is destructive only as a redirect.
        "cp /dev/zero /dev/sda",
        "tee /dev/sda < /dev/zero",
        // `> f` truncates and is destructive; these truncate the same way.
        "tee /srv/data.db < /dev/null",
        "cp /dev/null /srv/data.db",
        // Power state changes not in the systemctl list.
        "systemctl suspend",
        "systemctl kexec",
        "systemctl start poweroff.target",
        // Force push / delete by refspec (`-f` is listed, `+` is not).
        "git push origin +main",
        "git push origin :main",
        // sysrq `o` powers off; appending is enough.
        "echo o >> /proc/sysrq-trigger",
        "rsync -a --delete /empty/ /srv/data/",
    ]);
}

// ---- hangs (medium) ----

#[test]
fn may_wrap_suffixes_are_bounded() {
    // rules::matches re-joins argv[at..] for every `at` of an unknown program: work
    // quadratic in its arguments (10,000 words, 20 KB, take ~20 s in a debug build;
    // 1 MB about 2,500 times that). Such a command should be bounded, as MAX_PATHS
    // bounds paths: refused as too large to check.
    let command = format!("foo {}", "a ".repeat(5000));
    assert_denied(DENY_TOUCH, &[command.as_str()]);
}

#[test]
fn a_path_longer_than_path_max_is_bounded() {
    // path_verdict matches every parent of a path against every rule: quadratic in
    // its length (`a/` × 20,000, 40 KB: ~12 s debug). No path over PATH_MAX (4096)
    // can be opened, so such a word should be refused as too large to check.
    let command = format!("cat {}b", "a/".repeat(3000));
    assert_denied(DENY_PATHS, &[command.as_str()]);
}

#[test]
fn glob_work_is_bounded() {
    // Each glob is built into a DFA and walked against each rule on each host, up to
    // MAX_PAIRS × 256 steps per pair: 50 words of 2,000 `?` (100 KB) take ~15 s per
    // host in a debug build. A budget on pattern work should refuse this.
    let word = format!("/x/{}", "?".repeat(2000));
    let command = format!("cat {}", vec![word.as_str(); 50].join(" "));
    assert_denied(DENY_PATHS, &[command.as_str()]);
}
