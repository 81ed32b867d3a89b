//! Reading the OpenCode event stream and rendering agent log lines.
//!
//! OpenCode's server publishes what its agent does as server-sent events on `GET /event`. This
//! crate turns that byte stream into log lines, in four layers that can each be used alone:
//!
//! - [`decoder`]: the `text/event-stream` format (WHATWG rules), bytes to [`Frame`]s, with a
//!   bound on line length so a broken server cannot exhaust memory;
//! - [`event`]: a frame's JSON to a typed [`Event`], tolerant of fields and types it does not
//!   know;
//! - [`reader`]: a [`Stream`](futures_util::Stream) of events over any [`Connector`] that opens
//!   the byte stream, reconnecting with backoff when the connection drops; this crate does no
//!   HTTP itself;
//! - [`render`]: the agent log of one model call, [`AgentLog`], which keeps the call's session
//!   and prints one line per meaningful event.
//!
//! ```
//! use evals_sse_logs::{AgentLog, Incoming, ReaderOptions, agent_prefix, read_events};
//! use futures_util::StreamExt;
//!
//! const BODY: &str = concat!(
//!     "data: {\"type\":\"server.connected\",\"properties\":{}}\n\n",
//!     "data: {\"type\":\"session.status\",",
//!     "\"properties\":{\"sessionID\":\"ses_1\",\"status\":{\"type\":\"busy\"}}}\n\n",
//! );
//!
//! // A connector opens `GET /event`; here, a canned body split mid-frame.
//! let connect = || async {
//!     let chunks: [Result<bytes::Bytes, std::io::Error>; 2] =
//!         [&BODY[..30], &BODY[30..]].map(|chunk| Ok(chunk.into()));
//!     Ok::<_, std::io::Error>(futures_util::stream::iter(chunks))
//! };
//!
//! let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build()?;
//! let lines = runtime.block_on(async {
//!     let mut log = AgentLog::new(agent_prefix(1, 4, "hello"), Some("ses_1"));
//!     let mut events = std::pin::pin!(read_events(connect, ReaderOptions::default()).take(2));
//!     let mut lines = Vec::new();
//!     while let Some(item) = events.next().await {
//!         match item? {
//!             Incoming::Event(event) => lines.extend(log.render(&event)),
//!             Incoming::Reconnecting { reason } => lines.extend(log.reconnecting(&reason)),
//!             _ => {}
//!         }
//!     }
//!     lines.extend(log.finish());
//!     Ok::<_, evals_sse_logs::ReadError>(lines)
//! })?;
//! assert_eq!(lines, ["[opencode-docker][worker 1/4][hello][agent] busy"]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod cut;
pub mod decoder;
pub mod event;
pub mod reader;
pub mod render;

pub use decoder::{DecodeError, Decoder, DecoderOptions, Frame, FrameStream};
pub use event::Event;
pub use reader::{Connector, Incoming, ReadError, ReaderOptions, read_events};
pub use render::{AgentLog, agent_prefix};
