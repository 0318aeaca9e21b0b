//! `facts`: OS, kernel, arch, hostname, uptime, CPUs, memory, disks, load and
//! addresses of each host, parsed into fields, in one round trip per host.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use warden_core::error::{Error, ErrorCode, Result};
use warden_core::inventory::Host;
use warden_core::tool::{Domain, Effect, Plan, Probe, Summary, Tool, ToolInfo};
use warden_core::transport::ExitStatus;
use warden_core::{PlanContext, RunContext};

pub struct Facts;

/// One shell script, sections separated by markers, so one channel per host suffices.
/// Deny rules may block it by its label.
const PROBE: Probe = Probe {
    label: "warden-facts",
    script: r#"echo '@@os'; cat /etc/os-release 2>/dev/null
echo '@@uname'; uname -s; uname -r; uname -m
echo '@@hostname'; hostname 2>/dev/null || cat /proc/sys/kernel/hostname
echo '@@uptime'; cat /proc/uptime 2>/dev/null
echo '@@cpus'; nproc 2>/dev/null || getconf _NPROCESSORS_ONLN
echo '@@meminfo'; cat /proc/meminfo 2>/dev/null
echo '@@loadavg'; cat /proc/loadavg 2>/dev/null
echo '@@df'; df -P -k 2>/dev/null
echo '@@addr'; ip -o addr show 2>/dev/null || hostname -I 2>/dev/null
echo '@@end'"#,
};

#[derive(Debug, Deserialize, JsonSchema)]
pub struct FactsParams {
    /// Hosts: host:ID, group:G, tag:K=V, all; comma-joined.
    pub target: String,
    /// Only show the plan.
    #[serde(default)]
    pub dry_run: bool,
}

#[derive(Debug, Clone, Default, Serialize, JsonSchema, PartialEq)]
pub struct HostFacts {
    pub os: Option<String>,
    pub os_id: Option<String>,
    pub os_version: Option<String>,
    pub kernel: Option<String>,
    pub kernel_release: Option<String>,
    pub arch: Option<String>,
    pub hostname: Option<String>,
    pub uptime_s: Option<u64>,
    pub cpus: Option<u32>,
    pub memory_total_kb: Option<u64>,
    pub memory_available_kb: Option<u64>,
    pub swap_total_kb: Option<u64>,
    /// 1, 5 and 15 minute load averages.
    pub load: Option<[f64; 3]>,
    pub disks: Vec<Disk>,
    pub addresses: Vec<Address>,
}

#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq)]
pub struct Disk {
    pub filesystem: String,
    pub mount: String,
    pub size_kb: u64,
    pub used_kb: u64,
    pub available_kb: u64,
    pub use_percent: u8,
}

#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq)]
pub struct Address {
    pub interface: Option<String>,
    pub family: String,
    pub address: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct HostFactsResult {
    pub host_id: String,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub facts: Option<HostFacts>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<serde_json::Map<String, Value>>")]
    pub error: Option<Value>,
}

impl HostFactsResult {
    fn failed(host: &Host, error: Error) -> HostFactsResult {
        HostFactsResult {
            host_id: host.id.to_string(),
            ok: false,
            facts: None,
            error: Some(error.with_host(host.id.as_str()).to_json()["error"].clone()),
        }
    }
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct FactsOutput {
    pub results: Vec<HostFactsResult>,
    pub summary: Summary,
}

impl Tool for Facts {
    type Params = FactsParams;
    type Output = FactsOutput;

    const INFO: ToolInfo = ToolInfo {
        name: "facts",
        domain: Domain::Sys,
        summary: "Host system facts",
        description: "System facts per host, parsed: OS, kernel, arch, hostname, uptime, CPUs, memory, disks, load, addresses. One round trip per host. Per-host errors: SSH_*, HOST_KEY_*, CMD_TIMEOUT.",
        effect: Effect::ReadOnly,
        idempotent: true,
        open_world: true,
        example: r#"{"target": "group:web"}"#,
    };

    fn plan(&self, params: &FactsParams, planning: &PlanContext) -> Result<Plan> {
        Ok(
            Plan::probe(planning.inventory().resolve(&params.target)?, PROBE)
                .dry_run(params.dry_run),
        )
    }

    fn run(
        &self,
        _params: FactsParams,
        context: RunContext,
    ) -> impl Future<Output = Result<FactsOutput>> + Send + 'static {
        async move {
            let started = Instant::now();
            let hosts = context.planned_hosts();
            let results = context
                .for_each_host(
                    &hosts,
                    move |context, host| async move {
                        let outcome = context
                            .probe(&host, &PROBE, Duration::from_secs(30), 1024 * 1024)
                            .await
                            .and_then(|output| match output.status {
                                ExitStatus::TimedOut => {
                                    Err(Error::new(ErrorCode::CmdTimeout, "facts probe timed out"))
                                }
                                ExitStatus::Cancelled => {
                                    Err(Error::new(ErrorCode::Cancelled, "cancelled"))
                                }
                                _ => Ok(parse(&output.stdout.text())),
                            });
                        match outcome {
                            Ok(facts) => HostFactsResult {
                                host_id: host.id.to_string(),
                                ok: true,
                                facts: Some(facts),
                                error: None,
                            },
                            Err(error) => HostFactsResult::failed(&host, error),
                        }
                    },
                    HostFactsResult::failed,
                )
                .await;
            let summary = Summary::count(
                results.iter().map(|result| &result.ok),
                context.job_id(),
                started,
            );
            Ok(FactsOutput { results, summary })
        }
    }
}

/// Parses the probe's sectioned output; missing sections leave fields empty.
pub fn parse(text: &str) -> HostFacts {
    let mut sections: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut current = "";
    for line in text.lines() {
        match line.strip_prefix("@@") {
            Some(name) => current = name,
            None => sections.entry(current).or_default().push(line),
        }
    }
    let section = |name: &str| sections.get(name).cloned().unwrap_or_default();
    let mut facts = HostFacts::default();

    let os_release: BTreeMap<&str, String> = section("os")
        .iter()
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| (key, value.trim_matches('"').to_owned()))
        .collect();
    facts.os = os_release.get("PRETTY_NAME").cloned();
    facts.os_id = os_release.get("ID").cloned();
    facts.os_version = os_release.get("VERSION_ID").cloned();

    let uname = section("uname");
    facts.kernel = uname.first().map(|value| value.to_string());
    facts.kernel_release = uname.get(1).map(|value| value.to_string());
    facts.arch = uname.get(2).map(|value| value.to_string());
    facts.hostname = section("hostname")
        .first()
        .map(|value| value.trim().to_owned());
    facts.uptime_s = section("uptime")
        .first()
        .and_then(|line| line.split_whitespace().next())
        .and_then(|seconds| seconds.parse::<f64>().ok())
        .map(|seconds| seconds as u64);
    facts.cpus = section("cpus")
        .first()
        .and_then(|value| value.trim().parse().ok());

    let meminfo: BTreeMap<&str, u64> = section("meminfo")
        .iter()
        .filter_map(|line| {
            let (key, rest) = line.split_once(':')?;
            Some((key, rest.split_whitespace().next()?.parse().ok()?))
        })
        .collect();
    facts.memory_total_kb = meminfo.get("MemTotal").copied();
    facts.memory_available_kb = meminfo.get("MemAvailable").copied();
    facts.swap_total_kb = meminfo.get("SwapTotal").copied();

    facts.load = section("loadavg").first().and_then(|line| {
        let mut numbers = line
            .split_whitespace()
            .map(|value| value.parse::<f64>().ok());
        Some([numbers.next()??, numbers.next()??, numbers.next()??])
    });

    facts.disks = section("df")
        .iter()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 6 {
                return None;
            }
            Some(Disk {
                filesystem: fields[0].to_owned(),
                size_kb: fields[1].parse().ok()?,
                used_kb: fields[2].parse().ok()?,
                available_kb: fields[3].parse().ok()?,
                use_percent: fields[4].trim_end_matches('%').parse().ok()?,
                mount: fields[5..].join(" "),
            })
        })
        .filter(|disk| disk.size_kb > 0)
        .collect();

    facts.addresses = section("addr")
        .iter()
        .flat_map(|line| parse_address_line(line))
        .collect();
    facts
}

/// `ip -o addr` lines (`2: eth0    inet 10.0.0.5/24 ...`) or `hostname -I` words.
fn parse_address_line(line: &str) -> Vec<Address> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    if let Some(position) = fields
        .iter()
        .position(|field| *field == "inet" || *field == "inet6")
    {
        let Some(address) = fields.get(position + 1) else {
            return Vec::new();
        };
        return vec![Address {
            interface: fields
                .get(1)
                .map(|name| name.trim_end_matches(':').to_owned()),
            family: fields[position].to_owned(),
            address: address.to_string(),
        }];
    }
    fields
        .iter()
        .map(|address| Address {
            interface: None,
            family: if address.contains(':') {
                "inet6"
            } else {
                "inet"
            }
            .to_owned(),
            address: address.to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_output_parses_into_fields() {
        let text = "@@os\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n\
@@uname\nLinux\n6.1.0-18-amd64\nx86_64\n@@hostname\nweb-1\n@@uptime\n12345.67 2345.00\n@@cpus\n2\n\
@@meminfo\nMemTotal:       24568848 kB\nMemAvailable:   20000000 kB\nSwapTotal: 0 kB\n\
@@loadavg\n0.15 0.10 0.05 1/234 5678\n\
@@df\nFilesystem     1024-blocks     Used Available Capacity Mounted on\n/dev/vda        264000000 11000000 253000000       5% /\ntmpfs 0 0 0 - /dev/shm\n\
@@addr\n1: lo    inet 127.0.0.1/8 scope host lo\n2: eth0    inet6 fe80::1/64 scope link\n@@end\n";
        let facts = parse(text);
        assert_eq!(facts.os.as_deref(), Some("Debian GNU/Linux 12 (bookworm)"));
        assert_eq!(facts.os_version.as_deref(), Some("12"));
        assert_eq!(facts.kernel.as_deref(), Some("Linux"));
        assert_eq!(facts.arch.as_deref(), Some("x86_64"));
        assert_eq!(facts.hostname.as_deref(), Some("web-1"));
        assert_eq!(facts.uptime_s, Some(12345));
        assert_eq!(facts.cpus, Some(2));
        assert_eq!(facts.memory_total_kb, Some(24_568_848));
        assert_eq!(facts.load, Some([0.15, 0.10, 0.05]));
        assert_eq!(facts.disks.len(), 1);
        assert_eq!(facts.disks[0].use_percent, 5);
        assert_eq!(facts.addresses.len(), 2);
        assert_eq!(facts.addresses[0].interface.as_deref(), Some("lo"));
        assert_eq!(facts.addresses[1].family, "inet6");
    }

    #[test]
    fn missing_sections_leave_fields_empty() {
        let facts = parse("@@uname\nDarwin\n23.0\narm64\n");
        assert_eq!(facts.kernel.as_deref(), Some("Darwin"));
        assert!(facts.memory_total_kb.is_none());
        assert!(facts.disks.is_empty());
    }
}
