use std::collections::HashSet;

#[amorsize::parallel]
fn double(x: u64) -> u64 {
    x * 2
}

#[amorsize::parallel]
fn len(s: &str) -> usize {
    s.len()
}

fn main() {
    let set: HashSet<u64> = (0..10).collect();
    par_double(set);
    let words: HashSet<String> = HashSet::new();
    par_len(&words);
}
