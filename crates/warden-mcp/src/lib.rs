//! warden's MCP server: `tools/list` and `tools/call` over the tool registry, on the
//! official Rust SDK (rmcp).
//!
//! Everything a tool does goes through [`warden_core::Engine::invoke`]; this crate only
//! translates. Domain errors become `isError` results carrying the error object of
//! PRODUCT.md §6; unknown tools and arguments that fail the schema become JSON-RPC
//! errors. stdout carries only MCP: logs go to stderr.

mod listing;
mod outgoing;

use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ErrorCode as RpcCode,
    ErrorData, Implementation, ListToolsResult, PaginatedRequestParams, ProgressNotificationParam,
    ProgressToken, ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{RoleServer, ServerHandler, ServiceExt};
use serde_json::Value;
use tokio::signal::unix::{SignalKind, signal};
use warden_core::tool::{Domain, Registry};
use warden_core::{Caller, Engine, Error, ProgressSink};

pub use listing::{ListingMode, tool_list};

/// The MCP face of one engine.
#[derive(Clone)]
pub struct WardenServer {
    engine: Engine,
    listing: ListingMode,
    tools_compact: Arc<Vec<rmcp::model::Tool>>,
    tools_full: Arc<Vec<rmcp::model::Tool>>,
    instructions: Arc<String>,
    /// This connection (one per server: stdio serves one client).
    caller: Caller,
    /// Answers written but not yet read by the client (see `outgoing`).
    outgoing: Arc<outgoing::Outgoing>,
}

impl WardenServer {
    pub fn new(engine: Engine, listing: ListingMode) -> WardenServer {
        WardenServer {
            tools_compact: Arc::new(tool_list(engine.registry(), ListingMode::Compact)),
            tools_full: Arc::new(tool_list(engine.registry(), ListingMode::Full)),
            instructions: Arc::new(instructions(engine.registry())),
            caller: Caller::connection("mcp"),
            outgoing: Arc::default(),
            engine,
            listing,
        }
    }

    /// Serves MCP over stdin/stdout until the client closes stdin, or until SIGTERM or
    /// SIGINT, which drain first: no new calls, those in flight answered (or cancelled
    /// after [`DRAIN_GRACE`]) with their outcome recorded, then exit.
    pub async fn serve_stdio(self) -> std::io::Result<()> {
        let engine = self.engine.clone();
        // Jobs of processes that died are taken over and reconciled in the background.
        let reconciler = engine.clone();
        tokio::spawn(async move { reconciler.reconcile_jobs().await });
        let mut terminate = signal(SignalKind::terminate())?;
        let mut interrupt = signal(SignalKind::interrupt())?;
        let stdout = outgoing::CountingWriter::new(tokio::io::stdout(), Arc::clone(&self.outgoing));
        let running = match self.serve((stdin_reader(), stdout)).await {
            Ok(running) => running,
            // A client that goes away before `initialize` (a probe, a cancelled start)
            // is no failure of the server: nothing to say at the default level.
            Err(rmcp::service::ServerInitializeError::ConnectionClosed(why)) => {
                tracing::debug!("client closed before initialize: {why}");
                engine.shutdown().await;
                return Ok(());
            }
            Err(error) => return Err(std::io::Error::other(error.to_string())),
        };
        let stop = running.cancellation_token();
        let waiting = running.waiting();
        tokio::pin!(waiting);
        let ended = tokio::select! {
            ended = &mut waiting => ended,
            _ = terminate.recv() => drain(&engine, stop, waiting).await,
            _ = interrupt.recv() => drain(&engine, stop, waiting).await,
        };
        engine.shutdown().await;
        if let Err(error) = ended {
            tracing::error!("MCP service task failed: {error}");
        }
        Ok(())
    }
}

/// How long calls in flight get to finish after SIGTERM before they are cancelled.
pub const DRAIN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Lets the engine drain while the service still answers, then stops the service.
async fn drain<F>(
    engine: &Engine,
    stop: rmcp::service::RunningServiceCancellationToken,
    waiting: std::pin::Pin<&mut F>,
) -> F::Output
where
    F: std::future::Future,
{
    engine.drain(DRAIN_GRACE).await;
    // The last answers are on their way to the transport: give them a moment.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    stop.cancel();
    waiting.await
}

/// The server `instructions`: with deferred tool loading they are all a model sees up
/// front (PRODUCT.md §12), so they carry the tool index by domain and how to get a
/// tool's arguments, in under 1 KB.
pub fn instructions(registry: &Registry) -> String {
    let mut text = String::from(
        "warden: audited, policy-checked SSH. Targets: host:ID group:G tag:K=V all; files \
         need session_id or host_id + absolute path. Destructive calls preview; confirm: \
         true runs. Work past wait_ms (25 s) goes on as a job: jobs_wait. APPROVAL_PENDING: \
         approval_status, then repeat with approval_id.\nTools:",
    );
    for domain in Domain::ALL {
        let names: Vec<&str> = registry
            .tools()
            .iter()
            .map(|tool| tool.info())
            .filter(|info| info.domain == domain)
            .map(|info| info.name)
            .collect();
        if !names.is_empty() {
            text.push_str(&format!("\n{}: {}", domain.name(), names.join(" ")));
        }
    }
    text
}

/// stdin as an async reader. A pipe (what MCP clients give) is read through epoll:
/// tokio's own stdin hands every read (at most a pipe's 64 KiB) to a blocking thread,
/// which made reading one 11 MB request (an 8 MiB upload chunk) take ~80 ms. Anything
/// else (a file, a terminal) keeps tokio's stdin.
fn stdin_reader() -> Box<dyn tokio::io::AsyncRead + Send + Unpin> {
    use std::os::fd::AsFd;
    let pipe = std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .and_then(tokio::net::unix::pipe::Receiver::from_owned_fd);
    match pipe {
        Ok(pipe) => Box::new(pipe),
        Err(_) => Box::new(tokio::io::stdin()),
    }
}

/// The JSON-RPC code of `RATE_LIMITED` (PRODUCT.md §6).
const RATE_LIMITED: i32 = -32029;

/// Domain errors as a tool result the model can read and act on.
pub fn error_result(error: &Error) -> CallToolResult {
    let body = error.to_json();
    let mut result = CallToolResult::error(vec![ContentBlock::text(body.to_string())]);
    result.structured_content = Some(body);
    result
}

fn success_result(text: String, value: Value) -> CallToolResult {
    let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
    result.structured_content = Some(value);
    result
}

/// The one place where warden errors meet MCP: schema problems are protocol errors,
/// the rest are tool results. Also answers a lower bound of the answer's bytes on the
/// wire (for `outgoing`): the text and structuredContent both carry it, the text
/// escaped once more, so at least twice its JSON; never more than stdout will take,
/// or the count would keep bytes that are long gone.
fn to_response(outcome: Result<Value, Error>) -> (Result<CallToolResponse, ErrorData>, usize) {
    let error = match outcome {
        Ok(value) => {
            let text = value.to_string();
            let size = 2 * text.len();
            return (Ok(success_result(text, value).into()), size);
        }
        Err(error) => error,
    };
    let body = error.to_json();
    let size = 2 * body.to_string().len();
    let response = if error.schema_violation {
        Err(ErrorData::new(
            RpcCode::INVALID_PARAMS,
            error.message.clone(),
            Some(body),
        ))
    } else if error.code == warden_core::ErrorCode::RateLimited {
        // PRODUCT.md §6: a caller over its limits is told at the protocol level.
        Err(ErrorData::new(
            RpcCode(RATE_LIMITED),
            error.message.clone(),
            Some(body),
        ))
    } else {
        Ok(error_result(&error).into())
    };
    (response, size)
}

impl ServerHandler for WardenServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("warden", env!("CARGO_PKG_VERSION")))
            .with_instructions(self.instructions.as_str())
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        // rmcp moves the request's `_meta` into the context; older paths keep it in params.
        let wants_full = [
            context.meta.0.get("full"),
            request
                .as_ref()
                .and_then(|request| request.meta.as_ref())
                .and_then(|meta| meta.0.get("full")),
        ]
        .into_iter()
        .flatten()
        .any(|full| full == &Value::Bool(true));
        let tools = if wants_full || self.listing == ListingMode::Full {
            &self.tools_full
        } else {
            &self.tools_compact
        };
        Ok(ListToolsResult::with_all_items(tools.as_ref().clone()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        // An unknown tool is the engine's refusal too (recorded like any other), and
        // `to_response` makes it the protocol error it is.
        let client = context
            .peer
            .peer_info()
            .map(|info| info.client_info.name.clone())
            .unwrap_or_else(|| String::from("mcp"));
        let args = request.arguments.map(Value::Object).unwrap_or(Value::Null);
        self.outgoing.room().await;
        let progress = context
            .meta
            .get_progress_token()
            .map(|token| progress_sink(context.peer.clone(), token));
        let outcome = self
            .engine
            .invoke(
                &self.caller.named(client),
                &request.name,
                args,
                context.ct.clone(),
                progress,
            )
            .await;
        let (response, size) = to_response(outcome);
        self.outgoing.reserve(size).await;
        response
    }
}

/// Progress notices for a call the client gave a progress token: one when a host
/// finishes, at most one a second, and the engine's own every few seconds while a job
/// call waits. Sent in the background: a slow client never holds up the work.
fn progress_sink(peer: rmcp::Peer<RoleServer>, token: ProgressToken) -> ProgressSink {
    let last = Arc::new(std::sync::Mutex::new(None::<std::time::Instant>));
    Arc::new(move |done, total, message| {
        {
            let mut last = last
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if last.is_some_and(|at| at.elapsed() < PROGRESS_GAP) && done < total {
                return;
            }
            *last = Some(std::time::Instant::now());
        }
        let param = ProgressNotificationParam::new(token.clone(), done as f64)
            .with_total(total as f64)
            .with_message(message);
        let peer = peer.clone();
        tokio::spawn(async move {
            if let Err(error) = peer.notify_progress(param).await {
                tracing::debug!("progress notice not sent: {error}");
            }
        });
    })
}

/// The least time between two progress notices of one call.
const PROGRESS_GAP: std::time::Duration = std::time::Duration::from_secs(1);
