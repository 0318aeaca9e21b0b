//! Command classes: read-only, mutating or destructive, per simple command. The
//! built-in table below names what is known; a program it does not name is mutating
//! (warden cannot know it is harmless). Operators add to it with `policy.classes`,
//! which is consulted first. Classes drive previews (a destructive command needs
//! `confirm: true`), appear in `policy_test` and in the audit record.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::wrappers::basename;

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    #[default]
    ReadOnly,
    Mutating,
    Destructive,
}

impl Class {
    pub fn name(self) -> &'static str {
        match self {
            Class::ReadOnly => "read_only",
            Class::Mutating => "mutating",
            Class::Destructive => "destructive",
        }
    }
}

/// Programs that only read (as long as no argument below makes them write).
const READ_ONLY: &[&str] = &[
    "ls",
    "cat",
    "head",
    "tail",
    "grep",
    "egrep",
    "fgrep",
    "zgrep",
    "rg",
    "ag",
    "less",
    "more",
    "ps",
    "pgrep",
    "pidof",
    "top",
    "htop",
    "df",
    "du",
    "free",
    "uptime",
    "uname",
    "hostname",
    "hostnamectl",
    "id",
    "whoami",
    "who",
    "w",
    "last",
    "lastlog",
    "date",
    "printenv",
    "echo",
    "printf",
    "pwd",
    "stat",
    "file",
    "wc",
    "sort",
    "uniq",
    "cut",
    "tr",
    "awk",
    "gawk",
    "mawk",
    "sed",
    "jq",
    "yq",
    "diff",
    "cmp",
    "comm",
    "md5sum",
    "sha1sum",
    "sha256sum",
    "sha512sum",
    "b2sum",
    "cksum",
    "base64",
    "xxd",
    "od",
    "hexdump",
    "strings",
    "readlink",
    "realpath",
    "dirname",
    "basename",
    "which",
    "whereis",
    "type",
    "command",
    "test",
    "[",
    "[[",
    "true",
    "false",
    ":",
    "sleep",
    "seq",
    "expr",
    "journalctl",
    "ss",
    "netstat",
    "lsblk",
    "blkid",
    "lsof",
    "lscpu",
    "lsmem",
    "lsmod",
    "lspci",
    "lsusb",
    "findmnt",
    "getent",
    "groups",
    "nproc",
    "arch",
    "vmstat",
    "iostat",
    "mpstat",
    "sar",
    "env",
    "tac",
    "nl",
    "fold",
    "column",
    "paste",
    "join",
    "rev",
    "zcat",
    "bzcat",
    "xzcat",
    "zless",
    "dig",
    "host",
    "nslookup",
    "ping",
    "traceroute",
    "tracepath",
    "curl",
    "wget",
    "openssl",
    "ldd",
    "locale",
    "timedatectl",
    "loginctl",
    "dmidecode",
    "sensors",
    "getconf",
    "tput",
    "yes",
    "cal",
    "let",
    "read",
    "local",
    "export",
    "declare",
    "typeset",
    "readonly",
    "set",
    "shift",
    "unset",
    "return",
    "exit",
    "break",
    "continue",
    "wait",
    "jobs",
    "cd",
    "pushd",
    "popd",
    "dirs",
    "umask",
    "ulimit",
    "getfacl",
    "lsattr",
    "namei",
    "tree",
    "find",
    "git",
    "docker",
    "systemctl",
    "ip",
    "mount",
    "dmesg",
    "crontab",
    "sysctl",
    "apt",
    "apt-cache",
    "dpkg",
    "dpkg-query",
    "rpm",
    "yum",
    "dnf",
    "pip",
    "pip3",
    "npm",
    "ifconfig",
    "route",
    "iptables",
    "ip6tables",
    "nft",
    "service",
    "tee",
    "xargs",
    "watch",
    "sudo",
    "time",
    "timeout",
    "nice",
    "nohup",
];

/// `iptables` options that drop rules, chains or counters, or change a default.
const IPTABLES_DESTRUCTIVE: &[&str] = &[
    "-F",
    "-X",
    "-D",
    "-Z",
    "--flush",
    "--delete",
    "--delete-chain",
    "-P",
];

/// Programs (and subcommands or options) that destroy data or stop services. With
/// an empty list the program always is; otherwise when one of the words is an
/// argument.
const DESTRUCTIVE: &[(&str, &[&str])] = &[
    ("rm", &[]),
    ("unlink", &[]),
    ("dd", &[]),
    ("shred", &[]),
    ("truncate", &[]),
    ("wipefs", &[]),
    ("mkfs", &[]),
    ("mke2fs", &[]),
    ("mkswap", &[]),
    ("fdisk", &[]),
    ("sfdisk", &[]),
    ("gdisk", &[]),
    ("sgdisk", &[]),
    ("parted", &[]),
    ("blkdiscard", &[]),
    ("pkill", &[]),
    ("killall", &[]),
    ("shutdown", &[]),
    ("reboot", &[]),
    ("poweroff", &[]),
    ("halt", &[]),
    ("userdel", &[]),
    ("groupdel", &[]),
    ("deluser", &[]),
    ("delgroup", &[]),
    ("lvremove", &[]),
    ("vgremove", &[]),
    ("pvremove", &[]),
    ("dropdb", &[]),
    ("swapoff", &[]),
    ("kill", &[]),
    ("init", &["0", "6"]),
    ("telinit", &["0", "6"]),
    (
        "systemctl",
        &[
            "stop",
            "restart",
            "disable",
            "mask",
            "kill",
            "isolate",
            "poweroff",
            "reboot",
            "halt",
            "try-restart",
            "reload-or-restart",
            "rescue",
            "emergency",
            "suspend",
            "hibernate",
            "hybrid-sleep",
            "suspend-then-hibernate",
            "kexec",
            "default",
            "exit",
            "switch-root",
        ],
    ),
    ("service", &["stop", "restart"]),
    ("apt", &["remove", "purge", "autoremove"]),
    (
        "apt-get",
        &["remove", "purge", "autoremove", "dist-upgrade"],
    ),
    ("aptitude", &["remove", "purge"]),
    ("yum", &["remove", "erase", "autoremove"]),
    ("dnf", &["remove", "erase", "autoremove"]),
    ("zypper", &["remove", "rm"]),
    ("rpm", &["-e", "--erase"]),
    ("dpkg", &["-r", "-P", "--remove", "--purge"]),
    ("snap", &["remove"]),
    ("pip", &["uninstall"]),
    ("pip3", &["uninstall"]),
    ("npm", &["uninstall", "un", "remove", "rm", "r", "prune"]),
    ("iptables", IPTABLES_DESTRUCTIVE),
    ("ip6tables", IPTABLES_DESTRUCTIVE),
    ("nft", &["flush", "delete"]),
    ("ufw", &["reset", "disable", "delete"]),
    ("crontab", &["-r"]),
    ("docker", &["rm", "rmi", "kill", "stop", "prune", "down"]),
    ("podman", &["rm", "rmi", "kill", "stop", "prune", "reset"]),
    ("kubectl", &["delete", "drain"]),
    (
        "git",
        &["clean", "--hard", "--force", "-f", "--force-with-lease"],
    ),
    ("find", &["-delete"]),
    ("zfs", &["destroy"]),
    ("btrfs", &["delete"]),
    ("redis-cli", &["flushall", "flushdb", "FLUSHALL", "FLUSHDB"]),
    ("umount", &[]),
    ("dropuser", &[]),
    ("mysqladmin", &["drop", "shutdown"]),
    ("docker-compose", &["down", "rm", "kill", "stop"]),
    ("helm", &["uninstall", "delete", "rollback"]),
    ("terraform", &["destroy", "-destroy"]),
    ("tofu", &["destroy", "-destroy"]),
    (
        "virsh",
        &[
            "destroy",
            "undefine",
            "shutdown",
            "reboot",
            "vol-delete",
            "pool-destroy",
        ],
    ),
    ("zpool", &["destroy", "labelclear", "offline"]),
    ("etcdctl", &["del"]),
    ("gcloud", &["delete"]),
    ("az", &["delete"]),
    ("apk", &["del"]),
    ("gem", &["uninstall"]),
    ("rc-service", &["stop", "restart"]),
    ("ifdown", &[]),
    ("nmcli", &["delete", "down"]),
    (
        "passwd",
        &["-d", "--delete", "-l", "--lock", "-e", "--expire"],
    ),
    ("usermod", &["-L", "--lock", "-e", "--expiredate"]),
    (
        "loginctl",
        &[
            "terminate-user",
            "terminate-session",
            "terminate-seat",
            "kill-user",
            "kill-session",
            "poweroff",
            "reboot",
        ],
    ),
];

/// Whether the built-in table knows `name` (a program it does not know may be a
/// wrapper of what follows it).
pub fn known(name: &str) -> bool {
    READ_ONLY.contains(&name)
        || DESTRUCTIVE.iter().any(|(known, _)| *known == name)
        || name.starts_with("mkfs.")
}

/// The class of one simple command's argv (program first) by the built-in table.
pub fn builtin_class(argv: &[String]) -> Class {
    let Some(program) = argv.first() else {
        return Class::ReadOnly;
    };
    // `/etc/init.d/nginx stop`: a service script.
    if program.starts_with("/etc/init.d/")
        && argv[1..].iter().any(|arg| {
            matches!(
                arg.as_str(),
                "stop" | "restart" | "force-stop" | "force-reload"
            )
        })
    {
        return Class::Destructive;
    }
    let name = basename(program);
    // `mkfs.ext4`, `mkfs.xfs`: every mkfs is.
    let name = if name.starts_with("mkfs.") {
        "mkfs"
    } else {
        name
    };
    let args = &argv[1..];
    // `kill -0 PID` tests, `kill -l` lists: only as kill's first word (`kill -9 1 -l`
    // still kills).
    if name == "kill"
        && args
            .first()
            .is_some_and(|arg| matches!(arg.as_str(), "-0" | "-l" | "-L"))
    {
        return Class::ReadOnly;
    }
    if let Some(class) = overwrites(name, args) {
        return class;
    }
    if let Some((_, words)) = DESTRUCTIVE.iter().find(|(known, _)| *known == name)
        && (words.is_empty() || args.iter().any(|arg| words.contains(&arg.as_str())))
    {
        return Class::Destructive;
    }
    if READ_ONLY.contains(&name) && !writes(name, args) {
        return Class::ReadOnly;
    }
    Class::Mutating
}

/// Commands that destroy by what they write to: a block device, /proc or /sys
/// (`cp /dev/zero /dev/sda`, `tee /proc/sysrq-trigger`); a file truncated like `>`
/// (`tee FILE`, `cp /dev/null FILE`); a mirror that deletes (`rsync --delete`); a
/// force or delete push (`git push origin +main`, `:main`); a power target.
fn overwrites(name: &str, args: &[String]) -> Option<Class> {
    let device = |arg: &String| {
        let arg = arg.split_once('=').map_or(arg.as_str(), |(_, value)| value);
        (arg.starts_with("/dev/") && !matches!(arg, "/dev/null" | "/dev/stdout" | "/dev/stderr"))
            || arg.starts_with("/proc/")
            || arg.starts_with("/sys/")
    };
    let writer = matches!(
        name,
        "cp" | "dd" | "tee" | "install" | "mv" | "rsync" | "ln"
    );
    let destructive = (writer && args.iter().skip(1).any(device))
        || (name == "dd" && args.iter().any(device))
        || (name == "tee"
            && !args.iter().any(|arg| arg == "-a" || arg == "--append")
            && args.iter().any(|arg| !arg.starts_with('-')))
        || (name == "cp"
            && args
                .iter()
                .any(|arg| arg == "/dev/null" || arg == "/dev/zero"))
        || (name == "rsync"
            && args
                .iter()
                .any(|arg| arg.starts_with("--del") || arg.starts_with("--remove-source")))
        // In-place edits and outputs that replace a file, like `> FILE`.
        || (matches!(name, "sed" | "gsed" | "perl")
            && args.iter().any(|arg| {
                arg.starts_with("--in-place")
                    || (arg.starts_with('-') && !arg.starts_with("--") && arg.contains('i'))
            }))
        || (name == "sort" && args.iter().any(|arg| arg.starts_with("-o") || arg.starts_with("--output")))
        || (name == "install" && args.iter().any(|arg| arg.starts_with("/dev/")))
        || (name == "ln"
            && args
                .iter()
                .any(|arg| arg == "--force" || (arg.starts_with('-') && !arg.starts_with("--") && arg.contains('f'))))
        || (name == "fallocate"
            && args.iter().any(|arg| {
                matches!(arg.as_str(), "-p" | "--punch-hole" | "-c" | "--collapse-range" | "-z" | "--zero-range" | "-d" | "--dig-holes")
            }))
        || (name == "git" && git_discards(args))
        // SQL or JS that drops or deletes, given on the command line.
        || (matches!(
            name,
            "mysql" | "mariadb" | "psql" | "sqlite3" | "mongosh" | "mongo" | "clickhouse-client" | "cqlsh"
        ) && args.iter().any(|arg| {
            let upper = arg.to_ascii_uppercase();
            ["DROP ", "TRUNCATE", "DELETE ", "DROPDATABASE", ".DROP(", "REMOVE(", "DELETEMANY", "DELETEONE"]
                .iter()
                .any(|word| upper.contains(word))
        }))
        || (name == "redis-cli"
            && args.iter().any(|arg| {
                matches!(
                    arg.to_ascii_lowercase().as_str(),
                    "del" | "unlink" | "flushall" | "flushdb" | "shutdown" | "config" | "swapdb"
                )
            }))
        // `crontab FILE` replaces the table; `-r` in a cluster removes it.
        || (name == "crontab"
            && args.iter().any(|arg| {
                !arg.starts_with('-') || (!arg.starts_with("--") && arg.contains('r'))
            }))
        || (name == "ip"
            && (args.iter().any(|arg| arg == "flush")
                || (args.iter().any(|arg| arg == "link") && args.iter().any(|arg| arg == "down"))))
        || (name == "kubectl"
            && args.iter().any(|arg| arg == "--replicas=0" || arg == "drain" || arg == "cordon"))
        || (name == "aws"
            && args.iter().any(|arg| {
                arg.starts_with("delete") || arg.starts_with("terminate") || arg == "rm" || arg == "rb"
            }))
        || (name == "pacman" && args.iter().any(|arg| arg.starts_with("-R")))
        // A move replaces its target if it exists, and warden cannot look.
        || name == "mv"
        || (name == "tar" && args.iter().any(|arg| arg.starts_with("--remove-files")))
        || (name == "zip"
            && args.iter().any(|arg| {
                arg == "--move" || (arg.starts_with('-') && !arg.starts_with("--") && arg.contains('m'))
            }))
        || (name == "journalctl" && args.iter().any(|arg| arg.starts_with("--vacuum")))
        || (name == "ip" && args.iter().any(|arg| matches!(arg.as_str(), "del" | "delete")))
        || (matches!(name, "chmod" | "chown" | "chgrp")
            && args.iter().any(|arg| {
                arg == "-R" || arg == "--recursive" || arg == "000" || arg == "0000"
            }))
        || (name == "git"
            && args.first().is_some_and(|arg| arg == "push")
            && args.iter().skip(1).any(|arg| {
                arg.starts_with('+') || arg.starts_with(':') || arg == "--delete" || arg == "-d"
            }))
        || (name == "systemctl"
            && args.iter().any(|arg| {
                matches!(
                    arg.as_str(),
                    "poweroff.target"
                        | "reboot.target"
                        | "halt.target"
                        | "rescue.target"
                        | "emergency.target"
                        | "kexec.target"
                        | "shutdown.target"
                )
            }));
    destructive.then_some(Class::Destructive)
}

/// Git commands that throw work away: checking out or restoring over changes,
/// dropping stashes, deleting branches by force, resets that discard, mirror pushes.
fn git_discards(args: &[String]) -> bool {
    let has = |options: &[&str]| args.iter().any(|arg| options.contains(&arg.as_str()));
    match args.first().map(String::as_str) {
        Some("rm") => true,
        Some("switch") => has(&["--discard-changes", "-f", "--force", "-C", "--force-create"]),
        Some("update-ref") => has(&["-d", "--delete"]),
        Some("checkout") => has(&["--", ".", "-f", "--force", "-B", "-p", "--patch"]),
        Some("restore") => true,
        Some("stash") => has(&["drop", "clear"]),
        Some("branch") => has(&["-D", "--delete", "-d", "-M", "-C"]) || has(&["-f", "--force"]),
        Some("reset") => has(&["--hard", "--merge", "--keep"]),
        Some("push") => has(&[
            "--mirror",
            "--prune",
            "--force-with-lease",
            "--force-if-includes",
        ]),
        Some("tag") => has(&["-d", "--delete", "-f", "--force"]),
        Some("worktree") => has(&["remove", "prune"]),
        Some("gc" | "prune" | "reflog") => {
            has(&["--prune=now", "expire", "delete"])
                || args.first().is_some_and(|arg| arg == "prune")
        }
        _ => false,
    }
}

/// Arguments that make a reading program write.
fn writes(name: &str, args: &[String]) -> bool {
    let has = |options: &[&str]| {
        args.iter().any(|arg| {
            options
                .iter()
                .any(|option| arg == option || arg.starts_with(&format!("{option}=")))
        })
    };
    match name {
        "sed" | "gsed" => args.iter().any(|arg| {
            arg.starts_with("-i")
                || arg.starts_with("--in-place")
                || (arg.starts_with('-') && !arg.starts_with("--") && arg.contains('i'))
        }),
        "curl" => has(&[
            "-o",
            "-O",
            "--output",
            "--remote-name",
            "-T",
            "--upload-file",
            "-X",
            "--request",
            "-d",
            "--data",
            "-F",
            "--form",
        ]),
        "wget" => !has(&["-O-", "-q", "--spider"]) || has(&["--post-data", "--method"]),
        "tee" => args.iter().any(|arg| !arg.starts_with('-')),
        "sort" => has(&["-o", "--output"]),
        "date" => has(&["-s", "--set"]),
        "hostname" | "hostnamectl" | "timedatectl" => {
            !args.is_empty() && !has(&["status", "-f", "-s", "-i", "-I", "-A"])
        }
        "ip" => args.iter().any(|arg| {
            matches!(
                arg.as_str(),
                "add" | "del" | "delete" | "set" | "flush" | "change" | "replace"
            )
        }),
        "iptables" | "ip6tables" => !has(&["-L", "-S", "--list", "--list-rules"]),
        "nft" => !args.iter().any(|arg| arg == "list"),
        "systemctl" => !args.iter().any(|arg| {
            matches!(
                arg.as_str(),
                "status"
                    | "show"
                    | "is-active"
                    | "is-enabled"
                    | "is-failed"
                    | "list-units"
                    | "list-unit-files"
                    | "list-timers"
                    | "list-sockets"
                    | "cat"
                    | "list-dependencies"
                    | "--version"
            )
        }),
        "service" => !args
            .iter()
            .any(|arg| arg == "status" || arg == "--status-all"),
        "docker" => !args.iter().any(|arg| {
            matches!(
                arg.as_str(),
                "ps" | "images"
                    | "logs"
                    | "inspect"
                    | "version"
                    | "info"
                    | "stats"
                    | "top"
                    | "port"
                    | "diff"
                    | "history"
            )
        }),
        "git" => {
            !args.iter().any(|arg| {
                matches!(
                    arg.as_str(),
                    "status"
                        | "log"
                        | "diff"
                        | "show"
                        | "branch"
                        | "rev-parse"
                        | "remote"
                        | "describe"
                        | "blame"
                        | "ls-files"
                        | "shortlog"
                        | "tag"
                        | "grep"
                        | "config"
                        | "--version"
                )
            }) || has(&["--set-upstream-to", "-d", "-D", "--add", "--unset"])
        }
        "apt" | "apt-get" | "dnf" | "yum" | "pip" | "pip3" | "npm" => !args.iter().any(|arg| {
            matches!(
                arg.as_str(),
                "list"
                    | "show"
                    | "search"
                    | "info"
                    | "policy"
                    | "--version"
                    | "freeze"
                    | "ls"
                    | "view"
                    | "history"
            )
        }),
        "dpkg" | "rpm" => has(&["-i", "--install", "-U", "--upgrade", "--configure", "-F"]),
        "mount" => !args.is_empty() && !has(&["-l", "--list"]),
        "dmesg" => has(&["-c", "-C", "--clear", "--read-clear"]),
        "crontab" => !args.iter().any(|arg| arg == "-l"),
        "sysctl" => args
            .iter()
            .any(|arg| arg.contains('=') || arg == "-w" || arg == "-p"),
        "route" | "ifconfig" => args.len() > 1,
        "find" => has(&["-fprint", "-fprint0", "-fprintf", "-fls"]),
        "journalctl" => has(&[
            "--vacuum-size",
            "--vacuum-time",
            "--vacuum-files",
            "--rotate",
            "--flush",
            "--relinquish-var",
        ]),
        _ => false,
    }
}
