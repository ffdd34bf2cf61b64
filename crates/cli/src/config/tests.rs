//! The binary's keys in a config file (moved here from harvest's config
//! tests with the keys themselves).

use super::*;

fn err(text: &str) -> String {
    match FileConfig::from_toml_str(text, "config.toml") {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => {
            assert!(e.location().is_some(), "{e}");
            e.to_string()
        }
    }
}

#[test]
fn the_built_in_config_has_no_key_and_no_settings_of_ours() {
    let c = FileConfig::built_in();
    assert_eq!(c.key, None);
    assert_eq!(c.run, RunConfig::default_config());
    assert!(c.db.is_none() && c.ledger.is_none() && c.metrics_addr.is_none());
}

#[test]
fn a_full_custom_config_with_our_keys() {
    let text = "domain = 1\ndb = \"harvest.db\"\nledger = \"memory\"\nmetrics_addr = \"127.0.0.1:9100\"\n[backfill]\ntarget_deals = 500\n";
    let c = FileConfig::from_toml_str(text, "c.toml").unwrap();
    assert_eq!(c.db.as_deref(), Some("harvest.db"));
    assert_eq!(c.ledger.as_deref(), Some("memory"));
    assert_eq!(c.metrics_addr, Some("127.0.0.1:9100".parse().unwrap()));
    assert_eq!(c.run.backfill.target_deals, Some(500));
}

#[test]
fn the_cli_keys_share_the_file() {
    let c = FileConfig::from_toml_str(
        "base_url = \"http://127.0.0.1:1\"\nkey_file = \"k\"\ntimeout = \"60s\"\nconnect_timeout = \"5s\"\n",
        "config.toml",
    )
    .unwrap();
    assert_eq!(c.run, RunConfig::default_config());
    assert_eq!(c.base_url.as_deref(), Some("http://127.0.0.1:1"));
    assert_eq!(c.key_file, Some(PathBuf::from("k")));
    assert_eq!(c.timeout, Some(Duration::from_secs(60)));
    assert_eq!(c.connect_timeout, Some(Duration::from_secs(5)));
    // A typo of one of ours is caught like one of the run's.
    assert_eq!(
        err("bse_url = \"x\"\n"),
        "config.toml:1:1: unknown key \"bse_url\" in the top level; did you mean \"base_url\"?"
    );
    assert_eq!(
        err("timeout = 60\n"),
        "config.toml:1:11: timeout must be a duration string like \"5m\", \"12h\" or \"7d\", found an integer"
    );
}

#[test]
fn other_values() {
    assert_eq!(
        err("metrics_addr = \"localhost\"\n"),
        "config.toml:1:16: metrics_addr: \"localhost\" is not an address like \"127.0.0.1:9100\" or a port like \"9100\""
    );
    // A bare port binds loopback only.
    let c = FileConfig::from_toml_str("metrics_addr = \"9100\"\n", "config.toml").unwrap();
    assert_eq!(c.metrics_addr.unwrap().to_string(), "127.0.0.1:9100");
    assert!(err("ledger = \"mysql://x\"\n").starts_with("config.toml:1:10: ledger:"));
    assert_eq!(
        err("db = \" \"\n"),
        "config.toml:1:6: db: must not be empty"
    );
    assert_eq!(
        err("db = 5\n"),
        "config.toml:1:6: db must be a string, found an integer"
    );
}

#[test]
fn the_key_is_kept_secret() {
    let c = FileConfig::from_toml_str("key = \"abcdef0123456789\"\n", "c.toml").unwrap();
    assert_eq!(c.key.as_ref().map(|k| k.expose()), Some("abcdef0123456789"));
    let printed = format!("{c:?}");
    assert!(!printed.contains("abcdef0123456789"), "{printed}");
    assert!(printed.contains("***"));
}

#[test]
fn a_bad_key_is_refused_without_printing_it() {
    let e = FileConfig::from_toml_str("key = \"two words\"\n", "config.toml").unwrap_err();
    assert!(matches!(e, ConfigError::BadValue { .. }));
    assert!(!e.to_string().contains("two words"), "{e}");
}

#[test]
fn world_readable_key_files_warn() {
    assert!(key_file_too_open(0o100644, true));
    assert!(key_file_too_open(0o100640, true));
    assert!(key_file_too_open(0o100604, true));
    assert!(key_file_too_open(0o640, true));
    assert!(!key_file_too_open(0o100600, true));
    assert!(!key_file_too_open(0o600, true));
    assert!(!key_file_too_open(0o100644, false));
}

#[test]
fn load_makes_a_relative_key_file_relative_to_the_config() {
    let dir = std::env::temp_dir().join(format!("kh-cli-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("config.toml");
    std::fs::write(
        &path,
        "key_file = \"secret/key\"\n[refresh]\nperiod = \"1m\"\n",
    )
    .unwrap();
    let c = FileConfig::load(&path).unwrap();
    assert_eq!(c.key_file, Some(dir.join("secret/key")));
    assert_eq!(c.run.refresh.period, Duration::from_secs(60));
    let missing = FileConfig::load(&dir.join("nope.toml")).unwrap_err();
    assert!(missing.to_string().contains("cannot read config file"));
    std::fs::remove_dir_all(&dir).unwrap();
}
