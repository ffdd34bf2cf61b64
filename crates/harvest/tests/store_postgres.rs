//! The store suite on PostgreSQL (`KEEPA_HARVEST_TEST_PG`, e.g.
//! `postgres://postgres@127.0.0.1:5432/test`); each test in its own schema.
//! Without the variable every test says on stderr that it did not run.

mod store_common;

use harvest::store::{Backend, Store, StoreError};

store_common::backend_suite!(store_common::postgres);

#[tokio::test]
async fn backend_is_postgres() {
    let Some(fx) = store_common::postgres().await else {
        return;
    };
    let store = Store::open(&fx.db).await.unwrap();
    assert_eq!(store.backend(), Backend::Postgres);
    store.close().await;
    fx.cleanup().await;
}

#[tokio::test]
async fn connection_errors_never_show_the_password() {
    // Port 1 on loopback: refused at once, no server needed.
    let err = Store::open("postgres://harvest:hunter2secret@127.0.0.1:1/db")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Connect { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(!msg.contains("hunter2secret"), "{msg}");
    assert!(
        msg.contains("postgres://harvest:***@127.0.0.1:1/db"),
        "{msg}"
    );
    assert!(!format!("{err:?}").contains("hunter2secret"));
}

#[tokio::test]
async fn an_open_store_never_shows_the_password() {
    let Some(fx) = store_common::postgres().await else {
        return;
    };
    // The test server trusts local logins, so any password is accepted.
    let (scheme, rest) = fx.db.split_once("://").unwrap();
    let (userinfo, host) = rest.split_once('@').unwrap();
    let user = userinfo.split(':').next().unwrap();
    let url = format!("{scheme}://{user}:Sekret-pw-42@{host}");
    let store = Store::open(&url).await.unwrap();
    assert!(!format!("{store:?}").contains("Sekret-pw-42"), "{store:?}");
    assert!(!store.display_name().contains("Sekret-pw-42"));
    assert!(store.display_name().contains(":***@"));
    store.close().await;
    fx.cleanup().await;
}
