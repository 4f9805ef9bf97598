//! `[compat]` of the config file (docs/contract.md §13, README "Use your existing POS").

use serde::Deserialize;
use std::net::SocketAddr;

/// `[compat]`: the vendor fronts. Both are always on the main listener; these add listeners on
/// the vendors' own ports and their HTTP Basic credentials.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CompatSettings {
    /// ATOL's web server's port, for a POS that cannot change the address: e.g.
    /// `127.0.0.1:16732`. None by default.
    pub atol_listen: Option<SocketAddr>,
    /// kkmserver's: e.g. `127.0.0.1:5893`. None by default.
    pub kkmserver_listen: Option<SocketAddr>,
    /// HTTP Basic credentials both fronts ask for when set (the vendors' own servers' login).
    /// Unset: loopback callers need none, as for the native intake; LAN callers send a POS
    /// token as the Basic password (README "Use your existing POS").
    pub user: Option<String>,
    pub password: Option<secrecy::SecretString>,
    /// The `pos_id` a front's receipts carry when the caller's token does not name its till.
    pub atol_pos_id: String,
    pub kkmserver_pos_id: String,
    /// How long `POST /api/v2/requests` waits for its job before answering `201` (the POS then
    /// polls `GET`); a finished job is `ready` at once.
    #[serde(rename = "atol_wait_ms", with = "crate::units::ms")]
    pub atol_wait: std::time::Duration,
    /// The web pages (their origins) that may call the fronts from the till's browser: a web POS
    /// or CRM using kkmserver's or ATOL's JavaScript client. None by default: a page of another
    /// origin is refused (403), as on every route of ours.
    pub allowed_origins: Vec<WebOrigin>,
}

impl CompatSettings {
    /// Whether a page of this `Origin` (as the browser sent it) may call the fronts.
    pub fn allows_origin(&self, origin: &str) -> bool {
        self.allowed_origins.iter().any(|o| o.0 == origin)
    }
}

/// A web page's origin as browsers send it in `Origin` (`https://crm.example.ru`, lower case, the
/// default port left out), made so from what the config says; not `*`, no path.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct WebOrigin(String);

impl WebOrigin {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for WebOrigin {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        let example = "scheme://host[:port] with no path, e.g. \"https://crm.example.ru\"";
        if text.trim() == "*" {
            return Err(format!(
                "\"*\" is not taken: every page the till's browser opens could print receipts; name each web POS \
                 page's origin ({example})"
            ));
        }
        let url = url::Url::parse(text.trim()).map_err(|e| format!("{text:?} is not an origin ({e}): {example}"))?;
        let bare = url.path() == "/"
            && url.query().is_none()
            && url.fragment().is_none()
            && url.username().is_empty()
            && url.password().is_none();
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() || !bare {
            return Err(format!("{text:?} is not an origin: {example}"));
        }
        Ok(WebOrigin(url.origin().ascii_serialization()))
    }
}

impl Default for CompatSettings {
    fn default() -> Self {
        CompatSettings {
            atol_listen: None,
            kkmserver_listen: None,
            user: None,
            password: None,
            atol_pos_id: "atol-web".into(),
            kkmserver_pos_id: "kkmserver".into(),
            atol_wait: std::time::Duration::from_secs(10),
            allowed_origins: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::CompatSettings;

    fn parse(origins: &str) -> Result<CompatSettings, String> {
        toml::from_str(&format!("allowed_origins = {origins}")).map_err(|e| e.to_string())
    }

    #[test]
    fn allowed_origins_are_kept_as_browsers_send_them_and_a_wildcard_or_a_path_is_refused() {
        let c = parse(r#"["HTTPS://CRM.Example.ru:443", "http://127.0.0.1:8080/", "https://касса.рф"]"#).unwrap();
        let kept: Vec<&str> = c.allowed_origins.iter().map(|o| o.as_str()).collect();
        assert_eq!(
            kept,
            [
                "https://crm.example.ru",
                "http://127.0.0.1:8080",
                "https://xn--80aa2a3aa.xn--p1ai"
            ]
        );
        assert!(c.allows_origin("https://crm.example.ru"));
        assert!(!c.allows_origin("https://crm.example.ru:8443"));
        assert!(!c.allows_origin("http://crm.example.ru"));
        assert!(!CompatSettings::default().allows_origin("http://127.0.0.1:8080"));
        for (bad, says) in [
            (r#"["*"]"#, "is not taken"),
            (r#"["https://crm.example.ru/pos"]"#, "no path"),
            (r#"["crm.example.ru"]"#, "is not an origin"),
            (r#"["file:///C:/pos.html"]"#, "is not an origin"),
            (r#"["https://user@crm.example.ru"]"#, "is not an origin"),
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.contains(says) && e.contains("allowed_origins"), "{bad}: {e}");
        }
    }
}
