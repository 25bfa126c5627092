//! The byte-regression gate: output sizes are deterministic, so each corpus file's size per
//! mode is checked in (`corpus/baseline.json`). A file growing more than 0.5 %, or the total
//! growing at all, fails, and so does a baseline file or mode the run left out.
//! `PICOPIC_BLESS=1 cargo test --workspace corpus_is_never_bigger` rewrites it (only `1` does).

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Value, json};

/// Output bytes by mode, then by file (relative to corpus/).
pub type Sizes = BTreeMap<String, BTreeMap<String, u64>>;

fn baseline_path() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus/baseline.json")
}

/// The verdict on `now` against `base`: `Err` lists every regression.
pub fn compare(base: &Sizes, now: &Sizes) -> Result<Vec<String>, Vec<String>> {
    let mut regressions = Vec::new();
    let mut improvements = Vec::new();
    for (mode, files) in now {
        let Some(old) = base.get(mode) else {
            regressions.push(format!("{mode}: no baseline for this mode"));
            continue;
        };
        let (mut total_old, mut total_new) = (0u64, 0u64);
        for (file, &size) in files {
            let Some(&before) = old.get(file) else {
                regressions.push(format!("{mode} {file}: not in the baseline"));
                continue;
            };
            total_old += before;
            total_new += size;
            if size * 1000 > before * 1005 {
                regressions.push(format!(
                    "{mode} {file}: {before} -> {size} bytes (+{:.2} %)",
                    100.0 * (size as f64 / before as f64 - 1.0)
                ));
            } else if size < before {
                improvements.push(format!("{mode} {file}: {before} -> {size} bytes"));
            }
        }
        if total_new > total_old {
            regressions.push(format!("{mode} total: {total_old} -> {total_new} bytes"));
        }
    }
    for (mode, files) in base {
        let Some(run) = now.get(mode) else {
            regressions.push(format!("{mode}: in the baseline but not run"));
            continue;
        };
        for file in files.keys().filter(|f| !run.contains_key(*f)) {
            regressions.push(format!("{mode} {file}: in the baseline but not run"));
        }
    }
    if regressions.is_empty() {
        Ok(improvements)
    } else {
        Err(regressions)
    }
}

/// Whether `PICOPIC_BLESS`'s value asks to rewrite the baseline: `1` only.
fn blessing(value: Option<&str>) -> bool {
    value == Some("1")
}

/// Checks the modes of `now` against the checked-in baseline, or rewrites those modes when
/// blessing (each test runs its own modes).
pub fn check(now: &Sizes) {
    let path = baseline_path();
    let mut base: Sizes = std::fs::read_to_string(&path)
        .ok()
        .and_then(|text| serde_json::from_str::<Value>(&text).ok())
        .and_then(|value| serde_json::from_value(value).ok())
        .unwrap_or_default();
    if blessing(std::env::var("PICOPIC_BLESS").ok().as_deref()) {
        base.extend(now.clone());
        let value = json!(base);
        std::fs::write(&path, format!("{value:#}\n")).expect("write baseline");
        eprintln!("gate: wrote {}", path.display());
        return;
    }
    base.retain(|mode, _| now.contains_key(mode));
    match compare(&base, now) {
        Ok(improvements) => {
            for line in &improvements {
                eprintln!("gate: improved: {line} (tighten with PICOPIC_BLESS=1)");
            }
        }
        Err(regressions) => panic!("gate: output grew:\n{}", regressions.join("\n")),
    }
}

#[test]
fn gate_rules() {
    let sizes = |pairs: &[(&str, u64)]| -> Sizes {
        BTreeMap::from([(
            "lossless".to_string(),
            pairs.iter().map(|(f, s)| ((*f).to_string(), *s)).collect(),
        )])
    };
    let base = sizes(&[("a", 1000), ("b", 1000)]);
    assert!(
        compare(&base, &sizes(&[("a", 1005), ("b", 990)])).is_ok(),
        "0.5 % on one file, total down"
    );
    assert!(
        compare(&base, &sizes(&[("a", 1006), ("b", 990)])).is_err(),
        "over 0.5 % on one file"
    );
    assert!(
        compare(&base, &sizes(&[("a", 1004), ("b", 1000)])).is_err(),
        "total grew"
    );
    assert_eq!(
        compare(&base, &sizes(&[("a", 999), ("b", 1000)])),
        Ok(vec!["lossless a: 1000 -> 999 bytes".to_string()])
    );
    assert!(compare(&base, &sizes(&[("c", 1)])).is_err(), "unknown file");
    assert!(
        compare(&base, &sizes(&[("a", 900)])).is_err(),
        "a baseline file missing from the run"
    );
    assert!(compare(&base, &Sizes::new()).is_err(), "a mode missing");
    assert!(blessing(Some("1")));
    for value in [None, Some("0"), Some(""), Some("yes")] {
        assert!(!blessing(value), "{value:?}");
    }
}
