//! Which instances a command line names. A name is a case id (`close.fin_then_eof`) or a family
//! (`close`), for every kind the case runs over, or either with `@kind`
//! (`close.fin_then_eof@ipv6`, `close@ipv4`) for that kind alone; `--kind` narrows the whole
//! selection. Unknown names get the nearest ids.

use harness::{Case, Instance, Kind};

/// Every instance, when `names` is empty; otherwise the instances each name selects, in
/// catalogue order (case by case, each case's kinds in its order), without duplicates. With
/// `kinds` non-empty, only instances of those kinds.
pub fn select(names: &[String], kinds: &[Kind]) -> Result<Vec<Instance>, String> {
    let all = cases::instances();
    let wanted = |i: &Instance| kinds.is_empty() || kinds.contains(&i.kind);
    if names.is_empty() {
        return Ok(all.into_iter().filter(wanted).collect());
    }
    let parsed: Vec<(&str, Option<Kind>)> =
        names.iter().map(|n| parse(n)).collect::<Result<_, _>>()?;
    for (name, (case, kind)) in names.iter().zip(&parsed) {
        if !all.iter().any(|i| selects(case, *kind, i)) {
            return Err(match kind {
                Some(kind) if cases::all().iter().any(|c| names_case(case, c)) => format!(
                    "'{name}': {case} does not run over {kind}; its instances: {}",
                    instances_of(case).join(", ")
                ),
                _ => unknown(case),
            });
        }
    }
    let selected: Vec<Instance> = all
        .into_iter()
        .filter(|i| parsed.iter().any(|(case, kind)| selects(case, *kind, i)))
        .filter(wanted)
        .collect();
    if selected.is_empty() {
        let kinds: Vec<&str> = kinds.iter().map(|k| k.name()).collect();
        return Err(format!(
            "no instance of {} runs over {}",
            names.join(", "),
            kinds.join(" or ")
        ));
    }
    Ok(selected)
}

/// The cases the names select, whatever the kind (for `explain`, which shows declarations).
pub fn select_cases(names: &[String]) -> Result<Vec<&'static Case>, String> {
    let mut cases: Vec<&'static Case> = vec![];
    for i in select(names, &[])? {
        if !cases.iter().any(|c| c.id == i.case.id) {
            cases.push(i.case);
        }
    }
    Ok(cases)
}

/// The instance named exactly `id@kind`.
pub fn exact(name: &str) -> Result<Instance, String> {
    let (case, kind) = parse(name)?;
    let Some(kind) = kind else {
        return Err(format!(
            "'{name}' names a case, not an instance: add @kind (its instances: {})",
            instances_of(case).join(", ")
        ));
    };
    cases::instances()
        .into_iter()
        .find(|i| i.case.id == case && i.kind == kind)
        .ok_or_else(|| unknown(name))
}

/// `name` split at `@` into the case or family and the kind, if any.
fn parse(name: &str) -> Result<(&str, Option<Kind>), String> {
    match name.split_once('@') {
        None => Ok((name, None)),
        Some((case, kind)) => match Kind::from_name(kind) {
            Some(k) => Ok((case, Some(k))),
            None => Err(format!(
                "unknown kind '{kind}' in '{name}'; kinds: {}",
                Kind::ALL
                    .iter()
                    .map(|k| k.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        },
    }
}

fn names_case(name: &str, case: &Case) -> bool {
    case.id == name || case.family() == name
}

fn selects(name: &str, kind: Option<Kind>, instance: &Instance) -> bool {
    names_case(name, instance.case) && kind.is_none_or(|k| k == instance.kind)
}

fn instances_of(name: &str) -> Vec<String> {
    cases::instances()
        .iter()
        .filter(|i| names_case(name, i.case))
        .map(Instance::name)
        .collect()
}

fn unknown(name: &str) -> String {
    let mut ids: Vec<(usize, String)> = cases::instances()
        .iter()
        .map(|i| (distance(name, &i.name()), i.name()))
        .collect();
    ids.sort();
    let nearest: Vec<&str> = ids.iter().take(3).map(|(_, id)| id.as_str()).collect();
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
    fn family_prefix_selects_the_family_in_every_kind() {
        let sel = select(&["close".into()], &[]).unwrap();
        assert!(sel.iter().all(|i| i.case.family() == "close"));
        assert!(sel.iter().any(|i| i.kind == Kind::Ipv4));
        assert!(sel.iter().any(|i| i.kind == Kind::Ipv6));
    }

    #[test]
    fn a_kind_narrows_a_name_or_the_whole_selection() {
        let one = select(&["close.fin_then_eof@ipv6".into()], &[]).unwrap();
        assert_eq!(
            one.iter().map(Instance::name).collect::<Vec<_>>(),
            ["close.fin_then_eof@ipv6"]
        );
        let v4 = select(&["close".into()], &[Kind::Ipv4]).unwrap();
        assert!(!v4.is_empty() && v4.iter().all(|i| i.kind == Kind::Ipv4));
    }

    #[test]
    fn exact_needs_the_kind() {
        assert!(exact("close.fin_then_eof@ipv4").is_ok());
        let err = exact("close.fin_then_eof").err().unwrap();
        assert!(err.contains("close.fin_then_eof@ipv4"), "{err}");
        let err = exact("close.fin_then_eof@ipv5").err().unwrap();
        assert!(err.contains("unknown kind 'ipv5'"), "{err}");
    }

    #[test]
    fn unknown_id_names_the_nearest() {
        let err = select(&["close.fin_than_eof".into()], &[])
            .err()
            .expect("unknown id");
        assert!(err.contains("nearest: close.fin_then_eof"), "{err}");
    }
}
