//! Registry invariants, looped over every tool with no skip list: everything a loop
//! needs (the domain, an example call) is on the tool itself, so a new tool that
//! forgets any of it fails here.
//!
//! Each tool's example runs on the tree of `warden_testkit::tree` (paths under
//! `/srv/app` are rewritten to it) through the real local transport standing in for
//! host `web-1`, wrapped to count every transport and file call.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use warden_core::files::{DirEntry, FileMeta, HostFiles};
use warden_core::interactive::{Interactive, InteractiveRequest};
use warden_core::inventory::Host;
use warden_core::tool::{Domain, DynTool, Effect};
use warden_core::transport::{ExecOutput, ExecRequest, Permit, Transport};
use warden_core::{Caller, Engine, ErrorCode, Result};
use warden_testkit::schema_check::violations;

use crate::TOOLS;

/// The local transport, counting every call that reaches it (exec, interactive
/// commands, the file port, and each file primitive).
struct Counting {
    inner: Arc<dyn Transport>,
    calls: Arc<AtomicUsize>,
    /// Commands run and file primitives that change something.
    changes: Arc<AtomicUsize>,
}

#[async_trait]
impl Transport for Counting {
    async fn exec(
        &self,
        permit: &Permit,
        host: &Host,
        request: &ExecRequest,
        cancel: &CancellationToken,
    ) -> Result<ExecOutput> {
        assert_eq!(permit.host(), &host.id, "a permit is for one host");
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.changes.fetch_add(1, Ordering::SeqCst);
        self.inner.exec(permit, host, request, cancel).await
    }

    async fn interactive(
        &self,
        permit: &Permit,
        host: &Host,
        request: &InteractiveRequest,
    ) -> Result<Interactive> {
        assert_eq!(permit.host(), &host.id, "a permit is for one host");
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.changes.fetch_add(1, Ordering::SeqCst);
        self.inner.interactive(permit, host, request).await
    }

    async fn files(&self, permit: &Permit, host: &Host) -> Result<Arc<dyn HostFiles>> {
        assert_eq!(permit.host(), &host.id, "a permit is for one host");
        self.calls.fetch_add(1, Ordering::SeqCst);
        let inner = self.inner.files(permit, host).await?;
        Ok(Arc::new(CountingFiles {
            inner,
            calls: Arc::clone(&self.calls),
            changes: Arc::clone(&self.changes),
        }))
    }
}

struct CountingFiles {
    inner: Arc<dyn HostFiles>,
    calls: Arc<AtomicUsize>,
    changes: Arc<AtomicUsize>,
}

impl CountingFiles {
    fn count(&self) -> &dyn HostFiles {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.as_ref()
    }

    /// A primitive that changes the file system: counted as a change too.
    fn change(&self) -> &dyn HostFiles {
        self.changes.fetch_add(1, Ordering::SeqCst);
        self.count()
    }
}

#[async_trait]
impl HostFiles for CountingFiles {
    async fn lstat(&self, path: &str) -> Result<Option<FileMeta>> {
        self.count().lstat(path).await
    }
    async fn read_link(&self, path: &str) -> Result<String> {
        self.count().read_link(path).await
    }
    async fn read(&self, path: &str, offset: u64, length: u64) -> Result<Vec<u8>> {
        self.count().read(path, offset, length).await
    }
    async fn create_new(&self, path: &str, data: &[u8], mode: u32) -> Result<()> {
        self.change().create_new(path, data, mode).await
    }
    async fn rename(&self, from: &str, to: &str) -> Result<()> {
        self.change().rename(from, to).await
    }
    async fn read_dir(&self, path: &str) -> Result<Vec<DirEntry>> {
        self.count().read_dir(path).await
    }
    async fn mkdir(&self, path: &str, mode: u32) -> Result<()> {
        self.change().mkdir(path, mode).await
    }
    async fn remove_file(&self, path: &str) -> Result<()> {
        self.change().remove_file(path).await
    }
    async fn remove_dir(&self, path: &str) -> Result<()> {
        self.change().remove_dir(path).await
    }
    async fn symlink(&self, target: &str, link_path: &str) -> Result<()> {
        self.change().symlink(target, link_path).await
    }
    async fn set_mode(&self, path: &str, mode: u32) -> Result<()> {
        self.change().set_mode(path, mode).await
    }
    async fn set_owner(&self, path: &str, uid: u32, gid: u32) -> Result<()> {
        self.change().set_owner(path, uid, gid).await
    }
    async fn write_at(&self, path: &str, offset: u64, data: &[u8]) -> Result<()> {
        self.change().write_at(path, offset, data).await
    }
    async fn truncate(&self, path: &str, length: u64) -> Result<()> {
        self.change().truncate(path, length).await
    }
    async fn sync(&self, path: &str) -> Result<()> {
        self.count().sync(path).await
    }
}

/// One engine over a fresh example tree, for one tool's example.
struct World {
    engine: Engine,
    calls: Arc<AtomicUsize>,
    changes: Arc<AtomicUsize>,
    base: tempfile::TempDir,
}

impl World {
    fn new(policy: &str) -> World {
        let base = tempfile::tempdir().unwrap();
        let srv = warden_testkit::tree::example_tree(base.path()).unwrap();
        let yaml = format!(
            "hosts:\n  - {{id: web-1, address: 127.0.0.1, groups: [web]}}\npolicy:\n  allowed_roots: ['{}']\n{policy}",
            srv.display()
        );
        let calls = Arc::new(AtomicUsize::new(0));
        let changes = Arc::new(AtomicUsize::new(0));
        let transport = Arc::new(Counting {
            inner: warden_core::local_transport(),
            calls: Arc::clone(&calls),
            changes: Arc::clone(&changes),
        });
        let engine = super::engine_over(&yaml, &base.path().join("state"), transport);
        World {
            engine,
            calls,
            changes,
            base,
        }
    }

    /// The tool's example, on this world's tree.
    fn example(&self, tool: &dyn DynTool) -> Value {
        let text = tool.info().example.replace(
            "/srv/app",
            &self.base.path().join("srv/app").display().to_string(),
        );
        serde_json::from_str(&text)
            .unwrap_or_else(|error| panic!("{}: example is not JSON: {error}", tool.info().name))
    }

    async fn call(&self, name: &str, args: Value) -> Result<Value> {
        self.engine
            .invoke(
                &Caller::new("registry-test"),
                name,
                args,
                CancellationToken::new(),
                None,
            )
            .await
    }

    /// (phase, decision) of every audit record of `tool`, in order.
    fn records(&self, tool: &str) -> Vec<(String, String, Value)> {
        let dir = self.base.path().join("state/audit");
        warden_core::audit::tail(&dir, 1000)
            .unwrap()
            .into_iter()
            .filter(|record| record["tool"] == tool)
            .map(|record| {
                (
                    record["phase"].as_str().unwrap().to_owned(),
                    record["decision"].as_str().unwrap().to_owned(),
                    record["hosts"].clone(),
                )
            })
            .collect()
    }
}

/// An id for `SESSION_ID` in examples: a session on the example tree.
async fn open_session(world: &World) -> String {
    let root = world.base.path().join("srv/app");
    let opened = world
        .call(
            "session_open",
            json!({"host_id": "web-1", "root": root.display().to_string()}),
        )
        .await
        .unwrap();
    opened["session_id"].as_str().unwrap().to_owned()
}

fn with_job(args: Value, job: &str) -> Value {
    serde_json::from_str(&args.to_string().replace("JOB_ID", job)).unwrap()
}

fn with_session(args: Value, session: &str) -> Value {
    serde_json::from_str(&args.to_string().replace("SESSION_ID", session)).unwrap()
}

/// `approval:` for examples that name `APPROVAL_ID`: exec asks a human first.
const EXEC_NEEDS_APPROVAL: &str =
    "approval:\n  enabled: true\n  wait: 0ms\n  rules:\n    - {tools: [exec]}\n";

/// An id for `APPROVAL_ID` in examples: exec's example, waiting for a human.
async fn pending_approval(world: &World) -> String {
    let exec = TOOLS
        .iter()
        .find(|tool| tool.info().name == "exec")
        .unwrap();
    let error = world.call("exec", world.example(*exec)).await.unwrap_err();
    error.approval_id.unwrap()
}

/// A job id for `JOB_ID` in examples: an exec on web-1 whose stdout was cut, so the
/// job (finished, spooled) also has an artifact of this caller's.
async fn artifact_job(world: &World) -> String {
    let answer = world
        .call(
            "exec",
            json!({"target": "web-1", "command": "seq 1 20000", "max_output_bytes": 1000}),
        )
        .await
        .unwrap();
    assert_eq!(answer["results"][0]["truncated"], true, "{answer}");
    answer["summary"]["job_id"].as_str().unwrap().to_owned()
}

fn assert_fits_its_schema(tool: &dyn DynTool, value: &Value, what: &str) {
    let problems = violations(&tool.output_schema(), value);
    assert!(
        problems.is_empty(),
        "{} {what} does not fit its output schema: {problems:#?}\n{value:#}",
        tool.info().name
    );
}

#[test]
fn names_are_unique_valid_and_match_their_domain() {
    let mut seen = std::collections::HashSet::new();
    for tool in TOOLS {
        let info = tool.info();
        let name = info.name;
        assert!(seen.insert(name), "{name} twice");
        assert!(
            !name.is_empty()
                && name.len() <= 64
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
            "{name}"
        );
        assert!(
            !info.summary.is_empty() && info.summary.len() <= 40,
            "{name}: summary must be a few words"
        );
        // `fs_read` lives in fs, `hosts_list` in hosts: a prefix names the domain.
        let prefixes: &[(&str, Domain)] = &[
            ("fs_", Domain::Fs),
            ("hosts_", Domain::Hosts),
            ("session_", Domain::Session),
            ("tools_", Domain::Core),
            ("audit_", Domain::Governance),
            ("policy_", Domain::Governance),
            ("sys_", Domain::Sys),
            ("artifacts_", Domain::Automation),
        ];
        for (prefix, domain) in prefixes {
            if name.starts_with(prefix) {
                assert_eq!(info.domain, *domain, "{name} belongs in {}", domain.name());
            }
        }
        assert!(
            !info.example.is_empty()
                && serde_json::from_str::<Value>(info.example).is_ok_and(|v| v.is_object()),
            "{name}: example must be a JSON object"
        );
    }
}

#[test]
fn every_schema_field_is_documented_and_schemas_are_objects() {
    fn documented(tool: &str, at: &str, schema: &Value) {
        for (field, property) in schema["properties"].as_object().into_iter().flatten() {
            assert!(
                property.get("description").is_some(),
                "{tool}: {at}.{field} has no doc comment"
            );
        }
    }
    for tool in TOOLS {
        let name = tool.info().name;
        let input = tool.input_schema();
        assert_eq!(input["type"], "object", "{name}");
        documented(name, "input", &input);
        let output = tool.output_schema();
        assert_eq!(output["type"], "object", "{name}");
    }
}

#[tokio::test]
async fn deny_all_refuses_every_host_call_before_any_transport_or_file_call() {
    for tool in TOOLS {
        let info = tool.info();
        let world = World::new("  deny_commands: ['.*']\n  deny_paths: ['.*']\n");
        let result = world.call(info.name, world.example(*tool)).await;
        assert_eq!(
            world.calls.load(Ordering::SeqCst),
            0,
            "{}: reached a host under deny-all ({result:?})",
            info.name
        );
        if !info.open_world {
            continue;
        }
        let error = result
            .err()
            .unwrap_or_else(|| panic!("{} ran under deny-all", info.name));
        assert_eq!(
            error.code,
            ErrorCode::PolicyDenied,
            "{}: {error}",
            info.name
        );
        let phases: Vec<(String, String)> = world
            .records(info.name)
            .into_iter()
            .map(|(phase, decision, _)| (phase, decision))
            .collect();
        let denied = |phase: &str| (phase.to_owned(), String::from("denied"));
        assert_eq!(
            phases,
            [denied("requested"), denied("completed")],
            "{}",
            info.name
        );
    }
}

#[tokio::test]
async fn allow_all_runs_every_example_and_every_answer_fits_its_schema() {
    for tool in TOOLS {
        let info = tool.info();
        let needs_approval = info.example.contains("APPROVAL_ID");
        let world = World::new(if needs_approval {
            EXEC_NEEDS_APPROVAL
        } else {
            ""
        });
        let mut args = world.example(*tool);
        if info.example.contains("SESSION_ID") {
            args = with_session(args, &open_session(&world).await);
        }
        if needs_approval {
            let id = pending_approval(&world).await;
            args = serde_json::from_str(&args.to_string().replace("APPROVAL_ID", &id)).unwrap();
        }
        if info.example.contains("JOB_ID") {
            args = with_job(args, &artifact_job(&world).await);
        }
        let value = world
            .call(info.name, args.clone())
            .await
            .unwrap_or_else(|error| panic!("{}: {error:?}", info.name));
        assert_fits_its_schema(*tool, &value, "answer");
        let records = world.records(info.name);
        let phases: Vec<&str> = records.iter().map(|(phase, _, _)| phase.as_str()).collect();
        assert_eq!(phases, ["requested", "completed"], "{}", info.name);
        // open_world says whether a tool reaches hosts: its example's records agree.
        let touched = records.iter().any(|(_, _, hosts)| hosts != &json!([]));
        assert_eq!(
            touched, info.open_world,
            "{}: open_world is {} but the example touched hosts: {touched}",
            info.name, info.open_world
        );
        // Every tool takes dry_run; a dry run changes nothing (it may look: paths are
        // resolved to show where they lie), and where the engine previews (the tool
        // does not declare dry_run) it is the engine's preview.
        let mut dry = args;
        dry["dry_run"] = json!(true);
        let before = world.changes.load(Ordering::SeqCst);
        let preview = world
            .call(info.name, dry)
            .await
            .unwrap_or_else(|error| panic!("{} dry run: {error:?}", info.name));
        assert_fits_its_schema(*tool, &preview, "dry-run answer");
        assert_eq!(
            world.changes.load(Ordering::SeqCst),
            before,
            "{} dry run changed something",
            info.name
        );
        let declares = tool.own_fields().contains(&"dry_run".to_owned());
        if !declares || matches!(info.name, "exec" | "facts") {
            assert_eq!(preview["dry_run"], true, "{}: {preview}", info.name);
            assert_eq!(
                preview["plan_token"].is_string(),
                info.effect != Effect::ReadOnly,
                "{}: a preview of a change carries a plan token",
                info.name
            );
        }
    }
}

#[tokio::test]
async fn every_changing_tool_takes_confirm_and_refuses_a_stale_plan_token() {
    for tool in TOOLS {
        let info = tool.info();
        let properties = tool.input_schema()["properties"].clone();
        assert!(properties.get("dry_run").is_some(), "{}", info.name);
        if info.effect == Effect::ReadOnly {
            assert!(properties.get("plan_token").is_none(), "{}", info.name);
            continue;
        }
        assert!(
            properties.get("confirm").is_some(),
            "{} takes confirm",
            info.name
        );
        let world = World::new("");
        let mut args = world.example(*tool);
        if info.example.contains("SESSION_ID") {
            args = with_session(args, &open_session(&world).await);
        }
        if info.example.contains("JOB_ID") {
            args = with_job(args, &artifact_job(&world).await);
        }
        args["confirm"] = json!(true);
        args["plan_token"] = json!("pt_not_from_a_preview");
        let error = world.call(info.name, args).await.unwrap_err();
        assert_eq!(
            error.code,
            ErrorCode::PlanChanged,
            "{}: {error:?}",
            info.name
        );
    }
}

#[tokio::test]
async fn a_file_call_that_names_no_place_says_what_to_give() {
    let world = World::new("");
    let error = world
        .call("fs_read", json!({"path": "/srv/app/app.conf"}))
        .await
        .unwrap_err();
    assert!(
        error.message.contains("session_id") && error.message.contains("host_id"),
        "{error}"
    );
    assert!(!error.message.contains("not both"), "{error}");
}

#[tokio::test]
async fn exec_on_local_is_refused_by_default_but_facts_work() {
    let world = World::new("");
    let error = world
        .call("exec", json!({"target": "host:local", "command": "id"}))
        .await
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::LocalDisabled);
    let facts = world
        .call("facts", json!({"target": "host:local"}))
        .await
        .unwrap();
    assert_eq!(facts["results"][0]["ok"], true, "{facts}");
    assert!(
        facts["results"][0]["facts"]["kernel"].is_string(),
        "{facts}"
    );
}

#[tokio::test]
async fn wrong_argument_types_and_unknown_fields_are_schema_violations() {
    let world = World::new("");
    for args in [
        json!({"target": 5, "command": "x"}),
        json!({"target": "all", "comand": "x"}),
        json!("text"),
    ] {
        let error = world.call("exec", args.clone()).await.unwrap_err();
        assert!(error.schema_violation, "{args}: {error}");
    }
    let error = world.call("exce", json!({})).await.unwrap_err();
    assert!(error.suggestions.contains(&"exec".to_owned()));
    // Refused calls are recorded too, an unknown tool among them.
    assert_eq!(world.records("exce").len(), 1);
}

#[tokio::test]
async fn dry_run_previews_without_touching_hosts() {
    let world = World::new("");
    let preview = world
        .call(
            "exec",
            json!({"target": "all", "command": "rm -rf /tmp/x", "dry_run": true}),
        )
        .await
        .unwrap();
    assert_eq!(preview["dry_run"], true);
    assert_eq!(preview["hosts"], json!(["web-1"]));
    assert_eq!(world.calls.load(Ordering::SeqCst), 0);
}

#[test]
fn the_example_tree_is_what_examples_name() {
    let base = tempfile::tempdir().unwrap();
    let srv = warden_testkit::tree::example_tree(base.path()).unwrap();
    for path in [
        "app/app.conf",
        "app/notes.txt",
        "app/release/app.conf",
        "app/bundle.tar.gz",
    ] {
        assert!(Path::new(&srv).join(path).exists(), "{path}");
    }
}

#[test]
fn the_schema_check_finds_a_wrong_answer() {
    let tool = crate::registry().find("hosts_list").unwrap();
    let wrong = json!({"hosts": [{"id": 1, "groups": []}], "count": "one"});
    assert!(violations(&tool.output_schema(), &wrong).len() >= 3);
}

#[tokio::test]
async fn hosts_list_with_local_fits_its_schema() {
    let world = World::new("");
    let tool = crate::registry().find("hosts_list").unwrap();
    let listed = world.call("hosts_list", json!({})).await.unwrap();
    assert!(
        listed["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|host| host["id"] == "local")
    );
    assert_fits_its_schema(tool, &listed, "answer with local");
}

/// Every source file says what it owns in its first line (`//!`).
#[test]
fn every_source_file_opens_with_a_module_doc() {
    fn visit(dir: &Path, missing: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                visit(&path, missing);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                if !text.starts_with("//!") {
                    missing.push(path.display().to_string());
                }
            }
        }
    }
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(&crates).unwrap() {
        let path = entry.unwrap().path();
        for sub in ["src", "tests"] {
            if path.join(sub).is_dir() {
                visit(&path.join(sub), &mut missing);
            }
        }
    }
    assert!(missing.is_empty(), "no //! line: {missing:#?}");
}

/// The local transport, except that a command on `web-2` panics.
struct PanicsOnWeb2(Arc<dyn Transport>);

#[async_trait]
impl Transport for PanicsOnWeb2 {
    async fn exec(
        &self,
        permit: &Permit,
        host: &Host,
        request: &ExecRequest,
        cancel: &CancellationToken,
    ) -> Result<ExecOutput> {
        assert_ne!(host.id.as_str(), "web-2", "a bug in a transport");
        self.0.exec(permit, host, request, cancel).await
    }

    async fn files(&self, permit: &Permit, host: &Host) -> Result<Arc<dyn HostFiles>> {
        self.0.files(permit, host).await
    }
}

#[tokio::test]
async fn a_host_whose_task_panics_is_an_internal_result_not_a_missing_one() {
    let state = tempfile::tempdir().unwrap();
    let yaml = "hosts:\n  - {id: web-1, address: 127.0.0.1}\n  - {id: web-2, address: 127.0.0.2}\n";
    let transport = Arc::new(PanicsOnWeb2(warden_core::local_transport()));
    let engine = super::engine_over(yaml, state.path(), transport);
    let answer = engine
        .invoke(
            &Caller::new("test"),
            "exec",
            json!({"target": "all", "command": "true"}),
            CancellationToken::new(),
            None,
        )
        .await
        .unwrap();
    let results = answer["results"].as_array().unwrap();
    assert_eq!(results.len(), 2, "{answer}");
    assert_eq!(results[0]["ok"], true, "{answer}");
    assert_eq!(results[1]["host_id"], "web-2");
    assert_eq!(results[1]["error"]["code"], "INTERNAL", "{answer}");
    assert_eq!(answer["summary"]["ok"], false);
}

#[tokio::test]
async fn limits_rate_and_burst_queue_a_burst_then_refuse_with_a_retry_time() {
    let state = tempfile::tempdir().unwrap();
    let yaml = "limits:\n  rate: 1\n  burst: 2\n";
    let engine = super::engine_over(yaml, state.path(), warden_core::local_transport());
    let caller = Caller::new("eager");
    let call = || engine.invoke(&caller, "status", json!({}), CancellationToken::new(), None);
    let (one, two, three, four) = tokio::join!(call(), call(), call(), call());
    assert!(one.is_ok() && two.is_ok(), "the burst");
    assert!(three.is_ok(), "one token short: queued, not refused");
    let refused = four.unwrap_err();
    assert_eq!(refused.code, ErrorCode::RateLimited, "{refused:?}");
    assert!(refused.retry_after_ms.is_some_and(|ms| ms > 0));
    // Another caller has its own bucket.
    assert!(
        engine
            .invoke(
                &Caller::new("patient"),
                "status",
                json!({}),
                CancellationToken::new(),
                None
            )
            .await
            .is_ok()
    );
}

/// The catalogue reaches hosts and files only through `RunContext`: no tool builds
/// its own engine or transport, runs a process or touches warden's own file system.
/// (The compiler already keeps permits and the raw file port out of reach; this
/// keeps the remaining doors shut.) Test modules inside tool files are not scanned.
#[test]
fn no_tool_reaches_around_the_engine() {
    const FORBIDDEN: &[&str] = &[
        "Engine::new",
        "local_transport",
        "warden_core::testing",
        "std::process",
        "tokio::process",
        "std::fs",
        "tokio::fs",
        "std::net",
        "tokio::net",
    ];
    fn visit(dir: &Path, found: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.ends_with("tests") {
                continue;
            }
            if path.is_dir() {
                visit(&path, found);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                let code = text.split("#[cfg(test)]").next().unwrap_or_default();
                for name in FORBIDDEN {
                    if code.contains(name) {
                        found.push(format!("{}: {name}", path.display()));
                    }
                }
            }
        }
    }
    let mut found = Vec::new();
    visit(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut found,
    );
    assert!(
        found.is_empty(),
        "tools reaching around the engine: {found:#?}"
    );
}

/// The README's hand-written catalogue names every tool (and no tool that is gone).
#[test]
fn the_readme_lists_every_tool() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"))
            .unwrap();
    let section = readme
        .split("## Tools")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .unwrap();
    let listed: Vec<&str> = section
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|word| word.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        .collect();
    for tool in TOOLS {
        assert!(
            listed.contains(&tool.info().name),
            "README misses {}",
            tool.info().name
        );
    }
    for name in listed {
        let known = crate::registry().find(name).is_some()
            || ["local", "session_id", "host_id", "confirm"].contains(&name);
        assert!(known, "README lists {name}, which is no tool");
    }
}

#[tokio::test]
async fn requested_records_name_the_commands_probes_and_resolved_paths() {
    let world = World::new("");
    world
        .call("facts", json!({"target": "host:web-1"}))
        .await
        .unwrap();
    world
        .call("run", json!({"host_id": "web-1", "argv": ["echo", "a b"]}))
        .await
        .unwrap();
    let app = world.base.path().join("srv/app");
    world
        .call(
            "fs_read",
            json!({"host_id": "web-1", "path": app.join("link").display().to_string()}),
        )
        .await
        .unwrap();
    let records = warden_core::audit::tail(&world.base.path().join("state/audit"), 100).unwrap();
    let requested = |tool: &str| {
        records
            .iter()
            .find(|record| record["tool"] == tool && record["phase"] == "requested")
            .cloned()
            .unwrap()
    };
    let facts = requested("facts");
    assert_eq!(facts["probes"][0]["label"], "warden-facts", "{facts}");
    assert!(
        facts["probes"][0]["script"]
            .as_str()
            .unwrap()
            .contains("@@uname")
    );
    assert_eq!(requested("run")["commands"], json!(["echo 'a b'"]));
    assert_eq!(requested("run")["class"], "read_only");
    let read = requested("fs_read");
    assert_eq!(
        read["paths"][0]["resolved"],
        app.join("app.conf").display().to_string(),
        "the link resolved before the record: {read}"
    );
    assert_eq!(read["decision"], "allowed");
}

#[tokio::test]
async fn records_name_the_class_what_policy_could_not_see_and_a_relaxed_policy() {
    let world = World::new("  allow_opaque: true\n");
    let preview = world
        .call("run", json!({"host_id": "web-1", "command": "eval \"$X\""}))
        .await
        .unwrap();
    // Opaque code is destructive: shown, not run, without confirm.
    assert!(preview["plan_token"].is_string(), "{preview}");
    let records = warden_core::audit::tail(&world.base.path().join("state/audit"), 100).unwrap();
    let requested = records
        .iter()
        .find(|record| record["tool"] == "run" && record["phase"] == "requested")
        .unwrap();
    assert_eq!(requested["class"], "destructive", "{requested}");
    assert_eq!(requested["allow_opaque"], true, "{requested}");
    assert!(
        requested["opaque"][0].as_str().unwrap().contains("eval"),
        "{requested}"
    );
    let completed = records
        .iter()
        .find(|record| record["tool"] == "run" && record["phase"] == "completed")
        .unwrap();
    assert_eq!(completed["outcome"], "preview", "{completed}");
}

#[tokio::test]
async fn require_plan_token_makes_confirm_need_a_preview() {
    let world = World::new("  require_plan_token: true\n");
    let victim = world.base.path().join("victim");
    std::fs::write(&victim, "x").unwrap();
    let command = format!("rm -f {}", victim.display());
    let error = world
        .call(
            "run",
            json!({"host_id": "web-1", "command": command, "confirm": true}),
        )
        .await
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::ConfirmRequired, "{error:?}");
    assert!(victim.exists());
    let preview = world
        .call("run", json!({"host_id": "web-1", "command": command}))
        .await
        .unwrap();
    let token = preview["plan_token"].clone();
    world
        .call(
            "run",
            json!({"host_id": "web-1", "command": command, "confirm": true, "plan_token": token}),
        )
        .await
        .unwrap();
    assert!(!victim.exists());
}

/// Under a rule that matches everything, every tool that would act waits for a human
/// first (nothing runs or changes), and no tool, whatever arguments it is given, can
/// decide an approval: the ids stay pending until a human acts.
#[tokio::test]
async fn every_tool_waits_for_a_human_and_no_tool_can_approve() {
    let gated = "approval:\n  enabled: true\n  wait: 0ms\n  rules:\n    - {tools: [session_open], require_approval: false}\n    - {}\n";
    let mut ids = Vec::new();
    for tool in TOOLS {
        let info = tool.info();
        let world = World::new(gated);
        let mut args = world.example(*tool);
        if info.example.contains("SESSION_ID") {
            args = with_session(args, &open_session(&world).await);
        }
        if info.effect != Effect::ReadOnly {
            args["confirm"] = json!(true);
        }
        let changes = world.changes.load(Ordering::SeqCst);
        let answer = world.call(info.name, args.clone()).await;
        if info.name == "session_open" {
            // Exempted by the first rule (the loop needs sessions): it runs.
            assert!(answer.is_ok(), "{answer:?}");
            continue;
        }
        if matches!(info.name, "approval_status" | "approval_list") {
            // The agent's own side is never gated (approval_status of the example's
            // id is simply unknown to this caller).
            assert!(
                answer
                    .as_ref()
                    .err()
                    .is_none_or(|error| error.code == ErrorCode::InvalidInput),
                "{}: {answer:?}",
                info.name
            );
            continue;
        }
        let error = answer.expect_err(info.name);
        assert_eq!(
            error.code,
            ErrorCode::ApprovalPending,
            "{}: {error:?}",
            info.name
        );
        let id = error.approval_id.clone().expect("an approval id");
        // Paths were resolved (the digest binds what they hold); nothing changed.
        assert_eq!(
            world.changes.load(Ordering::SeqCst),
            changes,
            "{}: nothing runs or changes before a human decides",
            info.name
        );
        // Every way a tool could be asked to approve: the id with words of decision.
        let mut pushy = args;
        for (key, value) in [
            ("approval_id", json!(id)),
            ("approve", json!(true)),
            ("approved", json!(true)),
            ("decision", json!("approved")),
            ("state", json!("approved")),
        ] {
            pushy[key] = value;
        }
        let _ = world.call(info.name, pushy).await;
        let approval = world.engine.approval(&id).await.unwrap().unwrap();
        assert_eq!(
            approval.state,
            warden_core::store::ApprovalState::Pending,
            "{}",
            info.name
        );
        ids.push(id);
    }
    assert!(ids.len() > 30, "{ids:?}");
}
