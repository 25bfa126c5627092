//! libdeflate compressors kept per thread and level: setting one up costs more than
//! deflating a small image, and the filter search deflates many.

use std::cell::RefCell;

use libdeflater::{CompressionLvl, Compressor};

thread_local! {
    static COMPRESSORS: RefCell<Vec<(i32, Compressor)>> = const { RefCell::new(Vec::new()) };
}

fn with_compressor<R>(level: i32, f: impl FnOnce(&mut Compressor) -> R) -> R {
    COMPRESSORS.with_borrow_mut(|cache| {
        let at = match cache.iter().position(|(l, _)| *l == level) {
            Some(at) => at,
            None => {
                let lvl = CompressionLvl::new(level).unwrap_or_else(|_| CompressionLvl::best());
                cache.push((level, Compressor::new(lvl)));
                cache.len() - 1
            }
        };
        f(&mut cache[at].1)
    })
}

/// `data` as a zlib stream deflated at `level`.
pub(super) fn zlib(data: &[u8], level: i32) -> Vec<u8> {
    with_compressor(level, |c| {
        let mut out = vec![0; c.zlib_compress_bound(data.len())];
        // The buffer holds the bound, so compression cannot run out of room.
        let len = c.zlib_compress(data, &mut out).unwrap_or(out.len());
        out.truncate(len);
        // Streams are kept while others are deflated: give back the bound's spare room.
        out.shrink_to_fit();
        out
    })
}

/// Length of `data` deflated (raw, no zlib wrapper) at `level`; `scratch` is reused.
pub(super) fn deflated_len(data: &[u8], level: i32, scratch: &mut Vec<u8>) -> usize {
    with_compressor(level, |c| {
        let bound = c.deflate_compress_bound(data.len());
        scratch.resize(bound, 0);
        c.deflate_compress(data, scratch).unwrap_or(bound)
    })
}
