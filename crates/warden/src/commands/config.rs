//! `warden config check`: parse and validate, naming key and line on error.

use warden_core::inventory::Inventory;
use warden_core::policy::Policy;

use crate::cli::Global;
use crate::output::{self, EXIT_OK};

pub fn check(global: &Global) -> u8 {
    let loaded = match super::sources(global).load() {
        Ok(loaded) => loaded,
        Err(error) => return output::report_error(&error, global.json),
    };
    let inventory = Inventory::from_config(&loaded.config);
    if let Err(error) = Policy::new(&loaded.config.policy, &inventory) {
        return output::report_error(&error, global.json);
    }
    let source = loaded
        .source
        .as_ref()
        .map(|path| path.display().to_string());
    // Rules that parse but do not mean what they look like: warnings, not errors.
    let warnings = warden_core::policy::lint(&loaded.config.policy);
    if global.json {
        output::print_json(&serde_json::json!({
            "ok": true,
            "config": source,
            "hosts": loaded.config.hosts.len(),
            "warnings": warnings,
        }));
    } else {
        match source {
            Some(path) => {
                output::print(&format!("ok: {path} ({} hosts)", loaded.config.hosts.len()))
            }
            None => output::print(
                "ok: no config file found; zero-config defaults (the read-only local host)",
            ),
        }
        for warning in &warnings {
            output::print(&format!(
                "warning: {} {:?}: {}",
                warning.source, warning.rule, warning.warning
            ));
        }
    }
    EXIT_OK
}
