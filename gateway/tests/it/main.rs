//! Integration tests: the gateway against a real OpenID Connect provider (oidc-provider,
//! configured like LinkedIn), a real dchat node and PostgreSQL, all on loopback.

mod common;
mod link;
mod negative;
mod startup;
