//! Random small PNGs of every colour type and bit depth survive optimization pixel-exact.

use std::time::Duration;

use picopic_engine::{Options, optimize};
use proptest::prelude::*;

use crate::common::frames;

/// (colour type, bit depth) pairs the PNG specification allows.
const KINDS: [(png::ColorType, png::BitDepth); 15] = {
    use png::BitDepth::*;
    use png::ColorType::*;
    [
        (Grayscale, One),
        (Grayscale, Two),
        (Grayscale, Four),
        (Grayscale, Eight),
        (Grayscale, Sixteen),
        (Rgb, Eight),
        (Rgb, Sixteen),
        (Indexed, One),
        (Indexed, Two),
        (Indexed, Four),
        (Indexed, Eight),
        (GrayscaleAlpha, Eight),
        (GrayscaleAlpha, Sixteen),
        (Rgba, Eight),
        (Rgba, Sixteen),
    ]
};

fn encode(width: u32, height: u32, kind: usize, levels: u8, seed: &[u8], trns: bool) -> Vec<u8> {
    let (color, depth) = KINDS[kind];
    let bits = depth as usize * color.samples();
    let row = (width as usize * bits).div_ceil(8);
    // Few distinct values make reductions (palette, bit depth, gray) likely.
    let data: Vec<u8> = (0..row * height as usize)
        .map(|i| seed[i % seed.len()] % levels.max(1) * (255 / levels.max(1)))
        .collect();
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(color);
    encoder.set_depth(depth);
    encoder.set_compression(png::Compression::NoCompression);
    if color == png::ColorType::Indexed {
        let entries = 1usize << (depth as usize).min(8);
        encoder.set_palette(
            (0..entries * 3)
                .map(|i| (i * 47 % 256) as u8)
                .collect::<Vec<u8>>(),
        );
        if trns {
            encoder.set_trns(
                (0..entries)
                    .map(|i| (i * 91 % 256) as u8)
                    .collect::<Vec<u8>>(),
            );
        }
    }
    let mut writer = encoder.write_header().expect("header");
    writer.write_image_data(&data).expect("data");
    writer.finish().expect("finish");
    out
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
        prop_assert!(out.data.len() <= input.len());
        prop_assert_eq!(frames(&input), frames(&out.data));
    }
}
