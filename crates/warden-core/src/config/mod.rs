//! `warden.yaml`: the typed configuration (PRODUCT.md §3), its search order and the
//! state directory.
//!
//! Unknown keys and bad values are errors naming the key and the line; a missing file is
//! the zero-config default (no hosts, the built-in `local` host read-only).

mod starter;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, ErrorCode, Result};
use crate::policy::rules::RuleSpec;

pub use starter::STARTER_CONFIG;

// A section written with nothing under it (`hosts:` followed only by comments) is YAML
// null; it means the defaults, as people expect.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    #[serde(deserialize_with = "null_is_default")]
    pub hosts: Vec<HostConfig>,
    #[serde(deserialize_with = "null_is_default")]
    pub ssh: SshSettings,
    #[serde(deserialize_with = "null_is_default")]
    pub local: LocalSettings,
    #[serde(deserialize_with = "null_is_default")]
    pub policy: PolicyConfig,
    #[serde(deserialize_with = "null_is_default")]
    pub approval: ApprovalConfig,
    #[serde(deserialize_with = "null_is_default")]
    pub secrets: SecretsConfig,
    #[serde(deserialize_with = "null_is_default")]
    pub limits: Limits,
    #[serde(deserialize_with = "null_is_default")]
    pub audit: AuditSettings,
}

fn null_is_default<'de, D, T>(deserializer: D) -> std::result::Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostConfig {
    pub id: String,
    pub address: String,
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub identity_file: Option<PathBuf>,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub proxy_jump: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HostKeyChecking {
    Strict,
    AcceptNew,
    Off,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SshSettings {
    pub known_hosts: PathBuf,
    pub host_key_checking: HostKeyChecking,
    /// Deadline of one connect (TCP, handshake, login; per hop) and of each channel
    /// open on a connection; docs/ssh.md.
    pub connect_timeout_ms: u64,
    /// Silence from a host after which a keepalive is sent; three unanswered ones
    /// drop the connection. 0 turns keepalives off.
    pub keepalive_interval_s: u64,
    /// A pooled connection unused for this long is closed.
    pub idle_timeout_s: u64,
    pub max_parallel: usize,
    pub use_ssh_config: bool,
    pub ssh_config_file: PathBuf,
    /// Accept SHA-1 `ssh-rsa` signatures: host keys that only sign with it and RSA
    /// user keys on servers that accept nothing else. Off: SHA-1 is broken for
    /// signatures (chosen-prefix collisions); OpenSSH disabled it in 8.8.
    pub allow_sha1_rsa: bool,
}

impl Default for SshSettings {
    fn default() -> SshSettings {
        SshSettings {
            known_hosts: PathBuf::from("~/.ssh/known_hosts"),
            host_key_checking: HostKeyChecking::Strict,
            connect_timeout_ms: 10_000,
            keepalive_interval_s: 15,
            idle_timeout_s: 300,
            max_parallel: 64,
            use_ssh_config: true,
            ssh_config_file: PathBuf::from("~/.ssh/config"),
            allow_sha1_rsa: false,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LocalSettings {
    pub enabled: bool,
    pub allow_exec: bool,
    pub allow_write: bool,
}

impl Default for LocalSettings {
    fn default() -> LocalSettings {
        LocalSettings {
            enabled: true,
            allow_exec: false,
            allow_write: false,
        }
    }
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum PolicyMode {
    Off,
    Warn,
    #[default]
    Enforce,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    pub mode: PolicyMode,
    pub deny_commands: Vec<RuleSpec>,
    pub allow_commands: Vec<RuleSpec>,
    pub deny_paths: Vec<String>,
    pub allowed_roots: Vec<String>,
    pub roles: Vec<RoleConfig>,
    /// Lets commands warden cannot check run even when rules apply (logged at start
    /// and in every audit record).
    pub allow_opaque: bool,
    /// Environment names a command may set although they change what programs run.
    pub allow_env: Vec<String>,
    /// Additions to the built-in command classes, consulted first.
    pub classes: ClassesConfig,
    /// `confirm: true` runs a change only with the `plan_token` of its preview.
    pub require_plan_token: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClassesConfig {
    pub read_only: Vec<RuleSpec>,
    pub mutating: Vec<RuleSpec>,
    pub destructive: Vec<RuleSpec>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RoleConfig {
    pub name: String,
    /// Target selectors whose hosts take this role in addition to hosts naming it.
    pub hosts: Vec<String>,
    /// Caller identities the role is for (stdio: the OS user warden runs as, or
    /// `WARDEN_IDENTITY`); empty: every caller.
    pub identities: Vec<String>,
    pub allow_commands: Vec<RuleSpec>,
    pub deny_commands: Vec<RuleSpec>,
    pub deny_paths: Vec<String>,
    pub allowed_roots: Vec<String>,
}

/// What secret references agents may use, and what else to mask (see `secrets`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecretsConfig {
    /// Variables of warden's environment that `${env:NAME}` may name.
    pub env: Vec<String>,
    /// Globs of files (on warden's machine) that `${file:PATH}` may name.
    pub files: Vec<String>,
    /// Regexes masked in every answer, error and audit record, besides the built-in
    /// token shapes.
    pub patterns: Vec<String>,
}

/// Human approval outside the chat (PRODUCT.md §7).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApprovalConfig {
    pub enabled: bool,
    /// How long a matching call waits for a decision before `APPROVAL_PENDING`.
    #[serde(deserialize_with = "duration")]
    pub wait: std::time::Duration,
    /// How long a request stays decidable; then it is `default_action`.
    #[serde(deserialize_with = "duration")]
    pub timeout: std::time::Duration,
    pub default_action: DefaultAction,
    /// First match wins.
    pub rules: Vec<ApprovalRule>,
}

impl Default for ApprovalConfig {
    fn default() -> ApprovalConfig {
        ApprovalConfig {
            enabled: false,
            wait: std::time::Duration::from_secs(20),
            timeout: std::time::Duration::from_secs(15 * 60),
            default_action: DefaultAction::Deny,
            rules: Vec::new(),
        }
    }
}

/// What an undecided request becomes. Only `deny`: a request that approves itself
/// when nobody looks would be no approval at all.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DefaultAction {
    #[default]
    Deny,
}

/// One approval rule: every key given must match; none given matches every call.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApprovalRule {
    /// Tool names.
    pub tools: Vec<String>,
    /// Regexes, full match against each normalized simple command.
    pub commands: Vec<String>,
    /// Program names (basenames) among the simple commands.
    pub programs: Vec<String>,
    /// Command classes: read_only, mutating, destructive.
    pub classes: Vec<String>,
    /// A target expression: matches when the call reaches any of its hosts.
    pub hosts: Option<String>,
    /// Regexes, full match against each resolved path the call names.
    pub paths: Vec<String>,
    /// Caller identities (`WARDEN_IDENTITY` or the OS user over stdio). Not client
    /// names: those are the agent's own choice.
    pub callers: Vec<String>,
    /// `false` exempts the calls this rule matches.
    pub require_approval: bool,
}

impl Default for ApprovalRule {
    fn default() -> ApprovalRule {
        ApprovalRule {
            tools: Vec::new(),
            commands: Vec::new(),
            programs: Vec::new(),
            classes: Vec::new(),
            hosts: None,
            paths: Vec::new(),
            callers: Vec::new(),
            require_approval: true,
        }
    }
}

/// `500ms`, `20s`, `15m`, `1h`.
fn duration<'de, D>(deserializer: D) -> std::result::Result<std::time::Duration, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let text = String::deserialize(deserializer)?;
    parse_duration(&text).ok_or_else(|| {
        serde::de::Error::custom(format!(
            "{text:?} is not a duration: write a number with ms, s, m or h (500ms, 20s, 15m, 1h)"
        ))
    })
}

pub fn parse_duration(text: &str) -> Option<std::time::Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    let millis = match unit {
        "ms" => number,
        "s" => number.checked_mul(1000)?,
        "m" => number.checked_mul(60_000)?,
        "h" => number.checked_mul(3_600_000)?,
        _ => return None,
    };
    Some(std::time::Duration::from_millis(millis))
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    pub rate: u32,
    pub burst: u32,
    pub max_concurrent: usize,
    /// Commands at once on one host, across all callers (below sshd's MaxSessions).
    pub max_per_host: usize,
    pub max_sessions_per_client: usize,
    pub max_output_bytes: usize,
    pub max_read_bytes: usize,
    /// A file session unused this long is closed.
    pub session_idle_s: u64,
    /// A file session is closed this long after opening, used or not.
    pub session_max_s: u64,
    /// Largest archive `fs_archive_extract` reads.
    pub max_archive_bytes: u64,
    /// Most entries in one archive, packed or unpacked.
    pub max_archive_entries: usize,
    /// Most file content in one archive, packed or unpacked (zip bombs stop here).
    pub max_unpacked_bytes: u64,
    /// Hours an artifact (the whole output of a cut stream) is kept.
    pub artifact_retention_h: u64,
    /// Interactive commands (`command`) one caller holds at once, ended ones included
    /// until they are forgotten.
    pub max_commands_per_client: usize,
    /// An interactive command no call touched for this long is stopped and forgotten.
    pub command_idle_s: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            rate: 100,
            burst: 200,
            max_concurrent: 50,
            max_per_host: 8,
            max_sessions_per_client: 50,
            max_output_bytes: 65_536,
            max_read_bytes: 1_048_576,
            session_idle_s: 1800,
            session_max_s: 86_400,
            max_archive_bytes: 1 << 30,
            max_archive_entries: 100_000,
            max_unpacked_bytes: 4 << 30,
            artifact_retention_h: 24,
            max_commands_per_client: 10,
            command_idle_s: 600,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditSettings {
    pub dir: Option<PathBuf>,
}

/// A config with where it came from and where state lives.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    pub config: Config,
    /// `None` when no file was found (zero-config defaults).
    pub source: Option<PathBuf>,
    pub state_dir: PathBuf,
}

impl LoadedConfig {
    pub fn audit_dir(&self) -> PathBuf {
        match &self.config.audit.dir {
            Some(dir) => expand_home(dir),
            None => self.state_dir.join("audit"),
        }
    }

    /// The state store (approvals; jobs next).
    pub fn store_path(&self) -> PathBuf {
        self.state_dir.join("warden.db")
    }

    /// The Ed25519 key that signs the audit head (0600, created on first use).
    pub fn audit_key_path(&self) -> PathBuf {
        self.state_dir.join("audit.key")
    }
}

/// Explicit choices from the command line; `None` falls back to the search order.
#[derive(Debug, Clone, Default)]
pub struct ConfigSources {
    pub config: Option<PathBuf>,
    pub state_dir: Option<PathBuf>,
}

impl ConfigSources {
    /// `--config`, then `$WARDEN_CONFIG`, then `./warden.yaml`, then the user config dir.
    pub fn config_path(&self) -> Option<PathBuf> {
        if let Some(path) = &self.config {
            return Some(path.clone());
        }
        if let Some(path) = env_path("WARDEN_CONFIG") {
            return Some(path);
        }
        let local = PathBuf::from("warden.yaml");
        if local.is_file() {
            return Some(local);
        }
        let user = user_config_dir()?.join("warden").join("warden.yaml");
        user.is_file().then_some(user)
    }

    /// `--state-dir`, then `$WARDEN_STATE_DIR`, then the user data dir.
    pub fn state_dir(&self) -> PathBuf {
        if let Some(dir) = &self.state_dir {
            return dir.clone();
        }
        if let Some(dir) = env_path("WARDEN_STATE_DIR") {
            return dir;
        }
        match std::env::var_os("XDG_DATA_HOME").filter(|value| !value.is_empty()) {
            Some(data) => PathBuf::from(data).join("warden"),
            None => home_dir().join(".local/share/warden"),
        }
    }

    pub fn load(&self) -> Result<LoadedConfig> {
        let state_dir = self.state_dir();
        let Some(path) = self.config_path() else {
            return Ok(LoadedConfig {
                config: Config::default().with_environment(),
                source: None,
                state_dir,
            });
        };
        // An explicitly named file must exist; only the search order tolerates absence.
        let text = std::fs::read_to_string(&path).map_err(|error| {
            Error::new(
                ErrorCode::InvalidInput,
                format!("cannot read config {}: {error}", path.display()),
            )
        })?;
        let config = Config::parse(&text)
            .map_err(|error| prefix_message(error, &path))?
            .with_environment();
        Ok(LoadedConfig {
            config,
            source: Some(path),
            state_dir,
        })
    }
}

fn prefix_message(mut error: Error, path: &Path) -> Error {
    error.message = format!("{}: {}", path.display(), error.message);
    error
}

impl Config {
    /// Parses and validates YAML text.
    pub fn parse(text: &str) -> Result<Config> {
        if text.trim().is_empty() {
            return Ok(Config::default());
        }
        let config: Config = serde_saphyr::from_str(text)
            .map_err(|error| Error::invalid_input(format!("invalid config: {error}")))?;
        config.validate(text)?;
        Ok(config)
    }

    /// `WARDEN_UNSAFE_LOCAL=1` turns on exec and writes on the built-in `local` host.
    fn with_environment(mut self) -> Config {
        if std::env::var("WARDEN_UNSAFE_LOCAL").is_ok_and(|value| value == "1") {
            self.local.allow_exec = true;
            self.local.allow_write = true;
        }
        self
    }

    fn validate(&self, text: &str) -> Result<()> {
        let mut seen = std::collections::HashSet::new();
        for host in &self.hosts {
            let at = line_of(text, &format!("id: {}", host.id));
            if host.id.is_empty()
                || !host
                    .id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
            {
                return Err(Error::invalid_input(format!(
                    "hosts[].id {:?}{at}: ids use only A-Z a-z 0-9 . _ -",
                    host.id
                )));
            }
            if host.id == crate::inventory::LOCAL_HOST_ID {
                return Err(Error::invalid_input(format!(
                    "hosts[].id \"local\"{at} is reserved for the built-in host (see the local: section)"
                )));
            }
            if !seen.insert(host.id.as_str()) {
                return Err(Error::invalid_input(format!(
                    "hosts[].id {:?}{at} is defined twice",
                    host.id
                )));
            }
            if host.address.trim().is_empty() {
                return Err(Error::invalid_input(format!(
                    "hosts[].address of {:?}{at} is empty",
                    host.id
                )));
            }
            if host.port == Some(0) {
                return Err(Error::invalid_input(format!(
                    "hosts[].port of {:?}{at} must be 1-65535",
                    host.id
                )));
            }
        }
        if self.ssh.max_parallel == 0 {
            return Err(Error::invalid_input(format!(
                "ssh.max_parallel{} must be at least 1",
                line_of(text, "max_parallel:")
            )));
        }
        if self.ssh.connect_timeout_ms == 0 {
            return Err(Error::invalid_input(format!(
                "ssh.connect_timeout_ms{} must be at least 1",
                line_of(text, "connect_timeout_ms:")
            )));
        }
        // russh adds the interval to the clock: a value near u64::MAX would overflow it.
        if self.ssh.keepalive_interval_s > MAX_KEEPALIVE_INTERVAL_S {
            return Err(Error::invalid_input(format!(
                "ssh.keepalive_interval_s{} must be at most {MAX_KEEPALIVE_INTERVAL_S} (seconds; 0 turns keepalives off)",
                line_of(text, "keepalive_interval_s:")
            )));
        }
        if self.limits.max_output_bytes == 0 || self.limits.max_concurrent == 0 {
            return Err(Error::invalid_input(
                "limits.max_output_bytes and limits.max_concurrent must be at least 1",
            ));
        }
        if self.limits.max_per_host == 0 || self.limits.max_per_host > 1000 {
            return Err(Error::invalid_input(format!(
                "limits.max_per_host{} must be between 1 and 1000 (commands at once on one host; sshd's MaxSessions is 10 by default)",
                line_of(text, "max_per_host:")
            )));
        }
        // Bounds that keep a typo from becoming a semaphore that cannot exist.
        if self.limits.max_concurrent > 100_000 || self.ssh.max_parallel > 10_000 {
            return Err(Error::invalid_input(format!(
                "limits.max_concurrent (at most 100000) or ssh.max_parallel (at most 10000){} is too large",
                line_of(
                    text,
                    if self.ssh.max_parallel > 10_000 {
                        "max_parallel:"
                    } else {
                        "max_concurrent:"
                    }
                )
            )));
        }
        if self.limits.artifact_retention_h == 0 || self.limits.artifact_retention_h > 8760 {
            return Err(Error::invalid_input(format!(
                "limits.artifact_retention_h{} must be between 1 and 8760 (hours the whole output of a cut command is kept; answers name it)",
                line_of(text, "artifact_retention_h:")
            )));
        }
        if self.limits.max_commands_per_client == 0 || self.limits.max_commands_per_client > 1000 {
            return Err(Error::invalid_input(format!(
                "limits.max_commands_per_client{} must be between 1 and 1000 (interactive commands one caller holds at once)",
                line_of(text, "max_commands_per_client:")
            )));
        }
        if self.limits.command_idle_s == 0 {
            return Err(Error::invalid_input(format!(
                "limits.command_idle_s{} must be at least 1 (seconds an unused interactive command lives)",
                line_of(text, "command_idle_s:")
            )));
        }
        if self.limits.rate == 0 || self.limits.burst == 0 {
            return Err(Error::invalid_input(format!(
                "limits.rate and limits.burst{} must be at least 1 (calls per second, and calls in reserve)",
                line_of(text, "rate:")
            )));
        }
        self.validate_approval(text)?;
        let roots = self
            .policy
            .allowed_roots
            .iter()
            .map(|root| ("policy.allowed_roots", root))
            .chain(self.policy.roles.iter().flat_map(|role| {
                role.allowed_roots
                    .iter()
                    .map(|root| ("policy.roles[].allowed_roots", root))
            }));
        for (key, root) in roots {
            // Every other policy list is regexes; this one is directories. A regex here
            // would silently allow nothing.
            let regex_like = root.contains(['^', '$', '(', ')', '|', '*', '+', '?', '[', '\\']);
            if !root.starts_with('/') || regex_like {
                return Err(Error::invalid_input(format!(
                    "{key} entry {root:?}{} must be an absolute directory path such as /srv/app, not a pattern",
                    line_of(text, root)
                )));
            }
        }
        let role_names: Vec<&str> = self
            .policy
            .roles
            .iter()
            .map(|role| role.name.as_str())
            .collect();
        for host in &self.hosts {
            if let Some(role) = &host.role
                && !role_names.contains(&role.as_str())
            {
                return Err(Error::invalid_input(format!(
                    "hosts[].role {role:?} of {:?}{} names no role in policy.roles",
                    host.id,
                    line_of(text, &format!("role: {role}"))
                )));
            }
        }
        Ok(())
    }
}

/// " (line N)" for the first line containing `needle`, to point people at the spot.
impl Config {
    fn validate_approval(&self, text: &str) -> Result<()> {
        let approval = &self.approval;
        if approval.wait > std::time::Duration::from_secs(50) {
            return Err(Error::invalid_input(format!(
                "approval.wait{} is at most 50s: clients drop calls after about 60 s (the agent polls approval_status after it)",
                line_of(text, "wait:")
            )));
        }
        if approval.timeout < std::time::Duration::from_secs(1)
            || approval.timeout > std::time::Duration::from_secs(7 * 86_400)
        {
            return Err(Error::invalid_input(format!(
                "approval.timeout{} must be between 1s and 168h",
                line_of(text, "timeout:")
            )));
        }
        for (index, rule) in approval.rules.iter().enumerate() {
            for pattern in rule.commands.iter().chain(&rule.paths) {
                if let Err(error) = regex::Regex::new(pattern) {
                    return Err(Error::invalid_input(format!(
                        "approval.rules[{index}]: {pattern:?}{} is not a valid regex: {error}",
                        line_of(text, pattern)
                    )));
                }
            }
            for class in &rule.classes {
                if !matches!(class.as_str(), "read_only" | "mutating" | "destructive") {
                    return Err(Error::invalid_input(format!(
                        "approval.rules[{index}].classes: {class:?}{} is not a class (read_only, mutating, destructive)",
                        line_of(text, class)
                    )));
                }
            }
        }
        Ok(())
    }
}

/// A day: keepalives are for finding dead connections, rarer ones find none.
const MAX_KEEPALIVE_INTERVAL_S: u64 = 86_400;

fn line_of(text: &str, needle: &str) -> String {
    text.lines()
        .position(|line| line.contains(needle))
        .map(|index| format!(" (line {})", index + 1))
        .unwrap_or_default()
}

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|value| !value.is_empty())
        .map(PathBuf::from)
}

pub fn home_dir() -> PathBuf {
    env_path("HOME").unwrap_or_else(|| PathBuf::from("/"))
}

fn user_config_dir() -> Option<PathBuf> {
    env_path("XDG_CONFIG_HOME").or_else(|| Some(home_dir().join(".config")))
}

/// Expands a leading `~/` the way ssh and shells do.
pub fn expand_home(path: &Path) -> PathBuf {
    match path.strip_prefix("~") {
        Ok(rest) => home_dir().join(rest),
        Err(_) => path.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_error(text: &str) -> String {
        match Config::parse(text) {
            Ok(_) => String::from("parsed"),
            Err(error) => error.message,
        }
    }

    #[test]
    fn empty_text_is_the_zero_config() {
        let config = Config::parse("").unwrap_or_default();
        assert!(config.hosts.is_empty());
        assert!(config.local.enabled);
        assert!(!config.local.allow_exec);
        assert_eq!(config.policy.mode, PolicyMode::Enforce);
        assert_eq!(config.ssh.host_key_checking, HostKeyChecking::Strict);
    }

    #[test]
    fn unknown_key_names_key_and_line() {
        let message = parse_error("hosts:\n  - id: a\n    address: x\n    colour: red\n");
        assert!(message.contains("colour"), "{message}");
        assert!(message.contains('4'), "{message}");
    }

    #[test]
    fn bad_value_names_the_line() {
        let message = parse_error("ssh:\n  host_key_checking: sometimes\n");
        assert!(
            message.contains("sometimes") || message.contains("variant"),
            "{message}"
        );
        assert!(message.contains('2'), "{message}");
    }

    #[test]
    fn duplicate_and_reserved_ids_are_refused() {
        let twice = "hosts:\n  - {id: a, address: x}\n  - {id: a, address: y}\n";
        assert!(parse_error(twice).contains("defined twice"));
        assert!(parse_error("hosts:\n  - {id: local, address: x}\n").contains("reserved"));
        assert!(parse_error("hosts:\n  - {id: 'a b', address: x}\n").contains("ids use"));
    }

    #[test]
    fn host_role_must_exist() {
        let text = "hosts:\n  - {id: a, address: x, role: ops}\n";
        assert!(parse_error(text).contains("names no role"));
    }

    #[test]
    fn allowed_roots_are_absolute_directories_not_patterns() {
        for root in ["'^/srv/app(/|$)'", "srv/app", "'/srv/.*'"] {
            let text = format!("policy:\n  allowed_roots: [{root}]\n");
            let message = parse_error(&text);
            assert!(
                message.contains("absolute directory path"),
                "{root}: {message}"
            );
            assert!(message.contains("line 2"), "{root}: {message}");
        }
        let role = "policy:\n  roles:\n    - name: ops\n      allowed_roots: ['^/x']\n";
        assert!(parse_error(role).contains("roles[].allowed_roots"));
        assert_eq!(
            parse_error("policy:\n  allowed_roots: [/srv/app]\n"),
            "parsed"
        );
    }

    #[test]
    fn interactive_command_limits_are_bounded_with_their_line() {
        for text in [
            "limits:\n  max_commands_per_client: 0\n",
            "limits:\n  max_commands_per_client: 1001\n",
        ] {
            let message = parse_error(text);
            assert!(
                message.contains("limits.max_commands_per_client (line 2)"),
                "{message}"
            );
        }
        let message = parse_error("limits:\n  command_idle_s: 0\n");
        assert!(
            message.contains("limits.command_idle_s (line 2)"),
            "{message}"
        );
        assert_eq!(
            parse_error("limits:\n  max_commands_per_client: 3\n  command_idle_s: 5\n"),
            "parsed"
        );
    }

    #[test]
    fn keys_nothing_enforces_are_refused_with_their_line() {
        assert!(parse_error("limits:\n  rate: 0\n").contains("limits.rate"));
        for hours in [0, 8761] {
            let message = parse_error(&format!("limits:\n  artifact_retention_h: {hours}\n"));
            assert!(
                message.contains("limits.artifact_retention_h (line 2)"),
                "{message}"
            );
        }
        let structured = "policy:\n  deny_commands:\n    - {program: rm, flags: [r], bogus: 1}\n";
        assert_ne!(parse_error(structured), "parsed");
        let keepalive = parse_error("ssh:\n  keepalive_interval_s: 18446744073709551615\n");
        assert!(
            keepalive.contains("ssh.keepalive_interval_s (line 2)"),
            "{keepalive}"
        );
        assert!(Config::parse("ssh:\n  keepalive_interval_s: 0\n").is_ok());
    }

    #[test]
    fn sha1_rsa_is_off_unless_opted_in_with_a_boolean() {
        assert!(!Config::default().ssh.allow_sha1_rsa);
        let on = Config::parse("ssh:\n  allow_sha1_rsa: true\n").unwrap();
        assert!(on.ssh.allow_sha1_rsa);
        let message = parse_error("ssh:\n  allow_sha1_rsa: sometimes\n");
        assert!(
            message.contains("line 2") || message.contains('2'),
            "{message}"
        );
        let typo = parse_error("ssh:\n  allow_sha1: true\n");
        assert!(typo.contains("allow_sha1") && typo.contains('2'), "{typo}");
    }

    #[test]
    fn starter_config_parses() {
        let config = Config::parse(STARTER_CONFIG);
        assert!(config.is_ok(), "{config:?}");
    }
}
