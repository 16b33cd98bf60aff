//! `http://` URLs and query strings: splitting a tracker URL, and the percent-coding of the
//! binary `info_hash` and `peer_id` parameters.

use super::HttpError;

/// The parts of an `http://` URL needed to send a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpUrl {
    /// Host name or IP literal, without brackets.
    pub host: String,
    pub port: u16,
    /// Path plus query, always starting with `/`.
    pub target: String,
}

/// Splits an `http://host[:port][/path][?query]` URL; other schemes are refused with a reason.
pub fn parse_url(url: &str) -> Result<HttpUrl, HttpError> {
    let bad = |reason: &str| HttpError::BadUrl {
        url: url.to_string(),
        reason: reason.to_string(),
    };
    let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("no scheme"))?;
    if scheme.eq_ignore_ascii_case("https") {
        return Err(bad(
            "https is not supported (no TLS); use an http:// tracker",
        ));
    }
    if !scheme.eq_ignore_ascii_case("http") {
        return Err(bad(&format!(
            "scheme {scheme}:// is not supported, only http://"
        )));
    }
    let split = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, target) = rest.split_at(split);
    let target = target.split('#').next().unwrap_or_default();
    let target = match target.strip_prefix('?') {
        Some(query) => format!("/?{query}"),
        None if target.is_empty() => "/".to_string(),
        None => target.to_string(),
    };
    if authority.contains('@') {
        return Err(bad("user info in tracker URLs is not supported"));
    }
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (host, after) = bracketed
            .split_once(']')
            .ok_or_else(|| bad("unclosed '['"))?;
        (host, after.strip_prefix(':'))
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(bad("no host"));
    }
    let port = match port {
        Some(port) => port.parse().map_err(|_| bad("invalid port"))?,
        None => 80,
    };
    Ok(HttpUrl {
        host: host.to_string(),
        port,
        target,
    })
}

/// Percent-encodes raw bytes for a query string, keeping only RFC 3986 unreserved characters.
pub fn percent_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes `%XX` escapes into raw bytes. `+` stays `+`: tracker parameters are binary, and
/// clients escape a literal `+` byte.
pub fn percent_decode(text: &str) -> Result<Vec<u8>, HttpError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| HttpError::Malformed(format!("bad percent escape in {text:?}")))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Ok(out)
}

/// Splits a query string into decoded `(name, value)` pairs in order; names are decoded lossily
/// to text, values stay raw bytes. Repeated names (scrape's `info_hash`) all appear.
pub fn parse_query(query: &str) -> Result<Vec<(String, Vec<u8>)>, HttpError> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let name = String::from_utf8_lossy(&percent_decode(name)?).into_owned();
            Ok((name, percent_decode(value)?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_round_trip_covers_every_byte() {
        let all: Vec<u8> = (0..=255).collect();
        let encoded = percent_encode(&all);
        assert!(encoded.is_ascii());
        assert!(!encoded.contains(['&', '=', '+', ' ', '?']));
        assert_eq!(percent_decode(&encoded).unwrap(), all);
    }

    #[test]
    fn percent_decode_rejects_bad_escapes_and_keeps_plus() {
        assert!(percent_decode("%4").is_err());
        assert!(percent_decode("%zz").is_err());
        assert_eq!(percent_decode("a+b%20").unwrap(), b"a+b ");
    }

    #[test]
    fn query_keeps_repeated_names_and_raw_bytes() {
        let pairs = parse_query("info_hash=%00%FF&info_hash=ab&empty&x=").unwrap();
        assert_eq!(
            pairs,
            vec![
                ("info_hash".to_string(), vec![0, 255]),
                ("info_hash".to_string(), b"ab".to_vec()),
                ("empty".to_string(), vec![]),
                ("x".to_string(), vec![]),
            ]
        );
    }

    #[test]
    fn urls_split_into_host_port_target() {
        let u = parse_url("http://tracker.example:6969/announce?passkey=1").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("tracker.example", 6969));
        assert_eq!(u.target, "/announce?passkey=1");
        let u = parse_url("HTTP://[::1]/a#frag").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.target.as_str()),
            ("::1", 80, "/a")
        );
        assert_eq!(parse_url("http://h").unwrap().target, "/");
        let err = parse_url("https://h/announce").unwrap_err().to_string();
        assert!(err.contains("https") && err.contains("TLS"), "{err}");
        assert!(
            parse_url("udp://h:80")
                .unwrap_err()
                .to_string()
                .contains("udp")
        );
        assert!(parse_url("http://h:99999/").is_err());
        assert!(parse_url("http:///x").is_err());
    }
}
