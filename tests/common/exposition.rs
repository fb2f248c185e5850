//! A checker for the Prometheus text format (0.0.4), strict where node_exporter and promtool are,
//! written here from the format's rules rather than from our renderer, so the two cannot share a
//! mistake. tests/prometheus.rs checks the checker itself.

use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Default)]
pub struct Family {
    pub kind: String,
    pub help: String,
    pub samples: Vec<(BTreeMap<String, String>, f64)>,
}

fn valid_metric_name(n: &str) -> bool {
    let mut c = n.chars();
    matches!(c.next(), Some(x) if x.is_ascii_alphabetic() || x == '_' || x == ':')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_' || x == ':')
}

fn valid_label_name(n: &str) -> bool {
    let mut c = n.chars();
    matches!(c.next(), Some(x) if x.is_ascii_alphabetic() || x == '_')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
}

/// Parses `{k="v",…}` at the start of `s`, unescaping values; returns the labels and the rest.
fn parse_labels(s: &str) -> Result<(BTreeMap<String, String>, &str), String> {
    let mut labels = BTreeMap::new();
    let mut rest = s.strip_prefix('{').ok_or("no {")?;
    loop {
        if let Some(r) = rest.strip_prefix('}') {
            return Ok((labels, r));
        }
        let eq = rest.find('=').ok_or("label without =")?;
        let name = &rest[..eq];
        if !valid_label_name(name) {
            return Err(format!("bad label name {name:?}"));
        }
        rest = rest[eq + 1..]
            .strip_prefix('"')
            .ok_or("label value not quoted")?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next().ok_or("unterminated label value")? {
                (i, '"') => break i,
                (_, '\\') => match chars.next().ok_or("dangling backslash")?.1 {
                    '\\' => value.push('\\'),
                    '"' => value.push('"'),
                    'n' => value.push('\n'),
                    other => return Err(format!("bad escape \\{other}")),
                },
                (_, '\n') => return Err("raw newline in a label value".into()),
                (_, c) => value.push(c),
            }
        };
        if labels.insert(name.to_string(), value).is_some() {
            return Err(format!("label {name} twice"));
        }
        rest = &rest[end + 1..];
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
}

/// Parses a whole exposition: every family a gauge with HELP and TYPE before its samples, in one
/// block, its series agreeing on label names and never repeated; no timestamps.
pub fn parse_exposition(text: &str) -> Result<BTreeMap<String, Family>, String> {
    let mut families: BTreeMap<String, Family> = BTreeMap::new();
    let mut current: Option<String> = None;
    let mut closed: BTreeSet<String> = BTreeSet::new();
    if !text.ends_with('\n') {
        return Err("does not end with a newline".into());
    }
    for (i, line) in text.lines().enumerate() {
        let at = |m: String| format!("line {}: {m}: {line:?}", i + 1);
        if let Some(rest) = line.strip_prefix("# ") {
            let (kw, rest) = rest
                .split_once(' ')
                .ok_or_else(|| at("bare comment".into()))?;
            let (name, arg) = rest.split_once(' ').ok_or_else(|| at("no text".into()))?;
            if !valid_metric_name(name) {
                return Err(at("bad metric name".into()));
            }
            if current.as_deref() != Some(name) {
                if let Some(c) = current.take() {
                    closed.insert(c);
                }
                if closed.contains(name) {
                    return Err(at("family split in two".into()));
                }
                current = Some(name.to_string());
            }
            let f = families.entry(name.to_string()).or_default();
            match kw {
                "HELP" => f.help = arg.to_string(),
                "TYPE" if f.samples.is_empty() => f.kind = arg.to_string(),
                "TYPE" => return Err(at("TYPE after samples".into())),
                _ => return Err(at("unknown comment".into())),
            }
            continue;
        }
        let name_end = line.find(['{', ' ']).ok_or_else(|| at("no value".into()))?;
        let name = &line[..name_end];
        if current.as_deref() != Some(name) {
            return Err(at("sample outside its family's HELP/TYPE block".into()));
        }
        let (labels, rest) = if line[name_end..].starts_with('{') {
            parse_labels(&line[name_end..]).map_err(at)?
        } else {
            (BTreeMap::new(), &line[name_end..])
        };
        let value = rest
            .strip_prefix(' ')
            .ok_or_else(|| at("no space before value".into()))?;
        if value.contains(' ') {
            return Err(at("a timestamp (or junk) after the value".into()));
        }
        let value: f64 = value
            .parse()
            .map_err(|_| at("value is not a number".into()))?;
        families
            .get_mut(name)
            .unwrap()
            .samples
            .push((labels, value));
    }
    for (name, f) in &families {
        if f.kind != "gauge" || f.help.is_empty() || f.samples.is_empty() {
            return Err(format!(
                "{name}: type {:?}, help {:?}, {} samples",
                f.kind,
                f.help,
                f.samples.len()
            ));
        }
        let names: BTreeSet<Vec<&String>> =
            f.samples.iter().map(|(l, _)| l.keys().collect()).collect();
        if names.len() != 1 {
            return Err(format!("{name}: series disagree on label names: {names:?}"));
        }
        let series: BTreeSet<_> = f.samples.iter().map(|(l, _)| l).collect();
        if series.len() != f.samples.len() {
            return Err(format!("{name}: duplicate series"));
        }
    }
    Ok(families)
}

/// The single sample of family `name`; fails the test if there is none or more than one.
pub fn one<'a>(
    fams: &'a BTreeMap<String, Family>,
    name: &str,
) -> &'a (BTreeMap<String, String>, f64) {
    let f = fams
        .get(name)
        .unwrap_or_else(|| panic!("{name} missing: {:?}", fams.keys()));
    assert_eq!(f.samples.len(), 1, "{name}");
    &f.samples[0]
}
