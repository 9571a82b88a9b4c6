//! bcrypt, off the async runtime: a cost-12 hash takes a few hundred milliseconds of CPU.

use anyhow::Context;
use kaltalk_core::Password;

pub async fn hash(password: &Password, cost: u32) -> anyhow::Result<String> {
    let plain = password.expose().to_owned();
    tokio::task::spawn_blocking(move || bcrypt::hash(plain, cost))
        .await
        .context("password hashing task")?
        .context("bcrypt hash")
}

/// Checks `plain` against `stored`. With no stored hash (unknown account) it still spends
/// the same time, so response timing does not tell which addresses have accounts.
pub async fn verify(plain: &str, stored: Option<&str>, cost: u32) -> anyhow::Result<bool> {
    let plain = plain.to_owned();
    let stored = stored.map(str::to_owned);
    tokio::task::spawn_blocking(move || match stored {
        Some(hash) => bcrypt::verify(plain, &hash).context("bcrypt verify"),
        None => {
            let _ = bcrypt::hash("timing equalizer", cost);
            Ok(false)
        }
    })
    .await
    .context("password check task")?
}
