//! Migrations, one folder per role under `migrations/`, embedded in the binary so
//! a deployment is one file. They are written in the shared dialect and run on both backends.

use sqlx::migrate::Migrator;

static MAIN: Migrator = sqlx::migrate!("../migrations/main");
static SHARD: Migrator = sqlx::migrate!("../migrations/shard");
static ARCHIVE: Migrator = sqlx::migrate!("../migrations/archive");

/// Which schema a database carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Main,
    Shard,
    Archive,
}

/// The migrations of a role's schema.
pub(super) fn migrator(role: Role) -> &'static Migrator {
    match role {
        Role::Main => &MAIN,
        Role::Shard => &SHARD,
        Role::Archive => &ARCHIVE,
    }
}
