// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {Test} from "./utils/Test.sol";
import {ERC1271Wallet} from "./mocks/ERC1271Wallet.sol";

contract ERC1271WalletTest is Test {
    function test_RejectsMalformedSignature() public {
        ERC1271Wallet wallet = new ERC1271Wallet(address(0xBEEF));
        bytes4 magic = wallet.isValidSignature(keccak256("x"), hex"1234");
        assertEq(uint256(uint32(magic)), uint256(uint32(0xffffffff)), "malformed signature refused");
    }

    function testFuzz_AcceptsOnlyTheOwnersSignature(bytes32 digest) public {
        uint256 ownerKey = 0xA11CE;
        uint256 otherKey = 0xB0B;
        ERC1271Wallet wallet = new ERC1271Wallet(vm.addr(ownerKey));
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(ownerKey, digest);
        bytes4 magic = wallet.isValidSignature(digest, abi.encodePacked(r, s, v));
        assertEq(uint256(uint32(magic)), uint256(uint32(0x1626ba7e)), "owner signature accepted");
        (v, r, s) = vm.sign(otherKey, digest);
        magic = wallet.isValidSignature(digest, abi.encodePacked(r, s, v));
        assertEq(uint256(uint32(magic)), uint256(uint32(0xffffffff)), "other signature refused");
    }

    function test_OwnerIsRecorded() public {
        ERC1271Wallet wallet = new ERC1271Wallet(address(0xBEEF));
        assertEq(wallet.owner(), address(0xBEEF), "owner");
    }
}
