//! Palette PNG: quantize to at most 256 colours, optionally dithered, written as an indexed
//! PNG that the lossless PNG pipeline then compresses.
//!
//! Colours are compared as 4-vectors: the Oklab of the colour composited on black
//! (premultiplied), plus alpha. Fully transparent pixels all take one dedicated entry; the
//! others go through Wu's quantizer (on the premultiplied colour) refined by k-means on the
//! 4-vectors, both from quantette and single-threaded, so the output depends only on the input.

use std::borrow::Cow;
use std::collections::HashMap;

use quantette::color_map::{IndexedColorMap, NearestNeighborColorMap};
use quantette::color_space::{oklab_to_srgb8, srgb8_to_oklab};
use quantette::deps::palette::{Alpha, Oklab, Srgb};
use quantette::kmeans::{Kmeans, KmeansOptions};
use quantette::wu::{BinnerF32x3, WuF32x3};
use quantette::{PaletteBuf, PaletteSize};

use crate::error::{Error, Result};
use crate::format::Format;
use crate::pixels::Rgba8;
use crate::work::{room_for, zeroed};

/// Oklab of the premultiplied colour, and alpha (0 to 1) times [`ALPHA_WEIGHT`].
type Point = Alpha<Oklab, f32>;
/// RGBA palette entries and one index per pixel.
type Indexed = (Vec<[u8; 4]>, Vec<u8>);

/// Weight of alpha against Oklab distances (lightness spans 0 to 1).
const ALPHA_WEIGHT: f32 = 1.0;
/// Share of the quantization error passed on to neighbours (quantette's default too).
const DIFFUSION: f32 = 7.0 / 8.0;
/// k-means sample order seed.
const SEED: u64 = 0x7069_636f;

/// An indexed PNG (with `tRNS` for alpha and `iCCP` for `icc`) of `image` quantized to at
/// most `colors` colours (2 to 256), error-diffusion dithered when `dither`.
pub(crate) fn quantize(
    image: &Rgba8,
    colors: u16,
    dither: bool,
    icc: Option<&[u8]>,
) -> Result<Vec<u8>> {
    if !(2..=256).contains(&colors) {
        return Err(Error::encode(
            Format::Png,
            format!("palette size {colors} is not in 2 to 256"),
        ));
    }
    let (width, height) = (image.width as usize, image.height as usize);
    let pixels = width.saturating_mul(height);
    if pixels == 0 || pixels.checked_mul(4) != Some(image.data.len()) {
        return Err(Error::encode(
            Format::Png,
            "pixel buffer does not match the dimensions",
        ));
    }
    if u32::try_from(pixels).is_err() {
        return Err(Error::encode(Format::Png, "too many pixels to quantize"));
    }
    let (palette, indices) = match exact(image, usize::from(colors))? {
        Some(found) => found,
        None => reduce(image, usize::from(colors), dither)?,
    };
    let (palette, indices) = translucent_first((palette, indices));
    write_png(image.width, image.height, &palette, &indices, icc)
        .map_err(|e| Error::encode(Format::Png, e))
}

/// All fully transparent pixels are one colour.
fn key(p: &[u8]) -> [u8; 4] {
    if p[3] == 0 {
        [0; 4]
    } else {
        [p[0], p[1], p[2], p[3]]
    }
}

/// `len` items in a vector, the size coming from the input: failing cleanly instead of
/// aborting.
fn try_vec<T>(len: usize, items: impl Iterator<Item = T>) -> Result<Vec<T>> {
    let mut out = Vec::new();
    out.try_reserve_exact(len)
        .map_err(|e| Error::encode(Format::Png, format!("cannot allocate: {e}")))?;
    out.extend(items.take(len));
    Ok(out)
}

/// The palette (in order of first use) and indices, when the image has at most `colors`
/// colours.
fn exact(image: &Rgba8, colors: usize) -> Result<Option<Indexed>> {
    let mut seen: HashMap<[u8; 4], u8> = HashMap::new();
    let mut palette = Vec::new();
    let mut indices = room_for(image.data.len() / 4)?;
    for p in image.data.chunks_exact(4) {
        let k = key(p);
        let index = match seen.get(&k) {
            Some(&i) => i,
            None => {
                let Ok(i) = u8::try_from(palette.len()) else {
                    return Ok(None);
                };
                if palette.len() == colors {
                    return Ok(None);
                }
                seen.insert(k, i);
                palette.push(k);
                i
            }
        };
        indices.push(index);
    }
    Ok(Some((palette, indices)))
}

/// The colour multiplied by alpha, rounded.
fn premultiplied(p: [u8; 4]) -> Srgb<u8> {
    let mul = |c: u8| ((u16::from(c) * u16::from(p[3]) + 127) / 255) as u8;
    Srgb::new(mul(p[0]), mul(p[1]), mul(p[2]))
}

/// Oklab of the premultiplied colours of `pixels`.
fn oklab(pixels: &[[u8; 4]]) -> Result<Vec<Oklab>> {
    let premul = try_vec(pixels.len(), pixels.iter().map(|&p| premultiplied(p)))?;
    Ok(srgb8_to_oklab(&premul))
}

fn point(color: Oklab, p: [u8; 4]) -> Point {
    Alpha {
        color,
        alpha: f32::from(p[3]) / 255.0 * ALPHA_WEIGHT,
    }
}

/// The points of `pixels` (alpha 0 gives black with alpha 0).
fn points(pixels: &[[u8; 4]]) -> Result<Vec<Point>> {
    let colors = oklab(pixels)?;
    try_vec(
        pixels.len(),
        colors.into_iter().zip(pixels).map(|(c, &p)| point(c, p)),
    )
}

fn quantette_error(e: impl std::fmt::Display) -> Error {
    Error::encode(Format::Png, format!("quantizer: {e}"))
}

/// A palette of at most `colors` entries for an image with more, and the indices.
fn reduce(image: &Rgba8, colors: usize, dither: bool) -> Result<Indexed> {
    let total = image.data.len() / 4;
    let count = image.data.chunks_exact(4).filter(|p| p[3] != 0).count();
    let visible = try_vec(
        count,
        image.data.chunks_exact(4).filter(|p| p[3] != 0).map(key),
    )?;
    let transparent = count < total;
    let k = colors - usize::from(transparent);

    // Wu on the premultiplied colours, then each centroid's alpha is the mean of its pixels'.
    let colours = oklab(&visible)?;
    let wu = WuF32x3::run_slice(&colours, BinnerF32x3::oklab_from_srgb8())
        .map_err(quantette_error)?
        .palette(PaletteSize::from_usize_clamped(k));
    let mut alpha = vec![(0.0f64, 0u32); wu.len()];
    if visible.iter().all(|p| p[3] == 255) {
        alpha.fill((1.0, 1));
    } else {
        let nearest = NearestNeighborColorMap::new(wu.clone());
        for (c, p) in colours.iter().zip(&visible) {
            let slot = &mut alpha[usize::from(nearest.palette_index(c))];
            slot.0 += f64::from(p[3]) / 255.0;
            slot.1 += 1;
        }
    }
    let centroids: Vec<Point> = wu
        .iter()
        .zip(&alpha)
        .map(|(&color, &(sum, n))| Alpha {
            color,
            alpha: ALPHA_WEIGHT
                * if n == 0 {
                    1.0
                } else {
                    (sum / f64::from(n)) as f32
                },
        })
        .collect();
    let centroids = PaletteBuf::new(centroids).map_err(quantette_error)?;
    let visible_points = try_vec(
        count,
        colours.into_iter().zip(&visible).map(|(c, &p)| point(c, p)),
    )?;
    drop(visible);
    let refined = Kmeans::run_slice(&visible_points, centroids, KmeansOptions::new().seed(SEED))
        .map_err(quantette_error)?
        .into_palette();

    // Back to RGBA; the distinct entries, measured as written.
    let premul = oklab_to_srgb8(&refined.iter().map(|p| p.color).collect::<Vec<_>>());
    let mut palette: Vec<[u8; 4]> = Vec::new();
    for (c, p) in premul.iter().zip(refined.iter()) {
        let a = (p.alpha / ALPHA_WEIGHT * 255.0).round().clamp(1.0, 255.0) as u8;
        let unmul = |v: u8| {
            if a == 255 {
                v
            } else {
                ((u32::from(v) * 255 + u32::from(a) / 2) / u32::from(a)).min(255) as u8
            }
        };
        let entry = [unmul(c.red), unmul(c.green), unmul(c.blue), a];
        if !palette.contains(&entry) {
            palette.push(entry);
        }
    }
    let entries = PaletteBuf::new(points(&palette)?).map_err(quantette_error)?;
    let nearest = NearestNeighborColorMap::new(entries);
    // The transparent entry goes last (at most 255 entries come before it).
    let mut clear = 0;
    if transparent {
        clear = u8::try_from(palette.len()).map_err(quantette_error)?;
        palette.push([0; 4]);
    }

    let indices = if dither {
        diffuse(image, &nearest, clear)?
    } else {
        let mut visible = visible_points.iter();
        try_vec(
            total,
            image.data.chunks_exact(4).map(|p| match p[3] {
                0 => clear,
                _ => visible.next().map_or(clear, |v| nearest.palette_index(v)),
            }),
        )?
    };
    Ok((palette, indices))
}

/// Floyd–Steinberg in serpentine order on the premultiplied Oklab colour (alpha error is not
/// spread, to keep edges clean). Fully transparent pixels take `clear` and stop the error.
fn diffuse(
    image: &Rgba8,
    nearest: &NearestNeighborColorMap<Point, f32, 4>,
    clear: u8,
) -> Result<Vec<u8>> {
    let width = image.width as usize;
    let entries = nearest.palette();
    let mut indices = zeroed(image.data.len() / 4)?;
    // Errors for this row and the next, one pixel of padding on each side.
    let mut this = vec![[0.0f32; 3]; width + 2];
    let mut next = vec![[0.0f32; 3]; width + 2];
    let rows = image.data.chunks_exact(width * 4);
    for (y, (row, out)) in rows.zip(indices.chunks_exact_mut(width)).enumerate() {
        let row: Vec<[u8; 4]> = row.chunks_exact(4).map(key).collect();
        let row_points = points(&row)?;
        let ltr = y % 2 == 0;
        for step in 0..width {
            let x = if ltr { step } else { width - 1 - step };
            if row[x][3] == 0 {
                out[x] = clear;
                continue;
            }
            let mut point = row_points[x];
            let e = this[x + 1];
            point.color.l += e[0];
            point.color.a += e[1];
            point.color.b += e[2];
            let index = nearest.palette_index(&point);
            out[x] = index;
            let chosen = entries[index].color;
            let err = [
                (point.color.l - chosen.l) * DIFFUSION,
                (point.color.a - chosen.a) * DIFFUSION,
                (point.color.b - chosen.b) * DIFFUSION,
            ];
            // Padded positions: x + 1 is this pixel, x + 2 and x the neighbours.
            let (ahead, behind) = if ltr { (x + 2, x) } else { (x, x + 2) };
            let spread = |cell: &mut [f32; 3], share: f32| {
                for (c, e) in cell.iter_mut().zip(err) {
                    *c += e * share / 16.0;
                }
            };
            spread(&mut this[ahead], 7.0);
            spread(&mut next[behind], 3.0);
            spread(&mut next[x + 1], 5.0);
            spread(&mut next[ahead], 1.0);
        }
        std::mem::swap(&mut this, &mut next);
        next.fill([0.0; 3]);
    }
    Ok(indices)
}

/// Entries with alpha first, so `tRNS` stays short; indices follow.
fn translucent_first((palette, mut indices): Indexed) -> Indexed {
    let mut order: Vec<usize> = (0..palette.len()).collect();
    order.sort_by_key(|&i| palette[i][3] == 255);
    let mut new_index = [0u8; 256];
    for (new, &old) in order.iter().enumerate() {
        new_index[old] = new as u8;
    }
    let palette = order.iter().map(|&i| palette[i]).collect();
    for i in &mut indices {
        *i = new_index[usize::from(*i)];
    }
    (palette, indices)
}

/// An 8-bit indexed PNG, fast compression.
fn write_png(
    width: u32,
    height: u32,
    palette: &[[u8; 4]],
    indices: &[u8],
    icc: Option<&[u8]>,
) -> std::result::Result<Vec<u8>, png::EncodingError> {
    let mut info = png::Info::with_size(width, height);
    info.color_type = png::ColorType::Indexed;
    info.bit_depth = png::BitDepth::Eight;
    info.palette = Some(Cow::Owned(
        palette.iter().flat_map(|p| [p[0], p[1], p[2]]).collect(),
    ));
    let translucent = palette.iter().take_while(|p| p[3] != 255).count();
    if translucent > 0 {
        info.trns = Some(Cow::Owned(
            palette[..translucent].iter().map(|p| p[3]).collect(),
        ));
    }
    info.icc_profile = icc.filter(|p| !p.is_empty()).map(Cow::Borrowed);
    let mut out = Vec::new();
    let mut encoder = png::Encoder::with_info(&mut out, info)?;
    encoder.set_compression(png::Compression::Fast);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(indices)?;
    writer.finish()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    struct Decoded {
        /// RGBA, the palette expanded.
        rgba: Vec<u8>,
        entries: usize,
        icc: Option<Vec<u8>>,
    }

    fn decode(png: &[u8]) -> Decoded {
        let mut reader = png::Decoder::new(Cursor::new(png)).read_info().unwrap();
        let mut buffer = vec![0; reader.output_buffer_size().unwrap()];
        let frame = reader.next_frame(&mut buffer).unwrap();
        assert_eq!(frame.color_type, png::ColorType::Indexed);
        assert_eq!(frame.bit_depth, png::BitDepth::Eight);
        buffer.truncate(frame.buffer_size());
        let info = reader.info();
        let plte = info.palette.as_deref().unwrap();
        let trns = info.trns.as_deref().unwrap_or(&[]);
        let entries = plte.len() / 3;
        let rgba = buffer
            .iter()
            .flat_map(|&i| {
                let i = usize::from(i);
                assert!(i < entries);
                let c = &plte[i * 3..i * 3 + 3];
                [c[0], c[1], c[2], trns.get(i).copied().unwrap_or(255)]
            })
            .collect();
        Decoded {
            rgba,
            entries,
            icc: info.icc_profile.as_deref().map(<[u8]>::to_vec),
        }
    }

    fn image(width: u32, height: u32, f: impl Fn(u32, u32) -> [u8; 4]) -> Rgba8 {
        let data = (0..height)
            .flat_map(|y| (0..width).map(move |x| (x, y)))
            .flat_map(|(x, y)| f(x, y))
            .collect();
        Rgba8 {
            width,
            height,
            data,
        }
    }

    /// Smooth gradients with deterministic noise.
    fn photo(width: u32, height: u32) -> Rgba8 {
        image(width, height, |x, y| {
            let mut s = (x * 7919 + y * 104_729) ^ 0x9e37_79b9;
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            let n = (s % 9) as i32 - 4;
            let c = |v: u32| (v as i32 + n).clamp(0, 255) as u8;
            [
                c(x * 255 / width),
                c(y * 255 / height),
                c(255 - (x + y) * 255 / (width + height)),
                255,
            ]
        })
    }

    fn mean_abs_error(a: &[u8], b: &[u8]) -> f64 {
        let sum: u64 = a
            .iter()
            .zip(b)
            .map(|(&x, &y)| u64::from(x.abs_diff(y)))
            .sum();
        sum as f64 / a.len() as f64
    }

    #[test]
    fn few_colours_come_back_exact() {
        let colours = [
            [255, 0, 0, 255],
            [0, 255, 0, 255],
            [0, 0, 255, 128],
            [9, 9, 9, 255],
            [0, 0, 0, 0],
        ];
        let source = image(13, 7, |x, y| colours[((x * 3 + y * 5) % 5) as usize]);
        for dither in [false, true] {
            let decoded = decode(&quantize(&source, 5, dither, None).unwrap());
            assert_eq!(decoded.rgba, source.data);
            assert_eq!(decoded.entries, 5);
        }
        // Invisible colours merge into one transparent entry.
        let mut hidden = source.clone();
        // Every seventh pixel's alpha to 0, then varied colours under all alpha 0.
        hidden.data[3..]
            .chunks_mut(4)
            .step_by(7)
            .for_each(|p| p[0] = 0);
        for (i, p) in hidden.data.chunks_exact_mut(4).enumerate() {
            if p[3] == 0 {
                p[..3].copy_from_slice(&[i as u8, 1, 2]);
            }
        }
        let decoded = decode(&quantize(&hidden, 5, false, None).unwrap());
        assert!(decoded.entries <= 5);
        for (d, s) in decoded
            .rgba
            .chunks_exact(4)
            .zip(hidden.data.chunks_exact(4))
        {
            assert_eq!(d[3], s[3]);
            if s[3] != 0 {
                assert_eq!(d, s);
            }
        }
    }

    #[test]
    fn photo_to_64_colours() {
        let source = photo(64, 64);
        let plain = quantize(&source, 64, false, None).unwrap();
        let dithered = quantize(&source, 64, true, None).unwrap();
        assert_ne!(plain, dithered);
        // quantette's own k-means pipeline, undithered: 6.55 (alpha counted, error 0).
        for (png, bound) in [(&plain, 7.0), (&dithered, 8.0)] {
            let decoded = decode(png);
            assert!(decoded.entries <= 64, "{} entries", decoded.entries);
            let error = mean_abs_error(&decoded.rgba, &source.data);
            assert!(error < bound, "mean abs error {error}");
            // Opaque stays opaque.
            assert!(decoded.rgba.chunks_exact(4).all(|p| p[3] == 255));
        }
        assert_eq!(plain, quantize(&source, 64, false, None).unwrap());
        assert_eq!(dithered, quantize(&source, 64, true, None).unwrap());
    }

    #[test]
    fn palette_sizes_from_2_to_256() {
        let source = photo(40, 30);
        for colors in [2, 3, 16, 255, 256] {
            for dither in [false, true] {
                let decoded = decode(&quantize(&source, colors, dither, None).unwrap());
                assert!(decoded.entries <= usize::from(colors));
            }
        }
        for colors in [0, 1, 257, 1000] {
            assert!(quantize(&source, colors, false, None).is_err());
        }
    }

    #[test]
    fn icc_round_trip() {
        let icc: Vec<u8> = (0..600u32).map(|i| (i * 31 % 251) as u8).collect();
        let decoded = decode(&quantize(&photo(8, 8), 16, false, Some(&icc)).unwrap());
        assert_eq!(decoded.icc.as_deref(), Some(&icc[..]));
        assert!(
            decode(&quantize(&photo(8, 8), 16, false, None).unwrap())
                .icc
                .is_none()
        );
    }

    #[test]
    fn transparency_is_kept() {
        // A photo with a fully transparent hole and a translucent ramp at the bottom.
        let base = photo(48, 48);
        let source = image(48, 48, |x, y| {
            let i = ((y * 48 + x) * 4) as usize;
            let mut p = [base.data[i], base.data[i + 1], base.data[i + 2], 255];
            if (16..32).contains(&x) && (16..32).contains(&y) {
                p = [x as u8, y as u8, 7, 0];
            } else if y >= 40 {
                p[3] = (x * 5) as u8;
            }
            p
        });
        for dither in [false, true] {
            for colors in [2, 32, 256] {
                let png = quantize(&source, colors, dither, None).unwrap();
                assert_eq!(png, quantize(&source, colors, dither, None).unwrap());
                let decoded = decode(&png);
                assert!(decoded.entries <= usize::from(colors));
                for (d, s) in decoded
                    .rgba
                    .chunks_exact(4)
                    .zip(source.data.chunks_exact(4))
                {
                    // Transparent exactly where the source is.
                    assert_eq!(d[3] == 0, s[3] == 0);
                }
                if colors == 256 {
                    let alpha_error: u32 = decoded
                        .rgba
                        .chunks_exact(4)
                        .zip(source.data.chunks_exact(4))
                        .map(|(d, s)| u32::from(d[3].abs_diff(s[3])))
                        .max()
                        .unwrap();
                    assert!(alpha_error <= 40, "alpha off by {alpha_error}");
                    let error = mean_abs_error(&decoded.rgba, &source.data);
                    assert!(error < 6.0, "mean abs error {error}");
                }
            }
        }
    }

    #[test]
    fn tiny_and_bad_images() {
        for (w, h) in [(1, 1), (2, 3), (3, 1)] {
            let source = photo(w, h);
            let decoded = decode(&quantize(&source, 2, true, None).unwrap());
            assert_eq!(decoded.rgba.len(), source.data.len());
        }
        let clear = image(3, 3, |_, _| [0; 4]);
        assert_eq!(
            decode(&quantize(&clear, 2, true, None).unwrap()).rgba,
            clear.data
        );
        let empty = Rgba8 {
            width: 0,
            height: 0,
            data: Vec::new(),
        };
        assert!(quantize(&empty, 16, false, None).is_err());
        let short = Rgba8 {
            width: 4,
            height: 4,
            data: vec![0; 12],
        };
        assert!(quantize(&short, 16, false, None).is_err());
    }
}
