//! The OpenCode server's own logging: its `--log-level` and whether it prints its logs.

use std::fmt;
use std::str::FromStr;

/// A log level `opencode serve --log-level` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    /// `DEBUG`.
    Debug,
    /// `INFO`, the default.
    Info,
    /// `WARN`.
    Warn,
    /// `ERROR`.
    Error,
}

impl LogLevel {
    /// The spelling OpenCode takes.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Debug => "DEBUG",
            LogLevel::Info => "INFO",
            LogLevel::Warn => "WARN",
            LogLevel::Error => "ERROR",
        }
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A server log level that OpenCode would not accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("server log level `{0}` is not one of DEBUG, INFO, WARN, ERROR")]
pub struct InvalidLogLevel(pub String);

impl FromStr for LogLevel {
    type Err = InvalidLogLevel;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "DEBUG" => Ok(LogLevel::Debug),
            "INFO" => Ok(LogLevel::Info),
            "WARN" => Ok(LogLevel::Warn),
            "ERROR" => Ok(LogLevel::Error),
            other => Err(InvalidLogLevel(other.into())),
        }
    }
}

/// How the server logs, resolved once per run from the flags and the environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLogging {
    /// `--log-level`.
    pub level: LogLevel,
    /// Whether `--print-logs` is passed, sending the server's log to the container's stderr.
    pub print_logs: bool,
}

impl ServerLogging {
    /// Agent logs start the server at `DEBUG` with `--print-logs`. Otherwise the level comes
    /// from `level_var` (`OPENCODE_SERVER_LOG_LEVEL`, default `INFO`) and `--print-logs` from
    /// `print_logs_var` (`OPENCODE_SERVER_PRINT_LOGS`) being `1`.
    ///
    /// An invalid level is an error even when agent logs override it, so a typo surfaces before
    /// any container starts rather than on the day agent logs are turned off.
    pub fn resolve(
        agent_logs: bool,
        level_var: Option<&str>,
        print_logs_var: Option<&str>,
    ) -> Result<Self, InvalidLogLevel> {
        let level = match level_var.filter(|level| !level.is_empty()) {
            Some(level) => level.parse()?,
            None => LogLevel::Info,
        };
        if agent_logs {
            return Ok(Self {
                level: LogLevel::Debug,
                print_logs: true,
            });
        }
        Ok(Self {
            level,
            print_logs: print_logs_var == Some("1"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolution_table() {
        let cases = [
            (false, None, None, LogLevel::Info, false),
            (false, Some(""), None, LogLevel::Info, false),
            (false, Some("WARN"), None, LogLevel::Warn, false),
            (false, Some("ERROR"), Some("1"), LogLevel::Error, true),
            (false, None, Some("true"), LogLevel::Info, false),
            (true, Some("ERROR"), Some("0"), LogLevel::Debug, true),
        ];
        for (agent_logs, level, print, expected_level, expected_print) in cases {
            let logging = ServerLogging::resolve(agent_logs, level, print).unwrap();
            assert_eq!(
                (logging.level, logging.print_logs),
                (expected_level, expected_print)
            );
        }
    }

    #[test]
    fn unknown_levels_are_errors_even_with_agent_logs() {
        for agent_logs in [false, true] {
            let err = ServerLogging::resolve(agent_logs, Some("debug"), None).unwrap_err();
            assert_eq!(
                err.to_string(),
                "server log level `debug` is not one of DEBUG, INFO, WARN, ERROR"
            );
        }
    }
}
