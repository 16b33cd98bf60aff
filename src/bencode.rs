//! Bencode (BEP 3): decoding, canonical encoding, and locating a dictionary entry's exact bytes.
//!
//! Decoding goes through the `bencode-rs` crate, but only after [`validate`] has checked the whole
//! input with an iterative scanner. `bencode-rs` has defects this module shields callers from:
//! it recurses once per nesting level, prints the failing input to stdout on a parse error,
//! overflows on long digit strings (and on `i-9223372036854775808e`), and accepts non-string
//! dictionary keys. The scanner rejects all of those inputs first, so `bencode-rs` only ever sees
//! well-formed, shallow input and never reaches its error path.
//!
//! Policy choices:
//! - Dictionary keys must be byte strings and must not repeat. Unsorted keys are accepted, because
//!   some real-world torrent writers emit them and the info hash is taken over the raw bytes anyway.
//! - Integers must fit in `i64` with magnitude at most `i64::MAX`; `-0` and leading zeros are
//!   rejected, as BEP 3 requires.
//! - Nesting deeper than [`MAX_DEPTH`] is rejected.
//! - The input must hold exactly one value: trailing bytes are an error.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::ops::Range;

/// Deepest list/dictionary nesting accepted. Torrents need 4 levels; 64 leaves ample room while
/// keeping `bencode-rs`'s recursion (and our conversion) far from the stack limit.
pub const MAX_DEPTH: usize = 64;

/// A decoded bencode value.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Value {
    Int(i64),
    Bytes(Vec<u8>),
    List(Vec<Value>),
    /// Keys are byte strings; `BTreeMap` keeps them sorted, which makes [`encode`] canonical.
    Dict(BTreeMap<Vec<u8>, Value>),
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Bytes(s.as_bytes().to_vec())
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}

impl Value {
    /// A dictionary from `(key, value)` pairs in any order; a repeated key keeps the last value.
    pub fn dict<'k>(entries: impl IntoIterator<Item = (&'k str, Value)>) -> Value {
        Value::Dict(
            entries
                .into_iter()
                .map(|(k, v)| (k.as_bytes().to_vec(), v))
                .collect(),
        )
    }

    /// The entry `key` of a dictionary; `None` if absent or if `self` is not a dictionary.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_dict()?.get(key.as_bytes())
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The byte string as UTF-8; `None` if not a byte string or not valid UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(self.as_bytes()?).ok()
    }

    pub fn as_list(&self) -> Option<&[Value]> {
        match self {
            Value::List(l) => Some(l),
            _ => None,
        }
    }

    pub fn as_dict(&self) -> Option<&BTreeMap<Vec<u8>, Value>> {
        match self {
            Value::Dict(d) => Some(d),
            _ => None,
        }
    }

    /// The value's type with an article ("an integer"), for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Int(_) => "an integer",
            Value::Bytes(_) => "a byte string",
            Value::List(_) => "a list",
            Value::Dict(_) => "a dictionary",
        }
    }
}

/// What was wrong with the input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BencodeErrorKind {
    /// The input ended in the middle of a value.
    UnexpectedEnd,
    /// A byte that cannot start or continue a value here.
    UnexpectedByte(u8),
    /// Nesting deeper than [`MAX_DEPTH`].
    TooDeep,
    /// An integer with a leading zero, `-0`, no digits, or out of range.
    BadInteger,
    /// A string length with a leading zero or larger than the rest of the input.
    BadLength,
    /// A dictionary key that is not a byte string.
    NonStringKey,
    /// A dictionary key that already appeared in the same dictionary.
    DuplicateKey,
    /// A dictionary key without a value.
    MissingValue,
    /// Bytes after the (complete) top-level value.
    TrailingData,
    /// The top-level value is not a dictionary (only from [`dict_value_span`]).
    NotADictionary,
    /// `bencode-rs` rejected input the validator accepted; a bug in this module, not in the input.
    Inconsistent,
}

impl fmt::Display for BencodeErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BencodeErrorKind::UnexpectedEnd => f.write_str("input ends in the middle of a value"),
            BencodeErrorKind::UnexpectedByte(b) => {
                write!(f, "unexpected byte {:?}", char::from(*b))
            }
            BencodeErrorKind::TooDeep => {
                write!(f, "lists/dictionaries nested deeper than {MAX_DEPTH}")
            }
            BencodeErrorKind::BadInteger => f.write_str(
                "malformed integer (leading zero, -0, no digits, or outside the 64-bit range)",
            ),
            BencodeErrorKind::BadLength => f.write_str(
                "malformed string length (leading zero or longer than the remaining input)",
            ),
            BencodeErrorKind::NonStringKey => f.write_str("dictionary key is not a byte string"),
            BencodeErrorKind::DuplicateKey => f.write_str("duplicate dictionary key"),
            BencodeErrorKind::MissingValue => f.write_str("dictionary key has no value"),
            BencodeErrorKind::TrailingData => f.write_str("unexpected data after the value"),
            BencodeErrorKind::NotADictionary => f.write_str("top-level value is not a dictionary"),
            BencodeErrorKind::Inconsistent => {
                f.write_str("internal error: bencode-rs rejected input the validator accepted")
            }
        }
    }
}

/// A decoding error: where in the input (byte offset) and what was wrong. Never contains the input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BencodeError {
    pub offset: usize,
    pub kind: BencodeErrorKind,
}

impl fmt::Display for BencodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid bencode at byte {}: {}", self.offset, self.kind)
    }
}

impl std::error::Error for BencodeError {}

fn err<T>(offset: usize, kind: BencodeErrorKind) -> Result<T, BencodeError> {
    Err(BencodeError { offset, kind })
}

/// Parses the unsigned decimal digits starting at `pos` up to (not including) `terminator`.
/// Returns the number and the position of the terminator. `kind` is reported for leading zeros,
/// missing digits and overflow past `max`.
fn parse_digits(
    bytes: &[u8],
    pos: usize,
    terminator: u8,
    max: u64,
    kind: BencodeErrorKind,
) -> Result<(u64, usize), BencodeError> {
    let mut value: u64 = 0;
    let mut i = pos;
    loop {
        match bytes.get(i) {
            None => return err(i, BencodeErrorKind::UnexpectedEnd),
            Some(&b) if b == terminator => break,
            Some(b @ b'0'..=b'9') => {
                if i > pos && bytes[pos] == b'0' {
                    return err(pos, kind);
                }
                value = match value
                    .checked_mul(10)
                    .and_then(|v| v.checked_add(u64::from(b - b'0')))
                {
                    Some(v) if v <= max => v,
                    _ => return err(pos, kind),
                };
            }
            Some(&b) => return err(i, BencodeErrorKind::UnexpectedByte(b)),
        }
        i += 1;
    }
    if i == pos {
        return err(pos, kind);
    }
    Ok((value, i))
}

/// Checks the byte string starting at `pos` (at its length digits); returns the content range.
fn scan_string(bytes: &[u8], pos: usize) -> Result<Range<usize>, BencodeError> {
    let (len, colon) = parse_digits(bytes, pos, b':', u64::MAX, BencodeErrorKind::BadLength)?;
    let start = colon + 1;
    let remaining = (bytes.len() - start) as u64;
    if len > remaining {
        return err(pos, BencodeErrorKind::BadLength);
    }
    Ok(start..start + len as usize)
}

/// Checks the integer starting at `pos` (at its `i`); returns the position after its `e`.
fn scan_int(bytes: &[u8], pos: usize) -> Result<usize, BencodeError> {
    let negative = bytes.get(pos + 1) == Some(&b'-');
    let digits = pos + 1 + usize::from(negative);
    // i64::MAX bounds both signs, so bencode-rs's `u as i64 * -1` can never overflow.
    let (value, end) = parse_digits(
        bytes,
        digits,
        b'e',
        i64::MAX as u64,
        BencodeErrorKind::BadInteger,
    )?;
    if negative && value == 0 {
        return err(pos, BencodeErrorKind::BadInteger);
    }
    Ok(end + 1)
}

/// An open container while scanning.
enum Frame<'a> {
    List,
    /// Keys seen so far (to reject duplicates) and whether the next item is a key.
    Dict {
        keys: HashSet<&'a [u8]>,
        expect_key: bool,
    },
}

/// Validates the single value starting at `start` without recursion; returns the offset just past
/// it. Bytes after that offset are not examined.
fn value_end(bytes: &[u8], start: usize) -> Result<usize, BencodeError> {
    let mut stack: Vec<Frame> = Vec::new();
    let mut pos = start;
    loop {
        let Some(&b) = bytes.get(pos) else {
            return err(pos, BencodeErrorKind::UnexpectedEnd);
        };
        // Close a container, or read a dictionary key.
        match stack.last_mut() {
            Some(Frame::Dict {
                expect_key: false, ..
            }) if b == b'e' => return err(pos, BencodeErrorKind::MissingValue),
            Some(_) if b == b'e' => {
                stack.pop();
                pos += 1;
            }
            Some(Frame::Dict { keys, expect_key }) if *expect_key => {
                if !b.is_ascii_digit() {
                    return err(pos, BencodeErrorKind::NonStringKey);
                }
                let key = scan_string(bytes, pos)?;
                if !keys.insert(&bytes[key.clone()]) {
                    return err(pos, BencodeErrorKind::DuplicateKey);
                }
                *expect_key = false;
                pos = key.end;
                continue;
            }
            _ => match b {
                b'i' => pos = scan_int(bytes, pos)?,
                b'0'..=b'9' => pos = scan_string(bytes, pos)?.end,
                b'l' | b'd' => {
                    if stack.len() == MAX_DEPTH {
                        return err(pos, BencodeErrorKind::TooDeep);
                    }
                    stack.push(if b == b'l' {
                        Frame::List
                    } else {
                        Frame::Dict {
                            keys: HashSet::new(),
                            expect_key: true,
                        }
                    });
                    pos += 1;
                    continue;
                }
                _ => return err(pos, BencodeErrorKind::UnexpectedByte(b)),
            },
        }
        // A value (scalar or container) just ended.
        match stack.last_mut() {
            None => return Ok(pos),
            Some(Frame::Dict { expect_key, .. }) => *expect_key = true,
            Some(Frame::List) => {}
        }
    }
}

/// Checks that `bytes` is exactly one well-formed bencode value under this module's policy.
pub fn validate(bytes: &[u8]) -> Result<(), BencodeError> {
    let end = value_end(bytes, 0)?;
    if end != bytes.len() {
        return err(end, BencodeErrorKind::TrailingData);
    }
    Ok(())
}

/// Decodes the one bencode value at the start of `bytes` and returns it with the offset just
/// past it; the bytes after it are left alone (a `ut_metadata` piece follows its dictionary).
pub fn decode_prefix(bytes: &[u8]) -> Result<(Value, usize), BencodeError> {
    let end = value_end(bytes, 0)?;
    Ok((decode(&bytes[..end])?, end))
}

/// Decodes exactly one bencode value. Safe on any input: no panics, no output, bounded stack.
pub fn decode(bytes: &[u8]) -> Result<Value, BencodeError> {
    validate(bytes)?;
    let inconsistent = BencodeError {
        offset: 0,
        kind: BencodeErrorKind::Inconsistent,
    };
    let mut values = bencode_rs::parse_all(bytes).map_err(|_| inconsistent.clone())?;
    match (values.pop(), values.is_empty()) {
        (Some(v), true) => convert(v).ok_or(inconsistent),
        _ => Err(inconsistent),
    }
}

/// Converts `bencode-rs`'s value; recursion is bounded by [`MAX_DEPTH`] because the input was
/// validated. `None` if the value breaks our invariants (non-string or duplicate keys).
fn convert(v: bencode_rs::Value) -> Option<Value> {
    Some(match v {
        bencode_rs::Value::Integer(i) => Value::Int(i),
        bencode_rs::Value::ByteString(b) => Value::Bytes(b),
        bencode_rs::Value::List(items) => {
            Value::List(items.into_iter().map(convert).collect::<Option<_>>()?)
        }
        bencode_rs::Value::Dictionary(entries) => {
            let mut map = BTreeMap::new();
            for (k, v) in entries {
                let bencode_rs::Value::ByteString(k) = k else {
                    return None;
                };
                if map.insert(k, convert(v)?).is_some() {
                    return None;
                }
            }
            Value::Dict(map)
        }
    })
}

/// Encodes canonically: dictionary keys in sorted byte order, integers without padding.
pub fn encode(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    encode_into(v, &mut out);
    out
}

fn encode_bytes(b: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(b.len().to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(b);
}

fn encode_into(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Int(i) => {
            out.push(b'i');
            out.extend_from_slice(i.to_string().as_bytes());
            out.push(b'e');
        }
        Value::Bytes(b) => encode_bytes(b, out),
        Value::List(items) => {
            out.push(b'l');
            for item in items {
                encode_into(item, out);
            }
            out.push(b'e');
        }
        Value::Dict(map) => {
            out.push(b'd');
            for (k, v) in map {
                encode_bytes(k, out);
                encode_into(v, out);
            }
            out.push(b'e');
        }
    }
}

/// Byte range of the value stored under `key` in the top-level dictionary of `bytes`, exactly as
/// it stands in the input (the info hash is the SHA-1 of the `info` value's range). Validates the
/// whole input first; `Ok(None)` when the key is absent.
pub fn dict_value_span(bytes: &[u8], key: &[u8]) -> Result<Option<Range<usize>>, BencodeError> {
    validate(bytes)?;
    if bytes.first() != Some(&b'd') {
        return err(0, BencodeErrorKind::NotADictionary);
    }
    let mut pos = 1;
    while bytes[pos] != b'e' {
        let k = scan_string(bytes, pos)?;
        let end = value_end(bytes, k.end)?;
        if bytes[k.clone()] == *key {
            return Ok(Some(k.end..end));
        }
        pos = end;
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(input: &[u8]) -> BencodeErrorKind {
        let e = decode(input).expect_err("input should be rejected");
        // The validator alone must reject it, so bencode-rs (which prints on errors) never runs.
        assert_eq!(validate(input).unwrap_err(), e);
        e.kind
    }

    fn dict(entries: &[(&str, Value)]) -> Value {
        Value::dict(entries.iter().cloned())
    }

    #[test]
    fn decodes_scalars_and_containers() {
        assert_eq!(decode(b"i42e").unwrap(), Value::Int(42));
        assert_eq!(decode(b"i-7e").unwrap(), Value::Int(-7));
        assert_eq!(decode(b"i0e").unwrap(), Value::Int(0));
        assert_eq!(decode(b"0:").unwrap(), Value::Bytes(vec![]));
        assert_eq!(decode(b"3:a:c").unwrap(), Value::Bytes(b"a:c".to_vec()));
        let v = decode(b"d1:ali1ei2ee1:bd1:c0:ee").unwrap();
        assert_eq!(
            v,
            dict(&[
                ("a", Value::List(vec![Value::Int(1), Value::Int(2)])),
                ("b", dict(&[("c", Value::Bytes(vec![]))])),
            ])
        );
        assert_eq!(v.get("a").and_then(Value::as_list).map(<[_]>::len), Some(2));
        assert_eq!(
            v.get("b").and_then(|b| b.get("c")).and_then(Value::as_str),
            Some("")
        );
        assert_eq!(v.get("zz"), None);
        assert_eq!(Value::Int(3).get("a"), None);
    }

    #[test]
    fn extreme_integers_round_trip() {
        for i in [i64::MAX, -i64::MAX, 1, -1, 10, 1_000_000_007] {
            let bytes = encode(&Value::Int(i));
            assert_eq!(decode(&bytes).unwrap(), Value::Int(i), "{i}");
        }
    }

    #[test]
    fn round_trip_is_canonical() {
        let v = dict(&[
            ("zeta", Value::Int(-5)),
            ("alpha", Value::List(vec![Value::Bytes(b"x\0y".to_vec())])),
            ("mid", dict(&[("k", Value::List(vec![]))])),
        ]);
        let bytes = encode(&v);
        assert_eq!(&bytes[..], &b"d5:alphal3:x\0ye3:midd1:klee4:zetai-5ee"[..]);
        assert_eq!(decode(&bytes).unwrap(), v);
        assert_eq!(encode(&decode(&bytes).unwrap()), bytes);
    }

    #[test]
    fn unsorted_keys_are_accepted() {
        let v = decode(b"d1:bi1e1:ai2ee").unwrap();
        assert_eq!(v.get("a").and_then(Value::as_int), Some(2));
        assert_eq!(encode(&v), b"d1:ai2e1:bi1ee");
    }

    #[test]
    fn rejects_bad_integers() {
        for bad in [
            &b"i-0e"[..],
            b"i03e",
            b"i-03e",
            b"ie",
            b"i-e",
            b"i9223372036854775808e",
            b"i-9223372036854775808e",
            b"i99999999999999999999999999999999999999e",
        ] {
            assert_eq!(kind(bad), BencodeErrorKind::BadInteger, "{bad:?}");
        }
        assert_eq!(kind(b"i12"), BencodeErrorKind::UnexpectedEnd);
        assert_eq!(kind(b"i1x2e"), BencodeErrorKind::UnexpectedByte(b'x'));
        assert_eq!(kind(b"i+1e"), BencodeErrorKind::UnexpectedByte(b'+'));
    }

    #[test]
    fn rejects_bad_lengths() {
        assert_eq!(kind(b"4:abc"), BencodeErrorKind::BadLength);
        assert_eq!(kind(b"03:abc"), BencodeErrorKind::BadLength);
        assert_eq!(
            kind(b"99999999999999999999999999:abc"),
            BencodeErrorKind::BadLength
        );
        assert_eq!(kind(b"18446744073709551615:x"), BencodeErrorKind::BadLength);
        assert_eq!(kind(b"3"), BencodeErrorKind::UnexpectedEnd);
        assert_eq!(kind(b"3x"), BencodeErrorKind::UnexpectedByte(b'x'));
    }

    #[test]
    fn rejects_bad_structure() {
        assert_eq!(kind(b""), BencodeErrorKind::UnexpectedEnd);
        assert_eq!(kind(b"l"), BencodeErrorKind::UnexpectedEnd);
        assert_eq!(kind(b"d1:a"), BencodeErrorKind::UnexpectedEnd);
        assert_eq!(kind(b"e"), BencodeErrorKind::UnexpectedByte(b'e'));
        assert_eq!(kind(b"x"), BencodeErrorKind::UnexpectedByte(b'x'));
        assert_eq!(kind(b"i1ei2e"), BencodeErrorKind::TrailingData);
        assert_eq!(kind(b"lee"), BencodeErrorKind::TrailingData);
        assert_eq!(kind(b"di1ei2ee"), BencodeErrorKind::NonStringKey);
        assert_eq!(kind(b"dli1eei2ee"), BencodeErrorKind::NonStringKey);
        assert_eq!(kind(b"d1:ai1e1:ai2ee"), BencodeErrorKind::DuplicateKey);
        assert_eq!(kind(b"d1:ae"), BencodeErrorKind::MissingValue);
        // Same key in different dictionaries is fine.
        assert!(decode(b"d1:ad1:ai1eee").is_ok());
    }

    #[test]
    fn error_reports_offset_without_input() {
        let e = decode(b"d3:keyi1e3:key6:secrete").unwrap_err();
        assert_eq!(e.offset, 9);
        let msg = e.to_string();
        assert!(msg.contains("byte 9") && msg.contains("duplicate"), "{msg}");
        assert!(!msg.contains("secret") && !msg.contains("key:"), "{msg}");
    }

    #[test]
    fn deep_nesting_is_rejected_without_crashing() {
        for (open, width) in [(&b"l"[..], 1), (&b"d1:a"[..], 4)] {
            let mut deep = open.repeat(100_000);
            deep.extend(vec![b'e'; 100_000]);
            let e = validate(&deep).unwrap_err();
            assert_eq!(e.kind, BencodeErrorKind::TooDeep);
            assert_eq!(e.offset, MAX_DEPTH * width);
            assert_eq!(decode(&deep).unwrap_err(), e);
        }
    }

    #[test]
    fn max_depth_is_accepted() {
        let mut ok = vec![b'l'; MAX_DEPTH];
        ok.extend(vec![b'e'; MAX_DEPTH]);
        let mut v = decode(&ok).unwrap();
        for _ in 1..MAX_DEPTH {
            v = v.as_list().unwrap()[0].clone();
        }
        assert_eq!(v, Value::List(vec![]));
        // bencode-rs recurses per level: make sure the deepest accepted input fits a small stack.
        let small_stack = std::thread::Builder::new().stack_size(128 << 10);
        let nested = [
            b"d1:a".repeat(MAX_DEPTH - 1),
            b"d1:ai1ee".to_vec(),
            vec![b'e'; MAX_DEPTH - 1],
        ]
        .concat();
        std::thread::scope(|s| {
            let handle = small_stack.spawn_scoped(s, || decode(&nested).map(|_| ()));
            assert_eq!(handle.unwrap().join().unwrap(), Ok(()));
        });
        let mut too_deep = vec![b'l'; MAX_DEPTH + 1];
        too_deep.extend(vec![b'e'; MAX_DEPTH + 1]);
        assert_eq!(kind(&too_deep), BencodeErrorKind::TooDeep);
    }

    #[test]
    fn span_is_exact_value_bytes() {
        let input = b"d8:announce3:url4:infod4:name1:xe5:otherli1eee";
        let span = dict_value_span(input, b"info").unwrap().unwrap();
        assert_eq!(&input[span], b"d4:name1:xe");
        let span = dict_value_span(input, b"other").unwrap().unwrap();
        assert_eq!(&input[span], b"li1ee");
        assert_eq!(dict_value_span(input, b"nope").unwrap(), None);
        // Keys nested deeper do not count.
        assert_eq!(dict_value_span(input, b"name").unwrap(), None);
        assert_eq!(
            dict_value_span(b"li1ee", b"info").unwrap_err().kind,
            BencodeErrorKind::NotADictionary
        );
        assert_eq!(
            dict_value_span(b"d4:infoi1e", b"info").unwrap_err().kind,
            BencodeErrorKind::UnexpectedEnd
        );
    }

    /// Random mutations of a valid document: whatever the validator accepts, bencode-rs must
    /// accept too (otherwise it would print to stdout), and decoding must never panic.
    #[test]
    fn validator_agrees_with_bencode_rs_on_mutations() {
        let base = encode(&dict(&[
            ("announce", Value::Bytes(b"http://x/announce".to_vec())),
            (
                "info",
                dict(&[
                    ("length", Value::Int(12345)),
                    ("name", Value::Bytes(b"n".to_vec())),
                    ("pieces", Value::Bytes(vec![7; 20])),
                    (
                        "files",
                        Value::List(vec![dict(&[("path", Value::List(vec![]))])]),
                    ),
                ]),
            ),
        ]));
        let alphabet = b"ilde0123456789:-x";
        let mut rng = fastrand::Rng::with_seed(0x5eed);
        let (mut accepted, mut rejected) = (0, 0);
        for _ in 0..20_000 {
            let mut m = base.clone();
            for _ in 0..rng.usize(1..4) {
                let at = rng.usize(0..m.len());
                match rng.u8(0..3) {
                    0 => m[at] = alphabet[rng.usize(0..alphabet.len())],
                    1 => {
                        m.remove(at);
                    }
                    _ => m.insert(at, alphabet[rng.usize(0..alphabet.len())]),
                }
            }
            match decode(&m) {
                Ok(v) => {
                    accepted += 1;
                    assert_eq!(decode(&encode(&v)).unwrap(), v);
                }
                Err(e) => {
                    rejected += 1;
                    assert_ne!(e.kind, BencodeErrorKind::Inconsistent, "{m:?}");
                }
            }
        }
        assert!(accepted > 100 && rejected > 100, "{accepted} {rejected}");
    }
}
