// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {Test} from "./utils/Test.sol";
import {ProfileAttestationVerifier} from "../src/ProfileAttestationVerifier.sol";

contract ProfileAttestationVerifierTest is Test {
    ProfileAttestationVerifier internal verifier;

    /// @dev anvil's second development key: the key the gateway's and the protocol crate's tests use.
    uint256 internal constant GATEWAY_KEY = 0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d;
    address internal constant GATEWAY = 0x70997970C51812dc3A010C7d01b50e0d17dc79C8;

    /// @dev The vector pinned in protocol/src/attestation.rs (the same digest and signature come
    ///      from viem's hashTypedData and signTypedData), chain id 1.
    bytes32 internal constant VECTOR_DIGEST = 0x185fc16e0bd7b062fd0d1685bbe42ca5e5eca20f4789e8b320608ba9a4e2580c;
    bytes internal constant VECTOR_SIGNATURE =
        hex"765b47829bb190a5d0177cd81bb85aa8c7350ac5e180699f4db09e7f4f6544ca063f57ebfbcbd8e0d652c7828c1810a36f5b01e06e7f882ec6ef1f12de62b3171c";

    function setUp() public {
        verifier = new ProfileAttestationVerifier(GATEWAY, 1);
        vm.warp(1_700_000_100);
    }

    function sample() internal pure returns (ProfileAttestationVerifier.ProfileAttestation memory) {
        return ProfileAttestationVerifier.ProfileAttestation({
            wallet: 0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2,
            subjectHash: keccak256("782bbtaQ"),
            name: "Alice Example",
            picture: "https://media.licdn.example/alice.jpg",
            emailDomain: "example.com",
            issuedAt: 1_700_000_000,
            expiry: 1_715_552_000
        });
    }

    function sign(uint256 key, ProfileAttestationVerifier.ProfileAttestation memory a)
        internal
        view
        returns (bytes memory)
    {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, verifier.digest(a));
        return abi.encodePacked(r, s, v);
    }

    function test_Digest_MatchesTheGatewayVector() public view {
        assertEq(verifier.digest(sample()), VECTOR_DIGEST, "digest");
        assertEq(vm.addr(GATEWAY_KEY), GATEWAY, "gateway address");
    }

    function test_IsValid_TheGatewaysSignature() public view {
        assertEq(verifier.signer(sample(), VECTOR_SIGNATURE), GATEWAY, "signer");
        assertTrue(verifier.isValid(sample(), VECTOR_SIGNATURE), "valid");
    }

    function test_IsValid_FalseWhen_AFieldChanged() public view {
        ProfileAttestationVerifier.ProfileAttestation memory a = sample();
        a.name = "Mallory";
        assertFalse(verifier.isValid(a, VECTOR_SIGNATURE), "name");
        a = sample();
        a.wallet = address(0xBEEF);
        assertFalse(verifier.isValid(a, VECTOR_SIGNATURE), "wallet");
        a = sample();
        a.expiry += 1;
        assertFalse(verifier.isValid(a, VECTOR_SIGNATURE), "expiry");
    }

    function test_IsValid_FalseOutsideTheWindow() public {
        vm.warp(1_699_999_999);
        assertFalse(verifier.isValid(sample(), VECTOR_SIGNATURE), "before issuedAt");
        vm.warp(1_700_000_000);
        assertTrue(verifier.isValid(sample(), VECTOR_SIGNATURE), "at issuedAt");
        vm.warp(1_715_552_000);
        assertFalse(verifier.isValid(sample(), VECTOR_SIGNATURE), "at expiry");
    }

    function test_IsValid_FalseWhen_AnotherKeySigned() public view {
        bytes memory forged = sign(0xA11CE, sample());
        assertEq(verifier.signer(sample(), forged), vm.addr(0xA11CE), "recovers the other key");
        assertFalse(verifier.isValid(sample(), forged), "not the gateway");
    }

    function test_IsValid_FalseWhen_TheDomainDiffers() public {
        ProfileAttestationVerifier other = new ProfileAttestationVerifier(GATEWAY, 10);
        assertFalse(other.isValid(sample(), VECTOR_SIGNATURE), "chain id 10");
    }

    function test_Signer_ZeroWhen_TheSignatureIsMalformed() public view {
        assertEq(verifier.signer(sample(), hex"1234"), address(0), "short");
        bytes memory bad = VECTOR_SIGNATURE;
        bad[64] = bytes1(uint8(29));
        assertEq(verifier.signer(sample(), bad), address(0), "bad v");
    }

    function test_RevertWhen_TheGatewayIsZero() public {
        vm.expectRevert(ProfileAttestationVerifier.ZeroGateway.selector);
        new ProfileAttestationVerifier(address(0), 1);
    }

    function testFuzz_IsValid_AnyProfileTheGatewaySigns(string memory name, string memory domain, uint64 issuedAt)
        public
    {
        issuedAt = uint64(bound(issuedAt, 1, type(uint64).max - 1));
        ProfileAttestationVerifier.ProfileAttestation memory a = sample();
        a.name = name;
        a.emailDomain = domain;
        a.issuedAt = issuedAt;
        a.expiry = issuedAt + 1;
        bytes memory sig = sign(GATEWAY_KEY, a);
        vm.warp(issuedAt);
        assertTrue(verifier.isValid(a, sig), "valid in its window");
        a.issuedAt = issuedAt - 1;
        assertFalse(verifier.isValid(a, sig), "another issuedAt");
    }
}
