//! Uncompressed PNGs of every colour type and bit depth the specification allows, for the
//! round-trip property test and the `roundtrip` fuzz target (which includes this file by path).

/// (colour type, bit depth) pairs the PNG specification allows.
pub const KINDS: [(png::ColorType, png::BitDepth); 15] = {
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

/// What to write.
pub struct Spec {
    pub width: u32,
    pub height: u32,
    /// An index into [`KINDS`].
    pub kind: usize,
    pub filter: png::Filter,
    /// A tRNS chunk: alpha for every palette entry, or one transparent grey or RGB colour.
    pub trns: bool,
}

impl Spec {
    /// Bytes of raw (unfiltered) image data the image holds.
    pub fn data_len(&self) -> usize {
        let (color, depth) = KINDS[self.kind];
        let row = (self.width as usize * depth as usize * color.samples()).div_ceil(8);
        row * self.height as usize
    }

    /// The PNG file, its rows taken from `data` (`data_len` bytes, at least one).
    pub fn encode(&self, data: &[u8]) -> Result<Vec<u8>, png::EncodingError> {
        let (color, depth) = KINDS[self.kind];
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, self.width, self.height);
        encoder.set_color(color);
        encoder.set_depth(depth);
        encoder.set_compression(png::Compression::NoCompression);
        encoder.set_filter(self.filter);
        let entries = 1usize << (depth as usize).min(8);
        if color == png::ColorType::Indexed {
            encoder.set_palette(
                (0..entries * 3)
                    .map(|i| (i * 47 % 256) as u8)
                    .collect::<Vec<_>>(),
            );
        }
        if self.trns {
            let key = data.first().copied().unwrap_or(0);
            let trns = match color {
                png::ColorType::Indexed => (0..entries).map(|i| (i * 91 % 256) as u8).collect(),
                png::ColorType::Grayscale => {
                    vec![0, key & (((1u16 << (depth as u16).min(8)) - 1) as u8)]
                }
                png::ColorType::Rgb => vec![0, key, 0, key, 0, key],
                _ => Vec::new(),
            };
            if !trns.is_empty() {
                encoder.set_trns(trns);
            }
        }
        let mut writer = encoder.write_header()?;
        writer.write_image_data(data)?;
        writer.finish()?;
        Ok(out)
    }
}
