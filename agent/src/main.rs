//! `wifisess-agent`: the command line is [`wifisess_agent::cli`].

fn main() -> std::process::ExitCode {
    wifisess_agent::cli::main()
}
