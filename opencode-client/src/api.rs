//! The endpoints of OpenCode 1.18 the runner uses, one method each.
//!
//! Every method but [`Client::prompt`] and the body of [`Client::events`] is bounded by the
//! client's request timeout; [`Client::health`] takes its own, shorter one.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, TryStreamExt};
use reqwest::header::ACCEPT;
use serde::Serialize;
use tracing::debug;

use crate::ask::{PermissionReply, PermissionRequest, QuestionRequest};
use crate::client::{Client, Verb, transport_error};
use crate::error::Error;
use crate::message::{AssistantReply, MessageListing, MessageWithParts};
use crate::prompt::PromptRequest;
use crate::session::{FileDiff, Health, SessionInfo, SessionStatus};

#[derive(Serialize)]
struct CreateSession<'a> {
    title: &'a str,
}

#[derive(Serialize)]
struct PermissionAnswer<'a> {
    reply: PermissionReply,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
}

#[derive(Serialize)]
struct QuestionAnswers<'a> {
    answers: &'a [Vec<String>],
}

impl Client {
    /// `GET /global/health`, bounded by `timeout`.
    ///
    /// For readiness probes: a request sent just after the port opens can hang forever, so
    /// give a short timeout (a second or two) and retry on [`Error::Timeout`] and
    /// [`Error::Transport`].
    pub async fn health(&self, timeout: Duration) -> Result<Health, Error> {
        let call = self.call(Verb::Get, &["global", "health"]);
        self.send_json(&call, self.request(&call), Some(timeout))
            .await
    }

    /// `POST /session`: a new session with `title`. A title saves the extra model call
    /// OpenCode makes to invent one.
    pub async fn create_session(&self, title: &str) -> Result<SessionInfo, Error> {
        let call = self.call(Verb::Post, &["session"]);
        let request = self.request(&call).json(&CreateSession { title });
        self.send_json(&call, request, Some(self.request_timeout()))
            .await
    }

    /// `GET /session/{id}`: the session's info.
    pub async fn session(&self, session_id: &str) -> Result<SessionInfo, Error> {
        let call = self.call(Verb::Get, &["session", session_id]);
        self.send_json(&call, self.request(&call), Some(self.request_timeout()))
            .await
    }

    /// `POST /session/{id}/message`: sends a prompt and waits for the whole turn, with no
    /// timeout (a turn can take minutes; see [`prompt_with_timeout`](Self::prompt_with_timeout)).
    ///
    /// A failed model call still answers 200: check [`AssistantReply::error`]. With a
    /// JSON-schema format the object is in [`AssistantReply::structured`].
    pub async fn prompt(
        &self,
        session_id: &str,
        request: &PromptRequest,
    ) -> Result<AssistantReply, Error> {
        self.prompt_bounded(session_id, request, None).await
    }

    /// [`prompt`](Self::prompt), failing with [`Error::Timeout`] after `timeout`. The turn
    /// goes on in the server: [`abort`](Self::abort) the session to stop it.
    pub async fn prompt_with_timeout(
        &self,
        session_id: &str,
        request: &PromptRequest,
        timeout: Duration,
    ) -> Result<AssistantReply, Error> {
        self.prompt_bounded(session_id, request, Some(timeout))
            .await
    }

    async fn prompt_bounded(
        &self,
        session_id: &str,
        request: &PromptRequest,
        timeout: Option<Duration>,
    ) -> Result<AssistantReply, Error> {
        let call = self.call(Verb::Post, &["session", session_id, "message"]);
        let builder = self.request(&call).json(request);
        self.send_json(&call, builder, timeout).await
    }

    /// `POST /session/{id}/prompt_async`: sends a prompt and returns at once (204); follow the
    /// turn through [`events`](Self::events) or [`status`](Self::status).
    pub async fn prompt_async(
        &self,
        session_id: &str,
        request: &PromptRequest,
    ) -> Result<(), Error> {
        let call = self.call(Verb::Post, &["session", session_id, "prompt_async"]);
        let builder = self.request(&call).json(request);
        self.send(&call, builder, Some(self.request_timeout()))
            .await?;
        Ok(())
    }

    /// `GET /session/{id}/message`: every message of the session, in order.
    ///
    /// OpenCode 1.18 answers 400 here for any session that was sent a prompt with a `format`;
    /// that answer becomes [`Error::MessagesUnlistable`]. Use
    /// [`messages_or_known`](Self::messages_or_known) to fall back on reading messages one by
    /// one.
    pub async fn messages(&self, session_id: &str) -> Result<Vec<MessageWithParts>, Error> {
        let call = self.call(Verb::Get, &["session", session_id, "message"]);
        let listed = self.send_json(&call, self.request(&call), Some(self.request_timeout()));
        match listed.await {
            Err(Error::Status {
                status: 400, body, ..
            }) => Err(Error::MessagesUnlistable {
                session_id: session_id.to_owned(),
                body,
            }),
            other => other,
        }
    }

    /// The session's messages: listed by the server when it can, else read one by one from
    /// `known_ids` (each once, in the order given), such as the ids of the replies of
    /// [`prompt`](Self::prompt) ([`AssistantReply::message_ids`]).
    ///
    /// In the fallback an id the server answers with an error status or an undecodable body
    /// for is recorded in [`MessageListing::unreadable`] and the others are still read;
    /// transport failures and timeouts end the call.
    pub async fn messages_or_known<I, S>(
        &self,
        session_id: &str,
        known_ids: I,
    ) -> Result<MessageListing, Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        match self.messages(session_id).await {
            Ok(messages) => Ok(MessageListing {
                messages,
                listed: true,
                unreadable: Vec::new(),
            }),
            Err(Error::MessagesUnlistable { .. }) => {
                debug!(
                    session_id,
                    "messages not listable; reading the known ids one by one"
                );
                self.read_each(session_id, known_ids).await
            }
            Err(err) => Err(err),
        }
    }

    async fn read_each<I, S>(&self, session_id: &str, ids: I) -> Result<MessageListing, Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut listing = MessageListing {
            messages: Vec::new(),
            listed: false,
            unreadable: Vec::new(),
        };
        let mut seen = HashSet::new();
        for id in ids {
            let id = id.as_ref();
            if !seen.insert(id.to_owned()) {
                continue;
            }
            match self.message(session_id, id).await {
                Ok(message) => listing.messages.push(message),
                Err(err @ (Error::Status { .. } | Error::Decode { .. })) => {
                    debug!(session_id, message_id = id, %err, "known message unreadable");
                    listing.unreadable.push((id.to_owned(), err));
                }
                Err(err) => return Err(err),
            }
        }
        Ok(listing)
    }

    /// `GET /session/{id}/message/{messageID}`: one message. Works after structured output,
    /// when [`messages`](Self::messages) does not; see
    /// [`MessageWithParts::into_assistant_reply`] to read its structured output.
    pub async fn message(
        &self,
        session_id: &str,
        message_id: &str,
    ) -> Result<MessageWithParts, Error> {
        let call = self.call(Verb::Get, &["session", session_id, "message", message_id]);
        self.send_json(&call, self.request(&call), Some(self.request_timeout()))
            .await
    }

    /// `GET /session/status`: the status of every session that is not idle.
    ///
    /// OpenCode drops a session from this map when it goes idle, so a missing session is an
    /// idle one; [`session_status`](Self::session_status) reads it that way.
    pub async fn status(&self) -> Result<HashMap<String, SessionStatus>, Error> {
        let call = self.call(Verb::Get, &["session", "status"]);
        self.send_json(&call, self.request(&call), Some(self.request_timeout()))
            .await
    }

    /// The status of one session, [`SessionStatus::Idle`] when the server does not list it.
    pub async fn session_status(&self, session_id: &str) -> Result<SessionStatus, Error> {
        let mut statuses = self.status().await?;
        Ok(statuses.remove(session_id).unwrap_or(SessionStatus::Idle))
    }

    /// `POST /session/{id}/abort`: stops the running turn; the assistant message gets a
    /// `MessageAbortedError`. Answers whether the server accepted (`true` in the captures).
    pub async fn abort(&self, session_id: &str) -> Result<bool, Error> {
        let call = self.call(Verb::Post, &["session", session_id, "abort"]);
        self.send_json(&call, self.request(&call), Some(self.request_timeout()))
            .await
    }

    /// `GET /session/{id}/diff`: the files the session changed.
    pub async fn diff(&self, session_id: &str) -> Result<Vec<FileDiff>, Error> {
        let call = self.call(Verb::Get, &["session", session_id, "diff"]);
        self.send_json(&call, self.request(&call), Some(self.request_timeout()))
            .await
    }

    /// `GET /permission`: the permission requests waiting for a reply, in every session.
    pub async fn permissions(&self) -> Result<Vec<PermissionRequest>, Error> {
        let call = self.call(Verb::Get, &["permission"]);
        self.send_json(&call, self.request(&call), Some(self.request_timeout()))
            .await
    }

    /// `POST /permission/{requestID}/reply`: allows or refuses a permission request, with an
    /// optional `message` for the model. Refuse with [`PermissionReply::Reject`].
    pub async fn reply_permission(
        &self,
        request_id: &str,
        reply: PermissionReply,
        message: Option<&str>,
    ) -> Result<bool, Error> {
        let call = self.call(Verb::Post, &["permission", request_id, "reply"]);
        let builder = self
            .request(&call)
            .json(&PermissionAnswer { reply, message });
        self.send_json(&call, builder, Some(self.request_timeout()))
            .await
    }

    /// `GET /question`: the question requests waiting for answers, in every session.
    pub async fn questions(&self) -> Result<Vec<QuestionRequest>, Error> {
        let call = self.call(Verb::Get, &["question"]);
        self.send_json(&call, self.request(&call), Some(self.request_timeout()))
            .await
    }

    /// `POST /question/{requestID}/reply`: answers a question request, one answer per
    /// question in order, each the labels of the options picked.
    pub async fn reply_question(
        &self,
        request_id: &str,
        answers: &[Vec<String>],
    ) -> Result<bool, Error> {
        let call = self.call(Verb::Post, &["question", request_id, "reply"]);
        let builder = self.request(&call).json(&QuestionAnswers { answers });
        self.send_json(&call, builder, Some(self.request_timeout()))
            .await
    }

    /// `POST /question/{requestID}/reject`: refuses to answer; the `question` tool call fails.
    pub async fn reject_question(&self, request_id: &str) -> Result<bool, Error> {
        let call = self.call(Verb::Post, &["question", request_id, "reject"]);
        self.send_json(&call, self.request(&call), Some(self.request_timeout()))
            .await
    }

    /// `GET /event`: the server's SSE stream, as raw bytes, chunked as they arrive.
    ///
    /// Resolves once the server has answered with a 2xx status (within the request timeout),
    /// so events sent after that are not missed; the stream itself has no timeout and ends
    /// when the server closes it. Parsing the frames is the caller's business.
    pub async fn events(
        &self,
    ) -> Result<impl Stream<Item = Result<Bytes, Error>> + Send + use<>, Error> {
        let call = self.call(Verb::Get, &["event"]);
        let request = self.request(&call).header(ACCEPT, "text/event-stream");
        let timeout = self.request_timeout();
        // A reqwest timeout would cover the whole endless body, so only the wait for the
        // answer's head is bounded here.
        let answered = tokio::time::timeout(timeout, self.send(&call, request, None)).await;
        let response = answered.map_err(|_| Error::Timeout {
            method: call.method(),
            path: call.path(),
            after: timeout,
        })??;
        Ok(response
            .bytes_stream()
            .map_err(move |source| transport_error(&call, source, None)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send + 'static>(_: &T) {}

    #[test]
    fn the_futures_can_run_on_spawned_tasks() {
        let client = Client::new("http://127.0.0.1:1", "pw").unwrap();
        let request = PromptRequest::text("hi");
        // Owned copies make the futures `'static`, as a spawned task needs.
        let (c, r) = (client.clone(), request.clone());
        assert_send(&async move { c.prompt("ses_1", &r).await });
        let c = client.clone();
        assert_send(&async move { c.events().await.map(|_| ()) });
        let c = client.clone();
        assert_send(&async move { c.messages_or_known("ses_1", vec!["msg_1".to_owned()]).await });
        assert_send(&async move { client.health(Duration::from_secs(1)).await });
    }
}
