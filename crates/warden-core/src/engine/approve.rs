//! Approvals decided by a human, never by the agent (PRODUCT.md §7).
//!
//! A call that an `approval.rules` entry matches, and that would act (not a dry run or
//! a preview), stops here. Without an `approval_id` it creates a pending approval bound
//! to the caller and the call's plan digest, and waits up to `approval.wait` for a
//! decision; then answers `APPROVAL_PENDING`. The agent waits with `approval_status`
//! and repeats the same call with `approval_id`: the call is planned again, and runs
//! only if its digest is still the approved one (`PLAN_CHANGED` otherwise), using the
//! approval up (single use, one conditional update in the store, so two processes
//! cannot both use it).
//!
//! Decisions come only from [`Engine::decide_approval`], which the CLI calls
//! (`warden approvals approve|deny|watch`); no tool's [`RunContext`] can reach it, and
//! the store's state changes are one-way. Requests, decisions and expiries are audit
//! events; the call that uses an approval carries its id and `decision: approved`.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use regex::Regex;
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

use super::{Caller, Engine};
use crate::config::{ApprovalConfig, ApprovalRule};
use crate::error::{Error, ErrorCode, Result};
use crate::inventory::{Host, Inventory};
use crate::policy::Class;
use crate::policy::analysis::Analysis;
use crate::store::{Approval, ApprovalState, Store, now_ms, public_id};

/// How often a waiting call looks for a decision (made in another process).
pub(super) const POLL: Duration = Duration::from_millis(200);
/// The longest `approval_status` waits in one call (below every client's limit).
pub const MAX_STATUS_WAIT: Duration = Duration::from_secs(25);

/// Tools that only read approvals (their own caller's).
const NEVER_GATED: &[&str] = &["approval_status", "approval_list"];

/// The compiled `approval:` section.
pub(super) struct Approvals {
    enabled: bool,
    wait: Duration,
    timeout: Duration,
    rules: Vec<Rule>,
    pub(super) store: Arc<dyn Store>,
}

struct Rule {
    index: usize,
    tools: Vec<String>,
    commands: Vec<Regex>,
    programs: Vec<String>,
    classes: Vec<Class>,
    /// The hosts the rule's target expression resolved to.
    hosts: Option<HashSet<String>>,
    paths: Vec<Regex>,
    callers: Vec<String>,
    require: bool,
}

/// What a rule is matched against.
pub(super) struct Asking<'a> {
    pub tool: &'a str,
    pub caller: &'a Caller,
    pub hosts: &'a [Arc<Host>],
    pub analyses: &'a [Analysis],
    /// Resolved paths (or as given where they did not resolve).
    pub paths: Vec<String>,
}

fn full(pattern: &str) -> std::result::Result<Regex, regex::Error> {
    Regex::new(&format!("^(?s:{pattern})$"))
}

impl Approvals {
    pub(super) fn new(
        config: &ApprovalConfig,
        inventory: &Inventory,
        store: Arc<dyn Store>,
    ) -> Result<Approvals> {
        let rules = config
            .rules
            .iter()
            .enumerate()
            .map(|(index, rule)| Rule::compile(index, rule, inventory))
            .collect::<Result<_>>()?;
        Ok(Approvals {
            enabled: config.enabled,
            wait: config.wait,
            timeout: config.timeout,
            rules,
            store,
        })
    }

    /// The first rule that matches, when it asks for approval. The agent's side of
    /// approvals is never gated: waiting on one must not need another.
    pub(super) fn rule_for(&self, asking: &Asking) -> Option<usize> {
        if !self.enabled || NEVER_GATED.contains(&asking.tool) {
            return None;
        }
        let rule = self.rules.iter().find(|rule| rule.matches(asking))?;
        rule.require.then_some(rule.index)
    }
}

impl Rule {
    fn compile(index: usize, rule: &ApprovalRule, inventory: &Inventory) -> Result<Rule> {
        let regexes = |patterns: &[String]| {
            patterns
                .iter()
                .map(|pattern| {
                    full(pattern).map_err(|error| {
                        Error::invalid_input(format!(
                            "approval.rules[{index}]: {pattern:?} is not a valid regex: {error}"
                        ))
                    })
                })
                .collect::<Result<Vec<_>>>()
        };
        let hosts = match &rule.hosts {
            Some(target) => Some(
                inventory
                    .resolve(target)
                    .map_err(|error| {
                        Error::invalid_input(format!(
                            "approval.rules[{index}].hosts {target:?}: {}",
                            error.message
                        ))
                    })?
                    .iter()
                    .map(|host| host.id.to_string())
                    .collect(),
            ),
            None => None,
        };
        let classes = rule
            .classes
            .iter()
            .filter_map(|name| {
                [Class::ReadOnly, Class::Mutating, Class::Destructive]
                    .into_iter()
                    .find(|class| class.name() == name)
            })
            .collect();
        Ok(Rule {
            index,
            tools: rule.tools.clone(),
            commands: regexes(&rule.commands)?,
            programs: rule.programs.clone(),
            classes,
            hosts,
            paths: regexes(&rule.paths)?,
            callers: rule.callers.clone(),
            require: rule.require_approval,
        })
    }

    /// Every key the rule gives must match (any of its values). A command with parts
    /// policy could not see (`eval`, `$(…)`, a program in a variable) matches every
    /// command, program, class and path key: what it runs is unknown, so fail closed.
    fn matches(&self, asking: &Asking) -> bool {
        let unseen = asking
            .analyses
            .iter()
            .any(|analysis| !analysis.opaque.is_empty());
        let commands = || {
            asking
                .analyses
                .iter()
                .flat_map(|analysis| &analysis.commands)
        };
        let tools = self.tools.is_empty() || self.tools.iter().any(|tool| tool == asking.tool);
        let command_rules = self.commands.is_empty()
            || unseen
            || commands().any(|command| {
                let text = command.text();
                self.commands.iter().any(|regex| regex.is_match(&text))
            });
        let programs = self.programs.is_empty()
            || unseen
            || commands().any(|command| {
                command.argv.first().is_some_and(|program| {
                    let name = program.rsplit('/').next().unwrap_or(program);
                    self.programs.iter().any(|wanted| wanted == name)
                })
            });
        let classes = self.classes.is_empty()
            || unseen
            || asking
                .analyses
                .iter()
                .any(|analysis| self.classes.contains(&analysis.class));
        let hosts = self.hosts.as_ref().is_none_or(|hosts| {
            asking
                .hosts
                .iter()
                .any(|host| hosts.contains(host.id.as_str()))
        });
        let paths = self.paths.is_empty()
            || unseen
            || asking
                .paths
                .iter()
                .any(|path| self.paths.iter().any(|regex| regex.is_match(path)));
        // Identities only: a client name is the agent's own choice.
        let callers = self.callers.is_empty() || self.callers.contains(&asking.caller.identity);
        tools && command_rules && programs && classes && hosts && paths && callers
    }
}

/// Who an approval belongs to: the caller's identity and client name. Not the
/// connection: over stdio a connection ends with its server process, and an approval
/// must survive a restart of the client and of warden. Over stdio every agent of one
/// OS user shares that identity anyway; what keeps an approval from doing anything
/// else is its digest: it runs exactly the call the human saw, once.
pub(super) fn owner(caller: &Caller) -> String {
    format!("{}/{}", caller.identity, caller.client)
}

/// What the gate needs to know about the call besides the rule inputs.
pub(super) struct Request<'a> {
    pub asking: Asking<'a>,
    /// The index of the rule that asked for approval.
    pub rule: usize,
    pub digest: &'a str,
    pub approval_id: Option<&'a str>,
    /// Masked arguments, commands and paths: what the human decides on.
    pub shown: Value,
    pub summary: String,
    pub cancel: &'a CancellationToken,
}

impl Engine {
    /// A call a rule asks approval for: the approval id once a human approved it (and
    /// it is now used). Errors: `APPROVAL_PENDING`, `APPROVAL_DENIED`,
    /// `APPROVAL_TIMEOUT`, `PLAN_CHANGED`, or an approval id that is not the caller's.
    pub(super) async fn approval_gate(&self, request: Request<'_>) -> Result<String> {
        let approvals = &self.inner.approvals;
        let caller = request.asking.caller;
        // The agent holds the token (id and secret); messages and records name the id.
        let token = match request.approval_id {
            Some(token) => token.to_owned(),
            None => self.request_approval(&request, request.rule).await?,
        };
        let id = public_id(&token).to_owned();
        let started = Instant::now();
        loop {
            let approval = self.caller_approval(&owner(caller), &token).await?;
            match approval.state {
                ApprovalState::Pending if started.elapsed() < approvals.wait => {
                    tokio::select! {
                        () = tokio::time::sleep(POLL) => {}
                        () = request.cancel.cancelled() => {
                            return Err(Error::new(ErrorCode::Cancelled, "cancelled while waiting for approval").with_approval(&token));
                        }
                    }
                }
                ApprovalState::Pending => return Err(pending_error(&approval, &token)),
                ApprovalState::Approved if approval.digest != request.digest => {
                    return Err(Error::new(
                        ErrorCode::PlanChanged,
                        format!(
                            "the call differs from what was approved in {id} (target, command, arguments, a file, or policy changed)"
                        ),
                    )
                    .with_approval(&token)
                    .with_hint("Make the call again without approval_id to ask for a new approval of what it does now."));
                }
                ApprovalState::Approved => {
                    let used = approvals
                        .store
                        .transition(
                            &id,
                            ApprovalState::Approved,
                            ApprovalState::Used,
                            None,
                            None,
                            now_ms(),
                        )
                        .await?;
                    if !used {
                        // Expired or used by a racing call a moment ago: look again.
                        continue;
                    }
                    return Ok(id);
                }
                ApprovalState::Denied => {
                    let why = approval
                        .reason
                        .as_deref()
                        .map(|reason| format!(": {reason}"))
                        .unwrap_or_default();
                    return Err(Error::new(
                        ErrorCode::ApprovalDenied,
                        format!(
                            "{} denied {id}{why}",
                            approval.decided_by.as_deref().unwrap_or("the operator")
                        ),
                    )
                    .with_approval(&token));
                }
                ApprovalState::Expired => {
                    return Err(Error::new(
                        ErrorCode::ApprovalTimeout,
                        format!(
                            "{id} expired before it was decided (or used): the call did not run"
                        ),
                    )
                    .with_approval(&token));
                }
                ApprovalState::Used => {
                    return Err(Error::invalid_input(format!(
                        "{id} was used already: an approval runs its call once"
                    ))
                    .with_approval(&token)
                    .with_hint(
                        "Make the call again without approval_id to ask for a new approval.",
                    ));
                }
            }
        }
    }

    async fn request_approval(&self, request: &Request<'_>, rule: usize) -> Result<String> {
        let approvals = &self.inner.approvals;
        let caller = request.asking.caller;
        let now = now_ms();
        let secret = uuid::Uuid::new_v4().simple().to_string();
        let approval = Approval {
            id: format!("apr-{}", &uuid::Uuid::new_v4().simple().to_string()[..16]),
            secret_hash: secret_hash(&secret),
            caller: owner(caller),
            client: caller.client.clone(),
            identity: caller.identity.clone(),
            tool: request.asking.tool.to_owned(),
            hosts: request
                .asking
                .hosts
                .iter()
                .map(|host| host.id.to_string())
                .collect(),
            summary: request.summary.clone(),
            request: request.shown.clone(),
            digest: request.digest.to_owned(),
            state: ApprovalState::Pending,
            rule: format!("approval.rules[{rule}]"),
            requested_at: now,
            expires_at: now + approvals.timeout.as_millis() as i64,
            decided_at: None,
            decided_by: None,
            reason: None,
        };
        // Recorded before it can be decided: the chain shows the request first.
        self.audit_event(json!({
            "event": "approval_requested",
            "approval_id": approval.id,
            "tool": approval.tool,
            "hosts": approval.hosts,
            "client": approval.client,
            "client_id": approval.caller,
            "identity": approval.identity,
            "rule": approval.rule,
            "digest": approval.digest,
            "summary": approval.summary,
            "expires_at": time_of(approval.expires_at),
        }))
        .await?;
        approvals.store.create_approval(&approval).await?;
        Ok(format!("{}.{secret}", approval.id))
    }

    /// The approval a `token` (from `APPROVAL_PENDING`) names, if `owner` asked for it
    /// and the token's secret is its own, expiries applied first. Anything else reads
    /// as unknown: the id alone is public (audit log, operator CLI), the secret part
    /// was only ever in the answer to the caller that asked.
    pub(super) async fn caller_approval(&self, caller: &str, token: &str) -> Result<Approval> {
        self.expire_approvals().await?;
        let (id, secret) = token.split_once('.').unwrap_or((token, ""));
        match self.inner.approvals.store.approval(id).await? {
            Some(approval)
                if approval.caller == caller && approval.secret_hash == secret_hash(secret) =>
            {
                Ok(approval)
            }
            _ => Err(Error::invalid_input(format!("no approval {id:?} for this caller"))
                .with_hint("approval_list shows this caller's pending approvals; an approval belongs to the connection that asked for it")
                .with_recovery_tool("approval_list")),
        }
    }

    /// Pending and approved approvals past their time become `expired` (the
    /// `default_action`), each an audit event.
    pub(super) async fn expire_approvals(&self) -> Result<()> {
        for approval in self.inner.approvals.store.expire(now_ms()).await? {
            self.audit_event(json!({
                "event": "approval_expired",
                "approval_id": approval.id,
                "tool": approval.tool,
                "hosts": approval.hosts,
                "client_id": approval.caller,
            }))
            .await?;
        }
        Ok(())
    }

    /// A human's decision (the CLI only: no tool can reach this). Fails when the
    /// approval is not pending any more.
    pub async fn decide_approval(
        &self,
        id: &str,
        approve: bool,
        by: &str,
        reason: Option<&str>,
    ) -> Result<Approval> {
        self.expire_approvals().await?;
        let id = public_id(id);
        let store = &self.inner.approvals.store;
        let to = if approve {
            ApprovalState::Approved
        } else {
            ApprovalState::Denied
        };
        let decided = store
            .transition(id, ApprovalState::Pending, to, Some(by), reason, now_ms())
            .await?;
        let approval = store
            .approval(id)
            .await?
            .ok_or_else(|| Error::invalid_input(format!("no approval {id:?}")))?;
        if !decided {
            return Err(Error::invalid_input(format!(
                "{id} is {}, not pending: nothing to decide",
                approval.state.as_str()
            )));
        }
        self.audit_event(json!({
            "event": "approval_decided",
            "approval_id": id,
            "decision": to.as_str(),
            "by": by,
            "reason": reason,
            "tool": approval.tool,
            "hosts": approval.hosts,
            "client_id": approval.caller,
        }))
        .await?;
        Ok(approval)
    }

    /// Every approval in `state` (all when `None`), for the operator's CLI.
    pub async fn approvals(&self, state: Option<ApprovalState>) -> Result<Vec<Approval>> {
        self.expire_approvals().await?;
        self.inner.approvals.store.approvals(state, None).await
    }

    /// One approval by id (or an agent's token, pasted), for the operator's CLI.
    pub async fn approval(&self, id: &str) -> Result<Option<Approval>> {
        self.expire_approvals().await?;
        self.inner.approvals.store.approval(public_id(id)).await
    }

    pub(super) async fn audit_event(&self, mut event: Value) -> Result<()> {
        self.inner.secrets.mask(&mut event, &[]);
        let Value::Object(mut event) = event else {
            return Ok(());
        };
        event.retain(|_, value| !value.is_null());
        match &self.inner.audit {
            Ok(log) => log.append_event(event)?.durable().await.map(|_| ()),
            Err(error) => Err(error.clone()),
        }
    }
}

fn secret_hash(secret: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(
        format!("warden approval\0{secret}").as_bytes(),
    ))
}

fn pending_error(approval: &Approval, token: &str) -> Error {
    let left = (approval.expires_at - now_ms()).max(0) as u64;
    Error::new(
        ErrorCode::ApprovalPending,
        format!(
            "{} waits for a human decision ({}); it expires in {} s",
            approval.id, approval.rule, left / 1000
        ),
    )
    .with_approval(token)
    .with_retry_after_ms(1000)
    .with_recovery_tool("approval_status")
    .with_hint(format!(
        "The operator decides with `warden approvals approve {id}` or `deny {id}`. Call approval_status {{\"approval_id\": \"{token}\"}} to wait; once approved, repeat this exact call with \"approval_id\": \"{token}\" (keep it: its secret part is shown only here).",
        id = approval.id
    ))
}

/// Unix milliseconds as RFC 3339, like the audit log's timestamps.
fn time_of(ms: i64) -> String {
    crate::audit::rfc3339(std::time::UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64))
}

/// What an operator sees of one approval (CLI and the agent's status tool).
pub fn approval_json(approval: &Approval) -> Map<String, Value> {
    let mut map = Map::new();
    map.insert("approval_id".into(), json!(approval.id));
    map.insert("state".into(), json!(approval.state.as_str()));
    map.insert("tool".into(), json!(approval.tool));
    map.insert("hosts".into(), json!(approval.hosts));
    map.insert("summary".into(), json!(approval.summary));
    map.insert("client".into(), json!(approval.client));
    map.insert("identity".into(), json!(approval.identity));
    map.insert("rule".into(), json!(approval.rule));
    map.insert("requested_at".into(), json!(time_of(approval.requested_at)));
    map.insert("expires_at".into(), json!(time_of(approval.expires_at)));
    if let Some(at) = approval.decided_at {
        map.insert("decided_at".into(), json!(time_of(at)));
    }
    if let Some(by) = &approval.decided_by {
        map.insert("decided_by".into(), json!(by));
    }
    if let Some(reason) = &approval.reason {
        map.insert("reason".into(), json!(reason));
    }
    map
}
