//! The runner's `--verbose` lines as `bench suite` reads them: which event each line is, and
//! where each eval's wall time went.
//!
//! Lines are timestamped by the reader as they arrive (time since the runner was spawned). The
//! `took=` and `elapsed=` values come from the runner's own clocks. Per call, with `T(x)` the
//! arrival of line `x`:
//!
//! - the call's start is `T(container-ready) − ready.took` (the `docker run` request);
//! - an eval's wall time runs from its first call's start to `T(done)` (or `T(errored)`);
//! - the model turn is the sum of the `phase-end took=` values;
//! - overhead = wall − container-ready − model turn − container-removed, split into
//!   *before* (`T(start) − T(container-ready)`, plus the first `phase-start elapsed=`: the
//!   client, watcher and session creation), *after* (from each `phase-end` to the next
//!   `phase-start` or to `stop`, by `elapsed=`: the fallback switch and the session snapshot),
//!   *cleanup* (`T(container-removed) − removed.took − T(stop)`, plus `T(done) −
//!   T(container-removed)`: stopping the watchers, removing the session folders, writing the
//!   results) and *rest*, what is left (reading jitter and untraced gaps).

use std::sync::LazyLock;
use std::time::Duration;

use regex::Regex;

/// What one runner line says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// `container-ready took=N ms`: `docker run` until the server answered.
    Ready {
        /// The runner's measure.
        took: Duration,
    },
    /// `start`: the trace's clock starts.
    Start,
    /// `phase-start elapsed=N ms`.
    PhaseStart {
        /// Since the trace started.
        elapsed: Duration,
    },
    /// `phase-end ... elapsed=N ms took=N ms`.
    PhaseEnd {
        /// Since the trace started.
        elapsed: Duration,
        /// Since the phase started.
        took: Duration,
    },
    /// `stop ... elapsed=N ms`.
    Stop {
        /// Since the trace started.
        elapsed: Duration,
    },
    /// `container-removed took=N ms`: the removal request until the container was gone.
    Removed {
        /// The runner's measure.
        took: Duration,
    },
    /// `[opencode-docker] done EVAL`.
    Done,
    /// `[opencode-docker] errored EVAL: ...`.
    Errored,
}

/// A runner line about one eval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The eval's id.
    pub eval: String,
    /// What happened.
    pub event: Event,
}

/// The eval and event of a runner stderr line; `None` for lines that time nothing (agent logs,
/// heartbeats, container logs, summaries).
pub fn parse(line: &str) -> Option<Line> {
    static TRACE: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"^\[opencode-trace\]\[worker \d+/\d+\]\[(.+?)\]\[[a-z-]+\] ([a-z-]+)(.*)$")
            .expect("the pattern is valid")
    });
    static FINISHED: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"^\[opencode-docker\] (?:(done) +(.+)|errored (.+?): )")
            .expect("the pattern is valid")
    });
    if let Some(found) = TRACE.captures(line) {
        let event = trace_event(&found[2], &found[3])?;
        return Some(Line {
            eval: found[1].to_owned(),
            event,
        });
    }
    let found = FINISHED.captures(line)?;
    let (eval, event) = match found.get(1) {
        Some(_) => (found.get(2)?, Event::Done),
        None => (found.get(3)?, Event::Errored),
    };
    Some(Line {
        eval: eval.as_str().trim_end().to_owned(),
        event,
    })
}

/// The event named `name`, its values read from the end of `rest` (a failure reason, quoted in
/// the middle of the line, cannot fake them).
fn trace_event(name: &str, rest: &str) -> Option<Event> {
    static TOOK: LazyLock<Regex> = LazyLock::new(|| Regex::new(r" took=(\d+)ms$").unwrap());
    static ELAPSED: LazyLock<Regex> = LazyLock::new(|| Regex::new(r" elapsed=(\d+)ms$").unwrap());
    static BOTH: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r" elapsed=(\d+)ms took=(\d+)ms$").unwrap());
    let millis = |pattern: &Regex, group: usize| -> Option<Duration> {
        let found = pattern.captures(rest)?;
        Some(Duration::from_millis(found[group].parse().ok()?))
    };
    Some(match name {
        "container-ready" => Event::Ready {
            took: millis(&TOOK, 1)?,
        },
        "start" => Event::Start,
        "phase-start" => Event::PhaseStart {
            elapsed: millis(&ELAPSED, 1)?,
        },
        "phase-end" => Event::PhaseEnd {
            elapsed: millis(&BOTH, 1)?,
            took: millis(&BOTH, 2)?,
        },
        "stop" => Event::Stop {
            elapsed: millis(&ELAPSED, 1)?,
        },
        "container-removed" => Event::Removed {
            took: millis(&TOOK, 1)?,
        },
        _ => return None,
    })
}

/// Where one eval's wall time went (see the module docs for each term).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EvalTimes {
    /// The eval's id.
    pub eval: String,
    /// Whether the runner reported it errored.
    pub errored: bool,
    /// From its first `docker run` request to its `done` line.
    pub wall: Duration,
    /// Sum of `container-ready took=`.
    pub ready: Duration,
    /// Sum of `phase-end took=`.
    pub turn: Duration,
    /// Sum of `container-removed took=`.
    pub removed: Duration,
    /// Ready until the first phase started.
    pub before: Duration,
    /// Between phases, and from the last phase to `stop`.
    pub after: Duration,
    /// From `stop` to the removal request, and from the removal to `done`.
    pub cleanup: Duration,
}

impl EvalTimes {
    /// wall − ready − turn − removed: the runner's own share.
    pub fn overhead(&self) -> Duration {
        self.wall
            .saturating_sub(self.ready)
            .saturating_sub(self.turn)
            .saturating_sub(self.removed)
    }

    /// [`EvalTimes::overhead`] as a percentage of the wall time.
    pub fn overhead_percent(&self) -> f64 {
        100.0 * self.overhead().as_secs_f64() / self.wall.as_secs_f64().max(f64::MIN_POSITIVE)
    }

    /// The overhead the named parts do not explain.
    pub fn rest(&self) -> Duration {
        self.overhead()
            .saturating_sub(self.before)
            .saturating_sub(self.after)
            .saturating_sub(self.cleanup)
    }
}

/// The evals of one run, filled line by line.
#[derive(Debug, Default)]
pub struct Timeline {
    evals: Vec<Tracked>,
}

/// One eval while its lines come in.
#[derive(Debug, Default)]
struct Tracked {
    times: EvalTimes,
    first_start: Option<Duration>,
    ready_at: Duration,
    stop_at: Option<Duration>,
    removed_at: Option<Duration>,
    last_phase_end: Option<Duration>,
    done_at: Option<Duration>,
}

impl Timeline {
    /// Takes in `line`, which arrived `at` (since the runner was spawned).
    pub fn record(&mut self, at: Duration, line: &Line) {
        let index = match self.evals.iter().position(|t| t.times.eval == line.eval) {
            Some(index) => index,
            None => {
                let mut tracked = Tracked::default();
                tracked.times.eval = line.eval.clone();
                self.evals.push(tracked);
                self.evals.len() - 1
            }
        };
        self.evals[index].record(at, line.event);
    }

    /// How many evals finished (done or errored), timed or not.
    pub fn finished(&self) -> usize {
        self.evals.iter().filter(|t| t.done_at.is_some()).count()
    }

    /// The evals that finished and were timed (a run without `--verbose` times none), in the
    /// order they first appeared.
    pub fn finish(self) -> Vec<EvalTimes> {
        let timed = self
            .evals
            .into_iter()
            .filter(|t| t.done_at.is_some() && t.first_start.is_some());
        timed.map(|t| t.times).collect()
    }
}

impl Tracked {
    fn record(&mut self, at: Duration, event: Event) {
        let times = &mut self.times;
        match event {
            Event::Ready { took } => {
                self.first_start.get_or_insert(at.saturating_sub(took));
                times.ready += took;
                (self.ready_at, self.last_phase_end, self.stop_at) = (at, None, None);
            }
            Event::Start => times.before += at.saturating_sub(self.ready_at),
            Event::PhaseStart { elapsed } => match self.last_phase_end {
                None => times.before += elapsed,
                Some(end) => times.after += elapsed.saturating_sub(end),
            },
            Event::PhaseEnd { elapsed, took } => {
                times.turn += took;
                self.last_phase_end = Some(elapsed);
            }
            Event::Stop { elapsed } => {
                match self.last_phase_end {
                    None => times.before += elapsed,
                    Some(end) => times.after += elapsed.saturating_sub(end),
                }
                self.stop_at = Some(at);
            }
            Event::Removed { took } => {
                let requested = at.saturating_sub(took);
                times.cleanup += requested.saturating_sub(self.stop_at.unwrap_or(requested));
                times.removed += took;
                self.removed_at = Some(at);
            }
            Event::Done | Event::Errored => self.finish(at, event == Event::Errored),
        }
    }

    fn finish(&mut self, at: Duration, errored: bool) {
        let times = &mut self.times;
        times.cleanup += at.saturating_sub(self.removed_at.unwrap_or(at));
        times.wall = at.saturating_sub(self.first_start.unwrap_or(at));
        times.errored = errored;
        self.done_at = Some(at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PREFIX: &str = "[opencode-trace][worker 1/2][01-slugify][solver]";

    fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    fn event(body: &str) -> Option<Event> {
        parse(&format!("{PREFIX} {body}")).map(|line| {
            assert_eq!(line.eval, "01-slugify");
            line.event
        })
    }

    #[test]
    fn container_steps_are_read() {
        assert_eq!(
            event("container-ready took=2199ms"),
            Some(Event::Ready { took: ms(2199) })
        );
        assert_eq!(
            event("container-removed took=189ms"),
            Some(Event::Removed { took: ms(189) })
        );
    }

    #[test]
    fn trace_lines_are_read() {
        let start =
            "start model=mock/echo port=33143 timeout=120000ms workspace=/tmp/x prompt_bytes=385";
        assert_eq!(event(start), Some(Event::Start));
        assert_eq!(
            event("phase-start phase=structured-output elapsed=151ms"),
            Some(Event::PhaseStart { elapsed: ms(151) })
        );
        assert_eq!(
            event("phase-end phase=structured-output outcome=completed elapsed=1545ms took=1393ms"),
            Some(Event::PhaseEnd {
                elapsed: ms(1545),
                took: ms(1393)
            })
        );
        assert_eq!(
            event("stop outcome=completed elapsed=2212ms"),
            Some(Event::Stop { elapsed: ms(2212) })
        );
    }

    #[test]
    fn values_come_from_the_end_of_the_line_not_from_a_reason() {
        let line = r#"phase-end phase=json-fallback outcome=failed reason="took=1ms elapsed=2ms took=3ms" elapsed=900ms took=400ms"#;
        assert_eq!(
            event(line),
            Some(Event::PhaseEnd {
                elapsed: ms(900),
                took: ms(400)
            })
        );
    }

    #[test]
    fn lines_that_time_nothing_are_skipped() {
        assert_eq!(event(r#"session id="ses_1" elapsed=151ms"#), None);
        assert_eq!(
            event("heartbeat phase=structured-output elapsed=3000ms"),
            None
        );
        assert_eq!(
            parse("[opencode-docker][worker 1/1][01-slugify][agent] busy"),
            None
        );
        assert_eq!(parse("  evals    3"), None);
    }

    #[test]
    fn finished_evals_are_read() {
        let done = parse("[opencode-docker] done    strings/01-slugify").unwrap();
        assert_eq!(
            (done.eval.as_str(), done.event),
            ("strings/01-slugify", Event::Done)
        );
        let errored = parse("[opencode-docker] errored 02-group-by: cannot start: x: y").unwrap();
        assert_eq!(
            (errored.eval.as_str(), errored.event),
            ("02-group-by", Event::Errored)
        );
    }

    #[test]
    fn eval_ids_with_brackets_inside_are_kept_whole() {
        let line = parse("[opencode-trace][worker 3/4][a[b]][solver] container-ready took=5ms");
        assert_eq!(line.unwrap().eval, "a[b]");
    }

    /// The lines of one call, as they arrive (ms since spawn).
    fn one_call(timeline: &mut Timeline, eval: &str) {
        let lines = [
            (2300, Event::Ready { took: ms(2200) }),
            (2310, Event::Start),
            (2460, Event::PhaseStart { elapsed: ms(150) }),
            (
                3860,
                Event::PhaseEnd {
                    elapsed: ms(1550),
                    took: ms(1400),
                },
            ),
            (4530, Event::Stop { elapsed: ms(2220) }),
            (4740, Event::Removed { took: ms(190) }),
            (4800, Event::Done),
        ];
        for (at, event) in lines {
            let line = Line {
                eval: eval.into(),
                event,
            };
            timeline.record(ms(at), &line);
        }
    }

    #[test]
    fn an_evals_wall_time_is_split_into_its_parts() {
        let mut timeline = Timeline::default();
        one_call(&mut timeline, "01-slugify");
        let [times] = &timeline.finish()[..] else {
            panic!("one eval")
        };
        // Started at 2300 − 2200 = 100; done at 4800.
        assert_eq!(times.wall, ms(4700));
        assert_eq!(
            (times.ready, times.turn, times.removed),
            (ms(2200), ms(1400), ms(190))
        );
        assert_eq!(times.overhead(), ms(910));
        // 10 ms to the trace start, 150 ms to the first phase.
        assert_eq!(times.before, ms(160));
        assert_eq!(times.after, ms(670));
        // Removal asked at 4740 − 190 = 4550, 20 ms after stop; done 60 ms after removal.
        assert_eq!(times.cleanup, ms(80));
        assert_eq!(times.rest(), Duration::ZERO);
        assert!((times.overhead_percent() - 100.0 * 910.0 / 4700.0).abs() < 1e-9);
        assert!(!times.errored);
    }

    #[test]
    fn a_second_phase_counts_its_gap_as_after() {
        let mut timeline = Timeline::default();
        let lines = [
            (1000, Event::Ready { took: ms(900) }),
            (1000, Event::Start),
            (1100, Event::PhaseStart { elapsed: ms(100) }),
            (
                1300,
                Event::PhaseEnd {
                    elapsed: ms(300),
                    took: ms(200),
                },
            ),
            (1350, Event::PhaseStart { elapsed: ms(350) }),
            (
                1450,
                Event::PhaseEnd {
                    elapsed: ms(450),
                    took: ms(100),
                },
            ),
            (1500, Event::Stop { elapsed: ms(500) }),
            (1600, Event::Removed { took: ms(100) }),
            (1600, Event::Errored),
        ];
        for (at, event) in lines {
            timeline.record(
                ms(at),
                &Line {
                    eval: "e".into(),
                    event,
                },
            );
        }
        let [times] = &timeline.finish()[..] else {
            panic!("one eval")
        };
        assert_eq!(times.turn, ms(300));
        assert_eq!(times.after, ms(100));
        assert!(times.errored);
    }

    #[test]
    fn evals_without_an_end_are_left_out() {
        let mut timeline = Timeline::default();
        one_call(&mut timeline, "finished");
        let line = Line {
            eval: "cut".into(),
            event: Event::Ready { took: ms(5) },
        };
        timeline.record(ms(10), &line);
        let evals: Vec<String> = timeline.finish().into_iter().map(|t| t.eval).collect();
        assert_eq!(evals, ["finished"]);
    }

    #[test]
    fn evals_without_trace_lines_count_as_finished_but_untimed() {
        let mut timeline = Timeline::default();
        let line = Line {
            eval: "quiet".into(),
            event: Event::Done,
        };
        timeline.record(ms(4000), &line);
        assert_eq!(timeline.finished(), 1);
        assert!(timeline.finish().is_empty());
    }
}
