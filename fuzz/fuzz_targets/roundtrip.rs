#![no_main]
//! Structured input → PNG (every colour type and depth, filters, tRNS) → optimize → decode:
//! pixels equal in lossless mode.

use std::time::Duration;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use picopic_engine::{Options, optimize};

#[derive(Debug, Arbitrary)]
struct Image {
    width: u8,
    height: u8,
    kind: u8,
    filter: u8,
    transparent: bool,
    samples: Vec<u8>,
}

#[path = "../../tests/png_kinds.rs"]
mod png_kinds;

use png_kinds::{KINDS, Spec};

const FILTERS: [png::Filter; 6] = [
    png::Filter::NoFilter,
    png::Filter::Sub,
    png::Filter::Up,
    png::Filter::Avg,
    png::Filter::Paeth,
    png::Filter::Adaptive,
];

fn encode(image: &Image) -> Option<Vec<u8>> {
    if image.samples.is_empty() {
        return None;
    }
    let spec = Spec {
        width: u32::from(image.width % 64) + 1,
        height: u32::from(image.height % 64) + 1,
        kind: usize::from(image.kind) % KINDS.len(),
        filter: FILTERS[usize::from(image.filter) % FILTERS.len()],
        trns: image.transparent,
    };
    let data: Vec<u8> = (0..spec.data_len())
        .map(|i| image.samples[i % image.samples.len()])
        .collect();
    spec.encode(&data).ok()
}

/// The image as 16-bit RGBA.
fn pixels(png_bytes: &[u8]) -> Vec<u16> {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    decoder.set_transformations(png::Transformations::EXPAND);
    let mut reader = decoder.read_info().expect("decodes");
    let mut buffer = vec![0; reader.output_buffer_size().expect("size")];
    let info = reader.next_frame(&mut buffer).expect("frame");
    let sixteen = info.bit_depth == png::BitDepth::Sixteen;
    let channels = info.color_type.samples();
    let samples: Vec<u16> = if sixteen {
        buffer[..info.buffer_size()]
            .chunks_exact(2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
            .collect()
    } else {
        buffer[..info.buffer_size()]
            .iter()
            .map(|&b| u16::from(b) * 257)
            .collect()
    };
    samples
        .chunks_exact(channels)
        .flat_map(|p| match channels {
            1 => [p[0], p[0], p[0], u16::MAX],
            2 => [p[0], p[0], p[0], p[1]],
            3 => [p[0], p[1], p[2], u16::MAX],
            _ => [p[0], p[1], p[2], p[3]],
        })
        .collect()
}

fuzz_target!(|image: Image| {
    let Some(input) = encode(&image) else { return };
    let options = Options::default().with_time_budget(Duration::from_millis(20));
    let out = optimize(&input, &options).expect("a valid PNG optimizes");
    assert!(out.data.len() <= input.len());
    assert_eq!(pixels(&input), pixels(&out.data));
});
