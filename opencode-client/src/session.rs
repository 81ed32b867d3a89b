//! Server health, session info, session status and the session's diff.
//!
//! [`SessionInfo`] and [`FileDiff`] keep the JSON the server sent beside the decoded fields and
//! serialize back to it, like the message types.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::lenient;

/// The answer of `GET /global/health`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Health {
    /// Always `true` when the server answers.
    pub healthy: bool,
    /// The server's version (`1.18.33`).
    #[serde(default)]
    pub version: String,
}

/// When a session was created and last updated, in milliseconds since the epoch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct SessionTime {
    /// When the session was created.
    #[serde(default, deserialize_with = "lenient::u64_or_zero")]
    pub created: u64,
    /// When the session last changed.
    #[serde(default, deserialize_with = "lenient::u64_or_zero")]
    pub updated: u64,
}

#[derive(Deserialize)]
struct SessionWire {
    id: String,
    #[serde(default)]
    slug: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    directory: String,
    #[serde(default)]
    version: String,
    #[serde(default, rename = "parentID")]
    parent_id: Option<String>,
    #[serde(default)]
    time: SessionTime,
}

/// A session, as `POST /session` and `GET /session/{id}` answer it.
#[derive(Clone, Debug, PartialEq)]
pub struct SessionInfo {
    /// The session id (`ses_...`).
    pub id: String,
    /// A short readable name (`clever-panda`).
    pub slug: String,
    /// The title.
    pub title: String,
    /// The directory the session works in (`/workspace`).
    pub directory: String,
    /// The version of the server that made it.
    pub version: String,
    /// The parent session, for sessions a task tool started.
    pub parent_id: Option<String>,
    /// When it was created and last changed.
    pub time: SessionTime,
    raw: Value,
}

impl SessionInfo {
    /// The JSON the server sent.
    pub fn raw(&self) -> &Value {
        &self.raw
    }

    /// The JSON the server sent, taken out.
    pub fn into_raw(self) -> Value {
        self.raw
    }
}

impl<'de> Deserialize<'de> for SessionInfo {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Value::deserialize(d)?;
        let wire = SessionWire::deserialize(&raw).map_err(D::Error::custom)?;
        Ok(SessionInfo {
            id: wire.id,
            slug: wire.slug,
            title: wire.title,
            directory: wire.directory,
            version: wire.version,
            parent_id: wire.parent_id,
            time: wire.time,
            raw,
        })
    }
}

impl Serialize for SessionInfo {
    /// Serializes the JSON the server sent, unchanged.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.raw.serialize(s)
    }
}

/// What a session is doing, from `GET /session/status` or a `session.status` event.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
#[non_exhaustive]
pub enum SessionStatus {
    /// Waiting for a prompt.
    Idle,
    /// Working on a turn.
    Busy,
    /// Waiting to retry a failed model call.
    Retry {
        /// Which retry this is, from 1.
        #[serde(default)]
        attempt: u32,
        /// Why the last call failed.
        #[serde(default)]
        message: String,
        /// When the retry starts, in milliseconds since the epoch.
        #[serde(default, deserialize_with = "lenient::u64_or_zero")]
        next: u64,
    },
    /// A status this client does not know.
    #[serde(other)]
    Unknown,
}

#[derive(Deserialize)]
struct FileDiffWire {
    #[serde(default)]
    file: String,
    #[serde(default)]
    status: Option<String>,
    #[serde(default, deserialize_with = "lenient::u64_or_zero")]
    additions: u64,
    #[serde(default, deserialize_with = "lenient::u64_or_zero")]
    deletions: u64,
    #[serde(default)]
    patch: Option<String>,
}

/// One file of a session's diff (`GET /session/{id}/diff`).
#[derive(Clone, Debug, PartialEq)]
pub struct FileDiff {
    /// The file's path.
    pub file: String,
    /// `added`, `deleted` or `modified`, when given.
    pub status: Option<String>,
    /// Lines added.
    pub additions: u64,
    /// Lines deleted.
    pub deletions: u64,
    /// The unified diff, when given.
    pub patch: Option<String>,
    raw: Value,
}

impl FileDiff {
    /// The JSON the server sent.
    pub fn raw(&self) -> &Value {
        &self.raw
    }
}

impl<'de> Deserialize<'de> for FileDiff {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Value::deserialize(d)?;
        let wire = FileDiffWire::deserialize(&raw).map_err(D::Error::custom)?;
        Ok(FileDiff {
            file: wire.file,
            status: wire.status,
            additions: wire.additions,
            deletions: wire.deletions,
            patch: wire.patch,
            raw,
        })
    }
}

impl Serialize for FileDiff {
    /// Serializes the JSON the server sent, unchanged.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.raw.serialize(s)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn every_status_in_the_captures_decodes() {
        let decode = |v: Value| serde_json::from_value::<SessionStatus>(v).unwrap();
        assert_eq!(decode(json!({"type": "idle"})), SessionStatus::Idle);
        assert_eq!(decode(json!({"type": "busy"})), SessionStatus::Busy);
        assert_eq!(
            decode(
                json!({"type": "retry", "attempt": 1, "message": "fake upstream exploded",
                          "next": 1796304730182_u64, "action": {"reason": "x"}})
            ),
            SessionStatus::Retry {
                attempt: 1,
                message: "fake upstream exploded".into(),
                next: 1796304730182,
            }
        );
        assert_eq!(
            decode(json!({"type": "compacting"})),
            SessionStatus::Unknown
        );
    }

    #[test]
    fn a_diff_entry_keeps_its_json() {
        let raw = json!({"file": "out.txt", "additions": 1, "deletions": 0, "status": "added",
                         "patch": "+hi", "future": true});
        let diff: FileDiff = serde_json::from_value(raw.clone()).unwrap();
        assert_eq!((diff.file.as_str(), diff.additions), ("out.txt", 1));
        assert_eq!(serde_json::to_value(&diff).unwrap(), raw);
    }
}
