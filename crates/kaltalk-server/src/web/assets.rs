//! Static assets, embedded in the binary (read from disk in debug builds) and served under
//! a content-hashed URL so browsers may cache them for a year.

use std::collections::HashMap;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rust_embed::RustEmbed;
use sha2::{Digest, Sha256};

use crate::state::AppState;

#[derive(RustEmbed)]
#[folder = "assets/"]
struct Embedded;

/// Content hashes of the embedded files, computed once at start.
pub struct Assets {
    hashes: HashMap<String, String>,
}

impl Assets {
    pub fn load() -> Self {
        let hashes = Embedded::iter()
            .filter_map(|name| {
                let file = Embedded::get(&name)?;
                let digest = hex::encode(Sha256::digest(&file.data));
                Some((name.to_string(), digest[..12].to_owned()))
            })
            .collect();
        Self { hashes }
    }

    /// `/assets/<hash>/<name>`: the URL changes whenever the file does.
    pub fn url(&self, name: &str) -> String {
        let hash = self.hashes.get(name).map(String::as_str).unwrap_or("0");
        format!("/assets/{hash}/{name}")
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/assets/{hash}/{name}", get(serve))
        .route(
            "/favicon.svg",
            get(|state: State<AppState>| serve(state, Path(("0".into(), "favicon.svg".into())))),
        )
        .route(
            "/favicon.ico",
            get(|state: State<AppState>| serve(state, Path(("0".into(), "favicon.svg".into())))),
        )
}

async fn serve(
    State(state): State<AppState>,
    Path((hash, name)): Path<(String, String)>,
) -> Response {
    let Some(file) = Embedded::get(&name) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let mime = mime_guess::from_path(&name).first_or_octet_stream();
    let cache = if state.assets.hashes.get(&name) == Some(&hash) {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let mut response = file.data.into_owned().into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(mime.as_ref()) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    response
}
