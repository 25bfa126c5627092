//! How a search spends its encodes when they cannot all be made at the finest speed on the
//! whole image: AVIF at a coarser speed locating the setting a finer one finishes, and
//! formats located on a sample of a large image.

use crate::error::Result;
use crate::format::Format;
use crate::pipeline::{Level, note};

use super::formats::{AVIF_COARSE, AVIF_FINE, AVIF_MIDDLE, Encoder};
use super::search::{Bounds, Found, Probe};
use super::{PROBES, Run, first};

/// Score points above the target where an AVIF search located at a coarser speed starts at
/// the finer one.
const FINISH_CUSHION: f64 = 1.0;

/// Score points above the target a search on the sample aims for, when two whole-image
/// encodes follow and when one does: where the whole image scored 77 to 83, mozjpeg and
/// libwebp scored 0.2 to 2.6 points higher on the sample (see `sample`). Two encodes correct
/// each other; one that fails leaves the format nothing.
const SAMPLE_CUSHION: f64 = 2.5;
const SAMPLE_CUSHION_ALONE: f64 = 3.0;

impl Run<'_> {
    /// A format located on the sample, aiming a cushion past the target, then searched on the
    /// whole image from the setting found there, at the slope measured there.
    pub(super) fn sampled(
        &mut self,
        format: Format,
        plan: Sampled,
        beat: usize,
    ) -> Result<Option<(Encoder, Probe)>> {
        let Some(sample) = self.sample else {
            return Ok(None);
        };
        let cushion = if plan.whole > 1 {
            SAMPLE_CUSHION
        } else {
            SAMPLE_CUSHION_ALONE
        };
        let mut part = Run {
            target: self.target + cushion,
            image: &sample.image,
            srgb: sample.srgb.as_ref(),
            reference: &sample.reference,
            sample: None,
            tiles: Some((sample.grid, sample.side())),
            megapixels: sample.megapixels(),
            planned: 0.0,
            reserve: 0.0,
            budget: f64::INFINITY,
            encodes: 0,
            notes: Vec::new(),
            ..*self
        };
        let located = part.located(format, &plan.part, usize::MAX)?;
        self.planned += part.planned;
        self.encodes += part.encodes;
        // The sample's findings are summed up below; its warnings stand.
        let warnings = part.notes.into_iter().filter(|n| n.level == Level::Warn);
        self.notes.extend(warnings);
        let name = first(format, plan.part.speed).name();
        let Some(Located {
            encoder,
            best: Some(at),
            fail,
        }) = located
        else {
            self.notes.push(note(
                Level::Info,
                format!(
                    "lossy: {name}: nothing met the target on a {:.1} MP sample in {} encodes",
                    sample.megapixels(),
                    part.encodes
                ),
            ));
            return Ok(None);
        };
        self.notes.push(note(
            Level::Info,
            format!(
                "lossy: {}: located on a {:.1} MP sample at setting {} (SSIMULACRA2 {:.2} there) in {} encodes",
                encoder.name(),
                sample.megapixels(),
                encoder.setting(at.knob),
                at.score,
                part.encodes
            ),
        ));
        // AVIF may finish at a finer speed than it was located at: at one setting, speeds 6
        // and 10 score within about a point.
        let encoder = encoder.at_speed(plan.whole_speed);
        let target = self.target + self.margin(format);
        let slope = slope_to(&at, fail).unwrap_or(encoder.start(target).1);
        let bounds = encoder.bounds(at.knob, slope, plan.whole, beat, true);
        let found = self.search(encoder, target, bounds, None);
        let Some(found) = self.unless_failed(encoder, found)? else {
            return Ok(None);
        };
        self.noted(
            encoder,
            found.best.as_ref(),
            found.encodes,
            " on the whole image",
        );
        Ok(found.best.map(|p| (encoder, p)))
    }

    /// For a format too dear to search whole: at least three encodes on the sample and one
    /// or two on the whole image, as many as fit. AVIF at the middle speed on both when that
    /// fits, else located at the coarse speed and finished at the middle, else coarse on both.
    pub(super) fn sampled_plan(&self, format: Format) -> Option<Sampled> {
        let sample = self.sample?;
        let left = self.left();
        let speeds: &[(u8, u8)] = if format == Format::Avif {
            &[
                (AVIF_MIDDLE, AVIF_MIDDLE),
                (AVIF_COARSE, AVIF_MIDDLE),
                (AVIF_COARSE, AVIF_COARSE),
            ]
        } else {
            &[(10, 10)]
        };
        speeds.iter().find_map(|&(speed, whole_speed)| {
            let whole = self.cost(first(format, whole_speed));
            let part = self.cost_at(first(format, speed), sample.megapixels());
            (1..=2u32)
                .rev()
                .find(|&n| left >= f64::from(n) * whole + 3.0 * part)
                .map(|n| Sampled {
                    part: Plan::alone(
                        speed,
                        (((left - f64::from(n) * whole) / part) as u32).min(PROBES),
                    ),
                    whole: n,
                    whole_speed,
                })
        })
    }

    /// The AVIF plan (speeds in [`formats::AVIF_FINE`]): the fine speed when five encodes fit.
    /// Else the middle speed when four fit, finished by one or two encodes at the fine speed
    /// when four at the middle still fit beside them. Otherwise the coarse speed finds the
    /// setting, in the encodes left after one or two at the middle speed that finish from it.
    /// At one setting the speeds mostly score within a point of each other, so a coarser
    /// speed locates the setting a finer one finishes; with fewer than five encodes the fine
    /// speed does not search alone, since too few encodes end far past the target.
    pub(super) fn avif_plan(&self) -> Plan {
        let left = self.left();
        let cost = |speed| self.cost(first(Format::Avif, speed));
        let fit =
            |seconds: f64, speed| ((seconds.max(0.0) / cost(speed)).floor() as u32).min(PROBES);
        let (fine, middle, coarse) = (AVIF_FINE, AVIF_MIDDLE, AVIF_COARSE);
        if fit(left, fine) >= 5 {
            return Plan::alone(fine, fit(left, fine));
        }
        if fit(left, middle) >= 4 {
            let beside = |n: u32| left - f64::from(n) * cost(fine);
            return match (1..=2).rev().find(|&n| fit(beside(n), middle) >= 4) {
                Some(finish) => Plan {
                    speed: middle,
                    probes: fit(beside(finish), middle),
                    finish,
                    finer: fine,
                },
                None => Plan::alone(middle, fit(left, middle)),
            };
        }
        let finish = fit(left - 2.0 * cost(coarse), middle).min(2);
        Plan {
            speed: coarse,
            probes: fit(left - f64::from(finish) * cost(middle), coarse),
            finish,
            finer: middle,
        }
    }

    /// After a coarser AVIF search, up to `plan.finish` encodes at `plan.finer`: from the
    /// setting it found, or where it would have gone next when nothing passed, at the
    /// slope it measured there. The smaller
    /// passing result is kept, with the encoder that made it.
    pub(super) fn finish(
        &mut self,
        coarse: Encoder,
        found: Found,
        target: f64,
        plan: &Plan,
        bounds: Bounds,
    ) -> Result<(Encoder, Found)> {
        let start = match &found.best {
            Some(located) => Some(finish_start(located, found.fail, target + FINISH_CUSHION)),
            None => found.next,
        };
        let Some(start) = start.filter(|_| plan.finish > 0) else {
            return Ok((coarse, found));
        };
        let len = found.best.as_ref().map_or(usize::MAX, |p| p.data.len());
        let measured = found.best.as_ref().and_then(|p| slope_to(p, found.fail));
        let bounds = Bounds {
            start,
            probes: plan.finish,
            beat: bounds.beat.min(len),
            last: true,
            slope: measured.unwrap_or(bounds.slope),
            ..bounds
        };
        let finer = coarse.at_speed(plan.finer);
        let more = self.search(finer, target, bounds, None)?;
        self.notes.push(note(
            Level::Info,
            format!(
                "lossy: avif located at speed {} in {} encodes, finished at speed {} in {}",
                plan.speed, found.encodes, plan.finer, more.encodes
            ),
        ));
        let encodes = found.encodes + more.encodes;
        Ok(match more.best {
            Some(p) if p.data.len() < len => (
                finer,
                Found {
                    best: Some(p),
                    encodes,
                    ..more
                },
            ),
            _ => (coarse, Found { encodes, ..found }),
        })
    }
}

/// The score gained per knob unit from a failing setting up to the passing `at`, when the
/// failing one lies below it.
fn slope_to(at: &Probe, fail: Option<(i32, f64)>) -> Option<f64> {
    match fail {
        Some((knob, score)) if knob < at.knob && score < at.score => {
            Some((at.score - score) / f64::from(at.knob - knob))
        }
        _ => None,
    }
}

/// Where the finer speed starts after the coarser `located` a passing setting: the two
/// speeds mostly score within about a point at one setting, so on the line between the
/// coarser speed's highest failing setting and `located`, where it reaches `aim`; at
/// `located` when nothing failed below it or the line reaches `aim` only past it (past it,
/// the finer speed grows bigger than what the coarser found).
fn finish_start(located: &Probe, fail: Option<(i32, f64)>, aim: f64) -> i32 {
    match fail {
        Some((knob, score)) if knob < located.knob && located.score > aim => {
            let t = (aim - score) / (located.score - score);
            let step = (t * f64::from(located.knob - knob)).ceil() as i32;
            (knob + step).clamp(knob + 1, located.knob)
        }
        _ => located.knob,
    }
}

/// How a search spends its encodes: `probes` (AVIF at `speed`), then for AVIF `finish` at
/// the `finer` speed.
pub(super) struct Plan {
    pub(super) speed: u8,
    pub(super) probes: u32,
    pub(super) finish: u32,
    pub(super) finer: u8,
}

impl Plan {
    /// `probes` at `speed`, nothing finished at another.
    pub(super) fn alone(speed: u8, probes: u32) -> Self {
        Self {
            speed,
            probes,
            finish: 0,
            finer: speed,
        }
    }
}

/// How a search located on the sample spends its encodes: `part` on the sample, then `whole`
/// on the whole image (AVIF at `whole_speed`).
pub(super) struct Sampled {
    pub(super) part: Plan,
    pub(super) whole: u32,
    pub(super) whole_speed: u8,
}

/// What the search of one format found: the smallest passing probe and its encoder, and
/// the highest failing setting with its score.
pub(super) struct Located {
    pub(super) encoder: Encoder,
    pub(super) best: Option<Probe>,
    pub(super) fail: Option<(i32, f64)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_finer_speed_starts_on_the_coarse_speeds_line() {
        let located = Probe {
            knob: 60,
            data: Vec::new(),
            score: 85.0,
        };
        // The line from (40, 75) to (60, 85) reaches 80.9 at 51.8.
        assert_eq!(finish_start(&located, Some((40, 75.0)), 80.9), 52);
        // Nothing failed below it, or it is already near: start at it.
        assert_eq!(finish_start(&located, None, 81.0), 60);
        assert_eq!(finish_start(&located, Some((40, 75.0)), 86.0), 60);
    }
}
