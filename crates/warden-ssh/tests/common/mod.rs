//! Setup shared by the transport and SFTP tests: client settings, a transport that
//! trusts one test sshd, and an inventory host pointing at it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use warden_core::config::{HostKeyChecking, SshSettings};
use warden_core::inventory::{Host, HostId, HostKind};
use warden_ssh::SshTransport;
use warden_testkit::Sshd;

pub fn settings(known_hosts: &Path, checking: HostKeyChecking) -> SshSettings {
    SshSettings {
        known_hosts: known_hosts.to_path_buf(),
        host_key_checking: checking,
        connect_timeout_ms: 10_000,
        keepalive_interval_s: 15,
        idle_timeout_s: 300,
        max_parallel: 64,
        use_ssh_config: false,
        ssh_config_file: PathBuf::from("/nonexistent/ssh_config"),
        allow_sha1_rsa: false,
    }
}

/// A transport that trusts exactly `sshd`'s host key.
pub fn trusting(sshd: &Sshd) -> SshTransport {
    let known_hosts = sshd.dir().join("client_known_hosts");
    sshd.write_known_hosts(&known_hosts).unwrap();
    SshTransport::new(settings(&known_hosts, HostKeyChecking::Strict))
}

/// Host `web-1`: `sshd` on loopback, logging in as `user` with the sshd's client key.
pub fn host_for(sshd: &Sshd, user: &str) -> Host {
    Host {
        id: HostId::new("web-1"),
        kind: HostKind::Ssh,
        address: String::from("127.0.0.1"),
        port: Some(sshd.port()),
        user: Some(user.to_owned()),
        identity_file: Some(sshd.client_key_path().to_path_buf()),
        groups: Vec::new(),
        tags: BTreeMap::new(),
        role: None,
        proxy_jump: None,
    }
}
