//! Shared by the mqtt_* tests: a mosquitto per test on a free port (LAB §3), a subscriber
//! that decodes with the wire crate, and an in-process agent driven through a channel.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use wifisess_agent::config::Config;
use wifisess_agent::session::Timed;
use wifisess_wire::{decode_batch, decode_status, Batch, Status};

/// Polls `f` every 50 ms until it returns `Some` or `secs` pass (then panics with `what`).
pub fn wait_for<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < end,
            "timed out after {secs} s waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A fresh temporary directory.
pub fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "wifisess-{tag}-{}-{}",
        std::process::id(),
        free_port()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A mosquitto process (no persistence) on its own port.
pub struct Mosquitto {
    pub port: u16,
    conf: PathBuf,
    child: Option<Child>,
}

impl Mosquitto {
    /// Starts mosquitto with `listener PORT 127.0.0.1` and `extra` config lines. A port from
    /// [`free_port`] can be taken by another process before mosquitto binds it; mosquitto
    /// then exits (the listen check reached the other process), and it is started again on
    /// another port.
    pub fn start(dir: &Path, extra: &str) -> Mosquitto {
        for _ in 0..5 {
            let mut m = Mosquitto::configure(free_port(), dir, extra);
            if m.spawn() {
                return m;
            }
            eprintln!(
                "mosquitto exited at once (port {} taken?); another port",
                m.port
            );
        }
        panic!("mosquitto did not stay up on any of 5 ports");
    }

    /// [`Mosquitto::start`] on a given port.
    pub fn start_on(port: u16, dir: &Path, extra: &str) -> Mosquitto {
        let mut m = Mosquitto::configure(port, dir, extra);
        m.resume();
        m
    }

    fn configure(port: u16, dir: &Path, extra: &str) -> Mosquitto {
        let conf = dir.join(format!("mosquitto-{port}.conf"));
        let anon = if extra.contains("password_file") {
            ""
        } else {
            "allow_anonymous true\n"
        };
        std::fs::write(
            &conf,
            format!("listener {port} 127.0.0.1\n{anon}persistence false\n{extra}\n"),
        )
        .unwrap();
        Mosquitto {
            port,
            conf,
            child: None,
        }
    }

    /// (Re)starts the process on the same port and waits until it accepts connections.
    pub fn resume(&mut self) {
        assert!(
            self.spawn(),
            "mosquitto exited at once (port {} taken?)",
            self.port
        );
    }

    /// Starts the process and waits until it listens (true) or has exited (false).
    fn spawn(&mut self) -> bool {
        let mut child = Command::new("mosquitto")
            .arg("-c")
            .arg(&self.conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto (apt-get install mosquitto)");
        let port = self.port;
        let up = wait_for(10, "mosquitto to listen or exit", || {
            if child.try_wait().expect("mosquitto's status").is_some() {
                Some(false)
            } else {
                listens(child.id(), port).then_some(true)
            }
        });
        self.child = Some(child);
        up
    }

    /// Kills the process (SIGKILL, by pid) and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What a subscriber received, decoded.
#[derive(Default)]
pub struct Seen {
    pub batches: Vec<Batch>,
    pub statuses: Vec<(bool, Status)>,
}

impl Seen {
    /// Every (epoch, seq) received, in arrival order.
    pub fn keys(&self) -> Vec<(u32, u64)> {
        self.batches
            .iter()
            .flat_map(|b| b.events.iter().map(move |e| (b.agent_epoch, e.seq())))
            .collect()
    }
}

/// A subscriber to `wifisess/v1/#` on a background thread; reconnects quickly and
/// re-subscribes after every connect.
pub fn subscribe(port: u16) -> Arc<Mutex<Seen>> {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let s2 = seen.clone();
    let ready = Arc::new(Mutex::new(false));
    let r2 = ready.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let mut o = MqttOptions::new(format!("sub-{port}-{}", free_port()), "127.0.0.1", port);
            o.set_max_packet_size(1 << 20, 1 << 20);
            let (client, mut el) = AsyncClient::new(o, 16);
            loop {
                match el.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        client
                            .subscribe("wifisess/v1/#", QoS::AtLeastOnce)
                            .await
                            .unwrap();
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => *r2.lock().unwrap() = true,
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let mut s = s2.lock().unwrap();
                        if p.topic.ends_with("/events") {
                            s.batches
                                .push(decode_batch(&p.payload).expect("a valid batch"));
                        } else if p.topic.ends_with("/status") {
                            s.statuses.push((
                                p.retain,
                                decode_status(&p.payload).expect("a valid status"),
                            ));
                        }
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        });
    });
    wait_for(10, "the subscription", || {
        (*ready.lock().unwrap()).then_some(())
    });
    seen
}

/// A configuration for tests: broker on `port`, spool in `dir`, everything else the
/// settings table's defaults.
pub fn config(port: u16, dir: &Path) -> Config {
    config_with(port, dir, &[])
}

/// [`config`] with more `(option, value)` pairs.
pub fn config_with(port: u16, dir: &Path, more: &[(&str, &str)]) -> Config {
    let broker = format!("mqtt://127.0.0.1:{port}");
    let spool = dir.join("spool");
    let mut pairs = vec![
        ("device_id", "testdev"),
        ("name", "test"),
        ("broker", broker.as_str()),
        ("spool_file", spool.to_str().unwrap()),
    ];
    pairs.extend_from_slice(more);
    wifisess_agent::config::from_pairs(&pairs).unwrap()
}

/// An agent running in-process on its own thread, fed through a channel.
pub struct Agent {
    pub tx: tokio::sync::mpsc::UnboundedSender<Timed>,
    /// Events the agent's loop has taken from `tx` so far.
    pub taken: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<wifisess_agent::error::Result<()>>>,
}

impl Agent {
    pub fn start(cfg: Config) -> Agent {
        wifisess_agent::logger::init(
            log::LevelFilter::Info,
            wifisess_agent::logger::Streams::Stderr,
        );
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let src = wifisess_agent::run::ChannelSource::new(rx);
        let taken = src.taken.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                wifisess_agent::run::run_with(&cfg, src, async {
                    let _ = stopped.await;
                })
                .await
            })
        });
        Agent {
            tx,
            taken,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Waits until the agent's loop has taken `n` events in all.
    pub fn wait_taken(&self, n: usize) {
        wait_for(20, "the agent to take the events", || {
            (self.taken.load(std::sync::atomic::Ordering::Relaxed) >= n).then_some(())
        });
    }

    /// Graceful stop (as on SIGTERM); returns run's result.
    pub fn stop(mut self) -> wifisess_agent::error::Result<()> {
        let _ = self.stop.take().unwrap().send(());
        self.thread.take().unwrap().join().unwrap()
    }
}

/// Asserts that `keys` of one epoch hold every seq 1..=max exactly or more than once, and
/// returns the number of distinct seqs.
pub fn assert_no_gap(keys: &[(u32, u64)], epoch: u32) -> u64 {
    let mut s: Vec<u64> = keys
        .iter()
        .filter(|(e, _)| *e == epoch)
        .map(|(_, s)| *s)
        .collect();
    s.sort_unstable();
    s.dedup();
    let max = *s.last().unwrap_or(&0);
    assert_eq!(s, (1..=max).collect::<Vec<_>>(), "gap in epoch {epoch:08x}");
    max
}

/// Whether process `pid` holds a socket listening on TCP `port` (Linux: `/proc/net/tcp`
/// names the listening sockets' inodes, `/proc/PID/fd` the process's). A plain connect
/// cannot tell our mosquitto from another process that took the port first.
fn listens(pid: u32, port: u16) -> bool {
    let Ok(tcp) = std::fs::read_to_string("/proc/net/tcp") else {
        return false;
    };
    let sockets: Vec<String> = tcp
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let local_port = u16::from_str_radix(f.get(1)?.rsplit(':').next()?, 16).ok()?;
            // State 0A is LISTEN.
            let inode = f.get(9)?;
            (local_port == port && *f.get(3)? == "0A").then(|| format!("socket:[{inode}]"))
        })
        .collect();
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten().any(|fd| {
        std::fs::read_link(fd.path())
            .is_ok_and(|t| sockets.iter().any(|s| t.as_os_str() == s.as_str()))
    })
}
