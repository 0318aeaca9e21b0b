//! Splits a shell string into the simple commands policy rules are matched against.
//!
//! This first layer understands quoting and the separators `;`, `&`, `&&`, `||`, `|`,
//! newlines and subshell parentheses, and flags constructs it cannot see through
//! (`$(..)`, backticks, `<(..)`, `eval`). The full shell-aware parser (wrappers such as
//! `sudo`, `env`, `sh -c`) replaces [`analyze`] later without changing its callers.

/// A command string as policy sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandAnalysis {
    /// Each simple command, trimmed, in order.
    pub simple_commands: Vec<String>,
    /// Why the string cannot be fully analysed, if it cannot.
    pub opaque: Option<&'static str>,
}

pub fn analyze(text: &str) -> CommandAnalysis {
    let mut simple_commands = Vec::new();
    let mut opaque = None;
    let mut current = String::new();
    let mut chars = text.chars().peekable();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some('\''), '\'') => {
                quote = None;
                current.push(c);
            }
            (Some('\''), _) => current.push(c),
            (_, '\\') => {
                current.push(c);
                if let Some(next) = chars.next() {
                    current.push(next);
                }
            }
            (Some('"'), '"') => {
                quote = None;
                current.push(c);
            }
            (_, '`') => {
                opaque.get_or_insert("backtick command substitution");
                current.push(c);
            }
            (_, '$') if chars.peek() == Some(&'(') => {
                opaque.get_or_insert("$(..) command substitution");
                current.push(c);
            }
            (Some('"'), _) => current.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                current.push(c);
            }
            (None, '<' | '>') if chars.peek() == Some(&'(') => {
                opaque.get_or_insert("process substitution");
                current.push(c);
            }
            (None, ';' | '&' | '|' | '\n' | '(' | ')') => {
                // `&&`, `||`, `;;`, `|&` are two separator characters in a row: the
                // empty command between them is dropped below.
                flush(&mut current, &mut simple_commands);
            }
            (None, _) => current.push(c),
            (Some(_), _) => current.push(c),
        }
    }
    flush(&mut current, &mut simple_commands);
    if simple_commands.iter().any(|command| {
        let program = command.split_whitespace().next().unwrap_or_default();
        program == "eval" || program.ends_with("/eval")
    }) {
        opaque.get_or_insert("eval");
    }
    CommandAnalysis {
        simple_commands,
        opaque,
    }
}

fn flush(current: &mut String, commands: &mut Vec<String>) {
    let command = current.trim();
    if !command.is_empty() && !matches!(command, "{" | "}") {
        commands.push(command.to_owned());
    }
    current.clear();
}

/// The same simple command with its program named by basename (`/bin/rm -rf x` →
/// `rm -rf x`), so a rule written for `rm` also catches the full path.
pub fn with_program_basename(command: &str) -> Option<String> {
    let (program, rest) = command
        .split_once(char::is_whitespace)
        .unwrap_or((command, ""));
    let basename = program.rsplit('/').next().unwrap_or(program);
    (basename != program && !basename.is_empty()).then(|| {
        if rest.is_empty() {
            basename.to_owned()
        } else {
            format!("{basename} {rest}")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(text: &str) -> Vec<String> {
        analyze(text).simple_commands
    }

    #[test]
    fn separators_split_and_quotes_protect() {
        assert_eq!(split("uptime"), ["uptime"]);
        assert_eq!(
            split("a; b && c || d | e & f\ng"),
            ["a", "b", "c", "d", "e", "f", "g"]
        );
        assert_eq!(
            split("echo 'a; rm -rf /' && ls"),
            ["echo 'a; rm -rf /'", "ls"]
        );
        assert_eq!(split(r#"echo "x | y""#), [r#"echo "x | y""#]);
        assert_eq!(split("(cd /tmp; rm x)"), ["cd /tmp", "rm x"]);
        assert_eq!(split(r"echo a\;b"), [r"echo a\;b"]);
    }

    #[test]
    fn opaque_constructs_are_flagged() {
        assert!(analyze("echo $(rm -rf /)").opaque.is_some());
        assert!(analyze("echo `id`").opaque.is_some());
        assert!(analyze("diff <(ls a) <(ls b)").opaque.is_some());
        assert!(analyze("eval \"$X\"").opaque.is_some());
        assert!(analyze("echo '$(not run)'").opaque.is_none());
        assert!(analyze("uptime").opaque.is_none());
    }

    #[test]
    fn basename_form_of_a_full_path() {
        assert_eq!(
            with_program_basename("/bin/rm -rf /").as_deref(),
            Some("rm -rf /")
        );
        assert_eq!(with_program_basename("rm -rf /"), None);
    }
}
