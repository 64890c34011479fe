//! The command line: parses arguments, loads the configuration, dispatches to the commands,
//! and decides every exit code (0 ok, 1 runtime failure, 2 bad usage or configuration).

pub mod args;
pub mod json;
pub mod stations;
#[cfg(feature = "devtools")]
pub mod watch;

use std::process::ExitCode;

use crate::config::{self, settings, Flags};
use crate::logger::{self, Streams};
use crate::run::{self, SourceKind};
use args::{Arg, Args};

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
                       [--dhcp-leases PATH] [--log-level L]
      Track sessions and print each session event as one JSON line on stdout (logs on
      stderr).
      Defaults: the options rejoin_grace, interim_interval, poll_interval, dhcp_leases
      (an empty PATH: no hostnames).
";
#[cfg(not(feature = "devtools"))]
const HELP_WATCH: &str = "";

const HELP_RUN: &str = "\
  wifisess-agent run [--config PATH] [--broker URL] [--device-id ID] [--interface IF]...
                     [--log-level L]
      Track sessions and publish them over MQTT until SIGTERM (see docs/agent.md).
  wifisess-agent check-config [--config PATH]
      Check the configuration; print every option, its value and where it came from.
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

/// A parsed command line.
enum Command {
    Help,
    Version,
    Stations {
        json: bool,
    },
    #[cfg(feature = "devtools")]
    Watch(run::SourceOptions, log::LevelFilter),
    Run(RunArgs),
}

/// The arguments of `run` and `check-config`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunArgs {
    /// Configuration flags.
    pub flags: Flags,
    /// `--synthetic N[:MS]` (run only, feature `devtools`).
    pub synthetic: Option<(u32, u64)>,
    /// `check-config` rather than `run`.
    pub check_only: bool,
}

/// `S` or `S.FFF` seconds as ms (rounded to the ms). Decimal only: no float parser in the
/// binary (it costs ~15 KB of code and tables, see docs/BENCHMARKS.md).
#[cfg(feature = "devtools")]
fn seconds_ms(s: String, opt: &str) -> Result<u64, String> {
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

fn parse_args(mut p: Args) -> Result<Command, String> {
    let sub = match p.next_arg()? {
        None => return Ok(Command::Help),
        Some(Arg::Long(l)) if l == "help" => return Ok(Command::Help),
        Some(Arg::Short('h')) => return Ok(Command::Help),
        Some(Arg::Long(l)) if l == "version" => return Ok(Command::Version),
        Some(Arg::Short('V')) => return Ok(Command::Version),
        Some(Arg::Value(v)) => v,
        Some(a) => return Err(a.unexpected()),
    };
    match sub.as_str() {
        "stations" => {
            let mut json = false;
            while let Some(a) = p.next_arg()? {
                match a {
                    Arg::Long(l) if l == "json" => json = true,
                    Arg::Long(l) if l == "help" => return Ok(Command::Help),
                    Arg::Short('h') => return Ok(Command::Help),
                    a => return Err(a.unexpected()),
                }
            }
            Ok(Command::Stations { json })
        }
        #[cfg(feature = "devtools")]
        "watch" => {
            let mut o = run::SourceOptions::defaults();
            let mut level = log::LevelFilter::Info;
            while let Some(a) = p.next_arg()? {
                let name = match &a {
                    Arg::Long(l) => l.as_str(),
                    Arg::Short('i') => "interface",
                    Arg::Short('h') => "help",
                    _ => return Err(a.unexpected()),
                };
                match name {
                    "log-level" => {
                        let v = p.value()?;
                        level = match settings::check(settings::Kind::LogLevel, &v) {
                            Ok(settings::Value::LogLevel(l)) => l,
                            _ => return Err(format!("--log-level: {v:?} is not a log level")),
                        };
                    }
                    "interface" => o.interfaces.push(p.value()?),
                    "rejoin-grace" => o.rejoin_grace_ms = seconds_ms(p.value()?, "--rejoin-grace")?,
                    "interim" => o.interim_ms = seconds_ms(p.value()?, "--interim")?,
                    "poll" => o.poll_ms = seconds_ms(p.value()?, "--poll")?,
                    "dhcp-leases" => {
                        o.dhcp_leases = Some(p.value()?).filter(|v| !v.is_empty()).map(Into::into)
                    }
                    "help" => return Ok(Command::Help),
                    _ => return Err(a.unexpected()),
                }
            }
            Ok(Command::Watch(o, level))
        }
        "run" => Ok(Command::Run(parse_run_args(&mut p, false)?)),
        "check-config" => Ok(Command::Run(parse_run_args(&mut p, true)?)),
        other => Err(format!("unknown command {other:?} (try --help)")),
    }
}

/// Parses the options of `run` (or `check-config` when `check_only`) after the subcommand:
/// `--config`, and (run only) the flags of the settings table.
///
/// # Errors
/// An unknown option or a missing value, as one line.
fn parse_run_args(p: &mut Args, check_only: bool) -> Result<RunArgs, String> {
    let mut a = RunArgs {
        check_only,
        ..RunArgs::default()
    };
    while let Some(arg) = p.next_arg()? {
        let setting = match &arg {
            Arg::Long(f) if !check_only => settings::by_flag(f),
            Arg::Short('i') if !check_only => settings::find("interface"),
            _ => None,
        };
        if let Some(s) = setting {
            a.flags.values.push((s.name, p.value()?));
            continue;
        }
        match &arg {
            Arg::Long(l) if l == "config" => a.flags.config = Some(p.value()?.into()),
            Arg::Short('c') => a.flags.config = Some(p.value()?.into()),
            #[cfg(feature = "devtools")]
            Arg::Long(l) if l == "synthetic" && !check_only => {
                let v = p.value()?;
                let (n, ms) = v.split_once(':').unwrap_or((&v, "10"));
                match (n.parse(), ms.parse()) {
                    (Ok(n), Ok(ms)) => a.synthetic = Some((n, ms)),
                    _ => return Err(format!("--synthetic: {v:?} is not COUNT[:MS]")),
                }
            }
            _ => return Err(arg.unexpected()),
        }
    }
    Ok(a)
}

/// The program: parses the command line, runs the command, returns the exit status.
pub fn main() -> ExitCode {
    let command = match parse_args(Args::from_env()) {
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
        Command::Stations { json } => stations::stations(json, &mut stdout.lock()),
        #[cfg(feature = "devtools")]
        Command::Watch(o, level) => {
            logger::init(level, Streams::Stderr);
            watch::watch(o, &mut stdout.lock())
        }
        Command::Run(a) => return run_or_check(a),
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wifisess-agent: {e}");
            ExitCode::from(1)
        }
    }
}

/// `run` / `check-config`: loads the configuration (exit 2 with one line if it is bad), then
/// prints it or runs the agent (exit 1 on a runtime failure).
fn run_or_check(args: RunArgs) -> ExitCode {
    let env = |v: &str| std::env::var(v).ok();
    let eff = match config::load(&args.flags, &env, &crate::host::default_device_id) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("wifisess-agent: {e}");
            return ExitCode::from(2);
        }
    };
    let cfg = &eff.config;
    // check-config shows its warnings whatever the configured level.
    let level = match args.check_only {
        true => cfg.log_level.max(log::LevelFilter::Warn),
        false => cfg.log_level,
    };
    logger::init(level, Streams::Split);
    for w in &eff.warnings {
        log::warn!("{w}");
    }
    if args.check_only {
        print!("{}", eff.render());
        return ExitCode::SUCCESS;
    }
    if !cfg.enabled {
        log::info!("disabled by configuration (option enabled '0'); exiting");
        return ExitCode::SUCCESS;
    }
    let Some(broker) = &cfg.broker else {
        eprintln!("wifisess-agent: option broker: not set (UCI option broker, WIFISESS_BROKER or --broker)");
        return ExitCode::from(2);
    };
    if broker.tls && !cfg!(feature = "tls") {
        eprintln!(
            "wifisess-agent: option broker: mqtts:// needs an agent built with the tls feature"
        );
        return ExitCode::from(2);
    }
    #[cfg(feature = "devtools")]
    let kind = match args.synthetic {
        Some((n, ms)) => SourceKind::Synthetic(n, ms),
        None => SourceKind::Nl80211,
    };
    #[cfg(not(feature = "devtools"))]
    let kind = SourceKind::Nl80211;
    match run::run(cfg, kind) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{e}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Result<Command, String> {
        parse_args(Args::new(a.iter().copied()))
    }

    #[test]
    fn run_flags_come_from_the_settings_table() {
        let Ok(Command::Run(a)) = args(&[
            "run",
            "--broker",
            "mqtt://b",
            "-i",
            "wlan0",
            "--interface",
            "wlan1",
            "--device-id",
            "d",
            "--log-level",
            "debug",
            "-c",
            "/x",
        ]) else {
            panic!("not run")
        };
        assert_eq!(
            a.flags.values,
            [
                ("broker", "mqtt://b".to_string()),
                ("interface", "wlan0".into()),
                ("interface", "wlan1".into()),
                ("device_id", "d".into()),
                ("log_level", "debug".into()),
            ]
        );
        assert_eq!(a.flags.config.as_deref(), Some(std::path::Path::new("/x")));
        assert!(!a.check_only);
        // check-config takes only --config; unknown flags are usage errors.
        assert!(args(&["check-config", "--broker", "x"]).is_err());
        assert!(args(&["run", "--poll-interval", "5"]).is_err());
        assert!(matches!(args(&["check-config"]), Ok(Command::Run(a)) if a.check_only));
    }

    #[cfg(feature = "devtools")]
    fn ms(s: &str) -> Result<u64, String> {
        seconds_ms(s.to_string(), "--poll")
    }

    #[cfg(feature = "devtools")]
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
