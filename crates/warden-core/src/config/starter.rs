//! The commented starter file `warden init` writes.

pub const STARTER_CONFIG: &str = r#"# warden.yaml — hosts warden may reach and the rules it enforces.
# Check it with `warden config check`; every key is described in the README.

hosts:
  # - id: web-1                       # unique, letters digits . _ -
  #   address: 10.0.0.11              # DNS name, IP, or a Host alias from ~/.ssh/config
  #   port: 22
  #   user: deploy
  #   identity_file: ~/.ssh/id_ed25519 # else ssh-agent, else ~/.ssh/config / ssh defaults
  #   groups: [web, production]
  #   tags: {env: prod, region: eu}
  #   role: operator                  # a policy role below
  #   proxy_jump: bastion             # a host id or user@host:port

ssh:
  known_hosts: ~/.ssh/known_hosts
  host_key_checking: strict           # strict | accept-new | off
  connect_timeout_ms: 10000           # deadline to connect and log in, and for each channel open
  keepalive_interval_s: 15            # 3 unanswered keepalives drop a connection; 0 = off
  idle_timeout_s: 300                 # close pooled connections idle this long
  max_parallel: 64                    # hosts run concurrently in one fan-out
  use_ssh_config: true                # read ~/.ssh/config (HostName User Port IdentityFile ProxyJump)
  allow_sha1_rsa: false               # true accepts SHA-1 ssh-rsa signatures (old servers only)

local:
  enabled: true                       # the built-in host "local": this machine
  allow_exec: false                   # WARDEN_UNSAFE_LOCAL=1 also turns exec on
  allow_write: false

policy:
  mode: enforce                       # off | warn | enforce
  deny_commands:                      # a regex (full match on each simple command, quotes
    #                                   #   removed, wrappers like sudo/env/sh -c looked through)
    #                                   # or {program, flags, args}: flags in any spelling
    - {program: rm, flags: ['r|R|recursive'], args: ['**', '/*', '**']}
    - {program: 'mkfs*'}
    - {program: '{shutdown,reboot,halt,poweroff}'}
  allow_commands: []                  # non-empty: everything else is denied (a deny list
    #                                   #   alone stops what it names, not arbitrary code)
  allowed_roots: []                   # file tools and sessions work only under these
  #  - /etc/myapp                     #   (resolved on each host; symlinks out are refused)
  #  - /var/www
  deny_paths:                         # regex, full match on paths and their parents: file
    #                                   #   tools, redirections and path arguments
    - '.*/\.ssh(/.*)?'
    - '/etc/ssh/authorized_keys(/.*)?'  # ~/.ssh/authorized_keys: under .ssh above
    - '/etc/(g?shadow|sudoers)(-|\.bak|\.old|\.orig|\.dpkg-(old|dist|new)|\.ucf-(old|dist|new))?'
    - '/etc/sudoers\.d(/.*)?'
    - '/etc/cron(tab|\.d|\.daily|\.hourly|\.weekly|\.monthly|\.allow|\.deny)(/.*)?'
    - '/var/spool/cron(/.*)?'
    - '/(etc|lib|usr/lib|run)/systemd/(system|user)(/.*)?'
    - '.*/\.config/systemd(/.*)?'
    - '/etc/profile(\.d(/.*)?)?'
    - '/etc/(bash\.bashrc|environment|ld\.so\.preload)'
    - '.*/\.(bashrc|bash_profile|bash_login|bash_logout|profile|zshrc|zprofile|zshenv)'
  allow_opaque: false                 # true: commands warden cannot check (eval, sh fed a
    #                                   #   pipe, python -c) run when no rule denies them
  allow_env: []                       # env names a command may set although they change
    #                                   #   what runs (PATH, LD_*, BASH_ENV, … are refused)
  classes: {}                         # more read_only / mutating / destructive commands
  require_plan_token: false           # true: confirm: true runs only with a preview's plan_token
  roles: []
  #  - name: operator
  #    allow_commands: ['systemctl (status|restart) \S+', 'journalctl .*', 'uptime']

approval:                             # a human decides, outside the chat (`warden approvals`)
  enabled: false
  wait: 20s                           # a matching call waits this long, then APPROVAL_PENDING
  timeout: 15m                        # undecided requests expire to deny
  default_action: deny
  rules: []                           # first match wins; every key given must match
  #  - tools: [exec, run]
  #    classes: [destructive]         # read_only | mutating | destructive
  #    hosts: 'group:production'      # a target expression
  #  - tools: [fs_write, fs_patch]
  #    paths: ['/etc/.*']
  #  - tools: [fs_read]
  #    require_approval: false        # exempt

secrets:                              # ${env:NAME} / ${file:PATH} in a command's env values
  #                                   #   (and exec_sudo's password)
  env: []                             # variables of warden's environment agents may name
  files: []                           # globs of local files agents may name
  patterns: []                        # regexes masked in answers and the audit log (common
    #                                   #   token shapes are masked always)

limits:
  max_output_bytes: 65536             # per host and stream, inline: head and tail; the
    #                                   #   whole stream goes to an artifact (artifacts_get)
  artifact_retention_h: 24            # artifacts are pruned this many hours after the job
  max_concurrent: 50                  # tool calls in flight per client
  max_per_host: 8                     # commands at once on one host (sshd MaxSessions: 10)
  max_read_bytes: 1048576             # fs_read answers at most this much per call
  max_sessions_per_client: 50
  session_idle_s: 1800                # a file session unused this long is closed
  session_max_s: 86400                # ... and any session this long after opening
  max_commands_per_client: 10         # interactive commands (`command`) held at once
  command_idle_s: 600                 # an interactive command unused this long is stopped

audit:
  dir: null                           # default: <state-dir>/audit
"#;
