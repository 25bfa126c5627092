//! Random small PNGs of every colour type and bit depth survive optimization pixel-exact.

use std::time::Duration;

use picopic_engine::{Level, Options, optimize};
use proptest::prelude::*;

use crate::common::frames;
use crate::png_kinds::{KINDS, Spec};

fn encode(width: u32, height: u32, kind: usize, levels: u8, seed: &[u8], trns: bool) -> Vec<u8> {
    let spec = Spec {
        width,
        height,
        kind,
        filter: png::Filter::Adaptive,
        trns,
    };
    // Few distinct values make reductions (palette, bit depth, gray) likely.
    let data: Vec<u8> = (0..spec.data_len())
        .map(|i| seed[i % seed.len()] % levels.max(1) * (255 / levels.max(1)))
        .collect();
    spec.encode(&data).expect("encodes")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn random_pngs_round_trip_exactly(
        width in 1u32..24,
        height in 1u32..24,
        kind in 0usize..KINDS.len(),
        levels in 1u8..=255,
        seed in proptest::collection::vec(any::<u8>(), 1..64),
        trns in any::<bool>(),
    ) {
        let input = encode(width, height, kind, levels, &seed, trns);
        let options = Options::default().with_time_budget(Duration::from_millis(50));
        let out = optimize(&input, &options).expect("optimizes");
        prop_assert!(out.worst() < Level::Error, "a guard fired: {:?}", out.notes);
        prop_assert!(out.data.len() <= input.len());
        prop_assert_eq!(frames(&input), frames(&out.data));
    }
}
