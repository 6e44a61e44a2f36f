//! Knobs: the [`Mode`] a site or the whole process runs in, read from the `AMORSIZE`
//! environment variable once and settable from code; and the thread cap around a call.

use std::cell::Cell;
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU8, Ordering};

/// Who decides between the plain loop and the parallel map.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize),
    serde(rename_all = "lowercase")
)]
pub enum Mode {
    /// The runtime decides from measured costs (the default).
    #[default]
    Auto,
    /// Always a plain loop on the calling thread.
    Serial,
    /// Always a rayon parallel map (calls of fewer than two items still run inline).
    Parallel,
}

impl Mode {
    /// The word used for this mode in `AMORSIZE=…`, `mode = "…"` and reports.
    pub const fn as_str(self) -> &'static str {
        match self {
            Mode::Auto => "auto",
            Mode::Serial => "serial",
            Mode::Parallel => "parallel",
        }
    }

    const fn to_u8(self) -> u8 {
        match self {
            Mode::Auto => AUTO,
            Mode::Serial => SERIAL,
            Mode::Parallel => PARALLEL,
        }
    }

    const fn from_u8(v: u8) -> Mode {
        match v {
            SERIAL => Mode::Serial,
            PARALLEL => Mode::Parallel,
            _ => Mode::Auto,
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing a [`Mode`] from text that is none of `auto`, `serial`, `parallel`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseModeError {
    text: String,
}

impl fmt::Display for ParseModeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` is not an amorsize mode; use one of `auto`, `serial`, `parallel`",
            self.text
        )
    }
}

impl std::error::Error for ParseModeError {}

impl FromStr for Mode {
    type Err = ParseModeError;

    /// Parses `auto`, `serial` or `parallel`, ignoring case and surrounding spaces.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Mode::Auto),
            "serial" => Ok(Mode::Serial),
            "parallel" => Ok(Mode::Parallel),
            _ => Err(ParseModeError { text: s.to_owned() }),
        }
    }
}

/// The environment variable that forces a mode on every site of the process.
pub const MODE_ENV: &str = "AMORSIZE";

const UNREAD: u8 = 0;
const AUTO: u8 = 1;
const SERIAL: u8 = 2;
const PARALLEL: u8 = 3;

static GLOBAL_MODE: AtomicU8 = AtomicU8::new(UNREAD);

/// The mode forced on the whole process: set by [`set_mode`], else read from `AMORSIZE`
/// on first use, else [`Mode::Auto`]. A forced mode overrides each site's own mode.
#[inline]
pub fn mode() -> Mode {
    match GLOBAL_MODE.load(Ordering::Relaxed) {
        UNREAD => read_env_mode(),
        v => Mode::from_u8(v),
    }
}

/// `true` when the process-wide mode is known to be `auto` (one relaxed load; `false` also
/// before `AMORSIZE` has been read).
#[inline]
pub(crate) fn is_auto() -> bool {
    GLOBAL_MODE.load(Ordering::Relaxed) == AUTO
}

/// Forces `mode` on every site of the process from now on (`Mode::Auto` gives the decision
/// back to each site). Overrides the `AMORSIZE` environment variable.
pub fn set_mode(mode: Mode) {
    GLOBAL_MODE.store(mode.to_u8(), Ordering::Relaxed);
}

thread_local! {
    /// The cap set by [`with_max_threads`] around the current code on this thread; 0 for none.
    static CALL_MAX_THREADS: Cell<usize> = const { Cell::new(0) };
}

/// Runs `f` with every amorsize call it makes *on this thread* limited to `max_threads`
/// threads (the calling thread included), as [`Site::with_max_threads`](crate::Site::with_max_threads)
/// and the attribute's `max_threads = N` do for one function. For a service that must leave
/// cores to other requests, per request.
///
/// Caps nest (the smallest applies) and combine with a function's own cap the same way.
/// `0` adds no cap. An async companion's future, or a stream (`par_<name>_iter`), made
/// inside `f` keeps the cap for its calls, however much later and wherever it is polled or
/// read (`with_max_threads(1, || par_f_async(v))`, then `.await`). Calls made by the
/// parallel work itself on pool threads (a companion called inside the mapped function) are
/// not covered: cap those functions instead.
///
/// ```
/// use amorsize_core::{map, with_max_threads, Site};
///
/// static WORK: Site = Site::new("work");
/// let out = with_max_threads(1, || map(&WORK, 0..10_000u64, |x| x.pow(2)));
/// assert_eq!(out[3], 9);
/// ```
pub fn with_max_threads<R>(max_threads: usize, f: impl FnOnce() -> R) -> R {
    struct Restore(usize);
    impl Drop for Restore {
        fn drop(&mut self) {
            CALL_MAX_THREADS.with(|cap| cap.set(self.0));
        }
    }
    let outer = CALL_MAX_THREADS.with(Cell::get);
    let cap = match (outer, max_threads) {
        (0, cap) | (cap, 0) => cap,
        (a, b) => a.min(b),
    };
    CALL_MAX_THREADS.with(|c| c.set(cap));
    let _restore = Restore(outer);
    f()
}

/// The cap [`with_max_threads`] set around the current code on this thread.
pub(crate) fn call_max_threads() -> Option<usize> {
    match CALL_MAX_THREADS.with(Cell::get) {
        0 => None,
        cap => Some(cap),
    }
}

#[cold]
fn read_env_mode() -> Mode {
    let mode = parse_env_mode(std::env::var_os(MODE_ENV).as_deref());
    // A concurrent `set_mode` wins over the environment.
    let _ =
        GLOBAL_MODE.compare_exchange(UNREAD, mode.to_u8(), Ordering::Relaxed, Ordering::Relaxed);
    Mode::from_u8(GLOBAL_MODE.load(Ordering::Relaxed))
}

/// The mode an `AMORSIZE` value asks for; anything unreadable warns once on stderr and
/// means `auto`.
fn parse_env_mode(value: Option<&std::ffi::OsStr>) -> Mode {
    let Some(value) = value else {
        return Mode::Auto;
    };
    let text = value.to_string_lossy();
    if text.trim().is_empty() {
        return Mode::Auto;
    }
    match text.parse::<Mode>() {
        Ok(mode) => mode,
        Err(err) => {
            eprintln!("amorsize: warning: {MODE_ENV}: {err}; using `auto`");
            Mode::Auto
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn modes_parse_loosely_and_print_back() {
        for mode in [Mode::Auto, Mode::Serial, Mode::Parallel] {
            assert_eq!(mode.as_str().parse::<Mode>(), Ok(mode));
            assert_eq!(mode.to_string().to_uppercase().parse::<Mode>(), Ok(mode));
        }
        assert_eq!(" Serial\n".parse::<Mode>(), Ok(Mode::Serial));
        let err = "fast".parse::<Mode>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "`fast` is not an amorsize mode; use one of `auto`, `serial`, `parallel`"
        );
    }

    #[test]
    fn call_caps_nest_and_unwind() {
        assert_eq!(call_max_threads(), None);
        with_max_threads(4, || {
            assert_eq!(call_max_threads(), Some(4));
            with_max_threads(8, || assert_eq!(call_max_threads(), Some(4)));
            with_max_threads(2, || assert_eq!(call_max_threads(), Some(2)));
            with_max_threads(0, || assert_eq!(call_max_threads(), Some(4)));
            let panicked = std::panic::catch_unwind(|| with_max_threads(1, || panic!("boom")));
            assert!(panicked.is_err());
            assert_eq!(call_max_threads(), Some(4));
        });
        assert_eq!(call_max_threads(), None);
    }

    #[test]
    fn bad_environment_values_fall_back_to_auto() {
        assert_eq!(parse_env_mode(None), Mode::Auto);
        assert_eq!(parse_env_mode(Some(OsStr::new(""))), Mode::Auto);
        assert_eq!(parse_env_mode(Some(OsStr::new("parallel"))), Mode::Parallel);
        assert_eq!(parse_env_mode(Some(OsStr::new("2"))), Mode::Auto);
        assert_eq!(parse_env_mode(Some(OsStr::new("séquentiel"))), Mode::Auto);
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStrExt;
            assert_eq!(
                parse_env_mode(Some(OsStr::from_bytes(b"\xff\xfe"))),
                Mode::Auto
            );
        }
    }
}
