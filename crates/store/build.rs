//! Rebuilds the store when a migration is added or changed: `sqlx::migrate!` embeds the
//! migrations at compile time, and without this a new migration file alone left the binary
//! (and the tests) running the old set.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
