//! The one CSV writer (RFC 4180): a header line and rows of cells, for the CLI's `--format csv`
//! and the API's `format=csv` alike.

/// One CSV field: quoted when it holds a comma, a quote or a line break.
pub fn field(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\"")).into()
    } else {
        s.into()
    }
}

/// Appends one line of `cells` to `out`.
pub fn line<S: AsRef<str>>(out: &mut String, cells: &[S]) {
    for (i, c) in cells.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&field(c.as_ref()));
    }
    out.push('\n');
}

/// A whole CSV document: `head`, then `rows`.
pub fn document<S: AsRef<str>>(head: &[&str], rows: &[Vec<S>]) -> String {
    let mut out = String::new();
    line(&mut out, head);
    for r in rows {
        line(&mut out, r);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_quoted_only_when_needed() {
        assert_eq!(field("plain"), "plain");
        assert_eq!(field("a,\"b\""), "\"a,\"\"b\"\"\"");
        assert_eq!(
            document(&["a", "b"], &[vec!["1", "x\ny"]]),
            "a,b\n1,\"x\ny\"\n"
        );
    }
}
