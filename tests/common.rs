//! Shared helpers: corpus paths, and decoding with other decoders than the engine's guard
//! (`lodepng` for still PNGs, `image`'s zune-jpeg for JPEG, `image` for the rest).

use std::io::Cursor;
use std::path::{Path, PathBuf};

use image::{AnimationDecoder, ImageDecoder, ImageFormat};

pub fn corpus(folder: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../corpus")
        .join(folder);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.is_file() && !p.extension().is_some_and(|e| e == "md" || e == "py"))
        .collect();
    files.sort();
    files
}

/// The bytes of `corpus/{folder}/{file}`.
pub fn fixture(folder: &str, file: &str) -> Vec<u8> {
    let path = corpus(folder)
        .into_iter()
        .find(|p| name(p) == file)
        .expect(file);
    std::fs::read(path).expect("read")
}

pub fn name(path: &Path) -> String {
    path.file_name()
        .expect("file name")
        .to_string_lossy()
        .into_owned()
}

/// Every frame as 16-bit RGBA, decoded by `image` (not the engine's own decode path).
pub fn frames(bytes: &[u8]) -> Vec<Vec<u16>> {
    let format = image::guess_format(bytes).expect("known format");
    if format == ImageFormat::Png {
        let decoder = image::codecs::png::PngDecoder::new(Cursor::new(bytes)).expect("png");
        if decoder.is_apng().expect("apng check") {
            let frames = decoder.apng().expect("apng").into_frames();
            return frames
                .map(|f| {
                    let buffer = f.expect("frame").into_buffer();
                    image::DynamicImage::ImageRgba8(buffer)
                        .into_rgba16()
                        .into_raw()
                })
                .collect();
        }
    }
    if format == ImageFormat::Png {
        return vec![lodepng_rgba16(bytes)];
    }
    let image = image::load_from_memory_with_format(bytes, format).expect("decodes");
    vec![image.into_rgba16().into_raw()]
}

/// A still PNG as 16-bit RGBA, decoded by `lodepng`: a second decoder beside the `png` crate
/// the engine's guard uses.
///
/// Images of up to 8 bits a sample are asked for as 8-bit RGBA (then scaled by 257): lodepng's
/// conversion of a low-bit-depth grey with a tRNS key straight to 16 bits misses the key.
fn lodepng_rgba16(bytes: &[u8]) -> Vec<u16> {
    let sixteen = bytes.get(24) == Some(&16);
    let image = lodepng::decode_memory(
        bytes,
        lodepng::ColorType::RGBA,
        if sixteen { 16 } else { 8 },
    )
    .expect("lodepng decodes");
    match image {
        lodepng::Image::RGBA16(bitmap) => bitmap
            .buffer
            .iter()
            .flat_map(|p| [p.r, p.g, p.b, p.a])
            .collect(),
        lodepng::Image::RGBA(bitmap) => bitmap
            .buffer
            .iter()
            .flat_map(|p| [p.r, p.g, p.b, p.a].map(|v| u16::from(v) * 257))
            .collect(),
        _ => panic!("lodepng gave another layout than the RGBA asked for"),
    }
}

/// The ICC profile and EXIF orientation `image` reads from the file.
pub fn color_metadata(bytes: &[u8]) -> (Option<Vec<u8>>, Option<image::metadata::Orientation>) {
    let reader = image::ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .expect("format");
    let mut decoder = reader.into_decoder().expect("decoder");
    (
        decoder.icc_profile().expect("icc"),
        decoder.orientation().ok(),
    )
}
