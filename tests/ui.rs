//! Compile-time behaviour of `#[amorsize::parallel]`: every misuse has a clear error at the
//! user's own tokens (`tests/ui/*.rs` with their blessed `.stderr`), and every accepted shape
//! compiles and runs (`tests/ui/pass/*.rs`).
//!
//! After changing a diagnostic: `TRYBUILD=overwrite cargo test --test ui`, then read the
//! new `.stderr` files as a user would.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
    t.pass("tests/ui/pass/*.rs");
}
