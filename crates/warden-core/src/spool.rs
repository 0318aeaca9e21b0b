//! A job's command on its host, detached from the SSH channel: the spool.
//!
//! Each command a job runs keeps four files under `~/.warden/jobs/` on its host,
//! named `<job>-<host index>-<seq>`: `.pid` (the process group and its leader's start
//! time, written first), `.out` and `.err` (everything it printed), `.exit` (its exit
//! code, written last, by the command's own shell). warden's channel only waits: if
//! warden dies, the channel closes and the command runs on, writing to files, so a
//! restarted warden (or another one on the same state dir) reads how it ended. A
//! process gone with no `.exit` is `lost`; one warden stopped also has `.stopped`.
//!
//! The scripts here are warden's own, fixed text with the spool key as their only
//! variable part (checked to be `[A-Za-z0-9_-]`): no caller text reaches them.
//! The command itself comes from `$WARDEN_COMMAND`, set by the transport's wrapper.
//!
//! Signals are sent as `kill -s SIG -- -PGID`: dash (a login shell on Debian) reads
//! `kill -TERM -- -PGID` as a bad number. A signal that kills the command's shell writes
//! no exit code (bash would run the EXIT trap with status 0 and record a success), so
//! a command killed from outside reads as `lost`; one warden stopped has `.stopped`.
//!
//! Why no `setsid`: sshd already starts the channel's shell as a session and process
//! group leader (and the local transport makes it a group leader), so the group is the
//! job's; a child that leaves it (`setsid nohup … &`) still carries `WARDEN_JOB=<key>`
//! in its environment, which is how `stop` and `status` find it.

use std::fmt::Write as _;

/// Where the spools live on a host, for the shell (`$HOME` expanded there).
const BASE: &str = "$HOME/.warden/jobs";

/// Retention of spool files on a host, in minutes (they are pruned in the background
/// by the first command a process spools on the host: a cold fan-out must not wait
/// for a directory walk on every host).
pub const RETENTION_MIN: u64 = 24 * 60;

/// One spooled command of a job on one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spool {
    key: String,
}

/// Why warden stopped a command (written to `.stopped`, read back by `status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    TimedOut,
    Cancelled,
}

impl StopReason {
    pub fn as_str(self) -> &'static str {
        match self {
            StopReason::TimedOut => "timed_out",
            StopReason::Cancelled => "cancelled",
        }
    }
}

impl Spool {
    /// The spool of command `seq` of job `job` on the host at `host_index` in its plan.
    pub fn new(job: &str, host_index: usize, seq: usize) -> Spool {
        Spool {
            key: format!("{}-{host_index}-{seq}", safe(job)),
        }
    }

    /// The spool a status line named (its key is made safe again).
    pub fn from_key(key: &str) -> Spool {
        Spool { key: safe(key) }
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    /// The shell text that runs `$WARDEN_COMMAND` spooled and then relays its output:
    /// it replaces the command in the transport's wrapper (after env and `cd`). The
    /// channel's exit status is the command's.
    pub fn launcher(&self, prune: bool) -> String {
        let key = &self.key;
        let mut script =
            format!("b=\"{BASE}\"; [ -d \"$b\" ] || (umask 077; mkdir -p \"$b\") || exit 125\n");
        if prune {
            let _ = writeln!(
                script,
                "(find \"$b\" -maxdepth 1 -type f -mmin +{RETENTION_MIN} -exec rm -f {{}} + </dev/null >/dev/null 2>&1 &)"
            );
        }
        let _ = write!(
            script,
            "d=\"$b/{key}\"\n\
             {{ read -r s < /proc/$$/stat; }} 2>/dev/null; set -- $s; printf '%s %s\\n' \"$$\" \"${{22}}\" > \"$d.pid\" || exit 125\n\
             (trap 'printf \"%s\\n\" \"$?\" > \"$d.exit\"' EXIT; trap 'trap - EXIT; exit 129' HUP; trap 'trap - EXIT; exit 130' INT; trap 'trap - EXIT; exit 143' TERM; WARDEN_JOB={key}; export WARDEN_JOB; eval \"$WARDEN_COMMAND\") > \"$d.out\" 2> \"$d.err\"\n\
             c=$?\n\
             [ -s \"$d.exit\" ] || [ \"$c\" -ge 128 ] || printf '%s\\n' \"$c\" > \"$d.exit\"\n\
             [ -s \"$d.out\" ] && cat \"$d.out\"; [ -s \"$d.err\" ] && cat \"$d.err\" >&2\n\
             exit \"$c\""
        );
        script
    }

    /// INT, then TERM, then KILL to the command's process group and to every process
    /// carrying its `WARDEN_JOB` mark, each followed by up to a second of checking;
    /// prints `stopped` once nothing is left, else `running`. Writes `.stopped` first so
    /// the outcome is known even if this channel dies.
    pub fn stop_script(&self, reason: StopReason) -> String {
        let key = &self.key;
        format!(
            "d=\"{BASE}/{key}\"\n\
             [ -e \"$d.pid\" ] || {{ echo gone; exit 0; }}\n\
             printf '%s\\n' {reason} > \"$d.stopped\"\n\
             {MARKED}\n\
             p=; read -r p s < \"$d.pid\"\n\
             if [ -n \"$p\" ] && [ -r \"/proc/$p/stat\" ]; then read -r t < \"/proc/$p/stat\"; set -- $t; [ \"${{22}}\" = \"$s\" ] || p=; fi\n\
             alive() {{ {{ [ -n \"$p\" ] && kill -s 0 -- \"-$p\" 2>/dev/null; }} || [ -n \"$(marked {key})\" ]; }}\n\
             for sig in INT TERM KILL; do\n\
             [ -n \"$p\" ] && kill -s $sig -- \"-$p\" 2>/dev/null\n\
             for q in $(marked {key}); do kill -s $sig \"$q\" 2>/dev/null; done\n\
             i=0; while alive && [ $i -lt 10 ]; do sleep 0.1; i=$((i+1)); done\n\
             alive || {{ echo stopped; exit 0; }}\n\
             done\n\
             echo running",
            reason = reason.as_str(),
        )
    }

    /// The command's output as it stands: `<stdout bytes> <stderr bytes> <exit code
    /// or ->` on the first line, then the last `tail` bytes of stdout; the last `tail`
    /// bytes of stderr on stderr.
    pub fn peek_script(&self, tail: usize) -> String {
        let key = &self.key;
        format!(
            "d=\"{BASE}/{key}\"; e=-; [ -s \"$d.exit\" ] && read -r e < \"$d.exit\"\n\
             printf '%s %s %s\\n' \"$(wc -c 2>/dev/null < \"$d.out\" || echo 0)\" \"$(wc -c 2>/dev/null < \"$d.err\" || echo 0)\" \"$e\"\n\
             tail -c {tail} \"$d.out\" 2>/dev/null; tail -c {tail} \"$d.err\" >&2 2>/dev/null; exit 0"
        )
    }

    /// Bytes `offset..offset+length` of one stream (`out` or `err`).
    pub fn read_script(&self, stream: &str, offset: u64, length: u64) -> String {
        let key = &self.key;
        let stream = if stream == "err" { "err" } else { "out" };
        format!(
            "f=\"{BASE}/{key}.{stream}\"; [ -e \"$f\" ] || exit 3\n\
             tail -c +{} \"$f\" | head -c {length}",
            offset + 1
        )
    }

    /// The whole output, stdout and stderr on their streams (after a restart).
    pub fn fetch_script(&self) -> String {
        let key = &self.key;
        format!(
            "d=\"{BASE}/{key}\"; cat \"$d.out\" 2>/dev/null; cat \"$d.err\" >&2 2>/dev/null; exit 0"
        )
    }
}

/// Whether a stop script's output says nothing of the command is left (`stopped`, or
/// `gone`: it had ended before).
pub fn stop_verified(said: &str) -> bool {
    said.lines().any(|line| line == "stopped" || line == "gone")
}

/// A shell function `marked KEY`: the PIDs of processes whose environment holds
/// `WARDEN_JOB=KEY` (readable for the login's own processes, and all when root).
const MARKED: &str = "marked() { grep -lsFxz \"WARDEN_JOB=$1\" /proc/[0-9]*/environ 2>/dev/null | while IFS=/ read -r _ _ n _; do echo \"$n\"; done; }";

/// One line per spooled command of `job` on the host at `host_index`:
/// `spool <key> <alive 0|1> <exit code or -> <stopped reason or -> <out bytes> <err bytes>`.
pub fn status_script(job: &str, host_index: usize) -> String {
    let job = safe(job);
    format!(
        "{MARKED}\n\
         for f in \"{BASE}/{job}-{host_index}-\"*.pid; do\n\
         [ -e \"$f\" ] || continue\n\
         d=${{f%.pid}}; k=${{d##*/}}; p=; s=; read -r p s < \"$f\"; a=0\n\
         if [ -n \"$p\" ] && kill -s 0 -- \"-$p\" 2>/dev/null; then\n\
         if [ -r \"/proc/$p/stat\" ]; then read -r t < \"/proc/$p/stat\"; set -- $t; [ \"${{22}}\" = \"$s\" ] && a=1; else a=1; fi\n\
         fi\n\
         [ -n \"$(marked \"$k\")\" ] && a=1\n\
         e=-; [ -s \"$d.exit\" ] && read -r e < \"$d.exit\"\n\
         x=-; [ -s \"$d.stopped\" ] && read -r x < \"$d.stopped\"\n\
         printf 'spool %s %s %s %s %s %s\\n' \"$k\" \"$a\" \"$e\" \"$x\" \"$(wc -c 2>/dev/null < \"$d.out\" || echo 0)\" \"$(wc -c 2>/dev/null < \"$d.err\" || echo 0)\"\n\
         done; exit 0"
    )
}

/// What `status_script` says of one spooled command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolStatus {
    pub key: String,
    pub alive: bool,
    pub exit_code: Option<i32>,
    pub stopped: Option<StopReason>,
    pub stdout_bytes: u64,
    pub stderr_bytes: u64,
}

impl SpoolStatus {
    /// The `spool …` lines of `status_script`'s output.
    pub fn parse(output: &str) -> Vec<SpoolStatus> {
        output
            .lines()
            .filter_map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                let ["spool", key, alive, exit, stopped, out, err] = fields.as_slice() else {
                    return None;
                };
                Some(SpoolStatus {
                    key: (*key).to_owned(),
                    alive: *alive == "1",
                    exit_code: exit.parse().ok(),
                    stopped: match *stopped {
                        "timed_out" => Some(StopReason::TimedOut),
                        "cancelled" => Some(StopReason::Cancelled),
                        _ => None,
                    },
                    stdout_bytes: out.parse().unwrap_or_default(),
                    stderr_bytes: err.parse().unwrap_or_default(),
                })
            })
            .collect()
    }
}

/// The characters a spool key may hold: job ids are warden's own, but the scripts
/// above put them in shell text, so nothing else gets through.
fn safe(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_hold_only_safe_characters() {
        let spool = Spool::new("job_1'; rm -rf / #", 2, 0);
        assert_eq!(spool.key(), "job_1rm-rf-2-0");
        assert!(!status_script("job_$(id)", 0).contains("$(id)"));
    }

    #[test]
    fn status_lines_parse() {
        let lines = "noise\nspool job_a-0-0 1 - - 10 0\nspool job_a-0-1 0 3 timed_out 5 7\n";
        let parsed = SpoolStatus::parse(lines);
        assert_eq!(parsed.len(), 2);
        assert!(parsed[0].alive && parsed[0].exit_code.is_none());
        assert_eq!(parsed[1].exit_code, Some(3));
        assert_eq!(parsed[1].stopped, Some(StopReason::TimedOut));
        assert_eq!(parsed[1].stderr_bytes, 7);
    }
}
