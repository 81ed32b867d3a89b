//! The reconnecting event reader: OpenCode's `GET /event` byte stream in, [`Event`]s out.
//!
//! This module does no HTTP. A [`Connector`] (any `FnMut() -> impl Future<Output =
//! Result<impl Stream<Item = Result<Bytes, E>>, E2>>` closure qualifies) opens the byte stream;
//! [`read_events`] decodes it and, when the connection drops while the caller still reads,
//! opens it again with a doubling backoff, within a fixed budget of reconnections per reader.
//!
//! A drop is said once, as an [`Incoming::Reconnecting`] item, not logged: the caller decides
//! where it goes (the agent log renders it with [`crate::render::AgentLog::reconnecting`]).
//! Each attempt is logged at `debug`. Events sent while the connection was down are lost:
//! OpenCode does not replay them.

use std::error::Error as StdError;
use std::fmt::Write as _;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tracing::debug;

use crate::decoder::{DecodeError, DecoderOptions, Frame, FrameStream, StreamError};
use crate::event::{Event, EventError};

/// A boxed error from a connector, kept as the cause of [`ReadError::GaveUp`].
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Opens the byte stream of OpenCode's `GET /event`, once per connection.
///
/// Implemented by every `FnMut() -> Future<Output = Result<S, E>>` closure whose `S` is a
/// `Stream<Item = Result<Bytes, SE>>`; the connect error `E` and the stream error `SE` may
/// differ.
pub trait Connector {
    /// Why a connection could not be opened.
    type Error: StdError + Send + Sync + 'static;
    /// Why an open connection failed.
    type StreamError: StdError + Send + Sync + 'static;
    /// The body of one connection.
    type Stream: Stream<Item = Result<Bytes, Self::StreamError>>;
    /// The pending connection.
    type Future: Future<Output = Result<Self::Stream, Self::Error>>;

    /// Opens a new connection.
    fn connect(&mut self) -> Self::Future;
}

impl<F, Fut, S, E, SE> Connector for F
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<S, E>>,
    S: Stream<Item = Result<Bytes, SE>>,
    E: StdError + Send + Sync + 'static,
    SE: StdError + Send + Sync + 'static,
{
    type Error = E;
    type StreamError = SE;
    type Stream = S;
    type Future = Fut;

    fn connect(&mut self) -> Fut {
        self()
    }
}

/// How the reader decodes and reconnects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReaderOptions {
    /// The wait before the first reconnection after a drop; it doubles with each failed
    /// attempt. Default 250 ms.
    pub initial_delay: Duration,
    /// The longest wait between attempts. Default 5 s.
    pub max_delay: Duration,
    /// The most reconnections over the reader's whole life; when they are spent, the next drop
    /// ends it with [`ReadError::GaveUp`]. Default 5.
    pub max_reconnects: u32,
    /// The decoder's limits.
    pub decoder: DecoderOptions,
}

impl Default for ReaderOptions {
    fn default() -> Self {
        Self {
            initial_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(5),
            max_reconnects: 5,
            decoder: DecoderOptions::default(),
        }
    }
}

/// One item of [`read_events`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Incoming {
    /// An event.
    Event(Event),
    /// The connection dropped (or could not be opened) and the reader is reconnecting; said
    /// once per drop, before the first attempt.
    Reconnecting {
        /// Why, as one line.
        reason: String,
    },
}

/// Why [`read_events`] yielded an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// A frame broke the decoder's limits and was dropped; reading goes on.
    #[error("an event-stream frame was dropped")]
    Frame(#[source] DecodeError),
    /// A frame's data is not an OpenCode event; reading goes on.
    #[error("an event-stream frame was not understood")]
    Event(#[source] EventError),
    /// The connection was lost and could not be opened again; the stream ends after this.
    #[error("the event stream was lost and no reconnection succeeded (`{reconnects}` used)")]
    GaveUp {
        /// The reconnections used over the reader's life.
        reconnects: u32,
        /// The last connection error, if the last drop had one.
        #[source]
        source: Option<BoxError>,
    },
}

impl ReadError {
    /// Whether the stream ends after this error.
    pub fn is_fatal(&self) -> bool {
        matches!(self, ReadError::GaveUp { .. })
    }
}

/// Reads OpenCode's events through `connector`, reconnecting as [`ReaderOptions`] says.
///
/// The first connection is opened on the first poll. The stream ends only after
/// [`ReadError::GaveUp`]; otherwise it runs until the caller drops it, at the end of the call.
/// It is not `Unpin`: pin it (`std::pin::pin!`, `Box::pin`) to poll it.
pub fn read_events<C: Connector>(
    connector: C,
    options: ReaderOptions,
) -> impl Stream<Item = Result<Incoming, ReadError>> {
    let reader = Reader {
        connector,
        options,
        frames: None,
        state: State::Connect { first: true },
        reconnects: 0,
        failures: 0,
        delivered: false,
        last_error: None,
    };
    futures_util::stream::unfold(reader, |mut reader| async move {
        let item = reader.next_item().await?;
        Some((item, reader))
    })
}

/// Where the reader is.
enum State {
    /// No connection is open; the next one is the first, or a reconnection.
    Connect {
        first: bool,
    },
    Read,
    Done,
}

type Frames<C> = Pin<Box<FrameStream<<C as Connector>::Stream, Bytes>>>;

struct Reader<C: Connector> {
    connector: C,
    options: ReaderOptions,
    frames: Option<Frames<C>>,
    state: State,
    /// Reconnections used so far.
    reconnects: u32,
    /// Failed attempts since the last frame arrived, which set the next wait.
    failures: u32,
    /// Whether the open connection delivered a frame; one that drops without any is a
    /// failed attempt too.
    delivered: bool,
    last_error: Option<BoxError>,
}

impl<C: Connector> Reader<C> {
    async fn next_item(&mut self) -> Option<Result<Incoming, ReadError>> {
        loop {
            match self.state {
                State::Done => return None,
                State::Connect { first: true } => match self.connector.connect().await {
                    Ok(stream) => self.open(stream),
                    Err(error) => {
                        let reason = format!("could not connect: {}", one_line(&error));
                        return Some(Ok(self.dropped(reason, Some(Box::new(error)))));
                    }
                },
                State::Connect { first: false } => {
                    if let Err(error) = self.reconnect().await {
                        self.state = State::Done;
                        return Some(Err(error));
                    }
                }
                State::Read => return Some(self.read().await),
            }
        }
    }

    /// Reads the next frame; a drop becomes the notice, and the next poll reconnects.
    async fn read(&mut self) -> Result<Incoming, ReadError> {
        let frames = self
            .frames
            .as_mut()
            .expect("a connection is open while reading");
        match frames.next().await {
            Some(Ok(frame)) => {
                self.failures = 0;
                self.delivered = true;
                decode(&frame)
            }
            Some(Err(StreamError::Decode(error))) => Err(ReadError::Frame(error)),
            Some(Err(StreamError::Transport(error))) => {
                let reason = one_line(&error);
                Ok(self.dropped(reason, Some(Box::new(error))))
            }
            None => Ok(self.dropped("the server closed the stream".into(), None)),
        }
    }

    /// The notice for a connection lost, or never opened, with `error`.
    fn dropped(&mut self, reason: String, error: Option<BoxError>) -> Incoming {
        debug!(%reason, "event stream dropped");
        if self.frames.is_some() && !self.delivered {
            self.failures += 1;
        }
        self.last_error = error;
        self.frames = None;
        self.state = State::Connect { first: false };
        Incoming::Reconnecting { reason }
    }

    fn open(&mut self, stream: C::Stream) {
        self.frames = Some(Box::pin(FrameStream::new(stream, self.options.decoder)));
        self.delivered = false;
        self.state = State::Read;
    }

    /// Reconnects after the backoff, retrying failed attempts until the budget is spent.
    async fn reconnect(&mut self) -> Result<(), ReadError> {
        loop {
            self.wait_for_reconnect().await?;
            match self.connector.connect().await {
                Ok(stream) => {
                    self.open(stream);
                    return Ok(());
                }
                Err(error) => {
                    debug!(error = %one_line(&error), "event stream connection failed");
                    self.failures += 1;
                    self.last_error = Some(Box::new(error));
                }
            }
        }
    }

    /// Spends one reconnection and waits its backoff, or gives up when none is left.
    async fn wait_for_reconnect(&mut self) -> Result<(), ReadError> {
        if self.reconnects >= self.options.max_reconnects {
            return Err(ReadError::GaveUp {
                reconnects: self.reconnects,
                source: self.last_error.take(),
            });
        }
        self.reconnects += 1;
        let delay = backoff(&self.options, self.failures);
        debug!(
            attempt = self.reconnects,
            ?delay,
            "reconnecting the event stream"
        );
        tokio::time::sleep(delay).await;
        Ok(())
    }
}

/// The wait before a reconnection after `failures` failed attempts: the initial delay doubled
/// that many times, at most the maximum.
pub fn backoff(options: &ReaderOptions, failures: u32) -> Duration {
    let factor = 2u32.saturating_pow(failures);
    options
        .initial_delay
        .saturating_mul(factor)
        .min(options.max_delay)
}

fn decode(frame: &Frame) -> Result<Incoming, ReadError> {
    Event::from_json(&frame.data)
        .map(Incoming::Event)
        .map_err(ReadError::Event)
}

/// An error and its causes on one line, `outer: inner: ...`.
fn one_line(error: &dyn StdError) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let _ = write!(line, ": {cause}");
        source = cause.source();
    }
    line
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::io;
    use std::sync::{Arc, Mutex};

    use futures_util::stream::{self, BoxStream};
    use tokio::time::Instant;

    use super::*;

    type Script = Result<Vec<Result<Bytes, io::Error>>, io::Error>;

    type Body = BoxStream<'static, Result<Bytes, io::Error>>;
    type Calls = Arc<Mutex<Vec<Instant>>>;

    /// A connector that plays one scripted connection per call and records when each call
    /// came; past the script every connection is refused. A connection scripted with `true`
    /// stays open after its chunks instead of ending.
    fn scripted(
        script: Vec<(Script, bool)>,
    ) -> (
        impl FnMut() -> std::future::Ready<Result<Body, io::Error>>,
        Calls,
    ) {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let log = calls.clone();
        let mut script: VecDeque<_> = script.into();
        let connector = move || {
            log.lock().unwrap().push(Instant::now());
            let result = match script.pop_front() {
                Some((Ok(chunks), stay_open)) => {
                    let body = stream::iter(chunks);
                    let body: Body = if stay_open {
                        body.chain(stream::pending()).boxed()
                    } else {
                        body.boxed()
                    };
                    Ok(body)
                }
                Some((Err(error), _)) => Err(error),
                None => Err(io::Error::new(io::ErrorKind::ConnectionRefused, "refused")),
            };
            std::future::ready(result)
        };
        (connector, calls)
    }

    fn chunk(text: &str) -> Result<Bytes, io::Error> {
        Ok(Bytes::copy_from_slice(text.as_bytes()))
    }

    const CONNECTED: &str = "data: {\"type\":\"server.connected\",\"properties\":{}}\n\n";
    const HEARTBEAT: &str = "data: {\"type\":\"server.heartbeat\",\"properties\":{}}\n\n";

    fn describe(item: &Result<Incoming, ReadError>) -> String {
        match item {
            Ok(Incoming::Event(Event::ServerConnected)) => "connected".into(),
            Ok(Incoming::Event(Event::ServerHeartbeat)) => "heartbeat".into(),
            Ok(Incoming::Event(other)) => format!("{other:?}"),
            Ok(Incoming::Reconnecting { reason }) => format!("reconnecting: {reason}"),
            Err(error) => format!("error: {error}"),
        }
    }

    /// The first `take` items, described; a test that waits for more than come fails when the
    /// paused clock runs past an hour instead of hanging.
    async fn collect(
        connector: impl Connector,
        options: ReaderOptions,
        take: usize,
    ) -> Vec<String> {
        let events = read_events(connector, options).take(take);
        let items = events.map(|item| describe(&item)).collect();
        tokio::time::timeout(Duration::from_secs(3600), items)
            .await
            .expect("fewer items came")
    }

    fn gaps(calls: &Mutex<Vec<Instant>>) -> Vec<u128> {
        let calls = calls.lock().unwrap();
        calls
            .windows(2)
            .map(|w| (w[1] - w[0]).as_millis())
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn events_of_one_connection_come_through() {
        let (connector, _) = scripted(vec![(Ok(vec![chunk(CONNECTED), chunk(HEARTBEAT)]), true)]);
        let items = collect(connector, ReaderOptions::default(), 2).await;
        assert_eq!(items, ["connected", "heartbeat"]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_drop_is_said_once_and_the_reader_reconnects_after_250_ms() {
        let reset = Err(io::Error::new(io::ErrorKind::ConnectionReset, "reset"));
        let (connector, calls) = scripted(vec![
            (Ok(vec![chunk(CONNECTED), reset]), false),
            (Ok(vec![chunk(CONNECTED), chunk(HEARTBEAT)]), true),
        ]);
        let items = collect(connector, ReaderOptions::default(), 4).await;
        assert_eq!(
            items,
            ["connected", "reconnecting: reset", "connected", "heartbeat"]
        );
        assert_eq!(gaps(&calls), [250]);
    }

    #[tokio::test(start_paused = true)]
    async fn failed_attempts_double_the_wait_and_the_budget_ends_the_stream() {
        let (connector, calls) = scripted(vec![(Ok(vec![chunk(CONNECTED)]), false)]);
        let items = collect(connector, ReaderOptions::default(), 10).await;
        let expected = [
            "connected",
            "reconnecting: the server closed the stream",
            "error: the event stream was lost and no reconnection succeeded (`5` used)",
        ];
        assert_eq!(items, expected);
        assert_eq!(gaps(&calls), [250, 500, 1000, 2000, 4000]);
    }

    #[tokio::test(start_paused = true)]
    async fn the_wait_is_capped_at_the_maximum() {
        let (connector, calls) = scripted(vec![(Ok(vec![chunk(CONNECTED)]), false)]);
        let options = ReaderOptions {
            max_reconnects: 8,
            ..ReaderOptions::default()
        };
        collect(connector, options, 10).await;
        assert_eq!(gaps(&calls), [250, 500, 1000, 2000, 4000, 5000, 5000, 5000]);
    }

    #[tokio::test(start_paused = true)]
    async fn the_wait_starts_over_once_a_connection_delivers() {
        let refused = || Err(io::Error::new(io::ErrorKind::ConnectionRefused, "refused"));
        let (connector, calls) = scripted(vec![
            (Ok(vec![chunk(CONNECTED)]), false),
            (refused(), false),
            (Ok(vec![chunk(CONNECTED)]), false),
            (Ok(vec![chunk(CONNECTED)]), true),
        ]);
        let items = collect(connector, ReaderOptions::default(), 5).await;
        assert_eq!(
            items
                .iter()
                .filter(|i| i.starts_with("reconnecting"))
                .count(),
            2
        );
        assert_eq!(gaps(&calls), [250, 500, 250]);
    }

    #[tokio::test(start_paused = true)]
    async fn connections_that_close_without_a_frame_count_as_failed_attempts() {
        let (connector, calls) = scripted(vec![
            (Ok(vec![chunk(CONNECTED)]), false),
            (Ok(vec![]), false),
            (Ok(vec![]), false),
            (Ok(vec![chunk(CONNECTED)]), true),
        ]);
        let items = collect(connector, ReaderOptions::default(), 5).await;
        assert_eq!(
            items
                .iter()
                .filter(|i| i.starts_with("reconnecting"))
                .count(),
            3
        );
        assert_eq!(gaps(&calls), [250, 500, 1000]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_first_connection_that_fails_is_retried_within_the_budget() {
        let refused = Err(io::Error::new(io::ErrorKind::ConnectionRefused, "refused"));
        let (connector, calls) =
            scripted(vec![(refused, false), (Ok(vec![chunk(CONNECTED)]), true)]);
        let items = collect(connector, ReaderOptions::default(), 2).await;
        assert_eq!(
            items,
            ["reconnecting: could not connect: refused", "connected"]
        );
        assert_eq!(gaps(&calls), [250]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_frame_that_is_not_an_event_is_an_error_and_reading_goes_on() {
        let body = vec![chunk("data: {oops\n\n"), chunk(HEARTBEAT)];
        let (connector, _) = scripted(vec![(Ok(body), true)]);
        let items = collect(connector, ReaderOptions::default(), 2).await;
        assert_eq!(
            items,
            [
                "error: an event-stream frame was not understood",
                "heartbeat"
            ]
        );
    }

    #[test]
    fn the_reader_can_run_on_a_spawned_task() {
        fn assert_send<T: Send + 'static>(_: &T) {}
        let connect =
            || async { Ok::<_, io::Error>(stream::iter(Vec::<Result<Bytes, io::Error>>::new())) };
        assert_send(&read_events(connect, ReaderOptions::default()));
        assert_send(&crate::render::AgentLog::new("", None));
    }

    #[test]
    fn backoff_doubles_from_the_initial_delay() {
        let options = ReaderOptions::default();
        let waits: Vec<u128> = (0..7).map(|n| backoff(&options, n).as_millis()).collect();
        assert_eq!(waits, [250, 500, 1000, 2000, 4000, 5000, 5000]);
        assert_eq!(backoff(&options, u32::MAX), options.max_delay);
    }
}
