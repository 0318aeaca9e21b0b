//! `fs_chown`: owner and/or group of a path or, with `recursive: true`, a tree. Names
//! are looked up in the target's own /etc/passwd and /etc/group (read through the
//! file port, like every other file): users known only to a directory service (LDAP,
//! SSSD) need numeric ids. Symlinks are never followed: a link as the path is refused,
//! a link met in a walk is skipped.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::fs::file_args::{self, FileScope};
use warden_core::error::{Error, Result};
use warden_core::sandbox::{AccountDb, Last, Sandbox};
use warden_core::sessions::Event;
use warden_core::tool::{Domain, Effect, Plan, Tool, ToolInfo};
use warden_core::{PlanContext, RunContext};

pub struct FsChown;

/// Most of /etc/passwd or /etc/group read for a name.
const MAX_ACCOUNT_FILE_BYTES: u64 = 4 * 1024 * 1024;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct FsChownParams {
    #[serde(flatten)]
    pub scope: FileScope,
    /// Path to change.
    pub path: String,
    /// "user", "user:group", ":group" or "1000:1000".
    pub owner: String,
    /// Also everything below a directory.
    #[serde(default)]
    pub recursive: bool,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct FsChownOutput {
    pub path: String,
    pub uid: u32,
    pub gid: u32,
    /// Entries whose owner or group changed.
    pub changed: usize,
    /// Entries looked at (symlinks excluded).
    pub entries: usize,
    /// Symlinks met in the walk and left alone.
    pub skipped_symlinks: usize,
}

impl Tool for FsChown {
    type Params = FsChownParams;
    type Output = FsChownOutput;

    const INFO: ToolInfo = ToolInfo {
        name: "fs_chown",
        domain: Domain::Fs,
        summary: "Chown path to owner",
        description: "Set owner and/or group (\"user\", \"user:group\", \":group\", \"1000:1000\"); names come from the host's /etc/passwd and /etc/group. Never follows symlinks. Errors: INVALID_INPUT, PERMISSION_DENIED, FILE_NOT_FOUND, PATH_OUTSIDE_ROOT.",
        effect: Effect::Mutating,
        idempotent: true,
        open_world: true,
        example: r#"{"host_id": "web-1", "path": "/srv/app/app.conf", "owner": "0:0"}"#,
    };

    fn plan(&self, params: &FsChownParams, planning: &PlanContext) -> Result<Plan> {
        Owner::parse(&params.owner)?;
        params.scope.plan(
            planning,
            Effect::Mutating,
            &[(&params.path, Last::NoFollow)],
        )
    }

    fn run(
        &self,
        params: FsChownParams,
        context: RunContext,
    ) -> impl Future<Output = Result<FsChownOutput>> + Send + 'static {
        async move {
            let owner = Owner::parse(&params.owner)?;
            let (host, sandbox) = file_args::open(&context, &params.path).await?;
            let host_id = host.id.as_str();
            let uid = lookup(&sandbox, owner.user.as_deref(), AccountDb::Passwd, host_id).await?;
            let gid = lookup(&sandbox, owner.group.as_deref(), AccountDb::Group, host_id).await?;
            let targets =
                file_args::change_targets(&sandbox, &params.path, params.recursive, "fs_chown")
                    .await?;
            let mut output = FsChownOutput {
                path: targets.resolved.path.clone(),
                uid: uid.unwrap_or(targets.meta.uid),
                gid: gid.unwrap_or(targets.meta.gid),
                changed: 0,
                entries: targets.entries.len(),
                skipped_symlinks: targets.skipped_symlinks,
            };
            for (path, entry) in &targets.entries {
                // An unnamed part keeps each entry's own id.
                let (new_uid, new_gid) = (uid.unwrap_or(entry.uid), gid.unwrap_or(entry.gid));
                if (new_uid, new_gid) != (entry.uid, entry.gid) {
                    sandbox.files().set_owner(path, new_uid, new_gid).await?;
                    output.changed += 1;
                }
            }
            context.note(Event::Written, &targets.resolved.path);
            Ok(output)
        }
    }
}

/// A parsed `owner` argument: either part may be absent, not both.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Owner {
    user: Option<String>,
    group: Option<String>,
}

impl Owner {
    fn parse(text: &str) -> Result<Owner> {
        let (user, group) = match text.split_once(':') {
            Some((user, group)) => (user, Some(group)),
            None => (text, None),
        };
        let part = |name: &str| (!name.is_empty()).then(|| name.to_owned());
        let owner = Owner {
            user: part(user),
            group: group.and_then(part),
        };
        // chown(1) reads "user:" as the user's login group: too subtle to guess at.
        let empty_group = group.is_some_and(str::is_empty);
        let valid = |name: &Option<String>| {
            name.as_deref()
                .is_none_or(|name| !name.contains([':', '\n', '\0', '/']) && name.len() <= 256)
        };
        if (owner.user.is_none() && owner.group.is_none())
            || empty_group
            || !valid(&owner.user)
            || !valid(&owner.group)
        {
            return Err(Error::invalid_input(format!(
                "owner {text:?} is not \"user\", \"user:group\", \":group\" or \"uid:gid\""
            )));
        }
        Ok(owner)
    }
}

/// A numeric id as given, or a name's id from the host's /etc/passwd or /etc/group;
/// none for no name.
async fn lookup(
    sandbox: &Sandbox,
    name: Option<&str>,
    db: AccountDb,
    host: &str,
) -> Result<Option<u32>> {
    let Some(name) = name else {
        return Ok(None);
    };
    if let Ok(id) = name.parse::<u32>() {
        return Ok(Some(id));
    }
    let (file, what) = match db {
        AccountDb::Passwd => ("/etc/passwd", "user"),
        AccountDb::Group => ("/etc/group", "group"),
    };
    let text = sandbox.read_accounts(db, MAX_ACCOUNT_FILE_BYTES).await?;
    let found = String::from_utf8_lossy(&text).lines().find_map(|line| {
        let mut fields = line.split(':');
        (fields.next() == Some(name))
            .then(|| fields.nth(1).and_then(|id| id.parse::<u32>().ok()))
            .flatten()
    });
    let id = found.ok_or_else(|| {
        Error::invalid_input(format!(
            "no {what} {name:?} in {file} on {host}; a {what} from a directory service (LDAP, SSSD) needs its numeric id, e.g. \"1000:1000\""
        ))
        .with_host(host)
    })?;
    Ok(Some(id))
}

#[cfg(test)]
mod tests {
    use super::Owner;

    fn parts(text: &str) -> (Option<String>, Option<String>) {
        let owner = Owner::parse(text).unwrap();
        (owner.user, owner.group)
    }

    #[test]
    fn owner_forms() {
        let some = |text: &str| Some(text.to_owned());
        assert_eq!(parts("www-data"), (some("www-data"), None));
        assert_eq!(parts("app:staff"), (some("app"), some("staff")));
        assert_eq!(parts(":staff"), (None, some("staff")));
        assert_eq!(parts("1000:1000"), (some("1000"), some("1000")));
        for bad in ["", ":", "app:", "a:b:c", "a/b"] {
            assert!(Owner::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
