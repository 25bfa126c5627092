//! What `GET /download-url/{key}` asks for: `format`, `quality` and `accept` from the query,
//! the `Accept` header, and the result key those options name.

use std::collections::HashMap;

use picopic_engine::{Accept, Mode, Output, Target};

use crate::error::ApiError;

/// The output a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asked {
    /// Lossless, or lossy with a target.
    pub mode: Mode,
    /// The output format.
    pub output: Output,
    /// The formats `auto` may choose.
    pub accept: Accept,
}

impl Asked {
    /// Reads the query and the `Accept` header. Defaults: lossless, keep.
    ///
    /// # Errors
    /// A 400 naming the parameter for a value it does not know, or for a combination that
    /// cannot exist.
    pub fn parse(
        query: &HashMap<String, String>,
        accept_header: Option<&str>,
    ) -> Result<Self, ApiError> {
        let bad = |name: &str, e: &dyn std::fmt::Display| {
            ApiError::bad_request(format!("Bad {name} parameter: {e}."))
        };
        let output = match query.get("format") {
            Some(v) => v.parse::<Output>().map_err(|e| bad("format", &e))?,
            None => Output::Keep,
        };
        let mode = match query.get("quality").map(String::as_str) {
            None | Some("lossless") => Mode::Lossless,
            Some(v) => Mode::Lossy(v.parse::<Target>().map_err(|e| bad("quality", &e))?),
        };
        if mode == Mode::Lossless && !matches!(output, Output::Keep | Output::Auto) {
            return Err(ApiError::bad_request(format!(
                "quality=lossless cannot be combined with format={}: lossless results keep \
                 the input's format.",
                query.get("format").map_or("", String::as_str)
            )));
        }
        let accept = match query.get("accept") {
            Some(v) => named(v).ok_or_else(|| {
                bad(
                    "accept",
                    &"it names none of image/jpeg, image/png, image/webp, image/avif",
                )
            })?,
            None => accept_header.and_then(browser).unwrap_or_default(),
        };
        Ok(Self {
            mode,
            output,
            accept,
        })
    }

    /// The last part of the result key: one name per distinct output, so each result of an
    /// upload is stored apart and re-asks with other options start from the original.
    #[must_use]
    pub fn name(&self) -> String {
        let quality = match self.mode {
            Mode::Lossy(target) => format!("s{}", target.score()),
            _ => "lossless".into(),
        };
        let format = match self.output {
            Output::Keep => {
                return if self.mode == Mode::Lossless {
                    quality
                } else {
                    format!("{quality}-keep")
                };
            }
            Output::Auto => {
                let a = self.accept;
                let mut name = String::from("auto-");
                for (on, c) in [(a.jpeg, 'j'), (a.png, 'p'), (a.webp, 'w'), (a.avif, 'a')] {
                    if on {
                        name.push(c);
                    }
                }
                name
            }
            Output::Jpeg => "jpeg".into(),
            Output::Png => "png".into(),
            Output::WebP => "webp".into(),
            _ => "avif".into(),
        };
        format!("{quality}-{format}")
    }
}

/// The image types a list of media types names exactly; `None` when it names none.
fn named(list: &str) -> Option<Accept> {
    let mut accept = Accept {
        jpeg: false,
        png: false,
        webp: false,
        avif: false,
    };
    for item in list.split(',') {
        let media = item
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match media.as_str() {
            "image/jpeg" | "image/jpg" => accept.jpeg = true,
            "image/png" => accept.png = true,
            "image/webp" => accept.webp = true,
            "image/avif" => accept.avif = true,
            _ => {}
        }
    }
    (accept.jpeg || accept.png || accept.webp || accept.avif).then_some(accept)
}

/// A browser's `Accept` header: JPEG and PNG every browser shows (they are never listed);
/// WebP and AVIF only when named. A header that names no image type leaves all four.
fn browser(header: &str) -> Option<Accept> {
    named(header).map(|a| Accept {
        jpeg: true,
        png: true,
        ..a
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(pairs: &[(&str, &str)], header: Option<&str>) -> Result<Asked, ApiError> {
        let query = pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect();
        Asked::parse(&query, header)
    }

    #[test]
    fn defaults_stay_lossless_keep() {
        let asked = ask(&[], Some("*/*")).unwrap();
        assert_eq!((asked.mode, asked.output), (Mode::Lossless, Output::Keep));
        assert_eq!(asked.name(), "lossless");
    }

    #[test]
    fn bad_values_name_their_parameter() {
        for (pairs, word) in [
            (vec![("format", "gif")], "format"),
            (vec![("quality", "best")], "quality"),
            (vec![("quality", "101")], "quality"),
            (vec![("format", "auto"), ("accept", "text/html")], "accept"),
            (vec![("format", "jpeg")], "lossless"),
        ] {
            let e = ask(&pairs, None).unwrap_err();
            assert_eq!(e.status.as_u16(), 400);
            assert!(e.message.contains(word), "{}", e.message);
        }
    }

    #[test]
    fn accept_narrows_auto() {
        let chrome = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8";
        let asked = ask(&[("format", "auto"), ("quality", "high")], Some(chrome)).unwrap();
        assert_eq!(asked.accept, Accept::default());
        let old = "image/webp,*/*";
        let asked = ask(&[("format", "auto"), ("quality", "high")], Some(old)).unwrap();
        assert!(!asked.accept.avif && asked.accept.webp && asked.accept.jpeg);
        assert_eq!(asked.name(), "s80-auto-jpw");
        let query = [
            ("format", "auto"),
            ("quality", "90"),
            ("accept", "image/avif"),
        ];
        let asked = ask(&query, Some(chrome)).unwrap();
        assert_eq!(asked.name(), "s90-auto-a");
    }
}
