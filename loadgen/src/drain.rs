//! The broker baseline: a plain subscriber that drains `{prefix}/+/events` with QoS 1
//! (rumqttc acknowledges each publish as soon as it is read), decodes every batch and counts
//! its events, and stops when it has seen the expected number. No storage: what it reaches is
//! the broker's (and the client library's) limit on this machine.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::bail;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

use crate::now_ms;

/// What to drain.
#[derive(Debug, Clone)]
pub struct DrainConfig {
    /// Broker host.
    pub host: String,
    /// Broker port.
    pub port: u16,
    /// Topic prefix.
    pub prefix: String,
    /// Stop after this many events.
    pub expect_events: u64,
    /// Give up after this long.
    pub timeout: Duration,
    /// Created (empty) once the subscription is acknowledged, for scripts to wait on.
    pub ready_file: Option<PathBuf>,
}

/// What was drained.
#[derive(Debug, Clone, Default)]
pub struct DrainReport {
    /// Publishes received.
    pub messages: u64,
    /// Events in them.
    pub events: u64,
    /// Payload bytes.
    pub bytes: u64,
    /// Payloads that did not decode.
    pub undecodable: u64,
    /// Wall ms of the first publish received.
    pub first_ms: i64,
    /// Wall ms of the publish that completed the count.
    pub last_ms: i64,
}

/// Subscribes and counts until `expect_events` events arrived.
///
/// # Errors
/// Timeout, or the broker refused the connection.
pub async fn run(cfg: DrainConfig) -> anyhow::Result<DrainReport> {
    let mut o = MqttOptions::new(
        format!("wifisess-drain-{}", std::process::id()),
        &cfg.host,
        cfg.port,
    );
    o.set_clean_session(true)
        .set_keep_alive(Duration::from_secs(30))
        .set_max_packet_size(16 * 1024 * 1024, 64 * 1024);
    let (client, mut el) = AsyncClient::new(o, 10_000);
    let topic = format!("{}/+/events", cfg.prefix);
    let deadline = tokio::time::Instant::now() + cfg.timeout;
    let mut rep = DrainReport::default();
    while rep.events < cfg.expect_events {
        let ev = match tokio::time::timeout_at(deadline, el.poll()).await {
            Ok(ev) => ev,
            Err(_) => bail!(
                "timed out after {:?}: {} of {} events",
                cfg.timeout,
                rep.events,
                cfg.expect_events
            ),
        };
        match ev {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                client.try_subscribe(topic.clone(), QoS::AtLeastOnce)?;
            }
            Ok(Event::Incoming(Packet::SubAck(_))) => {
                eprintln!("wifisess-loadgen drain: subscribed to {topic}");
                if let Some(p) = &cfg.ready_file {
                    std::fs::write(p, b"")?;
                }
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                if rep.first_ms == 0 {
                    rep.first_ms = now_ms();
                }
                rep.messages += 1;
                rep.bytes += p.payload.len() as u64;
                match wifisess_wire::decode_batch(&p.payload) {
                    Ok(b) => rep.events += b.events.len() as u64,
                    Err(_) => rep.undecodable += 1,
                }
                rep.last_ms = now_ms();
            }
            Ok(_) => {}
            Err(e) => {
                eprintln!("wifisess-loadgen drain: {e}; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    let _ = client.try_disconnect();
    Ok(rep)
}
