//! Every function shape the attribute accepts, checked against the serial map.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};

const LENGTHS: [usize; 6] = [0, 1, 2, 7, 1_000, 100_000];

#[amorsize::parallel]
fn mix(x: &u64) -> u64 {
    x.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17)
}

#[test]
fn by_reference_from_vec_slice_and_array() {
    for n in LENGTHS {
        let items: Vec<u64> = (0..n as u64).collect();
        let expected: Vec<u64> = items.iter().map(mix).collect();
        assert_eq!(par_mix(&items), expected, "n = {n}");
        assert_eq!(par_mix(&items[..]), expected, "n = {n}");
    }
    assert_eq!(par_mix(&[1u64, 2, 3]), vec![mix(&1), mix(&2), mix(&3)]);
    // Elements that borrow as the item type.
    let boxed: Vec<Box<u64>> = (0..50u64).map(Box::new).collect();
    assert_eq!(
        par_mix(&boxed),
        (0..50u64).map(|x| mix(&x)).collect::<Vec<_>>()
    );
}

#[amorsize::parallel]
fn square(x: u64) -> u64 {
    x.wrapping_mul(x)
}

#[test]
fn by_value_from_vec_and_ranges() {
    for n in LENGTHS {
        let expected: Vec<u64> = (0..n as u64).map(square).collect();
        assert_eq!(
            par_square((0..n as u64).collect::<Vec<_>>()),
            expected,
            "n = {n}"
        );
        assert_eq!(par_square(0..n as u64), expected, "range n = {n}");
    }
    assert_eq!(par_square(3..=5), vec![9, 16, 25]);
}

#[amorsize::parallel]
fn word_len(s: &str) -> usize {
    s.chars().count()
}

#[test]
fn str_items_from_strings_and_strs() {
    let owned: Vec<String> = (0..5000).map(|i| "é".repeat(i % 13)).collect();
    let borrowed: Vec<&str> = owned.iter().map(String::as_str).collect();
    let expected: Vec<usize> = owned.iter().map(|s| word_len(s)).collect();
    assert_eq!(par_word_len(&owned), expected);
    assert_eq!(par_word_len(&borrowed), expected);
}

#[amorsize::parallel]
fn checksum(b: &[u8]) -> u32 {
    b.iter().map(|&x| x as u32).sum()
}

#[test]
fn byte_slices_from_vecs() {
    let blobs: Vec<Vec<u8>> = (0..3000).map(|i| vec![(i % 251) as u8; i % 40]).collect();
    let expected: Vec<u32> = blobs.iter().map(|b| checksum(b)).collect();
    assert_eq!(par_checksum(&blobs), expected);
    let views: Vec<&[u8]> = blobs.iter().map(Vec::as_slice).collect();
    assert_eq!(par_checksum(&views), expected);
}

#[amorsize::parallel]
fn add_pair((a, b): (u32, u32)) -> u64 {
    a as u64 + b as u64
}

#[test]
fn pattern_parameter() {
    let pairs: Vec<(u32, u32)> = (0..10_000).map(|i| (i, i * 3)).collect();
    let expected: Vec<u64> = pairs.iter().copied().map(add_pair).collect();
    assert_eq!(par_add_pair(pairs), expected);
}

#[amorsize::parallel]
fn scale(x: &f64, factor: f64, offset: &f64) -> f64 {
    x * factor + offset
}

#[test]
fn context_parameters_are_shared_by_every_item() {
    let xs: Vec<f64> = (0..20_000).map(|i| i as f64 * 0.5).collect();
    let off = 1.25;
    let expected: Vec<f64> = xs.iter().map(|x| scale(x, 2.0, &off)).collect();
    assert_eq!(par_scale(&xs, 2.0, &off), expected);
}

#[amorsize::parallel]
fn fingerprint<T: Hash>(x: &T) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    x.hash(&mut h);
    h.finish()
}

#[test]
fn generic_functions_work_per_instantiation() {
    let nums: Vec<u32> = (0..5000).collect();
    let words: Vec<String> = (0..5000).map(|i| i.to_string()).collect();
    assert_eq!(
        par_fingerprint(&nums),
        nums.iter().map(fingerprint).collect::<Vec<_>>()
    );
    assert_eq!(
        par_fingerprint(&words),
        words.iter().map(fingerprint).collect::<Vec<_>>()
    );
    // Each instantiation reads as written, type paths shortened.
    let report = amorsize::report();
    assert!(
        report.site("shapes::fingerprint::<u32>").is_some(),
        "{report}"
    );
    assert!(
        report.site("shapes::fingerprint::<String>").is_some(),
        "{report}"
    );
}

struct Dictionary {
    weights: HashMap<String, u32>,
}

impl Dictionary {
    #[amorsize::parallel]
    fn weight(&self, w: &str) -> u32 {
        self.weights.get(w).copied().unwrap_or(0)
    }
}

#[test]
fn methods_get_method_companions() {
    let dict = Dictionary {
        weights: [("a", 1), ("b", 2)]
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect(),
    };
    let words: Vec<&str> = ["a", "b", "c"].iter().cycle().take(3000).copied().collect();
    let expected: Vec<u32> = words.iter().map(|w| dict.weight(w)).collect();
    assert_eq!(dict.par_weight(&words), expected);
    // A method's site reads `Type::method`.
    let report = amorsize::report();
    assert!(report.site("Dictionary::weight").is_some(), "{report}");
}

mod module {
    /// A documented, public function in a module: the companion is public too.
    #[amorsize::parallel]
    #[inline]
    pub fn describe(x: &u16) -> String {
        format!("<{x}>")
    }

    #[amorsize::parallel(name = halve_all)]
    pub(crate) fn halve(x: &u16) -> Option<u16> {
        (x % 2 == 0).then_some(x / 2)
    }
}

#[amorsize::parallel]
fn parse(s: &str) -> Result<u32, std::num::ParseIntError> {
    s.parse()
}

#[amorsize::parallel]
fn split(x: &u64) -> (u32, u32) {
    ((*x >> 32) as u32, *x as u32)
}

#[amorsize::parallel]
fn record(_x: &u64) {}

#[test]
fn visibility_names_and_return_types() {
    let xs: Vec<u16> = (0..3000).collect();
    assert_eq!(
        module::par_describe(&xs),
        xs.iter().map(module::describe).collect::<Vec<_>>()
    );
    assert_eq!(
        module::halve_all(&xs),
        xs.iter().map(module::halve).collect::<Vec<_>>()
    );
    let texts: Vec<String> = (0..3000)
        .map(|i| {
            if i % 7 == 0 {
                "x".into()
            } else {
                i.to_string()
            }
        })
        .collect();
    assert_eq!(
        par_parse(&texts),
        texts.iter().map(|s| parse(s)).collect::<Vec<_>>()
    );
    let wide: Vec<u64> = (0..3000).map(|i| i << 31).collect();
    assert_eq!(par_split(&wide), wide.iter().map(split).collect::<Vec<_>>());
    assert_eq!(par_record(&wide).len(), 3000);
}

pub struct Tagged<'a> {
    pub tag: &'a str,
    pub value: u32,
}

#[amorsize::parallel]
fn tagged_value(x: &Tagged<'_>, scale: &Tagged<'_>) -> u32 {
    x.value * scale.value + x.tag.len() as u32
}

#[amorsize::parallel]
fn through_double_ref(s: &&str) -> usize {
    s.len()
}

#[amorsize::parallel]
fn first_word(line: &str) -> &str {
    line.split(' ').next().unwrap_or("")
}

#[amorsize::parallel]
fn owned_tagged(x: Tagged<'_>) -> u32 {
    x.value
}

#[test]
fn elided_lifetimes_in_items_contexts_and_results() {
    let names: Vec<String> = (0..2000).map(|i| format!("w{i} rest")).collect();
    let tagged: Vec<Tagged> = names
        .iter()
        .enumerate()
        .map(|(i, n)| Tagged {
            tag: n,
            value: i as u32,
        })
        .collect();
    let scale = Tagged { tag: "s", value: 3 };
    let expected: Vec<u32> = tagged.iter().map(|t| tagged_value(t, &scale)).collect();
    assert_eq!(par_tagged_value(&tagged, &scale), expected);

    let strs: Vec<&str> = names.iter().map(String::as_str).collect();
    let refs: Vec<&&str> = strs.iter().collect();
    assert_eq!(
        par_through_double_ref(&refs),
        strs.iter().map(|s| s.len()).collect::<Vec<_>>()
    );

    let firsts = par_first_word(&names);
    assert_eq!(
        firsts,
        names.iter().map(|n| first_word(n)).collect::<Vec<_>>()
    );
    assert_eq!(firsts[7], "w7");

    let values: Vec<u32> = tagged.iter().map(|t| t.value).collect();
    assert_eq!(par_owned_tagged(tagged), values);
}

#[amorsize::parallel]
fn shifted<const K: u32, const UP: bool>(x: &u64) -> u64 {
    if UP {
        x << K
    } else {
        x >> K
    }
}

#[test]
fn each_value_of_a_const_parameter_gets_its_own_site() {
    let xs: Vec<u64> = (0..1000).collect();
    assert_eq!(
        par_shifted::<1, true>(&xs),
        xs.iter().map(shifted::<1, true>).collect::<Vec<_>>()
    );
    assert_eq!(
        par_shifted::<2, false>(&xs),
        xs.iter().map(shifted::<2, false>).collect::<Vec<_>>()
    );
    assert_eq!(par_shifted::<1, true>(&xs).len(), 1000);
    let report = amorsize::report();
    let mut names: Vec<&str> = report
        .sites
        .iter()
        .map(|s| s.name)
        .filter(|n| n.contains("shifted"))
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["shapes::shifted::<1, true>", "shapes::shifted::<2, false>"]
    );
}

struct Stats;

impl Stats {
    /// Never mentions `Self`: the attribute is told it is associated.
    #[amorsize::parallel(associated)]
    fn square(x: &u64) -> u64 {
        x * x
    }
}

#[test]
fn associated_functions_that_never_mention_self_take_the_flag() {
    let xs: Vec<u64> = (0..500).collect();
    assert_eq!(
        Stats::par_square(&xs),
        xs.iter().map(Stats::square).collect::<Vec<_>>()
    );
    let report = amorsize::report();
    assert!(report.site("Stats::square").is_some(), "{report}");
}
