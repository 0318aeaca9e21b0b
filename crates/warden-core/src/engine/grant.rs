//! The engine's decision on every path a plan names, made before the `requested`
//! record: first against `deny_paths` as written (no host call, so a deny-all policy
//! touches nothing), then resolved on each host inside the session root or the
//! `allowed_roots` entry that holds it, through a read-only file port. A path that
//! leaves the root or is denied (as written or once resolved) on every planned host
//! denies the call; on some hosts of a fan-out, it is those hosts' error, as is any
//! other failure (a host that cannot be reached), for the tool to report per host.
//!
//! At run time [`super::RunContext::sandbox`] opens sandboxes for granted paths only,
//! each confined to the resolved paths granted on its host (see `sandbox::Confined`).

use std::sync::Arc;

use serde::Serialize;
use tokio::sync::Semaphore;

use super::Engine;
use crate::error::{Error, ErrorCode, Result};
use crate::files::{HostFiles, ReadOnlyFiles};
use crate::inventory::{Host, LOCAL_HOST_ID};
use crate::policy::Verdict;
use crate::sandbox::{Known, PathGuard, Resolved, Sandbox, within};
use crate::sessions::SessionView;
use crate::tool::{Plan, PlannedPath};
use crate::transport::Permit;

/// Where one planned path lies on one host.
#[derive(Debug, Clone)]
pub(crate) struct Grant {
    pub root: String,
    /// The root as configured, when the path was written under that spelling of a
    /// root that is a symlink (see `Sandbox::aliased`).
    pub alias: Option<String>,
    pub cwd: String,
    pub resolved: Resolved,
}

/// (host id, path as planned, read on `local` as a source).
type GrantKey = (String, String, bool);

/// Every planned path's grant (or the error that host gave), in planned order (the
/// audit record's): a handful per call, so a list serves as the map.
#[derive(Debug, Default)]
pub(crate) struct Grants {
    entries: Vec<(GrantKey, Result<Grant>)>,
    /// A planned path matched `deny_paths` in `mode: warn`: the call is `warned`.
    pub warned: bool,
}

/// A planned path as the `requested` audit record names it.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct PathRecord {
    pub host_id: String,
    pub path: String,
    /// Where it resolved (absent when it was refused or the host could not be asked).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved: Option<String>,
    /// Why this host's path was refused or could not be resolved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Grants {
    /// The grant of `path` on `host`. Invariant: a path the plan did not name is
    /// refused.
    pub fn get(&self, host: &str, path: &str, local_source: bool) -> Result<&Grant> {
        let found = self.entries.iter().find(|((on, planned, local), _)| {
            on == host && planned == path && *local == local_source
        });
        match found.map(|(_, outcome)| outcome) {
            Some(Ok(grant)) => Ok(grant),
            Some(Err(error)) => Err(error.clone()),
            None => Err(Error::internal(format!(
                "the path {path:?} on {host} is not in this call's plan"
            ))),
        }
    }

    /// The resolved paths granted on `host`: what its sandboxes may act on.
    pub fn scope(&self, host: &str) -> Vec<String> {
        self.entries
            .iter()
            .filter(|((on, _, _), _)| on == host)
            .filter_map(|(_, grant)| grant.as_ref().ok())
            .map(|grant| grant.resolved.path.clone())
            .collect()
    }

    /// Every planned path on every host with what it held (kind, size, mode, mtime):
    /// what a plan token binds, so a file changed since the preview changes the plan.
    pub fn fingerprint(&self) -> Vec<serde_json::Value> {
        self.entries
            .iter()
            .map(|((host, path, local), outcome)| match outcome {
                Ok(grant) => serde_json::json!([
                    host,
                    path,
                    local,
                    grant.resolved.path,
                    grant.resolved.meta.as_ref().map(|meta| (
                        format!("{:?}", meta.kind),
                        meta.size,
                        meta.mode,
                        meta.mtime
                    )),
                ]),
                Err(error) => serde_json::json!([host, path, local, error.code.to_string()]),
            })
            .collect()
    }

    pub fn records(&self) -> Vec<PathRecord> {
        self.entries
            .iter()
            .map(|((host, path, _), outcome)| {
                let error = outcome.as_ref().err();
                PathRecord {
                    host_id: host.clone(),
                    path: path.clone(),
                    resolved: outcome
                        .as_ref()
                        .ok()
                        .map(|grant| grant.resolved.path.clone()),
                    error_code: error.map(|error| error.code.to_string()),
                    reason: error.map(|error| error.message.clone()),
                }
            })
            .collect()
    }
}

impl Engine {
    /// Decides every planned path (see the module doc).
    pub(super) async fn grant_paths(
        &self,
        plan: &Plan,
        session: Option<&SessionView>,
        job_id: &str,
        identity: &str,
    ) -> Result<Grants> {
        // Every (host, path) in planned order; a path denied as written is decided
        // here, the rest are resolved on their hosts below.
        let mut decided: Vec<(Arc<Host>, PlannedPath, Option<Result<Grant>>)> = Vec::new();
        let mut warned = false;
        for planned in &plan.paths {
            let hosts = if planned.local_source {
                vec![self.local_host()?]
            } else {
                plan.hosts.clone()
            };
            let cwd = session
                .filter(|_| !planned.local_source)
                .map(|s| s.cwd.as_str());
            let written = as_written(&planned.path, cwd, planned.local_source)?;
            for host in hosts {
                // Invariant: a path denied as written is refused before any host call.
                let decision = self.path_decision(&host, identity, &written);
                let outcome = match decision.decision {
                    Verdict::Denied => Some(Err(path_denied(&host, &written, &decision))),
                    Verdict::Warned => {
                        warned = true;
                        None
                    }
                    Verdict::Allowed => None,
                };
                decided.push((host, planned.clone(), outcome));
            }
        }
        let limit = Arc::new(Semaphore::new(self.inner.loaded.config.ssh.max_parallel));
        let mut set = tokio::task::JoinSet::new();
        for (index, (host, planned, outcome)) in decided.iter().enumerate() {
            if outcome.is_some() {
                continue;
            }
            let (engine, host, planned) = (self.clone(), Arc::clone(host), planned.clone());
            let session = session.filter(|_| !planned.local_source).cloned();
            let job_id = job_id.to_owned();
            let identity = identity.to_owned();
            let limit = Arc::clone(&limit);
            set.spawn(async move {
                let _slot = limit.acquire_owned().await;
                let grant = engine
                    .grant(&host, &planned, session.as_ref(), &job_id, &identity)
                    .await;
                (index, grant)
            });
        }
        while let Some(joined) = set.join_next().await {
            let (index, grant) =
                joined.map_err(|error| Error::internal(format!("path check failed: {error}")))?;
            decided[index].2 = Some(grant);
        }
        let mut grants = Grants::default();
        for (host, planned, outcome) in decided {
            let outcome = outcome.unwrap_or_else(|| Err(Error::internal("path check lost")));
            if let Ok(grant) = &outcome {
                warned |= self
                    .path_decision(&host, identity, &grant.resolved.path)
                    .decision
                    == Verdict::Warned;
            }
            let key = (host.id.to_string(), planned.path, planned.local_source);
            let outcome = outcome.map_err(|error| error.with_host(host.id.as_str()));
            grants.entries.push((key, outcome));
        }
        grants.warned = warned;
        // A path refused on every host it was planned on refuses the call.
        for planned in &plan.paths {
            let mut outcomes = grants
                .entries
                .iter()
                .filter(|((_, path, local), _)| {
                    *path == planned.path && *local == planned.local_source
                })
                .map(|(_, outcome)| outcome);
            let all_refused = outcomes
                .clone()
                .all(|outcome| outcome.as_ref().is_err_and(refuses_the_call));
            if all_refused && let Some(Err(error)) = outcomes.next() {
                return Err(error.clone());
            }
        }
        Ok(grants)
    }

    async fn grant(
        &self,
        host: &Arc<Host>,
        planned: &PlannedPath,
        session: Option<&SessionView>,
        job_id: &str,
        identity: &str,
    ) -> Result<Grant> {
        // Resolution only looks (lstat, readlink): it may run before the `requested`
        // record, through a port that refuses every write.
        let permit = Permit::new(host.id.clone(), job_id.to_owned());
        let files: Arc<dyn HostFiles> = Arc::new(ReadOnlyFiles(
            self.transport(host).files(&permit, host).await?,
        ));
        let (root, alias, cwd) = match session {
            Some(session) => (session.root.clone(), None, session.cwd.clone()),
            None => {
                let (root, alias) = self
                    .allowed_root_for(host, identity, &files, &planned.path)
                    .await?;
                (root.clone(), alias, root)
            }
        };
        let sandbox = Sandbox::new(
            files,
            root.clone(),
            cwd.clone(),
            self.path_guard(host, identity),
            Known::default(),
        )
        .aliased(alias.clone());
        let resolved = sandbox.resolve(&planned.path, planned.last).await?;
        Ok(Grant {
            root,
            alias,
            cwd,
            resolved,
        })
    }

    pub(super) fn local_host(&self) -> Result<Arc<Host>> {
        self.inner.inventory.get(LOCAL_HOST_ID).cloned().ok_or_else(|| {
            Error::new(
                ErrorCode::LocalDisabled,
                "the built-in host `local` is disabled (local.enabled: false), and the source is read there",
            )
            .with_host(LOCAL_HOST_ID)
        })
    }

    /// `deny_paths` on `path`, and on its spelling under the configured name of an
    /// allowed root that is a symlink to where it lies (`/var/www/x` for
    /// `/data/www/x`): a rule written under either name holds. The strictest wins.
    fn path_decision(&self, host: &Host, identity: &str, path: &str) -> crate::policy::Decision {
        let policy = &self.inner.policy;
        let mut decision = policy.evaluate_path(host, identity, path);
        // Only the (usually no) other spellings are collected under the lock: this runs
        // for every primitive and every walk entry.
        let spellings: Vec<String> = self
            .inner
            .root_aliases
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(host.id.as_str())
            .into_iter()
            .flatten()
            .filter_map(|(resolved, configured)| {
                let rest = path.strip_prefix(resolved.as_str())?;
                let below = rest.is_empty() || rest.starts_with('/') || resolved == "/";
                below.then(|| format!("{}{rest}", configured.trim_end_matches('/')))
            })
            .collect();
        for spelt in spellings {
            if decision.decision == Verdict::Denied {
                break;
            }
            let other = policy.evaluate_path(host, identity, &spelt);
            if other.decision == Verdict::Denied || decision.decision == Verdict::Allowed {
                decision = other;
            }
        }
        decision
    }

    /// `deny_paths` as the sandboxes of `host` apply them.
    pub(super) fn path_guard(&self, host: &Arc<Host>, identity: &str) -> PathGuard {
        let engine = self.clone();
        let host = Arc::clone(host);
        let identity = identity.to_owned();
        Arc::new(move |path: &str| {
            let decision = engine.path_decision(&host, &identity, path);
            if decision.decision == Verdict::Denied {
                return Err(path_denied(&host, path, &decision));
            }
            Ok(())
        })
    }

    /// The resolved `allowed_roots` entry holding `path` (written under the resolved
    /// root or under the configured spelling, given back as the alias when the two
    /// differ); with policy off, `/`.
    pub(super) async fn allowed_root_for(
        &self,
        host: &Arc<Host>,
        identity: &str,
        files: &Arc<dyn HostFiles>,
        path: &str,
    ) -> Result<(String, Option<String>)> {
        let policy = &self.inner.policy;
        if policy.mode() == crate::config::PolicyMode::Off {
            return Ok(("/".into(), None));
        }
        let roots = policy.allowed_roots(host, identity);
        for root in &roots {
            // A root missing on this host allows nothing there; a host that cannot
            // be asked (connection lost) is that host's error, not an outside path.
            let resolved = match Sandbox::resolve_root(
                Arc::clone(files),
                root,
                self.path_guard(host, identity),
            )
            .await
            {
                Ok(resolved) => resolved,
                Err(error)
                    if matches!(
                        error.code,
                        ErrorCode::SshConnFailed
                            | ErrorCode::SshAuthFailed
                            | ErrorCode::SftpFailed
                            | ErrorCode::HostKeyMismatch
                            | ErrorCode::HostKeyUnknown
                            | ErrorCode::CmdTimeout
                            | ErrorCode::Internal
                    ) =>
                {
                    return Err(error);
                }
                Err(_) => continue,
            };
            let configured = root.trim_end_matches('/');
            let configured = if configured.is_empty() {
                "/"
            } else {
                configured
            };
            if resolved != configured {
                let mut aliases = self
                    .inner
                    .root_aliases
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let known = aliases.entry(host.id.to_string()).or_default();
                let pair = (resolved.clone(), configured.to_owned());
                if !known.contains(&pair) {
                    known.push(pair);
                }
            }
            if within(&resolved, path) {
                return Ok((resolved, None));
            }
            if within(configured, path) {
                return Ok((resolved, Some(configured.to_owned())));
            }
        }
        let configured = if roots.is_empty() {
            String::from("none are configured")
        } else {
            roots.join(", ")
        };
        Err(Error::new(
            ErrorCode::PathOutsideRoot,
            format!("{path:?} is not under policy.allowed_roots on {} ({configured})", host.id),
        )
        .with_host(host.id.as_str())
        .with_path(path)
        .with_hint("Use a path under an allowed root, or ask the operator to add one to policy.allowed_roots."))
    }
}

fn path_denied(host: &Host, path: &str, decision: &crate::policy::Decision) -> Error {
    Error::new(
        ErrorCode::PolicyDenied,
        format!("denied on {}: {}", host.id, decision.reason),
    )
    .with_host(host.id.as_str())
    .with_path(path)
    .with_recovery_tool("policy_test")
}

/// Errors that are the path's own fault, whatever host: the call is refused.
fn refuses_the_call(error: &Error) -> bool {
    matches!(
        error.code,
        ErrorCode::PathOutsideRoot | ErrorCode::PolicyDenied | ErrorCode::InvalidInput
    )
}

/// `path` as written, made absolute against the session's working directory: what
/// `deny_paths` sees before anything is resolved (`.` and empty names dropped; `..`
/// kept, so this check can only refuse more, never less, than the resolved one).
fn as_written(path: &str, cwd: Option<&str>, local_source: bool) -> Result<String> {
    let absolute = match (path.starts_with('/'), cwd) {
        (true, _) => path.to_owned(),
        (false, Some(cwd)) => format!("{}/{path}", cwd.trim_end_matches('/')),
        (false, None) if local_source => {
            return Err(Error::invalid_input(format!(
                "source {path:?} must be an absolute path on warden's machine"
            ))
            .with_path(path));
        }
        (false, None) => {
            return Err(Error::invalid_input(format!(
                "{path:?}: outside a session, give an absolute path (or open a session with session_open)"
            ))
            .with_path(path));
        }
    };
    let names: Vec<&str> = absolute
        .split('/')
        .filter(|name| !name.is_empty() && *name != ".")
        .collect();
    Ok(format!("/{}", names.join("/")))
}

#[cfg(test)]
mod tests {
    use super::as_written;

    #[test]
    fn paths_as_written_are_absolute_and_keep_their_climbs() {
        assert_eq!(
            as_written("/srv//app/./x", None, false).ok().as_deref(),
            Some("/srv/app/x")
        );
        assert_eq!(
            as_written("x/../y", Some("/srv/app"), false)
                .ok()
                .as_deref(),
            Some("/srv/app/x/../y")
        );
        assert_eq!(
            as_written(".", Some("/srv/app/"), false).ok().as_deref(),
            Some("/srv/app")
        );
        assert!(as_written("x", None, false).is_err());
        assert!(as_written("x", None, true).is_err());
    }
}
