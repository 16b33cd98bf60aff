//! Torrent dictionaries shared by the unit tests of parsing and of showing.

use std::collections::BTreeMap;

use super::{Metainfo, MetainfoError};
use crate::bencode::{self, Value};

pub(super) type Map = BTreeMap<Vec<u8>, Value>;

pub(super) fn set(map: &mut Map, key: &str, v: Value) {
    map.insert(key.as_bytes().to_vec(), v);
}

pub(super) fn path_list(components: &[&str]) -> Value {
    Value::List(components.iter().map(|&c| Value::from(c)).collect())
}

pub(super) fn file(length: i64, components: &[&str]) -> Value {
    Value::dict(vec![
        ("length", Value::Int(length)),
        ("path", path_list(components)),
    ])
}

/// A valid single-file info dictionary: 100 bytes in pieces of 32.
pub(super) fn single_info() -> Map {
    let mut info = Map::new();
    set(&mut info, "name", Value::from("a.txt"));
    set(&mut info, "piece length", Value::Int(32));
    set(&mut info, "pieces", Value::Bytes(vec![0xab; 4 * 20]));
    set(&mut info, "length", Value::Int(100));
    info
}

/// A valid multi-file info dictionary: 40 + 60 bytes in pieces of 32.
pub(super) fn multi_info() -> Map {
    let mut info = single_info();
    info.remove(&b"length"[..]);
    set(&mut info, "name", Value::from("dir"));
    set(
        &mut info,
        "files",
        Value::List(vec![file(40, &["x", "one"]), file(60, &["two"])]),
    );
    info
}

pub(super) fn torrent(info: Map) -> Map {
    let mut top = Map::new();
    set(&mut top, "announce", Value::from("http://t/announce"));
    set(&mut top, "info", Value::Dict(info));
    top
}

pub(super) fn parse(top: Map) -> Result<Metainfo, MetainfoError> {
    Metainfo::from_bytes(&bencode::encode(&Value::Dict(top)))
}
