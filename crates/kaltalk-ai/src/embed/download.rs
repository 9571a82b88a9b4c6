//! Fetches all-MiniLM-L6-v2 from Hugging Face (or a mirror speaking its
//! `/{repo}/resolve/{revision}/{file}` paths) into a model directory, refusing any file
//! whose sha256 differs from upstream's: the server runs these weights, so a truncated
//! download or a tampered mirror must never be loaded.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

/// The Hugging Face repository the local embedder's files come from.
pub const MINILM_REPO: &str = "sentence-transformers/all-MiniLM-L6-v2";

/// The files [`super::MiniLm::load`] reads, with upstream's sha256 (the same list as
/// scripts/fetch-model.sh).
pub const MINILM_FILES: [(&str, &str); 3] = [
    (
        "config.json",
        "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
    ),
    (
        "tokenizer.json",
        "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    ),
    (
        "model.safetensors",
        "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    ),
];

/// Why the model could not be downloaded; the message is shown to the operator.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error("could not download {url}: {source}")]
    Http {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error(
        "{file} from {url} is not the published all-MiniLM-L6-v2 (sha256 {actual}, expected {expected}); it was discarded"
    )]
    Hash {
        file: String,
        url: String,
        actual: String,
        expected: String,
    },
    #[error("writing the model to {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Downloads the three model files into `dest` (created if needed). Each is streamed
/// to a staging directory beside `dest` and hashed on the way; only when all three
/// match are they moved into `dest`, so `dest` never holds a partial or wrong model.
/// On failure the staging directory is removed.
pub async fn download_minilm(base_url: &str, dest: &Path) -> Result<(), DownloadError> {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into());
    let staging = dest.with_file_name(format!(".{name}.download"));
    let result = download_into(base_url, &staging, dest).await;
    if result.is_err() {
        let _ = tokio::fs::remove_dir_all(&staging).await;
    }
    result
}

async fn download_into(base_url: &str, staging: &Path, dest: &Path) -> Result<(), DownloadError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| DownloadError::Io { path, source }
    };
    // A leftover from an interrupted run is never trusted: start over.
    let _ = tokio::fs::remove_dir_all(staging).await;
    tokio::fs::create_dir_all(staging)
        .await
        .map_err(io(staging))?;
    // Hugging Face answers `resolve` with a redirect to its CDN; reqwest follows it.
    // No overall timeout: the weights are 90 MB and a slow link is still a link.
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(30))
        .read_timeout(Duration::from_secs(60))
        .user_agent(concat!("kaltalk/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|source| DownloadError::Http {
            url: base_url.to_owned(),
            source,
        })?;
    let base = base_url.trim_end_matches('/');
    for (file, expected) in MINILM_FILES {
        let url = format!("{base}/{MINILM_REPO}/resolve/main/{file}");
        let http = |source| DownloadError::Http {
            url: url.clone(),
            source,
        };
        let mut response = client.get(&url).send().await.map_err(http)?;
        if !response.status().is_success() {
            return Err(DownloadError::Status {
                url,
                status: response.status().as_u16(),
            });
        }
        let path = staging.join(file);
        let mut out = tokio::fs::File::create(&path).await.map_err(io(&path))?;
        let mut hasher = Sha256::new();
        while let Some(bytes) = response.chunk().await.map_err(http)? {
            hasher.update(&bytes);
            out.write_all(&bytes).await.map_err(io(&path))?;
        }
        out.sync_all().await.map_err(io(&path))?;
        let actual = hex(&hasher.finalize());
        if actual != expected {
            return Err(DownloadError::Hash {
                file: file.to_owned(),
                url,
                actual,
                expected: expected.to_owned(),
            });
        }
    }
    tokio::fs::create_dir_all(dest).await.map_err(io(dest))?;
    // model.safetensors last: the server takes its presence to mean the model is there.
    for (file, _) in MINILM_FILES {
        let (from, to) = (staging.join(file), dest.join(file));
        tokio::fs::rename(&from, &to).await.map_err(io(&to))?;
    }
    let _ = tokio::fs::remove_dir_all(staging).await;
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
