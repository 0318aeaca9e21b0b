//! Programs that run another program: `sudo`, `env`, `timeout`, `sh -c`, `xargs`, …
//! [`look_through`] says what a simple command really runs, so a rule written for
//! `touch` also holds for `env X=1 nice timeout 5 sudo touch`.
//!
//! Each wrapper's options are read the way the wrapper reads them (which options take
//! a value), so the word after them is the program. What cannot be read that way —
//! an expansion before the program, an option we do not know that may take a value —
//! is opaque: guessing would let a command slip past.

use super::shell::Word;

/// What a simple command runs, one level down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Not a wrapper: the command is the program.
    Program,
    /// Runs the command `inner` (words of this command from an index on). `env`
    /// assignments are returned for their names to be checked.
    Runs {
        wrapper: Wrapper,
        assignments: Vec<String>,
        inner: Vec<Word>,
    },
    /// Runs a shell script given as text (`sh -c`, `su -c`, `watch`, `flock -c`).
    Script { wrapper: Wrapper, script: String },
    /// A shell that reads its script from standard input.
    ShellStdin { wrapper: Wrapper },
    /// Runs code warden cannot see.
    Opaque(String),
}

/// How a wrapper changes what runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wrapper {
    /// Same user, same program (`env`, `nice`, `timeout`, `sh -c`): an allow rule for
    /// the inner command covers it.
    Transparent,
    /// Another user or root (`sudo`, `doas`, `su`, `chroot`): an allow rule must name
    /// the wrapper too.
    Privileged,
}

/// Options of one wrapper: which take a value, and how many words (a duration, a
/// lock file) come before the program.
struct Spec {
    names: &'static [&'static str],
    /// Short options that take a value (`-u root`, `-uroot`).
    short_values: &'static str,
    /// Short options that take no value; any other short option is unknown.
    short_flags: &'static str,
    /// Short options whose value is optional and only ever glued (`xargs -i{}`,
    /// `-e[EOF]`, `-l[N]`): alone, they take no word.
    short_optional: &'static str,
    /// Long options that take a value (`--user root`, `--user=root`).
    long_values: &'static [&'static str],
    long_flags: &'static [&'static str],
    /// Words between the options and the program (`timeout 5`, `flock FILE`).
    positionals: usize,
    wrapper: Wrapper,
}

const SPECS: &[Spec] = &[
    Spec {
        names: &["nice"],
        short_values: "n",
        short_flags: "",
        short_optional: "",
        long_values: &["adjustment"],
        long_flags: &[],
        positionals: 0,
        wrapper: Wrapper::Transparent,
    },
    Spec {
        names: &["ionice"],
        short_values: "cnp",
        short_flags: "t",
        short_optional: "",
        long_values: &["class", "classdata", "pid"],
        long_flags: &["ignore"],
        positionals: 0,
        wrapper: Wrapper::Transparent,
    },
    Spec {
        names: &["nohup", "coproc"],
        short_values: "",
        short_flags: "",
        short_optional: "",
        long_values: &[],
        long_flags: &[],
        positionals: 0,
        wrapper: Wrapper::Transparent,
    },
    Spec {
        names: &["timeout"],
        short_values: "sk",
        short_flags: "v",
        short_optional: "",
        long_values: &["signal", "kill-after"],
        long_flags: &["preserve-status", "foreground", "verbose"],
        positionals: 1,
        wrapper: Wrapper::Transparent,
    },
    Spec {
        names: &["setsid"],
        short_values: "",
        short_flags: "cfw",
        short_optional: "",
        long_values: &[],
        long_flags: &["ctty", "fork", "wait"],
        positionals: 0,
        wrapper: Wrapper::Transparent,
    },
    Spec {
        names: &["stdbuf"],
        short_values: "ioe",
        short_flags: "",
        short_optional: "",
        long_values: &["input", "output", "error"],
        long_flags: &[],
        positionals: 0,
        wrapper: Wrapper::Transparent,
    },
    Spec {
        names: &["time"],
        short_values: "fo",
        short_flags: "pav",
        short_optional: "",
        long_values: &["format", "output"],
        long_flags: &["portability", "append", "verbose", "quiet"],
        positionals: 0,
        wrapper: Wrapper::Transparent,
    },
    Spec {
        names: &["command", "builtin"],
        short_values: "",
        short_flags: "pvV",
        short_optional: "",
        long_values: &[],
        long_flags: &[],
        positionals: 0,
        wrapper: Wrapper::Transparent,
    },
    Spec {
        names: &["exec"],
        short_values: "a",
        short_flags: "cl",
        short_optional: "",
        long_values: &[],
        long_flags: &[],
        positionals: 0,
        wrapper: Wrapper::Transparent,
    },
    Spec {
        names: &["taskset"],
        short_values: "",
        short_flags: "ac",
        short_optional: "",
        long_values: &[],
        long_flags: &["all-tasks", "cpu-list"],
        positionals: 1,
        wrapper: Wrapper::Transparent,
    },
    Spec {
        names: &["sudo"],
        short_values: "CDghpRrTtUu",
        short_flags: "AbEeHiKkLlnPSsVv",
        short_optional: "",
        long_values: &[
            "close-from",
            "chdir",
            "group",
            "host",
            "prompt",
            "chroot",
            "role",
            "type",
            "command-timeout",
            "other-user",
            "user",
        ],
        long_flags: &[
            "askpass",
            "background",
            "preserve-env",
            "set-home",
            "login",
            "remove-timestamp",
            "reset-timestamp",
            "list",
            "non-interactive",
            "preserve-groups",
            "stdin",
            "shell",
            "validate",
            "edit",
        ],
        positionals: 0,
        wrapper: Wrapper::Privileged,
    },
    Spec {
        names: &["doas"],
        short_values: "Cu",
        short_flags: "Lns",
        short_optional: "",
        long_values: &[],
        long_flags: &[],
        positionals: 0,
        wrapper: Wrapper::Privileged,
    },
    Spec {
        names: &["chroot"],
        short_values: "",
        short_flags: "",
        short_optional: "",
        long_values: &["userspec", "groups"],
        long_flags: &["skip-chdir"],
        positionals: 1,
        wrapper: Wrapper::Privileged,
    },
    Spec {
        names: &["xargs"],
        short_values: "adEILnPs",
        short_flags: "0oprtx",
        short_optional: "eil",
        long_values: &[
            "arg-file",
            "delimiter",
            "eof",
            "replace",
            "max-lines",
            "max-args",
            "max-procs",
            "max-chars",
            "process-slot-var",
        ],
        long_flags: &[
            "null",
            "open-tty",
            "interactive",
            "no-run-if-empty",
            "verbose",
            "exit",
            "show-limits",
        ],
        positionals: 0,
        wrapper: Wrapper::Transparent,
    },
];

/// Shells: `-c SCRIPT` runs the script, no script means standard input.
const SHELLS: &[&str] = &[
    "sh", "bash", "rbash", "dash", "zsh", "ksh", "mksh", "ash", "yash", "fish", "tcsh", "csh",
];

/// What `words` (a simple command, program first, quotes removed) runs one level down.
pub fn look_through(words: &[Word]) -> Step {
    let Some(program) = words.first().and_then(Word::literal) else {
        return Step::Program;
    };
    let name = basename(program);
    let args = &words[1..];
    if SHELLS.contains(&name) {
        return shell(args);
    }
    match name {
        "env" => return env(args),
        "su" | "runuser" | "sg" => return su(name, args),
        "watch" => return watch(args),
        // `newgrp GROUP` starts the user's shell, reading its input.
        "newgrp" => {
            return Step::ShellStdin {
                wrapper: Wrapper::Privileged,
            };
        }
        // `ip netns exec NAME CMD…`, `ip -all netns exec CMD…`.
        "ip" => {
            if let Some(at) = args
                .windows(2)
                .position(|pair| pair[0].text == "netns" && pair[1].text == "exec")
            {
                let all = args[..at]
                    .iter()
                    .any(|word| word.text == "-all" || word.text == "-a");
                let start = at + 2 + usize::from(!all);
                return match args.get(start..) {
                    Some(inner) if !inner.is_empty() => Step::Runs {
                        wrapper: Wrapper::Privileged,
                        assignments: Vec::new(),
                        inner: inner.to_vec(),
                    },
                    _ => Step::Opaque("ip netns exec without a command".into()),
                };
            }
        }
        "flock" => return flock(args),
        "busybox" if !args.is_empty() => {
            return Step::Runs {
                wrapper: Wrapper::Transparent,
                assignments: Vec::new(),
                inner: args.to_vec(),
            };
        }
        _ => {}
    }
    let Some(spec) = SPECS.iter().find(|spec| spec.names.contains(&name)) else {
        return Step::Program;
    };
    match skip_options(spec, args) {
        Ok(start) => {
            let options = &args[..start.min(args.len())];
            // `command -v x` looks a name up; `sudo -e f` (sudoedit) edits files as
            // root: neither runs a program (sudoedit's paths are checked).
            if (name == "command" && has_short(options, &['v', 'V']))
                || (name == "sudo" && (has_short(options, &['e']) || has_long(options, "edit")))
            {
                return Step::Program;
            }
            let start = start + spec.positionals;
            if start >= args.len() {
                // `sudo -i`, `sudo -s`, `chroot /x`: an interactive shell on stdin.
                if name == "chroot" || (matches!(name, "sudo" | "doas") && sudo_shell(options)) {
                    return Step::ShellStdin {
                        wrapper: spec.wrapper,
                    };
                }
                return Step::Program;
            }
            if args[..start].iter().any(|word| word.literal().is_none()) {
                return Step::Opaque(format!(
                    "an expansion among {name}'s options decides what it runs"
                ));
            }
            let inner = match xargs_replace(name, &args[..start]) {
                // `xargs -I{} sh -c '{}'` runs its input as a script.
                Some(token) => replaced(&args[start..], &token),
                None => args[start..].to_vec(),
            };
            Step::Runs {
                wrapper: spec.wrapper,
                assignments: Vec::new(),
                inner,
            }
        }
        Err(option) => Step::Opaque(format!(
            "{name} option {option:?} is not one warden can read past"
        )),
    }
}

/// A short option among `options` (`-v`, or inside a cluster: `-pv`).
fn has_short(options: &[Word], letters: &[char]) -> bool {
    options.iter().any(|word| {
        word.text.starts_with('-')
            && !word.text.starts_with("--")
            && word.text[1..].contains(letters)
    })
}

fn has_long(options: &[Word], name: &str) -> bool {
    options.iter().any(|word| {
        word.text
            .strip_prefix("--")
            .is_some_and(|long| long == name || long.starts_with(&format!("{name}=")))
    })
}

/// `sudo -i` / `sudo -s` with nothing after: a shell reading stdin.
fn sudo_shell(args: &[Word]) -> bool {
    args.iter().any(|word| {
        let text = word.text.as_str();
        text == "--login"
            || text == "--shell"
            || (text.starts_with('-') && !text.starts_with("--") && text.contains(['i', 's']))
    })
}

/// The index of the first word after the options (or `Err(option)` for one not known).
fn skip_options(spec: &Spec, args: &[Word]) -> Result<usize, String> {
    let mut index = 0;
    while let Some(word) = args.get(index) {
        let text = word.text.as_str();
        if text == "--" {
            return Ok(index + 1);
        }
        if let Some(long) = text.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((name, _)) => (name, true),
                None => (long, false),
            };
            if spec.long_values.contains(&name) {
                index += if inline { 1 } else { 2 };
            } else if spec.long_flags.contains(&name) {
                index += 1;
            } else {
                return Err(text.to_owned());
            }
            continue;
        }
        let Some(cluster) = text.strip_prefix('-').filter(|rest| !rest.is_empty()) else {
            return Ok(index);
        };
        // `nice -10`: an old-style numeric adjustment.
        if spec.names.contains(&"nice") && cluster.chars().all(|c| c.is_ascii_digit()) {
            index += 1;
            continue;
        }
        let mut consumed = 1;
        for (at, letter) in cluster.char_indices() {
            if spec.short_optional.contains(letter) {
                // The rest of the cluster, if any, is its value.
                break;
            }
            if spec.short_values.contains(letter) {
                // The value is the rest of the cluster, or the next word.
                if at + letter.len_utf8() == cluster.len() {
                    consumed = 2;
                }
                break;
            }
            if !spec.short_flags.contains(letter) {
                return Err(text.to_owned());
            }
        }
        index += consumed;
    }
    Ok(index)
}

/// `sh -c SCRIPT`, `bash -lc SCRIPT`, `sh -s`, `sh FILE`.
fn shell(args: &[Word]) -> Step {
    let mut index = 0;
    let mut script_flag = false;
    while let Some(word) = args.get(index) {
        let text = word.text.as_str();
        if word.literal().is_none() {
            return Step::Opaque("an expansion among the shell's options".into());
        }
        if text == "--" || text == "-" {
            index += 1;
            break;
        }
        if matches!(text, "--rcfile" | "--init-file") {
            return Step::Opaque(format!("the shell sources the file given by {text}"));
        }
        if text.starts_with("--") {
            index += 1;
            continue;
        }
        let Some(cluster) = text
            .strip_prefix(['-', '+'])
            .filter(|rest| !rest.is_empty())
        else {
            break;
        };
        if cluster.contains('c') {
            script_flag = true;
        }
        if cluster.contains('s') && !script_flag {
            // `bash -s ARGS`: the script comes from stdin, the words are its $1…
            return Step::ShellStdin {
                wrapper: Wrapper::Transparent,
            };
        }
        // Each `o` and `O` in a cluster takes the next word (`-eoc pipefail SCRIPT`).
        index += 1 + cluster.chars().filter(|c| matches!(c, 'o' | 'O')).count();
    }
    match (script_flag, args.get(index)) {
        // `bash /dev/stdin`, `sh /proc/self/fd/0`: the "file" is standard input.
        (false, Some(file))
            if file.text.starts_with("/dev/") || file.text.starts_with("/proc/") =>
        {
            Step::ShellStdin {
                wrapper: Wrapper::Transparent,
            }
        }
        (true, Some(script)) => match script.literal() {
            Some(text) => Step::Script {
                wrapper: Wrapper::Transparent,
                script: text.to_owned(),
            },
            None => Step::Opaque("the shell's -c script is only known at run time".into()),
        },
        (true, None) => Step::Opaque("sh -c without a script".into()),
        // A script file: a program like any other (its content cannot be seen, but it
        // is named, so an allow rule can name it).
        (false, Some(_)) => Step::Program,
        (false, None) => Step::ShellStdin {
            wrapper: Wrapper::Transparent,
        },
    }
}

/// `env [-i] [-u NAME] [NAME=VALUE]... [COMMAND [ARG]...]`.
fn env(args: &[Word]) -> Step {
    let mut index = 0;
    let mut assignments = Vec::new();
    while let Some(word) = args.get(index) {
        let text = word.text.as_str();
        if word.literal().is_none() && !text.contains('=') {
            return Step::Opaque("an expansion among env's arguments decides what it runs".into());
        }
        match text {
            "--" => index += 1,
            "-i" | "-0" | "--ignore-environment" | "--null" | "-" => index += 1,
            "-u" | "--unset" => index += 2,
            _ if text.starts_with("--unset=") => index += 1,
            _ if text.starts_with("-C") || text.starts_with("--chdir") => {
                return Step::Opaque(
                    "env -C runs the command in another directory, where its paths lie unseen"
                        .into(),
                );
            }
            _ if text.starts_with("-S") || text.starts_with("--split-string") => {
                return Step::Opaque("env -S splits a string into a command".into());
            }
            _ if text.starts_with("-u") => index += 1,
            _ if text.starts_with('-') => {
                return Step::Opaque(format!(
                    "env option {text:?} is not one warden can read past"
                ));
            }
            // env takes any word holding `=` as NAME=VALUE, valid shell name or not
            // (`'BASH_FUNC_echo%%=() { …; }'` exports a function).
            _ if text.contains('=') => {
                assignments.push(text.split('=').next().unwrap_or_default().to_owned());
                index += 1;
            }
            _ => break,
        }
    }
    if index >= args.len() {
        // `env` alone prints the environment.
        return Step::Program;
    }
    Step::Runs {
        wrapper: Wrapper::Transparent,
        assignments,
        inner: args[index..].to_vec(),
    }
}

/// `su [options] [-] [USER [ARGS]]` with `-c SCRIPT`, `runuser -u USER COMMAND…`,
/// `sg GROUP [-c] SCRIPT`: options read as getopt reads them (`-lc SCRIPT`,
/// `-c'SCRIPT'`, `--command=SCRIPT`, `-uroot`).
fn su(name: &str, args: &[Word]) -> Step {
    let short_values: &[char] = if name == "runuser" {
        &['c', 's', 'g', 'G', 'w', 'u']
    } else {
        &['c', 's', 'g', 'G', 'w']
    };
    let long_values = [
        "command",
        "session-command",
        "shell",
        "group",
        "supp-group",
        "whitelist-environment",
        "user",
    ];
    let long_flags = ["login", "preserve-environment", "pty", "fast"];
    // The script: `Some(Ok(text))`, or `Some(Err(()))` when only known at run time.
    let mut script: Option<Result<String, ()>> = None;
    let mut user = false;
    let mut positionals: Vec<&Word> = Vec::new();
    let value_of = |word: Option<&Word>| -> Result<String, ()> {
        word.and_then(Word::literal).map(str::to_owned).ok_or(())
    };
    let mut index = 0;
    while let Some(word) = args.get(index) {
        let text = word.text.as_str();
        if word.literal().is_none() && text.starts_with('-') {
            return Step::Opaque(format!("an expansion among {name}'s options"));
        }
        if let Some(long) = text.strip_prefix("--") {
            if long.is_empty() {
                positionals.extend(&args[index + 1..]);
                break;
            }
            let (option, inline) = match long.split_once('=') {
                Some((option, value)) => (option, Some(value)),
                None => (long, None),
            };
            if long_values.contains(&option) {
                let value = match inline {
                    Some(value) => Ok(value.to_owned()),
                    None => value_of(args.get(index + 1)),
                };
                match option {
                    "command" | "session-command" => script = Some(value),
                    "user" if name == "runuser" => user = true,
                    _ => {}
                }
                index += if inline.is_some() { 1 } else { 2 };
            } else if long_flags.contains(&option) {
                index += 1;
            } else {
                return Step::Opaque(format!(
                    "{name} option {text:?} is not one warden can read past"
                ));
            }
            continue;
        }
        let Some(cluster) = text.strip_prefix('-').filter(|rest| !rest.is_empty()) else {
            // `-` alone asks for a login shell. Options end at the first other word
            // (getopt's `+`): what follows is the user's shell's arguments, the
            // runuser command, or sg's command.
            if text == "-" {
                index += 1;
                continue;
            }
            positionals.extend(&args[index..]);
            break;
        };
        let mut consumed = 1;
        for (at, letter) in cluster.char_indices() {
            if short_values.contains(&letter) {
                // The value is the rest of the cluster (`-c'x'`, `-uroot`) or the next word.
                let rest = &cluster[at + letter.len_utf8()..];
                let value = if rest.is_empty() {
                    consumed = 2;
                    value_of(args.get(index + 1))
                } else {
                    Ok(rest.to_owned())
                };
                match letter {
                    'c' => script = Some(value),
                    'u' => user = true,
                    _ => {}
                }
                break;
            }
            if !"lmpfP".contains(letter) {
                return Step::Opaque(format!(
                    "{name} option -{letter} is not one warden can read past"
                ));
            }
        }
        index += consumed;
    }
    // `su USER -c SCRIPT`: the words after the user go to the user's shell.
    if name == "su" && script.is_none() && positionals.len() > 1 {
        return match shell(
            &positionals[1..]
                .iter()
                .map(|word| (*word).clone())
                .collect::<Vec<_>>(),
        ) {
            Step::Script { script, .. } => script_step(&script),
            Step::Program => Step::Opaque("su runs a script file as another user".into()),
            other => other,
        };
    }
    match (script, name) {
        (Some(Ok(text)), _) => script_step(&text),
        (Some(Err(())), _) => {
            Step::Opaque(format!("{name} -c with a script known only at run time"))
        }
        // `sg GROUP SCRIPT`: the script is the words after the group.
        (None, "sg") if positionals.len() > 1 => match positionals[1..]
            .iter()
            .skip_while(|word| word.text == "-c")
            .map(|word| word.literal())
            .collect::<Option<Vec<_>>>()
        {
            Some(words) => script_step(&words.join(" ")),
            None => Step::Opaque("sg runs words known only at run time".into()),
        },
        // `runuser -u USER COMMAND…`.
        (None, "runuser") if user && !positionals.is_empty() => Step::Runs {
            wrapper: Wrapper::Privileged,
            assignments: Vec::new(),
            inner: positionals.into_iter().cloned().collect(),
        },
        _ => Step::ShellStdin {
            wrapper: Wrapper::Privileged,
        },
    }
}

fn script_step(script: &str) -> Step {
    Step::Script {
        wrapper: Wrapper::Privileged,
        script: script.to_owned(),
    }
}

/// `watch [options] COMMAND...`: the words are joined and run by `sh -c` (or run
/// directly with `-x`).
fn watch(args: &[Word]) -> Step {
    let mut index = 0;
    let mut direct = false;
    while let Some(word) = args.get(index) {
        let text = word.text.as_str();
        match text {
            "-n" | "--interval" | "-q" | "--equexit" => index += 2,
            "-x" | "--exec" => {
                direct = true;
                index += 1;
            }
            _ if text.starts_with("--") || (text.starts_with('-') && text.len() > 1) => index += 1,
            _ => break,
        }
    }
    let inner = &args[index.min(args.len())..];
    if inner.is_empty() {
        return Step::Program;
    }
    if direct {
        return Step::Runs {
            wrapper: Wrapper::Transparent,
            assignments: Vec::new(),
            inner: inner.to_vec(),
        };
    }
    match inner.iter().map(Word::literal).collect::<Option<Vec<_>>>() {
        Some(texts) => Step::Script {
            wrapper: Wrapper::Transparent,
            script: texts.join(" "),
        },
        None => Step::Opaque("watch runs words known only at run time".into()),
    }
}

/// `flock [options] FILE COMMAND...`, `flock [options] FILE -c SCRIPT`, `flock FD`.
fn flock(args: &[Word]) -> Step {
    let mut index = 0;
    while let Some(word) = args.get(index) {
        let text = word.text.as_str();
        match text {
            "-w" | "--timeout" | "-E" | "--conflict-exit-code" => index += 2,
            _ if text.starts_with('-') && text.len() > 1 => index += 1,
            _ => break,
        }
    }
    // The lock file (or a file descriptor number, which runs nothing).
    index += 1;
    match args.get(index).map(|word| word.text.as_str()) {
        None => Step::Program,
        Some("-c" | "--command") => match args.get(index + 1).and_then(Word::literal) {
            Some(script) => Step::Script {
                wrapper: Wrapper::Transparent,
                script: script.to_owned(),
            },
            None => Step::Opaque("flock -c with a script known only at run time".into()),
        },
        Some(_) => Step::Runs {
            wrapper: Wrapper::Transparent,
            assignments: Vec::new(),
            inner: args[index..].to_vec(),
        },
    }
}

/// The replace string of `xargs -I R` / `-i` / `--replace[=R]`, if any.
fn xargs_replace(name: &str, options: &[Word]) -> Option<String> {
    if name != "xargs" {
        return None;
    }
    options.iter().enumerate().find_map(|(index, word)| {
        let text = word.text.as_str();
        match text {
            "-I" => options.get(index + 1).map(|value| value.text.clone()),
            "-i" | "--replace" => Some("{}".into()),
            _ if text.starts_with("--replace=") => Some(text["--replace=".len()..].to_owned()),
            _ if text.starts_with("-I") => Some(text[2..].to_owned()),
            _ if text.starts_with("-i") => Some(text[2..].to_owned()),
            _ => None,
        }
    })
}

/// `words` with every word holding `token` marked as known only when it runs: the
/// input xargs or find puts there.
pub fn replaced(words: &[Word], token: &str) -> Vec<Word> {
    words
        .iter()
        .map(|word| Word {
            expands: word.expands || (!token.is_empty() && word.text.contains(token)),
            ..word.clone()
        })
        .collect()
}

/// Whether `name` runs another program given in its arguments.
pub fn is_wrapper(name: &str) -> bool {
    SHELLS.contains(&name)
        || SPECS.iter().any(|spec| spec.names.contains(&name))
        || matches!(
            name,
            "env" | "su" | "runuser" | "sg" | "watch" | "flock" | "busybox"
        )
}

pub fn is_name(name: &str) -> bool {
    name.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

pub fn basename(program: &str) -> &str {
    program.rsplit('/').next().unwrap_or(program)
}
