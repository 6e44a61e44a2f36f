#!/usr/bin/env bash
# What annotated functions cost at build time and in the binary, against rayon.
#
#   scripts/compile_cost.sh [N]      (N functions, default 100; a few minutes on 2 cores)
#
# Generates three binary crates under target/compile-cost/, each with N small per-item
# functions called once on a Vec: `loops` (a plain iterator map), `rayon`
# (`par_iter().map(f).collect()`) and `amorsize` (`#[amorsize::parallel]`, `par_f(&items)`).
# Builds each in release twice: once for its dependencies, then again after touching its
# source, so that the second build times the crate alone. Prints each crate's build time and
# binary size, the cost per function over the loops (what each style adds per call site),
# and amorsize's per-function costs as ratios of rayon's.
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-100}"
root="$PWD"
out="$root/target/compile-cost"
mkdir -p "$out"

generate() { # name
  local name="$1" dir="$out/$1"
  mkdir -p "$dir/src"
  {
    echo '[package]'
    echo "name = \"cc-$name\""
    echo 'version = "0.0.0"'
    echo 'edition = "2021"'
    echo 'publish = false'
    echo '[dependencies]'
    [ "$name" = rayon ] && echo 'rayon = "1.12"'
    [ "$name" = amorsize ] && echo "amorsize = { path = \"$root\" }"
    echo '[workspace]'
  } > "$dir/Cargo.toml"
  {
    [ "$name" = rayon ] && echo 'use rayon::prelude::*;'
    for i in $(seq 1 "$n"); do
      [ "$name" = amorsize ] && echo '#[amorsize::parallel]'
      echo "fn f$i(x: &u64) -> u64 { x.wrapping_mul($i).rotate_left($((i % 63 + 1))) ^ $i }"
    done
    echo 'fn main() {'
    echo '    let items: Vec<u64> = (0..std::env::args().count() as u64 * 1000).collect();'
    echo '    let mut total = 0u64;'
    for i in $(seq 1 "$n"); do
      case "$name" in
        loops) echo "    total ^= items.iter().map(f$i).collect::<Vec<_>>().iter().sum::<u64>();" ;;
        rayon) echo "    total ^= items.par_iter().map(f$i).collect::<Vec<_>>().iter().sum::<u64>();" ;;
        amorsize) echo "    total ^= par_f$i(&items).iter().sum::<u64>();" ;;
      esac
    done
    echo '    println!("{total}");'
    echo '}'
  } > "$dir/src/main.rs"
}

build() { # name -> seconds bytes
  local dir="$out/$1"
  (cd "$dir" && cargo build --release --quiet)
  touch "$dir/src/main.rs"
  local start end
  start=$(date +%s.%N)
  (cd "$dir" && cargo build --release --quiet)
  end=$(date +%s.%N)
  echo "$(echo "$end - $start" | bc) $(stat -c %s "$dir/target/release/cc-$1")"
}

for style in loops rayon amorsize; do generate "$style"; done
read -r loops_s loops_b < <(build loops)
read -r rayon_s rayon_b < <(build rayon)
read -r amorsize_s amorsize_b < <(build amorsize)

printf '%d functions, release builds of the crate alone (its dependencies built before)\n' "$n"
printf '  %-9s %8.1f s  %10d bytes\n' loops "$loops_s" "$loops_b" rayon "$rayon_s" "$rayon_b" amorsize "$amorsize_s" "$amorsize_b"
per() { echo "scale=4; ($1 - $2) / $n" | bc; }
rayon_t=$(per "$rayon_s" "$loops_s"); amorsize_t=$(per "$amorsize_s" "$loops_s")
rayon_z=$(per "$rayon_b" "$loops_b"); amorsize_z=$(per "$amorsize_b" "$loops_b")
printf 'per function over the loops: rayon %.3f s, %.0f bytes; amorsize %.3f s, %.0f bytes\n' \
  "$rayon_t" "$rayon_z" "$amorsize_t" "$amorsize_z"
printf 'amorsize / rayon per function: build time %.2f×, binary size %.2f× [targets ≤ 1.2×]\n' \
  "$(echo "scale=4; $amorsize_t / $rayon_t" | bc)" "$(echo "scale=4; $amorsize_z / $rayon_z" | bc)"
