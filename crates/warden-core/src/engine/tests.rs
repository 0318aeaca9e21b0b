//! The run-time half of the choke point: a tool whose `run` reaches past its plan is
//! refused at each kind of reach (host, command, probe, path, an entry beside a planned
//! path), and nothing it was refused reaches the host.

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
                "probe" => {
                    context
                        .probe(&web1, &UNPLANNED, std::time::Duration::from_secs(5), 1024)
                        .await?;
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
    let loaded = LoadedConfig {
        config: Config::parse(&yaml).unwrap(),
        source: None,
        state_dir: root.join("state"),
    };
    let transport = Arc::new(Counting(AtomicUsize::new(0)));
    let engine = Engine::new(loaded, transport.clone(), Arc::new(Registry::new(ROGUE))).unwrap();
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
        ("probe", ErrorCode::Internal, "not in this call's plan"),
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
