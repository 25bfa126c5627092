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

fn encode(image: &Image) -> Option<Vec<u8>> {
    let (width, height) = (
        u32::from(image.width % 64) + 1,
        u32::from(image.height % 64) + 1,
    );
    let (color, depth) = KINDS[usize::from(image.kind) % KINDS.len()];
    let row = (width as usize * depth as usize * color.samples()).div_ceil(8);
    if image.samples.is_empty() {
        return None;
    }
    let data: Vec<u8> = (0..row * height as usize)
        .map(|i| image.samples[i % image.samples.len()])
        .collect();
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(color);
    encoder.set_depth(depth);
    encoder.set_compression(png::Compression::NoCompression);
    let filters = [
        png::Filter::NoFilter,
        png::Filter::Sub,
        png::Filter::Up,
        png::Filter::Avg,
        png::Filter::Paeth,
        png::Filter::Adaptive,
    ];
    encoder.set_filter(filters[usize::from(image.filter) % filters.len()]);
    if image.transparent {
        // A tRNS chunk: one transparent colour, or alpha for the first palette entries.
        let key = image.samples[0];
        let trns = match color {
            png::ColorType::Grayscale => vec![0, key & depth_mask(depth)],
            png::ColorType::Rgb => vec![0, key, 0, key, 0, key],
            png::ColorType::Indexed => vec![key, 0, 128],
            _ => Vec::new(),
        };
        if !trns.is_empty() {
            encoder.set_trns(trns);
        }
    }
    if color == png::ColorType::Indexed {
        let palette: Vec<u8> = (0..3usize << (depth as usize))
            .map(|i| (i * 37) as u8)
            .collect();
        encoder.set_palette(palette);
    }
    let mut writer = encoder.write_header().ok()?;
    writer.write_image_data(&data).ok()?;
    writer.finish().ok()?;
    Some(out)
}

/// The largest sample value of a grey image at `depth` (in the low byte).
fn depth_mask(depth: png::BitDepth) -> u8 {
    match depth {
        png::BitDepth::One => 1,
        png::BitDepth::Two => 3,
        png::BitDepth::Four => 15,
        _ => 255,
    }
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
