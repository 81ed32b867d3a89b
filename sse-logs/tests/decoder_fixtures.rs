//! The decoder against real OpenCode 1.18.33 captures: however the bytes are cut, and whatever
//! line ends they use, the frames are the same.

use evals_sse_logs::decoder::{Decoder, Frame};

mod common;

use common::{FIXTURES, fixture};

/// The frames of `chunks`, fed in order to one decoder.
fn frames<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> Vec<Frame> {
    let mut decoder = Decoder::default();
    let mut out = Vec::new();
    for chunk in chunks {
        out.extend(decoder.feed(chunk).map(Result::unwrap));
    }
    out
}

fn whole(bytes: &[u8]) -> Vec<Frame> {
    frames([bytes])
}

/// Chunk lengths from 1 to 97 bytes, in a fixed pseudo-random order.
fn ragged(bytes: &[u8], seed: u64) -> Vec<&[u8]> {
    let mut state = seed;
    let mut chunks = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let len = ((state >> 33) % 97 + 1).min(rest.len() as u64) as usize;
        let (chunk, tail) = rest.split_at(len);
        chunks.push(chunk);
        rest = tail;
    }
    chunks
}

#[test]
fn every_fixture_decodes_to_one_frame_per_data_line() {
    for name in FIXTURES {
        let bytes = fixture(name);
        let data_lines = bytes
            .split(|&b| b == b'\n')
            .filter(|l| l.starts_with(b"data: "))
            .count();
        let decoded = whole(&bytes);
        assert_eq!(decoded.len(), data_lines, "{name}");
        assert!(
            decoded
                .iter()
                .all(|f| f.event == "message" && f.data.starts_with('{')),
            "{name}"
        );
    }
}

#[test]
fn splitting_a_fixture_at_every_byte_offset_yields_the_same_frames() {
    let bytes = fixture("05-error-malformed");
    let expected = whole(&bytes);
    for cut in 0..=bytes.len() {
        let (head, tail) = bytes.split_at(cut);
        assert_eq!(frames([head, tail]), expected, "cut at {cut}");
    }
}

#[test]
fn feeding_every_fixture_byte_by_byte_or_raggedly_yields_the_same_frames() {
    for name in FIXTURES {
        let bytes = fixture(name);
        let expected = whole(&bytes);
        assert_eq!(frames(bytes.chunks(1)), expected, "{name} byte by byte");
        for seed in 0..8 {
            assert_eq!(frames(ragged(&bytes, seed)), expected, "{name} seed {seed}");
        }
    }
}

#[test]
fn crlf_cr_and_a_bom_change_nothing() {
    for name in FIXTURES {
        let bytes = fixture(name);
        let expected = whole(&bytes);
        let crlf: Vec<u8> = bytes
            .iter()
            .flat_map(|&b| {
                if b == b'\n' {
                    vec![b'\r', b'\n']
                } else {
                    vec![b]
                }
            })
            .collect();
        let cr: Vec<u8> = bytes
            .iter()
            .map(|&b| if b == b'\n' { b'\r' } else { b })
            .collect();
        let bom = [&b"\xEF\xBB\xBF"[..], &bytes].concat();
        for (variant, input) in [("crlf", &crlf), ("cr", &cr), ("bom", &bom)] {
            assert_eq!(whole(input), expected, "{name} {variant}");
            assert_eq!(
                frames(input.chunks(1)),
                expected,
                "{name} {variant} byte by byte"
            );
        }
    }
}

#[test]
fn a_crafted_stream_with_every_rule_survives_every_cut() {
    let input = "\u{feff}: comment\r\nretry: 1000\r\nid: 1\nevent: custom\ndata: caf\u{e9} \u{1F600}\rdata:second\r\n\r\n\
                 data\n\nid: bad\0id\nevent: dropped\n\ndata: x\r\n\rdata: tail without end\n";
    let bytes = input.as_bytes();
    let expected = whole(bytes);
    let summary: Vec<_> = expected
        .iter()
        .map(|f| (f.event.as_str(), f.data.as_str(), f.id.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            ("custom", "caf\u{e9} \u{1F600}\nsecond", "1"),
            ("message", "", "1"),
            ("message", "x", "1")
        ]
    );
    for cut in 0..=bytes.len() {
        let (head, tail) = bytes.split_at(cut);
        assert_eq!(frames([head, tail]), expected, "cut at {cut}");
        for second in cut..=bytes.len() {
            let (middle, end) = tail.split_at(second - cut);
            assert_eq!(
                frames([head, middle, end]),
                expected,
                "cuts at {cut} and {second}"
            );
        }
    }
}
