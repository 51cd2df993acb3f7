//! HTTP tests: the real app on a random port, spoken to over HTTP as clients would, on both
//! engines. One test binary, one module per story.

mod accounts;
mod bad_input;
mod catalog;
mod discovery;
mod limits;
mod live;
mod loyalty;
mod mail;
mod matrix;
mod money;
mod observability;
mod openapi;
mod orders;
mod payments;
mod promo;
mod races;
mod sessions;
mod tenants;
mod tickets;
mod waiting;
mod waitlist;
mod walls;
mod webhooks;

/// Runs each listed `async fn(Engine)` once on SQLite and once on PostgreSQL.
#[macro_export]
macro_rules! on_both_engines {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() { super::$test(boxoffice_testkit::Engine::Sqlite).await })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() { super::$test(boxoffice_testkit::Engine::Postgres).await })*
        }
    };
}
