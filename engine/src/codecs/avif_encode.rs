//! AVIF encoding with ravif (rav1e).

use ravif::{AlphaColorMode, BitDepth, ColorModel, Encoder, Img, RGB8, RGBA8};

use crate::error::{Error, Result};
use crate::format::Format;
use crate::pixels::Rgba8;

/// rav1e threads per encode, fixed: ravif otherwise takes the size of the current rayon pool,
/// and the tile count follows the thread count, so the bytes would depend on the machine.
const THREADS: usize = 2;

/// An AVIF of `image` at ravif `quality` (1 to 100) and rav1e `speed` (1 slowest to 10);
/// alpha, when any pixel is not opaque, encoded as an alpha item.
pub(crate) fn encode(image: &Rgba8, quality: f32, speed: u8) -> Result<Vec<u8>> {
    if quality.is_nan() {
        return Err(Error::encode(Format::Avif, "quality is not a number"));
    }
    let (width, height) = (image.width as usize, image.height as usize);
    if width == 0 || height == 0 {
        return Err(Error::encode(Format::Avif, "empty image"));
    }
    if width.checked_mul(height).and_then(|n| n.checked_mul(4)) != Some(image.data.len()) {
        return Err(Error::encode(
            Format::Avif,
            "pixel buffer does not match the dimensions",
        ));
    }
    let quality = quality.clamp(1.0, 100.0);
    let encoder = Encoder::new()
        .with_quality(quality)
        .with_alpha_quality((quality + 10.0).min(100.0))
        .with_speed(speed.clamp(1, 10))
        // 10-bit: at the same score it is smaller than 8-bit on smooth gradients, where 8-bit
        // AV1 bands (a stormy sky: 79.3 against 76.5 at quality 76, and fewer bytes).
        .with_bit_depth(BitDepth::Ten)
        .with_internal_color_model(ColorModel::YCbCr)
        // Invisible pixels get smooth colours that cost few bits.
        .with_alpha_color_mode(AlphaColorMode::UnassociatedClean)
        .with_num_threads(Some(THREADS));
    let chunks = image.data.chunks_exact(4);
    let encoded = if image.opaque() {
        let pixels = try_vec(chunks.map(|p| RGB8::new(p[0], p[1], p[2])))?;
        encoder.encode_rgb(Img::new(&pixels[..], width, height))
    } else {
        let pixels = try_vec(chunks.map(|p| RGBA8::new(p[0], p[1], p[2], p[3])))?;
        encoder.encode_rgba(Img::new(&pixels[..], width, height))
    };
    encoded
        .map(|e| e.avif_file)
        .map_err(|e| Error::encode(Format::Avif, e))
}

/// The items in a vector, failing cleanly instead of aborting when out of memory.
fn try_vec<T>(items: impl ExactSizeIterator<Item = T>) -> Result<Vec<T>> {
    let mut out = Vec::new();
    out.try_reserve_exact(items.len())
        .map_err(|e| Error::encode(Format::Avif, format!("cannot allocate: {e}")))?;
    out.extend(items);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Smooth gradients plus deterministic noise, a little like a photo.
    fn photo(width: u32, height: u32, transparent: bool) -> Rgba8 {
        let mut data = Vec::new();
        let mut seed = 0x2545_f491_u32;
        for y in 0..height {
            for x in 0..width {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                let noise = (seed % 24) as i32 - 12;
                let px = |v: u32| (v as i32 + noise).clamp(0, 255) as u8;
                let r = px(x * 255 / width);
                let g = px(y * 255 / height);
                let b = px((x + y) * 128 / (width + height) + 64);
                let a = if transparent {
                    (x * 255 / width) as u8
                } else {
                    255
                };
                data.extend_from_slice(&[r, g, b, a]);
            }
        }
        Rgba8 {
            width,
            height,
            data,
        }
    }

    fn parse(avif: &[u8]) -> avif_parse::AvifData {
        avif_parse::read_avif(&mut &avif[..]).expect("ravif output parses")
    }

    #[test]
    fn detected_as_avif_and_ten_bit() {
        let avif = encode(&photo(64, 64, false), 70.0, 8).unwrap();
        assert_eq!(crate::format::detect(&avif).unwrap(), Format::Avif);
        let meta = parse(&avif).primary_item_metadata().unwrap();
        assert_eq!(meta.bit_depth, 10);
        assert_eq!(meta.chroma_subsampling, (false, false));
    }

    #[test]
    fn lower_quality_is_smaller() {
        let image = photo(64, 64, false);
        let low = encode(&image, 40.0, 8).unwrap();
        let high = encode(&image, 90.0, 8).unwrap();
        assert!(low.len() < high.len(), "{} >= {}", low.len(), high.len());
    }

    #[test]
    fn deterministic() {
        let image = photo(96, 80, true);
        let first = encode(&image, 60.0, 6).unwrap();
        assert_eq!(first, encode(&image, 60.0, 6).unwrap());
        // Inside a one-thread rayon pool: same bytes as in the global pool.
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        assert_eq!(first, pool.install(|| encode(&image, 60.0, 6)).unwrap());
    }

    #[test]
    fn alpha_item_only_when_transparent() {
        let with = parse(&encode(&photo(32, 32, true), 70.0, 8).unwrap());
        assert!(with.alpha_item.is_some());
        let without_bytes = encode(&photo(32, 32, false), 70.0, 8).unwrap();
        assert!(parse(&without_bytes).alpha_item.is_none());
        let urn = b"urn:mpeg:mpegB:cicp:systems:auxiliary:alpha";
        assert!(!without_bytes.windows(urn.len()).any(|w| w == urn));
    }

    #[test]
    fn tiny_images_and_extreme_settings() {
        for (w, h) in [(1, 1), (2, 3), (3, 2)] {
            for transparent in [false, true] {
                let image = photo(w, h, transparent);
                for (quality, speed) in [(0.0, 0), (1.0, 1), (100.0, 10), (500.0, 255)] {
                    let avif = encode(&image, quality, speed).unwrap();
                    assert_eq!(crate::format::detect(&avif).unwrap(), Format::Avif);
                }
            }
        }
        // Fully transparent.
        let clear = Rgba8 {
            width: 2,
            height: 2,
            data: vec![0; 16],
        };
        assert!(
            parse(&encode(&clear, 50.0, 10).unwrap())
                .alpha_item
                .is_some()
        );
    }

    #[test]
    fn bad_input_is_an_error() {
        let image = photo(4, 4, false);
        assert!(encode(&image, f32::NAN, 6).is_err());
        let empty = Rgba8 {
            width: 0,
            height: 4,
            data: Vec::new(),
        };
        assert!(encode(&empty, 50.0, 6).is_err());
        let short = Rgba8 {
            width: 4,
            height: 4,
            data: vec![0; 10],
        };
        assert!(encode(&short, 50.0, 6).is_err());
    }
}
