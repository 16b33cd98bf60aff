//! The web page a running peer serves on its JSON API's port: three static files built into the
//! binary, so the page works with no network access and nothing to install beside the binary.
//!
//! The page itself (`src/rpc/web/`) is plain HTML, CSS and JavaScript that calls the JSON API
//! from the browser with the token it reads from the URL's `#token=` fragment; see
//! `/work/api-spec.md`'s web page section for the contract. These files hold no secret, so the
//! server hands them out without a token.

const INDEX_HTML: &str = include_str!("web/index.html");
const APP_JS: &str = include_str!("web/app.js");
const STYLE_CSS: &str = include_str!("web/style.css");

/// The content type and bytes of the page's file at this request path (the path without any
/// `?query`), or `None` when the path is not one of them.
pub fn asset(path: &str) -> Option<(&'static str, &'static [u8])> {
    let (content_type, body) = match path {
        "/" | "/index.html" => ("text/html; charset=utf-8", INDEX_HTML),
        "/app.js" => ("text/javascript; charset=utf-8", APP_JS),
        "/style.css" => ("text/css; charset=utf-8", STYLE_CSS),
        _ => return None,
    };
    Some((content_type, body.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_the_three_files_with_their_types() {
        let (html, page) = asset("/").unwrap();
        assert_eq!(html, "text/html; charset=utf-8");
        assert!(page.starts_with(b"<!DOCTYPE html>"));
        assert_eq!(asset("/index.html"), asset("/"));
        assert_eq!(
            asset("/app.js").unwrap().0,
            "text/javascript; charset=utf-8"
        );
        assert_eq!(asset("/style.css").unwrap().0, "text/css; charset=utf-8");
    }

    #[test]
    fn nothing_else_is_an_asset() {
        for path in [
            "",
            "/api/torrents",
            "/app.js/",
            "/../Cargo.toml",
            "/web/app.js",
            "/APP.JS",
        ] {
            assert_eq!(asset(path), None, "{path}");
        }
    }

    #[test]
    fn the_page_loads_only_what_is_served_here() {
        let page = INDEX_HTML;
        for reference in ["src=\"/app.js\"", "href=\"/style.css\""] {
            assert!(page.contains(reference), "index.html lacks {reference}");
        }
        for (name, text) in [
            ("index.html", INDEX_HTML),
            ("app.js", APP_JS),
            ("style.css", STYLE_CSS),
        ] {
            for remote in ["http://", "https://", "src=\"//", "href=\"//", "@import"] {
                assert!(
                    !text.contains(remote),
                    "{name} refers to {remote}: the page must work offline"
                );
            }
        }
    }

    /// Torrent and file names are chosen by whoever made the torrent: the page must put them in
    /// as text, never parse them as markup.
    #[test]
    fn the_script_never_parses_api_strings_as_markup() {
        for sink in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
        ] {
            assert!(!APP_JS.contains(sink), "app.js uses {sink}");
        }
    }

    #[test]
    fn the_script_sends_the_token_header_the_api_reads() {
        assert!(APP_JS.contains("\"X-Piecemeal-Token\""));
    }
}
