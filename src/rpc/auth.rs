//! Who may drive the API: the token every `/api/` request carries in `X-Piecemeal-Token`, and
//! the `Host` check that keeps a web site the user has open from reaching a loopback API
//! through a DNS name it rebinds to 127.0.0.1.
//!
//! The token comes from `--rpc-token`, else from `DIR/.piecemeal/rpc-token`, else it is made
//! at first start (16 random bytes in hex), saved there readable by the owner only, and
//! printed once. A header rather than a cookie carries it: a page of another site cannot set
//! that header on a request to us, so it cannot change anything.

use std::fmt;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The header that carries the token.
pub const TOKEN_HEADER: &str = "X-Piecemeal-Token";

/// Where the token lives inside a peer's folder.
pub fn token_path(dir: &Path) -> PathBuf {
    dir.join(".piecemeal").join("rpc-token")
}

/// The API's secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl fmt::Debug for Token {
    /// Never shows the secret (it would land in logs).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(..)")
    }
}

impl Token {
    /// A token given as text (the flag); surrounding whitespace is dropped.
    pub fn new(text: &str) -> Result<Token, AuthError> {
        let text = text.trim();
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(AuthError::BadToken);
        }
        Ok(Token(text.to_string()))
    }

    /// The secret, to print or send.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `given` is this token. The time taken depends only on the lengths, so a client
    /// cannot find the token a byte at a time by timing the replies.
    pub fn matches(&self, given: &[u8]) -> bool {
        let ours = self.0.as_bytes();
        if given.len() != ours.len() {
            return false;
        }
        ours.iter()
            .zip(given)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

/// A token and where it came from.
#[derive(Debug)]
pub struct Loaded {
    pub token: Token,
    /// Set when the token was made just now and saved at this path (print it once).
    pub generated: Option<PathBuf>,
}

/// Why the API cannot start with a token.
#[derive(Debug)]
pub enum AuthError {
    /// A non-loopback address and neither a flag nor a token file.
    NeedsToken,
    /// The token given or read is empty or holds spaces or control characters.
    BadToken,
    /// The token file cannot be read or written.
    File { path: PathBuf, source: io::Error },
    /// The system's random source failed.
    Random(String),
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthError::NeedsToken => write!(
                f,
                "--rpc on a non-loopback address needs --rpc-token or an existing token file"
            ),
            AuthError::BadToken => write!(
                f,
                "the rpc token must be printable characters without spaces"
            ),
            AuthError::File { path, source } => write!(f, "{}: {source}", path.display()),
            AuthError::Random(why) => write!(f, "cannot make an rpc token: {why}"),
        }
    }
}

impl std::error::Error for AuthError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AuthError::File { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// The token for an API bound to `bind` in the peer folder `dir`: the flag, else the file,
/// else (loopback only) a new one saved in the file.
pub fn load_or_create(
    flag: Option<&str>,
    dir: &Path,
    bind: SocketAddr,
) -> Result<Loaded, AuthError> {
    if let Some(text) = flag {
        return Ok(Loaded {
            token: Token::new(text)?,
            generated: None,
        });
    }
    let path = token_path(dir);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            return Ok(Loaded {
                token: Token::new(&text)?,
                generated: None,
            });
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(source) => return Err(AuthError::File { path, source }),
    }
    if !bind.ip().is_loopback() {
        return Err(AuthError::NeedsToken);
    }
    let mut raw = [0u8; 16];
    getrandom::fill(&mut raw).map_err(|e| AuthError::Random(e.to_string()))?;
    let token = Token(raw.iter().map(|b| format!("{b:02x}")).collect());
    save(&path, &token).map_err(|source| AuthError::File {
        path: path.clone(),
        source,
    })?;
    Ok(Loaded {
        token,
        generated: Some(path),
    })
}

/// Writes a new token file readable by its owner only.
fn save(path: &Path, token: &Token) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    writeln!(file, "{}", token.as_str())?;
    file.sync_all()
}

/// Whether a request's `Host` header names the loopback API at `port` itself. A browser sends
/// the name it resolved, so `evil.example:PORT` rebound to 127.0.0.1 fails here.
pub fn host_allowed(host: Option<&[u8]>, port: u16) -> bool {
    let Some(host) = host.and_then(|h| std::str::from_utf8(h).ok()) else {
        return false;
    };
    let host = host.trim().to_ascii_lowercase();
    ["127.0.0.1", "localhost", "[::1]"]
        .iter()
        .any(|name| host == format!("{name}:{port}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn loopback() -> SocketAddr {
        "127.0.0.1:0".parse().unwrap()
    }

    #[test]
    fn matches_only_the_exact_token() {
        let token = Token::new(" abc123\n").unwrap();
        assert!(token.matches(b"abc123"));
        for wrong in [&b"abc124"[..], b"abc12", b"abc1234", b""] {
            assert!(!token.matches(wrong), "{wrong:?}");
        }
        assert!(Token::new("has space").is_err() && Token::new("  ").is_err());
        assert_eq!(format!("{token:?}"), "Token(..)");
    }

    #[test]
    fn generated_once_saved_private_then_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create(None, dir.path(), loopback()).unwrap();
        let path = first.generated.clone().expect("made at first start");
        assert_eq!(path, token_path(dir.path()));
        assert_eq!(first.token.as_str().len(), 32);
        assert!(first.token.as_str().bytes().all(|b| b.is_ascii_hexdigit()));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = load_or_create(None, dir.path(), loopback()).unwrap();
        assert!(again.generated.is_none());
        assert_eq!(again.token, first.token);
        let flag = load_or_create(Some("given"), dir.path(), loopback()).unwrap();
        assert_eq!(flag.token.as_str(), "given");
    }

    #[test]
    fn non_loopback_needs_a_flag_or_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let public: SocketAddr = "0.0.0.0:9091".parse().unwrap();
        let err = load_or_create(None, dir.path(), public).unwrap_err();
        assert!(matches!(err, AuthError::NeedsToken), "{err}");
        assert!(!token_path(dir.path()).exists(), "nothing saved");
        assert!(load_or_create(Some("t0k"), dir.path(), public).is_ok());
        load_or_create(None, dir.path(), loopback()).unwrap();
        assert!(load_or_create(None, dir.path(), public).is_ok());
    }

    #[test]
    fn host_must_name_loopback_with_our_port() {
        for ok in [
            "127.0.0.1:9091",
            "localhost:9091",
            "LocalHost:9091",
            "[::1]:9091",
        ] {
            assert!(host_allowed(Some(ok.as_bytes()), 9091), "{ok}");
        }
        for bad in [
            "evil.example:9091",
            "127.0.0.1:80",
            "127.0.0.1",
            "localhost",
        ] {
            assert!(!host_allowed(Some(bad.as_bytes()), 9091), "{bad}");
        }
        assert!(!host_allowed(None, 9091));
    }
}
