//! The [`Client`] itself: where the server is, how to authenticate, and the plumbing every
//! endpoint shares (URL building, basic auth, timeouts, status checks, decoding).
//!
//! The endpoints themselves live in `api`.

use std::fmt;
use std::time::Duration;

use reqwest::{Method, RequestBuilder, Response, Url};
use serde::de::DeserializeOwned;
use tracing::{debug, trace};

use crate::error::{Error, truncate_body};

/// The user name OpenCode expects when `OPENCODE_SERVER_USERNAME` is not set.
pub const DEFAULT_USERNAME: &str = "opencode";

/// The timeout of every call but [`Client::prompt`] and the body of [`Client::events`], unless
/// [`Client::with_request_timeout`] sets another. The server is on loopback: anything slower
/// than this is a wedged server, not a slow network.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A client for one OpenCode server.
///
/// Every request carries HTTP basic auth. Cloning is cheap and clones share one connection
/// pool. `Debug` never shows the password.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
    username: String,
    password: String,
    request_timeout: Duration,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base.as_str())
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("request_timeout", &self.request_timeout)
            .finish()
    }
}

/// The two methods OpenCode's endpoints use.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Verb {
    Get,
    Post,
}

impl Verb {
    fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "GET",
            Verb::Post => "POST",
        }
    }

    fn method(self) -> Method {
        match self {
            Verb::Get => Method::GET,
            Verb::Post => Method::POST,
        }
    }
}

/// One request being made: its method and URL, and its path for naming it in errors.
pub(crate) struct Call {
    verb: Verb,
    url: Url,
}

impl Call {
    pub(crate) fn method(&self) -> &'static str {
        self.verb.as_str()
    }

    pub(crate) fn path(&self) -> String {
        self.url.path().to_owned()
    }
}

impl Client {
    /// A client for the server at `base_url` (such as `http://127.0.0.1:4096`), authenticating
    /// as [`DEFAULT_USERNAME`] with `password`.
    ///
    /// Fails when `base_url` is not an `http` or `https` URL.
    pub fn new(base_url: &str, password: impl Into<String>) -> Result<Self, Error> {
        let base = parse_base(base_url)?;
        // The server is always on loopback: a proxy from the environment (`HTTP_PROXY`, ...)
        // must never see this traffic, nor the password in it.
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .map_err(Error::Build)?;
        Ok(Client {
            http,
            base,
            username: DEFAULT_USERNAME.to_owned(),
            password: password.into(),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
        })
    }

    /// The same client, authenticating as `username`.
    pub fn with_username(mut self, username: impl Into<String>) -> Self {
        self.username = username.into();
        self
    }

    /// The same client, with `timeout` for every call but [`prompt`](Self::prompt) and the
    /// body of [`events`](Self::events).
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// The server's base URL.
    pub fn base_url(&self) -> &str {
        self.base.as_str()
    }

    /// The timeout of the short calls.
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    /// A call to the path made of `segments`, each percent-encoded as one path segment.
    pub(crate) fn call(&self, verb: Verb, segments: &[&str]) -> Call {
        let mut url = self.base.clone();
        // `parse_base` refused URLs that cannot be a base, so the segments are there.
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        Call { verb, url }
    }

    /// The request for `call`, with basic auth: the one place requests are built.
    pub(crate) fn request(&self, call: &Call) -> RequestBuilder {
        self.http
            .request(call.verb.method(), call.url.clone())
            .basic_auth(&self.username, Some(&self.password))
    }

    /// Sends `request`, bounded by `timeout` when given, and fails on a status outside 2xx.
    pub(crate) async fn send(
        &self,
        call: &Call,
        request: RequestBuilder,
        timeout: Option<Duration>,
    ) -> Result<Response, Error> {
        let request = match timeout {
            Some(timeout) => request.timeout(timeout),
            None => request,
        };
        debug!(method = call.method(), path = %call.url.path(), ?timeout, "opencode request");
        let response = request
            .send()
            .await
            .map_err(|source| transport_error(call, source, timeout))?;
        trace!(status = response.status().as_u16(), path = %call.url.path(), "opencode answer");
        check_status(call, response).await
    }

    /// Sends `request` and decodes the JSON answer as `T`.
    pub(crate) async fn send_json<T: DeserializeOwned>(
        &self,
        call: &Call,
        request: RequestBuilder,
        timeout: Option<Duration>,
    ) -> Result<T, Error> {
        let response = self.send(call, request, timeout).await?;
        let body = response
            .bytes()
            .await
            .map_err(|source| transport_error(call, source, timeout))?;
        serde_json::from_slice(&body).map_err(|source| Error::Decode {
            method: call.method(),
            path: call.path(),
            source,
        })
    }
}

/// Parses and checks the base URL.
fn parse_base(base_url: &str) -> Result<Url, Error> {
    let invalid = |reason: String| Error::InvalidBaseUrl {
        url: base_url.to_owned(),
        reason,
    };
    let url = Url::parse(base_url).map_err(|err| invalid(err.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
        return Err(invalid("not an http url".to_owned()));
    }
    Ok(url)
}

/// A failure before any answer: a timeout when the one given ran out, else a transport error.
pub(crate) fn transport_error(
    call: &Call,
    source: reqwest::Error,
    timeout: Option<Duration>,
) -> Error {
    match timeout {
        Some(after) if source.is_timeout() => Error::Timeout {
            method: call.method(),
            path: call.path(),
            after,
        },
        _ => Error::Transport {
            method: call.method(),
            path: call.path(),
            source,
        },
    }
}

/// Passes a 2xx answer through; turns any other into [`Error::Status`] with the body's start.
async fn check_status(call: &Call, response: Response) -> Result<Response, Error> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let body = response.text().await.unwrap_or_else(|err| {
        debug!(%err, "the body of an error answer could not be read");
        String::new()
    });
    Err(Error::Status {
        method: call.method(),
        path: call.path(),
        status: status.as_u16(),
        body: truncate_body(&body),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(base: &str) -> Client {
        Client::new(base, "s3cret").unwrap()
    }

    #[test]
    fn paths_join_the_base_with_encoded_segments() {
        let with_slash = client("http://127.0.0.1:4096/");
        let call = with_slash.call(Verb::Get, &["session", "ses_1", "message"]);
        assert_eq!(
            call.url.as_str(),
            "http://127.0.0.1:4096/session/ses_1/message"
        );

        let prefixed = client("http://127.0.0.1:4096/opencode");
        let call = prefixed.call(Verb::Post, &["session", "a/b"]);
        assert_eq!(call.path(), "/opencode/session/a%2Fb");
        assert_eq!(call.method(), "POST");
    }

    #[test]
    fn base_urls_that_are_not_http_are_refused() {
        for bad in [
            "127.0.0.1:4096",
            "mailto:x@y",
            "ftp://127.0.0.1/",
            "not a url",
        ] {
            let err = Client::new(bad, "pw").unwrap_err();
            assert!(matches!(err, Error::InvalidBaseUrl { .. }), "{bad}: {err}");
        }
    }

    #[test]
    fn debug_output_hides_the_password() {
        let shown = format!("{:?}", client("http://127.0.0.1:1").with_username("me"));
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(
            shown.contains("<redacted>") && shown.contains("\"me\""),
            "{shown}"
        );
    }
}
