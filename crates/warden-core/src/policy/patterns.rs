//! Whether a path written with a glob or an expansion may name a path `deny_paths`
//! covers: `cat /etc/shado?`, `cat "$HOME/.ssh/id_rsa"`. The word becomes a regular
//! language (a glob's wildcards as the shell expands them — `*` and `?` never cross
//! `/` nor match a leading `.` — and an expansion as any text), the rule another
//! (the path or anything below it), and the two are intersected as DFAs. A non-empty
//! intersection denies: the word may name the denied path when it runs.

use std::collections::HashSet;

use regex_automata::Anchored;
use regex_automata::dfa::{Automaton, StartKind, dense};
use regex_automata::util::{start, syntax};

use super::shell::Word;

/// A compiled regular language over bytes.
#[derive(Debug, Clone)]
pub struct Language(dense::DFA<Vec<u32>>);

/// States explored before the answer is "may match" (a bound on hostile input).
const MAX_PAIRS: usize = 50_000;

impl Language {
    /// `regex` anchored at both ends, over bytes; `None` when it cannot be built as
    /// a DFA (the caller then decides conservatively).
    pub fn new(regex: &str) -> Option<Language> {
        dense::Builder::new()
            .syntax(syntax::Config::new().unicode(false).utf8(false))
            .configure(
                dense::Config::new()
                    .start_kind(StartKind::Anchored)
                    .dfa_size_limit(Some(1 << 20))
                    .determinize_size_limit(Some(1 << 20)),
            )
            .build(&format!(r"(?s)\A(?:{regex})\z"))
            .ok()
            .map(Language)
    }

    /// A `deny_paths` rule: the path it names and everything below.
    pub fn of_rule(pattern: &str) -> Option<Language> {
        Language::new(&format!("(?:{pattern})(?:/.*)?"))
    }

    /// Whether some text is in both languages.
    pub fn meets(&self, other: &Language) -> bool {
        let config = start::Config::new().anchored(Anchored::Yes);
        let (Ok(a), Ok(b)) = (self.0.start_state(&config), other.0.start_state(&config)) else {
            return true;
        };
        let mut seen = HashSet::new();
        let mut frontier = vec![(a, b)];
        while let Some((a, b)) = frontier.pop() {
            if !seen.insert((a, b)) {
                continue;
            }
            if seen.len() > MAX_PAIRS {
                return true;
            }
            if self.0.is_match_state(self.0.next_eoi_state(a))
                && other.0.is_match_state(other.0.next_eoi_state(b))
            {
                return true;
            }
            for byte in 0..=255u8 {
                let (next_a, next_b) = (self.0.next_state(a, byte), other.0.next_state(b, byte));
                if !self.0.is_dead_state(next_a) && !other.0.is_dead_state(next_b) {
                    frontier.push((next_a, next_b));
                }
            }
        }
        false
    }
}

/// The regex of the paths `word` may name when it runs (its text normalized
/// already), or `None` when it is a plain literal.
pub fn word_regex(text: &str, word: &Word) -> Option<String> {
    if word.literal().is_some() {
        return None;
    }
    let chars: Vec<char> = text.chars().collect();
    let mut regex = String::new();
    let mut at = 0;
    while at < chars.len() {
        let c = chars[at];
        let component_start = at == 0 || chars[at - 1] == '/';
        match c {
            '$' if word.expands => {
                at = skip_expansion(&chars, at);
                regex.push_str(".*");
                continue;
            }
            '`' if word.expands => {
                at = chars[at + 1..]
                    .iter()
                    .position(|&c| c == '`')
                    .map_or(chars.len(), |offset| at + offset + 2);
                regex.push_str(".*");
                continue;
            }
            '*' if word.globs => regex.push_str(if component_start {
                "(?:[^/.][^/]*)?"
            } else {
                "[^/]*"
            }),
            '?' if word.globs => regex.push_str(if component_start { "[^/.]" } else { "[^/]" }),
            // A bracket warden cannot read exactly (`[[:alpha:]]`, `[]w]`, `[\w]`) is
            // any one character: the safe side.
            '[' if word.globs && odd_bracket(&chars[at..]) => {
                let end = chars[at + 1..]
                    .iter()
                    .position(|&c| c == ']')
                    .map_or(chars.len(), |offset| at + 1 + offset);
                // Past `[:class:]` and a leading `]`, to the bracket's own end.
                let close = chars[end + 1..]
                    .iter()
                    .position(|&c| c == ']')
                    .map_or(end, |offset| end + 1 + offset);
                regex.push_str("[^/]");
                at = close.max(end) + 1;
                continue;
            }
            '[' if word.globs => match chars[at..].iter().position(|&c| c == ']') {
                Some(end) if end > 1 => {
                    let class: String = chars[at + 1..at + end].iter().collect();
                    let (negated, body) = match class.strip_prefix(['!', '^']) {
                        Some(body) => (true, body.to_owned()),
                        None => (false, class),
                    };
                    let body = body.replace('\\', r"\\").replace('[', r"\[");
                    regex.push_str(&format!("[{}{body}]", if negated { "^/" } else { "" }));
                    at += end + 1;
                    continue;
                }
                _ => regex.push_str(r"\["),
            },
            '{' if word.globs => match chars[at..].iter().position(|&c| c == '}') {
                Some(end) => {
                    let inner: String = chars[at + 1..at + end].iter().collect();
                    if inner.contains(',') {
                        let options: Vec<String> = inner.split(',').map(regex::escape).collect();
                        regex.push_str(&format!("(?:{})", options.join("|")));
                    } else {
                        // `{1..9}`: some text.
                        regex.push_str(".*");
                    }
                    at += end + 1;
                    continue;
                }
                None => regex.push_str(r"\{"),
            },
            _ => regex.push_str(&regex::escape(&c.to_string())),
        }
        at += 1;
    }
    Some(regex)
}

/// A bracket expression with a class, a leading `]`, a nested `[` or an escape.
fn odd_bracket(chars: &[char]) -> bool {
    let body: String = chars.iter().skip(1).take_while(|&&c| c != '/').collect();
    let body = body.strip_prefix(['!', '^']).unwrap_or(&body);
    body.starts_with(']')
        || body.contains("[:")
        || body.contains("[=")
        || body.contains("[.")
        || body
            .split(']')
            .next()
            .is_some_and(|inside| inside.contains(['[', '\\']))
}

/// The index after the expansion starting at `at` (`$x`, `${..}`, `$(..)`, `$((..))`).
fn skip_expansion(chars: &[char], at: usize) -> usize {
    let close = |open: char, close: char, from: usize| {
        let mut depth = 0;
        for (offset, &c) in chars[from..].iter().enumerate() {
            if c == open {
                depth += 1;
            } else if c == close {
                depth -= 1;
                if depth == 0 {
                    return from + offset + 1;
                }
            }
        }
        chars.len()
    };
    match chars.get(at + 1) {
        Some('{') => close('{', '}', at + 1),
        Some('(') => close('(', ')', at + 1),
        Some(c) if c.is_ascii_alphabetic() || *c == '_' => {
            let mut end = at + 1;
            while chars
                .get(end)
                .is_some_and(|c| c.is_ascii_alphanumeric() || *c == '_')
            {
                end += 1;
            }
            end
        }
        Some(_) => at + 2,
        None => at + 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meets(text: &str, globs: bool, expands: bool, rule: &str) -> bool {
        let word = Word {
            text: text.into(),
            globs,
            expands,
        };
        let language = Language::new(&word_regex(text, &word).unwrap()).unwrap();
        language.meets(&Language::of_rule(rule).unwrap())
    }

    #[test]
    fn globs_and_expansions_meet_the_rules_they_may_name() {
        assert!(meets("/etc/shado?", true, false, "/etc/shadow"));
        assert!(meets("/etc/shado[w]", true, false, "/etc/shadow"));
        assert!(meets("/etc/*", true, false, "/etc/shadow"));
        assert!(meets("{/etc/shadow,x}", true, false, "/etc/shadow"));
        assert!(meets("$HOME/.ssh/id_rsa", false, true, r".*/\.ssh(/.*)?"));
        assert!(meets("/root/.ssh/*", true, false, r".*/\.ssh(/.*)?"));
        // `*` does not match a leading dot, nor cross `/`.
        assert!(!meets("/var/*", true, false, r".*/\.ssh(/.*)?"));
        assert!(!meets("/var/*", true, false, "/var/spool/cron(/.*)?"));
        assert!(!meets("/etc/*.conf", true, false, "/etc/shadow"));
        assert!(!meets("/etc/shado[!w]", true, false, "/etc/shadow"));
    }
}
