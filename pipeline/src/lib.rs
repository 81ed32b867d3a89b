//! Eval discovery, the solver and judge runs, scoring and the output files.
//!
//! An eval is a folder holding `requirements.yaml` (see [`discover`]); its requirements are read
//! and validated by [`Requirements`], whose errors name the file and the problem so one bad eval
//! fails alone while the run goes on.
//!
//! ```
//! use evals_pipeline::Requirements;
//!
//! let file = Requirements::parse(
//!     "requirements:\n  - id: uses-flatlist\n    description: Must render a `FlatList`.\n",
//! )?;
//! assert_eq!(file.requirements[0].weight, 1.0);
//! # Ok::<(), String>(())
//! ```

pub mod discover;
pub mod files;
pub mod judge;
pub mod manifest;
pub mod prompt;
mod requirements;

pub use discover::{DEFAULT_PATTERN, DiscoverError, EvalDir, discover};
pub use requirements::{Requirement, Requirements, RequirementsError};
