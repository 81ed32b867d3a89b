//! The runner's configuration overlay: the one way the runner's own settings reach OpenCode.
//!
//! OpenCode merges the JSON in `OPENCODE_CONFIG_CONTENT` over the configuration files it finds,
//! so the runner never edits a user's `opencode.json`. The overlay makes an unattended call
//! possible: every tool that works inside the workspace is allowed, and everything that would
//! wait on a person (a question, a path outside the workspace, a detected loop) is denied, so
//! it fails at once instead of hanging. Sharing and autoupdate are off.

use serde_json::{Value, json};

/// The variable OpenCode reads the overlay from. The runner sets it; a host value is never
/// forwarded.
pub const CONFIG_CONTENT_VAR: &str = "OPENCODE_CONFIG_CONTENT";

/// A model provider the overlay adds, such as the built-in mock model.
#[derive(Debug, Clone, PartialEq)]
pub struct OverlayProvider {
    /// The provider id, the part of a model name before `/`.
    pub id: String,
    /// OpenCode's provider block for it.
    pub config: Value,
    /// The model to use as both the model and the small model, `<id>/<model>`.
    pub model: String,
}

/// The overlay as JSON text, with an optional extra provider.
pub fn overlay(provider: Option<&OverlayProvider>) -> String {
    let mut config = json!({
        "$schema": "https://opencode.ai/config.json",
        "autoupdate": false,
        "share": "disabled",
        "permission": {
            "read": "allow",
            "edit": "allow",
            "glob": "allow",
            "grep": "allow",
            "list": "allow",
            "bash": "allow",
            "task": "allow",
            "todowrite": "allow",
            "skill": "allow",
            "lsp": "allow",
            "webfetch": "allow",
            "websearch": "deny",
            "question": "deny",
            "external_directory": "deny",
            "doom_loop": "deny",
        },
    });
    if let Some(provider) = provider {
        config["provider"] = json!({ (provider.id.as_str()): provider.config });
        config["model"] = json!(provider.model);
        config["small_model"] = json!(provider.model);
    }
    config.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_that_waits_on_a_person_is_left_at_ask() {
        let config: Value = serde_json::from_str(&overlay(None)).unwrap();
        let permission = config["permission"].as_object().unwrap();
        assert!(permission.values().all(|action| action != "ask"));
        for waits_on_a_person in ["question", "external_directory", "doom_loop"] {
            assert_eq!(permission[waits_on_a_person], "deny", "{waits_on_a_person}");
        }
        assert_eq!(config["share"], "disabled");
        assert!(config.get("provider").is_none());
    }

    #[test]
    fn a_provider_becomes_the_model_and_the_small_model() {
        let provider = OverlayProvider {
            id: "mock".into(),
            config: json!({"options": {"baseURL": "http://127.0.0.1:9/v1"}}),
            model: "mock/echo".into(),
        };
        let config: Value = serde_json::from_str(&overlay(Some(&provider))).unwrap();
        assert_eq!(
            config["provider"]["mock"]["options"]["baseURL"],
            "http://127.0.0.1:9/v1"
        );
        assert_eq!(
            (&config["model"], &config["small_model"]),
            (&json!("mock/echo"), &json!("mock/echo"))
        );
    }
}
