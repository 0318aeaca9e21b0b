//! Programs whose arguments can run code: `find -exec`, `sed e`, `awk system()`,
//! `tar --checkpoint-action`, `git -c`, `rsync -e`, `ssh HOST COMMAND`, interpreters
//! given code. An allow rule for `find .*` must not become an allow rule for anything,
//! so [`inspect`] finds the code: inner commands it can read (`find -exec CMD ;`) are
//! checked like any command, the rest is opaque.

use super::shell::Word;
use super::wrappers::basename;

/// What a program's arguments do beyond the program itself.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Inspection {
    /// Why the arguments run code warden cannot see.
    pub opaque: Option<String>,
    /// Commands the arguments run (`find -exec CMD {} ;`), each checked as a command.
    pub inner: Vec<Vec<Word>>,
    /// Files the arguments write (`find -fprint F`, `sed -i`'s files are operands).
    pub writes: Vec<String>,
}

impl Inspection {
    /// This inspection, or an opaque one saying `why` when `condition` holds.
    fn or_if(self, condition: bool, why: &str) -> Inspection {
        if self.opaque.is_none() && condition {
            Inspection::opaque(why)
        } else {
            self
        }
    }

    fn opaque(why: impl Into<String>) -> Inspection {
        Inspection {
            opaque: Some(why.into()),
            ..Inspection::default()
        }
    }
}

/// Interpreters and the options that hand them code.
const INTERPRETERS: &[(&str, &[&str])] = &[
    ("python", &["-c"]),
    ("perl", &["-e", "-E"]),
    ("ruby", &["-e"]),
    ("node", &["-e", "--eval", "-p", "--print"]),
    ("nodejs", &["-e", "--eval", "-p", "--print"]),
    ("php", &["-r", "-R", "-B", "-E"]),
    ("lua", &["-e"]),
    ("Rscript", &["-e"]),
    ("tclsh", &[]),
    ("expect", &["-c"]),
    ("deno", &["eval"]),
    ("bun", &["-e", "--eval"]),
    ("pwsh", &["-c", "-Command", "-EncodedCommand"]),
    ("osascript", &["-e"]),
    ("julia", &["-e", "--eval"]),
];

/// Programs that run code given to them in any argument (or later, from stdin).
const ALWAYS_OPAQUE: &[(&str, &str)] = &[
    ("eval", "eval runs a string as a command"),
    ("source", "source runs a file's commands in this shell"),
    (".", ". runs a file's commands in this shell"),
    ("alias", "an alias changes what later commands run"),
    ("trap", "trap runs a string as a command later"),
    ("hash", "hash -p changes which program a name runs"),
    ("enable", "enable loads builtins"),
    ("at", "at runs commands from its input later"),
    ("batch", "batch runs commands from its input later"),
    ("parallel", "parallel builds commands from its input"),
    (
        "screen",
        "screen runs commands in a session warden cannot see",
    ),
    ("tmux", "tmux runs commands in a session warden cannot see"),
    ("gdb", "gdb runs commands in the debugged program"),
    ("script", "script runs a command line in a pseudo-terminal"),
    ("ed", "ed runs `!command` lines from its input"),
    ("red", "ed runs `!command` lines from its input"),
];

/// Whether `name` is an interpreter or a program that always runs code it is given.
pub fn runs_code(name: &str) -> bool {
    let base = name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
    INTERPRETERS
        .iter()
        .any(|(interpreter, _)| *interpreter == name || *interpreter == base)
        || ALWAYS_OPAQUE.iter().any(|(opaque, _)| *opaque == name)
}

/// What `words` (program first, after wrappers) run beyond the program itself.
pub fn inspect(words: &[Word]) -> Inspection {
    let Some(program) = words.first().map(|word| word.text.as_str()) else {
        return Inspection::default();
    };
    let name = basename(program);
    let args = &words[1..];
    if let Some((_, why)) = ALWAYS_OPAQUE.iter().find(|(opaque, _)| *opaque == name) {
        // `trap - INT`, `hash -r`, `alias` alone: harmless forms that run nothing.
        let harmless = match name {
            "trap" => args
                .first()
                .is_none_or(|word| word.text == "-" || word.text == "-l"),
            "hash" => !args
                .iter()
                .any(|word| word.text.starts_with('-') && word.text.contains('p')),
            "alias" => args.iter().all(|word| !word.text.contains('=')),
            _ => false,
        };
        return if harmless {
            Inspection::default()
        } else {
            Inspection::opaque(*why)
        };
    }
    if let Some(inspection) = interpreter(name, args) {
        return inspection;
    }
    // An expansion in the arguments of a program that can run code could be the
    // option that does: `find . $X` with X='-exec …', or a glob matching a file named
    // `--checkpoint-action=exec=…`.
    let exec_capable = matches!(
        name,
        "find"
            | "sed"
            | "gsed"
            | "awk"
            | "gawk"
            | "mawk"
            | "nawk"
            | "tar"
            | "gtar"
            | "bsdtar"
            | "git"
            | "rsync"
            | "ssh"
            | "scp"
            | "sftp"
            | "apt"
            | "apt-get"
            | "zip"
            | "man"
    );
    if exec_capable && let Some(word) = args.iter().find(|word| word.literal().is_none()) {
        return Inspection::opaque(format!(
            "{name} can run commands from its options, and {:?} is only known at run time",
            word.text
        ));
    }
    let texts: Vec<&str> = args.iter().map(|word| word.text.as_str()).collect();
    match name {
        // Ex mode (`ex`, `vim -e`, `-es`, `-E`) reads commands from its input.
        "ex" => Inspection::opaque("ex runs `!command` lines from its input"),
        "vim" | "vi" | "nvim" | "view" | "vimdiff" | "rvim"
            if texts.iter().any(|arg| {
                arg.starts_with('-') && !arg.starts_with("--") && arg.contains(['e', 'E', 's'])
            }) =>
        {
            Inspection::opaque("the editor in Ex mode runs commands from its input")
        }
        "vim" | "vi" | "nvim" | "view" | "vimdiff" | "rvim" => flag_opaque(
            &texts,
            &["-c", "--cmd", "-S", "-s", "-u"],
            "the editor runs the commands given by",
        )
        .or_if(
            texts.iter().any(|arg| arg.starts_with('+')),
            "the editor runs a +command",
        ),
        "npx" | "pnpx" | "bunx" => Inspection::opaque(format!("{name} runs a package's code")),
        "npm" | "pnpm" | "yarn" => match texts.iter().find(|arg| !arg.starts_with('-')) {
            Some(
                &("exec" | "x" | "run" | "run-script" | "start" | "test" | "restart" | "stop"
                | "dlx"),
            ) => Inspection::opaque(format!("{name} runs scripts or packages' code")),
            _ => Inspection::default(),
        },
        "split" => flag_opaque(&texts, &["--filter"], "split runs the filter given by"),
        "sort" => flag_opaque(
            &texts,
            &["--compress-program"],
            "sort runs the program given by",
        ),
        "make" | "gmake" => {
            let from_input = texts.windows(2).any(|pair| {
                pair[0] == "-f"
                    && (pair[1] == "-"
                        || pair[1].starts_with("/dev/")
                        || pair[1].starts_with("/proc/"))
            }) || texts
                .iter()
                .any(|arg| arg.starts_with("-f/dev/") || arg.starts_with("-f/proc/"));
            flag_opaque(
                &texts,
                &["--eval", "-E"],
                "make evaluates the text given by",
            )
            .or_if(from_input, "make reads a makefile from input")
            .or_if(
                texts.iter().any(|arg| arg.contains("$(shell")),
                "make runs $(shell ..)",
            )
        }
        "sqlite3" => flag_opaque(
            &texts,
            &["-cmd", "--cmd"],
            "sqlite3 runs the command given by",
        )
        .or_if(
            texts.iter().any(|arg| {
                let arg = arg.trim_start();
                arg.starts_with(".shell") || arg.starts_with(".system")
            }),
            "sqlite3 .shell runs a command",
        )
        .or_if(
            texts.iter().filter(|arg| !arg.starts_with('-')).count() < 2,
            "sqlite3 reads commands (.shell among them) from its input",
        ),
        "psql" | "mysql" | "mariadb" => Inspection::default().or_if(
            texts
                .iter()
                .any(|arg| arg.contains("\\!") || arg.contains("\\system")),
            "the database client's \\! runs a shell command",
        ),
        "mapfile" | "readarray" => {
            flag_opaque(&texts, &["-C"], "mapfile runs the callback given by")
        }
        "compgen" | "complete" => flag_opaque(
            &texts,
            &["-C", "-F"],
            "completion runs the command given by",
        ),
        "find" => find(args),
        "sed" | "gsed" => sed(&texts),
        "awk" | "gawk" | "mawk" | "nawk" => awk(&texts),
        "tar" | "gtar" | "bsdtar" => tar(&texts),
        "git" => git(&texts),
        "rsync" => flag_opaque(
            &texts,
            &["-e", "--rsh", "--rsync-path"],
            "rsync runs a remote shell command given by",
        ),
        "ssh" => ssh(&texts),
        "scp" | "sftp" => flag_opaque(&texts, &["-S", "-o"], "scp runs the program named by"),
        "apt" | "apt-get" => flag_opaque(&texts, &["-o"], "apt runs hooks set by"),
        "zip" => flag_opaque(
            &texts,
            &["-TT", "--unzip-command"],
            "zip runs the command given by",
        ),
        "man" => flag_opaque(
            &texts,
            &["-P", "--pager", "-H", "--html"],
            "man runs the program given by",
        ),
        _ => Inspection::default(),
    }
}

fn interpreter(name: &str, args: &[Word]) -> Option<Inspection> {
    // `python3.11`, `perl5.36`, `lua5.4`: versioned names are the interpreter too.
    let base = name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
    let (interpreter, code_options) = INTERPRETERS
        .iter()
        .find(|(interpreter, _)| *interpreter == name || *interpreter == base)?;
    let code = args.iter().find(|word| {
        code_options.iter().any(|option| {
            word.text == *option
                || (option.len() == 2
                    && word.text.starts_with('-')
                    && !word.text.starts_with("--")
                    && word.text[1..].contains(&option[1..]))
        })
    });
    if let Some(option) = code {
        return Some(Inspection::opaque(format!(
            "{interpreter} {} runs code warden cannot check",
            option.text
        )));
    }
    let script = args
        .iter()
        .find(|word| !word.text.starts_with('-') || word.text == "-");
    match script {
        // `/dev/stdin`, `/proc/self/fd/0`, `<(…)`: the "file" is input warden cannot see.
        Some(word)
            if word.literal().is_none()
                || word.text.starts_with("/dev/")
                || word.text.starts_with("/proc/") =>
        {
            Some(Inspection::opaque(format!(
                "{interpreter} runs a script from {:?}, which warden cannot see",
                word.text
            )))
        }
        // A named script file or module is a program an allow rule can name.
        Some(word) if word.text != "-" => Some(Inspection::default()),
        _ => Some(Inspection::opaque(format!(
            "{interpreter} reads code from standard input"
        ))),
    }
}

/// `find`: `-exec`/`-execdir`/`-ok`/`-okdir` run commands (checked), `-fprint*`,
/// `-fls` write files.
fn find(args: &[Word]) -> Inspection {
    let mut inspection = Inspection::default();
    let mut index = 0;
    while let Some(word) = args.get(index) {
        match word.text.as_str() {
            "-exec" | "-execdir" | "-ok" | "-okdir" => {
                let start = index + 1;
                // `;` ends the command; `+` only right after `{}` (find's own rule).
                let end = (start..args.len())
                    .find(|&at| {
                        args[at].text == ";"
                            || (args[at].text == "+" && at > start && args[at - 1].text == "{}")
                    })
                    .unwrap_or(args.len());
                if end > start {
                    // `{}` is a found file's name: known only when it runs
                    // (`-exec sh -c {} \;` runs each name as a script).
                    inspection
                        .inner
                        .push(super::wrappers::replaced(&args[start..end], "{}"));
                }
                index = end + 1;
            }
            "-fprint" | "-fprint0" | "-fls" => {
                if let Some(file) = args.get(index + 1) {
                    inspection.writes.push(file.text.clone());
                }
                index += 2;
            }
            "-fprintf" => {
                if let Some(file) = args.get(index + 1) {
                    inspection.writes.push(file.text.clone());
                }
                index += 3;
            }
            _ => index += 1,
        }
    }
    inspection
}

/// `sed`: the `e` command and `s///e` run commands; `w`/`W` and `s///w` write files.
/// `--sandbox` makes GNU sed refuse all of them.
fn sed(args: &[&str]) -> Inspection {
    if args.contains(&"--sandbox") {
        return Inspection::default();
    }
    let mut scripts = Vec::new();
    let mut index = 0;
    let mut given = false;
    while let Some(arg) = args.get(index) {
        match *arg {
            "-e" | "--expression" => {
                scripts.extend(args.get(index + 1));
                given = true;
                index += 2;
            }
            "-f" | "--file" => {
                return Inspection::opaque("sed -f reads its script from a file");
            }
            _ if names_option(arg, "--expression") => {
                match arg.split_once('=') {
                    Some((_, script)) => {
                        scripts.push(script);
                        index += 1;
                    }
                    None => {
                        scripts.extend(args.get(index + 1));
                        index += 2;
                    }
                }
                given = true;
            }
            _ if names_option(arg, "--file") => {
                return Inspection::opaque("sed -f reads its script from a file");
            }
            _ if arg.starts_with("--file=") => {
                return Inspection::opaque("sed -f reads its script from a file");
            }
            "--line-length" => index += 2,
            _ if arg.starts_with("--") => index += 1,
            _ if arg.starts_with('-') && arg.len() > 1 => {
                // A cluster (`-ne SCRIPT`, `-nf FILE`, `-i.bak`, `-l 80`): read letter by
                // letter as sed does.
                let mut consumed = 1;
                for (at, letter) in arg.char_indices().skip(1) {
                    let rest = &arg[at + 1..];
                    match letter {
                        'f' => return Inspection::opaque("sed -f reads its script from a file"),
                        'e' | 'l' => {
                            let value = if rest.is_empty() {
                                consumed = 2;
                                args.get(index + 1).copied()
                            } else {
                                Some(rest)
                            };
                            if letter == 'e' {
                                scripts.extend(value);
                                given = true;
                            }
                            break;
                        }
                        // `-i[SUFFIX]`: the rest is the suffix.
                        'i' => break,
                        _ => {}
                    }
                }
                index += consumed;
            }
            _ => {
                if !given {
                    scripts.push(arg);
                    given = true;
                }
                index += 1;
            }
        }
    }
    match scripts.iter().find_map(|script| sed_code(script)) {
        Some(why) => Inspection::opaque(why),
        None => Inspection::default(),
    }
}

/// Whether one sed script runs or writes anything, read command by command.
fn sed_code(script: &str) -> Option<String> {
    let chars: Vec<char> = script.chars().collect();
    let mut at = 0;
    while at < chars.len() {
        // Skip separators, addresses (`1`, `$`, `/re/`, `\%re%`, `1,5`, `0~2`) and `!`.
        while at < chars.len() && matches!(chars[at], ';' | '\n' | ' ' | '\t' | '{' | '}' | '!') {
            at += 1;
        }
        loop {
            match chars.get(at) {
                Some(c) if c.is_ascii_digit() || matches!(c, '$' | ',' | '~' | ' ' | '+') => {
                    at += 1
                }
                Some('/') => at = skip_delimited(&chars, at + 1, '/'),
                Some('\\') => {
                    let delimiter = chars.get(at + 1).copied().unwrap_or('/');
                    at = skip_delimited(&chars, at + 2, delimiter);
                }
                Some('I' | 'M') if at > 0 && chars[at - 1] == '/' => at += 1,
                _ => break,
            }
        }
        while matches!(chars.get(at), Some('!' | ' ')) {
            at += 1;
        }
        let Some(&command) = chars.get(at) else { break };
        at += 1;
        match command {
            'e' => return Some("sed's e command runs a shell command".into()),
            'w' | 'W' => return Some("sed's w command writes a file".into()),
            'r' | 'R' | 'a' | 'i' | 'c' | 'b' | 't' | 'T' | ':' | 'l' | 'L' | 'q' | 'Q' | 'v' => {
                // These take the rest of the line as their argument.
                while at < chars.len() && chars[at] != '\n' && !(command == 'b' && chars[at] == ';')
                {
                    if matches!(command, 'b' | 't' | 'T' | ':' | 'q' | 'Q' | 'l' | 'L' | 'v')
                        && chars[at] == ';'
                    {
                        break;
                    }
                    at += 1;
                }
            }
            's' | 'y' => {
                let delimiter = chars.get(at).copied().unwrap_or('/');
                at = skip_delimited(&chars, at + 1, delimiter);
                at = skip_delimited(&chars, at, delimiter);
                if command == 's' {
                    while let Some(flag) = chars.get(at) {
                        match flag {
                            'e' => return Some("sed's s///e runs the result as a command".into()),
                            'w' => return Some("sed's s///w writes a file".into()),
                            'g' | 'p' | 'i' | 'I' | 'm' | 'M' => at += 1,
                            c if c.is_ascii_digit() => at += 1,
                            _ => break,
                        }
                    }
                }
            }
            _ => {}
        }
    }
    None
}

/// The index after the closing `delimiter` (backslash escapes skipped).
fn skip_delimited(chars: &[char], mut at: usize, delimiter: char) -> usize {
    while let Some(&c) = chars.get(at) {
        at += 1;
        if c == '\\' {
            at += 1;
        } else if c == delimiter {
            break;
        }
    }
    at
}

/// `awk`: `system()`, pipes to or from commands, and output redirections in the
/// program run or write things. `-f` reads the program from a file.
fn awk(args: &[&str]) -> Inspection {
    let mut index = 0;
    while let Some(arg) = args.get(index) {
        match *arg {
            "-f" | "--file" | "-i" | "--include" | "-l" | "--load" | "-E" | "--exec" => {
                return Inspection::opaque(format!("awk {arg} reads its program from a file"));
            }
            _ if ["-f", "-i", "-l", "-E"]
                .iter()
                .any(|option| arg.starts_with(option)) =>
            {
                return Inspection::opaque(format!("awk {arg} reads its program from a file"));
            }
            // mawk `-W exec FILE`: the program is FILE.
            "-W" if args
                .get(index + 1)
                .is_some_and(|value| value.starts_with("e")) =>
            {
                return Inspection::opaque("awk -W exec reads its program from a file");
            }
            _ if arg.starts_with("-We") => {
                return Inspection::opaque("awk -W exec reads its program from a file");
            }
            // gawk `-e TEXT` / `--source=TEXT`: program text, read like the program.
            "-e" | "--source" => {
                if let Some(why) = args.get(index + 1).and_then(|program| awk_code(program)) {
                    return Inspection::opaque(why);
                }
                index += 2;
                continue;
            }
            _ if arg.starts_with("--source=") => {
                if let Some(why) = awk_code(&arg["--source=".len()..]) {
                    return Inspection::opaque(why);
                }
                index += 1;
                continue;
            }
            "-F" | "-v" | "--assign" | "--field-separator" | "-W" => index += 2,
            "--" => {
                index += 1;
                break;
            }
            _ if arg.starts_with('-') && arg.len() > 1 => index += 1,
            _ => break,
        }
    }
    let Some(program) = args.get(index) else {
        return Inspection::default();
    };
    match awk_code(program) {
        Some(why) => Inspection::opaque(why),
        None => Inspection::default(),
    }
}

fn awk_code(program: &str) -> Option<String> {
    // Read as written, strings and regexes included: a `"` inside `/"/` must not hide
    // what follows. `print "a|b"` is then opaque too, the safe side.
    let code = program;
    if code.contains("@include") || code.contains("@load") {
        return Some("awk @include/@load reads code from a file".into());
    }
    if code.contains("system") {
        return Some("awk's system() runs a shell command".into());
    }
    let bytes = code.as_bytes();
    for (at, byte) in bytes.iter().enumerate() {
        let before = at.checked_sub(1).map(|i| bytes[i]);
        let after = bytes.get(at + 1).copied();
        if *byte == b'|' && before != Some(b'|') && after != Some(b'|') {
            return Some("awk pipes to or from a shell command".into());
        }
    }
    // `print > "file"` writes a file; `$3 > 10` outside print is a comparison.
    for statement in code.split([';', '{', '}', '\n']) {
        let statement = statement.trim_start();
        if (statement.starts_with("print") || statement.starts_with("printf"))
            && statement.contains('>')
        {
            return Some("awk's print > writes a file".into());
        }
    }
    None
}

/// `tar`: options that run programs.
fn tar(args: &[&str]) -> Inspection {
    const RUNS: &[&str] = &[
        "--checkpoint-action",
        "--to-command",
        "--use-compress-program",
        "--rsh-command",
        "--rmt-command",
        "--info-script",
        "--new-volume-script",
        "-I",
        "-F",
    ];
    match args
        .iter()
        .find(|arg| RUNS.iter().any(|option| names_option(arg, option)))
    {
        Some(arg) => Inspection::opaque(format!("tar {arg} runs a program")),
        None => Inspection::default(),
    }
}

/// Whether `arg` gives `option` as getopt would read it: exactly, with `=VALUE`, a
/// long option by an unambiguous prefix (`--checkpoint-act=…`), a short one with its
/// value glued (`-x'cmd'`).
fn names_option(arg: &str, option: &str) -> bool {
    if arg == option {
        return true;
    }
    if let Some(long) = option.strip_prefix("--") {
        let Some(given) = arg.strip_prefix("--") else {
            return false;
        };
        let name = given.split('=').next().unwrap_or(given);
        return name.len() >= 3 && long.starts_with(name);
    }
    option.len() == 2 && arg.starts_with(option)
}

/// `git`: `-c` and `--config-env` can set an alias, pager or hook to any command;
/// `--output` writes a file; some subcommands take commands to run.
fn git(args: &[&str]) -> Inspection {
    const OPTIONS: &[&str] = &[
        "-c",
        "--config-env",
        "--exec-path",
        "--output",
        "--upload-pack",
        "--receive-pack",
        "--ext-diff",
        "--exec",
        "--extcmd",
        "--tool",
        "--open-files-in-pager",
        "-O",
    ];
    if let Some(arg) = args
        .iter()
        .find(|arg| OPTIONS.iter().any(|option| names_option(arg, option)))
    {
        return Inspection::opaque(format!("git {arg} can run a command or write a file"));
    }
    // `ext::sh -c …`: a remote helper that runs a command.
    if args.iter().any(|arg| arg.starts_with("ext::")) {
        return Inspection::opaque("git's ext:: transport runs a command");
    }
    let subcommand = args.iter().find(|arg| !arg.starts_with('-'));
    // Settings that name a program to run, or an alias (`!cmd` runs a shell).
    let runs = |key: &str| {
        let key = key.to_ascii_lowercase();
        key.starts_with("alias.")
            || key.starts_with("core.")
            || key.starts_with("credential")
            || key.starts_with("filter.")
            || key.starts_with("diff.")
            || key.starts_with("merge.")
            || key.starts_with("include")
            || key.starts_with("url.")
            || key.ends_with(".command")
            || key.ends_with(".cmd")
            || key.ends_with(".program")
            || key.ends_with("pager")
            || key.ends_with("editor")
    };
    if subcommand == Some(&"config")
        && args
            .iter()
            .skip_while(|arg| **arg != "config")
            .any(|key| runs(key))
    {
        return Inspection::opaque("git config sets a setting that runs a command");
    }
    match subcommand.copied() {
        Some("filter-branch" | "filter-repo" | "difftool" | "mergetool") => {
            Inspection::opaque("this git subcommand runs commands it is given")
        }
        Some("rebase") if args.iter().any(|arg| names_option(arg, "-x")) => {
            Inspection::opaque("git rebase -x runs a command")
        }
        Some("clone" | "fetch" | "pull" | "ls-remote" | "archive") if args.contains(&"-u") => {
            Inspection::opaque("git -u names a program to run")
        }
        Some("bisect") if args.contains(&"run") => {
            Inspection::opaque("git bisect run runs a command")
        }
        Some("submodule") if args.contains(&"foreach") => {
            Inspection::opaque("git submodule foreach runs a command")
        }
        _ => Inspection::default(),
    }
}

/// `ssh HOST COMMAND` runs a command on another host, out of this policy's sight;
/// `-o ProxyCommand`/`LocalCommand` run local ones.
fn ssh(args: &[&str]) -> Inspection {
    // A config file (ProxyCommand, LocalCommand) read from input warden cannot see.
    if args.windows(2).any(|pair| {
        pair[0] == "-F" && (pair[1].starts_with("/dev/") || pair[1].starts_with("/proc/"))
    }) || args
        .iter()
        .any(|arg| arg.starts_with("-F/dev/") || arg.starts_with("-F/proc/"))
    {
        return Inspection::opaque("ssh -F reads a config that may run commands from input");
    }
    const VALUES: &str = "BbcDEeFIiJLlmOoPpQRSWw";
    let mut index = 0;
    let mut host = None;
    while let Some(arg) = args.get(index) {
        if let Some(cluster) = arg.strip_prefix('-').filter(|rest| !rest.is_empty()) {
            let takes_value = cluster.chars().last().is_some_and(|c| VALUES.contains(c));
            if cluster.starts_with('o') || (takes_value && cluster.ends_with('o')) {
                let value = if cluster.len() > 1 && cluster.starts_with('o') {
                    Some(&cluster[1..])
                } else {
                    args.get(index + 1).copied()
                };
                let lower = value.unwrap_or_default().to_ascii_lowercase();
                if lower.starts_with("proxycommand")
                    || lower.starts_with("localcommand")
                    || lower.starts_with("permitlocalcommand")
                    || lower.starts_with("remotecommand")
                    || lower.starts_with("knownhostscommand")
                {
                    return Inspection::opaque("ssh -o runs a local command");
                }
            }
            index += if takes_value && cluster.len() == 1 {
                2
            } else {
                1
            };
            continue;
        }
        if host.is_none() {
            host = Some(*arg);
            index += 1;
            continue;
        }
        return Inspection::opaque(
            "ssh runs a command on another host, out of this policy's sight",
        );
    }
    Inspection::default()
}

fn flag_opaque(args: &[&str], options: &[&str], what: &str) -> Inspection {
    match args
        .iter()
        .find(|arg| options.iter().any(|option| names_option(arg, option)))
    {
        Some(arg) => Inspection::opaque(format!("{what} {arg}")),
        None => Inspection::default(),
    }
}
