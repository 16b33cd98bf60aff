//! Structure-aware mutation: byte-level edits plus edits that know the shapes our parsers read
//! (big-endian length fields, decimal numbers as bencode and HTTP write them, bencode tokens and
//! the dictionary keys and query names the parsers look for).

/// Longest input a mutation may produce; longer results are cut.
pub const MAX_INPUT: usize = 8 * 1024;

/// Tokens spliced into inputs: bencode framing, keys our decoders look up, HTTP and URI syntax.
const TOKENS: &[&[u8]] = &[
    b"i0e",
    b"i-1e",
    b"i-0e",
    b"i03e",
    b"ie",
    b"le",
    b"de",
    b"l",
    b"d",
    b"e",
    b"0:",
    b"1:",
    b"20:",
    b"4294967296:",
    b"i9223372036854775808e",
    b"i-9223372036854775808e",
    b"4:info",
    b"6:pieces",
    b"12:piece length",
    b"6:length",
    b"5:files",
    b"4:path",
    b"4:name",
    b"8:announce",
    b"13:announce-list",
    b"1:m",
    b"8:msg_type",
    b"5:piece",
    b"10:total_size",
    b"11:ut_metadata",
    b"7:ut_pex",
    b"5:added",
    b"7:dropped",
    b"1:y",
    b"1:q",
    b"1:a",
    b"1:r",
    b"1:t",
    b"1:e",
    b"2:id",
    b"6:target",
    b"5:nodes",
    b"6:values",
    b"5:token",
    b"9:info_hash",
    b"4:port",
    b"6:nodes6",
    b"info_hash=",
    b"peer_id=",
    b"port=",
    b"left=",
    b"compact=0",
    b"numwant=",
    b"event=",
    b"ip=",
    b"&",
    b"=",
    b"?",
    b"%",
    b"%zz",
    b"%00",
    b"%ff",
    b"+",
    b"\r\n",
    b"\r\n\r\n",
    b"Content-Length: ",
    b"Transfer-Encoding: chunked",
    b"Expect: 100-continue",
    b"magnet:?",
    b"xt=urn:btih:",
    b"xt=urn:btmh:",
    b"dn=",
    b"tr=",
    b"x.pe=",
    b"[::1]:",
    b"\"",
    b"{",
    b"}",
    b"null",
    b"-1",
    b"1e999",
];

/// Numbers that sit on the edges parsers get wrong: zero, one, signed and unsigned limits.
const NUMBERS: &[u64] = &[
    0,
    1,
    2,
    19,
    20,
    68,
    127,
    128,
    255,
    256,
    16 * 1024,
    16 * 1024 + 1,
    128 * 1024,
    i32::MAX as u64,
    i32::MAX as u64 + 1,
    u32::MAX as u64,
    u32::MAX as u64 + 1,
    i64::MAX as u64,
    u64::MAX,
];

/// A mutator drawing from its own seeded generator, so a run is repeatable.
pub struct Mutator {
    rng: fastrand::Rng,
}

impl Mutator {
    /// A mutator whose choices follow from `seed`.
    pub fn new(seed: u64) -> Mutator {
        Mutator {
            rng: fastrand::Rng::with_seed(seed),
        }
    }

    /// The generator, for choices the caller makes (which corpus entry to mutate).
    pub fn rng(&mut self) -> &mut fastrand::Rng {
        &mut self.rng
    }

    /// Replaces `out` with `base` changed by one to eight stacked edits; `other` is a second
    /// corpus entry for splices.
    pub fn mutate(&mut self, base: &[u8], other: &[u8], out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(base);
        for _ in 0..1 + self.rng.usize(..8).min(self.rng.usize(..8)) {
            self.edit(out, other);
        }
        out.truncate(MAX_INPUT);
    }

    fn edit(&mut self, data: &mut Vec<u8>, other: &[u8]) {
        let rng = &mut self.rng;
        let at = |rng: &mut fastrand::Rng, data: &[u8]| rng.usize(..=data.len());
        match rng.u8(..12) {
            0 if !data.is_empty() => {
                let i = rng.usize(..data.len());
                data[i] ^= 1 << rng.u8(..8);
            }
            1 if !data.is_empty() => {
                let i = rng.usize(..data.len());
                data[i] = *rng
                    .choice(&[0, 0xff, 0x7f, 0x80, b'0', b'9', b':', b'e', b'-', b' '])
                    .unwrap_or(&0);
            }
            2 => {
                let i = at(rng, data);
                let n = 1 + rng.usize(..16);
                let bytes: Vec<u8> = (0..n).map(|_| rng.u8(..)).collect();
                data.splice(i..i, bytes);
            }
            3 if !data.is_empty() => {
                let start = rng.usize(..data.len());
                let end = (start + 1 + rng.usize(..32)).min(data.len());
                data.drain(start..end);
            }
            4 if !data.is_empty() => {
                // Repeat a chunk: deep nesting, long lists, repeated headers.
                let start = rng.usize(..data.len());
                let end = (start + 1 + rng.usize(..16)).min(data.len());
                let chunk = data[start..end].to_vec();
                let most = if rng.bool() { 4 } else { 200 };
                let times = 1 + rng.usize(..most);
                let i = at(rng, data);
                for _ in 0..times {
                    data.splice(i..i, chunk.iter().copied());
                }
            }
            5 if !other.is_empty() => {
                let keep = at(rng, data);
                let from = rng.usize(..other.len());
                data.truncate(keep);
                data.extend_from_slice(&other[from..]);
            }
            6 if data.len() >= 4 => {
                let i = rng.usize(..=data.len() - 4);
                let n = self.number(data.len()) as u32;
                data[i..i + 4].copy_from_slice(&n.to_be_bytes());
            }
            7 => self.edit_decimal(data),
            8 => {
                let token = *rng.choice(TOKENS).unwrap_or(&&b"e"[..]);
                let i = at(rng, data);
                data.splice(i..i, token.iter().copied());
            }
            9 if !data.is_empty() => {
                let keep = rng.usize(..data.len());
                data.truncate(keep);
            }
            10 if data.len() >= 2 => {
                let i = rng.usize(..=data.len() - 2);
                let n = self.number(data.len()) as u16;
                data[i..i + 2].copy_from_slice(&n.to_be_bytes());
            }
            _ => {
                let i = at(rng, data);
                data.insert(i, rng.u8(..));
            }
        }
    }

    /// An edge number, or one near `len` (length fields that are one off).
    fn number(&mut self, len: usize) -> u64 {
        if self.rng.bool() {
            *self.rng.choice(NUMBERS).unwrap_or(&0)
        } else {
            (len as u64).wrapping_add(self.rng.u64(..5)).wrapping_sub(2)
        }
    }

    /// Rewrites a run of ASCII digits (a bencode length or integer, a port, Content-Length).
    fn edit_decimal(&mut self, data: &mut Vec<u8>) {
        let digits: Vec<usize> = (0..data.len())
            .filter(|&i| data[i].is_ascii_digit() && (i == 0 || !data[i - 1].is_ascii_digit()))
            .collect();
        let Some(&start) = self.rng.choice(&digits) else {
            return;
        };
        let end = start
            + data[start..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count();
        let n = self.number(data.len());
        let text = match self.rng.u8(..4) {
            0 => format!("-{n}"),
            1 => format!("0{n}"),
            2 => format!("{n}{n}"),
            _ => n.to_string(),
        };
        data.splice(start..end, text.into_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_inputs_and_bounded_length() {
        let (mut a, mut b) = (Mutator::new(7), Mutator::new(7));
        let (mut x, mut y) = (Vec::new(), Vec::new());
        let mut changed = 0;
        for _ in 0..10_000 {
            a.mutate(b"d4:infod6:lengthi5eee", b"l1:ae", &mut x);
            b.mutate(b"d4:infod6:lengthi5eee", b"l1:ae", &mut y);
            assert_eq!(x, y);
            assert!(x.len() <= MAX_INPUT);
            changed += usize::from(x != b"d4:infod6:lengthi5eee");
        }
        assert!(changed > 9_000, "only {changed} of 10000 inputs changed");
    }

    #[test]
    fn decimal_edit_rewrites_a_number() {
        let mut m = Mutator::new(1);
        let mut seen_other = false;
        for _ in 0..100 {
            let mut data = b"4:spam".to_vec();
            m.edit_decimal(&mut data);
            assert!(data.ends_with(b":spam"));
            seen_other |= data != b"4:spam";
        }
        assert!(seen_other);
    }
}
