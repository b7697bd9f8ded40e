//! The userinfo answer, read leniently: LinkedIn sends `locale` as an object
//! (`{"country": "US", "language": "en"}`) where OpenID Connect says a BCP 47 string, and other
//! providers send `email_verified` as the string `"true"`. Fields of the wrong type are treated
//! as absent rather than failing the link.

use serde_json::Value;

/// What the gateway reads from userinfo (or the id_token).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserInfo {
    /// Subject; must equal the id_token's.
    pub sub: String,
    /// Full name.
    pub name: Option<String>,
    /// Given name.
    pub given_name: Option<String>,
    /// Family name.
    pub family_name: Option<String>,
    /// Picture URL.
    pub picture: Option<String>,
    /// Email address.
    pub email: Option<String>,
    /// Whether the provider verified the email address.
    pub email_verified: bool,
    /// Locale as a BCP 47 tag (`en-US`), from either form.
    pub locale: Option<String>,
}

impl UserInfo {
    /// Reads a userinfo (or id_token claims) object. Only `sub` is required.
    pub fn from_json(v: &Value) -> Result<Self, String> {
        if !v.is_object() {
            return Err("userinfo is not a JSON object".into());
        }
        let sub = text(v, "sub").ok_or("userinfo has no sub")?;
        Ok(Self {
            sub,
            name: text(v, "name"),
            given_name: text(v, "given_name"),
            family_name: text(v, "family_name"),
            picture: text(v, "picture"),
            email: text(v, "email"),
            email_verified: match &v["email_verified"] {
                Value::Bool(b) => *b,
                Value::String(s) => s.trim().eq_ignore_ascii_case("true"),
                _ => false,
            },
            locale: locale(&v["locale"]),
        })
    }

    /// The display name: `name`, else given and family name joined.
    pub fn display_name(&self) -> Option<String> {
        self.name.clone().or_else(|| {
            let joined = [self.given_name.as_deref(), self.family_name.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ");
            (!joined.is_empty()).then_some(joined)
        })
    }

    /// The domain of the email address, lowercased, only when the provider verified it.
    pub fn verified_email_domain(&self) -> Option<String> {
        if !self.email_verified {
            return None;
        }
        let (local, domain) = self.email.as_deref()?.rsplit_once('@')?;
        let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
        let valid = !local.is_empty()
            && domain.contains('.')
            && domain.len() <= 253
            && domain.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
        valid.then_some(domain)
    }

    /// Fills fields this answer lacks from another (the id_token's claims).
    pub fn or(mut self, other: &Self) -> Self {
        self.name = self.name.or_else(|| other.name.clone());
        self.given_name = self.given_name.or_else(|| other.given_name.clone());
        self.family_name = self.family_name.or_else(|| other.family_name.clone());
        self.picture = self.picture.or_else(|| other.picture.clone());
        if self.email.is_none() {
            self.email = other.email.clone();
            self.email_verified = other.email_verified;
        }
        self.locale = self.locale.or_else(|| other.locale.clone());
        self
    }
}

fn text(v: &Value, key: &str) -> Option<String> {
    v[key].as_str().map(str::trim).filter(|s| !s.is_empty()).map(str::to_string)
}

fn locale(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().replace('_', "-")),
        Value::Object(_) => {
            let language = text(v, "language")?;
            Some(match text(v, "country") {
                Some(country) => format!("{language}-{country}"),
                None => language,
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_linkedins_shapes() {
        let u = UserInfo::from_json(&json!({
            "sub": "782bbtaQ", "name": "John Doe", "given_name": "John", "family_name": "Doe",
            "picture": "https://media.licdn.com/dms/image/abc", "locale": {"country": "US", "language": "en"},
            "email": "doe@Example.COM", "email_verified": true
        }))
        .expect("parses");
        assert_eq!(u.sub, "782bbtaQ");
        assert_eq!(u.locale.as_deref(), Some("en-US"));
        assert_eq!(u.verified_email_domain().as_deref(), Some("example.com"));
        assert_eq!(u.display_name().as_deref(), Some("John Doe"));
    }

    #[test]
    fn reads_other_shapes_leniently() {
        let u = UserInfo::from_json(&json!({
            "sub": "s", "given_name": "Ada", "family_name": "Lovelace", "picture": null,
            "locale": "en_GB", "email": "ada@example.org", "email_verified": "TRUE", "extra": [1, 2]
        }))
        .expect("parses");
        assert_eq!(u.locale.as_deref(), Some("en-GB"));
        assert_eq!(u.picture, None);
        assert_eq!(u.display_name().as_deref(), Some("Ada Lovelace"));
        assert_eq!(u.verified_email_domain().as_deref(), Some("example.org"));

        let u = UserInfo::from_json(&json!({"sub": "s", "email": "x@example.org", "email_verified": "false",
                                              "locale": {"language": "fr"}, "name": 42}))
        .expect("parses");
        assert_eq!(u.verified_email_domain(), None, "unverified addresses give no domain");
        assert_eq!(u.locale.as_deref(), Some("fr"));
        assert_eq!(u.name, None, "a name of the wrong type is absent");
        assert_eq!(u.display_name(), None);

        let u = UserInfo::from_json(&json!({"sub": "s", "email": "x@example.org"})).expect("parses");
        assert!(!u.email_verified, "missing email_verified is false");
        assert!(UserInfo::from_json(&json!({"name": "no sub"})).is_err());
        assert!(UserInfo::from_json(&json!("text")).is_err());
    }

    #[test]
    fn refuses_odd_email_domains() {
        for email in ["@example.com", "a@localhost", "a@exa mple.com", "no-at-sign", "a@ex\u{e4}mple.com"] {
            let u = UserInfo { email: Some(email.into()), email_verified: true, ..UserInfo::default() };
            assert_eq!(u.verified_email_domain(), None, "{email}");
        }
    }

    #[test]
    fn userinfo_fields_win_and_id_token_fills_gaps() {
        let info = UserInfo { sub: "s".into(), name: Some("From Userinfo".into()), ..UserInfo::default() };
        let claims = UserInfo {
            sub: "s".into(),
            name: Some("From Token".into()),
            picture: Some("https://p".into()),
            email: Some("a@example.com".into()),
            email_verified: true,
            ..UserInfo::default()
        };
        let merged = info.or(&claims);
        assert_eq!(merged.name.as_deref(), Some("From Userinfo"));
        assert_eq!(merged.picture.as_deref(), Some("https://p"));
        assert_eq!(merged.verified_email_domain().as_deref(), Some("example.com"));
    }
}
