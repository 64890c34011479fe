//! The publisher against a real mosquitto: order, outages, broker restarts, overflow.
//! Needs `mosquitto` on PATH (Debian package).

mod mqtt_support;

use std::time::{Duration, Instant};

use mqtt_support::*;
use wifisess_agent::run::synthetic_start;
use wifisess_wire::{Event, FailedJoin, MacAddr, Stamp, Update};

fn now() -> Stamp {
    let wall = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    Stamp {
        wall_ms: wall.as_millis() as u64,
        uptime_ms: wall.as_millis() as u64 % 1_000_000_000,
    }
}

fn update(i: u32) -> wifisess_agent::session::Timed {
    wifisess_agent::session::Timed {
        at: now(),
        event: Event::Update(Update {
            seq: 0,
            at: Default::default(),
            id: wifisess_wire::SessionId(u64::from(i)),
            rx_bytes: 1,
            tx_bytes: 1,
            rx_packets: 1,
            tx_packets: 1,
            signal_avg_dbm: None,
            inactive_ms: None,
            hostname: None,
        }),
    }
}

fn starts_seen(seen: &Seen) -> usize {
    seen.batches
        .iter()
        .flat_map(|b| &b.events)
        .filter(|e| matches!(e, Event::Start(_)))
        .count()
}

#[test]
fn events_arrive_in_order_with_continuous_seq_and_online_status() {
    let dir = tempdir("order");
    let broker = Mosquitto::start(&dir, "");
    let seen = subscribe(broker.port);
    let agent = Agent::start(config(broker.port, &dir));
    for i in 0..200 {
        agent.tx.send(synthetic_start(i, now())).unwrap();
    }
    wait_for(30, "200 starts", || {
        (starts_seen(&seen.lock().unwrap()) >= 200).then_some(())
    });
    agent.stop().unwrap();
    // The agent has had its offline status acknowledged, but the broker may not have passed
    // it on to the subscriber yet.
    wait_for(10, "the graceful offline status", || {
        let s = seen.lock().unwrap();
        let (_, st) = s.statuses.last()?;
        (!st.online).then_some(())
    });
    let s = seen.lock().unwrap();
    let keys = s.keys();
    let epoch = keys[0].0;
    assert!(keys.iter().all(|(e, _)| *e == epoch));
    assert!(
        keys.windows(2).all(|w| w[0].1 < w[1].1),
        "in order, no duplicates: {keys:?}"
    );
    assert_eq!(assert_no_gap(&keys, epoch), 201, "200 starts and one sync");
    assert!(
        s.batches.iter().any(|b| b.events.len() > 1),
        "bursts share a publish"
    );
    let (retained, online) = &s.statuses[0];
    assert!(online.online && !retained, "live online status first");
    assert_eq!(online.agent_epoch, epoch);
    let (_, last) = s.statuses.last().unwrap();
    assert!(
        !last.online && last.graceful,
        "graceful offline status at stop"
    );
    assert_eq!(last.published, 201);
    assert!(!dir.join("spool").exists(), "nothing to spool");
}

#[test]
fn broker_down_20_s_while_500_events_are_produced_loses_nothing() {
    let dir = tempdir("outage");
    let mut broker = Mosquitto::start(&dir, "");
    let seen = subscribe(broker.port);
    let agent = Agent::start(config(broker.port, &dir));
    agent.tx.send(synthetic_start(0, now())).unwrap();
    wait_for(10, "the first start", || {
        (starts_seen(&seen.lock().unwrap()) >= 1).then_some(())
    });
    broker.stop();
    let t0 = Instant::now();
    for i in 1..=500 {
        let t = if i % 2 == 0 {
            synthetic_start(i, now())
        } else {
            update(i)
        };
        agent.tx.send(t).unwrap();
        std::thread::sleep(Duration::from_millis(40)); // 500 × 40 ms = 20 s
    }
    assert!(t0.elapsed() >= Duration::from_secs(20));
    broker.resume();
    let epoch = seen.lock().unwrap().keys()[0].0;
    // The agent backs off up to 16-32 s by now; wait for every seq to arrive.
    wait_for(90, "all 500 events after the outage", || {
        let s = seen.lock().unwrap();
        let mut k: Vec<u64> = s
            .keys()
            .iter()
            .filter(|(e, _)| *e == epoch)
            .map(|k| k.1)
            .collect();
        k.sort_unstable();
        k.dedup();
        (k.len() >= 503).then_some(())
    });
    agent.stop().unwrap();
    let s = seen.lock().unwrap();
    let n = assert_no_gap(&s.keys(), epoch);
    assert!(n >= 503, "1 + 500 events and 2 syncs, got {n}");
    let online: Vec<_> = s.statuses.iter().filter(|(_, st)| st.online).collect();
    assert!(online.last().unwrap().1.reconnects >= 1);
}

#[test]
fn broker_restart_without_persistence_leaves_no_gap() {
    let dir = tempdir("restart");
    let mut broker = Mosquitto::start(&dir, "");
    let seen = subscribe(broker.port);
    let agent = Agent::start(config(broker.port, &dir));
    let epoch = {
        agent.tx.send(synthetic_start(0, now())).unwrap();
        wait_for(10, "the first batch", || {
            seen.lock().unwrap().keys().first().map(|k| k.0)
        })
    };
    // Kill the broker while events are being published (some in flight, unacknowledged).
    for i in 1..=300 {
        agent.tx.send(synthetic_start(i, now())).unwrap();
        if i == 150 {
            broker.stop();
            broker.resume();
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    wait_for(60, "all 301 starts after the restart", || {
        let s = seen.lock().unwrap();
        let mut k: Vec<u64> = s
            .batches
            .iter()
            .filter(|b| b.agent_epoch == epoch)
            .flat_map(|b| {
                b.events
                    .iter()
                    .filter(|e| matches!(e, Event::Start(_)))
                    .map(Event::seq)
            })
            .collect();
        k.sort_unstable();
        k.dedup();
        (k.len() >= 301).then_some(())
    });
    agent.stop().unwrap();
    assert_no_gap(&seen.lock().unwrap().keys(), epoch);
}

#[test]
fn overflow_drops_updates_first_and_status_counts_the_drops() {
    let dir = tempdir("overflow");
    let port = free_port(); // no broker yet
    let mut cfg = config(port, &dir);
    cfg.outbox_capacity = 20;
    let agent = Agent::start(cfg);
    for i in 0..10 {
        agent.tx.send(synthetic_start(i, now())).unwrap();
    }
    for i in 0..30 {
        agent.tx.send(update(i)).unwrap();
    }
    agent.wait_taken(40);
    let _broker = Mosquitto::start_on(port, &dir, "");
    let seen = subscribe(port);
    wait_for(90, "the 10 starts", || {
        (starts_seen(&seen.lock().unwrap()) >= 10).then_some(())
    });
    // The online status follows the connect; wait without holding the subscriber's lock.
    let status = wait_for(10, "an online status", || {
        seen.lock()
            .unwrap()
            .statuses
            .iter()
            .rev()
            .find(|(_, st)| st.online)
            .map(|x| x.1.clone())
    });
    assert_eq!(status.dropped, 20, "the 20 oldest updates were dropped");
    assert_eq!(
        (status.dropped_updates, status.dropped_starts_stops),
        (20, 0),
        "by kind: only updates"
    );
    let s = seen.lock().unwrap();
    let updates = s
        .batches
        .iter()
        .flat_map(|b| &b.events)
        .filter(|e| matches!(e, Event::Update(_)))
        .count();
    // 20 slots: the 10 starts and the 10 newest updates survive the outage; the sync pushed
    // on connect then displaces one more update.
    assert_eq!(updates, 9);
    drop(s);
    agent.stop().unwrap();
}

/// Issue 20: a failed join and an update carrying a hostname go out like every event: in seq
/// order with the rest, decoded by the collector's decoder as what the agent made.
#[test]
fn failed_joins_and_hostnames_reach_the_broker() {
    let dir = tempdir("failedjoin");
    let broker = Mosquitto::start(&dir, "");
    let seen = subscribe(broker.port);
    let agent = Agent::start(config(broker.port, &dir));
    let failed = FailedJoin {
        seq: 0,
        at: Default::default(),
        mac: MacAddr([0x02, 0, 0, 0, 0x03, 0]),
        ifname: "wlan0".into(),
        ssid: b"lab-failed".to_vec(),
        bssid: MacAddr([0x02, 0, 0, 0, 0, 0]),
        age_ms: 4_321,
    };
    let mut named = update(7);
    if let Event::Update(u) = &mut named.event {
        u.hostname = Some("lab-client-1".into());
    }
    let t = now();
    agent.tx.send(synthetic_start(7, t)).unwrap();
    agent
        .tx
        .send(wifisess_agent::session::Timed {
            at: t,
            event: Event::FailedJoin(failed.clone()),
        })
        .unwrap();
    agent.tx.send(named).unwrap();
    // The sync of the connect may come anywhere among them (the events were queued first).
    let events = wait_for(20, "the three events", || {
        let s = seen.lock().unwrap();
        let ev: Vec<Event> = s
            .batches
            .iter()
            .flat_map(|b| b.events.clone())
            .filter(|e| !matches!(e, Event::Sync(_)))
            .collect();
        (ev.len() >= 3).then_some(ev)
    });
    agent.stop().unwrap();
    let (Event::Start(s), Event::FailedJoin(got), Event::Update(u)) =
        (&events[0], &events[1], &events[2])
    else {
        panic!("not start, failed join, update: {events:?}")
    };
    assert_eq!(
        *got,
        FailedJoin {
            seq: got.seq,
            at: got.at,
            ..failed
        }
    );
    assert!(s.seq < got.seq && got.seq < u.seq, "in order");
    assert_eq!(u.hostname.as_deref(), Some("lab-client-1"));
}
