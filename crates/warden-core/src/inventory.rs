//! The hosts warden knows: the configured ones plus the built-in `local` host, and
//! target selectors over them (PRODUCT.md §4).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;

use crate::config::{Config, expand_home};
use crate::error::{Error, ErrorCode, Result};

/// The id of the built-in host that stands for the operator's machine.
pub const LOCAL_HOST_ID: &str = "local";

/// A host id as written in `warden.yaml`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct HostId(String);

impl HostId {
    pub fn new(id: impl Into<String>) -> HostId {
        HostId(id.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for HostId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// How warden reaches a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HostKind {
    Ssh,
    Local,
}

#[derive(Debug, Clone, Serialize)]
pub struct Host {
    pub id: HostId,
    pub kind: HostKind,
    pub address: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity_file: Option<PathBuf>,
    pub groups: Vec<String>,
    pub tags: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy_jump: Option<String>,
}

impl Host {
    pub fn is_local(&self) -> bool {
        self.kind == HostKind::Local
    }

    fn local() -> Host {
        Host {
            id: HostId::new(LOCAL_HOST_ID),
            kind: HostKind::Local,
            address: String::from("localhost"),
            port: None,
            user: None,
            identity_file: None,
            groups: Vec::new(),
            tags: BTreeMap::new(),
            role: None,
            proxy_jump: None,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Inventory {
    /// Configured hosts in file order, then `local` when enabled.
    hosts: Vec<Arc<Host>>,
}

impl Inventory {
    pub fn from_config(config: &Config) -> Inventory {
        let mut hosts: Vec<Arc<Host>> = config
            .hosts
            .iter()
            .map(|host| {
                Arc::new(Host {
                    id: HostId::new(&host.id),
                    kind: HostKind::Ssh,
                    address: host.address.clone(),
                    port: host.port,
                    user: host.user.clone(),
                    identity_file: host.identity_file.as_deref().map(expand_home),
                    groups: host.groups.clone(),
                    tags: host.tags.clone(),
                    role: host.role.clone(),
                    proxy_jump: host.proxy_jump.clone(),
                })
            })
            .collect();
        if config.local.enabled {
            hosts.push(Arc::new(Host::local()));
        }
        Inventory { hosts }
    }

    /// Every host, `local` last.
    pub fn hosts(&self) -> &[Arc<Host>] {
        &self.hosts
    }

    pub fn get(&self, id: &str) -> Option<&Arc<Host>> {
        self.hosts.iter().find(|host| host.id.as_str() == id)
    }

    /// A host by id, or `HOST_NOT_FOUND` with the closest ids.
    pub fn require(&self, id: &str) -> Result<Arc<Host>> {
        self.get(id).cloned().ok_or_else(|| self.not_found(id))
    }

    fn not_found(&self, id: &str) -> Error {
        let suggestions = self.closest_ids(id);
        let mut message = format!("no host with id {id:?}");
        if !suggestions.is_empty() {
            message.push_str(&format!("; did you mean {}?", suggestions.join(", ")));
        }
        Error::new(ErrorCode::HostNotFound, message)
            .with_host(id)
            .with_suggestions(suggestions)
            .with_recovery_tool("hosts_list")
    }

    fn closest_ids(&self, id: &str) -> Vec<String> {
        crate::suggest::closest(id, self.hosts.iter().map(|host| host.id.as_str()), 0.7)
    }

    /// Groups with their member ids, and tag keys with their values.
    pub fn groups(
        &self,
    ) -> (
        BTreeMap<String, Vec<String>>,
        BTreeMap<String, BTreeSet<String>>,
    ) {
        let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut tags: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for host in &self.hosts {
            for group in &host.groups {
                groups
                    .entry(group.clone())
                    .or_default()
                    .push(host.id.to_string());
            }
            for (key, value) in &host.tags {
                tags.entry(key.clone()).or_default().insert(value.clone());
            }
        }
        (groups, tags)
    }

    /// Resolves a target selector to hosts in inventory order, without duplicates.
    ///
    /// `host:ID`, `host:GLOB`, `group:G`, `tag:K=V`, `all` (never `local`), and comma
    /// unions. A bare word is read as `host:WORD`.
    pub fn resolve(&self, target: &str) -> Result<Vec<Arc<Host>>> {
        let mut selected = BTreeSet::new();
        if target.trim().is_empty() {
            return Err(Error::invalid_input(
                "target is empty; try \"all\" or \"host:ID\"",
            ));
        }
        for part in target.split(',').map(str::trim) {
            let (kind, value) = match part.split_once(':') {
                Some(split) => split,
                None if part == "all" => ("all", ""),
                None => ("host", part),
            };
            match kind {
                "all" if value.is_empty() => {
                    selected.extend(
                        self.hosts
                            .iter()
                            .enumerate()
                            .filter(|(_, host)| !host.is_local())
                            .map(|(index, _)| index),
                    );
                }
                "host" if value.contains(['*', '?', '[']) => {
                    let glob = globset::Glob::new(value)
                        .map_err(|error| {
                            Error::invalid_input(format!("bad host glob {value:?}: {error}"))
                        })?
                        .compile_matcher();
                    selected.extend(
                        self.hosts
                            .iter()
                            .enumerate()
                            .filter(|(_, host)| glob.is_match(host.id.as_str()))
                            .map(|(index, _)| index),
                    );
                }
                "host" => {
                    let index = self
                        .hosts
                        .iter()
                        .position(|host| host.id.as_str() == value)
                        .ok_or_else(|| self.not_found(value))?;
                    selected.insert(index);
                }
                "group" => selected.extend(
                    self.hosts
                        .iter()
                        .enumerate()
                        .filter(|(_, host)| host.groups.iter().any(|group| group == value))
                        .map(|(index, _)| index),
                ),
                "tag" => {
                    let (key, wanted) = value.split_once('=').ok_or_else(|| {
                        Error::invalid_input(format!("tag selector {part:?} needs tag:KEY=VALUE"))
                    })?;
                    selected.extend(
                        self.hosts
                            .iter()
                            .enumerate()
                            .filter(|(_, host)| host.tags.get(key).is_some_and(|v| v == wanted))
                            .map(|(index, _)| index),
                    );
                }
                _ => {
                    return Err(Error::invalid_input(format!(
                        "unknown selector {part:?}; use host:ID, host:GLOB, group:NAME, tag:K=V or all"
                    )));
                }
            }
        }
        if selected.is_empty() {
            return Err(Error::new(
                ErrorCode::TargetEmpty,
                format!("target {target:?} matched no hosts"),
            )
            .with_recovery_tool("hosts_groups"));
        }
        Ok(selected
            .into_iter()
            .map(|index| Arc::clone(&self.hosts[index]))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inventory() -> Inventory {
        let config = Config::parse(
            "hosts:\n\
             - {id: web-1, address: a, groups: [web, prod], tags: {env: prod}}\n\
             - {id: web-2, address: b, groups: [web], tags: {env: staging}}\n\
             - {id: db-1, address: c, groups: [db, prod], tags: {env: prod}}\n",
        )
        .unwrap_or_default();
        Inventory::from_config(&config)
    }

    fn ids(target: &str) -> Vec<String> {
        match inventory().resolve(target) {
            Ok(hosts) => hosts.iter().map(|host| host.id.to_string()).collect(),
            Err(error) => vec![error.code.to_string()],
        }
    }

    #[test]
    fn selectors_resolve_in_inventory_order() {
        assert_eq!(ids("all"), ["web-1", "web-2", "db-1"]);
        assert_eq!(ids("host:web-2"), ["web-2"]);
        assert_eq!(ids("web-2"), ["web-2"]);
        assert_eq!(ids("host:web-*"), ["web-1", "web-2"]);
        assert_eq!(ids("group:prod"), ["web-1", "db-1"]);
        assert_eq!(ids("tag:env=staging"), ["web-2"]);
        assert_eq!(ids("host:db-1, group:web"), ["web-1", "web-2", "db-1"]);
        assert_eq!(ids("host:local"), ["local"]);
    }

    #[test]
    fn all_never_includes_local() {
        assert!(!ids("all").contains(&String::from("local")));
    }

    #[test]
    fn empty_and_unknown_are_distinct_errors() {
        assert_eq!(ids("group:nope"), ["TARGET_EMPTY"]);
        assert_eq!(ids("host:nope-*"), ["TARGET_EMPTY"]);
        assert_eq!(ids("host:web-3"), ["HOST_NOT_FOUND"]);
        assert_eq!(ids("planet:mars"), ["INVALID_INPUT"]);
        assert_eq!(ids("tag:env"), ["INVALID_INPUT"]);
    }

    #[test]
    fn unknown_host_suggests_closest_ids() {
        let error = inventory().resolve("host:web-3").err();
        let suggestions = error.map(|error| error.suggestions).unwrap_or_default();
        assert_eq!(suggestions.first().map(String::as_str), Some("web-1"));
        assert!(suggestions.contains(&String::from("web-2")));
    }
}
