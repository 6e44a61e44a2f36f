//! Progress bars for long calls (the `progress` feature, with `indicatif`): a call predicted
//! to take a second or more draws a bar on stderr with the function's name, counting finished
//! items against the call's total, with rate and time left. Drawn only when stderr is a
//! terminal, unless `AMORSIZE_PROGRESS=always` (then, into a file or a pipe, a plain line per
//! second instead of a bar); `never` turns it off; any other value warns once and means
//! `auto`. Built on the [`Observer`](crate::Observer) events; without the feature nothing
//! here is compiled in but the answer "no bars".

/// The environment variable that says when to draw progress bars.
pub const PROGRESS_ENV: &str = "AMORSIZE_PROGRESS";

/// Calls predicted to take at least this long as a loop get a bar.
#[cfg_attr(not(feature = "progress"), allow(dead_code))]
pub(crate) const BAR_FROM: std::time::Duration = std::time::Duration::from_secs(1);

/// When bars are drawn, as `AMORSIZE_PROGRESS` says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum When {
    Auto,
    Always,
    Never,
}

/// Reads an `AMORSIZE_PROGRESS` value; anything unreadable warns once on stderr and means
/// `auto`.
fn parse_when(value: Option<&std::ffi::OsStr>) -> When {
    let Some(value) = value else {
        return When::Auto;
    };
    let text = value.to_string_lossy();
    match text.trim().to_ascii_lowercase().as_str() {
        "" | "auto" => When::Auto,
        "always" => When::Always,
        "never" => When::Never,
        _ => {
            eprintln!(
                "amorsize: warning: {PROGRESS_ENV}: `{text}` is not one of `auto`, `always`, `never`; using `auto`"
            );
            When::Auto
        }
    }
}

#[cfg(not(feature = "progress"))]
mod off {
    use super::{parse_when, When, PROGRESS_ENV};

    /// Without the feature, there are no bars; asking for them (or for anything unreadable)
    /// warns once, on the first call that is not a settled short loop.
    pub(crate) fn bars() -> Option<&'static NoBars> {
        static READ: std::sync::Once = std::sync::Once::new();
        READ.call_once(|| {
            if parse_when(std::env::var_os(PROGRESS_ENV).as_deref()) == When::Always {
                eprintln!(
                    "amorsize: warning: {PROGRESS_ENV}=always has no effect: amorsize was built without its `progress` feature"
                );
            }
        });
        None
    }

    pub(crate) struct NoBars;
    impl crate::Observer for NoBars {}
}

#[cfg(not(feature = "progress"))]
pub(crate) use off::bars;

#[cfg(feature = "progress")]
mod on {
    use super::{parse_when, When, BAR_FROM, PROGRESS_ENV};
    use crate::observe::{CallEnd, CallStart, Progress};
    use crate::Observer;
    use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
    use std::collections::HashMap;
    use std::io::IsTerminal;
    use std::sync::{Mutex, OnceLock};
    use std::time::{Duration, Instant};

    /// On a stderr that is not a terminal (`AMORSIZE_PROGRESS=always` into a log), a call's
    /// progress is written as a plain line at most this often.
    const LINE_EVERY: Duration = Duration::from_secs(1);

    /// The bars of the calls in flight, by call number.
    pub(crate) struct Bars {
        /// Where bars are drawn: indicatif's bars on a terminal, or `None` for plain lines.
        terminal: Option<MultiProgress>,
        calls: Mutex<HashMap<u64, Shown>>,
    }

    /// What a bar is made from.
    struct Seen<'a> {
        call: u64,
        site: &'a str,
        n: usize,
        done: usize,
        elapsed: Duration,
        predicted: Option<Duration>,
    }

    /// A bar's look: name, bar, items, and the rate and time left over the whole call so far
    /// (the call started at `start`, maybe before its bar).
    fn style(start: Instant) -> ProgressStyle {
        let rate = move |state: &ProgressState| {
            state.pos() as f64 / start.elapsed().as_secs_f64().max(1e-9)
        };
        ProgressStyle::with_template(
            "{msg} [{bar:30}] {human_pos}/{human_len} items, {rate}, {left} left",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .with_key(
            "rate",
            move |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{:.0}/s", rate(state));
            },
        )
        .with_key(
            "left",
            move |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                let left = state.len().unwrap_or(0).saturating_sub(state.pos()) as f64;
                let _ = write!(w, "{:.0} s", left / rate(state).max(1e-9));
            },
        )
        .progress_chars("=> ")
    }

    /// One call's display.
    enum Shown {
        Bar(ProgressBar),
        Lines {
            site: String,
            start: Instant,
            last: Instant,
        },
    }

    static BARS: OnceLock<Option<Bars>> = OnceLock::new();

    pub(crate) fn bars() -> Option<&'static Bars> {
        BARS.get_or_init(|| {
            let when = parse_when(std::env::var_os(PROGRESS_ENV).as_deref());
            let terminal = std::io::stderr().is_terminal();
            let draw = match when {
                When::Always => true,
                When::Never => false,
                When::Auto => terminal,
            };
            draw.then(|| Bars::new(terminal))
        })
        .as_ref()
    }

    impl Bars {
        pub(crate) fn new(terminal: bool) -> Bars {
            Bars {
                terminal: terminal
                    .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr())),
                calls: Mutex::new(HashMap::new()),
            }
        }

        /// Shows `call` (started `elapsed` ago, `done` of `n` items finished) from now on
        /// if it is predicted long enough; `true` if it is shown.
        fn show(&self, call: Seen<'_>) -> bool {
            let mut calls = crate::lock(&self.calls);
            if calls.contains_key(&call.call) {
                return true;
            }
            if call.predicted.map_or(true, |p| p < BAR_FROM) {
                return false;
            }
            let now = Instant::now();
            let start = now.checked_sub(call.elapsed).unwrap_or(now);
            let shown = match &self.terminal {
                Some(multi) => {
                    let bar = ProgressBar::new(call.n as u64).with_position(call.done as u64);
                    bar.set_style(style(start));
                    bar.set_message(call.site.to_owned());
                    Shown::Bar(multi.add(bar))
                }
                None => Shown::Lines {
                    site: call.site.to_owned(),
                    start,
                    last: now,
                },
            };
            calls.insert(call.call, shown);
            true
        }

        /// Moves `call`'s display to `done` of `n` items; returns the line to print, if the
        /// call is shown as lines and one is due.
        fn update(&self, call: u64, done: usize, n: usize) -> Option<String> {
            let mut calls = crate::lock(&self.calls);
            match calls.get_mut(&call)? {
                Shown::Bar(bar) => {
                    bar.set_position(done as u64);
                    None
                }
                Shown::Lines { site, start, last } => {
                    let now = Instant::now();
                    if now.duration_since(*last) < LINE_EVERY && done < n {
                        return None;
                    }
                    *last = now;
                    Some(line(site, done, n, now.duration_since(*start)))
                }
            }
        }
    }

    /// A progress line for a log: `amorsize: name: 12000/200000 items (6%), 5400/s, 35 s left`.
    pub(crate) fn line(site: &str, done: usize, n: usize, elapsed: Duration) -> String {
        let percent = done as f64 * 100.0 / n.max(1) as f64;
        let rate = done as f64 / elapsed.as_secs_f64().max(1e-9);
        let left = if done >= n || rate <= 0.0 {
            "done".to_owned()
        } else {
            format!("{:.0} s left", (n - done) as f64 / rate)
        };
        format!("amorsize: {site}: {done}/{n} items ({percent:.0}%), {rate:.0}/s, {left}")
    }

    impl Observer for Bars {
        fn call_started(&self, call: &CallStart) {
            self.show(Seen {
                call: call.call,
                site: call.site,
                n: call.n,
                done: 0,
                elapsed: Duration::ZERO,
                predicted: call.predicted,
            });
        }

        fn progress(&self, progress: &Progress) {
            let seen = Seen {
                call: progress.call,
                site: progress.site,
                n: progress.n,
                done: progress.done,
                elapsed: progress.elapsed,
                predicted: progress.predicted,
            };
            if self.show(seen) {
                if let Some(line) = self.update(progress.call, progress.done, progress.n) {
                    eprintln!("{line}");
                }
            }
        }

        fn call_ended(&self, call: &CallEnd) {
            let shown = crate::lock(&self.calls).remove(&call.call);
            if let Some(Shown::Bar(bar)) = shown {
                bar.finish_and_clear();
                if let Some(multi) = &self.terminal {
                    multi.remove(&bar);
                }
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use crate::observe::Ending;

        fn start(call: u64, predicted_ms: u64) -> CallStart {
            CallStart {
                call,
                site: "bars_test",
                n: 1_000,
                predicted: Some(Duration::from_millis(predicted_ms)),
            }
        }

        #[test]
        fn only_calls_predicted_a_second_or_more_are_shown_and_ended_ones_go() {
            let bars = Bars::new(false);
            bars.call_started(&start(1, 200));
            bars.call_started(&start(2, 1_500));
            assert!(!crate::lock(&bars.calls).contains_key(&1));
            assert!(crate::lock(&bars.calls).contains_key(&2));
            // A first call learns its prediction from its profile: shown from then on.
            assert!(bars.show(Seen {
                call: 1,
                site: "bars_test",
                n: 1_000,
                done: 10,
                elapsed: Duration::from_millis(5),
                predicted: Some(BAR_FROM),
            }));
            // As lines: the last one is always printed.
            assert_eq!(bars.update(2, 10, 1_000), None);
            let last = bars.update(2, 1_000, 1_000).expect("the final line");
            assert!(
                last.starts_with("amorsize: bars_test: 1000/1000 items (100%)"),
                "{last}"
            );
            assert!(last.ends_with("done"), "{last}");
            bars.call_ended(&CallEnd {
                call: 2,
                site: "bars_test",
                n: 1_000,
                plan: None,
                elapsed: Duration::from_secs(1),
                ending: Ending::Done,
            });
            assert!(!crate::lock(&bars.calls).contains_key(&2));
        }

        #[test]
        fn lines_say_how_far_how_fast_and_how_long() {
            assert_eq!(
                line("f", 250, 1_000, Duration::from_secs(1)),
                "amorsize: f: 250/1000 items (25%), 250/s, 3 s left"
            );
        }
    }
}

#[cfg(feature = "progress")]
pub(crate) use on::bars;

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn progress_values_parse_loosely_and_bad_ones_mean_auto() {
        assert_eq!(parse_when(None), When::Auto);
        assert_eq!(parse_when(Some(OsStr::new(" Always "))), When::Always);
        assert_eq!(parse_when(Some(OsStr::new("never"))), When::Never);
        assert_eq!(parse_when(Some(OsStr::new(""))), When::Auto);
        assert_eq!(parse_when(Some(OsStr::new("sometimes"))), When::Auto);
    }
}
