//! Test support shared by every crate's database tests.

use sqlx::Connection;

/// Creates a throwaway database on the server `admin_url` points at and returns its URL,
/// so each test gets an empty database of its own.
pub async fn fresh_postgres_database(admin_url: &str) -> Result<String, sqlx::Error> {
    let name = format!("kaltalk_test_{}", uuid::Uuid::now_v7().simple());
    let mut conn = sqlx::PgConnection::connect(admin_url).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await?;
    let base = admin_url
        .rsplit_once('/')
        .map_or(admin_url, |(base, _)| base);
    Ok(format!("{base}/{name}"))
}
