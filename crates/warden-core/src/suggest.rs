//! "Did you mean": the closest known names to a mistyped one (host ids, tool names),
//! by Jaro-Winkler similarity.

/// Up to three of `candidates` scoring above `min_score` against `name`, best first.
pub fn closest<'a>(
    name: &str,
    candidates: impl Iterator<Item = &'a str>,
    min_score: f64,
) -> Vec<String> {
    let mut scored: Vec<(f64, &str)> = candidates
        .map(|candidate| (strsim::jaro_winkler(name, candidate), candidate))
        .filter(|(score, _)| *score > min_score)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    scored
        .into_iter()
        .take(3)
        .map(|(_, candidate)| candidate.to_owned())
        .collect()
}
