//! Shared helpers: corpus paths, and decoding with other decoders than the engine's guard
//! (`zune-png` for still PNGs, `image`'s zune-jpeg for JPEG, `image` for the rest).

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
        return vec![zune_png_rgba16(bytes)];
    }
    let image = image::load_from_memory_with_format(bytes, format).expect("decodes");
    vec![image.into_rgba16().into_raw()]
}

/// A still PNG as 16-bit RGBA, decoded by `zune-png`: a second decoder beside the `png`
/// crate the engine's guard uses.
fn zune_png_rgba16(bytes: &[u8]) -> Vec<u16> {
    use zune_png::zune_core::bytestream::ZCursor;
    use zune_png::zune_core::colorspace::ColorSpace;
    use zune_png::zune_core::options::DecoderOptions;
    use zune_png::zune_core::result::DecodingResult;
    let options = DecoderOptions::default()
        .png_set_add_alpha_channel(true)
        .set_max_width(1 << 16)
        .set_max_height(1 << 16);
    let mut decoder = zune_png::PngDecoder::new_with_options(ZCursor::new(bytes), options);
    let samples: Vec<u16> = match decoder.decode().expect("zune-png decodes") {
        DecodingResult::U8(v) => v.into_iter().map(|x| u16::from(x) * 257).collect(),
        DecodingResult::U16(v) => v,
        _ => panic!("unexpected sample type"),
    };
    let colorspace = decoder.colorspace().expect("colour space");
    let channels = colorspace.num_components();
    samples
        .chunks_exact(channels)
        .flat_map(|p| match colorspace {
            ColorSpace::Luma => [p[0], p[0], p[0], u16::MAX],
            ColorSpace::LumaA => [p[0], p[0], p[0], p[1]],
            ColorSpace::RGB => [p[0], p[1], p[2], u16::MAX],
            ColorSpace::RGBA => [p[0], p[1], p[2], p[3]],
            other => panic!("unexpected colour space {other:?}"),
        })
        .collect()
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
