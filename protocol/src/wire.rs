//! Frames nodes exchange: an envelope travels with the delegation certificate of its signing
//! device, so a node that never saw that device can check it on its own.

use crate::envelope::Envelope;

/// A wallet's signed SIWE text delegating a device key (see [`crate::delegation`]).
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Certificate {
    /// The SIWE text exactly as signed.
    #[prost(string, tag = "1")]
    pub message: String,
    /// The wallet's signature over it.
    #[prost(bytes = "vec", tag = "2")]
    pub signature: Vec<u8>,
}

/// An envelope with the certificate of its signer.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Relay {
    /// The envelope as received from its author.
    #[prost(message, optional, tag = "1")]
    pub envelope: Option<Envelope>,
    /// Delegation of `envelope.signer` by the sender's wallet.
    #[prost(message, optional, tag = "2")]
    pub certificate: Option<Certificate>,
}
