//! What a person watching a run sees: a line per finished eval, and a short table at the end.

/// Reports one finished eval on standard error.
pub fn finished<T>(eval_id: &str, outcome: &anyhow::Result<T>) {
    match outcome {
        Ok(_) => eprintln!("[opencode-docker] done    {eval_id}"),
        Err(err) => eprintln!("[opencode-docker] errored {eval_id}: {err:#}"),
    }
}

/// Prints `rows` as an aligned two-column table on standard error.
pub fn table(rows: &[(&str, String)]) {
    let width = rows.iter().map(|(key, _)| key.len()).max().unwrap_or(0);
    for (key, value) in rows {
        eprintln!("  {key:<width$}  {value}");
    }
}
