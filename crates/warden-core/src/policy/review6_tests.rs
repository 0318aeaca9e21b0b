//! Adversarial review 6: each test is one bypass that gets through today, asserting
//! the safe outcome. Every command here was run in bash 5.2 in a temp dir and really
//! ran the program (created `f`), read the denied file, or did the damage named.

use super::review_support::*;
use super::*;

const STRUCTURED: &str = "policy:\n  deny_commands:\n    - {program: rm, flags: ['r|R|recursive'], args: ['**', '/*', '**']}\n    - {program: sed, flags: ['i|in-place']}\n    - {program: touch, flags: ['c|no-create']}\n";

fn decision_with_stdin(policy: &str, command: &str, stdin: &str) -> Verdict {
    let (policy, host) = policy_of(policy);
    let analysis = policy.analyze(Input {
        shell: Some(command),
        argv: None,
        env: &[],
        stdin: Some(stdin),
        working_directory: None,
    });
    policy
        .evaluate(&host, "tester", &analysis, CommandOrigin::Caller)
        .decision
}

#[test]
fn ampersand_greater_than_a_number_is_a_file() {
    // `&>WORD` has no descriptor-duplicating form: `echo x &>1` creates and
    // truncates a file named `1`. `redirect()` drops `&>` with a `number` target as
    // if it were `>&1`, so the write is neither checked against allowed_roots nor
    // classed; only `>&N`/`<&N` duplicate.
    assert_denied(ALLOW_LIST, &["echo x &>1", "echo x &> 2", "ls &>3"]);
    assert_destructive(&[": &>1", "cat /dev/null &>5"]);
}

#[test]
fn structured_flags_spelt_as_abbreviated_long_options() {
    // getopt_long takes any unambiguous prefix (`rm --recu` is `--recursive`, it
    // removed a directory in bash 5.2); `has_flag` compares the long name exactly.
    assert_denied(
        STRUCTURED,
        &[
            "rm --recu /srv",
            "rm --recursiv -f /srv",
            "sed --in-pl s/a/b/ f",
            "touch --no-c f",
        ],
    );
}

#[test]
fn structured_flags_in_a_cluster_with_a_glued_value() {
    // `sed -i.bak` is `-i` with suffix `.bak` (edits f, writes f.bak), `touch
    // -cr/etc/hostname` is `-c -r /etc/hostname`; `has_flag` refuses any cluster
    // holding a non-alphanumeric character, so the flag is never seen.
    assert_denied(
        STRUCTURED,
        &[
            "sed -i.bak s/a/b/ f",
            "sed -ni.bak p f",
            "touch -cr/etc/hostname f",
        ],
    );
}

#[test]
fn a_tilde_argument_is_an_expansion_for_structured_args() {
    // `~` is $HOME (`/root`, `/home/u`), but the word is not marked as expanding,
    // so the deny rule's `/*` glob meets the literal `~` and misses. With the
    // working directory known as `/`, `srv` is `/srv` too.
    assert_denied(
        STRUCTURED,
        &[
            "rm -rf ~",
            "rm -rf ~/",
            "rm -rf ~root",
            "cd / && rm -rf srv",
        ],
    );
}

#[test]
fn the_last_stdin_redirect_is_what_a_shell_reads() {
    // bash applies redirections left to right, so the last one on fd 0 is stdin:
    // both of these ran `touch` in bash 5.2, while warden reads the first
    // here-string as the script.
    assert_denied(
        DENY_TOUCH,
        &[
            "bash <<< 'echo' 0<<< 'touch f'",
            "bash <<< 'echo' <<'A'\ntouch g\nA",
        ],
    );
    assert_denied(ALLOW_LIST, &["bash <<< 'echo x' <<'A'\ntouch g\nA"]);
    // A heredoc on fd 3 is not stdin: bash reads the call's stdin (`touch f`, run
    // in bash 5.2), while warden parses the fd-3 body as the script.
    assert_eq!(
        decision_with_stdin(DENY_TOUCH, "bash 3<<'B'\necho x\nB", "touch f\n"),
        Verdict::Denied
    );
}

#[test]
fn database_clients_dropping_data() {
    // `dropdb` and `redis-cli FLUSHALL` are destructive; the same damage through
    // the SQL/JS a client is handed on the command line is only mutating.
    assert_destructive(&[
        "mysql -e 'DROP DATABASE shop'",
        "psql -c 'DROP DATABASE shop'",
        "psql -c 'TRUNCATE orders'",
        "mysqladmin -f drop shop",
        "mongosh --eval 'db.dropDatabase()'",
        "sqlite3 /srv/app.db 'DROP TABLE users'",
        "dropuser app",
        "redis-cli DEL session:1",
        "redis-cli shutdown",
    ]);
}

#[test]
fn container_and_infrastructure_teardown() {
    // `docker compose down -v` is destructive but the v1 spelling is not; helm,
    // terraform, libvirt, zpool and cloud CLIs delete what they manage.
    assert_destructive(&[
        "docker-compose down -v",
        "podman system reset -f",
        "helm uninstall web",
        "helm delete web",
        "terraform destroy -auto-approve",
        "virsh destroy vm1",
        "zpool destroy tank",
        "kubectl scale deploy web --replicas=0",
        "etcdctl del --prefix ''",
        "gcloud compute instances delete vm1",
        "az group delete -n rg1",
    ]);
}

#[test]
fn services_packages_and_accounts_by_other_spellings() {
    // `service x stop`, `apt remove`, `crontab -r`, `userdel` are destructive; these
    // spellings of the same operations are only mutating.
    assert_destructive(&[
        "/etc/init.d/nginx stop",
        "rc-service nginx stop",
        "apk del nginx",
        "pacman -R nginx",
        "npm uninstall express",
        "gem uninstall rails",
        "crontab /dev/null",
        "crontab -ri",
        "passwd -d root",
        "usermod -L deploy",
        "ip addr flush dev eth0",
        "ifdown eth0",
        "nmcli con delete office",
        "git rm -r .",
        "mv -f /tmp/x /etc/passwd",
        "chmod -R 000 /srv",
    ]);
}

#[test]
fn unset_evaluates_a_quoted_array_subscript() {
    // With `a` an indexed array, `unset 'a[EXPR]'` evaluates EXPR arithmetically,
    // and the `$(..)` in it runs (created `f` in bash 5.2). `declaration()` only
    // checks `NAME=value` words for held code, so the quoted subscript passes.
    assert_denied(
        DENY_TOUCH,
        &[
            "a=(1); unset 'a[$(touch f)]'",
            "declare -a a; unset 'a[$(touch f)]'",
            "a=(1); unset -v 'a[$(touch f)]'",
        ],
    );
    assert_denied(DENY_PATHS, &["a=(1); unset 'a[$(cat /etc/shadow >&2)]'"]);
    assert_destructive(&["a=(1); unset 'a[$(rm -rf /srv)]'"]);
}
