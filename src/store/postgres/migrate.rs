//! First use of a schema: create it, or migrate it forward, in one transaction under an
//! advisory lock, so that replicas starting together take turns and exactly one of them
//! creates the tables.

use std::time::Duration;

use deadpool_postgres::Object;

use crate::store::{
    error::StoreError,
    postgres::{rows, sql::Statements},
};

/// How long opening a store waits for the migration lock and runs the migrations; also the
/// `statement_timeout` of the migration transaction, which runs longer statements than the
/// store's own timeout allows.
pub(crate) const MIGRATION_TIMEOUT: Duration = Duration::from_secs(30);

/// What the migration found, for the caller to log.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Migrated {
    /// The schema was at the current version already.
    Current,
    /// Migrated from the first version to the second.
    Forward(i32, i32),
}

/// Brings the schema named `schema` to the current version, or refuses it: a newer version
/// than this build knows, or a schema that holds another application's tables.
pub(crate) async fn migrate(
    client: &mut Object,
    sql: &Statements,
    schema: &str,
    described: &str,
) -> Result<Migrated, StoreError> {
    let failed = |error: tokio_postgres::Error| rows::error(described, &error);
    let transaction = client.transaction().await.map_err(failed)?;
    transaction
        .batch_execute(&format!(
            "SET LOCAL statement_timeout = {}",
            MIGRATION_TIMEOUT.as_millis()
        ))
        .await
        .map_err(failed)?;
    transaction
        .execute(
            sql.lock,
            &[&crate::store::postgres::sql::LOCK_CLASS, &schema],
        )
        .await
        .map_err(failed)?;
    let has_versions: bool = transaction
        .query_one(sql.has_version_table, &[&sql.version_table()])
        .await
        .and_then(|row| row.try_get(0))
        .map_err(failed)?;
    let mut schema_exists = true;
    let version: i32 = if has_versions {
        transaction
            .query_one(&sql.version, &[])
            .await
            .and_then(|row| row.try_get(0))
            .map_err(failed)?
    } else {
        let contents = transaction
            .query_one(sql.schema_contents, &[&schema])
            .await
            .map_err(failed)?;
        schema_exists = contents.try_get("exists").map_err(failed)?;
        let relations: i64 = contents.try_get("relations").map_err(failed)?;
        if relations > 0 {
            return Err(StoreError::Incompatible(format!(
                "{described}: the schema {schema} holds tables but is not a printone-webhooks store; choose another schema"
            )));
        }
        0
    };
    let known = i32::try_from(sql.migrations.len()).unwrap_or(i32::MAX);
    if version > known {
        return Err(StoreError::Incompatible(format!(
            "{described}: schema version {version}, newer than this version of printone-webhooks knows ({known}); upgrade it"
        )));
    }
    if version == known {
        transaction.commit().await.map_err(failed)?;
        return Ok(Migrated::Current);
    }
    if !schema_exists {
        transaction
            .batch_execute(&sql.create_schema)
            .await
            .map_err(failed)?;
    }
    if !has_versions {
        transaction
            .batch_execute(&sql.create_version_table)
            .await
            .map_err(failed)?;
    }
    for (target, migration) in (1..)
        .zip(&sql.migrations)
        .skip(usize::try_from(version).unwrap_or(0))
    {
        transaction.batch_execute(migration).await.map_err(failed)?;
        transaction
            .execute(&sql.record_version, &[&target])
            .await
            .map_err(failed)?;
    }
    transaction.commit().await.map_err(failed)?;
    Ok(Migrated::Forward(version, known))
}
