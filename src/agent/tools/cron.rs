//! The `cron` tool: scheduled jobs, asked of the reactor through the
//! agent's event sink and answered within a bound.

use super::{Output, Registry};
use serde_json::Value;
use std::time::Duration;

impl Registry {
    /// The `cron` tool: forwards to the reactor's `cron.*` methods and
    /// waits, bounded, for the answer.
    pub(super) fn cron(&self, mut args: Value) -> Result<Output, String> {
        let tx = self
            .reactor
            .as_ref()
            .ok_or("scheduling is not available here")?;
        let action = args
            .get("action")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if let Some(o) = args.as_object_mut() {
            o.remove("action");
        }
        let method = match action.as_str() {
            "list" => "cron.list",
            "add" => "cron.add",
            "remove" => "cron.remove",
            other => return Err(format!("unknown action {other:?}; use list, add or remove")),
        };
        let (reply, answer) = std::sync::mpsc::sync_channel(1);
        if !tx(crate::agent::AgentEvent::Query {
            method: method.into(),
            params: args,
            reply,
        }) {
            return Err("the gateway is shutting down".to_string());
        }
        let v = match answer.recv_timeout(Duration::from_secs(10)) {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => return Err(e.message),
            Err(_) => return Err("the gateway did not answer in time".into()),
        };
        let text = match action.as_str() {
            "list" => {
                let jobs: Vec<&str> = v["jobs"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|j| j["summary"].as_str()).collect())
                    .unwrap_or_default();
                if jobs.is_empty() {
                    "no scheduled jobs".to_string()
                } else {
                    jobs.join("\n")
                }
            }
            "add" => format!("added {}", v["job"]["summary"].as_str().unwrap_or("")),
            _ => format!("removed {}", v["name"].as_str().unwrap_or("")),
        };
        let summary = crate::util::truncate(&text, 120).to_string();
        Ok(Output::ok(text, summary))
    }
}
