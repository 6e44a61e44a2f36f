//! A crate that depends on amorsize under another name (`engine`), as users who rename the
//! dependency or re-export it do: the generated code must find the runtime through
//! `crate = engine`, never through `::amorsize`, which does not exist here.

/// Re-exported for the test below, as a crate that wraps amorsize would.
pub use engine as parallelism;

#[engine::parallel(crate = engine)]
pub fn double(x: &u64) -> u64 {
    x * 2
}

#[engine::parallel(crate = crate::parallelism, name = triple_all)]
pub fn triple(x: u64) -> u64 {
    x * 3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn companions_reach_the_renamed_runtime() {
        assert_eq!(par_double(&[1, 2, 3]), vec![2, 4, 6]);
        assert_eq!(triple_all(0..4u64), vec![0, 3, 6, 9]);
        assert!(engine::report().site("double").is_some());
    }
}
