//! The command line as words: long options (`--name VALUE`, `--name=VALUE`), short ones
//! (`-c VALUE`, `-cVALUE`) and plain values. Hand-written: a parser crate (lexopt) cost
//! ~3 KB of the router build for the few forms the agent takes (docs/BENCHMARKS.md).

/// One word of the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Arg {
    /// `--name` (without the dashes).
    Long(String),
    /// `-c`.
    Short(char),
    /// Anything else (a subcommand).
    Value(String),
}

impl Arg {
    /// The error for an argument the command does not take.
    pub fn unexpected(&self) -> String {
        match self {
            Arg::Long(n) => format!("invalid option '--{n}'"),
            Arg::Short(c) => format!("invalid option '-{c}'"),
            Arg::Value(v) => format!("unexpected argument {v:?}"),
        }
    }

    fn name(&self) -> String {
        match self {
            Arg::Long(n) => format!("--{n}"),
            Arg::Short(c) => format!("-{c}"),
            Arg::Value(v) => v.clone(),
        }
    }
}

/// The words after the program name, read one option at a time.
pub struct Args {
    words: std::vec::IntoIter<String>,
    /// The value attached to the last option (`--name=VALUE`, `-cVALUE`), not taken yet.
    attached: Option<String>,
    /// The last option, for error messages.
    last: Option<Arg>,
}

impl Args {
    /// The given words (tests).
    pub fn new<S: Into<String>>(words: impl IntoIterator<Item = S>) -> Args {
        Args {
            words: words
                .into_iter()
                .map(Into::into)
                .collect::<Vec<_>>()
                .into_iter(),
            attached: None,
            last: None,
        }
    }

    /// The process's arguments (not UTF-8: replaced characters).
    pub fn from_env() -> Args {
        Args::new(
            std::env::args_os()
                .skip(1)
                .map(|a| a.to_string_lossy().into_owned()),
        )
    }

    /// The next option or value.
    ///
    /// # Errors
    /// A value was attached to the previous option, which takes none (`--json=1`).
    pub fn next_arg(&mut self) -> Result<Option<Arg>, String> {
        if self.attached.take().is_some() {
            let name = self.last.as_ref().map(Arg::name).unwrap_or_default();
            return Err(format!("option '{name}' does not take a value"));
        }
        let Some(w) = self.words.next() else {
            return Ok(None);
        };
        let arg = if let Some(long) = w.strip_prefix("--").filter(|l| !l.is_empty()) {
            match long.split_once('=') {
                Some((n, v)) => {
                    self.attached = Some(v.into());
                    Arg::Long(n.into())
                }
                None => Arg::Long(long.into()),
            }
        } else if let Some(short) = w.strip_prefix('-').filter(|s| !s.is_empty() && w != "--") {
            let mut chars = short.chars();
            let c = chars.next().unwrap_or('-');
            let rest = chars.as_str();
            if !rest.is_empty() {
                self.attached = Some(rest.strip_prefix('=').unwrap_or(rest).into());
            }
            Arg::Short(c)
        } else {
            Arg::Value(w)
        };
        self.last = Some(arg.clone());
        Ok(Some(arg))
    }

    /// The value of the option just read.
    ///
    /// # Errors
    /// There is none.
    pub fn value(&mut self) -> Result<String, String> {
        if let Some(v) = self.attached.take() {
            return Ok(v);
        }
        self.words.next().ok_or_else(|| {
            let name = self.last.as_ref().map(Arg::name).unwrap_or_default();
            format!("missing argument for option '{name}'")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(words: &[&str]) -> Result<Vec<(Arg, Option<String>)>, String> {
        let mut a = Args::new(words.iter().copied());
        let mut out = Vec::new();
        while let Some(arg) = a.next_arg()? {
            let v = match &arg {
                Arg::Long(n) if n == "flag" => None,
                Arg::Value(_) => None,
                _ => Some(a.value()?),
            };
            out.push((arg, v));
        }
        Ok(out)
    }

    #[test]
    fn the_forms_the_agent_takes() {
        let l = |n: &str| Arg::Long(n.into());
        let s = |v: &str| Some(v.to_string());
        assert_eq!(
            all(&[
                "run",
                "--broker",
                "mqtt://b",
                "--config=/x",
                "-c",
                "/y",
                "-i",
                "w0",
                "-iw1",
                "--flag"
            ])
            .unwrap(),
            [
                (Arg::Value("run".into()), None),
                (l("broker"), s("mqtt://b")),
                (l("config"), s("/x")),
                (Arg::Short('c'), s("/y")),
                (Arg::Short('i'), s("w0")),
                (Arg::Short('i'), s("w1")),
                (l("flag"), None),
            ]
        );
        assert_eq!(
            all(&["--broker"]).unwrap_err(),
            "missing argument for option '--broker'"
        );
        assert_eq!(
            all(&["--flag=1"]).unwrap_err(),
            "option '--flag' does not take a value"
        );
        assert_eq!(
            Arg::Long("nope".into()).unexpected(),
            "invalid option '--nope'"
        );
        assert_eq!(
            Arg::Value("x".into()).unexpected(),
            "unexpected argument \"x\""
        );
        // A value may start with a dash.
        assert_eq!(all(&["-c", "-"]).unwrap(), [(Arg::Short('c'), s("-"))]);
    }
}
