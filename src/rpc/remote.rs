//! `piecemeal remote`: drives a running peer through its JSON API, printing tables a person
//! can read, or with `--json` the API's own JSON for scripts.

use super::auth::{TOKEN_HEADER, token_path};
use super::control::{Limits, SessionInfo, TorrentDetail, TorrentSummary};
use super::table::{self, files, list, show};
use crate::metainfo::selection::{FileSpec, SelectionError, select_paths};
use crate::net::http::{self, HttpError};
use crate::peer::rate_limit::Rate;
use serde::de::DeserializeOwned;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Time allowed for one API call (an upload of a large `.torrent` included).
const TIMEOUT: Duration = Duration::from_secs(30);
/// The environment variable that may hold the token.
const TOKEN_ENV: &str = "PIECEMEAL_TOKEN";

/// `piecemeal remote`'s flags.
#[derive(clap::Args, Debug)]
pub struct RemoteArgs {
    /// The peer's API, HOST:PORT (as given to `piecemeal peer --rpc`).
    #[arg(long, global = true, default_value = "127.0.0.1:9091")]
    rpc: String,
    /// The API token (default: $PIECEMEAL_TOKEN, else DIR/.piecemeal/rpc-token with --dir).
    #[arg(long, global = true)]
    token: Option<String>,
    /// The peer's folder, to read its token from.
    #[arg(long, global = true)]
    dir: Option<PathBuf>,
    /// Print the API's JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    action: Action,
}

#[derive(clap::Subcommand, Debug)]
enum Action {
    /// Every torrent: status, progress, rates, peers, ETA, ratio.
    List,
    /// One torrent with its files, peers and trackers.
    Show { id: String },
    /// Add a .torrent file or a magnet link.
    Add {
        /// A .torrent file, or a magnet:?xt=urn:btih:... link.
        source: String,
        /// Add it without starting it.
        #[arg(long)]
        paused: bool,
    },
    /// Stop a torrent's connections and announces.
    Pause { id: String },
    /// Start a paused torrent again.
    Resume { id: String },
    /// Remove a torrent from the session.
    Remove {
        id: String,
        /// Delete its files too.
        #[arg(long)]
        delete_data: bool,
    },
    /// Hash a torrent's files again.
    Verify { id: String },
    /// A torrent's files; with --only, fetch only those.
    Files {
        id: String,
        /// Files to fetch: an index (3), a range (2-5) or a glob on the path (`*.mkv`).
        #[arg(long, value_name = "SPEC", num_args = 1.., value_parser = FileSpec::parse)]
        only: Vec<FileSpec>,
    },
    /// Show or set rate limits: the whole peer's, or one torrent's with ID.
    Limit {
        id: Option<String>,
        /// Upload limit (500k, 2M; 0 is unlimited).
        #[arg(long, value_name = "RATE", value_parser = Rate::parse)]
        up: Option<Rate>,
        /// Download limit, like --up.
        #[arg(long, value_name = "RATE", value_parser = Rate::parse)]
        down: Option<Rate>,
    },
}

/// Why a remote command failed.
#[derive(Debug)]
pub enum RemoteError {
    /// No token was given or found.
    NoToken,
    /// The token file or a `.torrent` could not be read.
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The API could not be reached or did not answer.
    Unreachable { addr: String, source: HttpError },
    /// The API refused the request with this message.
    Refused { status: u16, message: String },
    /// The reply is not the JSON expected.
    BadReply(String),
    /// `--only` does not fit the torrent's files.
    Selection(SelectionError),
}

impl fmt::Display for RemoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RemoteError::NoToken => write!(
                f,
                "no API token: give --token, set {TOKEN_ENV}, or --dir DIR of the peer"
            ),
            RemoteError::File { path, source } => write!(f, "{}: {source}", path.display()),
            RemoteError::Unreachable {
                addr,
                source: HttpError::Connect { source, .. },
            } => write!(
                f,
                "cannot reach a peer's API at {addr}: {source} (is `piecemeal peer --rpc {addr}` running?)"
            ),
            RemoteError::Unreachable { addr, source } => write!(f, "{addr}: {source}"),
            RemoteError::Refused { message, .. } => write!(f, "{message}"),
            RemoteError::BadReply(why) => write!(f, "unexpected reply from the API: {why}"),
            RemoteError::Selection(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for RemoteError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RemoteError::File { source, .. } => Some(source),
            RemoteError::Unreachable { source, .. } => Some(source),
            RemoteError::Selection(e) => Some(e),
            _ => None,
        }
    }
}

/// One peer's API.
struct Api {
    addr: String,
    token: String,
}

impl Api {
    /// Calls `method path` and returns the reply's body, or the API's error message.
    fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<(&str, &[u8])>,
    ) -> Result<Vec<u8>, RemoteError> {
        let url = format!("http://{}{path}", self.addr);
        let reply =
            http::request_with_headers(&url, method, &[(TOKEN_HEADER, &self.token)], body, TIMEOUT)
                .map_err(|source| RemoteError::Unreachable {
                    addr: self.addr.clone(),
                    source,
                })?;
        if reply.status >= 400 {
            let message = serde_json::from_slice::<serde_json::Value>(&reply.body)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_string))
                .unwrap_or_else(|| format!("the API answered HTTP {}", reply.status));
            return Err(RemoteError::Refused {
                status: reply.status,
                message,
            });
        }
        Ok(reply.body)
    }

    /// `GET path` as `T`.
    fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, RemoteError> {
        parse(&self.call("GET", path, None)?)
    }

    /// Sends `value` as JSON.
    fn send_json(
        &self,
        method: &str,
        path: &str,
        value: &impl serde::Serialize,
    ) -> Result<Vec<u8>, RemoteError> {
        let body = serde_json::to_vec(value).map_err(|e| RemoteError::BadReply(e.to_string()))?;
        self.call(method, path, Some(("application/json", &body)))
    }
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, RemoteError> {
    serde_json::from_slice(body).map_err(|e| RemoteError::BadReply(e.to_string()))
}

/// The token from the flag, the environment or the peer's folder.
fn find_token(args: &RemoteArgs) -> Result<String, RemoteError> {
    if let Some(token) = &args.token {
        return Ok(token.clone());
    }
    if let Ok(token) = std::env::var(TOKEN_ENV)
        && !token.trim().is_empty()
    {
        return Ok(token.trim().to_string());
    }
    let Some(dir) = &args.dir else {
        return Err(RemoteError::NoToken);
    };
    let path = token_path(dir);
    std::fs::read_to_string(&path)
        .map(|t| t.trim().to_string())
        .map_err(|source| RemoteError::File { path, source })
}

/// Runs one `piecemeal remote` command, printing its result on stdout.
pub fn run(args: RemoteArgs) -> Result<(), RemoteError> {
    let api = Api {
        addr: args.rpc.clone(),
        token: find_token(&args)?,
    };
    let out = |raw: &[u8], text: String| {
        if args.json {
            println!("{}", String::from_utf8_lossy(raw));
        } else {
            print!("{text}");
        }
    };
    match &args.action {
        Action::List => {
            let raw = api.call("GET", "/api/torrents", None)?;
            out(&raw, list(&parse::<Vec<TorrentSummary>>(&raw)?));
        }
        Action::Show { id } => {
            let raw = api.call("GET", &format!("/api/torrents/{id}"), None)?;
            out(&raw, show(&parse::<TorrentDetail>(&raw)?));
        }
        Action::Add { source, paused } => {
            let raw = add(&api, source, *paused)?;
            let added: TorrentSummary = parse(&raw)?;
            let text = format!(
                "added {} {} ({})\n",
                added.id,
                added.name,
                table::status(added.status)
            );
            out(&raw, text);
        }
        Action::Pause { id } | Action::Resume { id } | Action::Verify { id } => {
            let (verb, done) = match &args.action {
                Action::Pause { .. } => ("pause", "paused"),
                Action::Resume { .. } => ("resume", "resumed"),
                _ => ("verify", "checking"),
            };
            let raw = api.call("POST", &format!("/api/torrents/{id}/{verb}"), None)?;
            out(&raw, format!("{done} {id}\n"));
        }
        Action::Remove { id, delete_data } => {
            let path = format!("/api/torrents/{id}?delete_data={delete_data}");
            let raw = api.call("DELETE", &path, None)?;
            let what = if *delete_data { " and its data" } else { "" };
            out(&raw, format!("removed {id}{what}\n"));
        }
        Action::Files { id, only } => {
            let path = format!("/api/torrents/{id}");
            let mut detail = parse::<TorrentDetail>(&api.call("GET", &path, None)?)?;
            if only.is_empty() {
                let raw = serde_json::to_vec(&detail.files).unwrap_or_default();
                out(&raw, files(&detail));
                return Ok(());
            }
            let paths: Vec<&str> = detail.files.iter().map(|f| f.path.as_str()).collect();
            let wanted = select_paths(&paths, only).map_err(RemoteError::Selection)?;
            let indexes: Vec<usize> = (0..wanted.len()).filter(|&i| wanted[i]).collect();
            let body = serde_json::json!({ "wanted": indexes });
            let raw = api.send_json("PUT", &format!("{path}/files"), &body)?;
            if !args.json {
                detail = parse::<TorrentDetail>(&api.call("GET", &path, None)?)?;
            }
            out(&raw, files(&detail));
        }
        Action::Limit { id, up, down } => {
            let (current, path) = match id {
                Some(id) => {
                    let path = format!("/api/torrents/{id}");
                    let detail = parse::<TorrentDetail>(&api.call("GET", &path, None)?)?;
                    (detail.summary.limits, format!("{path}/limits"))
                }
                None => {
                    let session: SessionInfo = api.get("/api/session")?;
                    (session.limits, "/api/limits".to_string())
                }
            };
            let limits = Limits {
                upload: up.map_or(current.upload, |r| r.0),
                download: down.map_or(current.download, |r| r.0),
            };
            let raw = if up.is_some() || down.is_some() {
                api.send_json("PUT", &path, &limits)?;
                serde_json::to_vec(&limits).unwrap_or_default()
            } else {
                serde_json::to_vec(&current).unwrap_or_default()
            };
            let whose = id
                .as_deref()
                .map_or("every torrent".to_string(), |id| id.to_string());
            let text = format!(
                "{whose}: upload {}, download {}\n",
                table::limit(limits.upload),
                table::limit(limits.download)
            );
            out(&raw, text);
        }
    }
    Ok(())
}

/// Posts a magnet link as JSON or a `.torrent` file's bytes.
fn add(api: &Api, source: &str, paused: bool) -> Result<Vec<u8>, RemoteError> {
    if source.starts_with("magnet:") {
        let body = serde_json::json!({ "magnet": source, "paused": paused });
        return api.send_json("POST", "/api/torrents", &body);
    }
    let path = PathBuf::from(source);
    let file_error = |source| RemoteError::File {
        path: path.clone(),
        source,
    };
    let length = std::fs::metadata(&path).map_err(file_error)?.len();
    if length > super::MAX_BODY as u64 {
        return Err(file_error(std::io::Error::other(format!(
            "{length} bytes is more than a .torrent may be ({} bytes)",
            super::MAX_BODY
        ))));
    }
    let bytes = std::fs::read(&path).map_err(file_error)?;
    let target = format!("/api/torrents?paused={paused}");
    api.call("POST", &target, Some(("application/x-bittorrent", &bytes)))
}
