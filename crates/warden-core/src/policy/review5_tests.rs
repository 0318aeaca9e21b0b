//! Adversarial review 5: each test is one bypass that gets through today, asserting
//! the safe outcome. Every command here was run in bash 5.2 in a temp dir and really
//! ran the program (created `f`), read the denied file, or did the damage named.

use super::review_support::*;

#[test]
fn split_filter_runs_a_shell_command() {
    // GNU split `--filter=COMMAND` runs COMMAND with `$SHELL -c` per chunk; split is
    // known (read-only), so no tail search, and the option's value is never parsed.
    assert_denied(
        DENY_TOUCH,
        &[
            "split --filter='touch f' /etc/hostname",
            "split -n1 --filter='touch f' /etc/hostname",
            "split --filt='touch f' /etc/hostname",
        ],
    );
}

#[test]
fn ed_reads_shell_escapes_from_stdin() {
    // ed's `!cmd` runs cmd with sh; ed reads its commands from stdin (here-string).
    assert_denied(
        DENY_TOUCH,
        &["ed -s <<< '!touch f'", "ed -s /dev/null <<< '!touch f'"],
    );
}

#[test]
fn make_runs_recipes_from_stdin_and_eval() {
    // A makefile is a script: `-f /dev/stdin`/`-f -` read it from the here-string,
    // `--eval`/`-E` takes it inline, and `$(shell …)` runs at parse time.
    assert_denied(
        DENY_TOUCH,
        &[
            "make -f /dev/stdin <<< 'all:;touch f'",
            "make -f - <<< 'all:;touch f'",
            "make --eval='x:=$(shell touch f)' -f /dev/null",
            "make -E 'x:=$(shell touch f)' -f /dev/null",
        ],
    );
}

#[test]
fn sqlite3_dot_commands_run_programs() {
    // sqlite3's `.shell`/`.system` (as an argument or via `-cmd`) run a shell command.
    assert_denied(
        DENY_TOUCH,
        &[
            "sqlite3 :memory: '.shell touch f'",
            "sqlite3 :memory: '.system touch f'",
            "sqlite3 -cmd '.shell touch f' :memory: .q",
        ],
    );
}

#[test]
fn tilde_after_home_is_reassigned() {
    // `~` and a bare `cd` follow $HOME as the script sets it; HOME is not a refused
    // name, and `~/shadow` is checked as if HOME were still unknown/unchanged.
    let commands = [
        "HOME=/etc; cat ~/shadow",
        "HOME=/; cat ~/etc/shadow",
        "export HOME=/etc; cat ~/shadow",
        "read HOME <<< /etc; cat ~/shadow",
        "for HOME in /etc; do cat ~/shadow; done",
        "HOME=/etc; cd; cat shadow",
        "HOME=/etc cd; cat shadow",
        "HOME=/etc; cd ~; cat shadow",
    ];
    assert_denied(DENY_PATHS, &commands);
    assert_denied(
        ALLOW_LIST,
        &["HOME=/etc; cat ~/shadow", "HOME=/etc; grep '' ~/shadow"],
    );
}

#[test]
fn tilde_minus_and_plus_follow_oldpwd_and_pwd() {
    // `~-` is $OLDPWD (the previous cd), `~+` is $PWD; both can be set or steered.
    assert_denied(
        DENY_PATHS,
        &[
            "cd /etc; cd /tmp; cat ~-/shadow",
            "OLDPWD=/etc; cat ~-/shadow",
            "PWD=/etc; cat ~+/shadow",
        ],
    );
}

#[test]
fn bracket_classes_and_escapes_in_globs() {
    // `[[:alpha:]]`, `[[:lower:]]`, `[\w]` and `[]w]` all match `w`, but the glob
    // language built in patterns.rs does not read them as bash does.
    assert_denied(
        DENY_PATHS,
        &[
            "cat /etc/shado[[:alpha:]]",
            "cat /etc/shado[[:lower:]]",
            "cat /etc/[[:alpha:]]hadow",
            "cat ~/.ss[[:alpha:]]/id_rsa",
            "cat /etc/shado[\\w]",
            "cat /etc/shado[]w]",
        ],
    );
    assert_denied(
        ALLOW_LIST,
        &[
            "cat /etc/shado[[:alpha:]]",
            "echo x | grep -f /etc/shado[[:alpha:]]",
        ],
    );
}

#[test]
fn git_commands_that_discard_work() {
    // Each throws away uncommitted changes, a stash, or an unmerged branch for good.
    assert_destructive(&[
        "git checkout -- .",
        "git restore .",
        "git stash drop",
        "git stash clear",
        "git branch -D main",
        "git reset --merge HEAD~5",
        "git reset --keep HEAD~5",
        "git checkout -B main HEAD~5",
        "git push --mirror origin",
    ]);
}

#[test]
fn emptying_a_file_by_option() {
    // Like `cp /dev/null FILE` and `tee FILE` (classed destructive), each leaves FILE
    // empty; they are read as mutating.
    assert_destructive(&[
        "sed -i d /srv/data.db",
        "sort -o /srv/data.db /dev/null",
        "install /dev/null /srv/data.db",
        "ln -sf /dev/null /srv/data.db",
        "fallocate -p -o 0 -l 1G /srv/data.db",
    ]);
}

#[test]
fn dotdot_after_proc_root_is_normalized_first() {
    // The kernel resolves `/proc/self/root` to `/`, and `/..` stays `/`, so this is
    // `/etc/shadow`; lexical normalization first makes it `/proc/self/etc/shadow`,
    // and the `/proc/*/root/x` → `/x` rule no longer sees it.
    assert_denied(DENY_PATHS, &["cat /proc/self/root/../etc/shadow"]);
    assert_denied(ALLOW_LIST, &["grep '' /proc/self/root/../etc/shadow"]);
}
