//! Failures the user can act on, and the exit codes the binary documents.

use std::fmt;
use std::process::ExitCode;

/// Every eval finished.
pub const EXIT_OK: u8 = 0;
/// The run finished but some evals errored.
pub const EXIT_EVALS_ERRORED: u8 = 1;
/// Bad input or a failed set-up: nothing, or not everything, could run.
pub const EXIT_BAD_INPUT: u8 = 2;
/// Interrupted by Ctrl-C (SIGINT).
pub const EXIT_INTERRUPTED: u8 = 130;
/// Terminated by SIGTERM.
pub const EXIT_TERMINATED: u8 = 143;

/// A failure caused by the user's input or machine, with what to do about it.
#[derive(Debug)]
pub struct UserError {
    /// The one-line cause.
    pub message: String,
    /// What the user can do, if there is something.
    pub hint: Option<String>,
}

impl UserError {
    /// A failure with a hint.
    pub fn new(message: impl fmt::Display, hint: impl Into<String>) -> Self {
        Self {
            message: message.to_string(),
            hint: Some(hint.into()),
        }
    }
}

impl fmt::Display for UserError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for UserError {}

/// Prints `error` as `error: <cause chain>` and `hint: ...`, and picks the exit code.
pub fn report(error: &anyhow::Error) -> ExitCode {
    let chain: Vec<String> = error.chain().map(ToString::to_string).collect();
    eprintln!("error: {}", chain.join(": "));
    if let Some(hint) = error
        .downcast_ref::<UserError>()
        .and_then(|user| user.hint.as_deref())
    {
        eprintln!("hint: {hint}");
    }
    ExitCode::from(EXIT_BAD_INPUT)
}
