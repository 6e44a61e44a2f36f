//! Many threads, nested companions and recursion through a function's own companion:
//! correct results, no deadlock, and only rayon's threads.

use std::sync::{Arc, Barrier};

fn two_threads() {
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build_global();
}

#[amorsize::parallel]
fn crunch(x: &u64) -> u64 {
    (0..100).fold(*x, |a, i| std::hint::black_box(a.rotate_left(3) ^ i))
}

#[test]
fn sixteen_simultaneous_first_calls_agree() {
    two_threads();
    let items: Arc<Vec<u64>> = Arc::new((0..20_000).collect());
    let expected: Vec<u64> = items.iter().map(crunch).collect();
    let barrier = Arc::new(Barrier::new(16));
    let handles: Vec<_> = (0..16)
        .map(|_| {
            let (items, barrier) = (Arc::clone(&items), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                par_crunch(&items)
            })
        })
        .collect();
    for handle in handles {
        assert_eq!(handle.join().unwrap(), expected);
    }
    let report = amorsize::report();
    let site = report.site("crunch").unwrap();
    assert_eq!(site.calls, 16);
    assert_eq!(site.items, 16 * 20_000);
    let cost = site.per_item.expect("learned a cost").as_nanos();
    assert!(
        cost.is_finite() && cost > 0.0 && cost < 100_000.0,
        "{report}"
    );
}

#[amorsize::parallel]
fn inner(x: &u64) -> u64 {
    (0..2_000).fold(*x, |a, i| std::hint::black_box(a.wrapping_mul(17) ^ i))
}

#[amorsize::parallel]
fn outer(x: &u64) -> u64 {
    let items: Vec<u64> = (*x..*x + 200).collect();
    par_inner(&items).iter().fold(0, |a, b| a ^ b)
}

#[test]
fn nested_companions_complete_on_rayons_threads_only() {
    two_threads();
    let items: Vec<u64> = (0..64).collect();
    let expected: Vec<u64> = items.iter().map(outer).collect();
    for _ in 0..3 {
        assert_eq!(par_outer(&items), expected);
    }
    // Every thread that ran work is the caller or one of rayon's two workers.
    let threads = std::sync::Mutex::new(std::collections::HashSet::new());
    let _ = amorsize::map_slice(&NESTED_PROBE, &items, |x| {
        threads.lock().unwrap().insert(std::thread::current().id());
        par_inner(&[*x, x + 1])
    });
    assert!(threads.lock().unwrap().len() <= 3);
}

static NESTED_PROBE: amorsize::Site =
    amorsize::Site::new("nested_probe").with_mode(amorsize::Mode::Parallel);

#[amorsize::parallel]
fn tree_sum(n: &u64) -> u64 {
    if *n < 2 {
        *n
    } else {
        // Re-enters this function's own cached state during its own first call.
        par_tree_sum(&[n - 1, n - 2]).iter().sum()
    }
}

#[test]
fn recursion_through_the_own_companion_completes() {
    two_threads();
    fn fib(n: u64) -> u64 {
        if n < 2 {
            n
        } else {
            fib(n - 1) + fib(n - 2)
        }
    }
    assert_eq!(par_tree_sum(&[18, 5, 0, 1]), vec![fib(18), fib(5), 0, 1]);
}
