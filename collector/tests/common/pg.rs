//! A throwaway PostgreSQL for the tests: Debian's server binaries, a cluster made with
//! `initdb` in a temporary directory and started with `pg_ctl` on a private socket directory
//! (no TCP unless asked), as the unprivileged `postgres` user when the tests run as root
//! (PostgreSQL refuses root). One cluster per test binary ([`cluster`]), one database per
//! test ([`Cluster::database`]). A watchdog process stops the cluster (`pg_ctl stop -m
//! immediate`) and removes its directory when the test binary exits, however it exits.
//! No mock: when PostgreSQL is missing the tests fail and say how to install it.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The directory of `initdb`, `pg_ctl` and `postgres`: the newest
/// `/usr/lib/postgresql/N/bin`, else `pg_config --bindir`.
pub fn bin_dir() -> PathBuf {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    found.sort();
    if let Some((_, b)) = found.pop() {
        return b;
    }
    if let Ok(o) = Command::new("pg_config").arg("--bindir").output() {
        let b = PathBuf::from(String::from_utf8_lossy(&o.stdout).trim());
        if b.join("initdb").exists() {
            return b;
        }
    }
    panic!(
        "PostgreSQL's server (initdb, pg_ctl) is not installed: the PostgreSQL store tests need \
         it. Run tests/install-deps.sh services (Debian package postgresql) and try again."
    );
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// `bin` with `args`, as the `postgres` user when we are root.
fn pg_command(bin: &Path, args: &[&str]) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin).args(args);
        c
    } else {
        let mut c = Command::new(bin);
        c.args(args);
        c
    }
}

fn run(mut c: Command, what: &str) {
    let out = c.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A running cluster.
pub struct Cluster {
    /// Its directory: `data/`, `sock/`, `log`.
    pub dir: PathBuf,
    /// The port (the socket file's name; TCP only if [`Options::tcp`]).
    pub port: u16,
    bin: PathBuf,
    owned: bool,
}

/// How a cluster is started.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `fsync=on` (benchmark-like durability); correctness tests run with it off.
    pub fsync: bool,
    /// Also listen on 127.0.0.1 (this port) with TLS (`ssl=on`, a self-signed certificate
    /// for `localhost` in `dir/tls/`).
    pub tcp_tls: bool,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

static NEXT_DB: AtomicUsize = AtomicUsize::new(0);

impl Cluster {
    /// `initdb` and `pg_ctl start` a new cluster; it is stopped when dropped, and by a
    /// watchdog when this process exits.
    pub fn start(opts: Options) -> Cluster {
        let bin = bin_dir();
        let dir = tempfile::Builder::new()
            .prefix("wifisess-pg-")
            .tempdir()
            .unwrap()
            .keep();
        let port = free_port();
        std::fs::create_dir(dir.join("sock")).unwrap();
        if is_root() {
            run(
                {
                    let mut c = Command::new("chown");
                    c.args(["-R", "postgres:"]).arg(&dir);
                    c
                },
                "chown",
            );
        }
        let data = dir.join("data");
        run(
            pg_command(
                &bin.join("initdb"),
                &[
                    "-D",
                    data.to_str().unwrap(),
                    "-A",
                    "trust",
                    "-U",
                    "postgres",
                    "-E",
                    "UTF8",
                    "--locale=C",
                    "--no-sync",
                ],
            ),
            "initdb",
        );
        let mut o = format!(
            "-p {port} -k {} -c fsync={} -c max_connections=200 -c shared_buffers=64MB",
            dir.join("sock").display(),
            if opts.fsync { "on" } else { "off" }
        );
        // A commit is in the WAL (the OS's page cache at least) when COMMIT returns, so a
        // server crash (`restart -m immediate`) loses nothing acknowledged; without fsync the
        // machine crashing could, which tests do not do.
        if !opts.fsync {
            o.push_str(" -c full_page_writes=off");
        }
        if opts.tcp_tls {
            let tls = dir.join("tls");
            std::fs::create_dir(&tls).unwrap();
            // A CA and a server certificate for `localhost` signed by it (webpki refuses a
            // self-signed CA certificate as the server's own).
            let sh = format!(
                "set -e; cd {dir}; \
                 openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=wifisess-test-ca \
                   -keyout ca.key -out ca.crt; \
                 openssl req -newkey rsa:2048 -nodes -subj /CN=localhost \
                   -keyout server.key -out server.csr; \
                 printf 'subjectAltName=DNS:localhost\\nbasicConstraints=CA:FALSE\\n' > ext; \
                 openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
                   -days 2 -extfile ext -out server.crt",
                dir = tls.display()
            );
            run(
                {
                    let mut c = Command::new("sh");
                    c.args(["-c", &sh]).stderr(Stdio::null());
                    c
                },
                "openssl (the test server's certificates)",
            );
            if is_root() {
                run(
                    {
                        let mut c = Command::new("chown");
                        c.args(["-R", "postgres:"]).arg(&tls);
                        c
                    },
                    "chown",
                );
            }
            std::fs::set_permissions(
                tls.join("server.key"),
                std::os::unix::fs::PermissionsExt::from_mode(0o600),
            )
            .unwrap();
            o.push_str(&format!(
                " -c listen_addresses=127.0.0.1 -c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
                tls.join("server.crt").display(),
                tls.join("server.key").display()
            ));
        } else {
            o.push_str(" -c listen_addresses=''");
        }
        let c = Cluster {
            dir: dir.clone(),
            port,
            bin,
            owned: true,
        };
        std::fs::write(dir.join("pg_ctl_options"), &o).unwrap();
        c.pg_ctl(&["start", "-w", "-t", "60", "-o", &o]);
        c.watchdog();
        c
    }

    fn pg_ctl(&self, args: &[&str]) {
        let data = self.dir.join("data");
        let log = self.dir.join("log");
        let mut a = vec!["-D", data.to_str().unwrap(), "-l", log.to_str().unwrap()];
        a.extend_from_slice(args);
        run(pg_command(&self.bin.join("pg_ctl"), &a), "pg_ctl");
    }

    /// A process that waits for this test binary to exit, then stops the cluster and removes
    /// its directory.
    fn watchdog(&self) {
        let script = format!(
            "while [ -d /proc/{pid} ]; do sleep 0.5; done; \
             {ctl} -D {data} stop -m immediate -w >/dev/null 2>&1; rm -rf {dir}",
            pid = std::process::id(),
            ctl = self.bin.join("pg_ctl").display(),
            data = self.dir.join("data").display(),
            dir = self.dir.display()
        );
        let mut c = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--", "sh", "-c", &script]);
            c
        } else {
            let mut c = Command::new("sh");
            c.args(["-c", &script]);
            c
        };
        let mut child = c
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting the cluster's watchdog");
        // Reaped if it ends first (it outlives this process otherwise: that is its job).
        std::thread::spawn(move || child.wait());
    }

    /// Restarts the server at once, as a crash would (`pg_ctl restart -m immediate`).
    pub fn restart_immediate(&self) {
        let o = std::fs::read_to_string(self.dir.join("pg_ctl_options")).unwrap();
        self.pg_ctl(&["restart", "-m", "immediate", "-w", "-t", "60", "-o", &o]);
    }

    /// The URL of database `db` through the socket directory.
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgres:///{db}?host={}&port={}&user=postgres",
            self.dir.join("sock").display(),
            self.port
        )
    }

    /// The TCP URL of database `db` with `params` (TLS tests; [`Options::tcp_tls`]).
    pub fn tcp_url(&self, db: &str, params: &str) -> String {
        format!("postgres://postgres@localhost:{}/{db}?{params}", self.port)
    }

    /// The CA that signed the server's certificate (TLS tests).
    pub fn certificate(&self) -> PathBuf {
        self.dir.join("tls/ca.crt")
    }

    /// A new empty database for one test; returns its URL.
    pub fn database(&self, test: &str) -> String {
        let n = NEXT_DB.fetch_add(1, Ordering::Relaxed);
        let name: String = format!("t{n}_{test}")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .take(60)
            .collect();
        let mut admin = self.admin();
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        self.url(&name)
    }

    /// A connection to the `postgres` database.
    pub fn admin(&self) -> postgres::Client {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match postgres::Client::connect(&self.url("postgres"), postgres::NoTls) {
                Ok(c) => return c,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => panic!("connecting to the test cluster: {e}"),
            }
        }
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.owned {
            let data = self.dir.join("data");
            let _ = pg_command(
                &self.bin.join("pg_ctl"),
                &[
                    "-D",
                    data.to_str().unwrap(),
                    "stop",
                    "-m",
                    "immediate",
                    "-w",
                ],
            )
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// This test binary's cluster (started at first use, stopped when the binary exits).
pub fn cluster() -> &'static Cluster {
    static C: OnceLock<Cluster> = OnceLock::new();
    C.get_or_init(|| {
        let mut c = Cluster::start(Options::default());
        // Statics are never dropped: the watchdog stops it.
        c.owned = false;
        c
    })
}

/// A new database of this binary's cluster, for one test.
pub fn database(test: &str) -> String {
    cluster().database(test)
}

/// One database of each engine, for a test that runs its body on both.
pub struct EngineDb {
    /// `sqlite` or `postgres`, for messages.
    pub engine: &'static str,
    /// Where it is.
    pub locator: wifisess_collector::store::DbLocator,
    /// What `--db` takes: the file's path or the URL.
    pub arg: String,
    /// A working directory of the test (holds the SQLite file).
    pub dir: tempfile::TempDir,
}

impl EngineDb {
    /// An SQLite file in a new temporary directory.
    pub fn sqlite() -> EngineDb {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wifisess.db");
        EngineDb {
            engine: "sqlite",
            locator: wifisess_collector::store::DbLocator::Sqlite(path.clone()),
            arg: path.display().to_string(),
            dir,
        }
    }

    /// A new database of this binary's PostgreSQL cluster.
    pub fn postgres(test: &str) -> EngineDb {
        let url = database(test);
        EngineDb {
            engine: "postgres",
            locator: wifisess_collector::store::DbLocator::Postgres(url.clone()),
            arg: url,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// A writer's store on it (created and migrated).
    pub fn store(&self) -> Box<dyn wifisess_collector::store::Store> {
        wifisess_collector::store::open(&self.locator, "test").unwrap()
    }

    /// A read-only connection.
    pub fn read(&self) -> wifisess_collector::read::ReadDb {
        wifisess_collector::read::ReadDb::open(&self.locator).unwrap()
    }
}

/// An SQLite and a PostgreSQL database for `test`.
pub fn both(test: &str) -> [EngineDb; 2] {
    [EngineDb::sqlite(), EngineDb::postgres(test)]
}
