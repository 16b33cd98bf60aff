//! Which torrent an id names: its info hash in hex, or a unique prefix of at least
//! [`MIN_PREFIX`] characters of it (as `git` names commits).

use crate::rpc::control::ControlError;

/// The shortest prefix accepted.
pub const MIN_PREFIX: usize = 4;

/// The position in `hashes` (lowercase hex) of the one torrent `id` names.
pub fn find<'a>(
    hashes: impl IntoIterator<Item = &'a str>,
    id: &str,
) -> Result<usize, ControlError> {
    let wanted = id.trim().to_ascii_lowercase();
    let unknown = || ControlError::UnknownTorrent(id.to_string());
    if wanted.len() < MIN_PREFIX || !wanted.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(unknown());
    }
    let mut found = None;
    for (i, hash) in hashes.into_iter().enumerate() {
        if hash.starts_with(&wanted) {
            if found.is_some() {
                return Err(ControlError::AmbiguousId(id.to_string()));
            }
            found = Some(i);
        }
    }
    found.ok_or_else(unknown)
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "abcd0123456789abcdef0123456789abcdef0123";
    const B: &str = "abce0123456789abcdef0123456789abcdef0123";

    #[test]
    fn a_whole_hash_or_a_unique_prefix_names_one_torrent() {
        assert_eq!(find([A, B], A), Ok(0));
        assert_eq!(find([A, B], &B.to_uppercase()), Ok(1));
        assert_eq!(find([A, B], "abcd"), Ok(0));
        assert_eq!(find([A, B], " abce01 "), Ok(1));
    }

    #[test]
    fn short_shared_foreign_or_missing_prefixes_are_refused() {
        let unknown = |id: &str| ControlError::UnknownTorrent(id.to_string());
        assert_eq!(find([A, B], "abc"), Err(unknown("abc")));
        assert_eq!(find([A, B], "abc0"), Err(unknown("abc0")));
        assert_eq!(find([A, B], "zzzz"), Err(unknown("zzzz")));
        assert_eq!(find([A, B], ""), Err(unknown("")));
        assert_eq!(find([] as [&str; 0], A), Err(unknown(A)));
        let c = "abcd9999456789abcdef0123456789abcdef0123";
        let ambiguous = ControlError::AmbiguousId("abcd".into());
        assert_eq!(find([A, B, c], "abcd"), Err(ambiguous));
        assert_eq!(find([A, B, c], "abcd9"), Ok(2));
    }
}
