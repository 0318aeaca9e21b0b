//! `warden hosts list|show`.

use serde_json::json;
use warden_core::Engine;

use crate::cli::HostsCommand;
use crate::output::{self, EXIT_OK};

pub async fn run(engine: Engine, command: HostsCommand, json: bool) -> u8 {
    let (tool, args) = match &command {
        HostsCommand::List { target } => ("hosts_list", json!({ "target": target })),
        HostsCommand::Show { host_id } => ("hosts_show", json!({ "host_id": host_id })),
    };
    let value = match super::invoke(&engine, tool, args, None).await {
        Ok(value) => value,
        Err(error) => return output::report_error(&error, json),
    };
    if json {
        output::print_json(&value);
        return EXIT_OK;
    }
    match command {
        HostsCommand::List { .. } => {
            let rows = value["hosts"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|host| {
                    let list = |key: &str| {
                        host[key]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|v| v.as_str())
                            .collect::<Vec<_>>()
                            .join(",")
                    };
                    let tags = host["tags"]
                        .as_object()
                        .into_iter()
                        .flatten()
                        .map(|(key, value)| format!("{key}={}", value.as_str().unwrap_or_default()))
                        .collect::<Vec<_>>()
                        .join(",");
                    vec![
                        host["id"].as_str().unwrap_or_default().to_owned(),
                        host["address"].as_str().unwrap_or_default().to_owned(),
                        list("groups"),
                        tags,
                    ]
                })
                .collect();
            output::print(&output::table(&["ID", "ADDRESS", "GROUPS", "TAGS"], rows));
        }
        HostsCommand::Show { .. } => {
            let rows = value["host"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(key, value)| {
                    vec![
                        key.clone(),
                        value
                            .as_str()
                            .map(str::to_owned)
                            .unwrap_or_else(|| value.to_string()),
                    ]
                })
                .collect();
            output::print(&output::table(&["FIELD", "VALUE"], rows));
        }
    }
    EXIT_OK
}
