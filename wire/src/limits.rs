//! Upper bounds the decoder enforces before allocating; an encoder must stay within them too.

/// Largest payload accepted by [`decode_batch`](crate::decode_batch) and
/// [`decode_status`](crate::decode_status), in bytes.
pub const MAX_PAYLOAD_BYTES: usize = 256 * 1024;
/// Events in one batch. The agent flushes long before this (see `outbox_capacity`).
pub const MAX_EVENTS_PER_BATCH: usize = 1024;
/// Session ids in one sync event: more than any access point can hold associated.
pub const MAX_SYNC_IDS: usize = 4096;
/// Interfaces listed in a status message.
pub const MAX_INTERFACES: usize = 64;
/// Device id length in bytes (UTF-8).
pub const MAX_DEVICE_ID_BYTES: usize = 64;
/// Interface name length in bytes: the kernel's IFNAMSIZ (16) less the terminating NUL.
pub const MAX_IFNAME_BYTES: usize = 15;
/// SSID length in bytes, as 802.11 defines it.
pub const MAX_SSID_BYTES: usize = 32;
/// Free text (names, organization, group, versions) in bytes.
pub const MAX_TEXT_BYTES: usize = 128;
/// A client's hostname in bytes (UTF-8): one DNS label, as DHCP servers keep it.
pub const MAX_HOSTNAME_BYTES: usize = 63;
