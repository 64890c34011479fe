//! Encoding and hostile-input-safe decoding of whole messages, with typed errors.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use minicbor::decode::{self, Decoder};

use crate::limits;
use crate::message::{Batch, Status};

/// Why a payload was rejected. Every variant says where (byte offset) when that is known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The payload is larger than [`limits::MAX_PAYLOAD_BYTES`]; nothing was parsed.
    #[error("payload of {len} bytes exceeds the limit of {max} bytes")]
    PayloadTooLarge {
        /// Payload size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The payload ends in the middle of a value.
    #[error("payload truncated (input ended at byte {pos:?})")]
    Truncated {
        /// Where the decoder was.
        pos: Option<usize>,
    },
    /// A value has the wrong CBOR type (e.g. text where a byte string belongs).
    #[error("wrong type: {detail}")]
    WrongType {
        /// The decoder's description, with position.
        detail: String,
    },
    /// A string or list is longer than its limit; nothing was allocated for it.
    #[error("{field} has {len} elements/bytes, more than the limit of {max}")]
    LimitExceeded {
        /// Which field (`events`, `ssid`, `device_id`, ...).
        field: &'static str,
        /// The length the input claims.
        len: u64,
        /// The limit.
        max: usize,
    },
    /// A required field is absent.
    #[error("required field missing: {detail}")]
    MissingField {
        /// The decoder's description, with the key.
        detail: String,
    },
    /// Bytes remain after the message.
    #[error("{extra} trailing bytes after the message")]
    TrailingBytes {
        /// How many.
        extra: usize,
    },
    /// Any other malformation: invalid UTF-8, integer overflow, a bad MAC length, ...
    #[error("malformed: {detail}")]
    Malformed {
        /// The decoder's description, with position.
        detail: String,
    },
}

impl DecodeError {
    /// A short stable name for metrics labels (`truncated`, `limit_exceeded`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            DecodeError::PayloadTooLarge { .. } => "payload_too_large",
            DecodeError::Truncated { .. } => "truncated",
            DecodeError::WrongType { .. } => "wrong_type",
            DecodeError::LimitExceeded { .. } => "limit_exceeded",
            DecodeError::MissingField { .. } => "missing_field",
            DecodeError::TrailingBytes { .. } => "trailing_bytes",
            DecodeError::Malformed { .. } => "malformed",
        }
    }

    fn from_cbor(e: decode::Error) -> DecodeError {
        use core::error::Error as _;
        if let Some(l) = e
            .source()
            .and_then(|s| s.downcast_ref::<bounded::TooLong>())
        {
            return DecodeError::LimitExceeded {
                field: l.field,
                len: l.len,
                max: l.max,
            };
        }
        if e.is_end_of_input() {
            DecodeError::Truncated { pos: e.position() }
        } else if e.is_type_mismatch() {
            DecodeError::WrongType {
                detail: e.to_string(),
            }
        } else if e.is_missing_value() {
            DecodeError::MissingField {
                detail: e.to_string(),
            }
        } else {
            DecodeError::Malformed {
                detail: e.to_string(),
            }
        }
    }
}

fn decode_whole<'b, T: minicbor::Decode<'b, ()>>(bytes: &'b [u8]) -> Result<T, DecodeError> {
    if bytes.len() > limits::MAX_PAYLOAD_BYTES {
        return Err(DecodeError::PayloadTooLarge {
            len: bytes.len(),
            max: limits::MAX_PAYLOAD_BYTES,
        });
    }
    let mut d = Decoder::new(bytes);
    let v = d.decode::<T>().map_err(DecodeError::from_cbor)?;
    match bytes.len() - d.position() {
        0 => Ok(v),
        extra => Err(DecodeError::TrailingBytes { extra }),
    }
}

/// Decodes an events payload.
///
/// # Errors
/// A [`DecodeError`] naming what is wrong; the input is never trusted.
pub fn decode_batch(bytes: &[u8]) -> Result<Batch, DecodeError> {
    decode_whole(bytes)
}

/// Decodes a status payload.
///
/// # Errors
/// A [`DecodeError`] naming what is wrong; the input is never trusted.
pub fn decode_status(bytes: &[u8]) -> Result<Status, DecodeError> {
    decode_whole(bytes)
}

/// Encodes an events payload.
pub fn encode_batch(b: &Batch) -> Vec<u8> {
    minicbor::to_vec(b).expect("encoding into a Vec cannot fail")
}

/// Encodes a status payload.
pub fn encode_status(s: &Status) -> Vec<u8> {
    minicbor::to_vec(s).expect("encoding into a Vec cannot fail")
}

/// Field decoders that check a claimed length against its limit before allocating.
pub(crate) mod bounded {
    use alloc::string::String;
    use alloc::vec::Vec;

    use minicbor::data::Type;
    use minicbor::decode::{self, Decoder};
    use minicbor::Decode;

    use crate::limits;
    use crate::message::{Event, InterfaceInfo};
    use crate::types::SessionId;

    /// A length over its limit; carried inside a `minicbor` error and typed again by the codec.
    #[derive(Debug, thiserror::Error)]
    #[error("{field}: {len} exceeds the limit of {max}")]
    pub(crate) struct TooLong {
        pub field: &'static str,
        pub len: u64,
        pub max: usize,
    }

    fn too_long(field: &'static str, len: u64, max: usize, pos: usize) -> decode::Error {
        decode::Error::custom(TooLong { field, len, max }).at(pos)
    }

    /// Reads a definite- or indefinite-length text, refusing more than `max` bytes.
    fn text_limited(
        d: &mut Decoder<'_>,
        field: &'static str,
        max: usize,
    ) -> Result<String, decode::Error> {
        let p = d.position();
        let mut out = String::new();
        for chunk in d.str_iter()? {
            let chunk = chunk?;
            let len = out.len() + chunk.len();
            if len > max {
                return Err(too_long(field, len as u64, max, p));
            }
            out.push_str(chunk);
        }
        Ok(out)
    }

    /// Reads a definite- or indefinite-length byte string, refusing more than `max` bytes.
    fn bytes_limited(
        d: &mut Decoder<'_>,
        field: &'static str,
        max: usize,
    ) -> Result<Vec<u8>, decode::Error> {
        let p = d.position();
        let mut out = Vec::new();
        for chunk in d.bytes_iter()? {
            let chunk = chunk?;
            let len = out.len() + chunk.len();
            if len > max {
                return Err(too_long(field, len as u64, max, p));
            }
            out.extend_from_slice(chunk);
        }
        Ok(out)
    }

    /// Reads an array of at most `max` elements, checking a definite length up front and an
    /// indefinite one element by element.
    fn array_limited<'b, T: Decode<'b, C>, C>(
        d: &mut Decoder<'b>,
        ctx: &mut C,
        field: &'static str,
        max: usize,
    ) -> Result<Vec<T>, decode::Error> {
        let p = d.position();
        let claimed = d.array()?;
        if let Some(n) = claimed {
            if n > max as u64 {
                return Err(too_long(field, n, max, p));
            }
        }
        // Every element takes at least one byte, so never reserve more than the input can fill:
        // a 10-byte payload claiming 1024 events must not cost 1024 * size_of::<Event>().
        let remaining = d.input().len() - d.position();
        let mut out = Vec::with_capacity(claimed.map_or(0, |n| (n as usize).min(remaining)));
        loop {
            match claimed {
                Some(n) if out.len() as u64 == n => break,
                None if d.datatype()? == Type::Break => {
                    d.skip()?;
                    break;
                }
                _ => {}
            }
            if out.len() == max {
                return Err(too_long(field, max as u64 + 1, max, p));
            }
            out.push(d.decode_with(ctx)?);
        }
        Ok(out)
    }

    pub fn device_id<Ctx>(d: &mut Decoder<'_>, _: &mut Ctx) -> Result<String, decode::Error> {
        text_limited(d, "device_id", limits::MAX_DEVICE_ID_BYTES)
    }

    pub fn ifname<Ctx>(d: &mut Decoder<'_>, _: &mut Ctx) -> Result<String, decode::Error> {
        text_limited(d, "ifname", limits::MAX_IFNAME_BYTES)
    }

    pub fn text<Ctx>(d: &mut Decoder<'_>, _: &mut Ctx) -> Result<String, decode::Error> {
        text_limited(d, "text", limits::MAX_TEXT_BYTES)
    }

    /// An optional text that may also be written as `null`.
    fn opt_text_limited(
        d: &mut Decoder<'_>,
        field: &'static str,
        max: usize,
    ) -> Result<Option<String>, decode::Error> {
        if d.datatype()? == Type::Null {
            d.skip()?;
            return Ok(None);
        }
        text_limited(d, field, max).map(Some)
    }

    pub fn opt_text<Ctx>(
        d: &mut Decoder<'_>,
        _: &mut Ctx,
    ) -> Result<Option<String>, decode::Error> {
        opt_text_limited(d, "text", limits::MAX_TEXT_BYTES)
    }

    pub fn opt_hostname<Ctx>(
        d: &mut Decoder<'_>,
        _: &mut Ctx,
    ) -> Result<Option<String>, decode::Error> {
        opt_text_limited(d, "hostname", limits::MAX_HOSTNAME_BYTES)
    }

    pub fn none() -> Option<Option<String>> {
        Some(None)
    }

    pub fn ssid<Ctx>(d: &mut Decoder<'_>, _: &mut Ctx) -> Result<Vec<u8>, decode::Error> {
        bytes_limited(d, "ssid", limits::MAX_SSID_BYTES)
    }

    pub fn events<'b, Ctx>(
        d: &mut Decoder<'b>,
        ctx: &mut Ctx,
    ) -> Result<Vec<Event>, decode::Error> {
        array_limited(d, ctx, "events", limits::MAX_EVENTS_PER_BATCH)
    }

    pub fn sync_ids<'b, Ctx>(
        d: &mut Decoder<'b>,
        ctx: &mut Ctx,
    ) -> Result<Vec<SessionId>, decode::Error> {
        array_limited(d, ctx, "ids", limits::MAX_SYNC_IDS)
    }

    pub fn interfaces<'b, Ctx>(
        d: &mut Decoder<'b>,
        ctx: &mut Ctx,
    ) -> Result<Vec<InterfaceInfo>, decode::Error> {
        array_limited(d, ctx, "interfaces", limits::MAX_INTERFACES)
    }
}
