//! A reader for the subset of OpenWrt's UCI file syntax that `uci commit` writes: `package`,
//! `config TYPE ['NAME']`, `option KEY VALUE`, `list KEY VALUE`, single and double quotes,
//! `#` comments and blank lines. Pure: parses a string; errors name the line.

use core::fmt;

/// One `config` section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Section {
    /// The section type (`agent`).
    pub stype: String,
    /// The section name, if it has one (`'agent'`).
    pub name: Option<String>,
    /// Line of the `config` keyword (1-based).
    pub line: usize,
    /// `option` and `list` entries in file order.
    pub entries: Vec<Entry>,
}

/// An `option` or `list` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The key.
    pub key: String,
    /// The value, unquoted.
    pub value: String,
    /// True for `list`, false for `option`.
    pub list: bool,
    /// Line (1-based).
    pub line: usize,
}

/// A syntax error, with its line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UciError {
    /// Line (1-based).
    pub line: usize,
    /// What is wrong.
    pub problem: String,
}

impl fmt::Display for UciError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.problem)
    }
}

impl std::error::Error for UciError {}

/// Splits one line into words: whitespace separates, quotes group (no escapes inside single
/// quotes; `\"` and `\\` inside double quotes, and a backslash escapes outside quotes),
/// adjacent quoted parts join, `#` at the start of a word begins a comment.
fn words(line: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    out.push(core::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '#' if !in_word => break,
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => cur.push(c),
                        None => return Err("unterminated single quote".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c) => cur.push(c),
                            None => return Err("unterminated double quote".into()),
                        },
                        Some(c) => cur.push(c),
                        None => return Err("unterminated double quote".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(c) = chars.next() {
                    cur.push(c);
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
}

/// Parses a UCI file.
///
/// # Errors
/// The first malformed line: an unknown keyword, a missing or extra argument, an unterminated
/// quote, an option outside any section, or an invalid key.
pub fn parse(text: &str) -> Result<Vec<Section>, UciError> {
    let mut sections: Vec<Section> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let err = |problem: String| UciError { line, problem };
        let w = words(raw).map_err(err)?;
        let Some(kw) = w.first() else { continue };
        match (kw.as_str(), w.len()) {
            ("package", 2) => {}
            ("config", 2 | 3) => {
                if !valid_name(&w[1]) {
                    return Err(err(format!("invalid section type {:?}", w[1])));
                }
                sections.push(Section {
                    stype: w[1].clone(),
                    name: w.get(2).cloned(),
                    line,
                    entries: Vec::new(),
                });
            }
            ("option" | "list", 3) => {
                let Some(s) = sections.last_mut() else {
                    return Err(err(format!("{kw} outside a config section")));
                };
                if !valid_name(&w[1]) {
                    return Err(err(format!("invalid option name {:?}", w[1])));
                }
                s.entries.push(Entry {
                    key: w[1].clone(),
                    value: w[2].clone(),
                    list: kw == "list",
                    line,
                });
            }
            ("package" | "config" | "option" | "list", n) => {
                return Err(err(format!("{kw} with {} arguments", n - 1)));
            }
            (other, _) => return Err(err(format!("unknown keyword {other:?}"))),
        }
    }
    Ok(sections)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_uci_commit_writes() {
        let text = "\n# wifisess\npackage wifisess\n\nconfig agent 'agent'\n\toption broker 'mqtts://b.example:8883'\n\toption name \"AP \\\"lobby\\\"\" # trailing\n\tlist interface 'phy0-ap0'\n\tlist interface phy1-ap0\n\toption password 'it''s'\n\nconfig other\n\toption x ''\n";
        let s = parse(text).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(
            (s[0].stype.as_str(), s[0].name.as_deref(), s[0].line),
            ("agent", Some("agent"), 5)
        );
        let e: Vec<_> = s[0]
            .entries
            .iter()
            .map(|e| (e.key.as_str(), e.value.as_str(), e.list))
            .collect();
        assert_eq!(
            e,
            [
                ("broker", "mqtts://b.example:8883", false),
                ("name", "AP \"lobby\"", false),
                ("interface", "phy0-ap0", true),
                ("interface", "phy1-ap0", true),
                ("password", "its", false),
            ]
        );
        assert_eq!(s[1].name, None);
        assert_eq!(s[1].entries[0].value, "");
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse("config agent 'agent'\n  option broker 'x\n").unwrap_err();
        assert_eq!(e.to_string(), "line 2: unterminated single quote");
        let e = parse("option a b\n").unwrap_err();
        assert_eq!(e.line, 1);
        let e = parse("config agent\nfoo bar\n").unwrap_err();
        assert_eq!(e.to_string(), "line 2: unknown keyword \"foo\"");
        let e = parse("config agent\noption a\n").unwrap_err();
        assert_eq!(e.to_string(), "line 2: option with 1 arguments");
    }
}
