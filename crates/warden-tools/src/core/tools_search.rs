//! `tools_search`: find tools by words in their names and descriptions.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use warden_core::error::Result;
use warden_core::tool::{Domain, Effect, Plan, Registry, Tool, ToolInfo};
use warden_core::{PlanContext, RunContext};

pub struct ToolsSearch;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ToolsSearchParams {
    /// Words to look for.
    pub query: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ToolMatch {
    pub name: String,
    pub summary: String,
    pub score: usize,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ToolsSearchOutput {
    pub matches: Vec<ToolMatch>,
}

impl Tool for ToolsSearch {
    type Params = ToolsSearchParams;
    type Output = ToolsSearchOutput;

    const INFO: ToolInfo = ToolInfo {
        name: "tools_search",
        domain: Domain::Core,
        summary: "Search tools",
        description: "Find tools whose name or description contains the query's words, best match first.",
        effect: Effect::ReadOnly,
        idempotent: true,
        open_world: false,
        example: r#"{"query": "read a file"}"#,
    };

    fn plan(&self, _params: &ToolsSearchParams, _planning: &PlanContext) -> Result<Plan> {
        Ok(Plan::local_state())
    }

    fn run(
        &self,
        params: ToolsSearchParams,
        context: RunContext,
    ) -> impl Future<Output = Result<ToolsSearchOutput>> + Send + 'static {
        async move {
            Ok(ToolsSearchOutput {
                matches: search(context.registry(), &params.query),
            })
        }
    }
}

/// Scores: a word in the name counts 3, in the summary 2, in the description 1.
fn search(registry: &Registry, query: &str) -> Vec<ToolMatch> {
    let words: Vec<String> = query
        .split(|c: char| !c.is_alphanumeric())
        .filter(|word| word.len() > 1)
        .map(str::to_lowercase)
        .collect();
    let mut matches: Vec<ToolMatch> = registry
        .tools()
        .iter()
        .map(|tool| tool.info())
        .map(|info| {
            let (name, summary, description) = (
                info.name.to_lowercase(),
                info.summary.to_lowercase(),
                info.description.to_lowercase(),
            );
            let score = words
                .iter()
                .map(|word| {
                    3 * usize::from(name.contains(word.as_str()))
                        + 2 * usize::from(summary.contains(word.as_str()))
                        + usize::from(description.contains(word.as_str()))
                })
                .sum();
            ToolMatch {
                name: info.name.to_owned(),
                summary: info.summary.to_owned(),
                score,
            }
        })
        .filter(|found| found.score > 0)
        .collect();
    matches.sort_by(|a, b| b.score.cmp(&a.score).then(a.name.cmp(&b.name)));
    matches
}

#[cfg(test)]
mod tests {
    #[test]
    fn finds_exec_for_running_commands() {
        let found = super::search(crate::registry(), "run a command");
        assert!(
            found
                .iter()
                .take(2)
                .any(|found| found.name == "exec" || found.name == "run")
        );
        assert!(super::search(crate::registry(), "zzzz").is_empty());
    }
}
