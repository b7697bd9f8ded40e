// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {MessageHashUtils} from "@openzeppelin/contracts/utils/cryptography/MessageHashUtils.sol";

/// @title ProfileAttestationVerifier
/// @notice Checks dchat gateway profile attestations on-chain: EIP-712 `ProfileAttestation` typed
///         data signed by one gateway key (see docs/gateway.md).
/// @dev The domain is the gateway's: name "dchat-gateway", version "1", the chain id the gateway
///      is configured with (`attestation.chain_id`) and no verifying contract, so one gateway's
///      attestations verify on any chain this contract is deployed to. Revocation (unlink, re-link)
///      is served by the gateway only; this contract checks the signature and the validity window.
contract ProfileAttestationVerifier {
    /// @notice The signed fields (strings are empty when the profile had no such value).
    struct ProfileAttestation {
        address wallet;
        bytes32 subjectHash;
        string name;
        string picture;
        string emailDomain;
        uint64 issuedAt;
        uint64 expiry;
    }

    /// @notice The gateway address given was zero.
    error ZeroGateway();

    /// @notice EIP-712 type hash of `ProfileAttestation`.
    bytes32 public constant ATTESTATION_TYPEHASH = keccak256(
        "ProfileAttestation(address wallet,bytes32 subjectHash,string name,string picture,string emailDomain,uint64 issuedAt,uint64 expiry)"
    );

    /// @notice EIP-712 type hash of the domain (no verifying contract, no salt).
    bytes32 public constant DOMAIN_TYPEHASH = keccak256("EIP712Domain(string name,string version,uint256 chainId)");

    /// @notice The gateway address whose signatures count.
    address public immutable gateway;

    /// @notice The EIP-712 domain separator of the gateway's attestations.
    bytes32 public immutable domainSeparator;

    /// @param gateway_ The gateway's signing address (`GET /v1/info` `signer`).
    /// @param chainId The gateway's `attestation.chain_id`.
    constructor(address gateway_, uint256 chainId) {
        if (gateway_ == address(0)) revert ZeroGateway();
        gateway = gateway_;
        domainSeparator = keccak256(abi.encode(DOMAIN_TYPEHASH, keccak256("dchat-gateway"), keccak256("1"), chainId));
    }

    /// @notice The EIP-712 digest the gateway signs for `a`.
    /// @param a The attestation's fields.
    /// @return The digest keccak256(0x1901 ‖ domainSeparator ‖ hashStruct(a)).
    function digest(ProfileAttestation calldata a) public view returns (bytes32) {
        bytes32 structHash = keccak256(
            abi.encode(
                ATTESTATION_TYPEHASH,
                a.wallet,
                a.subjectHash,
                keccak256(bytes(a.name)),
                keccak256(bytes(a.picture)),
                keccak256(bytes(a.emailDomain)),
                a.issuedAt,
                a.expiry
            )
        );
        return MessageHashUtils.toTypedDataHash(domainSeparator, structHash);
    }

    /// @notice The address that signed `a`, or zero when the signature is malformed.
    /// @param a The attestation's fields.
    /// @param signature 65 bytes r ‖ s ‖ v, as the gateway serves it.
    /// @return The recovered signer, or address(0).
    function signer(ProfileAttestation calldata a, bytes calldata signature) public view returns (address) {
        (address recovered, ECDSA.RecoverError err,) = ECDSA.tryRecoverCalldata(digest(a), signature);
        return err == ECDSA.RecoverError.NoError ? recovered : address(0);
    }

    /// @notice Whether the gateway signed `a` and the current block time is in [issuedAt, expiry).
    /// @param a The attestation's fields.
    /// @param signature 65 bytes r ‖ s ‖ v.
    /// @return True for a valid, unexpired gateway attestation.
    function isValid(ProfileAttestation calldata a, bytes calldata signature) external view returns (bool) {
        return signer(a, signature) == gateway && a.issuedAt <= block.timestamp && block.timestamp < a.expiry;
    }
}
