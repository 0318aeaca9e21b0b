//! Secrets (PRODUCT.md §7): references resolved by warden, values masked on the way out.
//!
//! - `${env:NAME}` and `${file:PATH}` in a command's `env` values are resolved at the
//!   last moment, inside `RunContext::exec`: plan, digest, policy and the audit log see
//!   the reference, never the value. An agent may name only what the operator listed
//!   (`secrets.env`, `secrets.files`): otherwise a reference would let it read any
//!   variable or file of warden's machine and carry it to a host.
//! - Masking: every answer and error leaves the engine through [`Masker::mask`], which
//!   replaces resolved values (for the rest of the process), the call's own `env`
//!   values, `secrets.patterns` and common token shapes with `***`. Audit records get
//!   the same treatment on top of `audit::mask_secrets`.
//!
//! Values shorter than [`MIN_MASKED`] are not masked as text (an `env` value of `1`
//! would blank every digit); they still never reach an argv or the log.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use regex::Regex;
use serde_json::Value;

use crate::config::SecretsConfig;
use crate::error::{Error, Result};

/// What replaces a secret.
pub const MASK: &str = "***";
/// Shorter values are not searched for in text.
pub const MIN_MASKED: usize = 4;

/// Token shapes worth masking wherever they appear (issuers' documented prefixes).
const TOKEN_SHAPES: &[&str] = &[
    // GitHub tokens (classic and fine-grained).
    r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36,}\b",
    r"\bgithub_pat_[A-Za-z0-9_]{22,}\b",
    // AWS access key ids.
    r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",
    // Slack.
    r"\bxox[abprs]-[A-Za-z0-9-]{10,}\b",
    // OpenAI / Anthropic style API keys.
    r"\bsk-[A-Za-z0-9_-]{20,}\b",
    // Google API keys.
    r"\bAIza[0-9A-Za-z_-]{35}\b",
    // JSON Web Tokens.
    r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}",
    // PEM private keys, whole blocks.
    r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z0-9 ]*PRIVATE KEY-----",
];

pub struct Masker {
    allowed_env: Vec<String>,
    allowed_files: globset::GlobSet,
    /// Token shapes and `secrets.patterns`, as one alternation.
    shapes: Regex,
    /// The same, over bytes (output that is not text, masked before it is encoded).
    byte_shapes: regex::bytes::Regex,
    /// Every value a reference resolved to in this process.
    resolved: RwLock<Vec<String>>,
}

impl Masker {
    pub fn new(config: &SecretsConfig) -> Result<Masker> {
        let mut files = globset::GlobSetBuilder::new();
        for pattern in &config.files {
            let expanded = crate::config::expand_home(Path::new(pattern));
            let glob = globset::Glob::new(&expanded.display().to_string()).map_err(|error| {
                Error::invalid_input(format!("secrets.files: {pattern:?} is not a glob: {error}"))
            })?;
            files.add(glob);
        }
        let allowed_files = files
            .build()
            .map_err(|error| Error::invalid_input(format!("secrets.files: {error}")))?;
        let shapes = TOKEN_SHAPES
            .iter()
            .map(|shape| (*shape).to_owned())
            .chain(
                config
                    .patterns
                    .iter()
                    .map(|pattern| format!("(?:{pattern})")),
            )
            .collect::<Vec<_>>()
            .join("|");
        let invalid = |error: regex::Error| {
            Error::invalid_input(format!("secrets.patterns: not a valid regex: {error}"))
        };
        let byte_shapes = regex::bytes::Regex::new(&shapes).map_err(invalid)?;
        let shapes = Regex::new(&shapes).map_err(invalid)?;
        // The variables agents may name are secrets from the start: masked even in
        // output that shows them before any call referenced them.
        let known = config
            .env
            .iter()
            .filter_map(|name| std::env::var(name).ok())
            .filter(|value| value.len() >= MIN_MASKED)
            .collect();
        Ok(Masker {
            allowed_env: config.env.clone(),
            allowed_files,
            shapes,
            byte_shapes,
            resolved: RwLock::new(known),
        })
    }

    /// Refuses a call whose `env` values reference what the operator did not allow,
    /// before anything is planned (without reading the values).
    pub fn check_references(&self, args: &Value) -> Result<()> {
        let mut values = Vec::new();
        collect_env(args, &mut values, true);
        for value in values {
            self.resolve_with(&value, false)?;
        }
        Ok(())
    }

    /// The value of one `env` value: references resolved (and remembered for masking),
    /// anything else as given.
    pub fn resolve(&self, value: &str) -> Result<String> {
        self.resolve_with(value, true)
    }

    /// A secret reference's value and a newline, for a program that reads one line of
    /// stdin (`sudo -S`). Anything but a reference is refused: a literal would be the
    /// agent's secret in its own arguments.
    pub(crate) fn resolve_line(&self, reference: &str) -> Result<Vec<u8>> {
        if !is_reference(reference) {
            return Err(Error::invalid_input(
                "a password must be a secret reference, like \"${env:NAME}\" or \"${file:/path}\"",
            ));
        }
        let value = self.resolve(reference)?;
        if value.contains(['\n', '\r']) {
            return Err(Error::invalid_input(format!(
                "the secret {reference} holds a line break: it cannot be one line of stdin"
            )));
        }
        Ok(format!("{value}\n").into_bytes())
    }

    fn resolve_with(&self, value: &str, read: bool) -> Result<String> {
        let Some(reference) = value
            .strip_prefix("${")
            .and_then(|rest| rest.strip_suffix('}'))
        else {
            if value.contains("${env:") || value.contains("${file:") {
                return Err(Error::invalid_input(
                    "a secret reference must be the whole value, like \"${env:NAME}\" or \"${file:/path}\"",
                ));
            }
            return Ok(value.to_owned());
        };
        let resolved = if let Some(name) = reference.strip_prefix("env:") {
            self.env_value(name)?
        } else if let Some(path) = reference.strip_prefix("file:") {
            self.file_value(path, read)?
        } else {
            return Ok(value.to_owned());
        };
        if resolved.contains('\0') {
            return Err(Error::invalid_input(format!(
                "the secret {value} holds a NUL byte, which no environment variable can"
            )));
        }
        if resolved.len() >= MIN_MASKED
            && let Ok(mut known) = self.resolved.write()
            && !known.contains(&resolved)
        {
            known.push(resolved.clone());
        }
        Ok(resolved)
    }

    fn env_value(&self, name: &str) -> Result<String> {
        if !self.allowed_env.iter().any(|allowed| allowed == name) {
            return Err(Error::invalid_input(format!(
                "${{env:{name}}} is not allowed: secrets.env does not list {name}"
            ))
            .with_hint(
                "The operator lists the variables agents may use in secrets.env in warden.yaml.",
            ));
        }
        std::env::var(name).map_err(|_| {
            Error::invalid_input(format!(
                "${{env:{name}}}: {name} is not set in warden's environment"
            ))
        })
    }

    fn file_value(&self, path: &str, read: bool) -> Result<String> {
        let path = crate::config::expand_home(Path::new(path));
        // Matched on the resolved path: `..` or a symlink cannot step outside the globs.
        let real: PathBuf = path.canonicalize().map_err(|_| not_allowed(&path))?;
        if !self.allowed_files.is_match(&real) {
            return Err(not_allowed(&path));
        }
        if !read {
            return Ok(String::new());
        }
        let text = std::fs::read_to_string(&real).map_err(|error| {
            Error::invalid_input(format!("${{file:{}}}: {error}", path.display()))
        })?;
        // Secret files usually end with a newline that is not part of the secret.
        Ok(text.strip_suffix('\n').unwrap_or(&text).to_owned())
    }

    /// Masks `text`: resolved values, `also` (the call's own env values), patterns and
    /// token shapes.
    pub fn mask_text<'a>(&self, text: &'a str, also: &[String]) -> Cow<'a, str> {
        let mut masked = Cow::Borrowed(text);
        if let Ok(known) = self.resolved.read() {
            for value in known.iter().chain(also) {
                if value.len() >= MIN_MASKED && masked.contains(value.as_str()) {
                    masked = Cow::Owned(masked.replace(value.as_str(), MASK));
                }
            }
        }
        if self.shapes.is_match(&masked) {
            masked = Cow::Owned(self.shapes.replace_all(&masked, MASK).into_owned());
        }
        // Output cut at a limit may end inside a secret: its prefix is masked too.
        if let Ok(known) = self.resolved.read() {
            for value in known.iter().chain(also) {
                if let Some(cut) = cut_tail(&masked, value) {
                    masked = Cow::Owned(format!("{}{MASK}", &masked[..cut]));
                }
            }
        }
        masked
    }

    /// Whether `text` holds anything masking would hide.
    pub fn holds_secret(&self, text: &str) -> bool {
        matches!(self.mask_text(text, &[]), Cow::Owned(_))
    }

    /// Masks the next `chunk` of a stream read in pieces (an interactive command's
    /// output), `carry` holding what earlier calls kept back. Returns what may pass on
    /// now; keeps in `carry` a tail that begins a known value (resolved, or `also`)
    /// whose rest has not arrived, so a value cut between two chunks is still masked
    /// whole. Patterns and token shapes are matched within what passes on.
    pub(crate) fn mask_stream(
        &self,
        carry: &mut Vec<u8>,
        chunk: &[u8],
        also: &[String],
    ) -> Vec<u8> {
        carry.extend_from_slice(chunk);
        let mut masked = self.mask_bytes(carry, also);
        let held = self.unfinished_value(&masked, also);
        *carry = masked.split_off(masked.len() - held);
        masked
    }

    /// The longest tail of `bytes` that is a proper prefix of a known value.
    fn unfinished_value(&self, bytes: &[u8], also: &[String]) -> usize {
        let Ok(known) = self.resolved.read() else {
            return 0;
        };
        known
            .iter()
            .chain(also)
            .filter(|value| value.len() >= MIN_MASKED)
            .filter_map(|value| {
                (1..value.len().min(bytes.len() + 1))
                    .rev()
                    .find(|length| bytes.ends_with(&value.as_bytes()[..*length]))
            })
            .max()
            .unwrap_or(0)
    }

    /// Masks bytes (base64 in answers, artifacts): values, patterns, shapes.
    pub(crate) fn mask_bytes(&self, bytes: &[u8], also: &[String]) -> Vec<u8> {
        let mut masked = bytes.to_vec();
        if let Ok(known) = self.resolved.read() {
            for value in known.iter().chain(also) {
                if value.len() >= MIN_MASKED {
                    masked = replace_bytes(&masked, value.as_bytes(), MASK.as_bytes());
                }
            }
        }
        self.byte_shapes
            .replace_all(&masked, MASK.as_bytes())
            .into_owned()
    }

    /// Output cut in the middle (`head`, then `tail`, with the rest left out): a known
    /// value that `head` ends inside or `tail` starts inside is masked on that side, so
    /// neither half of a secret the cut split comes back. Whole values in either part
    /// are masked later, with the rest of the answer.
    pub(crate) fn mask_seam(
        &self,
        head: &[u8],
        tail: &[u8],
        also: &[String],
    ) -> (Vec<u8>, Vec<u8>) {
        let (mut head, mut tail) = (head.to_vec(), tail.to_vec());
        let Ok(known) = self.resolved.read() else {
            return (head, tail);
        };
        for value in known.iter().chain(also).map(String::as_bytes) {
            let pieces = MIN_MASKED..value.len();
            if let Some(length) = pieces
                .clone()
                .rev()
                .find(|length| head.ends_with(&value[..*length]))
            {
                head.truncate(head.len() - length);
                head.extend_from_slice(MASK.as_bytes());
            }
            if let Some(length) = pieces
                .rev()
                .find(|length| tail.starts_with(&value[value.len() - length..]))
            {
                tail.splice(..length, MASK.bytes());
            }
        }
        (head, tail)
    }

    /// Masks every string in `value`, in place; a field sent as base64 (its sibling
    /// `<field>_encoding` says so) is decoded, masked and encoded again.
    pub fn mask(&self, value: &mut Value, also: &[String]) {
        match value {
            Value::String(text) => {
                if let Cow::Owned(masked) = self.mask_text(text, also) {
                    *text = masked;
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|item| self.mask(item, also)),
            Value::Object(map) => {
                let encoded: Vec<String> = map
                    .iter()
                    .filter(|(_, encoding)| encoding.as_str() == Some("base64"))
                    .filter_map(|(key, _)| key.strip_suffix("_encoding").map(str::to_owned))
                    .collect();
                for (key, item) in map.iter_mut() {
                    let decoded = encoded
                        .contains(key)
                        .then(|| item.as_str())
                        .flatten()
                        .and_then(|text| data_encoding::BASE64.decode(text.as_bytes()).ok());
                    match decoded {
                        Some(bytes) => {
                            let masked = self.mask_bytes(&bytes, also);
                            *item = Value::String(data_encoding::BASE64.encode(&masked));
                        }
                        None => self.mask(item, also),
                    }
                }
            }
            _ => {}
        }
    }

    pub fn mask_error(&self, error: &mut Error, also: &[String]) {
        for text in [
            Some(&mut error.message),
            error.hint.as_mut(),
            error.command.as_mut(),
        ]
        .into_iter()
        .flatten()
        {
            if let Cow::Owned(masked) = self.mask_text(text, also) {
                *text = masked;
            }
        }
    }
}

/// Where `text` ends with a prefix of `value` long enough to mask (a cut secret).
fn cut_tail(text: &str, value: &str) -> Option<usize> {
    (MIN_MASKED..value.len())
        .rev()
        .filter(|length| value.is_char_boundary(*length))
        .find(|length| text.ends_with(&value[..*length]))
        .map(|length| text.len() - length)
}

fn replace_bytes(haystack: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut rest = haystack;
    while let Some(at) = rest
        .windows(needle.len())
        .position(|window| window == needle)
    {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(with);
        rest = &rest[at + needle.len()..];
    }
    out.extend_from_slice(rest);
    out
}

/// The values of `env` that are not references: masked like secrets in what the call
/// leaves behind (its answer, its artifacts).
pub fn literal_values(env: &std::collections::BTreeMap<String, String>) -> Vec<String> {
    env.values()
        .filter(|value| !is_reference(value))
        .cloned()
        .collect()
}

/// A secret reference: the whole value is `${env:…}` or `${file:…}`.
pub fn is_reference(text: &str) -> bool {
    (text.starts_with("${env:") || text.starts_with("${file:")) && text.ends_with('}')
}

fn not_allowed(path: &Path) -> Error {
    Error::invalid_input(format!(
        "${{file:{}}} is not allowed: it matches no secrets.files pattern (or does not exist)",
        path.display()
    ))
    .with_hint("The operator lists the files agents may use in secrets.files in warden.yaml.")
}

/// The `env` values of a call's arguments that are not references: masked in its own
/// answer (the agent gave them, but they are often secrets and belong on the host).
pub fn literal_env_values(args: &Value) -> Vec<String> {
    let mut values = Vec::new();
    collect_env(args, &mut values, false);
    values
}

/// `env` string values (and `password`s, `exec_sudo`'s) at any depth: the references,
/// or the literal values.
fn collect_env(value: &Value, out: &mut Vec<String>, references: bool) {
    match value {
        Value::Object(map) => {
            for (key, item) in map {
                if key == "password"
                    && let Value::String(text) = item
                {
                    if is_reference(text) == references {
                        out.push(text.clone());
                    }
                } else if key == "env"
                    && let Value::Object(env) = item
                {
                    out.extend(
                        env.values()
                            .filter_map(Value::as_str)
                            .filter(|text| is_reference(text) == references)
                            .map(str::to_owned),
                    );
                } else {
                    collect_env(item, out, references);
                }
            }
        }
        Value::Array(items) => items
            .iter()
            .for_each(|item| collect_env(item, out, references)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn masker(dir: &Path) -> Masker {
        Masker::new(&SecretsConfig {
            env: vec!["WARDEN_TEST_SECRET".into()],
            files: vec![format!("{}/allowed/*", dir.display())],
            patterns: vec!["corp-[0-9]{3}".into()],
        })
        .unwrap()
    }

    #[test]
    fn file_references_stay_inside_their_globs() {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().canonicalize().unwrap();
        std::fs::create_dir_all(dir.join("allowed")).unwrap();
        std::fs::write(dir.join("allowed/db"), "s3cret-value\n").unwrap();
        std::fs::write(dir.join("outside"), "not yours").unwrap();
        std::os::unix::fs::symlink(dir.join("outside"), dir.join("allowed/link")).unwrap();
        let masker = masker(&dir);
        let reference = |path: &str| format!("${{file:{}/{path}}}", dir.display());
        assert_eq!(
            masker.resolve(&reference("allowed/db")).unwrap(),
            "s3cret-value"
        );
        for escape in [
            "allowed/../outside",
            "allowed/link",
            "outside",
            "allowed/none",
        ] {
            let error = masker.resolve(&reference(escape)).unwrap_err();
            assert!(error.message.contains("not allowed"), "{escape}: {error:?}");
        }
        // The resolved value is masked from now on.
        assert_eq!(masker.mask_text("got s3cret-value!", &[]), "got ***!");
    }

    #[test]
    fn a_value_cut_between_chunks_of_a_stream_is_masked_whole() {
        let masker = masker(Path::new("/nonexistent"));
        let also = vec![String::from("hunter2-secret")];
        let mut carry = Vec::new();
        let mut passed = masker.mask_stream(&mut carry, b"pass: hunter2-s", &also);
        assert_eq!(passed, b"pass: ", "the value's start is held back");
        passed.extend(masker.mask_stream(&mut carry, b"ecret done\nhun", &also));
        assert_eq!(passed, b"pass: *** done\n");
        assert_eq!(carry, b"hun", "a new start is held again");
        // What turns out not to be the value passes with the next chunk.
        passed.extend(masker.mask_stream(&mut carry, b"gry\n", &also));
        assert_eq!(passed, b"pass: *** done\nhungry\n");
        assert!(carry.is_empty());
    }

    #[test]
    fn env_references_need_the_operator_and_the_whole_value() {
        let masker = masker(Path::new("/nonexistent"));
        assert!(
            masker
                .resolve("${env:HOME}")
                .unwrap_err()
                .message
                .contains("secrets.env")
        );
        assert!(masker.resolve("x${env:HOME}").is_err());
        assert_eq!(masker.resolve("plain").unwrap(), "plain");
    }

    #[test]
    fn a_secret_split_by_the_cut_is_masked_on_both_sides() {
        let masker = masker(Path::new("/nonexistent"));
        let also = ["split-secret-value".to_owned()];
        let (head, tail) = masker.mask_seam(b"out: split-se", b"cret-value done", &also);
        assert_eq!(
            (head.as_slice(), tail.as_slice()),
            (&b"out: ***"[..], &b"*** done"[..])
        );
        // Pieces shorter than MIN_MASKED stay (they could be anything).
        let (head, tail) = masker.mask_seam(b"x spl", b"lue", &also);
        assert_eq!(
            (head.as_slice(), tail.as_slice()),
            (&b"x spl"[..], &b"lue"[..])
        );
    }

    #[test]
    fn token_shapes_patterns_and_call_values_are_masked() {
        let masker = masker(Path::new("/nonexistent"));
        let text =
            "ghp_abcdefghijklmnopqrstuvwxyz0123456789 AKIAABCDEFGHIJKLMNOP corp-123 mine-1234 1";
        assert_eq!(
            masker.mask_text(text, &["mine-1234".into(), "1".into()]),
            "*** *** *** *** 1"
        );
        let key =
            "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaA\n-----END OPENSSH PRIVATE KEY-----";
        assert_eq!(masker.mask_text(key, &[]), "***");
    }
}
