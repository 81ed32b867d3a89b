//! Reading the runner's prompt blocks back out of a prompt's text: the `<files>` block of the
//! solver and judge prompts and the `<requirements>` block of the judge prompt.
//!
//! The formats are the ones the runner writes: `<file path="REL">` + contents + `</file>`, and
//! `<requirement><id>..</id><weight>..</weight><description>..</description></requirement>`.
//! Values are taken verbatim (ids, weights and descriptions trimmed); nothing is unescaped. A
//! block opener counts only where an entry (or the block's end) follows it, so a prompt that
//! mentions "the `<files>` block" in prose is not mistaken for the block itself.

use std::sync::LazyLock;

use regex::Regex;

const FILES_OPEN: &str = "<files>";
const FILES_CLOSE: &str = "</files>";
const FILE_OPEN: &str = "<file path=\"";
const FILE_CLOSE: &str = "</file>";
const REQUIREMENTS_OPEN: &str = "<requirements>";
const REQUIREMENTS_CLOSE: &str = "</requirements>";
const REQUIREMENT_OPEN: &str = "<requirement>";

static REQUIREMENT: LazyLock<Regex> = LazyLock::new(|| {
    let pattern = r"(?s)<requirement>\s*<id>(.*?)</id>\s*(?:<weight>(.*?)</weight>\s*)?<description>(.*?)</description>\s*</requirement>";
    Regex::new(pattern).expect("the requirement pattern is valid")
});

/// One file of a `<files>` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptFile {
    /// The `path` attribute, as written.
    pub path: String,
    /// Everything between the opening and the closing tag, unchanged.
    pub content: String,
}

/// One requirement of a `<requirements>` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    /// The requirement's id.
    pub id: String,
    /// The weight as written, when the entry has one.
    pub weight: Option<String>,
    /// The description, trimmed.
    pub description: String,
}

/// The files of the first `<files>` block in `text`, or `None` when there is no such block.
///
/// A file's content ends at the first `</file>` that is followed by the next `<file path="`,
/// by `</files>` or by the end of the text, so contents may themselves contain `</file>`.
pub fn parse_files(text: &str) -> Option<Vec<PromptFile>> {
    let mut rest = block_body(text, FILES_OPEN, &[FILE_OPEN, FILES_CLOSE])?;
    let mut files = Vec::new();
    while let Some((file, after)) = parse_file(rest) {
        files.push(file);
        rest = after;
    }
    Some(files)
}

/// The requirements of the first `<requirements>` block in `text`, or `None` when there is no
/// such block.
pub fn parse_requirements(text: &str) -> Option<Vec<Requirement>> {
    let body = block_body(
        text,
        REQUIREMENTS_OPEN,
        &[REQUIREMENT_OPEN, REQUIREMENTS_CLOSE],
    )?;
    let body = body.split(REQUIREMENTS_CLOSE).next().unwrap_or(body);
    let requirements = REQUIREMENT.captures_iter(body).map(|caps| Requirement {
        id: caps[1].trim().to_owned(),
        weight: caps.get(2).map(|w| w.as_str().trim().to_owned()),
        description: caps[3].trim().to_owned(),
    });
    Some(requirements.collect())
}

/// The text after the first `open` tag that is followed (after whitespace) by one of `next`.
fn block_body<'a>(text: &'a str, open: &str, next: &[&str]) -> Option<&'a str> {
    text.match_indices(open).find_map(|(at, _)| {
        let body = &text[at + open.len()..];
        starts_with_any(body.trim_start(), next).then_some(body)
    })
}

fn starts_with_any(text: &str, prefixes: &[&str]) -> bool {
    prefixes.iter().any(|p| text.starts_with(p))
}

/// One `<file path="...">...</file>` entry at the start of `rest` (after whitespace), and the
/// text after it.
fn parse_file(rest: &str) -> Option<(PromptFile, &str)> {
    let rest = rest.trim_start().strip_prefix(FILE_OPEN)?;
    let (path, rest) = rest.split_once("\">")?;
    let end = content_end(rest)?;
    let file = PromptFile {
        path: path.to_owned(),
        content: rest[..end].to_owned(),
    };
    Some((file, &rest[end + FILE_CLOSE.len()..]))
}

fn content_end(content: &str) -> Option<usize> {
    content
        .match_indices(FILE_CLOSE)
        .map(|(at, _)| at)
        .find(|&at| {
            let after = content[at + FILE_CLOSE.len()..].trim_start();
            after.is_empty() || starts_with_any(after, &[FILE_OPEN, FILES_CLOSE])
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, content: &str) -> PromptFile {
        PromptFile {
            path: path.into(),
            content: content.into(),
        }
    }

    #[test]
    fn files_block_yields_each_file_unchanged() {
        let text = "Fix it.\n\n<files>\n<file path=\"App.tsx\">export {};\n</file>\n\
                    <file path=\"src/a b.ts\">  spaced  </file>\n</files>\nThanks.";
        let files = parse_files(text).unwrap();
        assert_eq!(
            files,
            [
                file("App.tsx", "export {};\n"),
                file("src/a b.ts", "  spaced  ")
            ]
        );
    }

    #[test]
    fn a_prose_mention_of_the_block_is_not_the_block() {
        let text = "Return the files of the <files> block below.\n<files><file path=\"a\">x</file></files>";
        assert_eq!(parse_files(text).unwrap(), [file("a", "x")]);
    }

    #[test]
    fn content_may_contain_a_closing_file_tag() {
        let text = "<files><file path=\"t.md\">write </file> here</file></files>";
        assert_eq!(
            parse_files(text).unwrap(),
            [file("t.md", "write </file> here")]
        );
    }

    #[test]
    fn empty_block_and_missing_block_differ() {
        assert_eq!(parse_files("<files>\n</files>"), Some(Vec::new()));
        assert_eq!(parse_files("no block here"), None);
    }

    #[test]
    fn requirements_block_yields_ids_weights_and_descriptions() {
        let text = "Rules.\n<requirements>\n\
            <requirement><id>uses-flatlist</id><weight>2</weight>\
            <description>Must render `FlatList`.</description></requirement>\n\
            <requirement>\n  <id>no-weight</id>\n  <description>\n Plain.\n</description>\n</requirement>\n\
            </requirements>\n<files></files>";
        let requirements = parse_requirements(text).unwrap();
        assert_eq!(
            requirements,
            [
                Requirement {
                    id: "uses-flatlist".into(),
                    weight: Some("2".into()),
                    description: "Must render `FlatList`.".into(),
                },
                Requirement {
                    id: "no-weight".into(),
                    weight: None,
                    description: "Plain.".into()
                },
            ]
        );
        assert_eq!(parse_requirements("<files></files>"), None);
    }
}
