//! Migrations, one folder per role under `migrations/`, embedded in the binary so
//! a deployment is one file. They are written in the shared dialect and run on both backends.

use super::{Db, Role};
use sqlx::migrate::Migrator;

static MAIN: Migrator = sqlx::migrate!("../migrations/main");
static SHARD: Migrator = sqlx::migrate!("../migrations/shard");
static ARCHIVE: Migrator = sqlx::migrate!("../migrations/archive");

pub(super) async fn run(db: &Db, role: Role) -> Result<(), sqlx::migrate::MigrateError> {
    let migrator = match role {
        Role::Main => &MAIN,
        Role::Shard => &SHARD,
        Role::Archive => &ARCHIVE,
    };
    migrator.run(db.pool()).await
}
