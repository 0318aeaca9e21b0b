//! known_hosts: OpenSSH's file format read by our own matcher, and appending a learned
//! key for `accept-new`.
//!
//! russh's helper stops at the first unparsable line and knows no wildcards, negation or
//! markers (DEPENDENCIES.md gotcha 4), so this module implements: plain names,
//! `[host]:port`, hashed `|1|salt|hmac` names, `*`/`?` wildcards, `!negation`, comments,
//! `@revoked` (always refuses) and `@cert-authority` (ignored: warden does not trust host
//! certificates, so such a line neither trusts nor blocks a key).

use std::fs::OpenOptions;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::Mutex;

use hmac::{Hmac, KeyInit, Mac};
use russh::keys::{Algorithm, PublicKey, parse_public_key_base64};
use sha1::Sha1;

/// What known_hosts says about a key a host presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// A line for this host holds exactly this key.
    Trusted,
    /// No line names this host.
    Unknown,
    /// Lines name this host, with other keys. `line` is the first such line (1-based).
    Changed { line: usize },
    /// An `@revoked` line lists this key.
    Revoked { line: usize },
}

/// The name known_hosts uses: `host` on port 22, else `[host]:port`, lowercased as
/// OpenSSH does.
pub(crate) fn host_name(host: &str, port: u16) -> String {
    let host = host.to_ascii_lowercase();
    if port == 22 {
        host
    } else {
        format!("[{host}]:{port}")
    }
}

/// Judges `key` for `host:port` against the text of a known_hosts file.
pub(crate) fn check(text: &str, host: &str, port: u16, key: &PublicKey) -> Verdict {
    let name = host_name(host, port);
    let mut trusted = false;
    let mut changed = None;
    for entry in entries(text) {
        if !hosts_match(entry.hosts, &name) {
            continue;
        }
        let same = entry.key.key_data() == key.key_data();
        match entry.marker {
            // Invariant: a revoked key is refused even if another line trusts it.
            Some("@revoked") if same => return Verdict::Revoked { line: entry.line },
            Some(_) => {}
            None if same => trusted = true,
            // A host may have several keys; any other key for it is only a mismatch if
            // no line trusts the presented one.
            None => {
                changed.get_or_insert(entry.line);
            }
        }
    }
    match (trusted, changed) {
        (true, _) => Verdict::Trusted,
        (false, Some(line)) => Verdict::Changed { line },
        (false, None) => Verdict::Unknown,
    }
}

/// The algorithms of keys recorded for `host:port`, in file order, so the handshake can
/// ask the server for a key type we can verify rather than one we have never seen.
pub(crate) fn known_algorithms(text: &str, host: &str, port: u16) -> Vec<Algorithm> {
    let name = host_name(host, port);
    let mut algorithms: Vec<Algorithm> = Vec::new();
    for entry in entries(text) {
        if entry.marker.is_none() && hosts_match(entry.hosts, &name) {
            let algorithm = entry.key.algorithm();
            if !algorithms.contains(&algorithm) {
                algorithms.push(algorithm);
            }
        }
    }
    algorithms
}

/// Appends `name key-type base64` for a newly learned host key.
pub(crate) fn append(path: &Path, host: &str, port: u16, key: &PublicKey) -> io::Result<()> {
    // Appends from concurrent connects in this process must not interleave.
    static APPEND: Mutex<()> = Mutex::new(());
    let _guard = APPEND
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let openssh = key.to_openssh().map_err(io::Error::other)?;
    // The type and base64 fields only: a server key's comment is meaningless here.
    let key_fields: Vec<&str> = openssh.split_whitespace().take(2).collect();
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent)?;
    }
    let mut file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(path)?;
    let mut line = String::new();
    if file.seek(SeekFrom::End(-1)).is_ok() {
        let mut last = [0u8; 1];
        file.read_exact(&mut last)?;
        if last[0] != b'\n' {
            line.push('\n');
        }
    }
    line.push_str(&format!(
        "{} {}\n",
        host_name(host, port),
        key_fields.join(" ")
    ));
    file.write_all(line.as_bytes())?;
    file.flush()
}

struct Entry<'a> {
    line: usize,
    marker: Option<&'a str>,
    hosts: &'a str,
    key: PublicKey,
}

/// Parsable lines; a line with a key we cannot parse (unknown type, corrupt) is
/// skipped instead of poisoning the whole file.
fn entries(text: &str) -> impl Iterator<Item = Entry<'_>> {
    text.lines().enumerate().filter_map(|(index, line)| {
        let line_number = index + 1;
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            return None;
        }
        let mut fields = trimmed.split_whitespace();
        let mut first = fields.next()?;
        let mut marker = None;
        if first.starts_with('@') {
            marker = Some(first);
            first = fields.next()?;
        }
        let _key_type = fields.next()?;
        let key = parse_public_key_base64(fields.next()?).ok()?;
        Some(Entry {
            line: line_number,
            marker,
            hosts: first,
            key,
        })
    })
}

/// OpenSSH's pattern-list rule: some pattern matches and no negated one does.
fn hosts_match(patterns: &str, name: &str) -> bool {
    let mut matched = false;
    for pattern in patterns.split(',') {
        if let Some(hashed) = pattern.strip_prefix("|1|") {
            matched |= hashed_match(hashed, name);
            continue;
        }
        let (negated, pattern) = match pattern.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, pattern),
        };
        if wildcard_match(&pattern.to_ascii_lowercase(), name) {
            if negated {
                return false;
            }
            matched = true;
        }
    }
    matched
}

/// `salt|hmac` (both base64): HMAC-SHA1 of the name keyed by the salt.
fn hashed_match(hashed: &str, name: &str) -> bool {
    let Some((salt, hash)) = hashed.split_once('|') else {
        return false;
    };
    let (Ok(salt), Ok(hash)) = (
        data_encoding::BASE64.decode(salt.as_bytes()),
        data_encoding::BASE64.decode(hash.as_bytes()),
    ) else {
        return false;
    };
    match Hmac::<Sha1>::new_from_slice(&salt) {
        Ok(mac) => mac
            .chain_update(name.as_bytes())
            .verify_slice(&hash)
            .is_ok(),
        Err(_) => false,
    }
}

/// `*` matches any run of characters, `?` exactly one; everything else literally.
fn wildcard_match(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(&'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == '?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((star_p, star_t)) => {
                    p = star_p + 1;
                    t = star_t + 1;
                    star = Some((star_p, star_t + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED_A: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ";
    const ED_B: &str = "AAAAC3NzaC1lZDI1NTE5AAAAILIG2T/B0l0gaqj3puu510tu9N1OkQ4znY3LYuEm5zCF";

    fn key(base64: &str) -> PublicKey {
        parse_public_key_base64(base64).unwrap()
    }

    #[test]
    fn plain_and_bracketed_names() {
        let text = format!(
            "# comment\n\n[localhost]:2222 ssh-ed25519 {ED_A}\nexample.com ssh-ed25519 {ED_B}\n"
        );
        assert_eq!(
            check(&text, "localhost", 2222, &key(ED_A)),
            Verdict::Trusted
        );
        assert_eq!(
            check(&text, "LOCALHOST", 2222, &key(ED_A)),
            Verdict::Trusted
        );
        assert_eq!(check(&text, "localhost", 22, &key(ED_A)), Verdict::Unknown);
        assert_eq!(
            check(&text, "example.com", 22, &key(ED_B)),
            Verdict::Trusted
        );
        assert_eq!(
            check(&text, "example.com", 22, &key(ED_A)),
            Verdict::Changed { line: 4 }
        );
    }

    #[test]
    fn hashed_names_match() {
        // From russh's own test: |1|…| is example.com.
        let text = format!(
            "|1|O33ESRMWPVkMYIwJ1Uw+n877jTo=|nuuC5vEqXlEZ/8BXQR7m619W6Ak= ssh-ed25519 {ED_B}\n"
        );
        assert_eq!(
            check(&text, "example.com", 22, &key(ED_B)),
            Verdict::Trusted
        );
        assert_eq!(
            check(&text, "example.org", 22, &key(ED_B)),
            Verdict::Unknown
        );
    }

    #[test]
    fn wildcards_negation_and_markers() {
        let text = format!(
            "*.example.com,!bad.example.com ssh-ed25519 {ED_A}\n\
             garbage line\n\
             host.example.com ssh-unknown AAAAnotakey\n\
             @cert-authority *.example.com ssh-ed25519 {ED_B}\n\
             @revoked * ssh-ed25519 {ED_B}\n"
        );
        assert_eq!(
            check(&text, "web.example.com", 22, &key(ED_A)),
            Verdict::Trusted
        );
        assert_eq!(
            check(&text, "bad.example.com", 22, &key(ED_A)),
            Verdict::Unknown
        );
        assert_eq!(
            check(&text, "web.example.com", 22, &key(ED_B)),
            Verdict::Revoked { line: 5 }
        );
        assert!(wildcard_match("[10.0.0.?]:*", "[10.0.0.7]:2200"));
        assert!(!wildcard_match("a*b", "acbd"));
    }

    #[test]
    fn append_then_trust() {
        let dir = std::env::temp_dir().join(format!("warden-ssh-kh-{}", std::process::id()));
        let path = dir.join("known_hosts");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(&path, format!("a.example ssh-ed25519 {ED_B}")).unwrap();
        append(&path, "127.0.0.1", 2200, &key(ED_A)).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            check(&text, "127.0.0.1", 2200, &key(ED_A)),
            Verdict::Trusted
        );
        assert_eq!(check(&text, "a.example", 22, &key(ED_B)), Verdict::Trusted);
        assert_eq!(
            known_algorithms(&text, "127.0.0.1", 2200),
            vec![Algorithm::Ed25519]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
