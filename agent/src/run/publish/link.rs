//! The one task that owns the MQTT connection: drives rumqttc's event loop, reconnects with
//! exponential backoff and jitter, and reports what happened to the publisher as [`NetMsg`]s.
//!
//! Every connection gets a fresh client and event loop (clean session): nothing queued for an
//! old connection can be sent on a new one, and no stale packet id survives, so the
//! publisher's bookkeeping (publishes in order ↔ `Outgoing::Publish(pkid)` in order) stays
//! exact. The outbox, not rumqttc, re-sends what was not acknowledged.

use std::time::Duration;

use rumqttc::{
    AsyncClient, ConnectReturnCode, ConnectionError, Event, MqttOptions, Outgoing, Packet,
};
use tokio::sync::mpsc::UnboundedSender;

/// What the link tells the publisher, in the order it happened.
#[derive(Debug)]
pub enum NetMsg {
    /// Connected (CONNACK accepted): publish through this client until [`NetMsg::Down`].
    Up(AsyncClient),
    /// rumqttc wrote a QoS 1 publish with this packet id (in the order of `publish` calls).
    Sent(u16),
    /// The broker acknowledged this packet id.
    Acked(u16),
    /// The connection is gone (the reason, for the log); a reconnect follows.
    Down(String),
    /// The graceful DISCONNECT was written.
    Closed,
}

/// Exponential backoff from 1 s to 60 s with jitter (each wait uniformly in [d/2, d]).
#[derive(Debug)]
pub struct Backoff {
    next_ms: u64,
    rng: u32,
}

impl Backoff {
    /// Shortest wait, ms.
    pub const MIN_MS: u64 = 1_000;
    /// Longest wait, ms.
    pub const MAX_MS: u64 = 60_000;

    /// A backoff whose jitter is seeded with `seed`.
    pub fn new(seed: u32) -> Backoff {
        Backoff {
            next_ms: Self::MIN_MS,
            rng: seed | 1,
        }
    }

    /// The next wait, ms; doubles the one after (up to the maximum).
    pub fn next_ms(&mut self) -> u64 {
        // xorshift32: jitter only, not cryptography.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 17;
        self.rng ^= self.rng << 5;
        let d = self.next_ms;
        self.next_ms = (d * 2).min(Self::MAX_MS);
        let half = d / 2;
        (half + u64::from(self.rng) % (d - half + 1)).max(Self::MIN_MS.min(d))
    }

    /// After a successful connect: start from the minimum again.
    pub fn reset(&mut self) {
        self.next_ms = Self::MIN_MS;
    }
}

/// A readable reason for a connection failure; a refused CONNECT names the broker's reason.
pub fn describe(e: &ConnectionError) -> String {
    match e {
        ConnectionError::ConnectionRefused(code) => {
            let why = match code {
                ConnectReturnCode::BadUserNamePassword => "bad user name or password",
                ConnectReturnCode::NotAuthorized => {
                    "not authorized (bad user name or password, or no access)"
                }
                ConnectReturnCode::BadClientId => "client id rejected",
                ConnectReturnCode::ServiceUnavailable => "service unavailable",
                ConnectReturnCode::RefusedProtocolVersion => "MQTT 3.1.1 not supported",
                ConnectReturnCode::Success => "success (?)",
            };
            format!("connection refused: {why}")
        }
        e => e.to_string(),
    }
}

/// Runs the connection until the publisher goes away (`tx` closed) or after a graceful
/// DISCONNECT. `addr` is only for log lines.
pub async fn drive(opts: MqttOptions, addr: String, tx: UnboundedSender<NetMsg>, seed: u32) {
    let mut backoff = Backoff::new(seed);
    loop {
        let (client, mut el) = AsyncClient::new(opts.clone(), 64);
        match el.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                log::info!("connected to {addr}");
                backoff.reset();
                if tx.send(NetMsg::Up(client)).is_err() {
                    return;
                }
            }
            Ok(other) => log::warn!("{addr}: unexpected first event {other:?}"),
            Err(e) => {
                let wait = backoff.next_ms();
                log::error!(
                    "cannot connect to {addr}: {}; retrying in {} ms",
                    describe(&e),
                    wait
                );
                drop((client, el));
                tokio::time::sleep(Duration::from_millis(wait)).await;
                if tx.is_closed() {
                    return;
                }
                continue;
            }
        }
        loop {
            let msg = match el.poll().await {
                Ok(Event::Outgoing(Outgoing::Publish(pkid))) => NetMsg::Sent(pkid),
                Ok(Event::Incoming(Packet::PubAck(a))) => NetMsg::Acked(a.pkid),
                Ok(Event::Outgoing(Outgoing::Disconnect)) => {
                    let _ = tx.send(NetMsg::Closed);
                    return;
                }
                Ok(_) => continue,
                Err(e) => {
                    let why = describe(&e);
                    log::warn!("connection to {addr} lost: {why}");
                    if tx.send(NetMsg::Down(why)).is_err() {
                        return;
                    }
                    break;
                }
            };
            if tx.send(msg).is_err() {
                return;
            }
        }
        drop(el);
        let wait = backoff.next_ms();
        log::info!("reconnecting to {addr} in {wait} ms");
        tokio::time::sleep(Duration::from_millis(wait)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_between_1_and_60_s() {
        let mut b = Backoff::new(12345);
        let waits: Vec<u64> = (0..10).map(|_| b.next_ms()).collect();
        for (i, w) in waits.iter().enumerate() {
            let d = (1000u64 << i).min(60_000);
            assert!(*w >= (d / 2).max(1000) && *w <= d, "wait {i} = {w}");
        }
        b.reset();
        assert_eq!(b.next_ms(), 1000);
    }
}
