//! Static assets, embedded in the binary (read from disk in debug builds) and served under
//! a content-hashed URL so browsers may cache them for a year.

use std::collections::HashMap;
use std::str::FromStr;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rust_embed::RustEmbed;
use sha2::{Digest, Sha256};

use crate::state::AppState;

#[derive(RustEmbed)]
#[folder = "assets/"]
struct Embedded;

/// Content hashes of the embedded files, and the gzipped copies of the text ones,
/// computed once at start.
pub struct Assets {
    hashes: HashMap<String, String>,
    gzipped: HashMap<String, Vec<u8>>,
}

/// Whether a file is text worth compressing (images and fonts already are).
fn compressible(name: &str) -> bool {
    [".css", ".js", ".json", ".svg", ".txt", ".webmanifest"]
        .iter()
        .any(|ext| name.ends_with(ext))
}

fn gzip(bytes: &[u8]) -> Option<Vec<u8>> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes).ok()?;
    encoder.finish().ok()
}

impl Assets {
    pub fn load() -> Self {
        let mut hashes = HashMap::new();
        let mut gzipped = HashMap::new();
        for name in Embedded::iter() {
            let Some(file) = Embedded::get(&name) else {
                continue;
            };
            let digest = hex::encode(Sha256::digest(&file.data));
            hashes.insert(name.to_string(), digest[..12].to_owned());
            if compressible(&name)
                && let Some(compressed) = gzip(&file.data)
            {
                gzipped.insert(name.to_string(), compressed);
            }
        }
        Self { hashes, gzipped }
    }

    /// `/assets/<hash>/<name>`: the URL changes whenever the file does.
    pub fn url(&self, name: &str) -> String {
        let hash = self.hashes.get(name).map(String::as_str).unwrap_or("0");
        format!("/assets/{hash}/{name}")
    }
}

/// Files served at a fixed root path rather than a hashed one: a service worker's scope is
/// its folder, and a manifest's and its icons' addresses are what an installed app keeps.
const AT_THE_ROOT: [&str; 6] = [
    "sw.js",
    "manifest.webmanifest",
    "icon-192.png",
    "icon-512.png",
    "icon-maskable-512.png",
    "apple-touch-icon.png",
];

pub fn router() -> Router<AppState> {
    let mut router = Router::new().route("/assets/{hash}/{name}", get(serve));
    for name in AT_THE_ROOT {
        router = router.route(
            &format!("/{name}"),
            get(move |state: State<AppState>, headers: HeaderMap| {
                serve(state, Path(("0".into(), name.into())), headers)
            }),
        );
    }
    router
        .route(
            "/favicon.svg",
            get(|state: State<AppState>, headers: HeaderMap| {
                serve(state, Path(("0".into(), "favicon.svg".into())), headers)
            }),
        )
        .route(
            "/favicon.ico",
            get(|state: State<AppState>, headers: HeaderMap| {
                serve(state, Path(("0".into(), "favicon.svg".into())), headers)
            }),
        )
}

async fn serve(
    State(state): State<AppState>,
    Path((hash, name)): Path<(String, String)>,
    request_headers: HeaderMap,
) -> Response {
    let Some(file) = Embedded::get(&name) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let accepts_gzip = request_headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
    // In a debug build the files are read from disk and may have changed since start:
    // compress what is there now.
    let gzipped: Option<Vec<u8>> = if !accepts_gzip || !compressible(&name) {
        None
    } else if cfg!(debug_assertions) {
        gzip(&file.data)
    } else {
        state.assets.gzipped.get(&name).cloned()
    };
    let mime = if name.ends_with(".webmanifest") {
        mime_guess::mime::Mime::from_str("application/manifest+json")
            .unwrap_or(mime_guess::mime::APPLICATION_JSON)
    } else {
        mime_guess::from_path(&name).first_or_octet_stream()
    };
    let cache = if state.assets.hashes.get(&name) == Some(&hash) {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let compressed = gzipped.is_some();
    let mut response = match gzipped {
        Some(bytes) => bytes.into_response(),
        None => file.data.into_owned().into_response(),
    };
    let headers = response.headers_mut();
    if compressed {
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    if compressible(&name) {
        headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
    if let Ok(value) = HeaderValue::from_str(mime.as_ref()) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    response
}
