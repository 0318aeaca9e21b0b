//! [`analyze`]: a command as policy sees it. The grammar's simple commands, with
//! wrappers looked through (recursively, scripts given to shells parsed again),
//! exec-capable arguments inspected, each command classed, every path it names or
//! redirects to, and every environment name it sets. Host-independent: computed once
//! per call, then decided per host by [`super::Policy`].

use serde::Serialize;

use super::classes::{self, Class};
use super::patterns;
use super::programs;
use super::shell::{self, RawCommand, RedirectKind, Stdin, Word, holds_code};
use super::wrappers::{self, Step, Wrapper};

/// Redirection targets that hold nothing.
const HARMLESS_DEVICES: &[&str] = &[
    "/dev/null",
    "/dev/zero",
    "/dev/stdin",
    "/dev/stdout",
    "/dev/stderr",
    "/dev/tty",
];

/// How deep wrappers and scripts nest before the command counts as opaque.
const MAX_DEPTH: usize = 12;

/// Most paths one command is checked for; a command naming more is opaque (a bound
/// on the work a hostile command can ask of the policy).
const MAX_PATHS: usize = 4096;

/// Most directories a command may `cd` to that relative paths are placed in.
const MAX_DIRECTORIES: usize = 16;

/// No path longer can be opened (Linux PATH_MAX); a longer word is refused unread.
const PATH_MAX: usize = 4096;

/// Most paths with globs or variables one command is checked for, and their size:
/// each becomes a DFA intersected with every rule.
const MAX_PATTERNS: usize = 64;
const MAX_PATTERN_BYTES: usize = 1024;

/// An unknown program with more arguments than this is not searched for what it
/// may run.
const MAX_WRAPPED_ARGS: usize = 256;

/// One simple command, normalized.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct SimpleCommand {
    /// Program and arguments: quotes removed, escapes resolved, wrappers looked
    /// through; expansions as written.
    pub argv: Vec<String>,
    /// Which arguments hold an expansion (their value is known only when it runs).
    #[serde(skip)]
    #[schemars(skip)]
    pub expands: Vec<bool>,
    /// The wrappers looked through, outermost first (`sudo`, `env`, `sh -c`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub via: Vec<String>,
    /// The whole invocation from the outermost privileged wrapper (`sudo -u x cmd`):
    /// an allow rule must cover this, not just the inner command.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub privileged: Option<String>,
    pub class: Class,
    /// A program warden does not know may run its arguments (`strace touch f`,
    /// `setarch x86_64 touch f`): deny rules also match what follows it.
    #[serde(skip)]
    #[schemars(skip)]
    pub may_wrap: bool,
}

impl SimpleCommand {
    /// The argv joined by spaces: what regex rules match in full.
    pub fn text(&self) -> String {
        self.argv.join(" ")
    }
}

/// A path a command names: redirected to, written by an option, or given as an
/// argument that looks like a path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct PathUse {
    pub path: String,
    pub write: bool,
}

/// A path written with a glob or an expansion: what it names is known only when it
/// runs, so it is checked as the language of what it may name.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct PathPattern {
    pub path: String,
    pub write: bool,
    /// What it may name, once per call (`None`: too complex to build; it then meets
    /// every rule).
    #[serde(skip)]
    #[schemars(skip)]
    pub language: Option<patterns::Language>,
}

/// A command string (or argv) as policy sees it.
#[derive(Debug, Clone, Default, Serialize, schemars::JsonSchema)]
pub struct Analysis {
    pub commands: Vec<SimpleCommand>,
    /// Why parts of it cannot be checked; empty when everything was seen.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub opaque: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<PathUse>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub patterns: Vec<PathPattern>,
    /// The commands again with their relative arguments in each directory a `cd`
    /// goes to: deny rules match these too.
    #[serde(skip)]
    #[schemars(skip)]
    pub spellings: Vec<SimpleCommand>,
    /// Environment names the command sets (assignments, `env`, `export`, the call's
    /// `env`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    /// The highest class of its commands (opaque parts count as destructive: what
    /// cannot be seen may do anything).
    pub class: Class,
    /// A shell takes its script from the call's own input (`bash`, `sudo -u x sh`):
    /// an interactive `command` then checks every line it is sent.
    #[serde(skip)]
    #[schemars(skip)]
    pub shell_reads_input: bool,
}

/// What a call runs: a shell string or an argv, with the call's `env` names and
/// `stdin` (read when a shell takes its script from there).
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    pub shell: Option<&'a str>,
    pub argv: Option<&'a [String]>,
    pub env: &'a [String],
    pub stdin: Option<&'a str>,
    /// The working directory relative paths are taken in, when the call names one.
    pub working_directory: Option<&'a str>,
}

impl<'a> Input<'a> {
    /// A shell string alone (no env, stdin or working directory).
    pub fn shell(text: &'a str) -> Input<'a> {
        Input {
            shell: Some(text),
            argv: None,
            env: &[],
            stdin: None,
            working_directory: None,
        }
    }
}

/// `classify` gives a command's class (the operator's table first, then the built-in).
pub fn analyze(input: Input, classify: &dyn Fn(&SimpleCommand) -> Option<Class>) -> Analysis {
    analyze_from(input, classify, false)
}

/// [`analyze`] for a command that starts in a directory warden cannot tell (a line
/// sent to an interactive shell after an earlier line changed directory): relative
/// paths may be under any directory, as after a `cd` warden cannot follow.
pub fn analyze_unplaced(
    input: Input,
    classify: &dyn Fn(&SimpleCommand) -> Option<Class>,
) -> Analysis {
    analyze_from(input, classify, true)
}

fn analyze_from(
    input: Input,
    classify: &dyn Fn(&SimpleCommand) -> Option<Class>,
    unplaced: bool,
) -> Analysis {
    let mut analyzer = Analyzer {
        analysis: Analysis::default(),
        stdin: input.stdin,
        working_directory: input.working_directory,
        classify,
        relative: Vec::new(),
        directories: Vec::new(),
        seen: Default::default(),
        redirect_class: Class::ReadOnly,
        unknown_directory: unplaced,
    };
    analyzer.analysis.env.extend(input.env.iter().cloned());
    // The working directory is a path the command works in; a relative one starts
    // where warden cannot tell.
    if let Some(directory) = input.working_directory {
        if directory.starts_with('/') {
            analyzer.path(directory, false);
        } else {
            analyzer.working_directory = None;
            analyzer.unknown_directory = true;
            analyzer.path(directory, false);
            analyzer.directories.push(format!("./{directory}"));
        }
    }
    if let Some(text) = input.shell {
        analyzer.script(text, Stdin::Inherited, &Context::default());
    }
    if let Some(argv) = input.argv {
        // No shell at all: every word is literal, and a first word that looks like
        // an assignment is the program's name.
        let words: Vec<Word> = argv.iter().map(Word::literal_word).collect();
        analyzer.words(&words, Stdin::Inherited, &Context::default());
    }
    analyzer.place_relative_paths();
    analyzer.relative_arguments();
    let analysis = &mut analyzer.analysis;
    analysis.class = analysis
        .commands
        .iter()
        .map(|command| command.class)
        .max()
        .unwrap_or(Class::ReadOnly);
    analysis.class = analysis.class.max(analyzer.redirect_class);
    if !analysis.opaque.is_empty() {
        analysis.class = Class::Destructive;
    }
    analyzer.analysis
}

/// Where a command sits: the wrappers around it.
#[derive(Debug, Clone, Default)]
struct Context {
    depth: usize,
    via: Vec<String>,
    privileged: Option<String>,
    /// Under xargs: more arguments come from the input.
    appended: bool,
}

struct Analyzer<'a> {
    analysis: Analysis,
    stdin: Option<&'a str>,
    working_directory: Option<&'a str>,
    classify: &'a dyn Fn(&SimpleCommand) -> Option<Class>,
    /// Relative paths, placed at the end in every directory the command may be in.
    relative: Vec<(String, bool)>,
    /// Directories `cd`/`pushd` may move to (`cd /etc && cat shadow` reads
    /// `/etc/shadow`).
    directories: Vec<String>,
    /// Index of each path in `analysis.paths`.
    seen: std::collections::HashMap<String, usize>,
    /// The class redirections of compound commands give the whole command.
    redirect_class: Class,
    /// A `cd` went where warden cannot tell (`cd "$d"`, `cd /et?`, `cd -`): relative
    /// paths may then be under any directory.
    unknown_directory: bool,
}

impl Analyzer<'_> {
    fn opaque(&mut self, why: impl Into<String>) {
        let why = why.into();
        if !self.analysis.opaque.contains(&why) {
            self.analysis.opaque.push(why);
        }
    }

    fn script(&mut self, text: &str, stdin: Stdin, context: &Context) {
        if context.depth > MAX_DEPTH {
            self.opaque("commands nest deeper than warden follows");
            return;
        }
        let parsed = shell::parse(text);
        for why in parsed.opaque {
            self.opaque(why);
        }
        // `{ ..; } > f`, `(:) > f`, a bare `> f`: the compound's redirection counts
        // for the whole command.
        for redirect in &parsed.redirects {
            let class = self.redirect(redirect.kind, &redirect.target);
            self.redirect_class = self.redirect_class.max(class);
        }
        for command in parsed.commands {
            let stdin = match (&command.stdin, &stdin) {
                (Stdin::Inherited, outer) => outer.clone(),
                (own, _) => own.clone(),
            };
            self.command(command, stdin, context);
        }
    }

    fn command(&mut self, command: RawCommand, stdin: Stdin, context: &Context) {
        // `IFS=: read a b` sets IFS for that one command, which changes no program;
        // IFS set for what follows (or exported) is checked like any name.
        let prefix_only = !command.words.is_empty() && !command.declaration;
        self.analysis.env.extend(
            command
                .assignments
                .iter()
                .filter(|name| !(prefix_only && *name == "IFS"))
                .cloned(),
        );
        let mut class = Class::ReadOnly;
        for redirect in &command.redirects {
            class = class.max(self.redirect(redirect.kind, &redirect.target));
        }
        let before = self.analysis.commands.len();
        self.words(&command.words, stdin, context);
        if let Some(own) = self.analysis.commands.get_mut(before) {
            own.class = own.class.max(class);
        }
    }

    /// A redirection's target is a path it reads or writes. Its class: `> file`
    /// destroys what the file held, `>> file` changes it.
    fn redirect(&mut self, kind: RedirectKind, target: &Word) -> Class {
        let write = kind != RedirectKind::Read;
        if target.literal().is_none() {
            if write {
                self.opaque(format!(
                    "output goes to {:?}, a path known only when it runs",
                    target.text
                ));
            }
            self.pattern(target, write);
            return Class::ReadOnly;
        }
        let normalized = normalize(&target.text, self.working_directory);
        if HARMLESS_DEVICES.contains(&normalized.as_str()) || normalized.starts_with("/dev/fd/") {
            return Class::ReadOnly;
        }
        self.path(&target.text, write);
        if write
            && (normalized.starts_with("/dev/")
                || normalized.starts_with("/proc/")
                || normalized.starts_with("/sys/"))
        {
            // A block device, a terminal, a printer: writing it is not undoable.
            return Class::Destructive;
        }
        match kind {
            RedirectKind::Truncate => Class::Destructive,
            RedirectKind::Append | RedirectKind::ReadWrite => Class::Mutating,
            RedirectKind::Read => Class::ReadOnly,
        }
    }

    fn path(&mut self, path: &str, write: bool) {
        if path.len() > PATH_MAX {
            self.opaque(format!("a path longer than {PATH_MAX} bytes"));
            return;
        }
        // `~+/x`, `~-/x`: the current and the previous directory, wherever a cd went.
        if let Some(rest) = path.strip_prefix("~+").or_else(|| path.strip_prefix("~-"))
            && (rest.is_empty() || rest.starts_with('/'))
        {
            let rest = normalize(rest.trim_start_matches('/'), None);
            self.anywhere(path, rest.trim_start_matches("./"), write);
        }
        // `/proc/self/root/../etc/shadow` is resolved by the kernel from `/`, before
        // any `..`; `/proc/N/cwd/x` is x where that process runs.
        if let Some(rest) = path.strip_prefix("/proc/")
            && let Some((_, below)) = rest.split_once('/')
        {
            if let Some(root) = below.strip_prefix("root/") {
                self.place(normalize(&format!("/{root}"), None), write);
            } else if let Some(cwd) = below.strip_prefix("cwd/") {
                let rest = normalize(cwd, None);
                self.anywhere(path, rest.trim_start_matches("./"), write);
            }
        }
        if !path.starts_with('/') {
            // `../../etc/shadow` from an unknown directory, `~root/../etc/shadow`: the
            // part after the climb may be anywhere.
            let unknown_start = path.starts_with('~') || self.working_directory.is_none();
            if unknown_start && let Some(rest) = climbs_out(path) {
                self.anywhere(path, &rest, write);
            }
            if !path.starts_with('~') {
                self.relative.push((path.to_owned(), write));
            }
        }
        self.place(normalize(path, self.working_directory), write);
    }

    /// `rest` below some directory warden cannot name: checked as `…/rest`.
    fn anywhere(&mut self, written: &str, rest: &str, write: bool) {
        if self.analysis.patterns.len() >= MAX_PATTERNS {
            self.opaque(format!(
                "the command names more than {MAX_PATTERNS} paths with globs or variables"
            ));
            return;
        }
        self.analysis.patterns.push(PathPattern {
            path: written.to_owned(),
            write,
            language: patterns::Language::new(&format!("(?:.*/)?{}", regex::escape(rest))),
        });
    }

    /// Each relative path also in every directory a `cd` in the command names: the
    /// order of a script is not followed, so every place it may be is checked.
    fn place_relative_paths(&mut self) {
        let relative = std::mem::take(&mut self.relative);
        let directories = self.directories.clone();
        for (path, write) in relative {
            for directory in &directories {
                self.place(normalize(&path, Some(directory)), write);
            }
            if self.unknown_directory {
                let rest = normalize(&path, None);
                let rest = rest.trim_start_matches("./").to_owned();
                self.anywhere(&path, &rest, write);
            }
        }
    }

    /// Relative arguments after a `cd`: `cd / && rm -rf srv` is `rm -rf /srv`. Each
    /// command is also given in the spellings its relative arguments have in the
    /// directories seen (for rules); after a `cd` warden cannot follow, a relative
    /// argument may be any path (an unknown value to deny rules).
    fn relative_arguments(&mut self) {
        let relative =
            |arg: &str| !arg.starts_with(['-', '/', '~']) && !arg.is_empty() && !arg.contains('=');
        let mut directories = self.directories.clone();
        directories.extend(self.working_directory.map(str::to_owned));
        let mut spelled = Vec::new();
        for command in &mut self.analysis.commands {
            if self.unknown_directory {
                for (at, arg) in command.argv.iter().enumerate().skip(1) {
                    if relative(arg)
                        && let Some(expands) = command.expands.get_mut(at)
                    {
                        *expands = true;
                    }
                }
            }
            if !command.argv.iter().skip(1).any(|arg| relative(arg)) {
                continue;
            }
            for directory in &directories {
                let mut alternative = command.clone();
                for arg in alternative.argv.iter_mut().skip(1) {
                    if relative(arg) {
                        *arg = normalize(arg, Some(directory));
                    }
                }
                alternative.class = command.class;
                spelled.push(alternative);
            }
        }
        self.analysis.spellings = spelled;
    }

    /// A glob or expansion where a path is expected.
    fn pattern(&mut self, word: &Word, write: bool) {
        if word.text.len() > MAX_PATTERN_BYTES || self.analysis.patterns.len() >= MAX_PATTERNS {
            self.opaque(format!(
                "more globbed or variable paths than warden checks ({MAX_PATTERNS} of up to {MAX_PATTERN_BYTES} bytes)"
            ));
            return;
        }
        // `/proc/*/root/etc/shadow`: any process's view of `/`, or its cwd.
        if word.text.starts_with("/proc/") {
            self.opaque(format!(
                "{:?} may name a path through a process's root or cwd",
                word.text
            ));
            return;
        }
        // `//etc/shado?`, `/tmp/../etc/shado?`: normalized like a literal path.
        let text = if word.text.starts_with('/') {
            normalize(&word.text, None)
        } else if word.text.starts_with(['~', '$', '{']) {
            word.text.clone()
        } else {
            match self.working_directory {
                Some(directory) => format!("{directory}/{}", word.text),
                None => format!("./{}", word.text),
            }
        };
        if let Some(regex) = patterns::word_regex(&text, word) {
            self.analysis.patterns.push(PathPattern {
                path: word.text.clone(),
                write,
                language: patterns::Language::new(&regex),
            });
        }
    }

    fn place(&mut self, path: String, write: bool) {
        // `/proc/self/root/etc/shadow` is `/etc/shadow`.
        if let Some(rest) = path.strip_prefix("/proc/")
            && let Some((_, below)) = rest
                .split_once("/root/")
                .or_else(|| rest.split_once("/cwd/"))
            && !below.is_empty()
        {
            self.place(format!("/{below}"), write);
        }
        match self.seen.get(&path) {
            Some(&index) => self.analysis.paths[index].write |= write,
            None if self.analysis.paths.len() >= MAX_PATHS => {
                self.opaque(format!("the command names more than {MAX_PATHS} paths"));
            }
            None => {
                self.seen.insert(path.clone(), self.analysis.paths.len());
                self.analysis.paths.push(PathUse { path, write });
            }
        }
    }

    fn words(&mut self, words: &[Word], stdin: Stdin, context: &Context) {
        let Some(program) = words.first() else {
            return;
        };
        if context.depth > MAX_DEPTH {
            self.opaque("commands nest deeper than warden follows");
            return;
        }
        if program.literal().is_none() {
            self.opaque(format!(
                "the command name {:?} is known only when it runs",
                program.text
            ));
            return;
        }
        // `! { ..; }`, `time { ..; }`, `coproc X { ..; }`: the grammar reads the group
        // as words; bash runs it.
        if words
            .iter()
            .any(|word| word.text == "{" || word.text == "}")
        {
            self.opaque("a command group the grammar reads as words (write it without `!`, `time` or `coproc`)");
            return;
        }
        let name = wrappers::basename(&program.text).to_owned();
        let inner_context = |wrapper: Wrapper| {
            let mut inner = context.clone();
            inner.depth += 1;
            inner.via.push(name.clone());
            if wrapper == Wrapper::Privileged && inner.privileged.is_none() {
                inner.privileged = Some(join(words));
            }
            inner
        };
        // `exec <<< 'x'` gives every later command that input; `read x <<< 'a[$(..)]'`
        // stores code arithmetic may run.
        if let Stdin::Text(text) = &stdin
            && (name == "exec" && words.len() == 1
                || matches!(name.as_str(), "read" | "mapfile" | "readarray")
                    && text.literal().is_some_and(holds_code))
        {
            self.opaque(format!(
                "{name} takes input that later commands or arithmetic may run"
            ));
            return;
        }
        let step = wrappers::look_through(words);
        // `echo touch f | xargs env`: xargs puts its input after the program, so a
        // wrapper under it gets its command from the input.
        if context.appended
            && wrappers::is_wrapper(&name)
            && matches!(step, Step::Program | Step::ShellStdin { .. })
        {
            self.opaque(format!("xargs gives {name} its command from the input"));
            return;
        }
        match step {
            Step::Program => self.program(words, context),
            Step::Runs {
                wrapper,
                assignments,
                inner,
            } => {
                self.analysis.env.extend(assignments);
                self.arguments(words, &inner);
                let mut inner_context = inner_context(wrapper);
                inner_context.appended = name == "xargs";
                self.words(&inner, stdin, &inner_context);
            }
            Step::Script { wrapper, script } => {
                self.script(&script, Stdin::Inherited, &inner_context(wrapper));
            }
            Step::ShellStdin { wrapper } => match stdin {
                Stdin::Text(text) => match text.literal() {
                    Some(script) => {
                        let script = script.to_owned();
                        self.script(&script, Stdin::Inherited, &inner_context(wrapper));
                    }
                    None => self.opaque(format!(
                        "{name} reads a script with expansions from a heredoc; quote the delimiter or give argv"
                    )),
                },
                Stdin::Inherited => match self.stdin {
                    Some(script) => {
                        self.analysis.shell_reads_input = true;
                        self.script(script, Stdin::Inherited, &inner_context(wrapper));
                    }
                    // Its input may come from anywhere (`exec <<<`, a caller): unseen.
                    None => self.opaque(format!(
                        "{name} reads a script from input warden cannot see; give it with -c"
                    )),
                },
                Stdin::Piped => self.opaque(format!(
                    "{name} runs a script piped into it, which warden cannot see"
                )),
                Stdin::File => self.opaque(format!(
                    "{name} runs a script file from its input; name the script as the program instead"
                )),
            },
            Step::Opaque(why) => self.opaque(why),
        }
    }

    /// The paths among a wrapper's own words (before `inner`).
    fn arguments(&mut self, words: &[Word], inner: &[Word]) {
        let own = words.len().saturating_sub(inner.len());
        for word in &words[1..own] {
            self.path_argument(word);
        }
    }

    fn program(&mut self, words: &[Word], context: &Context) {
        let program_name = wrappers::basename(&words[0].text);
        if matches!(program_name, "cd" | "pushd") {
            let target = words[1..]
                .iter()
                .find(|word| !word.text.starts_with('-') || word.text == "-");
            self.change_directory(target);
        }
        // `git -C DIR`, `tar -C DIR`, `make -C DIR`: the rest works from DIR.
        if matches!(program_name, "git" | "tar" | "make") {
            for (at, word) in words.iter().enumerate() {
                if word.text == "-C" || word.text == "--directory" {
                    self.change_directory(words.get(at + 1));
                } else if let Some(value) = word.text.strip_prefix("--directory=") {
                    let value = Word {
                        text: value.to_owned(),
                        ..word.clone()
                    };
                    self.change_directory(Some(&value));
                }
            }
        }
        // These change what a glob matches: warden's reading of globs would be wrong.
        if program_name == "shopt"
            && words.iter().any(|word| {
                matches!(
                    word.text.as_str(),
                    "dotglob" | "nocaseglob" | "extglob" | "globstar" | "nocasematch"
                )
            })
        {
            self.opaque("shopt changes what globs match");
        }
        self.names_set(words);
        let inspection = programs::inspect(words);
        if let Some(why) = inspection.opaque {
            self.opaque(why);
        }
        // Programs that never open their arguments: their words are text, not paths.
        if !matches!(
            wrappers::basename(&words[0].text),
            "echo"
                | "printf"
                | "basename"
                | "dirname"
                | "expr"
                | "seq"
                | "sleep"
                | "true"
                | "false"
                | ":"
        ) {
            for word in &words[1..] {
                self.path_argument(word);
            }
        }
        for path in &inspection.writes {
            self.path(path, true);
        }
        let mut argv: Vec<String> = words.iter().map(|word| word.text.clone()).collect();
        // `/bin/../usr/bin/touch` and `/usr//bin/touch` are `/usr/bin/touch` to rules.
        if argv[0].starts_with('/') {
            argv[0] = normalize(&argv[0], None);
        }
        let mut command = SimpleCommand {
            argv,
            expands: words.iter().map(|word| word.literal().is_none()).collect(),
            via: context.via.clone(),
            privileged: context.privileged.clone(),
            class: Class::Mutating,
            may_wrap: false,
        };
        command.class =
            (self.classify)(&command).unwrap_or_else(|| classes::builtin_class(&command.argv));
        let name = wrappers::basename(&command.argv[0]);
        command.may_wrap = !classes::known(name) && !wrappers::is_wrapper(name);
        let may_wrap = command.may_wrap;
        if may_wrap && command.argv.len() > MAX_WRAPPED_ARGS {
            self.opaque(format!(
                "an unknown program with more than {MAX_WRAPPED_ARGS} arguments (what it runs is not searched)"
            ));
        }
        self.analysis.commands.push(command);
        if may_wrap && words.len() <= MAX_WRAPPED_ARGS {
            // What it may run is read like any command (`setarch x86_64 sh -c …`,
            // `strace -o x rm -rf /srv`): every tail that starts with a program warden
            // knows or a wrapper.
            for at in 1..words.len() {
                let Some(text) = words[at].literal() else {
                    continue;
                };
                let name = wrappers::basename(text);
                if !text.starts_with('-')
                    && (classes::known(name)
                        || wrappers::is_wrapper(name)
                        || programs::runs_code(name))
                {
                    let mut inner = context.clone();
                    inner.depth += 1;
                    inner
                        .via
                        .push(wrappers::basename(&words[0].text).to_owned());
                    self.words(&words[at..], Stdin::Inherited, &inner);
                    break;
                }
            }
        }
        for inner in inspection.inner {
            let mut inner_context = context.clone();
            inner_context.depth += 1;
            inner_context
                .via
                .push(wrappers::basename(&words[0].text).to_owned());
            self.words(&inner, Stdin::Inherited, &inner_context);
        }
    }

    /// A `cd` (or `-C DIR`) to `target`: relative paths are also placed there.
    fn change_directory(&mut self, target: Option<&Word>) {
        let Some(target) = target else {
            self.directories.push("~".into());
            return;
        };
        match target.literal() {
            Some(_) if self.directories.len() >= MAX_DIRECTORIES => {
                self.opaque(format!(
                    "the command changes directory more than {MAX_DIRECTORIES} times"
                ));
            }
            // `cd -`, `pushd +1`: back to a directory warden did not see.
            Some(text) if text == "-" || text.starts_with('+') => self.unknown_directory = true,
            Some(directory) if directory.starts_with('/') || directory.starts_with('~') => {
                self.directories.push(normalize(directory, None));
            }
            Some(directory) => {
                // Relative to wherever the command is by then: any directory seen.
                let bases: Vec<String> = self.directories.clone();
                for base in bases {
                    self.directories.push(normalize(directory, Some(&base)));
                }
                match self.working_directory {
                    Some(base) => self.directories.push(normalize(directory, Some(base))),
                    None => self.unknown_directory = true,
                }
            }
            None => self.unknown_directory = true,
        }
    }

    /// Builtins that set variables without an assignment (`read PS4`, `printf -v
    /// PATH`, `mapfile PATH`, `getopts o PS4`): their names are checked like
    /// assignments. Builtins that evaluate a name (`let`, `read`, `printf -v`,
    /// `test -v`: `a[$(..)]` runs) must not be given code.
    fn names_set(&mut self, words: &[Word]) {
        let name = words[0].text.as_str();
        if !matches!(
            name,
            "read" | "mapfile" | "readarray" | "printf" | "getopts" | "let" | "test" | "["
        ) {
            return;
        }
        let args = &words[1..];
        let operands: Vec<&str> = {
            // Options that take a value, per builtin.
            let values: &[&str] = match name {
                "read" => &["-a", "-d", "-i", "-n", "-N", "-p", "-t", "-u"],
                "mapfile" | "readarray" => &["-d", "-n", "-O", "-s", "-u", "-C", "-c"],
                _ => &[],
            };
            let mut operands = Vec::new();
            let mut index = 0;
            while let Some(word) = args.get(index) {
                let text = word.text.as_str();
                if name == "printf" && text == "-v" {
                    operands.extend(args.get(index + 1).map(|word| word.text.as_str()));
                    break;
                }
                if name == "read" && text == "-a" {
                    operands.extend(args.get(index + 1).map(|word| word.text.as_str()));
                }
                if values.contains(&text) {
                    index += 2;
                } else {
                    if !text.starts_with('-') {
                        operands.push(text);
                    }
                    index += 1;
                }
            }
            operands
        };
        let set: Vec<&str> = match name {
            "read" => operands,
            "printf" => operands.into_iter().take(1).collect(),
            "mapfile" | "readarray" => operands.last().copied().into_iter().collect(),
            "getopts" => operands.get(1).copied().into_iter().collect(),
            _ => Vec::new(),
        };
        // What these builtins evaluate as a name or arithmetic: the names they set,
        // `let`'s expressions, `test -v`'s operand. Only literal text counts (`"$(x)"`
        // is a substitution, checked already).
        let evaluated: Vec<&str> = match name {
            "let" => args.iter().map(|word| word.text.as_str()).collect(),
            "test" | "[" => args
                .windows(2)
                .filter(|pair| pair[0].text == "-v")
                .map(|pair| pair[1].text.as_str())
                .collect(),
            _ => set.clone(),
        };
        let literal = |text: &str| {
            args.iter()
                .any(|word| word.text == text && word.literal().is_some())
        };
        if evaluated
            .iter()
            .any(|text| holds_code(text) && literal(text))
        {
            self.opaque(format!(
                "{name} evaluates a name that holds `$(..)` or backticks"
            ));
        }
        for variable in set {
            let variable = variable.split('[').next().unwrap_or(variable);
            self.analysis.env.push(variable.to_owned());
        }
    }

    /// An argument that names a file (`/etc/shadow`, `~/.ssh/id_rsa`, `--file=x/y`,
    /// `-f/etc/shadow`, or a plain word, a file where the command runs) is checked
    /// against `deny_paths` like a file tool's path.
    fn path_argument(&mut self, word: &Word) {
        if word.literal().is_none() {
            if looks_like_path(&word.text) || word.text.starts_with('$') && word.text.contains('/')
            {
                self.pattern(word, false);
            }
            return;
        }
        let text = word.text.as_str();
        let mut candidates = Vec::new();
        // `file:///etc/shadow`, `-F x=@/etc/shadow;type=…`, `-F 'x=</etc/shadow'`,
        // `host:/etc/shadow`.
        for marker in ["file://", "@", "<", ":"] {
            if let Some((_, rest)) = text.split_once(marker)
                && (rest.starts_with('/') || rest.starts_with('~'))
            {
                candidates.push(rest.split(';').next().unwrap_or(rest));
            }
        }
        // A plain word may be a file in the working directory (`cd /etc && cat
        // shadow`): it is checked where the command may run.
        if !text.is_empty() && !text.starts_with('-') {
            candidates.push(text);
        }
        if let Some((_, value)) = text.split_once('=')
            && looks_like_path(value)
        {
            candidates.push(value);
        }
        if text.starts_with('-')
            && let Some(at) = text.find(['/', '~'])
        {
            candidates.push(&text[at..]);
        }
        for candidate in candidates {
            self.path(candidate, false);
        }
    }
}

fn looks_like_path(text: &str) -> bool {
    !text.starts_with('-')
        && (text.contains('/')
            || text.starts_with('~')
            || (text.starts_with('.') && text.len() > 1 && text != ".."))
}

/// The part of a relative (or `~`) path after it climbs above where it starts
/// (`../../etc/shadow` → `etc/shadow`), if it does.
fn climbs_out(path: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    let mut climbed = false;
    // `~`, `~root`, `~+` is the start; the rest is walked from it.
    let rest = if path.starts_with('~') {
        path.split_once('/').map_or("", |(_, rest)| rest)
    } else {
        path
    };
    for part in rest.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    climbed = true;
                }
            }
            _ => parts.push(part),
        }
    }
    climbed.then(|| parts.join("/"))
}

/// A path with `.` and `..` resolved lexically and `//` collapsed; a relative one is
/// joined to the working directory, or kept as `./rel` (so `.*/\.ssh` still matches
/// `.ssh/id_rsa`).
pub fn normalize(path: &str, working_directory: Option<&str>) -> String {
    let joined = match (
        path.starts_with('/') || path.starts_with('~'),
        working_directory,
    ) {
        (true, _) => path.to_owned(),
        (false, Some(directory)) => format!("{directory}/{path}"),
        (false, None) => format!("./{path}"),
    };
    let (prefix, rest) = match joined.find('/') {
        Some(0) => ("", &joined[1..]),
        Some(at) => (&joined[..at], &joined[at + 1..]),
        None => (joined.as_str(), ""),
    };
    let mut parts: Vec<&str> = Vec::new();
    for part in rest.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            _ => parts.push(part),
        }
    }
    format!("{prefix}/{}", parts.join("/"))
}

fn join(words: &[Word]) -> String {
    words
        .iter()
        .map(|word| word.text.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}
