//! Settings: precedence, sections, checks, and every documented example accepted.
use super::*;
use crate::units::DAY;
use std::time::Duration;

#[test]
fn flags_win_over_the_config_file_which_wins_over_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        "listen = \"127.0.0.1:9001\"\nofd_url = \"http://127.0.0.1:7000/\"\n[buffer]\ncapacity = 7\n[sync]\nconcurrency = 1\n",
    )
    .unwrap();
    let s = Settings::resolve(Flags {
        config: Some(cfg.clone()),
        data_dir: Some(dir.path().into()),
        listen: Some("127.0.0.1:9002".parse().unwrap()),
        ..Flags::default()
    })
    .unwrap();
    assert_eq!(s.listen.port(), 9002);
    assert_eq!(s.ofd_url.as_deref(), Some("http://127.0.0.1:7000"));
    assert_eq!(s.buffer.capacity, 7);
    assert_eq!(s.sync.concurrency, 1);
    assert_eq!(s.sync.max_attempts, 20);
    assert_eq!(s.config_file, Some(cfg));
}

#[test]
fn a_typo_in_the_config_file_is_an_error_that_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, "[buffer]\ncapacty = 7\n").unwrap();
    let err = Settings::resolve(Flags {
        config: Some(cfg),
        ..Flags::default()
    })
    .unwrap_err();
    assert!(format!("{err:#}").contains("c.toml"), "{err:#}");
}

#[test]
fn a_missing_explicit_config_file_is_an_error() {
    let err = Settings::resolve(Flags {
        config: Some("/nonexistent/k.toml".into()),
        ..Flags::default()
    });
    assert!(err.is_err());
}

#[test]
fn defaults_match_the_contract() {
    let s = Settings::for_data_dir("/tmp/x");
    assert_eq!(s.buffer.capacity, 100_000);
    assert_eq!(s.sync, SyncPolicy::default());
    assert_eq!(s.sync.batch_size, 50);
    assert_eq!(s.breaker.failure_threshold, 5);
    assert_eq!(s.alerts.fn_warn_age, Duration::from_secs(3 * DAY));
    assert!(s.ofd_url.is_none());
    assert_eq!(s.buffer.retention, Duration::from_secs(30 * DAY));
    assert!(s.http.pos_token.is_none());
}

/// Every ```toml block of the README, the contract and the package's config file.
fn documented_configs() -> Vec<(&'static str, String)> {
    let docs = [
        ("README.md", include_str!("../../../README.md")),
        ("docs/contract.md", include_str!("../../../docs/contract.md")),
    ];
    let mut blocks = vec![(
        "deploy/debian/config.toml",
        include_str!("../../../deploy/debian/config.toml").to_string(),
    )];
    for (name, text) in docs {
        let mut rest = text;
        while let Some(start) = rest.find("```toml\n") {
            let body = &rest[start + 8..];
            let end = body.find("```").unwrap_or(body.len());
            blocks.push((name, body[..end].to_string()));
            rest = &body[end..];
        }
    }
    blocks
}

#[test]
fn every_config_example_in_the_docs_is_one_the_program_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    let blocks = documented_configs();
    assert!(blocks.len() >= 4, "the examples were not found: {}", blocks.len());
    for (name, text) in blocks {
        std::fs::write(&cfg, &text).unwrap();
        let resolved = Settings::resolve(Flags {
            config: Some(cfg.clone()),
            data_dir: Some(dir.path().into()),
            ..Flags::default()
        });
        assert!(
            resolved.is_ok(),
            "{name}: {:#}\n{text}",
            resolved.err().map(|e| format!("{e:#}")).unwrap_or_default()
        );
    }
}

/// Asserts whether the program starts with this config file (written into `dir`).
fn starts_with_config(dir: &std::path::Path, text: &str, ok: bool) {
    let cfg = dir.join("c.toml");
    std::fs::write(&cfg, text).unwrap();
    let r = Settings::resolve(Flags {
        config: Some(cfg),
        data_dir: Some(dir.into()),
        ..Flags::default()
    });
    assert_eq!(r.is_ok(), ok, "{text}: {:?}", r.err());
}

#[test]
fn atol_credentials_go_together_and_never_in_clear_text_to_another_machine() {
    let dir = tempfile::tempdir().unwrap();
    let check = |text: &str, ok: bool| starts_with_config(dir.path(), text, ok);
    for (url, user, password, ok) in [
        ("http://127.0.0.1:16732", Some("kassa"), Some("p"), true),
        ("http://localhost:16732", Some("kassa"), Some("p"), true),
        ("https://192.168.1.5:16732", Some("kassa"), Some("p"), true),
        ("http://192.168.1.5:16732", Some("kassa"), Some("p"), false),
        ("http://192.168.1.5:16732", None, None, true),
        ("http://127.0.0.1:16732", Some("kassa"), None, false),
        ("http://127.0.0.1:16732", None, Some("p"), false),
    ] {
        let mut text = format!("[kkt]\ndriver = \"atol\"\n[kkt.atol]\nurl = \"{url}\"\n");
        if let Some(u) = user {
            text.push_str(&format!("user = \"{u}\"\n"));
        }
        if let Some(p) = password {
            text.push_str(&format!("password = \"{p}\"\n"));
        }
        check(&text, ok);
    }
    assert!(loopback_url("http://[::1]:16732/api") && !loopback_url("http://user@10.0.0.1"));
    // A certificate to trust belongs to an https:// server only.
    for (url, ok) in [("http://127.0.0.1:16732", false), ("https://127.0.0.1:16732", true)] {
        check(
            &format!("[kkt]\ndriver = \"atol\"\n[kkt.atol]\nurl = \"{url}\"\nca_file = \"/etc/ssl/ca.pem\"\n"),
            ok,
        );
    }
}

#[test]
fn a_retention_under_a_day_and_an_absurd_cap_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    for (text, needle) in [
        ("[buffer]\nretention_days = 0.01\n", "at least 1"),
        ("[buffer]\nmax_db_mb = 9999999999\n", "1 TiB"),
    ] {
        std::fs::write(&cfg, text).unwrap();
        let err = Settings::resolve(Flags {
            config: Some(cfg.clone()),
            data_dir: Some(dir.path().into()),
            ..Flags::default()
        })
        .unwrap_err();
        assert!(format!("{err:#}").contains(needle), "{err:#}");
    }
}

#[test]
fn a_non_loopback_address_needs_a_pos_token() {
    let dir = tempfile::tempdir().unwrap();
    let flags = |token: Option<&str>| Flags {
        config: Some(dir.path().join("c.toml")),
        data_dir: Some(dir.path().into()),
        listen: Some("0.0.0.0:8000".parse().unwrap()),
        pos_token: token.map(str::to_string),
        ..Flags::default()
    };
    std::fs::write(
        dir.path().join("c.toml"),
        "[buffer]\nretention_days = 1.5\nmax_db_mb = 3\n",
    )
    .unwrap();
    let err = Settings::resolve(flags(None)).unwrap_err();
    assert!(format!("{err:#}").contains("POS token"), "{err:#}");
    assert!(
        Settings::resolve(flags(Some("  "))).is_err(),
        "a blank token is no token"
    );
    let short = Settings::resolve(flags(Some("till-secret"))).unwrap_err();
    assert!(format!("{short:#}").contains("at least 32"), "{short:#}");
    assert!(
        !format!("{short:#}").contains("till-secret"),
        "the message never shows the token"
    );
    let s = Settings::resolve(flags(Some("till-secret-0123456789abcdef-0123456789"))).unwrap();
    assert_eq!(
        s.http.pos_token.as_ref().map(|t| t.expose_secret()),
        Some("till-secret-0123456789abcdef-0123456789")
    );
    assert_eq!(s.buffer.retention, Duration::from_secs(DAY * 3 / 2));
    assert_eq!(s.buffer.max_db_bytes, 3 << 20);
}

#[test]
fn every_section_of_the_file_is_read_onto_the_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        "[kkt]\nprint_latency_ms = 250\nshift_hours = 12\nanswer_within_ms = 1500\n\
         [ofd]\ntimeout_secs = 2.5\n[breaker]\nopen_initial_secs = 1\nopen_secs = 30\n\
         [alerts]\nfn_warn_days = 2\n[desktop]\nautostart = true\n",
    )
    .unwrap();
    let s = Settings::resolve(Flags {
        config: Some(cfg),
        data_dir: Some(dir.path().into()),
        ..Flags::default()
    })
    .unwrap();
    assert_eq!(s.kkt.print_latency, Duration::from_millis(250));
    assert_eq!(s.kkt.shift_length, Duration::from_secs(12 * 3600));
    assert_eq!(s.kkt.answer_within, Duration::from_millis(1500));
    assert_eq!(
        s.kkt.fn_number, "9999999999999999",
        "untouched keys keep their defaults"
    );
    assert_eq!(s.ofd.timeout, Duration::from_millis(2500));
    assert_eq!(s.ofd.connect_timeout, Duration::from_secs(5));
    assert_eq!(
        (s.breaker.open_initial, s.breaker.open_max),
        (Duration::from_secs(1), Duration::from_secs(30))
    );
    assert_eq!(s.alerts.fn_warn_age, Duration::from_secs(2 * DAY));
    assert_eq!(s.desktop.autostart, Some(true));
}

#[test]
fn the_fiscal_section_gives_defaults_and_its_values_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    let resolve = |text: &str| {
        std::fs::write(&cfg, text).unwrap();
        Settings::resolve(Flags {
            config: Some(cfg.clone()),
            data_dir: Some(dir.path().into()),
            ..Flags::default()
        })
    };
    let s = resolve(
        "[fiscal]\ntaxation = \"usn_income\"\ndefault_vat = \"vat22\"\ncashier_name = \"Петров\"\ntimezone = \"Europe/Moscow\"\n[kkt]\nauto_shift = false\n",
    )
    .unwrap();
    let d = s.fiscal.defaults();
    assert_eq!(
        (d.taxation, d.vat),
        (crate::receipt::Taxation::UsnIncome, crate::receipt::Vat::Vat22)
    );
    assert_eq!(d.cashier.unwrap().name, "Петров");
    assert!(!s.kkt.auto_shift);
    for (text, needle) in [
        ("[fiscal]\ntimezone = \"Moon/Base\"\n", "not a time zone"),
        ("[fiscal]\ndefault_vat = \"vat18\"\n", "vat18"),
        ("[fiscal]\ncashier_inn = \"12\"\n", "12 digits"),
    ] {
        let err = resolve(text).unwrap_err();
        assert!(format!("{err:#}").contains(needle), "{err:#}");
    }
}

#[test]
fn a_negative_duration_names_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, "[sync]\nbackoff_base_secs = -1\n").unwrap();
    let err = Settings::resolve(Flags {
        config: Some(cfg),
        data_dir: Some(dir.path().into()),
        ..Flags::default()
    })
    .unwrap_err();
    let text = format!("{err:#}");
    assert!(
        text.contains("backoff_base_secs") && text.contains("not a valid number of seconds"),
        "{text}"
    );
}

#[test]
fn tokens_never_show_in_a_debug_print_of_the_settings() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        "admin_token = \"adm-secret-1-0123456789abcdef-0123456789\"\n[ofd]\ntoken = \"ofd-secret-2\"\n",
    )
    .unwrap();
    let s = Settings::resolve(Flags {
        config: Some(cfg),
        data_dir: Some(dir.path().into()),
        pos_token: Some("pos-secret-3-0123456789abcdef-0123456789".into()),
        ..Flags::default()
    })
    .unwrap();
    let printed = format!("{s:?}");
    for secret in [
        "adm-secret-1-0123456789abcdef-0123456789",
        "ofd-secret-2",
        "pos-secret-3-0123456789abcdef-0123456789",
    ] {
        assert!(!printed.contains(secret), "{secret} leaked: {printed}");
    }
    assert_eq!(
        s.admin_token.as_ref().map(|t| t.expose_secret()),
        Some("adm-secret-1-0123456789abcdef-0123456789")
    );
    assert_eq!(s.ofd.token.as_ref().map(|t| t.expose_secret()), Some("ofd-secret-2"));
}

#[test]
fn the_fronts_login_comes_whole_and_with_a_password() {
    let dir = tempfile::tempdir().unwrap();
    for (text, ok) in [
        ("[compat]\nuser = \"Admin\"\npassword = \"kassa\"\n", true),
        ("[compat]\nuser = \"Admin\"\n", false),
        ("[compat]\npassword = \"kassa\"\n", false),
        ("[compat]\nuser = \"Admin\"\npassword = \"\"\n", false),
        ("[compat]\nuser = \"a:b\"\npassword = \"kassa\"\n", false),
        (
            "[compat]\natol_listen = \"127.0.0.1:16732\"\nkkmserver_listen = \"127.0.0.1:5893\"\n",
            true,
        ),
    ] {
        starts_with_config(dir.path(), text, ok);
    }
}
