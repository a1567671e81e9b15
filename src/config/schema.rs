//! The typed shape of `pinch.json`. Field names mirror OpenClaw's
//! `openclaw.json` where the concepts match, so a migrating user recognises
//! them. Every struct denies unknown keys: a typo is an error with a
//! suggestion, never a silently ignored setting.

use crate::net::NetworkConfig;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct Config {
    #[serde(rename = "$schema", skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    pub gateway: Gateway,
    pub models: Models,
    pub agents: Agents,
    pub channels: BTreeMap<String, Channel>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkConfig>,
    pub tools: Tools,
    pub logging: Logging,
    pub queue: crate::queue::QueueConfig,
    /// Webhooks: `POST /hooks/<name>` starts an agent run.
    pub hooks: BTreeMap<String, Hook>,
    /// Disk budget and retention.
    pub storage: super::storage::Storage,
    /// Optional release feed for `pinch version --check`.
    pub update: super::storage::Update,
    /// Who shares a conversation and when conversations start over.
    pub session: super::session::Session,
    /// OpenClaw's outbound proxy block, read as the default route below
    /// `network` (see `routes::route_for`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy: Option<ProxyBlock>,
    /// OpenClaw keys that were dropped while loading, in file order.
    #[serde(skip)]
    pub ignored: Vec<super::openclaw::IgnoredKey>,
    /// The proxy variables of `$PINCH_HOME/.env`, below the process
    /// environment when a route follows the environment.
    #[serde(skip)]
    pub dotenv_proxy: crate::net::ProxyVars,
}

/// Top-level `proxy` as OpenClaw writes it: `proxyUrl` (with `enabled`,
/// default true) and `tls.caFile` become the lowest route layer.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct ProxyBlock {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<ProxyTls>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct ProxyTls {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct Gateway {
    /// "loopback" (default), "lan" (all interfaces) or an IP address.
    pub bind: String,
    pub port: u16,
    pub auth: GatewayAuth,
    /// Connections served at once; further ones get 503 and are closed.
    pub max_connections: usize,
    /// Largest HTTP body or WebSocket message accepted, in bytes.
    pub max_body_bytes: usize,
    /// Sessions whose metadata stays in memory (least recently used evicted).
    pub session_cache: usize,
    /// Web origins (`https://app.example`) allowed besides the gateway's own page.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allowed_origins: Vec<String>,
    /// Host names the gateway is reached under besides localhost and its addresses.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allowed_hosts: Vec<String>,
}

impl Default for Gateway {
    fn default() -> Self {
        Gateway {
            bind: "loopback".into(),
            port: 18789,
            auth: GatewayAuth::default(),
            max_connections: 32,
            max_body_bytes: 256 * 1024,
            session_cache: 256,
            allowed_origins: Vec::new(),
            allowed_hosts: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct GatewayAuth {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct Models {
    pub providers: BTreeMap<String, Provider>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct Provider {
    pub base_url: String,
    /// "openai-completions" or "anthropic-messages".
    pub api: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
    /// Send the key as `Authorization: Bearer` even on anthropic-messages.
    /// Unset: true for the provider ids OpenClaw's bundled MiniMax provider
    /// owns (see [`Provider::bearer_auth`]), false otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_header: Option<bool>,
    pub headers: BTreeMap<String, String>,
    pub models: Vec<ModelDef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkConfig>,
    pub timeouts: Timeouts,
    /// Ask the server to reuse its prompt cache: llama.cpp's `cache_prompt`
    /// (openai-completions) or `cache_control` breakpoints
    /// (anthropic-messages). Unset: on for anthropic-messages, and for
    /// openai-completions only when `baseUrl` is loopback (OpenAI's own API
    /// refuses unknown fields). Also marks a llama.cpp server whose health
    /// `pinch doctor` and `pinch status` report.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_prompt: Option<bool>,
    /// llama.cpp's server slots (`--parallel`): each session is kept on
    /// slot hash(session) mod `slots` with `id_slot`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slots: Option<u32>,
}

impl Default for Provider {
    fn default() -> Self {
        Provider {
            base_url: String::new(),
            api: "openai-completions".into(),
            api_key: None,
            auth_header: None,
            headers: BTreeMap::new(),
            models: Vec::new(),
            network: None,
            timeouts: Timeouts::default(),
            cache_prompt: None,
            slots: None,
        }
    }
}

/// Provider ids whose anthropic-messages endpoint takes `Authorization:
/// Bearer`: OpenClaw's bundled MiniMax provider declares `authHeader: true`
/// for them and merges it under a user's provider of the same id.
pub const BEARER_BY_DEFAULT: [&str; 3] = ["minimax", "minimax-portal", "minimax-cn"];

impl Provider {
    /// Whether the key goes in `Authorization: Bearer` rather than
    /// `x-api-key` on anthropic-messages: `authHeader` when set, else true
    /// for the MiniMax provider ids (as OpenClaw does).
    pub fn bearer_auth(&self, id: &str) -> bool {
        self.auth_header
            .unwrap_or_else(|| BEARER_BY_DEFAULT.contains(&id))
    }
}

/// Seconds. `firstToken` is time to the response headers; `idle` the longest
/// silence between stream chunks; `total` the whole call.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct Timeouts {
    pub connect: u64,
    pub first_token: u64,
    pub idle: u64,
    pub total: u64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: 10,
            first_token: 120,
            idle: 60,
            total: 600,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct ModelDef {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub context_window: u32,
    pub max_tokens: u32,
    pub reasoning: bool,
    pub input: Vec<String>,
}

impl Default for ModelDef {
    fn default() -> Self {
        ModelDef {
            id: String::new(),
            name: None,
            context_window: 8192,
            max_tokens: 1024,
            reasoning: false,
            input: vec!["text".into()],
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct Agents {
    pub defaults: AgentDefaults,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct AgentDefaults {
    pub model: ModelSelection,
    /// Workspace folder; default `$PINCH_HOME/workspace`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workspace: Option<String>,
    /// Agent runs at once (each holds one worker thread).
    pub max_concurrent: usize,
    /// Model/tool rounds per run.
    pub max_rounds: u32,
    /// Deadline for one whole run, seconds.
    pub timeout_seconds: u64,
    pub temperature: Option<f32>,
    /// Characters of each workspace file placed in the system prompt.
    pub bootstrap_max_chars: usize,
    /// Thinking budget in tokens for models marked `reasoning`.
    pub thinking_budget: u32,
    /// The compact prompt (tighter file caps, skill scripts reached through
    /// the `skill` tool instead of one schema each): `true`/`false`; unset
    /// means automatic, for a primary model with `contextWindow` <= 8192.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compact_prompt: Option<bool>,
    /// Periodic check-ins driven by the workspace's HEARTBEAT.md.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heartbeat: Option<crate::sched::HeartbeatConfig>,
    /// How often recent daily notes are condensed into MEMORY.md ("7d";
    /// "off" disables).
    pub memory_consolidation: String,
}

impl Default for AgentDefaults {
    fn default() -> Self {
        AgentDefaults {
            model: ModelSelection::default(),
            workspace: None,
            max_concurrent: 2,
            max_rounds: 8,
            timeout_seconds: 300,
            temperature: None,
            bootstrap_max_chars: 2000,
            thinking_budget: 1024,
            compact_prompt: None,
            heartbeat: None,
            memory_consolidation: "7d".into(),
        }
    }
}

/// `"provider/model"` or `{ "primary": "...", "fallbacks": ["..."] }`.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelSelection {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub primary: Option<String>,
    pub fallbacks: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
#[derive(Default)]
struct ModelSelectionObject {
    primary: Option<String>,
    fallbacks: Vec<String>,
}

impl<'de> Deserialize<'de> for ModelSelection {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = ModelSelection;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("\"provider/model\" or an object with `primary` and `fallbacks`")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<ModelSelection, E> {
                Ok(ModelSelection {
                    primary: Some(s.to_string()),
                    fallbacks: Vec::new(),
                })
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<ModelSelection, A::Error> {
                let o = ModelSelectionObject::deserialize(
                    serde::de::value::MapAccessDeserializer::new(map),
                )?;
                Ok(ModelSelection {
                    primary: o.primary,
                    fallbacks: o.fallbacks,
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// One `channels.<name>` block. The access fields are shared by every
/// adapter; the rest are read only by the adapter that needs them.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct Channel {
    pub enabled: bool,
    pub dm_policy: String,
    pub allow_from: Vec<String>,
    pub group_policy: String,
    pub groups: BTreeMap<String, GroupRule>,
    pub require_mention: bool,
    /// The owner's sender id or username; default: the first `allowFrom` entry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkConfig>,
    /// OpenClaw's per-channel proxy URL: the same as `network.proxy`, which
    /// wins when both are set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bot_token: Option<String>,
    /// Slack's app-level token (`xapp-…`, scope `connections:write`) for Socket Mode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_root: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text_chunk_limit: Option<usize>,
    pub poll_timeout_seconds: u32,
    /// Whether answers quote the message they answer: "off" (default),
    /// "first" (the first message of the answer) or "all".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_to_mode: Option<String>,
    /// Whether answers appear as a draft edited while the model writes:
    /// "off" or "partial", or OpenClaw's `{ "mode": … }`; default partial in
    /// direct chats, off in groups ([`Streaming`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub streaming: Option<serde_json::Value>,
    /// Discord: the bot token (Developer Portal → Bot → Token).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Discord: the Gateway WebSocket URL, instead of the one
    /// `GET {apiRoot}/v10/gateway/bot` names (tests point it at loopback).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway_url: Option<String>,
    /// Discord: privileged intents asked for at Identify.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub intents: Option<DiscordIntents>,
    /// Discord: answer messages written by other bots (never its own).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub allow_bots: bool,
    /// Discord: servers by id (or `"*"`), each with its channels.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub guilds: BTreeMap<String, DiscordGuild>,
    /// Discord: lines per message before a reply is split (default 17).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_lines_per_message: Option<usize>,
    /// Slack: channels by id, each a group rule with the fields of a
    /// Discord server channel; OpenClaw's `channels.slack.channels.<id>`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub channels: BTreeMap<String, DiscordGuildChannel>,
    /// OpenClaw's `dm` block: `enabled: false` turns DMs off; `policy` and
    /// `allowFrom` are older spellings of `dmPolicy` and `allowFrom`, used
    /// when those are not set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dm: Option<DirectMessages>,
}

/// `channels.<name>.dm`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct DirectMessages {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_from: Option<Vec<String>>,
}

/// `channels.<name>.streaming`: whether answers appear as an edited draft.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Streaming {
    Off,
    Partial,
}

impl Streaming {
    /// Reads `"off"`, `"partial"` or OpenClaw's `{ "mode": … }`. OpenClaw's
    /// other modes map to the nearest one with a note for the log: `block`
    /// (text as it is produced) to partial, `progress` (a status only) to
    /// off, where the typing indicator shows the progress.
    pub fn parse(value: &serde_json::Value) -> Result<(Streaming, Option<String>), String> {
        let mode = match value {
            serde_json::Value::String(s) => s.as_str(),
            serde_json::Value::Object(o) => o
                .get("mode")
                .and_then(serde_json::Value::as_str)
                .unwrap_or("partial"),
            _ => "",
        };
        match mode {
            "off" => Ok((Streaming::Off, None)),
            "partial" => Ok((Streaming::Partial, None)),
            "block" | "progress" => {
                let (to, name) = if mode == "block" {
                    (Streaming::Partial, "partial")
                } else {
                    (Streaming::Off, "off")
                };
                Ok((
                    to,
                    Some(format!(
                        "streaming mode {mode:?} is not supported by pinch; using {name:?}"
                    )),
                ))
            }
            _ => Err(format!(
                "unknown streaming mode {mode:?}; use \"off\" or \"partial\""
            )),
        }
    }
}

/// `channels.discord.intents`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct DiscordIntents {
    /// The privileged Message Content intent: guild messages carry their
    /// text even without a mention. Must also be enabled in the Developer
    /// Portal, or Discord closes the connection (4014).
    pub message_content: bool,
}

/// `channels.discord.guilds.<id>`: one server's rule.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct DiscordGuild {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub require_mention: Option<bool>,
    /// Senders allowed in this server (user ids, `discord:` prefix allowed, `"*"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub users: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Channels by id (or `"*"`); when present, only these channels are answered.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub channels: BTreeMap<String, DiscordGuildChannel>,
}

/// `channels.discord.guilds.<id>.channels.<id>`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct DiscordGuildChannel {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// OpenClaw's older spelling of `enabled`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub require_mention: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub users: Option<Vec<String>>,
}

impl Default for Channel {
    fn default() -> Self {
        Channel {
            enabled: true,
            dm_policy: "pairing".into(),
            allow_from: Vec::new(),
            group_policy: "allowlist".into(),
            groups: BTreeMap::new(),
            require_mention: true,
            network: None,
            proxy: None,
            bot_token: None,
            app_token: None,
            api_root: None,
            text_chunk_limit: None,
            poll_timeout_seconds: 30,
            reply_to_mode: None,
            streaming: None,
            token: None,
            gateway_url: None,
            intents: None,
            allow_bots: false,
            guilds: BTreeMap::new(),
            max_lines_per_message: None,
            owner: None,
            channels: BTreeMap::new(),
            dm: None,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct GroupRule {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub require_mention: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_from: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct Tools {
    pub exec: ExecTool,
    pub web_fetch: WebFetchTool,
    pub web_search: WebSearchTool,
    pub message: MessageTool,
}

impl Default for Tools {
    fn default() -> Self {
        Tools {
            exec: ExecTool::default(),
            web_fetch: WebFetchTool::default(),
            web_search: WebSearchTool::default(),
            message: MessageTool::default(),
        }
    }
}

/// `tools.message`: the `message` tool, which sends a text to one of these
/// targets (`"telegram:123"`, `"slack:C1"`, `"owner"` for the chat the
/// owner used last). Empty (the default): the tool is not offered.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct MessageTool {
    pub allow_targets: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct ExecTool {
    pub enabled: bool,
    /// Programs the agent may run (names resolved on PATH, or absolute paths).
    pub allow: Vec<String>,
    /// Run command strings with shell syntax under `sh -c` (inside the
    /// sandbox, so any program may then run); off by default.
    pub allow_shell: bool,
    /// "on" (default): programs run under Landlock, and are refused where
    /// the kernel has none. "off": no filesystem confinement.
    pub sandbox: String,
    pub timeout_seconds: u64,
    pub max_output_bytes: usize,
    pub max_memory_mb: u64,
    pub max_cpu_seconds: u64,
}

impl Default for ExecTool {
    fn default() -> Self {
        ExecTool {
            enabled: true,
            allow: vec![
                "ls".into(),
                "cat".into(),
                "date".into(),
                "echo".into(),
                "grep".into(),
                "wc".into(),
                "head".into(),
                "tail".into(),
            ],
            allow_shell: false,
            sandbox: "on".into(),
            timeout_seconds: 30,
            max_output_bytes: 16 * 1024,
            max_memory_mb: 512,
            max_cpu_seconds: 20,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct WebFetchTool {
    pub enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkConfig>,
    pub max_bytes: usize,
    pub timeout_seconds: u64,
    /// Allow loopback, private, link-local and metadata addresses.
    pub allow_private: bool,
}

impl Default for WebFetchTool {
    fn default() -> Self {
        WebFetchTool {
            enabled: true,
            allow_private: false,
            network: None,
            max_bytes: 512 * 1024,
            timeout_seconds: 20,
        }
    }
}

/// `tools.webSearch`: the `web_search` tool. Off until configured.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct WebSearchTool {
    pub enabled: bool,
    /// "tavily" (or a Tavily-compatible service) or "searxng".
    pub backend: String,
    /// Empty means the backend's default: `https://api.tavily.com` for
    /// tavily; searxng has none (point it at your instance).
    pub base_url: String,
    /// Sent as `Authorization: Bearer` (tavily); usually `"$TAVILY_API_KEY"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
    /// Results returned to the model (1 to 20).
    pub max_results: usize,
    pub timeout_seconds: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkConfig>,
}

impl Default for WebSearchTool {
    fn default() -> Self {
        WebSearchTool {
            enabled: false,
            backend: "tavily".into(),
            base_url: String::new(),
            api_key: None,
            max_results: 5,
            timeout_seconds: 20,
            network: None,
        }
    }
}

/// One `hooks.<name>` block: `POST /hooks/<name>` with this token runs the
/// agent on `message`, where `{{body}}` stands for the request body.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct Hook {
    /// Sent as `Authorization: Bearer` or `X-Pinch-Token`; usually `"$HOOK_TOKEN"`.
    pub token: String,
    pub message: String,
    /// Where the answer goes (`"telegram:123"`); default: the last used chat.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skill: Option<String>,
    /// "provider/model" tried first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Larger bodies are refused with 413.
    pub max_body_bytes: usize,
}

impl Default for Hook {
    fn default() -> Self {
        Hook {
            token: String::new(),
            message: String::new(),
            to: None,
            skill: None,
            model: None,
            max_body_bytes: 64 * 1024,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct Logging {
    /// env_logger filter used when `RUST_LOG` is not set, e.g. "info".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
}
