//! The shell grammar: tree-sitter-bash turns a command string into a syntax tree, and
//! [`parse`] reads it into simple commands of normalized [`Word`]s (quotes removed,
//! escapes resolved), their assignments and redirections, and the inner commands of
//! `$(..)`, backticks and `<(..)`, found wherever they occur.
//!
//! The walk fails closed: a node kind it does not know, a syntax error or a missing
//! token makes the string opaque instead of being skipped. Why tree-sitter-bash over
//! brush-parser: ARCHITECTURE.md, "Decisions".

use tree_sitter::{Node, Parser};

/// One word as the shell will see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    /// Quotes removed and escapes resolved; expansions kept as written (`$HOME/x`).
    pub text: String,
    /// Holds a parameter, command or arithmetic expansion: its value is known only
    /// when it runs.
    pub expands: bool,
    /// Unquoted glob or brace characters: the shell may turn it into other words.
    pub globs: bool,
}

impl Word {
    pub fn literal_word(text: impl Into<String>) -> Word {
        Word {
            text: text.into(),
            expands: false,
            globs: false,
        }
    }

    /// The text when it is exactly what the program receives.
    pub fn literal(&self) -> Option<&str> {
        (!self.expands && !self.globs).then_some(self.text.as_str())
    }
}

/// A redirection of a simple command or a compound one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    pub target: Word,
    pub kind: RedirectKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedirectKind {
    Read,
    /// `>`, `>|`, `&>`: the file is truncated.
    Truncate,
    /// `>>`, `&>>`.
    Append,
    /// `<>`: opened for reading and writing.
    ReadWrite,
}

/// Where a simple command's standard input comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stdin {
    /// Whatever the enclosing command gets (for the top level: the call's `stdin`).
    Inherited,
    /// The previous command of a pipeline.
    Piped,
    /// A here-string or heredoc: its text.
    Text(Word),
    /// A file (`< script.sh`).
    File,
}

/// A simple command as written: assignments, words (program first), redirections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawCommand {
    /// `NAME=value` before the program (or alone), and names `export`/`local`/… set.
    pub assignments: Vec<String>,
    pub words: Vec<Word>,
    pub redirects: Vec<Redirect>,
    pub stdin: Stdin,
    /// `export`/`local`/`readonly`/`declare`: its names outlive the command.
    pub declaration: bool,
}

/// A command string read by the grammar.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// Every simple command, inner ones (`$(..)`, function bodies) included.
    pub commands: Vec<RawCommand>,
    /// Redirections of compound commands (`{ ..; } > f`, `done < f`).
    pub redirects: Vec<Redirect>,
    /// Why (part of) the string cannot be read.
    pub opaque: Vec<String>,
}

/// Statement kinds whose children are walked as they are.
const CONTAINERS: &[&str] = &[
    "program",
    "list",
    "compound_statement",
    "subshell",
    "do_group",
    "if_statement",
    "elif_clause",
    "else_clause",
    "while_statement",
    "c_style_for_statement",
    "case_statement",
    "case_item",
    "negated_command",
    "function_definition",
    "test_command",
    "binary_expression",
    "unary_expression",
    "postfix_expression",
    "parenthesized_expression",
    "ternary_expression",
    "arithmetic_expansion",
    "command_substitution",
    "process_substitution",
    "heredoc_body",
    "string",
    "concatenation",
    "expansion",
    "subscript",
    "array",
];

/// Leaves that hold no command.
const LEAVES: &[&str] = &[
    "word",
    "number",
    "raw_string",
    "string_content",
    "ansi_c_string",
    "simple_expansion",
    "variable_name",
    "special_variable_name",
    "comment",
    "heredoc_start",
    "heredoc_end",
    "heredoc_content",
    "test_operator",
    "extglob_pattern",
    "regex",
    "file_descriptor",
    "brace_expression",
    "translated_string",
];

pub fn parse(text: &str) -> Parsed {
    let mut parser = Parser::new();
    let mut parsed = Parsed::default();
    if parser
        .set_language(&tree_sitter_bash::LANGUAGE.into())
        .is_err()
    {
        parsed
            .opaque
            .push("the shell grammar could not be loaded".into());
        return parsed;
    }
    let Some(tree) = parser.parse(text, None) else {
        parsed.opaque.push("the shell grammar gave no parse".into());
        return parsed;
    };
    let root = tree.root_node();
    // The grammar reads `r\<newline>m` as two words where bash runs `rm`: a line
    // continuation anywhere makes the string opaque rather than misread.
    if text.contains("\\\n") {
        parsed
            .opaque
            .push("a backslash-newline line continuation (put the command on one line)".into());
    }
    if root.has_error() {
        parsed
            .opaque
            .push("the shell grammar cannot parse this string (a syntax error)".into());
    }
    // The walk recurses with the tree; a tree nested deeper than any real command is
    // refused before it (measured without recursion).
    if depth_of(root) > MAX_NESTING {
        parsed.opaque.push(format!(
            "the command nests deeper than {MAX_NESTING} levels"
        ));
        return parsed;
    }
    let mut walker = Walker {
        source: text,
        parsed,
    };
    walker.statement(root, Stdin::Inherited);
    walker.parsed
}

/// Deepest syntax tree walked; real commands stay far below.
const MAX_NESTING: usize = 200;

/// The depth of the tree under `root`, walked with a cursor (no recursion).
fn depth_of(root: Node) -> usize {
    let mut cursor = root.walk();
    let (mut depth, mut deepest) = (0, 0);
    loop {
        if cursor.goto_first_child() {
            depth += 1;
            deepest = deepest.max(depth);
            continue;
        }
        loop {
            if cursor.goto_next_sibling() {
                break;
            }
            if !cursor.goto_parent() {
                return deepest;
            }
            depth -= 1;
        }
    }
}

struct Walker<'a> {
    source: &'a str,
    parsed: Parsed,
}

impl Walker<'_> {
    fn text(&self, node: Node) -> &str {
        &self.source[node.byte_range()]
    }

    fn statement(&mut self, node: Node, stdin: Stdin) {
        if node.is_error() || node.is_missing() {
            self.opaque("the shell grammar cannot parse part of this string");
            return;
        }
        match node.kind() {
            "command" => self.command(node, Vec::new(), stdin),
            "redirected_statement" => self.redirected(node, stdin),
            "pipeline" => {
                let mut cursor = node.walk();
                let stages: Vec<Node> = node.named_children(&mut cursor).collect();
                for (index, stage) in stages.into_iter().enumerate() {
                    let stdin = if index == 0 {
                        stdin.clone()
                    } else {
                        Stdin::Piped
                    };
                    self.statement(stage, stdin);
                }
            }
            "variable_assignment" | "variable_assignments" => {
                let mut assignments = Vec::new();
                self.assignment(node, &mut assignments);
                self.parsed.commands.push(RawCommand {
                    assignments,
                    words: Vec::new(),
                    redirects: Vec::new(),
                    stdin,
                    declaration: false,
                });
            }
            "declaration_command" | "unset_command" => self.declaration(node, stdin),
            "for_statement" | "select_statement" => {
                // `for PATH in …` assigns the loop's variable.
                for (field, child) in fields(node) {
                    if field == Some("variable") {
                        self.parsed.commands.push(RawCommand {
                            assignments: vec![self.text(child).to_owned()],
                            words: Vec::new(),
                            redirects: Vec::new(),
                            stdin: Stdin::Inherited,
                            declaration: true,
                        });
                    } else if child.is_named() {
                        self.statement(child, Stdin::Inherited);
                    }
                }
            }
            "file_redirect" | "heredoc_redirect" | "herestring_redirect" => {
                if let Some(redirect) = self.redirect(node) {
                    self.parsed.redirects.push(redirect);
                }
            }
            kind if CONTAINERS.contains(&kind) => {
                // Arithmetic and `[[ ]]` expand `$(..)` even between single quotes,
                // and evaluate subscripts held in their operands.
                if matches!(
                    kind,
                    "arithmetic_expansion" | "test_command" | "c_style_for_statement"
                ) || (kind == "compound_statement" && self.text(node).starts_with("(("))
                {
                    self.hidden_code(node);
                    self.quoted_code(node);
                }
                // The commands of a group read the group's input; a function's body
                // reads whatever its caller gives it (unknown here, like a pipe).
                let inner = match kind {
                    "function_definition" => Stdin::Piped,
                    "compound_statement" | "subshell" | "if_statement" | "elif_clause"
                    | "else_clause" | "while_statement" | "do_group" | "case_statement"
                    | "case_item" | "negated_command" | "list" | "program" => stdin.clone(),
                    _ => Stdin::Inherited,
                };
                let mut cursor = node.walk();
                let children: Vec<Node> = node.named_children(&mut cursor).collect();
                for child in children {
                    // A function's name and a for loop's variable are words, not
                    // commands; their children hold no command either.
                    self.statement(child, inner.clone());
                }
            }
            kind if LEAVES.contains(&kind) => {
                // Leaves may still hold substitutions (`"$(..)"` is a string).
                self.substitutions(node);
            }
            kind => self.opaque(&format!(
                "the shell construct {kind:?} is not one warden reads"
            )),
        }
    }

    /// `CMD > f`, `CMD <<EOF`, `{ ..; } > f`.
    fn redirected(&mut self, node: Node, stdin: Stdin) {
        let mut redirects = Vec::new();
        let mut stdin_text = None;
        let children = fields(node);
        for (field, child) in &children {
            if *field == Some("redirect") {
                self.collect_redirect(*child, &mut redirects, &mut stdin_text);
            }
        }
        let stdin = stdin_text.unwrap_or(stdin);
        let mut bodies = 0;
        for (field, child) in children {
            if field == Some("body") {
                bodies += 1;
                if child.kind() == "command" {
                    self.command(child, redirects.clone(), stdin.clone());
                } else {
                    self.parsed.redirects.extend(redirects.iter().cloned());
                    self.statement(child, stdin.clone());
                }
            }
        }
        // `> f` alone truncates f.
        if bodies == 0 {
            self.parsed.redirects.extend(redirects);
        }
    }

    fn collect_redirect(
        &mut self,
        node: Node,
        redirects: &mut Vec<Redirect>,
        stdin: &mut Option<Stdin>,
    ) {
        match node.kind() {
            "herestring_redirect" => {
                let mut cursor = node.walk();
                let children: Vec<Node> = node.named_children(&mut cursor).collect();
                let word = children
                    .iter()
                    .rfind(|child| child.kind() != "file_descriptor")
                    .map(|child| self.word(*child));
                if let Some(word) = word
                    && self.feeds_stdin(&children)
                {
                    self.set_stdin(stdin, Stdin::Text(word));
                }
            }
            "heredoc_redirect" => {
                let mut cursor = node.walk();
                let children: Vec<Node> = node.named_children(&mut cursor).collect();
                // `<<'EOF'`, `<<"EOF"`, `<<\EOF`: a quoted delimiter keeps the body literal.
                let on_stdin = self.feeds_stdin(&children);
                let quoted = children.iter().any(|child| {
                    child.kind() == "heredoc_start" && self.text(*child).contains(['\'', '"', '\\'])
                });
                for child in children {
                    match child.kind() {
                        "heredoc_body" => {
                            let body = self.heredoc(child);
                            if !quoted {
                                self.hidden_code(child);
                            }
                            if on_stdin {
                                self.set_stdin(stdin, Stdin::Text(body));
                            }
                        }
                        "file_redirect" => {
                            if let Some(redirect) = self.redirect(child) {
                                redirects.push(redirect);
                            }
                        }
                        "heredoc_start" | "heredoc_end" => {}
                        // `cat <<EOF | sh`, `<<EOF && touch f`: what follows the
                        // delimiter on its line hangs under the redirect.
                        _ => self.statement(child, Stdin::Inherited),
                    }
                }
                if stdin.is_none() && on_stdin {
                    *stdin = Some(Stdin::Text(Word::literal_word("")));
                }
            }
            _ => {
                if let Some(redirect) = self.redirect(node) {
                    let mut cursor = node.walk();
                    let children: Vec<Node> = node.named_children(&mut cursor).collect();
                    if redirect.kind == RedirectKind::Read && self.feeds_stdin(&children) {
                        self.set_stdin(stdin, Stdin::File);
                    }
                    redirects.push(redirect);
                }
            }
        }
    }

    /// Whether a redirection's descriptor (none given: 0) is standard input.
    fn feeds_stdin(&self, children: &[Node]) -> bool {
        children
            .iter()
            .find(|child| child.kind() == "file_descriptor")
            .is_none_or(|descriptor| self.text(*descriptor) == "0")
    }

    /// A command's input, once: a second input on fd 0 (`<<< a 0<<< b`) is one
    /// warden does not follow.
    fn set_stdin(&mut self, stdin: &mut Option<Stdin>, given: Stdin) {
        if stdin.is_some() {
            self.opaque("a command with more than one input on standard input");
        }
        *stdin = Some(given);
    }

    /// A heredoc body: literal text, or text with expansions (walked for commands).
    fn heredoc(&mut self, node: Node) -> Word {
        let mut expands = false;
        let mut cursor = node.walk();
        let children: Vec<Node> = node.named_children(&mut cursor).collect();
        for child in children {
            if child.kind() != "heredoc_content" {
                expands = true;
                self.statement(child, Stdin::Inherited);
            }
        }
        Word {
            text: self.text(node).to_owned(),
            expands,
            globs: false,
        }
    }

    /// A file redirection; `2>&1` and `>&-` (descriptors) are none.
    fn redirect(&mut self, node: Node) -> Option<Redirect> {
        let mut operator = String::new();
        let mut target = None;
        for (field, child) in fields(node) {
            if !child.is_named() {
                operator.push_str(self.text(child));
            } else if field == Some("destination") {
                target = Some(child);
            } else if child.kind() != "file_descriptor" {
                self.statement(child, Stdin::Inherited);
            }
        }
        let target = target?;
        let word = self.word(target);
        // `>&2`, `<&0`, `>&-` duplicate or close a descriptor; `&>1` is a file named 1.
        if matches!(operator.as_str(), ">&" | "<&" | ">&-" | "<&-")
            && (target.kind() == "number" || word.text == "-")
        {
            return None;
        }
        let kind = match operator.as_str() {
            "<" => RedirectKind::Read,
            "<>" => RedirectKind::ReadWrite,
            ">>" | "&>>" => RedirectKind::Append,
            "<&" => return None,
            _ => RedirectKind::Truncate,
        };
        Some(Redirect { target: word, kind })
    }

    fn command(&mut self, node: Node, mut redirects: Vec<Redirect>, mut stdin: Stdin) {
        let mut assignments = Vec::new();
        let mut words = Vec::new();
        let mut stdin_text = None;
        let mut last_end = None;
        for (field, child) in fields(node) {
            if !child.is_named() && field.is_none() {
                continue;
            }
            // Two words with nothing between them are one word to bash
            // (`/etc/shado[\w]` is read as `/etc/shado[` and `w]`).
            if matches!(field, Some("name" | "argument")) {
                if last_end == Some(child.start_byte()) {
                    self.opaque("the shell grammar split one word in two");
                }
                last_end = Some(child.end_byte());
            }
            match (field, child.kind()) {
                (Some("name"), _) => {
                    let inner = child.named_child(0).unwrap_or(child);
                    words.push(self.word(inner));
                }
                (Some("argument"), _) => words.push(self.word(child)),
                (Some("redirect"), _) => {
                    self.collect_redirect(child, &mut redirects, &mut stdin_text);
                }
                (_, "variable_assignment") => self.assignment(child, &mut assignments),
                (_, "comment") => {}
                (_, kind) => {
                    self.opaque(&format!("the shell construct {kind:?} in a command"));
                }
            }
        }
        if let Some(text) = stdin_text {
            // `bash <<< a <<'EOF'`: the statement's input and the command's own.
            if matches!(stdin, Stdin::Text(_) | Stdin::File) {
                self.opaque("a command with more than one input on standard input");
            }
            stdin = text;
        }
        self.parsed.commands.push(RawCommand {
            assignments,
            words,
            redirects,
            stdin,
            declaration: false,
        });
    }

    /// `export A=1 B`, `local x`, `readonly R=2`, `declare -x D=3`, `unset X`.
    fn declaration(&mut self, node: Node, stdin: Stdin) {
        let mut assignments = Vec::new();
        let mut words = Vec::new();
        let mut cursor = node.walk();
        let children: Vec<Node> = node.children(&mut cursor).collect();
        for child in children {
            match child.kind() {
                _ if !child.is_named() => {
                    words.push(Word::literal_word(self.text(child)));
                }
                "variable_assignment" => self.assignment(child, &mut assignments),
                "variable_name" => {
                    let name = self.text(child).to_owned();
                    words.push(Word::literal_word(name.clone()));
                    if words.first().is_some_and(|word| word.text != "unset") {
                        assignments.push(name);
                    }
                }
                _ => {
                    let word = self.word(child);
                    // `unset 'a[$(..)]'`, `declare 'a[$(..)]'`: the subscript is evaluated.
                    if word
                        .literal()
                        .is_some_and(|text| text.contains('[') && holds_code(text))
                    {
                        self.opaque("a subscript holding `$(..)` or backticks is evaluated");
                    }
                    // `declare -x 'PS4=…'` assigns as surely as `PS4=…`.
                    if let Some((name, value)) = word.text.split_once('=')
                        && crate::policy::wrappers::is_name(name)
                    {
                        assignments.push(name.to_owned());
                        if holds_code(value) {
                            self.opaque("a value holds `$(..)` or backticks that arithmetic or prompt expansion may run later");
                        }
                    }
                    words.push(word);
                }
            }
        }
        // `declare -n ref=NAME`: a nameref makes later assignments land elsewhere.
        if words.iter().skip(1).any(|word| {
            word.text.starts_with('-') && !word.text.starts_with("--") && word.text.contains('n')
        }) {
            self.opaque("a nameref (declare -n) makes assignments land on another name");
        }
        self.parsed.commands.push(RawCommand {
            assignments,
            words,
            redirects: Vec::new(),
            stdin,
            declaration: true,
        });
    }

    fn assignment(&mut self, node: Node, names: &mut Vec<String>) {
        for (field, child) in fields(node) {
            if !child.is_named() {
                continue;
            }
            match field {
                Some("name") => {
                    let name = self.text(child);
                    // `a[$(cmd)]=1`: the subscript is evaluated.
                    let name = name.split('[').next().unwrap_or(name).to_owned();
                    self.substitutions(child);
                    names.push(name);
                }
                _ => {
                    let value = self.word(child);
                    if child.kind() == "array" {
                        // `x=('a[$(touch f)]')`: each element is a value too.
                        self.quoted_code(child);
                    }
                    if value.literal().is_some_and(holds_code) {
                        // `x='a[$(touch f)]'; (( x ))`: arithmetic, `${x@P}` and
                        // namerefs run code held in a value.
                        self.opaque("a value holds `$(..)` or backticks that arithmetic or prompt expansion may run later");
                    }
                }
            }
        }
    }

    /// A word's normalized value; its inner commands join the parse.
    fn word(&mut self, node: Node) -> Word {
        let raw = self.text(node).to_owned();
        match node.kind() {
            "word" => unescape_unquoted(&raw),
            "number" => Word::literal_word(raw),
            "raw_string" => Word::literal_word(raw.trim_start_matches('\'').trim_end_matches('\'')),
            "ansi_c_string" => ansi_c(&raw),
            "string" => {
                self.hidden_code(node);
                self.substitutions(node);
                let mut cursor = node.walk();
                let expands = node
                    .named_children(&mut cursor)
                    .any(|child| child.kind() != "string_content");
                Word {
                    text: unescape_double_quoted(
                        raw.strip_prefix('"')
                            .unwrap_or(&raw)
                            .strip_suffix('"')
                            .unwrap_or(&raw),
                    ),
                    expands,
                    globs: false,
                }
            }
            "concatenation" => {
                let mut word = Word::literal_word("");
                let mut cursor = node.walk();
                let children: Vec<Node> = node.children(&mut cursor).collect();
                for child in children {
                    let part = self.word(child);
                    word.text.push_str(&part.text);
                    word.expands |= part.expands;
                    word.globs |= part.globs;
                }
                // `{/etc/shadow,x}` arrives in pieces; the braces span them.
                if raw.contains('{')
                    && raw.contains('}')
                    && (raw.contains(',') || raw.contains(".."))
                {
                    word.globs = true;
                }
                word
            }
            "brace_expression" => Word {
                text: raw,
                expands: false,
                globs: true,
            },
            _ => {
                // Expansions, substitutions, arithmetic, `$"…"`: known when it runs.
                if node.kind() == "expansion" {
                    if raw.starts_with("${!") || raw.contains("@P}") {
                        self.opaque("an indirect (${!x}) or prompt (${x@P}) expansion runs what a variable holds");
                    }
                    self.hidden_code(node);
                }
                if node.kind() == "arithmetic_expansion" {
                    // `$(( '$(touch f)' ))`: arithmetic expands inside single quotes.
                    self.hidden_code(node);
                    self.quoted_code(node);
                }
                if node.kind() == "command_substitution"
                    && raw.starts_with('`')
                    && raw.contains("\\`")
                {
                    self.opaque("nested backticks the grammar does not read");
                }
                self.substitutions(node);
                Word {
                    text: raw,
                    expands: true,
                    globs: false,
                }
            }
        }
    }

    /// Walks `node` and its descendants for commands (`$(..)`, backticks, `<(..)`).
    fn substitutions(&mut self, node: Node) {
        if node.is_error() || node.is_missing() {
            self.opaque("the shell grammar cannot parse part of this string");
            return;
        }
        let mut cursor = node.walk();
        let children: Vec<Node> = node.named_children(&mut cursor).collect();
        match node.kind() {
            "command_substitution" | "process_substitution" => {
                for statement in children {
                    self.statement(statement, Stdin::Inherited);
                }
            }
            _ => {
                for child in children {
                    self.substitutions(child);
                }
            }
        }
    }

    /// `$(` or a backtick in text the grammar gave no substitution node for (inside
    /// `${x:-…}` operands, unquoted heredocs): bash runs it, so it is opaque.
    fn hidden_code(&mut self, node: Node) {
        let raw = self.text(node);
        if !raw.contains('`') && !raw.contains("$(") {
            return;
        }
        let mut cursor = node.walk();
        let mut found = 0;
        let mut stack = vec![node];
        while let Some(current) = stack.pop() {
            if current.kind() == "command_substitution" || current.kind() == "arithmetic_expansion"
            {
                found += 1;
                continue;
            }
            stack.extend(current.named_children(&mut cursor));
        }
        let written = raw.matches('`').count() / 2 + raw.matches("$(").count();
        if written > found {
            self.opaque("command substitution in text the shell grammar does not read (inside ${..} or a heredoc)");
        }
    }

    /// A single-quoted operand holding `$(..)` or backticks inside arithmetic or
    /// `[[ ]]`: evaluated there, so it is code.
    fn quoted_code(&mut self, node: Node) {
        let mut cursor = node.walk();
        let mut stack = vec![node];
        while let Some(current) = stack.pop() {
            if current.kind() == "raw_string" && holds_code(self.text(current)) {
                self.opaque("arithmetic or [[ ]] evaluates `$(..)` held in a quoted operand");
                return;
            }
            stack.extend(current.named_children(&mut cursor));
        }
    }

    fn opaque(&mut self, why: &str) {
        if !self.parsed.opaque.iter().any(|known| known == why) {
            self.parsed.opaque.push(why.to_owned());
        }
    }
}

/// Text that runs as code if it is ever evaluated: `$(..)` or backticks.
pub(super) fn holds_code(text: &str) -> bool {
    text.contains("$(") || text.contains('`')
}

/// Every child of `node` with its field name.
fn fields<'tree>(node: Node<'tree>) -> Vec<(Option<&'tree str>, Node<'tree>)> {
    let mut cursor = node.walk();
    let children: Vec<Node> = node.children(&mut cursor).collect();
    children
        .into_iter()
        .enumerate()
        .map(|(index, child)| (node.field_name_for_child(index as u32), child))
        .collect()
}

/// An unquoted word: backslashes escape the next character; unescaped `*`, `?`, `[`
/// and `{a,b}` make it a pattern.
fn unescape_unquoted(raw: &str) -> Word {
    let mut text = String::new();
    let mut globs = false;
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                // `\<newline>` joins lines; any other escaped character is itself.
                if let Some(next) = chars.next()
                    && next != '\n'
                {
                    text.push(next);
                }
            }
            '*' | '?' | '[' => {
                globs = true;
                text.push(c);
            }
            '{' if raw.contains(',') || raw.contains("..") => {
                globs = true;
                text.push(c);
            }
            _ => text.push(c),
        }
    }
    Word {
        text,
        expands: false,
        globs,
    }
}

/// Inside double quotes a backslash escapes only `$`, `` ` ``, `"`, `\` and newline.
fn unescape_double_quoted(raw: &str) -> String {
    let mut text = String::new();
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\'
            && let Some(&next) = chars.peek()
            && matches!(next, '$' | '`' | '"' | '\\' | '\n')
        {
            chars.next();
            if next != '\n' {
                text.push(next);
            }
            continue;
        }
        text.push(c);
    }
    text
}

/// `$'…'`: C escapes resolved (`$'\x74ouch'` is `touch`). An escape warden does not
/// decode makes the word an expansion (its value is not known here).
fn ansi_c(raw: &str) -> Word {
    let body = raw
        .strip_prefix("$'")
        .and_then(|rest| rest.strip_suffix('\''))
        .unwrap_or(raw);
    let mut text = String::new();
    let mut expands = false;
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            text.push(c);
            continue;
        }
        let Some(escape) = chars.next() else { break };
        let simple = match escape {
            'n' => Some('\n'),
            't' => Some('\t'),
            'r' => Some('\r'),
            'a' => Some('\x07'),
            'b' => Some('\x08'),
            'e' | 'E' => Some('\x1b'),
            'f' => Some('\x0c'),
            'v' => Some('\x0b'),
            '\\' | '\'' | '"' | '?' => Some(escape),
            _ => None,
        };
        if let Some(simple) = simple {
            text.push(simple);
            continue;
        }
        let (radix, max) = match escape {
            'x' => (16, 2),
            'u' => (16, 4),
            'U' => (16, 8),
            '0'..='7' => (8, 3),
            _ => {
                expands = true;
                text.push('\\');
                text.push(escape);
                continue;
            }
        };
        let mut digits = String::new();
        if radix == 8 {
            digits.push(escape);
        }
        while digits.len() < max
            && let Some(&next) = chars.peek()
            && next.is_digit(radix)
        {
            digits.push(next);
            chars.next();
        }
        match u32::from_str_radix(&digits, radix)
            .ok()
            .and_then(char::from_u32)
        {
            Some(decoded) => text.push(decoded),
            None => expands = true,
        }
    }
    Word {
        text,
        expands,
        globs: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argvs(text: &str) -> Vec<Vec<String>> {
        let parsed = parse(text);
        assert!(parsed.opaque.is_empty(), "{text:?}: {:?}", parsed.opaque);
        parsed
            .commands
            .iter()
            .map(|command| command.words.iter().map(|word| word.text.clone()).collect())
            .collect()
    }

    #[test]
    fn quotes_and_escapes_are_removed() {
        assert_eq!(argvs("t'o'uch f"), [["touch", "f"]]);
        assert_eq!(argvs("\"touch\" f"), [["touch", "f"]]);
        assert_eq!(argvs("\\touch f"), [["touch", "f"]]);
        assert_eq!(argvs("echo $'\\x74ouch'"), [["echo", "touch"]]);
        assert_eq!(argvs("echo \"a \\\"b\\\" \\x\""), [["echo", "a \"b\" \\x"]]);
    }

    #[test]
    fn inner_commands_are_found_everywhere() {
        let found =
            argvs("echo \"$(touch a)\" `touch b` <(touch c) ${x:-$(touch d)}; y=$(touch e)");
        let programs: Vec<&str> = found
            .iter()
            .filter_map(|argv| argv.first().map(String::as_str))
            .collect();
        assert_eq!(
            programs
                .iter()
                .filter(|program| **program == "touch")
                .count(),
            5,
            "{found:?}"
        );
        let heredoc = argvs("cat <<EOF\n$(touch f)\nEOF");
        assert!(heredoc.iter().any(|argv| argv[0] == "touch"), "{heredoc:?}");
        let function = argvs("f(){ touch x; }; f");
        assert!(
            function.iter().any(|argv| argv[0] == "touch"),
            "{function:?}"
        );
    }

    #[test]
    fn redirections_and_stdin() {
        let parsed = parse("cat ok > ~/.bashrc 2>&1; bash <<< 'touch f'; sh < x.sh");
        assert_eq!(parsed.commands[0].redirects.len(), 1);
        assert_eq!(parsed.commands[0].redirects[0].target.text, "~/.bashrc");
        assert_eq!(parsed.commands[0].redirects[0].kind, RedirectKind::Truncate);
        assert_eq!(
            parsed.commands[1].stdin,
            Stdin::Text(Word::literal_word("touch f"))
        );
        assert_eq!(parsed.commands[2].stdin, Stdin::File);
        assert_eq!(parse("a | sh").commands[1].stdin, Stdin::Piped);
    }

    #[test]
    fn syntax_errors_and_patterns_are_flagged() {
        assert!(!parse("echo \"unterminated").opaque.is_empty());
        assert!(!parse("{touch,f}").opaque.is_empty());
        let glob = parse("/usr/bin/tou?h f");
        assert!(glob.commands[0].words[0].globs);
        let expansion = parse("$T f");
        assert!(expansion.commands[0].words[0].expands);
        assert_eq!(parse("X=1 touch f").commands[0].assignments, ["X"]);
    }
}
