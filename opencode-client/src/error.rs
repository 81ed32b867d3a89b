//! The client's error type: what went wrong, on which endpoint, and what the server said.
//!
//! Every variant that comes from an HTTP exchange names the method and the path, so a log line
//! alone tells which call failed. Response bodies are cut to [`MAX_BODY_CHARS`] characters.

use std::time::Duration;

use crate::message::MessageError;

/// The most characters of a response body kept in an [`Error`].
pub const MAX_BODY_CHARS: usize = 500;

/// Everything a call to the OpenCode server can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The base URL given to [`Client::new`](crate::Client::new) is not an HTTP URL.
    #[error("invalid base url `{url}`: {reason}")]
    InvalidBaseUrl {
        /// The URL as given.
        url: String,
        /// Why it was refused.
        reason: String,
    },

    /// The underlying HTTP client could not be built.
    #[error("could not build the http client")]
    Build(#[source] reqwest::Error),

    /// The connection failed: refused, reset, or broken while the body was read.
    #[error("`{method} {path}` failed on the connection")]
    Transport {
        /// The HTTP method.
        method: &'static str,
        /// The request path.
        path: String,
        /// The transport failure.
        #[source]
        source: reqwest::Error,
    },

    /// The request took longer than the timeout it was given.
    #[error("`{method} {path}` timed out after {after:?}")]
    Timeout {
        /// The HTTP method.
        method: &'static str,
        /// The request path.
        path: String,
        /// The timeout that ran out.
        after: Duration,
    },

    /// The server answered with a status outside 2xx.
    #[error("`{method} {path}` answered {status}: {body}")]
    Status {
        /// The HTTP method.
        method: &'static str,
        /// The request path.
        path: String,
        /// The HTTP status code.
        status: u16,
        /// The start of the response body, at most [`MAX_BODY_CHARS`] characters.
        body: String,
    },

    /// `GET /session/{id}/message` answered 400. OpenCode 1.18 does this for every session that
    /// was sent a prompt with a `format`: it cannot encode its own stored user message. Read the
    /// messages one by one with [`Client::message`](crate::Client::message) or let
    /// [`Client::messages_or_known`](crate::Client::messages_or_known) do it.
    #[error(
        "`GET /session/{session_id}/message` answered 400, as OpenCode 1.18 does after a prompt \
         with structured output; read the messages one by one instead: {body}"
    )]
    MessagesUnlistable {
        /// The session whose messages could not be listed.
        session_id: String,
        /// The start of the response body, at most [`MAX_BODY_CHARS`] characters.
        body: String,
    },

    /// A 2xx answer whose body is not the JSON the endpoint promises.
    #[error("could not decode the answer of `{method} {path}`")]
    Decode {
        /// The HTTP method.
        method: &'static str,
        /// The request path.
        path: String,
        /// What did not match.
        #[source]
        source: serde_json::Error,
    },

    /// The model call failed: the assistant message carries an error in `info.error`.
    #[error("the model call failed: {0}")]
    Model(MessageError),

    /// An assistant message without `info.structured`, asked for its structured output.
    #[error("assistant message `{message_id}` carries no structured output")]
    NoStructuredOutput {
        /// The assistant message.
        message_id: String,
    },

    /// The structured output does not have the shape the caller asked for.
    #[error("the structured output of message `{message_id}` does not have the expected shape")]
    StructuredShape {
        /// The assistant message.
        message_id: String,
        /// What did not match.
        #[source]
        source: serde_json::Error,
    },
}

impl Error {
    /// The HTTP status the server answered with, when the error is an answer outside 2xx.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Status { status, .. } => Some(*status),
            Error::MessagesUnlistable { .. } => Some(400),
            _ => None,
        }
    }

    /// Whether the error is a timeout the caller gave running out.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout { .. })
    }
}

/// Cuts `body` to at most [`MAX_BODY_CHARS`] characters, on a character boundary; a cut body
/// ends with `…` (which counts as one of the characters).
pub(crate) fn truncate_body(body: &str) -> String {
    if body.chars().count() <= MAX_BODY_CHARS {
        return body.to_owned();
    }
    let mut cut: String = body.chars().take(MAX_BODY_CHARS - 1).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_bodies_are_kept_whole() {
        assert_eq!(truncate_body("not found"), "not found");
        let exact = "x".repeat(MAX_BODY_CHARS);
        assert_eq!(truncate_body(&exact), exact);
    }

    #[test]
    fn long_bodies_are_cut_on_a_character_boundary() {
        let body = "é".repeat(2_000);
        let cut = truncate_body(&body);
        assert_eq!(cut.chars().count(), MAX_BODY_CHARS);
        assert!(cut.ends_with('…'));
        assert!(cut.starts_with("éé"));
    }

    #[test]
    fn status_is_reported_for_answers_only() {
        let unlistable = Error::MessagesUnlistable {
            session_id: "ses_1".into(),
            body: String::new(),
        };
        assert_eq!(unlistable.status(), Some(400));
        let timeout = Error::Timeout {
            method: "GET",
            path: "/global/health".into(),
            after: Duration::from_millis(200),
        };
        assert_eq!(timeout.status(), None);
        assert!(timeout.is_timeout());
        assert_eq!(
            timeout.to_string(),
            "`GET /global/health` timed out after 200ms"
        );
    }
}
