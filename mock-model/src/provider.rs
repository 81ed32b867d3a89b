//! The OpenCode configuration that points OpenCode at this server: the provider block (under
//! `provider.mock`) and the `model`/`small_model` values.
//!
//! The block sets no `apiKey`: OpenCode then sends the key it holds for `mock` in `auth.json`
//! (or none), which is what a test of credential forwarding needs to see arrive.

use serde_json::{Map, Value, json};

use crate::scenario::SCENARIOS;

/// The provider id OpenCode knows this server by: models are `mock/<scenario>`.
pub const PROVIDER_ID: &str = "mock";
/// The AI SDK package OpenCode uses for the provider; it ships inside the OpenCode binary.
pub const PROVIDER_NPM: &str = "@ai-sdk/openai-compatible";

/// The limits declared for every model; the output limit becomes the request's `max_tokens`.
const CONTEXT_LIMIT: u64 = 128_000;
const OUTPUT_LIMIT: u64 = 4_096;

/// The provider block for a server at `base_url` (e.g. `http://127.0.0.1:PORT/v1`), with every
/// built-in scenario as a model.
pub fn opencode_provider(base_url: &str) -> Value {
    opencode_provider_with_models(base_url, SCENARIOS)
}

/// The provider block with exactly these model ids, for ids beyond the built-in names such as
/// `slow-3000` or `script:NAME` (OpenCode refuses a model its provider does not list).
pub fn opencode_provider_with_models<I>(base_url: &str, model_ids: I) -> Value
where
    I: IntoIterator,
    I::Item: AsRef<str>,
{
    let models: Map<String, Value> = model_ids
        .into_iter()
        .map(|id| (id.as_ref().to_owned(), model_entry(id.as_ref())))
        .collect();
    json!({
        "npm": PROVIDER_NPM,
        "name": "Mock model (evals-runner)",
        "options": {"baseURL": base_url},
        "models": models,
    })
}

fn model_entry(id: &str) -> Value {
    json!({
        "name": id,
        "tool_call": true,
        "limit": {"context": CONTEXT_LIMIT, "output": OUTPUT_LIMIT},
    })
}

/// The OpenCode model reference of a scenario: `mock/<model_id>`.
pub fn opencode_model(model_id: &str) -> String {
    format!("{PROVIDER_ID}/{model_id}")
}

/// The configuration fragment that makes `model_id` OpenCode's model and small model:
/// `{"model", "small_model", "provider": {"mock": ...}}`, the provider listing the built-in
/// scenarios and `model_id`.
pub fn opencode_config(base_url: &str, model_id: &str) -> Value {
    let mut ids: Vec<&str> = SCENARIOS.to_vec();
    if !ids.contains(&model_id) {
        ids.push(model_id);
    }
    let model = opencode_model(model_id);
    json!({
        "model": model,
        "small_model": model,
        "provider": {PROVIDER_ID: opencode_provider_with_models(base_url, ids)},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_block_lists_every_scenario_with_tool_calls() {
        let provider = opencode_provider("http://127.0.0.1:4000/v1");
        assert_eq!(provider["npm"], "@ai-sdk/openai-compatible");
        assert_eq!(
            provider["options"],
            json!({"baseURL": "http://127.0.0.1:4000/v1"})
        );
        let models = provider["models"].as_object().unwrap();
        assert_eq!(models.len(), SCENARIOS.len());
        insta::assert_json_snapshot!(models["echo"], @r#"
        {
          "limit": {
            "context": 128000,
            "output": 4096
          },
          "name": "echo",
          "tool_call": true
        }
        "#);
    }

    #[test]
    fn config_fragment_adds_a_model_beyond_the_builtins() {
        let config = opencode_config("http://127.0.0.1:4000/v1", "slow-200");
        assert_eq!(config["model"], "mock/slow-200");
        assert_eq!(config["small_model"], "mock/slow-200");
        let models = config["provider"]["mock"]["models"].as_object().unwrap();
        assert!(models.contains_key("slow-200") && models.contains_key("echo"));

        let builtin = opencode_config("http://127.0.0.1:4000/v1", "echo");
        assert_eq!(
            builtin["provider"]["mock"]["models"]
                .as_object()
                .unwrap()
                .len(),
            8
        );
    }
}
