//! PNG row filters (spec section 9) and the strategies that pick one filter per row.

use std::sync::OnceLock;

use super::deflate::deflated_len;
use crate::error::Result;
use crate::work::room_for;

/// How the filter type of each row is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Strategy {
    /// The same filter type (0 None, 1 Sub, 2 Up, 3 Average, 4 Paeth) on every row.
    Fixed(u8),
    /// The type whose bytes, read as signed, have the smallest sum of magnitudes.
    MinSum,
    /// The type whose bytes have the lowest Shannon entropy.
    Entropy,
    /// The type with the fewest distinct byte pairs.
    Bigrams,
    /// The type whose byte pairs have the lowest entropy.
    BigEnt,
    /// The type that deflates smallest together with the `lines` rows before it.
    Brute { lines: usize, level: u8 },
}

impl Strategy {
    /// The five fixed filters and the four per-row heuristics.
    pub const HEURISTIC: [Self; 9] = [
        Self::Fixed(0),
        Self::Fixed(1),
        Self::Fixed(2),
        Self::Fixed(3),
        Self::Fixed(4),
        Self::MinSum,
        Self::Entropy,
        Self::Bigrams,
        Self::BigEnt,
    ];
}

/// Unfiltered rows of one image: `rows` rows of `stride` bytes, `bpp` bytes per pixel
/// (at least 1, as the spec rounds sub-byte pixels up for filtering).
#[derive(Debug)]
pub(super) struct Rows<'a> {
    pub data: &'a [u8],
    pub stride: usize,
    pub bpp: usize,
}

/// Filters `row` with filter type `kind` against the row above, `prev`, into `out`.
fn filter_row(kind: u8, bpp: usize, row: &[u8], prev: &[u8], out: &mut [u8]) {
    let left = |i: usize| if i >= bpp { row[i - bpp] } else { 0 };
    let corner = |i: usize| if i >= bpp { prev[i - bpp] } else { 0 };
    for i in 0..row.len() {
        let predicted = match kind {
            0 => 0,
            1 => left(i),
            2 => prev[i],
            3 => ((u16::from(left(i)) + u16::from(prev[i])) / 2) as u8,
            _ => paeth(left(i), prev[i], corner(i)),
        };
        out[i] = row[i].wrapping_sub(predicted);
    }
}

fn paeth(a: u8, b: u8, c: u8) -> u8 {
    let p = i16::from(a) + i16::from(b) - i16::from(c);
    let (pa, pb, pc) = (
        (p - i16::from(a)).abs(),
        (p - i16::from(b)).abs(),
        (p - i16::from(c)).abs(),
    );
    if pa <= pb && pa <= pc {
        a
    } else if pb <= pc {
        b
    } else {
        c
    }
}

/// Scores filtered rows for one strategy; lower is better.
struct Scorer {
    strategy: Strategy,
    pairs: Vec<u32>,
    window: Vec<u8>,
    scratch: Vec<u8>,
}

impl Scorer {
    fn new(strategy: Strategy) -> Self {
        // Bigrams: one bit per byte pair; BigEnt: a count per pair.
        let pairs = match strategy {
            Strategy::Bigrams => vec![0; 1 << 11],
            Strategy::BigEnt => vec![0; 1 << 16],
            _ => Vec::new(),
        };
        Self {
            strategy,
            pairs,
            window: Vec::new(),
            scratch: Vec::new(),
        }
    }

    /// Scores a filtered row, its type byte first.
    fn score(&mut self, row: &[u8]) -> f64 {
        match self.strategy {
            Strategy::Fixed(_) => 0.0,
            Strategy::MinSum => row
                .iter()
                .map(|&b| u64::from((b as i8).unsigned_abs()))
                .sum::<u64>() as f64,
            Strategy::Entropy => {
                let mut counts = [0u32; 256];
                for &b in row {
                    counts[usize::from(b)] += 1;
                }
                -counts.iter().map(|&c| c_log_c(c)).sum::<f64>()
            }
            Strategy::Bigrams => {
                let mut distinct = 0u32;
                for pair in row.windows(2) {
                    let (word, bit) = (pair_index(pair) / 32, 1 << (pair_index(pair) % 32));
                    distinct += u32::from(self.pairs[word] & bit == 0);
                    self.pairs[word] |= bit;
                }
                for pair in row.windows(2) {
                    self.pairs[pair_index(pair) / 32] = 0;
                }
                f64::from(distinct)
            }
            Strategy::BigEnt => {
                for pair in row.windows(2) {
                    self.pairs[pair_index(pair)] += 1;
                }
                let mut sum = 0.0;
                for pair in row.windows(2) {
                    let slot = &mut self.pairs[pair_index(pair)];
                    sum += c_log_c(*slot);
                    *slot = 0;
                }
                -sum
            }
            Strategy::Brute { level, .. } => {
                let start = self.window.len();
                self.window.extend_from_slice(row);
                let size = deflated_len(&self.window, i32::from(level), &mut self.scratch);
                self.window.truncate(start);
                size as f64
            }
        }
    }

    /// Brute only: remembers the chosen row, keeping the last `lines` rows.
    fn push(&mut self, row: &[u8]) {
        if let Strategy::Brute { lines, .. } = self.strategy {
            let keep = lines * row.len();
            self.window.extend_from_slice(row);
            if self.window.len() > keep {
                self.window.drain(..self.window.len() - keep);
            }
        }
    }
}

/// `c * log2(c)`, from a table for the small counts that most rows have.
fn c_log_c(c: u32) -> f64 {
    static TABLE: OnceLock<Vec<f64>> = OnceLock::new();
    let table = TABLE.get_or_init(|| (0..4096).map(direct_c_log_c).collect());
    table
        .get(c as usize)
        .copied()
        .unwrap_or_else(|| direct_c_log_c(c))
}

fn direct_c_log_c(c: u32) -> f64 {
    if c == 0 {
        0.0
    } else {
        let c = f64::from(c);
        c * c.log2()
    }
}

fn pair_index(pair: &[u8]) -> usize {
    usize::from(pair[0]) << 8 | usize::from(pair[1])
}

/// The filtered image: each row prefixed by its filter type, ready to deflate. Heuristics
/// score a row with its type byte, as it will be deflated; a row of zeros stays unfiltered.
pub(super) fn apply(rows: &Rows<'_>, strategy: Strategy) -> Result<Vec<u8>> {
    let stride = rows.stride;
    let count = rows.data.len().checked_div(stride).unwrap_or(0);
    let mut out = room_for(count * (stride + 1))?;
    let zero = vec![0; stride];
    let mut trial = vec![vec![0; stride + 1]; 5];
    let mut scorer = Scorer::new(strategy);
    for y in 0..count {
        let row = &rows.data[y * stride..(y + 1) * stride];
        let prev = if y == 0 {
            &zero[..]
        } else {
            &rows.data[(y - 1) * stride..y * stride]
        };
        let kinds = match strategy {
            Strategy::Fixed(kind) => kind..=kind,
            _ if row.iter().all(|&b| b == 0) => 0..=0,
            _ => 0..=4,
        };
        let mut best = (f64::INFINITY, *kinds.start());
        for kind in kinds.clone() {
            let line = &mut trial[usize::from(kind)];
            line[0] = kind;
            filter_row(kind, rows.bpp, row, prev, &mut line[1..]);
            if kinds.start() != kinds.end() {
                let score = scorer.score(line);
                if score < best.0 {
                    best = (score, kind);
                }
            }
        }
        let chosen = &trial[usize::from(best.1)];
        scorer.push(chosen);
        out.extend_from_slice(chosen);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Undoes the filters, as a decoder does.
    fn unfilter(filtered: &[u8], stride: usize, bpp: usize) -> Vec<u8> {
        let mut out: Vec<u8> = Vec::new();
        for (y, line) in filtered.chunks(stride + 1).enumerate() {
            let (kind, data) = (line[0], &line[1..]);
            let base = out.len();
            for i in 0..stride {
                let a = if i >= bpp { out[base + i - bpp] } else { 0 };
                let b = if y > 0 { out[base - stride + i] } else { 0 };
                let c = if y > 0 && i >= bpp {
                    out[base - stride + i - bpp]
                } else {
                    0
                };
                let predicted = match kind {
                    0 => 0,
                    1 => a,
                    2 => b,
                    3 => ((u16::from(a) + u16::from(b)) / 2) as u8,
                    4 => paeth(a, b, c),
                    _ => panic!("filter type {kind}"),
                };
                out.push(data[i].wrapping_add(predicted));
            }
        }
        out
    }

    #[test]
    fn every_strategy_round_trips() {
        let (stride, bpp) = (24, 3);
        let data: Vec<u8> = (0..stride * 9)
            .map(|i: usize| ((i * 37 % 251) ^ (i / 7)) as u8)
            .collect();
        let rows = Rows {
            data: &data,
            stride,
            bpp,
        };
        let brute = [
            Strategy::Brute { lines: 3, level: 1 },
            Strategy::Brute { lines: 8, level: 5 },
        ];
        for strategy in Strategy::HEURISTIC.into_iter().chain(brute) {
            let filtered = apply(&rows, strategy).expect("room");
            assert_eq!(filtered.len(), 9 * (stride + 1), "{strategy:?}");
            assert_eq!(unfilter(&filtered, stride, bpp), data, "{strategy:?}");
        }
    }

    #[test]
    fn heuristics_pick_the_filter_that_fits_the_rows() {
        // The same horizontal ramp on every row: Sub flattens the first, Up zeroes the rest.
        let stride = 16;
        let data: Vec<u8> = (0..stride * 4).map(|i| (i % stride * 3) as u8).collect();
        let rows = Rows {
            data: &data,
            stride,
            bpp: 1,
        };
        for strategy in [Strategy::MinSum, Strategy::Entropy, Strategy::Bigrams] {
            let filtered = apply(&rows, strategy).expect("room");
            let kinds: Vec<u8> = filtered.chunks(stride + 1).map(|l| l[0]).collect();
            assert_eq!(kinds, [1, 2, 2, 2], "{strategy:?}");
        }
    }
}
