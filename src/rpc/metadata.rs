//! [`MetadataMap`]: the ordered key/value pairs a call carries in its header and trailer.

use std::fmt;

use bytes::Bytes;

use super::Status;

/// Longest key, in bytes (its length travels in one byte, spec/RPC.md §5).
pub const MAX_KEY_LEN: usize = 255;

/// Most entries one map may hold (the count travels in two bytes, spec/RPC.md §5).
pub const MAX_ENTRIES: usize = u16::MAX as usize;

/// Ordered key/value pairs, like gRPC metadata. A key may repeat; order is kept.
///
/// * Keys are 1 to 255 bytes of lowercase ASCII letters, digits, `-`, `_` and `.`.
/// * Keys ending in `-bin` carry binary values ([`MetadataMap::append_bin`]); all other
///   keys carry printable ASCII (`0x20..=0x7E`, [`MetadataMap::append`]).
/// * Sessions limit the encoded size of a header or trailer (`max_metadata_size`, 16 KiB
///   by default); [`MetadataMap::encoded_len`] tells how much a map uses and
///   [`MetadataMap::check_size`] checks it against a limit with a clear error.
///
/// ```
/// use braid::rpc::{MetadataMap, MetadataValue};
/// # fn main() -> Result<(), braid::rpc::MetadataError> {
/// let md = MetadataMap::new()
///     .with("user-agent", "demo/1.0")?
///     .with("tag", "a")?
///     .with("tag", "b")?
///     .with_bin("trace-bin", &[0u8, 1, 2][..])?;
/// assert_eq!(md.get("user-agent"), Some("demo/1.0"));
/// assert_eq!(md.get_all("tag").count(), 2);
/// assert_eq!(md.get_bin("trace-bin"), Some(&[0u8, 1, 2][..]));
/// assert!(md.clone().with("Bad Key", "x").is_err());
/// assert!(matches!(md.iter().next(), Some(("user-agent", MetadataValue::Ascii("demo/1.0")))));
/// # Ok(()) }
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct MetadataMap {
    entries: Vec<(String, Bytes)>,
}

/// One metadata value, as [`MetadataMap::iter`] and [`MetadataMap::get_all`] yield it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetadataValue<'a> {
    /// The value of a key without the `-bin` suffix: printable ASCII.
    Ascii(&'a str),
    /// The value of a key ending in `-bin`: any bytes.
    Binary(&'a [u8]),
}

/// Why a metadata entry or map was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MetadataError {
    /// The key is empty, longer than 255 bytes, or has a byte other than `a-z 0-9 - _ .`.
    #[error("invalid metadata key {0:?}: use 1-255 bytes of a-z, 0-9, '-', '_', '.'")]
    InvalidKey(String),
    /// An ASCII value holds a byte outside printable ASCII (`0x20..=0x7E`).
    #[error("invalid value for metadata key {0:?}: only printable ASCII is allowed (use a '-bin' key for bytes)")]
    InvalidValue(String),
    /// A binary value for a key without `-bin`, or an ASCII value for a `-bin` key.
    #[error("metadata key {0:?}: binary values need a key ending in '-bin', and only they")]
    WrongKind(String),
    /// More than 65,535 entries.
    #[error("too many metadata entries (at most 65535)")]
    TooManyEntries,
    /// The encoded header or trailer is larger than the limit.
    #[error("metadata is {size} bytes encoded, over the {limit}-byte limit")]
    TooLarge {
        /// Encoded size in bytes.
        size: usize,
        /// The limit in force.
        limit: usize,
    },
}

/// For `?` in handlers: size errors become `ResourceExhausted`, invalid entries `Internal`.
impl From<MetadataError> for Status {
    fn from(err: MetadataError) -> Status {
        match err {
            MetadataError::TooLarge { .. } | MetadataError::TooManyEntries => {
                Status::resource_exhausted(err.to_string())
            }
            _ => Status::internal(err.to_string()),
        }
    }
}

fn valid_key(key: &[u8]) -> bool {
    !key.is_empty()
        && key.len() <= MAX_KEY_LEN
        && key
            .iter()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.'))
}

fn is_binary_key(key: &str) -> bool {
    key.ends_with("-bin")
}

/// Checks one entry as it would be sent or received (used by the wire decoder too).
pub(crate) fn check_entry(key: &[u8], value: &[u8]) -> Result<(), MetadataError> {
    if !valid_key(key) {
        return Err(MetadataError::InvalidKey(
            String::from_utf8_lossy(key).into_owned(),
        ));
    }
    let key = std::str::from_utf8(key).expect("checked ASCII");
    if !is_binary_key(key) && !value.iter().all(|b| (0x20..=0x7e).contains(b)) {
        return Err(MetadataError::InvalidValue(key.to_owned()));
    }
    Ok(())
}

impl MetadataMap {
    /// An empty map.
    pub fn new() -> MetadataMap {
        MetadataMap::default()
    }

    /// Number of entries (repeated keys count each time).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there is no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Appends an ASCII entry. Fails on an invalid key or value, or a `-bin` key.
    pub fn append(&mut self, key: &str, value: &str) -> Result<(), MetadataError> {
        if is_binary_key(key) {
            return Err(MetadataError::WrongKind(key.to_owned()));
        }
        self.push(key, Bytes::copy_from_slice(value.as_bytes()))
    }

    /// Appends a binary entry; the key must end in `-bin`.
    pub fn append_bin(&mut self, key: &str, value: impl Into<Bytes>) -> Result<(), MetadataError> {
        if !is_binary_key(key) {
            return Err(MetadataError::WrongKind(key.to_owned()));
        }
        self.push(key, value.into())
    }

    /// [`MetadataMap::append`], by value, for chaining.
    pub fn with(mut self, key: &str, value: &str) -> Result<MetadataMap, MetadataError> {
        self.append(key, value)?;
        Ok(self)
    }

    /// [`MetadataMap::append_bin`], by value, for chaining.
    pub fn with_bin(
        mut self,
        key: &str,
        value: impl Into<Bytes>,
    ) -> Result<MetadataMap, MetadataError> {
        self.append_bin(key, value)?;
        Ok(self)
    }

    fn push(&mut self, key: &str, value: Bytes) -> Result<(), MetadataError> {
        check_entry(key.as_bytes(), &value)?;
        if self.entries.len() >= MAX_ENTRIES {
            return Err(MetadataError::TooManyEntries);
        }
        self.entries.push((key.to_owned(), value));
        Ok(())
    }

    /// Appends an entry the wire decoder has already checked with [`check_entry`].
    pub(crate) fn push_checked(&mut self, key: String, value: Bytes) {
        self.entries.push((key, value));
    }

    /// The first ASCII value for `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.iter().find_map(|(k, v)| match v {
            MetadataValue::Ascii(s) if k == key => Some(s),
            _ => None,
        })
    }

    /// The first binary value for `key` (a `-bin` key).
    pub fn get_bin(&self, key: &str) -> Option<&[u8]> {
        self.iter().find_map(|(k, v)| match v {
            MetadataValue::Binary(b) if k == key => Some(b),
            _ => None,
        })
    }

    /// Every value for `key`, in order.
    pub fn get_all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = MetadataValue<'a>> + 'a {
        self.iter().filter(move |(k, _)| *k == key).map(|(_, v)| v)
    }

    /// Removes every entry for `key`; returns how many there were.
    pub fn remove(&mut self, key: &str) -> usize {
        let before = self.entries.len();
        self.entries.retain(|(k, _)| k != key);
        before - self.entries.len()
    }

    /// All entries in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, MetadataValue<'_>)> {
        self.entries.iter().map(|(k, v)| {
            let value = if is_binary_key(k) {
                MetadataValue::Binary(v)
            } else {
                MetadataValue::Ascii(std::str::from_utf8(v).expect("checked ASCII"))
            };
            (k.as_str(), value)
        })
    }

    /// Raw entries for the encoder.
    pub(crate) fn raw(&self) -> impl Iterator<Item = (&str, &Bytes)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Appends every entry of `other` (keys already present keep their values).
    pub fn merge(&mut self, other: MetadataMap) -> Result<(), MetadataError> {
        if self.entries.len() + other.entries.len() > MAX_ENTRIES {
            return Err(MetadataError::TooManyEntries);
        }
        self.entries.extend(other.entries);
        Ok(())
    }

    /// Bytes this map takes on the wire (spec/RPC.md §5): 2, plus 5 + key + value per entry.
    pub fn encoded_len(&self) -> usize {
        2 + self
            .entries
            .iter()
            .map(|(k, v)| 5 + k.len() + v.len())
            .sum::<usize>()
    }

    /// Fails with [`MetadataError::TooLarge`] if [`MetadataMap::encoded_len`] exceeds `limit`.
    pub fn check_size(&self, limit: usize) -> Result<(), MetadataError> {
        let size = self.encoded_len();
        if size > limit {
            return Err(MetadataError::TooLarge { size, limit });
        }
        Ok(())
    }
}

impl fmt::Debug for MetadataMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_values_are_checked() {
        let mut md = MetadataMap::new();
        assert!(md.append("ok-key_1.x", "fine value ~").is_ok());
        assert!(matches!(
            md.append("", "x"),
            Err(MetadataError::InvalidKey(_))
        ));
        assert!(matches!(
            md.append("Upper", "x"),
            Err(MetadataError::InvalidKey(_))
        ));
        assert!(matches!(
            md.append(&"k".repeat(256), "x"),
            Err(MetadataError::InvalidKey(_))
        ));
        assert!(matches!(
            md.append("k", "line\nbreak"),
            Err(MetadataError::InvalidValue(_))
        ));
        assert!(matches!(
            md.append("k-bin", "x"),
            Err(MetadataError::WrongKind(_))
        ));
        assert!(matches!(
            md.append_bin("k", &b"x"[..]),
            Err(MetadataError::WrongKind(_))
        ));
        assert!(md.append_bin("k-bin", &b"\0\xff"[..]).is_ok());
        assert_eq!(md.len(), 2);
        assert_eq!(md.encoded_len(), 2 + 5 + 10 + 12 + 5 + 5 + 2);
        assert!(md.check_size(md.encoded_len()).is_ok());
        let err = md.check_size(10).unwrap_err();
        assert_eq!(
            err.to_string(),
            "metadata is 41 bytes encoded, over the 10-byte limit"
        );
        assert_eq!(md.remove("k-bin"), 1);
    }
}
