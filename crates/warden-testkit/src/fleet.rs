//! A [`Fleet`] of sshds started in parallel that share one client key, and the
//! `warden.yaml` + known_hosts that describe it.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::sshd::{Sshd, SshdOptions, generate_key, unique_dir};

/// `n` sshds on loopback. Host ids are `fleet-01`, `fleet-02`, …
#[derive(Debug)]
pub struct Fleet {
    hosts: Vec<Sshd>,
    dir: PathBuf,
    client_key: PathBuf,
}

impl Fleet {
    /// Starts `n` sshds on threads. All accept the same client key: `options.client_key`
    /// when given, else one generated here with `options.client_key_type`.
    pub fn start(n: usize, options: SshdOptions) -> io::Result<Fleet> {
        let dir = unique_dir("fleet")?;
        let client_key = match options.client_key.clone() {
            Some(path) => path,
            None => {
                let path = dir.join("client_key");
                if let Err(error) = generate_key(&path, options.client_key_type) {
                    let _ = fs::remove_dir_all(&dir);
                    return Err(error);
                }
                path
            }
        };
        let options = SshdOptions {
            client_key: Some(client_key.clone()),
            ..options
        };
        let results: Vec<io::Result<Sshd>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..n)
                .map(|_| {
                    let options = options.clone();
                    scope.spawn(move || Sshd::start(options))
                })
                .collect();
            handles
                .into_iter()
                .map(|handle| {
                    handle
                        .join()
                        .unwrap_or_else(|_| Err(io::Error::other("sshd start panicked")))
                })
                .collect()
        });
        let mut hosts = Vec::with_capacity(n);
        let mut first_error = None;
        for result in results {
            match result {
                Ok(sshd) => hosts.push(sshd),
                Err(error) => {
                    first_error.get_or_insert(error);
                }
            }
        }
        let fleet = Fleet {
            hosts,
            dir,
            client_key,
        };
        match first_error {
            // Dropping `fleet` stops the ones that did start.
            Some(error) => Err(error),
            None => Ok(fleet),
        }
    }

    pub fn hosts(&self) -> &[Sshd] {
        &self.hosts
    }

    pub fn hosts_mut(&mut self) -> &mut [Sshd] {
        &mut self.hosts
    }

    pub fn len(&self) -> usize {
        self.hosts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }

    /// The id `write_config` gives host `index` (0-based): `fleet-01`, …
    pub fn host_id(index: usize) -> String {
        format!("fleet-{:02}", index + 1)
    }

    pub fn client_key_path(&self) -> &Path {
        &self.client_key
    }

    /// One known_hosts line per host.
    pub fn known_hosts_text(&self) -> String {
        self.hosts
            .iter()
            .map(|host| format!("{}\n", host.host_key_line()))
            .collect()
    }

    /// Writes `dir/known_hosts` and `dir/warden.yaml` for the fleet and returns the
    /// yaml's path. Hosts get groups `web`/`db` round-robin and tag `env: prod|staging`
    /// alternating. `extra_yaml` is appended verbatim, so it may add top-level sections
    /// other than `hosts` and `ssh` (duplicate keys are rejected by the parser).
    pub fn write_config(&self, dir: &Path, extra_yaml: &str) -> PathBuf {
        fs::create_dir_all(dir).expect("create config dir");
        let known_hosts = dir.join("known_hosts");
        fs::write(&known_hosts, self.known_hosts_text()).expect("write known_hosts");
        let mut yaml = format!(
            "ssh:\n  known_hosts: {}\n  use_ssh_config: false\nhosts:\n",
            quote(&known_hosts)
        );
        for (index, host) in self.hosts.iter().enumerate() {
            let group = if index % 2 == 0 { "web" } else { "db" };
            let env = if index % 2 == 0 { "prod" } else { "staging" };
            yaml.push_str(&format!(
                "  - id: {id}\n    address: {address}\n    port: {port}\n    user: {user}\n    identity_file: {key}\n    groups: [{group}]\n    tags: {{env: {env}}}\n",
                id = Fleet::host_id(index),
                address = host.address(),
                port = host.port(),
                user = serde_json::Value::from(host.user()),
                key = quote(host.client_key_path()),
            ));
        }
        if !extra_yaml.is_empty() {
            yaml.push_str(extra_yaml);
            if !extra_yaml.ends_with('\n') {
                yaml.push('\n');
            }
        }
        let path = dir.join("warden.yaml");
        fs::write(&path, yaml).expect("write warden.yaml");
        path
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        self.hosts.clear();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// A JSON string is a valid YAML double-quoted scalar: safe for any path.
fn quote(path: &Path) -> String {
    serde_json::Value::from(path.to_string_lossy().as_ref()).to_string()
}
