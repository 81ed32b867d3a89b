//! Reading and validating an eval's `requirements.yaml`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// One requirement the judge grades.
#[derive(Debug, Clone, PartialEq)]
pub struct Requirement {
    /// Unique within its file.
    pub id: String,
    /// What the code must do, in prose.
    pub description: String,
    /// Its weight in the score: 1 when absent, zero or less, as the format says.
    pub weight: f64,
}

/// A validated `requirements.yaml`.
#[derive(Debug, Clone, PartialEq)]
pub struct Requirements {
    /// The format version the file declares, if any.
    pub version: Option<u64>,
    /// The input files it lists, relative to the eval folder.
    pub input_files: Vec<String>,
    /// The requirements, in file order.
    pub requirements: Vec<Requirement>,
}

/// A `requirements.yaml` that cannot be used; the eval fails, the run goes on.
#[derive(Debug, thiserror::Error)]
#[error("`{path}`: {problem}")]
pub struct RequirementsError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong with it.
    pub problem: String,
}

#[derive(Deserialize)]
struct RawFile {
    version: Option<u64>,
    #[serde(default)]
    inputs: RawInputs,
    requirements: Vec<RawRequirement>,
}

#[derive(Deserialize, Default)]
struct RawInputs {
    #[serde(default)]
    files: Vec<String>,
}

#[derive(Deserialize)]
struct RawRequirement {
    id: String,
    description: String,
    weight: Option<serde_norway::Value>,
}

impl Requirements {
    /// Reads and validates the file at `path`.
    pub fn read(path: &Path) -> Result<Self, RequirementsError> {
        let text = std::fs::read_to_string(path).map_err(|err| RequirementsError {
            path: path.into(),
            problem: format!("cannot be read: {err}"),
        })?;
        Self::parse(&text).map_err(|problem| RequirementsError {
            path: path.into(),
            problem,
        })
    }

    /// Parses and validates the text of a `requirements.yaml`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let raw: RawFile = serde_norway::from_str(text).map_err(|err| err.to_string())?;
        let mut seen = BTreeSet::new();
        let mut requirements = Vec::with_capacity(raw.requirements.len());
        for (index, raw) in raw.requirements.into_iter().enumerate() {
            if raw.id.trim().is_empty() {
                return Err(format!("requirement {} has an empty id", index + 1));
            }
            if !seen.insert(raw.id.clone()) {
                return Err(format!(
                    "requirement id `{}` appears more than once",
                    raw.id
                ));
            }
            let weight = weight(&raw.id, raw.weight.as_ref())?;
            requirements.push(Requirement {
                id: raw.id,
                description: raw.description,
                weight,
            });
        }
        if requirements.is_empty() {
            return Err("lists no requirements".into());
        }
        Ok(Self {
            version: raw.version,
            input_files: raw.inputs.files,
            requirements,
        })
    }
}

/// A requirement's weight: absent, zero or negative counts as 1; anything but a number is an
/// error.
fn weight(id: &str, value: Option<&serde_norway::Value>) -> Result<f64, String> {
    let Some(value) = value else { return Ok(1.0) };
    let weight = value
        .as_f64()
        .ok_or_else(|| format!("requirement `{id}` has a weight that is not a number"))?;
    Ok(if weight > 0.0 { weight } else { 1.0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "\
version: 1
inputs:
  files:
    - app/App.tsx
requirements:
  - id: renders-list
    description: Must render a `FlatList`.
  - id: weighted
    description: Heavier.
    weight: 2.5
  - id: zero
    description: Counts as one.
    weight: 0
  - id: negative
    description: Counts as one.
    weight: -3
";

    #[test]
    fn a_valid_file_is_read_with_default_weights() {
        let file = Requirements::parse(VALID).unwrap();
        let weights: Vec<_> = file
            .requirements
            .iter()
            .map(|r| (r.id.as_str(), r.weight))
            .collect();
        assert_eq!(
            weights,
            [
                ("renders-list", 1.0),
                ("weighted", 2.5),
                ("zero", 1.0),
                ("negative", 1.0)
            ]
        );
        assert_eq!(file.input_files, ["app/App.tsx"]);
        assert_eq!(file.version, Some(1));
    }

    #[test]
    fn malformed_files_say_what_is_wrong() {
        let cases = [
            (
                "requirements:\n  - id: a\n    description: x\n    weight: heavy\n",
                "weight that is not a number",
            ),
            (
                "requirements:\n  - id: a\n    description: x\n  - id: a\n    description: y\n",
                "`a` appears more than once",
            ),
            ("requirements: []\n", "lists no requirements"),
            (
                "requirements:\n  - id: ''\n    description: x\n",
                "empty id",
            ),
            ("requirements:\n  - id: a\n", "missing field `description`"),
            ("version: 1\n", "missing field `requirements`"),
            ("requirements: [\n", "did not find expected"),
        ];
        for (text, problem) in cases {
            let err = Requirements::parse(text).unwrap_err();
            assert!(err.contains(problem), "{text:?}: {err}");
        }
    }

    #[test]
    fn read_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("requirements.yaml");
        std::fs::write(&path, "requirements: []\n").unwrap();
        let err = Requirements::read(&path).unwrap_err().to_string();
        assert_eq!(err, format!("`{}`: lists no requirements", path.display()));
    }
}
