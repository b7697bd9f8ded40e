//! The OpenID Connect relying party, as LinkedIn's "Sign In with LinkedIn using OpenID Connect"
//! needs it: authorization code flow, `client_secret_post`, RS256 id_tokens from a JWKS that
//! rotates, and a userinfo endpoint. Endpoints come from configuration or from the issuer's
//! discovery document; nothing about LinkedIn is written here.

pub mod id_token;
pub mod userinfo;

use std::{sync::Arc, time::Duration};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use rsa::sha2::{Digest, Sha256};
use serde::Deserialize;
use serde_json::Value;

use dchat_keyset::KeyCache;

use crate::config::LinkedInConfig;
pub use id_token::{IdTokenError, RsaKeys};
pub use userinfo::UserInfo;

/// Why a step with the provider failed. Every variant has its own stable [`OidcError::code`].
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// The provider could not be reached, timed out or answered 5xx.
    #[error("the identity provider is unavailable: {0}")]
    Unavailable(String),
    /// The token endpoint refused the code (`invalid_grant`: used, expired, or not this client's).
    #[error("the provider refused the authorization code: {0}")]
    CodeRejected(String),
    /// The provider answered with another error, or something that is not OpenID Connect.
    #[error("the identity provider answered with an error: {error}: {description}")]
    Provider {
        /// OAuth error code, or a short description of what was wrong.
        error: String,
        /// Details.
        description: String,
    },
    /// The id_token was refused.
    #[error(transparent)]
    IdToken(#[from] IdTokenError),
    /// The userinfo answer is not usable.
    #[error("userinfo is not usable: {0}")]
    Userinfo(String),
    /// userinfo describes another subject than the id_token.
    #[error("userinfo is about another subject than the id_token")]
    UserinfoSubject,
}

impl OidcError {
    /// Stable snake_case code, for API clients.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unavailable(_) => "provider_unavailable",
            Self::CodeRejected(_) => "code_rejected",
            Self::Provider { .. } => "provider_error",
            Self::IdToken(e) => e.code(),
            Self::Userinfo(_) => "userinfo_invalid",
            Self::UserinfoSubject => "userinfo_subject_mismatch",
        }
    }
}

/// The provider's endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// Authorization endpoint.
    pub authorization: String,
    /// Token endpoint.
    pub token: String,
    /// Userinfo endpoint.
    pub userinfo: String,
    /// JWKS URI.
    pub jwks: String,
}

/// A successful token endpoint answer.
#[derive(Debug, Clone, Deserialize)]
pub struct TokenResponse {
    /// Access token for userinfo.
    pub access_token: String,
    /// The id_token.
    #[serde(default)]
    pub id_token: Option<String>,
}

/// What the provider says about a user, once every check passed.
#[derive(Debug, Clone)]
pub struct Verified {
    /// Subject (`sub`), the same in the id_token and userinfo.
    pub subject: String,
    /// userinfo, with gaps filled from the id_token's claims.
    pub info: UserInfo,
}

/// The relying party.
#[derive(Debug)]
pub struct Oidc {
    config: LinkedInConfig,
    client_secret: String,
    redirect_uri: String,
    http: reqwest::Client,
    endpoints: tokio::sync::Mutex<Option<Arc<Endpoints>>>,
    keys: KeyCache<RsaKeys>,
}

impl Oidc {
    /// A relying party for `config`, redirecting to `redirect_uri`.
    pub fn new(config: LinkedInConfig, client_secret: String, redirect_uri: String) -> eyre::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(config.timeout_secs))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("dchat-gateway/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let keys = KeyCache::new(http.clone(), Duration::from_secs(config.jwks_min_refresh_secs), RsaKeys::from_jwks);
        Ok(Self { config, client_secret, redirect_uri, http, endpoints: tokio::sync::Mutex::new(None), keys })
    }

    /// The configured issuer.
    pub fn issuer(&self) -> &str {
        &self.config.issuer
    }

    /// Whether PKCE is on.
    pub fn pkce(&self) -> bool {
        self.config.pkce
    }

    /// The endpoints: configured ones, the others from discovery (fetched once, then kept; a
    /// failed discovery is tried again on the next call).
    pub async fn endpoints(&self) -> Result<Arc<Endpoints>, OidcError> {
        let mut cached = self.endpoints.lock().await;
        if let Some(e) = cached.as_ref() {
            return Ok(e.clone());
        }
        let c = &self.config;
        let configured = [&c.authorization_endpoint, &c.token_endpoint, &c.userinfo_endpoint, &c.jwks_uri]
            .iter()
            .all(|e| e.is_some());
        let discovered = if configured { Value::Null } else { self.discover().await? };
        let pick = |configured: &Option<String>, key: &str| -> Result<String, OidcError> {
            configured.clone().or_else(|| discovered[key].as_str().map(str::to_string)).ok_or_else(|| {
                OidcError::Provider {
                    error: "discovery_incomplete".into(),
                    description: format!("the discovery document has no {key}; set it in [linkedin]"),
                }
            })
        };
        let endpoints = Arc::new(Endpoints {
            authorization: pick(&c.authorization_endpoint, "authorization_endpoint")?,
            token: pick(&c.token_endpoint, "token_endpoint")?,
            userinfo: pick(&c.userinfo_endpoint, "userinfo_endpoint")?,
            jwks: pick(&c.jwks_uri, "jwks_uri")?,
        });
        *cached = Some(endpoints.clone());
        Ok(endpoints)
    }

    async fn discover(&self) -> Result<Value, OidcError> {
        let url = format!("{}/.well-known/openid-configuration", self.config.issuer.trim_end_matches('/'));
        let resp = self.http.get(&url).send().await.map_err(unavailable)?;
        if resp.status().is_server_error() || resp.status() == reqwest::StatusCode::TOO_MANY_REQUESTS {
            return Err(OidcError::Unavailable(format!("discovery answered {}", resp.status())));
        }
        if !resp.status().is_success() {
            return Err(provider_error("discovery_failed", format!("{url} answered {}", resp.status())));
        }
        let doc: Value = resp.json().await.map_err(|e| provider_error("discovery_invalid", e.without_url()))?;
        // OpenID Connect Discovery 4.3: the document must name the issuer it was fetched for.
        if doc["issuer"].as_str() != Some(self.config.issuer.as_str()) {
            return Err(provider_error(
                "discovery_issuer_mismatch",
                format!("discovery names issuer {}, configured {}", doc["issuer"], self.config.issuer),
            ));
        }
        tracing::info!(target: "gateway::oidc", issuer = %self.config.issuer, "read the discovery document");
        Ok(doc)
    }

    /// The URL that sends the user to the provider.
    pub async fn authorization_url(
        &self,
        state: &str,
        nonce: &str,
        code_verifier: Option<&str>,
    ) -> Result<String, OidcError> {
        let endpoints = self.endpoints().await?;
        let mut url = url::Url::parse(&endpoints.authorization)
            .map_err(|e| provider_error("authorization_endpoint_invalid", e))?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code")
                .append_pair("client_id", &self.config.client_id)
                .append_pair("redirect_uri", &self.redirect_uri)
                .append_pair("scope", &self.config.scopes.join(" "))
                .append_pair("state", state)
                .append_pair("nonce", nonce);
            if let Some(verifier) = code_verifier {
                q.append_pair("code_challenge", &pkce_challenge(verifier)).append_pair("code_challenge_method", "S256");
            }
        }
        Ok(url.into())
    }

    /// Exchanges the code, checks the id_token against `nonce`, reads userinfo.
    pub async fn complete(
        &self,
        code: &str,
        code_verifier: Option<&str>,
        nonce: &str,
        now: i64,
    ) -> Result<Verified, OidcError> {
        let tokens = self.exchange(code, code_verifier).await?;
        let id_token = tokens.id_token.as_deref().ok_or(IdTokenError::Missing)?;
        let (subject, claims) = self.verify_id_token(id_token, nonce, now).await?;
        let info = self.userinfo(&tokens.access_token).await?;
        if info.sub != subject {
            return Err(OidcError::UserinfoSubject);
        }
        let from_token = UserInfo::from_json(&claims).unwrap_or_default();
        Ok(Verified { subject, info: info.or(&from_token) })
    }

    async fn exchange(&self, code: &str, code_verifier: Option<&str>) -> Result<TokenResponse, OidcError> {
        let endpoints = self.endpoints().await?;
        let form = {
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            form.append_pair("grant_type", "authorization_code")
                .append_pair("code", code)
                .append_pair("redirect_uri", &self.redirect_uri)
                .append_pair("client_id", &self.config.client_id)
                .append_pair("client_secret", &self.client_secret);
            if let Some(v) = code_verifier {
                form.append_pair("code_verifier", v);
            }
            form.finish()
        };
        let resp = self
            .http
            .post(&endpoints.token)
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(reqwest::header::ACCEPT, "application/json")
            .body(form)
            .send()
            .await
            .map_err(unavailable)?;
        let status = resp.status();
        if status.is_server_error() {
            return Err(OidcError::Unavailable(format!("token endpoint answered {status}")));
        }
        let body: Value = resp.json().await.map_err(|e| provider_error("token_response_invalid", e.without_url()))?;
        if !status.is_success() {
            let error = body["error"].as_str().unwrap_or("unknown_error").to_string();
            let description = body["error_description"].as_str().unwrap_or_default().to_string();
            return Err(if error == "invalid_grant" {
                OidcError::CodeRejected(description)
            } else {
                OidcError::Provider { error, description }
            });
        }
        serde_json::from_value(body).map_err(|e| provider_error("token_response_invalid", e))
    }

    /// Checks an id_token; fetches the provider's keys again once when the token names a key id
    /// they lack (key rotation), at most once per `jwks_min_refresh_secs`.
    async fn verify_id_token(&self, token: &str, nonce: &str, now: i64) -> Result<(String, Value), OidcError> {
        let parsed = id_token::IdToken::parse(token)?;
        let endpoints = self.endpoints().await?;
        let kid = parsed.kid.as_deref();
        let keys = self.keys.get(&endpoints.jwks).await.map_err(|e| OidcError::Unavailable(e.to_string()))?;
        let key = match keys.find(kid) {
            Some(key) => key.clone(),
            None => {
                tracing::info!(target: "gateway::oidc", ?kid, "id_token names an unknown key; fetching the key set");
                let fresh =
                    self.keys.refresh(&endpoints.jwks).await.map_err(|e| OidcError::Unavailable(e.to_string()))?;
                fresh
                    .as_ref()
                    .and_then(|k| k.find(kid).cloned())
                    .ok_or_else(|| IdTokenError::UnknownKey(parsed.kid.clone()))?
            }
        };
        parsed.verify_signature(&key)?;
        let subject = parsed.check(&id_token::Expect {
            issuer: &self.config.issuer,
            client_id: &self.config.client_id,
            nonce,
            now,
            skew: self.config.clock_skew_secs,
        })?;
        Ok((subject, parsed.claims))
    }

    async fn userinfo(&self, access_token: &str) -> Result<UserInfo, OidcError> {
        let endpoints = self.endpoints().await?;
        let resp = self
            .http
            .get(&endpoints.userinfo)
            .bearer_auth(access_token)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(unavailable)?;
        let status = resp.status();
        if status.is_server_error() {
            return Err(OidcError::Unavailable(format!("userinfo answered {status}")));
        }
        if !status.is_success() {
            return Err(provider_error("userinfo_refused", format!("userinfo answered {status}")));
        }
        let body: Value = resp.json().await.map_err(|e| OidcError::Userinfo(e.without_url().to_string()))?;
        UserInfo::from_json(&body).map_err(OidcError::Userinfo)
    }
}

/// A new PKCE code verifier (RFC 7636: 43 characters of base64url from 32 random bytes).
pub fn pkce_verifier() -> String {
    B64.encode(rand::random::<[u8; 32]>())
}

/// The S256 challenge of a verifier.
pub fn pkce_challenge(verifier: &str) -> String {
    B64.encode(Sha256::digest(verifier.as_bytes()))
}

fn unavailable(e: reqwest::Error) -> OidcError {
    OidcError::Unavailable(e.without_url().to_string())
}

fn provider_error(error: &str, description: impl std::fmt::Display) -> OidcError {
    OidcError::Provider { error: error.into(), description: description.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_challenge_matches_rfc7636_appendix_b() {
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert_eq!(pkce_verifier().len(), 43);
    }
}
