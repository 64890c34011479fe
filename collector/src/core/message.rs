//! One MQTT message before the merge: its topic routed, its payload decoded, and the device id
//! of the topic checked against the payload's. Bad input is a value ([`Rejected`]), never an
//! error or a panic.

use wifisess_wire::{decode_batch, decode_status, Batch, DecodeError, Status};

use super::{Counter, Counts};

/// A decoded message of a device.
#[derive(Debug, Clone, PartialEq)]
pub enum Msg {
    /// An events batch (`{prefix}/{device}/events`).
    Batch(Batch),
    /// A status (`{prefix}/{device}/status`).
    Status(Status),
}

impl Msg {
    /// The device the payload names (equal to the topic's after [`route`]).
    pub fn device_id(&self) -> &str {
        match self {
            Msg::Batch(b) => &b.device_id,
            Msg::Status(s) => &s.device_id,
        }
    }
}

/// Why a message was not merged (it is still acknowledged: redelivery would not help).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejected {
    /// The topic is not `{prefix}/{device}/events|status`.
    BadTopic,
    /// The payload did not decode.
    Undecodable(DecodeError),
    /// The topic's device id differs from the payload's.
    Spoofed {
        /// Device id in the topic.
        topic_device: String,
        /// Device id in the payload.
        payload_device: String,
    },
    /// The store could not place it (a constraint violation).
    Store(String),
}

impl Rejected {
    /// What it adds to the ingest counters.
    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        match self {
            Rejected::BadTopic => c.add(Counter::RejectedTopic, 1),
            Rejected::Undecodable(e) => {
                c.add(Counter::Undecodable, 1);
                c.add(Counter::UndecodableKind(e.kind()), 1);
            }
            Rejected::Spoofed { .. } => c.add(Counter::RejectedSpoofed, 1),
            Rejected::Store(_) => c.add(Counter::StoreRejected, 1),
        }
        c
    }

    /// One log line about it.
    pub fn describe(&self, topic: &str) -> String {
        match self {
            Rejected::BadTopic => format!("rejected: unexpected topic {topic}"),
            Rejected::Undecodable(e) => {
                format!("undecodable payload on {topic} ({}): {e}", e.kind())
            }
            Rejected::Spoofed {
                topic_device,
                payload_device,
            } => format!(
                "rejected: topic device {topic_device:?} but payload device {payload_device:?}"
            ),
            Rejected::Store(e) => {
                format!("message on {topic} could not be stored: {e}; counted and dropped")
            }
        }
    }
}

/// The two topics of a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicKind {
    /// `{prefix}/{device}/events`.
    Events,
    /// `{prefix}/{device}/status`.
    Status,
}

/// The device id and kind of `{prefix}/{device}/events|status`.
pub fn parse_topic<'t>(prefix: &str, topic: &'t str) -> Option<(&'t str, TopicKind)> {
    let rest = topic.strip_prefix(prefix)?.strip_prefix('/')?;
    let (device, kind) = rest.split_once('/')?;
    if device.is_empty() || device.contains('/') {
        return None;
    }
    match kind {
        "events" => Some((device, TopicKind::Events)),
        "status" => Some((device, TopicKind::Status)),
        _ => None,
    }
}

/// Routes, decodes and checks one message.
///
/// # Errors
/// A [`Rejected`] saying why the message is not merged.
pub fn route(prefix: &str, topic: &str, payload: &[u8]) -> Result<Msg, Rejected> {
    let (topic_device, kind) = parse_topic(prefix, topic).ok_or(Rejected::BadTopic)?;
    let msg = match kind {
        TopicKind::Events => decode_batch(payload).map(Msg::Batch),
        TopicKind::Status => decode_status(payload).map(Msg::Status),
    }
    .map_err(Rejected::Undecodable)?;
    if msg.device_id() != topic_device {
        return Err(Rejected::Spoofed {
            topic_device: topic_device.to_owned(),
            payload_device: msg.device_id().to_owned(),
        });
    }
    Ok(msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_parse() {
        assert_eq!(
            parse_topic("p/v1", "p/v1/ap1/events"),
            Some(("ap1", TopicKind::Events))
        );
        assert_eq!(
            parse_topic("p/v1", "p/v1/ap1/status"),
            Some(("ap1", TopicKind::Status))
        );
        assert_eq!(parse_topic("p/v1", "p/v1/ap1/other"), None);
        assert_eq!(parse_topic("p/v1", "p/v1//events"), None);
        assert_eq!(parse_topic("p/v1", "q/ap1/events"), None);
    }

    #[test]
    fn rejections_count_by_kind() {
        let r = route("p", "p/ap1/events", b"\xff").unwrap_err();
        let names: Vec<String> = r.counts().0.keys().map(|c| c.name().into_owned()).collect();
        assert_eq!(names[0], "undecodable");
        assert!(names[1].starts_with("undecodable_"), "{names:?}");
        assert_eq!(route("p", "p/ap1/x", b"").unwrap_err(), Rejected::BadTopic);
    }
}
