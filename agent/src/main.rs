//! `wifisess-agent`: parses the command line and dispatches; exit codes 0 ok, 1 runtime
//! failure, 2 bad usage.

use std::process::ExitCode;

use wifisess_agent::nl80211::cmd;

const HELP: &str = "\
wifisess-agent — Wi-Fi client sessions from nl80211

Usage:
  wifisess-agent stations [--json]
      List AP interfaces and their stations (one-shot).
";

/// The developer command (feature `devtools`, not in the router build).
#[cfg(feature = "devtools")]
const HELP_WATCH: &str = "\
  wifisess-agent watch [--interface IF]... [--rejoin-grace S] [--interim S] [--poll S]
      Track sessions and print each session event as one JSON line on stdout.
      Defaults: rejoin grace 10 s, interim 300 s, poll 10 s.
";
#[cfg(not(feature = "devtools"))]
const HELP_WATCH: &str = "";

const HELP_RUN: &str = "\
  wifisess-agent run [--config PATH] [--broker URL] [--device-id ID] [--interface IF]...
                     [--log-level L]
      Track sessions and publish them over MQTT until SIGTERM (see docs/agent.md).
  wifisess-agent check-config [--config PATH]
      Print the effective configuration and where each value came from.
  wifisess-agent --help | --version
";

/// The test hooks (feature `devtools`).
#[cfg(feature = "devtools")]
const HELP_DEV: &str = "
Developer hooks (feature devtools):
  run --synthetic N[:MS]    N made-up session starts, one every MS ms (default 10)
  WIFISESS_NL_CAPTURE=DIR   write every received netlink datagram to DIR (test fixtures)
";
#[cfg(not(feature = "devtools"))]
const HELP_DEV: &str = "";

enum Command {
    Help,
    Version,
    Stations {
        json: bool,
    },
    #[cfg(feature = "devtools")]
    Watch(wifisess_agent::run::SourceOptions),
    Run(wifisess_agent::run::RunArgs),
}

/// `S` or `S.FFF` seconds as ms (rounded to the ms). Decimal only: no float parser in the
/// binary (it costs ~15 KB of code and tables, see docs/BENCHMARKS.md).
#[cfg(feature = "devtools")]
fn seconds_ms(v: std::ffi::OsString, opt: &str) -> Result<u64, String> {
    let s = v.to_string_lossy();
    let bad = || format!("{opt}: not a number of seconds: {s:?}");
    let (int, frac) = s.split_once('.').unwrap_or((&s, ""));
    let digits = |t: &str| t.bytes().all(|c| c.is_ascii_digit());
    if (int.is_empty() && frac.is_empty()) || !digits(int) || !digits(frac) || int.len() > 9 {
        return Err(bad());
    }
    let secs: u64 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| bad())?
    };
    // The first four fraction digits, as tenths of a millisecond, then rounded.
    let mut tenths = 0u64;
    for (i, c) in frac
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(4)
        .enumerate()
    {
        tenths += u64::from(c - b'0') * [1000, 100, 10, 1][i];
    }
    Ok(secs * 1000 + (tenths + 5) / 10)
}

fn parse_args() -> Result<Command, String> {
    use lexopt::prelude::*;
    let mut p = lexopt::Parser::from_env();
    let err = |e: lexopt::Error| e.to_string();
    let sub = match p.next().map_err(err)? {
        None => return Ok(Command::Help),
        Some(Long("help") | Short('h')) => return Ok(Command::Help),
        Some(Long("version") | Short('V')) => return Ok(Command::Version),
        Some(Value(v)) => v.string().map_err(err)?,
        Some(a) => return Err(a.unexpected().to_string()),
    };
    match sub.as_str() {
        "stations" => {
            let mut json = false;
            while let Some(a) = p.next().map_err(err)? {
                match a {
                    Long("json") => json = true,
                    Long("help") | Short('h') => return Ok(Command::Help),
                    a => return Err(a.unexpected().to_string()),
                }
            }
            Ok(Command::Stations { json })
        }
        #[cfg(feature = "devtools")]
        "watch" => {
            let mut o = wifisess_agent::run::SourceOptions::default();
            while let Some(a) = p.next().map_err(err)? {
                match a {
                    Long("interface") | Short('i') => o
                        .interfaces
                        .push(p.value().map_err(err)?.string().map_err(err)?),
                    Long("rejoin-grace") => {
                        o.rejoin_grace_ms = seconds_ms(p.value().map_err(err)?, "--rejoin-grace")?
                    }
                    Long("interim") => {
                        o.interim_ms = seconds_ms(p.value().map_err(err)?, "--interim")?
                    }
                    Long("poll") => o.poll_ms = seconds_ms(p.value().map_err(err)?, "--poll")?,
                    Long("help") | Short('h') => return Ok(Command::Help),
                    a => return Err(a.unexpected().to_string()),
                }
            }
            Ok(Command::Watch(o))
        }
        "run" => Ok(Command::Run(wifisess_agent::run::parse_args(
            &mut p, false,
        )?)),
        "check-config" => Ok(Command::Run(wifisess_agent::run::parse_args(&mut p, true)?)),
        other => Err(format!("unknown command {other:?} (try --help)")),
    }
}

fn main() -> ExitCode {
    let command = match parse_args() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("wifisess-agent: {e}");
            return ExitCode::from(2);
        }
    };
    let stdout = std::io::stdout();
    let res = match command {
        Command::Help => {
            print!("{HELP}{HELP_WATCH}{HELP_RUN}{HELP_DEV}");
            Ok(())
        }
        Command::Version => {
            println!("wifisess-agent {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Command::Stations { json } => cmd::stations(json, &mut stdout.lock()),
        #[cfg(feature = "devtools")]
        Command::Watch(o) => {
            wifisess_agent::run::init_logging(log::LevelFilter::Info);
            cmd::watch(o, &mut stdout.lock())
        }
        Command::Run(a) => return wifisess_agent::run::main(a),
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wifisess-agent: {e}");
            ExitCode::from(1)
        }
    }
}

#[cfg(all(test, feature = "devtools"))]
mod tests {
    use super::seconds_ms;

    fn ms(s: &str) -> Result<u64, String> {
        seconds_ms(s.into(), "--poll")
    }

    #[test]
    fn seconds_parse_as_decimal_with_ms_rounding() {
        assert_eq!(ms("2"), Ok(2000));
        assert_eq!(ms("0.25"), Ok(250));
        assert_eq!(ms(".5"), Ok(500));
        assert_eq!(ms("3."), Ok(3000));
        assert_eq!(ms("1.23456"), Ok(1235));
        assert_eq!(ms("1.2344"), Ok(1234));
        assert_eq!(ms("0.0005"), Ok(1));
        assert_eq!(ms("999999999"), Ok(999_999_999_000));
        for bad in [
            "",
            ".",
            "-1",
            "1e3",
            "abc",
            " 1",
            "1.2.3",
            "1000000000",
            "inf",
            "NaN",
        ] {
            assert!(ms(bad).is_err(), "{bad:?} accepted");
        }
    }
}
