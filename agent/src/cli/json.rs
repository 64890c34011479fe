//! A minimal JSON writer for the diagnostic commands (no serde: the agent's size budget).

use core::fmt::{self, Write};

/// Builds one JSON object: `{"k":v,...}`.
pub struct Obj {
    buf: String,
    first: bool,
}

impl Obj {
    /// An empty object.
    pub fn new() -> Obj {
        Obj {
            buf: String::from("{"),
            first: true,
        }
    }

    fn key(&mut self, k: &str) -> &mut String {
        if !self.first {
            self.buf.push(',');
        }
        self.first = false;
        push_str(&mut self.buf, k);
        self.buf.push(':');
        &mut self.buf
    }

    /// A string member.
    pub fn str(mut self, k: &str, v: &str) -> Obj {
        push_str(self.key(k), v);
        self
    }

    /// A number or other `Display` value written verbatim (integers, `true`).
    pub fn raw(mut self, k: &str, v: impl fmt::Display) -> Obj {
        let _ = write!(self.key(k), "{v}");
        self
    }

    /// A member that is `null` when `None`.
    pub fn opt(self, k: &str, v: Option<impl fmt::Display>) -> Obj {
        match v {
            Some(v) => self.raw(k, v),
            None => self.raw(k, "null"),
        }
    }

    /// A string member that is left out when `None`.
    pub fn opt_str(self, k: &str, v: Option<&str>) -> Obj {
        match v {
            Some(v) => self.str(k, v),
            None => self,
        }
    }

    /// The object, closed.
    pub fn finish(mut self) -> String {
        self.buf.push('}');
        self.buf
    }
}

impl Default for Obj {
    fn default() -> Self {
        Obj::new()
    }
}

/// Appends `s` as a JSON string literal.
pub fn push_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        let o = Obj::new()
            .str("a\"", "x\n\u{1}")
            .raw("n", 5)
            .opt("m", None::<u8>)
            .finish();
        assert_eq!(o, r#"{"a\"":"x\n\u0001","n":5,"m":null}"#);
    }
}
