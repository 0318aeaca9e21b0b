//! The run-time half of the choke point: a tool whose `run` reaches past its plan is
//! refused at each kind of reach (host, command, probe, interactive command, path, an
//! entry beside a planned path), and nothing it was refused reaches the host.

// `run` is written as the catalogue writes it (see warden-tools' lib.rs).
#![allow(clippy::manual_async_fn)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, LoadedConfig};
use crate::error::{ErrorCode, Result};
use crate::files::HostFiles;
use crate::inventory::Host;
use crate::local::LocalTransport;
use crate::sandbox::Last;
use crate::tool::{Domain, DynTool, Effect, Plan, Probe, Registry, Tool, ToolInfo};
use crate::transport::{Command, ExecOutput, ExecRequest, Permit, Transport};
use crate::{Caller, Engine, PlanContext, RunContext};

const PLANNED: Probe = Probe {
    label: "planned-probe",
    script: "true",
};
const UNPLANNED: Probe = Probe {
    label: "unplanned-probe",
    script: "id",
};

/// Plans `uptime`, a probe and one path on web-1; `run` then reaches for `reach`.
struct Rogue;

#[derive(Debug, serde::Serialize, JsonSchema)]
struct Done {}

#[derive(Debug, Deserialize, JsonSchema)]
struct RogueParams {
    /// What to reach for.
    reach: String,
    /// The planned file.
    path: String,
}

impl Tool for Rogue {
    type Params = RogueParams;
    type Output = Done;

    const INFO: ToolInfo = ToolInfo {
        name: "rogue",
        domain: Domain::Core,
        summary: "Reach past the plan",
        description: "test only",
        effect: Effect::Destructive,
        idempotent: false,
        open_world: true,
        example: "{}",
    };

    fn plan(&self, params: &RogueParams, planning: &PlanContext) -> Result<Plan> {
        let host = planning.inventory().require("web-1")?;
        let mut plan = Plan::command(
            vec![host],
            Command::Shell("uptime".into()),
            Effect::Destructive,
        )
        .with_path(&params.path, Last::Follow);
        plan.probes.push(PLANNED);
        Ok(plan)
    }

    fn run(
        &self,
        params: RogueParams,
        context: RunContext,
    ) -> impl Future<Output = Result<Done>> + Send + 'static {
        async move {
            let web1 = context.inventory().require("web-1")?;
            let web2 = context.inventory().require("web-2")?;
            let request = |command: &str| ExecRequest {
                command: Command::Shell(command.into()),
                env: Default::default(),
                stdin: None,
                working_directory: None,
                timeout: std::time::Duration::from_secs(5),
                max_output_bytes: 1024,
                hide_command: false,
                spool: None,
                spill: None,
                secret_stdin: None,
            };
            let sibling = params.path.replace("planned.txt", "other.txt");
            match params.reach.as_str() {
                "nothing" => {
                    context.exec(&web1, &request("uptime")).await?;
                    let sandbox = context.sandbox(&web1, &params.path).await?;
                    sandbox.files().read(&params.path, 0, 10).await?;
                }
                "host" => {
                    context.exec(&web2, &request("uptime")).await?;
                }
                "command" => {
                    context.exec(&web1, &request("id")).await?;
                }
                "stdin" => {
                    // The planned command with a script policy never saw.
                    let mut fed = request("uptime");
                    fed.stdin = Some(b"touch f".to_vec());
                    context.exec(&web1, &fed).await?;
                }
                "env" => {
                    let mut fed = request("uptime");
                    fed.env.insert("BASH_ENV".into(), "/tmp/x".into());
                    context.exec(&web1, &fed).await?;
                }
                "probe" => {
                    context
                        .probe(&web1, &UNPLANNED, std::time::Duration::from_secs(5), 1024)
                        .await?;
                }
                "interactive" => {
                    // The planned command, kept open: a step the plan did not name.
                    let request = crate::interactive::InteractiveRequest {
                        command: Command::Shell("uptime".into()),
                        env: Default::default(),
                        working_directory: None,
                        pty: false,
                    };
                    context
                        .command_start(&web1, &request, std::time::Duration::ZERO)
                        .await?;
                }
                "continue" => {
                    context.command_continue(std::time::Duration::ZERO).await?;
                }
                "path" => {
                    context.sandbox(&web1, &sibling).await?;
                }
                "beside" => {
                    let sandbox = context.sandbox(&web1, &params.path).await?;
                    sandbox.files().read(&sibling, 0, 10).await?;
                }
                _ => {}
            }
            Ok(Done {})
        }
    }
}

static ROGUE: &[&dyn DynTool] = &[&Rogue];

/// An engine over `yaml` serving `tools`, its state under `state_dir`.
fn engine_over(
    yaml: &str,
    state_dir: &std::path::Path,
    tools: &'static [&'static dyn DynTool],
    transport: Arc<dyn Transport>,
) -> Engine {
    let loaded = LoadedConfig {
        config: Config::parse(yaml).unwrap(),
        source: None,
        state_dir: state_dir.to_path_buf(),
    };
    let store = Arc::new(crate::store::memory::MemoryStore::default());
    Engine::new(loaded, transport, Arc::new(Registry::new(tools)), store).unwrap()
}

/// The local transport, counting commands that reach it.
struct Counting(AtomicUsize);

#[async_trait]
impl Transport for Counting {
    async fn exec(
        &self,
        permit: &Permit,
        host: &Host,
        request: &ExecRequest,
        cancel: &CancellationToken,
    ) -> Result<ExecOutput> {
        self.0.fetch_add(1, Ordering::SeqCst);
        LocalTransport.exec(permit, host, request, cancel).await
    }

    async fn files(&self, permit: &Permit, host: &Host) -> Result<Arc<dyn HostFiles>> {
        LocalTransport.files(permit, host).await
    }
}

#[tokio::test]
async fn a_tool_reaching_past_its_plan_is_refused_at_every_reach() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    std::fs::write(root.join("planned.txt"), "planned").unwrap();
    std::fs::write(root.join("other.txt"), "other").unwrap();
    let yaml = format!(
        "hosts:\n  - {{id: web-1, address: 127.0.0.1}}\n  - {{id: web-2, address: 127.0.0.2}}\npolicy:\n  allowed_roots: ['{}']\n",
        root.display()
    );
    let transport = Arc::new(Counting(AtomicUsize::new(0)));
    let engine = engine_over(&yaml, &root.join("state"), ROGUE, transport.clone());
    let path = root.join("planned.txt").display().to_string();
    let caller = Caller::new("test");
    let call = |reach: &str| {
        engine.invoke(
            &caller,
            "rogue",
            json!({"reach": reach, "path": path}),
            CancellationToken::new(),
            None,
        )
    };

    call("nothing").await.unwrap();
    assert_eq!(
        transport.0.load(Ordering::SeqCst),
        1,
        "the planned command ran"
    );
    for (reach, code, says) in [
        ("host", ErrorCode::Internal, "not in this call's plan"),
        ("command", ErrorCode::Internal, "not in this call's plan"),
        ("stdin", ErrorCode::Internal, "not in this call's plan"),
        ("env", ErrorCode::Internal, "not in this call's plan"),
        ("probe", ErrorCode::Internal, "not in this call's plan"),
        (
            "interactive",
            ErrorCode::Internal,
            "not in this call's plan",
        ),
        ("continue", ErrorCode::Internal, "not in this call's plan"),
        ("path", ErrorCode::Internal, "not in this call's plan"),
        (
            "beside",
            ErrorCode::PathOutsideRoot,
            "not a path this call planned",
        ),
    ] {
        let error = call(reach).await.unwrap_err();
        assert_eq!(error.code, code, "{reach}: {error}");
        assert!(error.message.contains(says), "{reach}: {error}");
    }
    assert_eq!(
        transport.0.load(Ordering::SeqCst),
        1,
        "nothing refused reached the host"
    );
}

// ---- review: strings a tool passes to the confined view ----------------------------

/// Plans one directory (`dir`) on web-1; `run` hands the confined view a path string
/// built from it (`reach`), the way a tool joining names would.
struct Climber;

#[derive(Debug, Deserialize, JsonSchema)]
struct ClimberParams {
    /// What to do.
    reach: String,
    /// The planned directory.
    dir: String,
    /// The string passed to the confined view.
    target: String,
}

impl Tool for Climber {
    type Params = ClimberParams;
    type Output = Done;

    const INFO: ToolInfo = ToolInfo {
        name: "climber",
        domain: Domain::Core,
        summary: "Pass unnormalized paths to the confined view",
        description: "test only",
        effect: Effect::Mutating,
        idempotent: false,
        open_world: true,
        example: "{}",
    };

    fn plan(&self, params: &ClimberParams, planning: &PlanContext) -> Result<Plan> {
        let host = planning.inventory().require("web-1")?;
        Ok(Plan {
            hosts: vec![host],
            effect: Effect::Mutating,
            ..Plan::local_state()
        }
        .with_path(&params.dir, Last::Follow))
    }

    fn run(
        &self,
        params: ClimberParams,
        context: RunContext,
    ) -> impl Future<Output = Result<Done>> + Send + 'static {
        async move {
            let web1 = context.inventory().require("web-1")?;
            let sandbox = context.sandbox(&web1, &params.dir).await?;
            match params.reach.as_str() {
                "read" => {
                    sandbox.files().read(&params.target, 0, 100).await?;
                }
                "create" => {
                    sandbox
                        .files()
                        .create_new(&params.target, b"pwned", 0o644)
                        .await?;
                }
                "lstat" => {
                    sandbox.resolve(&params.target, Last::NoFollow).await?;
                    sandbox
                        .files()
                        .lstat(&params.target)
                        .await?
                        .ok_or_else(|| crate::Error::internal("nothing there"))?;
                }
                _ => {}
            }
            Ok(Done {})
        }
    }
}

static CLIMBER: &[&dyn DynTool] = &[&Climber];

/// An engine over the local file system rooted at `<tmp>/root` (allowed root), with
/// `<tmp>/root/secret` in deny_paths; `<tmp>/outside.txt` lies outside the root.
fn climber_world() -> (tempfile::TempDir, std::path::PathBuf, Engine) {
    climber_world_with("", "")
}

async fn climb(engine: &Engine, reach: &str, dir: &str, target: &str) -> Result<serde_json::Value> {
    engine
        .invoke(
            &Caller::new("test"),
            "climber",
            json!({"reach": reach, "dir": dir, "target": target}),
            CancellationToken::new(),
            None,
        )
        .await
}

/// `..` inside the string a tool passes is not resolved by the confined view: it passes
/// `within` (a string prefix test), and the parents are lstat-ed as real directories.
#[tokio::test]
async fn review_confined_view_refuses_dotdot_that_leaves_the_root() {
    let (_dir, base, engine) = climber_world();
    let root = base.join("root").display().to_string();
    let planned = format!("{root}/pub");
    let escape = format!("{root}/pub/../../outside.txt");
    let read = climb(&engine, "read", &planned, &escape).await;
    let created = format!("{root}/pub/../../escaped.txt");
    let write = climb(&engine, "create", &planned, &created).await;
    assert!(
        !base.join("escaped.txt").exists(),
        "a file was created outside the root: {write:?}"
    );
    assert!(
        read.as_ref()
            .is_err_and(|e| e.code == ErrorCode::PathOutsideRoot),
        "read outside the root through `..`: {read:?}"
    );
}

/// deny_paths matches strings: `<root>/pub/../secret/key` (or `<root>/./secret/key`)
/// is not `<root>/secret`, and it is also outside the planned `pub`.
#[tokio::test]
async fn review_confined_view_refuses_denied_path_spelt_with_dots() {
    let (_dir, base, engine) = climber_world();
    let root = base.join("root").display().to_string();
    let planned = format!("{root}/pub");
    for target in [
        format!("{root}/pub/../secret/key"),
        format!("{root}/pub/./../secret/key"),
    ] {
        let read = climb(&engine, "read", &planned, &target).await;
        assert!(read.is_err(), "read {target} (denied, unplanned): {read:?}");
    }
}

/// `Sandbox::resolve` walks through the raw port, and `Confined::lstat` skips the scope
/// check for an entry it has learnt: an unplanned file can be looked at.
#[tokio::test]
async fn review_confined_lstat_of_a_learnt_entry_ignores_the_scope() {
    let (_dir, base, engine) = climber_world();
    let root = base.join("root").display().to_string();
    let planned = format!("{root}/pub");
    let other = format!("{root}/other.txt");
    let looked = climb(&engine, "lstat", &planned, &other).await;
    assert!(
        looked
            .as_ref()
            .is_err_and(|e| e.code == ErrorCode::PathOutsideRoot),
        "lstat of an unplanned sibling: {looked:?}"
    );
}

/// `allowed_roots: ['/']` allows nothing: `resolve("/")` never lstat-s `/` (its
/// `meta` stays `None`), so `resolve_root` answers "does not exist" and the root is
/// skipped. (A planned path of `/` under policy `off` is "not found" the same way.)
#[tokio::test]
async fn review_allowed_root_slash_allows_paths_below_it() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().canonicalize().unwrap();
    std::fs::write(base.join("file.txt"), "x").unwrap();
    let yaml = "hosts:\n  - {id: web-1, address: 127.0.0.1}\npolicy:\n  allowed_roots: ['/']\n";
    let transport = Arc::new(Counting(AtomicUsize::new(0)));
    let engine = engine_over(yaml, &base.join("state"), CLIMBER, transport);
    let dir_path = base.display().to_string();
    let file = base.join("file.txt").display().to_string();
    let read = climb(&engine, "read", &dir_path, &file).await;
    assert!(read.is_ok(), "read below allowed root `/`: {read:?}");
}

/// Latent (live once `/` works as a root, see above): under root `/` every string
/// passes `within("/", _)`, relative ones too. The raw port resolves `Cargo.toml`
/// against its own working directory, and the guard never sees the absolute path.
#[tokio::test]
async fn review_confined_view_under_root_slash_refuses_relative_paths() {
    let cwd = std::env::current_dir().unwrap().canonicalize().unwrap();
    let denied = cwd.join("Cargo.toml").display().to_string();
    assert!(std::path::Path::new(&denied).exists());
    let guard_denied = denied.clone();
    let guard: crate::sandbox::PathGuard = Arc::new(move |path: &str| {
        if path == guard_denied {
            return Err(crate::Error::new(ErrorCode::PolicyDenied, "denied"));
        }
        Ok(())
    });
    let sandbox = crate::sandbox::Sandbox::new(
        Arc::new(crate::local_files::LocalFiles),
        "/".into(),
        "/".into(),
        guard,
        Default::default(),
    )
    .scoped(vec!["/".into()]);
    assert!(sandbox.files().read(&denied, 0, 10).await.is_err());
    let relative = sandbox.files().read("Cargo.toml", 0, 10).await;
    assert!(
        relative.is_err(),
        "a relative path reached the denied file: {relative:?}"
    );
}

/// Plans one path on web-1 and web-2; runs nothing.
struct Fan;

#[derive(Debug, Deserialize, JsonSchema)]
struct FanParams {
    /// The planned file.
    path: String,
}

impl Tool for Fan {
    type Params = FanParams;
    type Output = Done;

    const INFO: ToolInfo = ToolInfo {
        name: "fan",
        domain: Domain::Core,
        summary: "One path on two hosts",
        description: "test only",
        effect: Effect::Mutating,
        idempotent: false,
        open_world: true,
        example: "{}",
    };

    fn plan(&self, params: &FanParams, planning: &PlanContext) -> Result<Plan> {
        let hosts = vec![
            planning.inventory().require("web-1")?,
            planning.inventory().require("web-2")?,
        ];
        Ok(Plan {
            hosts,
            effect: Effect::Mutating,
            ..Plan::local_state()
        }
        .with_path(&params.path, Last::Follow))
    }

    fn run(
        &self,
        _params: FanParams,
        _context: RunContext,
    ) -> impl Future<Output = Result<Done>> + Send + 'static {
        async move { Ok(Done {}) }
    }
}

static FAN: &[&dyn DynTool] = &[&Fan];

/// web-2's role denies the path: the call goes on for web-1 (by design), but the
/// `requested` record says `allowed` and names web-2's path with no resolution and no
/// word of the deny rule: the audit log cannot tell a denial from an unreachable host.
#[tokio::test]
async fn review_fanout_path_denied_on_one_host_is_recorded_as_denied() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    std::fs::write(root.join("app.conf"), "x").unwrap();
    let yaml = format!(
        "hosts:\n  - {{id: web-1, address: 127.0.0.1}}\n  - {{id: web-2, address: 127.0.0.2, role: locked}}\npolicy:\n  allowed_roots: ['{root}']\n  roles:\n    - name: locked\n      deny_paths: ['{root}/app\\.conf']\n",
        root = root.display()
    );
    let transport = Arc::new(Counting(AtomicUsize::new(0)));
    let engine = engine_over(&yaml, &root.join("state"), FAN, transport);
    let audit_dir = engine.config().audit_dir();
    let path = root.join("app.conf").display().to_string();
    engine
        .invoke(
            &Caller::new("test"),
            "fan",
            json!({"path": path}),
            CancellationToken::new(),
            None,
        )
        .await
        .unwrap();
    engine.shutdown().await;
    let records = crate::audit::tail(&audit_dir, 10).unwrap();
    let requested = records
        .iter()
        .find(|record| record["phase"] == "requested")
        .expect("a requested record");
    let web2 = requested["paths"]
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| entry["host_id"] == "web-2")
        .expect("web-2's path is recorded");
    let says = web2.to_string() + &requested["reason"].to_string() + &requested["rule"].to_string();
    assert!(
        says.contains("deny") || says.contains("denied"),
        "requested record {requested} says nothing of web-2's denial"
    );
}

/// `resolve` follows a symlink without telling the confined view: a directory the view
/// learnt earlier stays "known real" after resolve has seen it is now a symlink (a
/// swap during the call), and the next primitive below it goes through the link.
#[tokio::test]
async fn review_resolve_forgets_a_known_directory_it_finds_to_be_a_symlink() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().canonicalize().unwrap();
    let root = base.join("root");
    std::fs::create_dir_all(root.join("sub")).unwrap();
    std::fs::create_dir_all(base.join("outside")).unwrap();
    std::fs::write(base.join("outside/file"), "outside").unwrap();
    let root_text = root.display().to_string();
    let sandbox = crate::sandbox::Sandbox::new(
        Arc::new(crate::local_files::LocalFiles),
        root_text.clone(),
        root_text.clone(),
        Arc::new(|_: &str| Ok(())),
        Default::default(),
    );
    sandbox.files().read_dir(&root_text).await.unwrap(); // learns sub: Dir
    std::fs::remove_dir(root.join("sub")).unwrap();
    symlink_dir(&base.join("outside"), &root.join("sub"));
    // resolve sees the symlink (and refuses: it leaves the root) ...
    assert!(sandbox.resolve("sub/file", Last::Follow).await.is_err());
    // ... yet the view still trusts `sub` as a real directory.
    let read = sandbox
        .files()
        .read(&format!("{root_text}/sub/file"), 0, 100)
        .await;
    assert!(
        read.is_err(),
        "read through a symlink resolve had seen: {read:?}"
    );
}

fn symlink_dir(target: &std::path::Path, link: &std::path::Path) {
    std::os::unix::fs::symlink(target, link).unwrap();
}

// ---- second review ---------------------------------------------------------------

/// An engine over `<tmp>/root` (allowed root, `secret/` denied) with `extra` YAML under
/// `policy:` and `top` YAML at the top level, serving the Climber.
fn climber_world_with(
    policy_extra: &str,
    top: &str,
) -> (tempfile::TempDir, std::path::PathBuf, Engine) {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().canonicalize().unwrap();
    let root = base.join("root");
    std::fs::create_dir_all(root.join("pub")).unwrap();
    std::fs::create_dir_all(root.join("secret")).unwrap();
    std::fs::write(root.join("secret/key"), "secret key").unwrap();
    std::fs::write(root.join("other.txt"), "not planned").unwrap();
    std::fs::write(base.join("outside.txt"), "outside the root").unwrap();
    let yaml = format!(
        "hosts:\n  - {{id: web-1, address: 127.0.0.1}}\npolicy:\n  allowed_roots: ['{root}']\n  deny_paths: ['{root}/secret']\n{policy_extra}{top}",
        root = root.display()
    );
    let transport = Arc::new(Counting(AtomicUsize::new(0)));
    let engine = engine_over(&yaml, &base.join("state"), CLIMBER, transport);
    (dir, base, engine)
}

/// `mode: warn` exists to record what enforce would refuse. A path that matches
/// `deny_paths` is let through (right), but the `requested` record says `allowed`,
/// the same as a clean call: only command verdicts can make a call `warned`, and the
/// path guard drops a `Warned` verdict on the floor.
#[tokio::test]
async fn review2_warn_mode_records_a_deny_paths_hit_as_warned() {
    let (_dir, base, engine) = climber_world_with("  mode: warn\n", "");
    let root = base.join("root").display().to_string();
    let dir = format!("{root}/secret");
    climb(&engine, "read", &dir, &format!("{dir}/key"))
        .await
        .expect("warn mode lets the call through");
    engine.shutdown().await;
    let records = crate::audit::tail(&engine.config().audit_dir(), 10).unwrap();
    let requested = records
        .iter()
        .find(|record| record["phase"] == "requested")
        .expect("a requested record");
    assert_eq!(
        requested["decision"], "warned",
        "a deny_paths hit in warn mode is recorded as {}: {requested}",
        requested["decision"]
    );
}

/// `limits.max_concurrent` and `ssh.max_parallel` are only checked for zero. A value
/// above tokio's `Semaphore::MAX_PERMITS` (usize::MAX >> 3) loads fine, then every
/// call panics in `admit` (or `grant_paths`), after validation and with no audit
/// record: config accepted, then the server cannot answer anything.
#[tokio::test]
async fn review2_huge_concurrency_limits_are_refused_at_load_not_a_panic_per_call() {
    for top in [
        "limits:\n  max_concurrent: 4611686018427387904\n",
        "ssh:\n  max_parallel: 4611686018427387904\n",
    ] {
        let yaml = format!("hosts:\n  - {{id: web-1, address: 127.0.0.1}}\n{top}");
        if Config::parse(&yaml).is_err() {
            continue; // refused with its line: fine
        }
        let (_dir, base, engine) = climber_world_with("", top);
        let root = base.join("root").display().to_string();
        let joined =
            tokio::spawn(async move { climb(&engine, "nothing", &root, &root).await.map(|_| ()) })
                .await;
        assert!(
            joined.is_ok(),
            "config {top:?} loaded, then the call panicked: {joined:?}"
        );
    }
}

/// The limits step comes after validation and sessions: calls that fail the schema
/// (or name an unknown tool, or someone else's session) are never rate limited, and
/// each one still appends an audit record. Under `rate: 1, burst: 1` a client writes
/// as many records as it can send.
#[tokio::test]
async fn review2_invalid_calls_are_rate_limited_too() {
    let (_dir, _base, engine) = climber_world_with("", "limits:\n  rate: 1\n  burst: 1\n");
    let caller = Caller::new("flood");
    // Sent at once (sequential ones are only slowed to the rate: they queue).
    let bad = || {
        engine.invoke(
            &caller,
            "climber",
            json!({"reach": "nothing", "bogus": 1}),
            CancellationToken::new(),
            None,
        )
    };
    let (a, b, c, d) = tokio::join!(bad(), bad(), bad(), bad());
    let limited = [a, b, c, d]
        .into_iter()
        .filter(|outcome| {
            outcome
                .as_ref()
                .is_err_and(|error| error.code == ErrorCode::RateLimited)
        })
        .count();
    assert!(
        limited > 0,
        "four invalid calls at once under rate 1/burst 1, none rate limited"
    );
}

/// A job tool: `sleep 1` on web-1, spooled.
struct Sleeper;

impl Tool for Sleeper {
    type Params = Done2;
    type Output = Done;

    const INFO: ToolInfo = ToolInfo {
        name: "sleeper",
        domain: Domain::Exec,
        summary: "Sleep as a job",
        description: "test only",
        effect: Effect::Mutating,
        idempotent: false,
        open_world: true,
        example: "{}",
    };
    const JOBS: bool = true;

    fn plan(&self, _params: &Done2, planning: &PlanContext) -> Result<Plan> {
        let host = planning.inventory().require("web-1")?;
        Ok(Plan::command(
            vec![host],
            Command::Shell("sleep 1".into()),
            Effect::Mutating,
        ))
    }

    fn run(
        &self,
        _params: Done2,
        context: RunContext,
    ) -> impl Future<Output = Result<Done>> + Send + 'static {
        async move {
            let host = context.inventory().require("web-1")?;
            let request = ExecRequest {
                command: Command::Shell("sleep 1".into()),
                env: Default::default(),
                stdin: None,
                working_directory: None,
                timeout: std::time::Duration::from_secs(5),
                max_output_bytes: 1024,
                hide_command: false,
                spool: None,
                spill: None,
                secret_stdin: None,
            };
            context.exec(&host, &request).await?;
            Ok(Done {})
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
struct Done2 {}

static SLEEPER: &[&dyn DynTool] = &[&Sleeper];

/// Sees, at each command, whether its job is in the store and whether it runs spooled.
struct JobWitness {
    store: Arc<crate::store::memory::MemoryStore>,
    seen: std::sync::Mutex<Vec<(bool, bool)>>,
}

#[async_trait]
impl Transport for JobWitness {
    async fn exec(
        &self,
        permit: &Permit,
        host: &Host,
        request: &ExecRequest,
        cancel: &CancellationToken,
    ) -> Result<ExecOutput> {
        use crate::store::Store;
        let stored = self
            .store
            .job(permit.job_id())
            .await?
            .is_some_and(|job| job.state == crate::store::JobState::Running);
        self.seen
            .lock()
            .unwrap()
            .push((stored, request.spool.is_some()));
        // Run it plainly: this test is about the order, not the spool's shell.
        let mut plain = request.clone();
        plain.spool = None;
        LocalTransport.exec(permit, host, &plain, cancel).await
    }

    async fn files(&self, permit: &Permit, host: &Host) -> Result<Arc<dyn HostFiles>> {
        LocalTransport.files(permit, host).await
    }
}

/// A job is in the store (running) before its first command reaches a host, the
/// command runs spooled, the call answers at its wait with the running job, and the
/// job ends succeeded.
#[tokio::test]
async fn a_job_is_stored_before_its_first_command_and_answers_at_its_wait() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(crate::store::memory::MemoryStore::default());
    let witness = Arc::new(JobWitness {
        store: Arc::clone(&store),
        seen: Default::default(),
    });
    let loaded = LoadedConfig {
        config: Config::parse("hosts:\n  - {id: web-1, address: 127.0.0.1}\n").unwrap(),
        source: None,
        state_dir: dir.path().to_path_buf(),
    };
    let engine = Engine::new(
        loaded,
        Arc::clone(&witness) as Arc<dyn Transport>,
        Arc::new(Registry::new(SLEEPER)),
        store,
    )
    .unwrap();
    let caller = Caller::new("jobs-test");
    let answer = engine
        .invoke(
            &caller,
            "sleeper",
            json!({"wait_ms": 100}),
            CancellationToken::new(),
            None,
        )
        .await
        .unwrap();
    assert_eq!(answer["state"], "running", "{answer}");
    let job = answer["job_id"].as_str().unwrap().to_owned();
    let owner = super::approve::owner(&caller);
    let ended = engine
        .wait_job(
            Some(&owner),
            &job,
            std::time::Duration::from_secs(10),
            &CancellationToken::new(),
        )
        .await
        .unwrap();
    assert_eq!(ended.state, crate::store::JobState::Succeeded, "{ended:?}");
    // The command (spooled), then the engine's peek at its output for the answer.
    let seen = witness.seen.lock().unwrap().clone();
    assert_eq!(seen[0], (true, true), "{seen:?}");
    assert!(seen.iter().all(|(stored, _)| *stored), "{seen:?}");
    // Another caller does not find it.
    let other = engine
        .job_view(Some("someone/else"), &job)
        .await
        .unwrap_err();
    assert_eq!(other.code, ErrorCode::JobNotFound);
}
