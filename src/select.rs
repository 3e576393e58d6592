//! Which cases a command line names: exact ids or family prefixes; unknown names get the
//! nearest ids.

use harness::Case;

/// Every case, when `names` is empty; otherwise the cases each name selects, in catalogue
/// order, without duplicates.
pub fn select(names: &[String]) -> Result<Vec<&'static Case>, String> {
    let all = cases::all();
    if names.is_empty() {
        return Ok(all);
    }
    for name in names {
        if !all.iter().any(|c| selects(name, c)) {
            return Err(unknown(name));
        }
    }
    Ok(all
        .into_iter()
        .filter(|c| names.iter().any(|n| selects(n, c)))
        .collect())
}

/// The case with exactly this id.
pub fn exact(id: &str) -> Result<&'static Case, String> {
    cases::by_id(id).ok_or_else(|| unknown(id))
}

fn selects(name: &str, case: &Case) -> bool {
    case.id == name || case.family() == name
}

fn unknown(name: &str) -> String {
    let mut ids: Vec<(usize, &str)> = cases::all()
        .iter()
        .map(|c| (distance(name, c.id), c.id))
        .collect();
    ids.sort();
    let nearest: Vec<&str> = ids.iter().take(3).map(|(_, id)| *id).collect();
    format!(
        "unknown case '{name}'; nearest: {} (see `sockconf list`)",
        nearest.join(", ")
    )
}

/// Levenshtein distance, with a bonus for substrings so that `unread_data` finds its case.
fn distance(a: &str, b: &str) -> usize {
    if b.contains(a) {
        return b.len() - a.len();
    }
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for j in 0..b.len() {
            let cur = row[j + 1];
            row[j + 1] = if ca == b[j] {
                prev
            } else {
                1 + prev.min(row[j]).min(cur)
            };
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn family_prefix_selects_the_family() {
        let sel = select(&["close".into()]).unwrap();
        assert!(!sel.is_empty());
        assert!(sel.iter().all(|c| c.family() == "close"));
    }

    #[test]
    fn unknown_id_names_the_nearest() {
        let err = select(&["close.fin_than_eof".into()])
            .err()
            .expect("unknown id");
        assert!(err.contains("nearest: close.fin_then_eof"), "{err}");
    }
}
