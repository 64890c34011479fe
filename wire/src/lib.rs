//! wifisess wire format v1: the messages an agent publishes and their CBOR codec, no I/O.
//!
//! Every message is a CBOR map with small integer keys; decoders skip keys they do not know,
//! so a newer agent can add fields without breaking an older collector (see `docs/wire.md`).
//! The decoder treats its input as hostile: the payload size and every string and list are
//! checked against the limits in [`limits`] before anything is allocated for them, unknown
//! values are skipped without recursion, and every failure is a [`DecodeError`].
#![cfg_attr(not(any(test, feature = "std")), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

mod codec;
pub mod limits;
mod message;
mod raw;
mod types;

pub use codec::{decode_batch, decode_status, encode_batch, encode_status, DecodeError};
pub use message::{
    Batch, Event, FailedJoin, InterfaceInfo, Start, Status, Stop, StopReason, Sync, Update,
};
pub use raw::{BatchHead, BatchWriter, RawEvent};
pub use types::{BootId, MacAddr, Offset, ParseError, SessionId, Stamp};

/// The wire format version this crate speaks; part of the MQTT topic prefix (`wifisess/v1`).
pub const WIRE_VERSION: u32 = 1;
