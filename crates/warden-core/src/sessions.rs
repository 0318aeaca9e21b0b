//! File sessions: a host, a root every path is confined to, and a working directory.
//!
//! Sessions live in memory and are ids in tool arguments, never transport state (the
//! same over stdio and HTTP). An id is random (122 bits), owned by the client that
//! opened it (any other client gets `SESSION_NOT_FOUND`, as if it did not exist),
//! expires after `limits.session_idle_s` without use or `limits.session_max_s` after
//! opening, and a client holds at most `limits.max_sessions_per_client`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::error::{Error, ErrorCode, Result};
use crate::inventory::HostId;

/// How many paths or commands a session remembers per kind for `session_summary`.
const EVENTS_KEPT: usize = 100;

#[derive(Debug, Clone, Copy)]
pub struct SessionLimits {
    pub idle: Duration,
    pub max_lifetime: Duration,
    pub per_client: usize,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct SessionInfo {
    pub session_id: String,
    pub host_id: String,
    pub resolved_root: String,
    pub resolved_cwd: String,
    /// Seconds since the epoch.
    pub opened_at: u64,
    pub idle_expires_in_s: u64,
}

/// What happened in a session, for `session_summary`.
#[derive(Debug, Clone, Default, Serialize, schemars::JsonSchema)]
pub struct Activity {
    pub read: Vec<String>,
    pub written: Vec<String>,
    pub ran: Vec<String>,
    pub denied: Vec<String>,
    /// Events beyond the most recent ones kept per kind.
    pub dropped: u64,
}

/// One kind of session event.
#[derive(Debug, Clone, Copy)]
pub enum Event {
    Read,
    Written,
    Ran,
    Denied,
}

#[derive(Debug)]
struct Session {
    client: String,
    host: HostId,
    root: String,
    cwd: String,
    opened: Instant,
    opened_at: u64,
    last_used: Instant,
    activity: Activity,
}

/// A live session's fixed facts, handed to file tools.
#[derive(Debug, Clone)]
pub struct SessionView {
    pub id: String,
    pub host: HostId,
    pub root: String,
    pub cwd: String,
}

pub struct Sessions {
    limits: SessionLimits,
    open: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    pub fn new(limits: SessionLimits) -> Sessions {
        Sessions {
            limits,
            open: Mutex::new(HashMap::new()),
        }
    }

    pub fn open(&self, client: &str, host: HostId, root: String) -> Result<SessionInfo> {
        let mut open = self.lock();
        self.expire(&mut open);
        let held = open.values().filter(|s| s.client == client).count();
        if held >= self.limits.per_client {
            return Err(Error::new(
                ErrorCode::SessionLimit,
                format!(
                    "this client already holds {held} sessions (limits.max_sessions_per_client)"
                ),
            ));
        }
        let id = format!("s-{}", uuid::Uuid::new_v4().simple());
        let now = Instant::now();
        let session = Session {
            client: client.to_owned(),
            host,
            cwd: root.clone(),
            root,
            opened: now,
            opened_at: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |elapsed| elapsed.as_secs()),
            last_used: now,
            activity: Activity::default(),
        };
        let info = self.info(&id, &session);
        open.insert(id, session);
        Ok(info)
    }

    /// The caller's session, touched (its idle clock restarts).
    pub fn get(&self, client: &str, id: &str) -> Result<SessionView> {
        let mut open = self.lock();
        self.expire(&mut open);
        let session = open
            .get_mut(id)
            .filter(|session| session.client == client)
            .ok_or_else(|| not_found(id))?;
        session.last_used = Instant::now();
        Ok(SessionView {
            id: id.to_owned(),
            host: session.host.clone(),
            root: session.root.clone(),
            cwd: session.cwd.clone(),
        })
    }

    pub fn close(&self, client: &str, id: &str) -> Result<()> {
        let mut open = self.lock();
        self.expire(&mut open);
        match open.get(id) {
            Some(session) if session.client == client => {
                open.remove(id);
                Ok(())
            }
            _ => Err(not_found(id)),
        }
    }

    pub fn list(&self, client: &str) -> Vec<SessionInfo> {
        let mut open = self.lock();
        self.expire(&mut open);
        let mut listed: Vec<SessionInfo> = open
            .iter()
            .filter(|(_, session)| session.client == client)
            .map(|(id, session)| self.info(id, session))
            .collect();
        listed.sort_by_key(|info| (info.opened_at, info.session_id.clone()));
        listed
    }

    pub fn activity(&self, client: &str, id: &str) -> Result<(SessionInfo, Activity)> {
        let mut open = self.lock();
        self.expire(&mut open);
        let session = open
            .get(id)
            .filter(|session| session.client == client)
            .ok_or_else(|| not_found(id))?;
        Ok((self.info(id, session), session.activity.clone()))
    }

    /// Notes an event; a session closed meanwhile is ignored (nothing to summarize).
    pub fn record(&self, id: &str, event: Event, what: &str) {
        let mut open = self.lock();
        let Some(session) = open.get_mut(id) else {
            return;
        };
        let activity = &mut session.activity;
        let list = match event {
            Event::Read => &mut activity.read,
            Event::Written => &mut activity.written,
            Event::Ran => &mut activity.ran,
            Event::Denied => &mut activity.denied,
        };
        if list.len() >= EVENTS_KEPT {
            list.remove(0);
            activity.dropped += 1;
        }
        list.push(what.to_owned());
    }

    fn info(&self, id: &str, session: &Session) -> SessionInfo {
        let idle_left = self.limits.idle.saturating_sub(session.last_used.elapsed());
        let life_left = self
            .limits
            .max_lifetime
            .saturating_sub(session.opened.elapsed());
        SessionInfo {
            session_id: id.to_owned(),
            host_id: session.host.to_string(),
            resolved_root: session.root.clone(),
            resolved_cwd: session.cwd.clone(),
            opened_at: session.opened_at,
            idle_expires_in_s: idle_left.min(life_left).as_secs(),
        }
    }

    fn expire(&self, open: &mut HashMap<String, Session>) {
        let limits = self.limits;
        open.retain(|_, session| {
            session.last_used.elapsed() < limits.idle
                && session.opened.elapsed() < limits.max_lifetime
        });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        // A panic while holding the lock cannot leave the map half-updated.
        self.open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn not_found(id: &str) -> Error {
    Error::new(
        ErrorCode::SessionNotFound,
        format!("no open session {id} for this client (closed, expired or never opened)"),
    )
    .with_recovery_tool("session_open")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sessions(idle_ms: u64, per_client: usize) -> Sessions {
        Sessions::new(SessionLimits {
            idle: Duration::from_millis(idle_ms),
            max_lifetime: Duration::from_secs(3600),
            per_client,
        })
    }

    fn host() -> HostId {
        HostId::new("web-1")
    }

    #[test]
    fn sessions_belong_to_their_client() {
        let sessions = sessions(60_000, 5);
        let info = sessions.open("a", host(), "/srv".into()).unwrap();
        assert!(sessions.get("a", &info.session_id).is_ok());
        let other = sessions.get("b", &info.session_id).unwrap_err();
        assert_eq!(other.code, ErrorCode::SessionNotFound);
        assert!(sessions.list("b").is_empty());
        assert_eq!(
            sessions.close("b", &info.session_id).unwrap_err().code,
            ErrorCode::SessionNotFound
        );
        sessions.close("a", &info.session_id).unwrap();
        assert!(sessions.get("a", &info.session_id).is_err());
    }

    #[test]
    fn the_limit_is_per_client() {
        let sessions = sessions(60_000, 2);
        sessions.open("a", host(), "/srv".into()).unwrap();
        sessions.open("a", host(), "/srv".into()).unwrap();
        let third = sessions.open("a", host(), "/srv".into()).unwrap_err();
        assert_eq!(third.code, ErrorCode::SessionLimit);
        assert!(sessions.open("b", host(), "/srv".into()).is_ok());
    }

    #[test]
    fn idle_sessions_expire() {
        let sessions = sessions(30, 5);
        let info = sessions.open("a", host(), "/srv".into()).unwrap();
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(
            sessions.get("a", &info.session_id).unwrap_err().code,
            ErrorCode::SessionNotFound
        );
    }

    #[test]
    fn ids_are_unguessable_and_distinct() {
        let sessions = sessions(60_000, 5);
        let a = sessions
            .open("a", host(), "/srv".into())
            .unwrap()
            .session_id;
        let b = sessions
            .open("a", host(), "/srv".into())
            .unwrap()
            .session_id;
        assert_ne!(a, b);
        assert_eq!(a.len(), 34);
    }
}
