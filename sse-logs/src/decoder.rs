//! The `text/event-stream` decoder: bytes in, frames out, following the WHATWG rules.
//!
//! This module owns the wire format and nothing above it: it knows lines, fields and the
//! dispatch rule, not OpenCode's JSON (see [`crate::event`]). [`Decoder`] is incremental and
//! synchronous, so it can be fed chunks split at any byte, even inside a UTF-8 character or
//! between the CR and LF of one line end; [`FrameStream`] drives it over a stream of byte chunks.
//!
//! Every line (and every event's joined data) is bounded by [`DecoderOptions::max_line_bytes`],
//! [`DEFAULT_MAX_LINE_BYTES`] unless configured, so a server that never ends a line costs an
//! error, not unbounded memory.

use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use futures_util::Stream;
use memchr::memchr2;
use pin_project_lite::pin_project;
use tracing::debug;

/// The default bound on one line, and on one event's joined data: 16 MiB.
pub const DEFAULT_MAX_LINE_BYTES: usize = 16 * 1024 * 1024;

/// The UTF-8 byte order mark, ignored once at the very start of a stream.
const BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];

/// A pending-line buffer that grew past this is released after use rather than kept.
const RETAINED_LINE_CAPACITY: usize = 64 * 1024;

/// One dispatched event of the stream.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Frame {
    /// The event type: the last `event` field of the block, `message` when there was none.
    pub event: String,
    /// The `data` lines of the block, joined with `\n`.
    pub data: String,
    /// The last event id seen on the stream so far (the empty string when none was set).
    pub id: String,
}

/// The decoder's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecoderOptions {
    /// The most bytes one line may hold (its line end not counted), and the most bytes one
    /// event's joined data may reach. Past it the decoder reports [`DecodeError::TooLong`].
    pub max_line_bytes: usize,
}

impl Default for DecoderOptions {
    fn default() -> Self {
        Self {
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
        }
    }
}

/// Why the decoder could not go on with the current event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// A line, or an event's joined data, passed the configured limit. The line and the event
    /// it belongs to are dropped; decoding resumes after the line's end.
    #[error("an event-stream line or event is longer than the limit of `{limit}` bytes")]
    TooLong {
        /// The configured limit, in bytes.
        limit: usize,
    },
}

/// What the byte-order-mark check at the start of the stream has seen so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BomCheck {
    /// This many leading bytes matched the BOM so far.
    Matching(usize),
    Done,
}

/// An incremental `text/event-stream` decoder.
///
/// Feed it byte chunks in order with [`Decoder::feed`]; it yields each frame as soon as the
/// blank line that ends it arrives. A block that the stream never ends with a blank line is
/// never dispatched, and a block without any `data` line is not dispatched either.
#[derive(Debug)]
pub struct Decoder {
    limit: usize,
    bom: BomCheck,
    /// The bytes of a line whose end has not arrived yet.
    partial: Vec<u8>,
    /// The last byte seen ended a line with CR: an LF right after it belongs to that line end.
    after_cr: bool,
    /// The current line passed the limit: its remaining bytes are dropped up to its end.
    skipping: bool,
    /// The current event lost a line to the limit: its lines are dropped up to the blank line.
    discarding: bool,
    /// Bytes a dropped [`Frames`] iterator left unread, parsed first on the next feed.
    backlog: Vec<u8>,
    event: String,
    data: String,
    has_data: bool,
    last_id: String,
    retry: Option<Duration>,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new(DecoderOptions::default())
    }
}

impl Decoder {
    /// A decoder at the start of a stream.
    pub fn new(options: DecoderOptions) -> Self {
        Self {
            limit: options.max_line_bytes,
            bom: BomCheck::Matching(0),
            partial: Vec::new(),
            after_cr: false,
            skipping: false,
            discarding: false,
            backlog: Vec::new(),
            event: String::new(),
            data: String::new(),
            has_data: false,
            last_id: String::new(),
            retry: None,
        }
    }

    /// Decodes the next chunk of the stream, yielding the frames (or errors) it completes.
    ///
    /// The iterator is lazy; bytes it has not read when it is dropped are kept and decoded
    /// first by the next call, so no input is ever lost.
    pub fn feed<'a>(&'a mut self, chunk: &'a [u8]) -> Frames<'a> {
        let backlog = std::mem::take(&mut self.backlog);
        Frames {
            decoder: self,
            backlog,
            backlog_pos: 0,
            chunk,
            chunk_pos: 0,
        }
    }

    /// The reconnection time the stream asked for with its last valid `retry` field, if any.
    pub fn retry(&self) -> Option<Duration> {
        self.retry
    }

    /// The last event id the stream set with an `id` field (empty when none was set).
    pub fn last_event_id(&self) -> &str {
        &self.last_id
    }

    /// Decodes from `input` until one frame or error is complete or the input runs out;
    /// returns how many bytes it consumed and what it completed.
    pub(crate) fn decode_next(
        &mut self,
        input: &[u8],
    ) -> (usize, Option<Result<Frame, DecodeError>>) {
        let mut pos = self.check_bom(input);
        while pos < input.len() {
            if std::mem::take(&mut self.after_cr) && input[pos] == b'\n' {
                pos += 1;
                continue;
            }
            let rest = &input[pos..];
            let Some(end) = memchr2(b'\n', b'\r', rest) else {
                return (input.len(), self.keep_partial(rest).err().map(Err));
            };
            self.after_cr = rest[end] == b'\r';
            pos += end + 1;
            if let Some(item) = self.end_line(&rest[..end]) {
                return (pos, Some(item));
            }
        }
        (pos, None)
    }

    /// Consumes the leading bytes of `input` that belong to a byte order mark at the very start
    /// of the stream; returns how many it consumed.
    fn check_bom(&mut self, input: &[u8]) -> usize {
        let BomCheck::Matching(mut matched) = self.bom else {
            return 0;
        };
        let mut pos = 0;
        while matched < BOM.len() && pos < input.len() && input[pos] == BOM[matched] {
            matched += 1;
            pos += 1;
        }
        if matched == BOM.len() {
            self.bom = BomCheck::Done;
        } else if pos < input.len() {
            // Not a BOM after all: the bytes that looked like one start the first line. They
            // are neither CR nor LF, so they can only be the start of a partial line.
            self.bom = BomCheck::Done;
            self.partial.extend_from_slice(&BOM[..matched]);
        } else {
            self.bom = BomCheck::Matching(matched);
        }
        pos
    }

    /// Keeps the start of a line whose end has not arrived.
    fn keep_partial(&mut self, bytes: &[u8]) -> Result<(), DecodeError> {
        if self.skipping || bytes.is_empty() {
            return Ok(());
        }
        if self.partial.len() + bytes.len() > self.limit {
            self.skipping = true;
            return Err(self.too_long());
        }
        self.partial.extend_from_slice(bytes);
        Ok(())
    }

    /// Handles a line whose end was just found; `tail` is its part in the current input.
    fn end_line(&mut self, tail: &[u8]) -> Option<Result<Frame, DecodeError>> {
        if std::mem::take(&mut self.skipping) {
            return None;
        }
        if self.partial.is_empty() {
            return self.line(tail);
        }
        let mut line = std::mem::take(&mut self.partial);
        line.extend_from_slice(tail);
        let result = self.line(&line);
        line.clear();
        if line.capacity() <= RETAINED_LINE_CAPACITY {
            self.partial = line;
        }
        result
    }

    /// Interprets one complete line.
    fn line(&mut self, line: &[u8]) -> Option<Result<Frame, DecodeError>> {
        if line.len() > self.limit {
            return Some(Err(self.too_long()));
        }
        if line.is_empty() {
            return self.dispatch().map(Ok);
        }
        if self.discarding || line[0] == b':' {
            return None;
        }
        let (name, value) = match memchr::memchr(b':', line) {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &b""[..]),
        };
        self.field(name, value).err().map(Err)
    }

    /// Applies one field to the event being built.
    fn field(&mut self, name: &[u8], value: &[u8]) -> Result<(), DecodeError> {
        match name {
            b"data" => return self.push_data(value),
            b"event" => self.event = String::from_utf8_lossy(value).into_owned(),
            b"id" if !value.contains(&0) => self.last_id = String::from_utf8_lossy(value).into(),
            b"retry" => self.set_retry(value),
            _ => {}
        }
        Ok(())
    }

    fn push_data(&mut self, value: &[u8]) -> Result<(), DecodeError> {
        if self.data.len() + value.len() + 1 > self.limit {
            return Err(self.too_long());
        }
        self.data.reserve(value.len() + 1);
        push_utf8(&mut self.data, value);
        self.data.push('\n');
        self.has_data = true;
        Ok(())
    }

    fn set_retry(&mut self, value: &[u8]) {
        if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
            return;
        }
        // All digits, so only an overflow can fail; an absurd value is ignored like a bad one.
        let parsed = std::str::from_utf8(value).ok().and_then(|s| s.parse().ok());
        if let Some(millis) = parsed {
            self.retry = Some(Duration::from_millis(millis));
        }
    }

    /// The blank line: hands out the event built so far, if it has data.
    fn dispatch(&mut self) -> Option<Frame> {
        let event = std::mem::take(&mut self.event);
        let had_data = std::mem::take(&mut self.has_data);
        if std::mem::take(&mut self.discarding) || !had_data {
            return None;
        }
        let mut data = std::mem::take(&mut self.data);
        data.pop();
        let event = if event.is_empty() {
            "message".to_owned()
        } else {
            event
        };
        Some(Frame {
            event,
            data,
            id: self.last_id.clone(),
        })
    }

    /// Reports the limit and drops the event being built, which can no longer be whole.
    fn too_long(&mut self) -> DecodeError {
        debug!(
            limit = self.limit,
            "event-stream line too long, dropping the event"
        );
        self.partial = Vec::new();
        self.data = String::new();
        self.event.clear();
        self.has_data = false;
        self.discarding = true;
        DecodeError::TooLong { limit: self.limit }
    }
}

/// Appends `bytes` decoded as UTF-8, invalid sequences replaced by U+FFFD as the WHATWG
/// decoder does. Valid input, the usual case, takes the fast validator alone.
fn push_utf8(out: &mut String, bytes: &[u8]) {
    match std::str::from_utf8(bytes) {
        Ok(text) => out.push_str(text),
        Err(_) => out.push_str(&String::from_utf8_lossy(bytes)),
    }
}

/// The frames one [`Decoder::feed`] call completes; see there.
#[derive(Debug)]
pub struct Frames<'a> {
    decoder: &'a mut Decoder,
    backlog: Vec<u8>,
    backlog_pos: usize,
    chunk: &'a [u8],
    chunk_pos: usize,
}

impl Iterator for Frames<'_> {
    type Item = Result<Frame, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        while self.backlog_pos < self.backlog.len() {
            let (used, item) = self.decoder.decode_next(&self.backlog[self.backlog_pos..]);
            self.backlog_pos += used;
            if item.is_some() {
                return item;
            }
        }
        while self.chunk_pos < self.chunk.len() {
            let (used, item) = self.decoder.decode_next(&self.chunk[self.chunk_pos..]);
            self.chunk_pos += used;
            if item.is_some() {
                return item;
            }
        }
        None
    }
}

impl Drop for Frames<'_> {
    fn drop(&mut self) {
        let mut unread = std::mem::take(&mut self.backlog);
        unread.drain(..self.backlog_pos);
        unread.extend_from_slice(&self.chunk[self.chunk_pos..]);
        self.decoder.backlog = unread;
    }
}

/// Why a [`FrameStream`] produced an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StreamError<E> {
    /// The bytes broke a limit of the decoder; later frames still come.
    #[error("could not decode the event stream")]
    Decode(#[source] DecodeError),
    /// The underlying byte stream failed.
    #[error("the event stream's connection failed")]
    Transport(#[source] E),
}

pin_project! {
    /// Frames decoded from a stream of byte chunks.
    ///
    /// Ends when the byte stream ends; a last block without its blank line is not dispatched.
    /// A transport error is passed on as [`StreamError::Transport`] and the stream goes on
    /// polling the source, which decides whether more bytes come.
    pub struct FrameStream<S, B> {
        #[pin]
        source: S,
        decoder: Decoder,
        chunk: Option<B>,
        offset: usize,
    }
}

impl<S, B> FrameStream<S, B> {
    /// Decodes `source` with the given limits.
    pub fn new(source: S, options: DecoderOptions) -> Self {
        Self {
            source,
            decoder: Decoder::new(options),
            chunk: None,
            offset: 0,
        }
    }

    /// The decoder, for its [`Decoder::retry`] and [`Decoder::last_event_id`].
    pub fn decoder(&self) -> &Decoder {
        &self.decoder
    }
}

impl<S, B, E> Stream for FrameStream<S, B>
where
    S: Stream<Item = Result<B, E>>,
    B: AsRef<[u8]>,
{
    type Item = Result<Frame, StreamError<E>>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut this = self.project();
        loop {
            if let Some(chunk) = this.chunk.as_ref() {
                let bytes = &chunk.as_ref()[*this.offset..];
                let (used, item) = this.decoder.decode_next(bytes);
                *this.offset += used;
                if *this.offset == chunk.as_ref().len() {
                    *this.chunk = None;
                }
                if let Some(item) = item {
                    return Poll::Ready(Some(item.map_err(StreamError::Decode)));
                }
                continue;
            }
            match ready!(this.source.as_mut().poll_next(cx)) {
                Some(Ok(chunk)) => {
                    *this.chunk = Some(chunk);
                    *this.offset = 0;
                }
                Some(Err(error)) => return Poll::Ready(Some(Err(StreamError::Transport(error)))),
                None => return Poll::Ready(None),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(event: &str, data: &str, id: &str) -> Frame {
        Frame {
            event: event.into(),
            data: data.into(),
            id: id.into(),
        }
    }

    /// Decodes `input` in chunks cut at `cuts` (ascending offsets).
    fn decode_cut(
        input: &[u8],
        cuts: &[usize],
        options: DecoderOptions,
    ) -> Vec<Result<Frame, DecodeError>> {
        let mut decoder = Decoder::new(options);
        let mut out = Vec::new();
        let mut start = 0;
        for &cut in cuts.iter().chain(std::iter::once(&input.len())) {
            out.extend(decoder.feed(&input[start..cut]));
            start = cut;
        }
        out
    }

    fn decode(input: &[u8]) -> Vec<Frame> {
        decode_cut(input, &[], DecoderOptions::default())
            .into_iter()
            .map(Result::unwrap)
            .collect()
    }

    #[test]
    fn lf_cr_and_crlf_all_end_lines() {
        let expected = vec![frame("message", "a", ""), frame("message", "b", "")];
        assert_eq!(decode(b"data: a\n\ndata: b\n\n"), expected);
        assert_eq!(decode(b"data: a\r\rdata: b\r\r"), expected);
        assert_eq!(decode(b"data: a\r\n\r\ndata: b\r\n\r\n"), expected);
        assert_eq!(decode(b"data: a\r\n\ndata: b\r\r\n"), expected);
    }

    #[test]
    fn cr_at_chunk_end_and_lf_at_next_start_are_one_line_end() {
        // Were the CR and LF two line ends, the blank line would dispatch `a` alone and `b`
        // would become a second frame.
        let input = b"data: a\r\ndata: b\r\n\r\n";
        for cut in 0..=input.len() {
            let frames = decode_cut(input, &[cut], DecoderOptions::default());
            assert_eq!(
                frames,
                vec![Ok(frame("message", "a\nb", ""))],
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn data_lines_join_with_lf_and_lose_one_leading_space() {
        let frames = decode(b"data:one\ndata:  two\ndata\ndata: \n\n");
        assert_eq!(frames, vec![frame("message", "one\n two\n\n", "")]);
    }

    #[test]
    fn comments_are_ignored() {
        let frames = decode(b": hello\n:\ndata: x\n: between\n\n:only a comment\n\n");
        assert_eq!(frames, vec![frame("message", "x", "")]);
    }

    #[test]
    fn event_field_names_the_frame_and_resets_after_dispatch() {
        let frames = decode(b"event: ping\ndata: 1\n\ndata: 2\n\n");
        assert_eq!(
            frames,
            vec![frame("ping", "1", ""), frame("message", "2", "")]
        );
    }

    #[test]
    fn id_persists_and_is_ignored_when_it_holds_nul() {
        let frames = decode(b"id: 7\ndata: a\n\ndata: b\n\nid: x\0y\ndata: c\n\nid\ndata: d\n\n");
        let ids: Vec<_> = frames.iter().map(|f| f.id.as_str()).collect();
        assert_eq!(ids, ["7", "7", "7", ""]);
    }

    #[test]
    fn retry_takes_digits_only() {
        let mut decoder = Decoder::default();
        let cases: [(&[u8], Option<u64>); 6] = [
            (b"retry: 1500\n", Some(1500)),
            (b"retry: +5\n", Some(1500)),
            (b"retry: 5s\n", Some(1500)),
            (b"retry:\n", Some(1500)),
            (b"retry: 99999999999999999999999\n", Some(1500)),
            (b"retry:20\n", Some(20)),
        ];
        for (line, expected) in cases {
            assert_eq!(decoder.feed(line).count(), 0);
            assert_eq!(
                decoder.retry(),
                expected.map(Duration::from_millis),
                "{line:?}"
            );
        }
    }

    #[test]
    fn a_bom_at_the_start_is_stripped_once_even_when_split() {
        let input = b"\xEF\xBB\xBFdata: a\n\n\xEF\xBB\xBFdata: b\n\n";
        for cut in 0..=input.len() {
            let frames = decode_cut(input, &[cut], DecoderOptions::default());
            // The second BOM is inside the stream, so it is part of a field name there and the
            // line is an unknown field, ignored.
            assert_eq!(frames, vec![Ok(frame("message", "a", ""))], "cut at {cut}");
        }
    }

    #[test]
    fn bytes_that_only_start_like_a_bom_are_kept() {
        assert_eq!(
            decode(b"\xEFdata: a\n\ndata: b\n\n"),
            vec![frame("message", "b", "")]
        );
        let frames = decode(b"\xEF\xBB: comment\ndata: a\n\n");
        assert_eq!(frames, vec![frame("message", "a", "")]);
    }

    #[test]
    fn a_utf8_character_split_across_chunks_survives() {
        let input = "data: h\u{e9}llo \u{1F600}\n\n".as_bytes();
        for cut in 0..=input.len() {
            let frames = decode_cut(input, &[cut], DecoderOptions::default());
            assert_eq!(
                frames,
                vec![Ok(frame("message", "h\u{e9}llo \u{1F600}", ""))]
            );
        }
    }

    #[test]
    fn invalid_utf8_becomes_replacement_characters() {
        assert_eq!(
            decode(b"data: a\xFFb\n\n"),
            vec![frame("message", "a\u{FFFD}b", "")]
        );
    }

    #[test]
    fn a_block_without_data_is_not_dispatched() {
        assert_eq!(decode(b"event: x\n\nid: 1\n\n\n\n"), vec![]);
        // Its event type does not leak into the next frame.
        assert_eq!(
            decode(b"event: x\n\ndata: y\n\n"),
            vec![frame("message", "y", "")]
        );
    }

    #[test]
    fn an_unterminated_last_block_is_not_dispatched() {
        assert_eq!(
            decode(b"data: a\n\ndata: b\n"),
            vec![frame("message", "a", "")]
        );
        assert_eq!(
            decode(b"data: a\n\ndata: b"),
            vec![frame("message", "a", "")]
        );
    }

    #[test]
    fn a_line_over_the_limit_is_an_error_and_decoding_resumes() {
        let options = DecoderOptions { max_line_bytes: 16 };
        let input = b"data: 0123456789abcdef\ndata: tail\n\ndata: ok\n\n";
        let expected = vec![
            Err(DecodeError::TooLong { limit: 16 }),
            Ok(frame("message", "ok", "")),
        ];
        assert_eq!(decode_cut(input, &[], options), expected);
        // Split so that the long line arrives in small pieces, which never reach the limit alone.
        let cuts: Vec<usize> = (1..input.len()).collect();
        assert_eq!(decode_cut(input, &cuts, options), expected);
    }

    #[test]
    fn the_partial_line_buffer_never_exceeds_the_limit() {
        let options = DecoderOptions {
            max_line_bytes: 1024,
        };
        let mut decoder = Decoder::new(options);
        let errors = (0..100)
            .flat_map(|_| decoder.feed(&[b'x'; 100]).collect::<Vec<_>>())
            .count();
        assert_eq!(errors, 1);
        assert!(decoder.partial.capacity() <= 1024);
        assert_eq!(
            decoder.feed(b"\n\ndata: after\n\n").collect::<Vec<_>>(),
            vec![Ok(frame("message", "after", ""))]
        );
    }

    #[test]
    fn joined_data_over_the_limit_is_an_error() {
        // Each line fits in 12 bytes; the third one brings the joined data past them.
        let options = DecoderOptions { max_line_bytes: 12 };
        let input = b"data: 12345\ndata: 12345\ndata: 12345\n\ndata: ok\n\n";
        let expected = vec![
            Err(DecodeError::TooLong { limit: 12 }),
            Ok(frame("message", "ok", "")),
        ];
        assert_eq!(decode_cut(input, &[], options), expected);
    }

    #[test]
    fn a_dropped_iterator_keeps_its_unread_bytes() {
        let mut decoder = Decoder::default();
        let first = decoder.feed(b"data: a\n\ndata: b\n\ndata: c").next();
        assert_eq!(first, Some(Ok(frame("message", "a", ""))));
        let rest: Vec<_> = decoder.feed(b"\n\n").map(Result::unwrap).collect();
        assert_eq!(
            rest,
            vec![frame("message", "b", ""), frame("message", "c", "")]
        );
    }

    #[tokio::test]
    async fn the_stream_adapter_yields_frames_and_passes_transport_errors_on() {
        use futures_util::StreamExt;
        let chunks: Vec<Result<&[u8], &str>> = vec![
            Ok(b"data: a\n\ndata: "),
            Ok(b"b\n"),
            Err("reset"),
            Ok(b"\ndata: c"),
        ];
        let stream = FrameStream::new(
            futures_util::stream::iter(chunks),
            DecoderOptions::default(),
        );
        let items: Vec<_> = stream.collect().await;
        assert_eq!(items.len(), 3);
        assert_eq!(items[0].as_ref().unwrap(), &frame("message", "a", ""));
        assert!(matches!(items[1], Err(StreamError::Transport("reset"))));
        assert_eq!(items[2].as_ref().unwrap(), &frame("message", "b", ""));
    }
}
