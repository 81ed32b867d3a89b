//! Shortening text for a log line: folding it onto one line and cutting it at a character count.
//!
//! Both work on characters, never bytes, so a cut never splits a UTF-8 character.

/// The mark that ends a cut text.
pub const ELLIPSIS: char = '…';

/// Folds `text` onto one line and cuts it to at most `max_chars` characters.
///
/// Every run of whitespace and control characters (newlines, tabs, escape codes) becomes one
/// space, and the ends are trimmed, so tool output cannot break the line or move the cursor.
/// A text longer than `max_chars` keeps at most its first `max_chars - 1` characters and ends
/// with [`ELLIPSIS`].
pub fn preview(text: &str, max_chars: usize) -> String {
    cut(&fold(text), max_chars)
}

/// Folds `text` onto one line: see [`preview`].
pub fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(4096));
    let mut gap = false;
    for c in text.trim_matches(is_gap).chars() {
        if is_gap(c) {
            gap = true;
            continue;
        }
        if std::mem::take(&mut gap) {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

/// Cuts `text` to at most `max_chars` characters, the last of them [`ELLIPSIS`] when anything
/// was cut.
pub fn cut(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        None => text.to_owned(),
        Some(_) if max_chars == 0 => String::new(),
        Some(_) => {
            let keep = text
                .char_indices()
                .nth(max_chars - 1)
                .map_or(text.len(), |(at, _)| at);
            let mut out = String::with_capacity(keep + ELLIPSIS.len_utf8());
            out.push_str(text[..keep].trim_end());
            out.push(ELLIPSIS);
            out
        }
    }
}

fn is_gap(c: char) -> bool {
    c.is_whitespace() || c.is_control()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_kept() {
        assert_eq!(cut("hello", 5), "hello");
        assert_eq!(cut("", 3), "");
    }

    #[test]
    fn long_text_is_cut_to_the_limit_with_an_ellipsis() {
        assert_eq!(cut("hello world", 5), "hell…");
        assert_eq!(cut("hello", 4).chars().count(), 4);
        assert_eq!(cut("ab", 0), "");
    }

    #[test]
    fn cutting_never_splits_a_character() {
        let text = "é".repeat(10) + &"\u{1F600}".repeat(10);
        for max in 0..25 {
            let out = cut(&text, max);
            assert!(out.chars().count() <= max, "{max}: {out}");
        }
        assert_eq!(cut("ééé", 2), "é…");
    }

    #[test]
    fn folding_puts_everything_on_one_line() {
        assert_eq!(fold("  a\r\n\n  b\tc\u{1b}[31m d\n"), "a b c [31m d");
        assert_eq!(preview("line one\nline two", 10), "line one…");
    }
}
