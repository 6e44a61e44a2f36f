//! Knobs: the [`Mode`] a site or the whole process runs in, read from the `AMORSIZE`
//! environment variable once and settable from code.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU8, Ordering};

/// Who decides between the plain loop and the parallel map.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
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
