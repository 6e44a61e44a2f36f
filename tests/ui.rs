//! Compile-time behaviour of `#[amorsize::parallel]`: every misuse has a clear error at the
//! user's own tokens (`tests/ui/*.rs` with their blessed `.stderr`), and every accepted shape
//! compiles and runs (`tests/ui/pass/*.rs`).
//!
//! The `.stderr` files hold one compiler's wording, named in `tests/ui/TOOLCHAIN`. On that
//! toolchain every message is compared; on another (the crate supports 1.80 and newer) the
//! comparison is skipped, saying so, and each case is still checked to fail to compile.
//!
//! After changing a diagnostic: `TRYBUILD=overwrite cargo test --test ui`, then read the
//! new `.stderr` files as a user would.

use std::path::{Path, PathBuf};
use std::process::Command;

#[test]
fn ui() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let blessed = std::fs::read_to_string(root.join("tests/ui/TOOLCHAIN"))
        .expect("tests/ui/TOOLCHAIN names the toolchain the .stderr files were blessed with");
    let blessed = blessed.trim();
    let current = rustc_version();
    let t = trybuild::TestCases::new();
    if current.as_deref() == Some(blessed) {
        t.compile_fail("tests/ui/*.rs");
    } else {
        eprintln!(
            "ui: the .stderr files were blessed with `{blessed}`, this is `{}`: comparing \
             messages is skipped; checking only that each case fails to compile",
            current.as_deref().unwrap_or("an unknown rustc")
        );
        t.compile_fail(copy_without_stderr(root).join("*.rs"));
        // trybuild writes the new messages instead of comparing them.
        std::env::set_var("TRYBUILD", "overwrite");
    }
    t.pass("tests/ui/pass/*.rs");
}

/// `rustc 1.95.0` from `rustc 1.95.0 (59807616e 2026-04-14)`.
fn rustc_version() -> Option<String> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let out = Command::new(rustc).arg("--version").output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let mut words = text.split_whitespace();
    Some(format!("{} {}", words.next()?, words.next()?))
}

/// The failing cases, copied under `target/` without their `.stderr` files.
fn copy_without_stderr(root: &Path) -> PathBuf {
    let dir = root.join("target/ui-any-toolchain");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("target/ is writable");
    for entry in std::fs::read_dir(root.join("tests/ui")).expect("tests/ui exists") {
        let path = entry.expect("a readable entry").path();
        if path.extension().is_some_and(|e| e == "rs") {
            std::fs::copy(&path, dir.join(path.file_name().unwrap())).expect("copy a case");
        }
    }
    dir
}
