//! `warden hosts list|show`.

use serde_json::{Value, json};
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
                            .map(output::cell)
                            .collect::<Vec<_>>()
                            .join(",")
                    };
                    let tags = host["tags"]
                        .as_object()
                        .into_iter()
                        .flatten()
                        .map(|(key, value)| {
                            format!(
                                "{}={}",
                                output::cell(&Value::from(key.as_str())),
                                output::cell(value)
                            )
                        })
                        .collect::<Vec<_>>()
                        .join(",");
                    vec![
                        output::cell(&host["id"]),
                        output::cell(&host["address"]),
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
                        output::cell(&Value::from(key.as_str())),
                        output::cell(value),
                    ]
                })
                .collect();
            output::print(&output::table(&["FIELD", "VALUE"], rows));
        }
    }
    EXIT_OK
}
