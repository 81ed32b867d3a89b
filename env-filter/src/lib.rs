//! Which host environment variables are forwarded into an OpenCode container.
//!
//! This crate owns one rule and nothing else: given a snapshot of the host environment, which
//! variable *names* travel into the container. A variable is forwarded when it is set, its value
//! is non-empty, and its name starts (case-sensitively) with one of [`DEFAULT_PREFIXES`] or with
//! one of the extra prefixes listed, comma-separated, in [`EXTRA_PREFIXES_VAR`]. The names in
//! [`RESERVED_NAMES`] are set by the runner itself and are never taken from the host, and the
//! runner's own settings ([`RUNNER_SETTINGS`]) configure the runner, not OpenCode, so they stay
//! behind too.
//!
//! Only names leave this crate. The values stay in the environment of the `docker` client, which
//! copies them into the container for each `-e NAME` it is given, so a value never appears on a
//! command line. The crate reads no process state: callers pass the environment in, which keeps
//! the rule testable and lets another runner apply it to any environment it likes.
//!
//! ```
//! use evals_env_filter::{EnvMap, forwarded};
//!
//! let env: EnvMap = [
//!     ("OPENAI_API_KEY", "sk-test"),
//!     ("GITHUB_TOKEN", "ghp-test"),
//!     ("PATH", "/usr/bin"),
//!     ("MY_PROVIDER_KEY", "secret"),
//!     ("OPENCODE_DOCKER_EXTRA_ENV_PREFIXES", "MY_"),
//! ]
//! .into_iter()
//! .map(|(name, value)| (name.into(), value.into()))
//! .collect();
//!
//! let forwarding = forwarded(&env)?;
//! assert_eq!(forwarding.names, ["MY_PROVIDER_KEY", "OPENAI_API_KEY"]);
//! # Ok::<(), evals_env_filter::Error>(())
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;

use tracing::debug;

/// A snapshot of an environment: variable names to values.
///
/// Names and values are kept as the operating system gives them; a name that is not UTF-8 can
/// never match a prefix and is never forwarded.
pub type EnvMap = BTreeMap<OsString, OsString>;

/// The prefixes forwarded by default: OpenCode's own settings and the usual model providers.
pub const DEFAULT_PREFIXES: [&str; 8] = [
    "OPENCODE_",
    "OPENAI_",
    "ANTHROPIC_",
    "GOOGLE_",
    "GEMINI_",
    "AZURE_",
    "PARASAIL_",
    "CLOUDFLARE_",
];

/// The variable that lists extra prefixes to forward, comma-separated, merged with the defaults.
pub const EXTRA_PREFIXES_VAR: &str = "OPENCODE_DOCKER_EXTRA_ENV_PREFIXES";

/// Names the runner sets in every container itself, so a host value for one is never forwarded:
/// the server's basic-auth credentials and the runner's configuration overlay.
pub const RESERVED_NAMES: [&str; 3] = [
    "OPENCODE_CONFIG_CONTENT",
    "OPENCODE_SERVER_PASSWORD",
    "OPENCODE_SERVER_USERNAME",
];

/// Variables that configure the runner on the host. They share OpenCode's prefix but mean
/// nothing to OpenCode, so they stay behind.
pub const RUNNER_SETTINGS: [&str; 4] = [
    EXTRA_PREFIXES_VAR,
    SERVER_LOG_LEVEL_VAR,
    SERVER_PRINT_LOGS_VAR,
    STREAM_CONTAINER_LOGS_VAR,
];

/// The server's log level when agent logs are off: `DEBUG`, `INFO` (the default), `WARN` or
/// `ERROR`.
pub const SERVER_LOG_LEVEL_VAR: &str = "OPENCODE_SERVER_LOG_LEVEL";

/// `1` starts the server with `--print-logs` even when agent logs are off.
pub const SERVER_PRINT_LOGS_VAR: &str = "OPENCODE_SERVER_PRINT_LOGS";

/// `0` stops the streaming of container output; any other value leaves it on.
pub const STREAM_CONTAINER_LOGS_VAR: &str = "OPENCODE_STREAM_CONTAINER_LOGS";

/// The outcome of applying the forwarding rule to one environment.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Forwarding {
    /// The names to forward, sorted so that the generated argv is deterministic.
    pub names: Vec<String>,
    /// Reserved names that the host had set and that were dropped; the caller warns about them.
    pub dropped_reserved: Vec<String>,
}

/// Why the rule could not be applied.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// An entry of [`EXTRA_PREFIXES_VAR`] holds a character no variable name can contain.
    #[error(
        "`{EXTRA_PREFIXES_VAR}` entry `{entry}` can never match a variable name: \
         use only letters, digits and `_`"
    )]
    InvalidExtraPrefix {
        /// The offending entry, trimmed.
        entry: String,
    },
    /// [`EXTRA_PREFIXES_VAR`] itself is not valid UTF-8.
    #[error("`{EXTRA_PREFIXES_VAR}` is not valid UTF-8")]
    ExtraPrefixesNotUtf8,
}

/// Applies the forwarding rule to `env` and returns the names to forward.
///
/// Fails only when [`EXTRA_PREFIXES_VAR`] holds an entry that could never match a name, so that
/// a typo in it is reported instead of silently forwarding nothing.
pub fn forwarded(env: &EnvMap) -> Result<Forwarding, Error> {
    let prefixes = prefixes(env)?;
    let mut forwarding = Forwarding::default();
    for (name, value) in env {
        let Some(name) = name.to_str() else { continue };
        if value.is_empty()
            || !prefixes
                .iter()
                .any(|prefix| name.starts_with(prefix.as_str()))
        {
            continue;
        }
        if RUNNER_SETTINGS.contains(&name) {
            debug!(
                name,
                "kept on the host: a setting of the runner, not of OpenCode"
            );
        } else if RESERVED_NAMES.contains(&name) {
            debug!(
                name,
                "host value dropped: the runner sets this variable itself"
            );
            forwarding.dropped_reserved.push(name.to_owned());
        } else {
            debug!(name, "forwarded");
            forwarding.names.push(name.to_owned());
        }
    }
    Ok(forwarding)
}

/// The default prefixes merged with the extra ones from `env`, without duplicates.
pub fn prefixes(env: &EnvMap) -> Result<BTreeSet<String>, Error> {
    let mut prefixes: BTreeSet<String> = DEFAULT_PREFIXES.iter().map(|p| p.to_string()).collect();
    let Some(extra) = env.get(&OsString::from(EXTRA_PREFIXES_VAR)) else {
        return Ok(prefixes);
    };
    let extra = extra.to_str().ok_or(Error::ExtraPrefixesNotUtf8)?;
    for entry in extra
        .split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
    {
        if !entry.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(Error::InvalidExtraPrefix {
                entry: entry.to_owned(),
            });
        }
        prefixes.insert(entry.to_owned());
    }
    Ok(prefixes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> EnvMap {
        pairs
            .iter()
            .map(|(name, value)| (name.into(), value.into()))
            .collect()
    }

    fn names(pairs: &[(&str, &str)]) -> Vec<String> {
        forwarded(&env(pairs)).unwrap().names
    }

    /// One row of the forwarding table: what it checks, the host environment, the names forwarded.
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a [&'a str]);

    #[test]
    fn forwarding_table() {
        let cases: &[Case] = &[
            (
                "host basics stay behind",
                &[("PATH", "/bin"), ("HOME", "/root")],
                &[],
            ),
            ("github token stays behind", &[("GITHUB_TOKEN", "ghp")], &[]),
            (
                "provider key is forwarded",
                &[("OPENAI_API_KEY", "sk")],
                &["OPENAI_API_KEY"],
            ),
            ("empty value stays behind", &[("OPENAI_API_KEY", "")], &[]),
            ("names are case-sensitive", &[("openai_api_key", "sk")], &[]),
            ("a bare prefix is not a name", &[("OPENAI", "sk")], &[]),
            (
                "every default prefix",
                &[
                    ("ANTHROPIC_API_KEY", "a"),
                    ("AZURE_KEY", "a"),
                    ("CLOUDFLARE_TOKEN", "a"),
                    ("GEMINI_API_KEY", "a"),
                    ("GOOGLE_API_KEY", "a"),
                    ("OPENCODE_LOG", "a"),
                    ("OPENAI_BASE_URL", "a"),
                    ("PARASAIL_KEY", "a"),
                ],
                &[
                    "ANTHROPIC_API_KEY",
                    "AZURE_KEY",
                    "CLOUDFLARE_TOKEN",
                    "GEMINI_API_KEY",
                    "GOOGLE_API_KEY",
                    "OPENAI_BASE_URL",
                    "OPENCODE_LOG",
                    "PARASAIL_KEY",
                ],
            ),
            (
                "an extra prefix forwards its variables",
                &[
                    (EXTRA_PREFIXES_VAR, "MY_"),
                    ("MY_PROVIDER_KEY", "k"),
                    ("MYOTHER", "k"),
                ],
                &["MY_PROVIDER_KEY"],
            ),
            (
                "an extra prefix that is a full name",
                &[
                    (EXTRA_PREFIXES_VAR, "DEEPSEEK_API_KEY"),
                    ("DEEPSEEK_API_KEY", "k"),
                ],
                &["DEEPSEEK_API_KEY"],
            ),
            (
                "extra entries are trimmed and empty ones ignored",
                &[
                    (EXTRA_PREFIXES_VAR, " ,A_ , ,B_,"),
                    ("A_KEY", "1"),
                    ("B_KEY", "2"),
                ],
                &["A_KEY", "B_KEY"],
            ),
            (
                "the runner's own settings stay behind",
                &[
                    (SERVER_LOG_LEVEL_VAR, "WARN"),
                    (SERVER_PRINT_LOGS_VAR, "1"),
                    (STREAM_CONTAINER_LOGS_VAR, "0"),
                ],
                &[],
            ),
            (
                "reserved names stay behind",
                &[
                    ("OPENCODE_SERVER_PASSWORD", "host-password"),
                    ("OPENCODE_SERVER_USERNAME", "host-user"),
                    ("OPENCODE_CONFIG_CONTENT", "{}"),
                ],
                &[],
            ),
        ];
        for (what, pairs, expected) in cases {
            assert_eq!(names(pairs), *expected, "{what}");
        }
    }

    #[test]
    fn output_is_sorted_whatever_the_input_order() {
        let forwarded = names(&[("OPENAI_Z", "1"), ("ANTHROPIC_A", "1"), ("OPENAI_A", "1")]);
        assert_eq!(forwarded, ["ANTHROPIC_A", "OPENAI_A", "OPENAI_Z"]);
    }

    #[test]
    fn reserved_host_values_are_reported_for_a_warning() {
        let forwarding = forwarded(&env(&[("OPENCODE_SERVER_PASSWORD", "x")])).unwrap();
        assert_eq!(forwarding.dropped_reserved, ["OPENCODE_SERVER_PASSWORD"]);
    }

    #[test]
    fn duplicate_extra_prefixes_fold_into_one() {
        let env = env(&[(EXTRA_PREFIXES_VAR, "MY_,MY_, MY_,OPENAI_")]);
        let extra: Vec<_> = prefixes(&env)
            .unwrap()
            .into_iter()
            .filter(|p| p.starts_with("MY"))
            .collect();
        assert_eq!(extra, ["MY_"]);
        assert_eq!(prefixes(&env).unwrap().len(), DEFAULT_PREFIXES.len() + 1);
    }

    #[test]
    fn impossible_extra_prefixes_are_errors_naming_the_entry() {
        for entry in ["MY KEY", "A=B", "KEY-", "ÄPI_"] {
            let err = forwarded(&env(&[(EXTRA_PREFIXES_VAR, entry)])).unwrap_err();
            assert_eq!(
                err,
                Error::InvalidExtraPrefix {
                    entry: entry.to_owned()
                }
            );
            assert!(err.to_string().contains(&format!("`{entry}`")), "{err}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn non_utf8_names_are_never_forwarded() {
        use std::os::unix::ffi::OsStringExt;
        let mut env = env(&[("OPENAI_OK", "1")]);
        env.insert(OsString::from_vec(b"OPENAI_\xff".to_vec()), "1".into());
        assert_eq!(forwarded(&env).unwrap().names, ["OPENAI_OK"]);
    }
}
