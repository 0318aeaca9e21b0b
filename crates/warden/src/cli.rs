//! The command line: every subcommand and flag, with help that teaches.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "warden",
    version,
    about = "Let AI agents operate your hosts over SSH: typed tools, policy, audit.",
    long_about = "warden gives AI agents (Claude Code, Codex, Claude Desktop, VS Code, Zed) a typed, \
policy-governed, audited interface to your hosts over plain SSH, as an MCP server. The same engine \
answers on this command line.",
    after_help = "Examples:\n  warden init                          write a commented warden.yaml\n  \
warden hosts list                    what warden can reach\n  \
warden exec -t group:web -- uptime   run on every web host\n  \
warden call facts '{\"target\":\"all\"}'  any tool, same JSON as over MCP\n  \
warden audit verify                  prove the audit log is intact\n  \
claude mcp add warden -- warden mcp serve"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    /// More logs on stderr (-v info, -vv debug; WARDEN_LOG overrides).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args, Clone)]
pub struct Global {
    /// Config file (default: $WARDEN_CONFIG, ./warden.yaml, ~/.config/warden/warden.yaml).
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// State directory for the audit log (default: $WARDEN_STATE_DIR, ~/.local/share/warden).
    #[arg(long, global = true, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Print JSON instead of tables (for scripts).
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve MCP (for agents).
    #[command(subcommand)]
    Mcp(McpCommand),
    /// Call any tool with JSON arguments; prints the same JSON an agent gets.
    Call {
        /// Tool name, e.g. facts (see `warden call tools_search '{"query":"..."}'`).
        tool: String,
        /// Arguments as a JSON object.
        #[arg(default_value = "{}")]
        arguments: String,
    },
    /// Inspect the inventory.
    #[command(subcommand)]
    Hosts(HostsCommand),
    /// Run a command on target hosts: `warden exec -t group:web -- uptime`.
    Exec {
        /// Target: host:ID, host:GLOB, group:NAME, tag:K=V, all; comma-joined.
        #[arg(short, long)]
        target: String,
        /// Per-host time limit in milliseconds.
        #[arg(long)]
        timeout_ms: Option<u64>,
        /// Show hosts, command and policy decisions without running.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        rollout: RolloutArgs,
        /// The command; several words are joined into one shell string.
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
    /// System facts of target hosts.
    Facts {
        #[arg(short, long, default_value = "all")]
        target: String,
    },
    /// The audit log.
    #[command(subcommand)]
    Audit(Box<AuditCommand>),
    /// Decide the calls that wait for a human (approval rules in warden.yaml).
    /// Only here, outside the chat: no MCP tool can approve anything.
    #[command(subcommand)]
    Approvals(ApprovalsCommand),
    /// Jobs: work that outlived its call (any agent's, and the CLI's).
    #[command(subcommand)]
    Jobs(JobsCommand),
    /// Write a commented starter warden.yaml.
    Init {
        /// Where to write it.
        #[arg(default_value = "warden.yaml")]
        path: PathBuf,
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Validate the config.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Check the setup; with -t, also log into those hosts.
    Doctor {
        #[arg(short, long)]
        target: Option<String>,
    },
}

/// A rolling run (docs/rollout.md): batches one after another, stopping early.
#[derive(Debug, Args, Clone)]
pub struct RolloutArgs {
    /// Hosts per batch: a number, or a share of the hosts such as 20%.
    #[arg(long, value_name = "N|P%")]
    pub batch_size: Option<String>,
    /// Pause between batches, in milliseconds (at most 600000).
    #[arg(long, value_name = "MS")]
    pub batch_wait: Option<u64>,
    /// Run on N hosts of the target drawn at random (the same N for the same arguments).
    #[arg(long, value_name = "N")]
    pub subset: Option<u64>,
    /// Any text: another draw of --subset.
    #[arg(long, value_name = "TEXT")]
    pub subset_seed: Option<String>,
    /// Stop after the first batch in which a host failed.
    #[arg(long)]
    pub fail_fast: bool,
    /// Stop when successes / hosts run so far fall below this after a batch: 0.9 or 90%.
    #[arg(long, value_name = "R|P%")]
    pub min_success_rate: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// Jobs, newest first: `warden jobs list --state running`.
    List {
        /// running, succeeded, failed, cancelled, timed_out, lost or outcome_unknown.
        #[arg(long)]
        state: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// One job: its state, output so far, or its answer.
    Show { job_id: String },
    /// Wait for a job to end, then show it (exit 1 unless it succeeded).
    Wait { job_id: String },
    /// Print one host's output of a job (raw bytes, whole or --tail N).
    Output {
        job_id: String,
        host_id: String,
        /// stderr instead of stdout.
        #[arg(long)]
        stderr: bool,
        /// Only the last N bytes.
        #[arg(long)]
        tail: Option<u64>,
    },
    /// Stop a job: INT, TERM, then KILL to all it started, verified on each host.
    Cancel { job_id: String },
}

#[derive(Debug, Subcommand)]
pub enum McpCommand {
    /// Serve MCP over stdio until stdin closes.
    Serve {
        /// List tools with full schemas (default: compact; tools_schema gives details).
        #[arg(long)]
        full_schemas: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum HostsCommand {
    /// List hosts (optionally those of a target).
    List {
        #[arg(short, long)]
        target: Option<String>,
    },
    /// Show one host's settings.
    Show { host_id: String },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain and the signed head; exit 1 and name the first bad record
    /// if tampered. With --anchor, also check a head saved earlier by `audit anchor`
    /// (finds a full rewrite or a cut tail even if the head was replaced).
    Verify {
        #[arg(long, value_name = "FILE")]
        anchor: Option<std::path::PathBuf>,
    },
    /// Print the signed head (JSON) to keep somewhere warden cannot write: a ticket,
    /// a wiki page, another machine. `audit verify --anchor FILE` checks it later.
    Anchor,
    /// Print the last records.
    Tail {
        #[arg(short = 'n', long, default_value_t = 20)]
        count: usize,
    },
    /// Find records: `warden audit search --decision denied --since 2026-12-01`.
    Search {
        /// The newest matching records to print (at most 1000).
        #[arg(short = 'n', long, default_value_t = 20)]
        last: usize,
        #[command(flatten)]
        filters: AuditFilterArgs,
    },
    /// Write the records the filters select as JSON lines or CSV.
    Export {
        #[arg(long, value_enum, default_value_t = ExportFormat::Jsonl)]
        format: ExportFormat,
        /// Write to this file instead of stdout.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        #[command(flatten)]
        filters: AuditFilterArgs,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ExportFormat {
    /// One record per line, as the log holds it.
    Jsonl,
    /// Fixed columns, formula-safe.
    Csv,
}

/// The filters of `audit_search` and `audit_export`; each one given must match.
#[derive(Debug, Args, Clone)]
pub struct AuditFilterArgs {
    /// Records at or after this RFC 3339 time (2026-12-01T10:00:00Z) or date.
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Records at or before this RFC 3339 time or date.
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Calls of this tool.
    #[arg(long)]
    pub tool: Option<String>,
    /// Calls naming this host.
    #[arg(long = "host", value_name = "HOST_ID")]
    pub host_id: Option<String>,
    /// Calls of this client (its name).
    #[arg(long)]
    pub client: Option<String>,
    /// Calls of this identity.
    #[arg(long)]
    pub identity: Option<String>,
    /// allowed, warned, denied or rejected.
    #[arg(long)]
    pub decision: Option<String>,
    /// requested or completed.
    #[arg(long)]
    pub phase: Option<String>,
    /// read_only, mutating or destructive.
    #[arg(long)]
    pub class: Option<String>,
    /// An error code such as POLICY_DENIED.
    #[arg(long)]
    pub error_code: Option<String>,
    /// One job's records.
    #[arg(long)]
    pub job_id: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum ApprovalsCommand {
    /// Pending approvals (with --all, every state), newest first.
    List {
        #[arg(long)]
        all: bool,
    },
    /// One approval: the call's arguments, commands, paths and class.
    Show { approval_id: String },
    /// Approve a pending call: the agent's next try with this id runs it, once,
    /// if the call is still exactly what was asked.
    Approve {
        approval_id: String,
        /// Why (kept in the audit log).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Deny a pending call.
    Deny {
        approval_id: String,
        /// Why (the agent is told, and it is kept in the audit log).
        #[arg(long)]
        reason: Option<String>,
    },
    /// A live view of pending approvals: ↑/↓ (or j/k) select, a approve, d deny,
    /// q quit.
    Watch,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Parse and validate the config; exit 2 with the key and line on error.
    Check,
}
