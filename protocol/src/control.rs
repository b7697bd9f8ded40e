//! Room membership, roles and policy as the deterministic replay of a room's control envelopes.
//!
//! Every control envelope (create, invite, join, leave, remove, set role, set policy, rotate key)
//! is applied in the room's total order — `(lamport, id)`, which respects causality because a
//! client's lamport clock is above everything it has seen — to a [`RoomState`]. An operation
//! whose author lacked the right at that point is void: it stays in history (so every node
//! holds the same set) but changes nothing. Two nodes holding the same set of envelopes compute
//! the same state, whatever order the envelopes arrived in.
//!
//! Authority:
//! - owner: everything; the only one who sets roles; hands ownership over with `SetRole(owner)`
//!   (becoming an admin), and cannot leave or be removed while owner;
//! - admin: invites, removes members (not admins, not the owner), sets the join policy;
//! - member: posts, rotates the room key, leaves.
//!
//! Direct rooms have exactly their two members for good: no invites, leaves, removals or roles.

use std::collections::BTreeMap;

use alloy_primitives::{Address, B256};
use prost::Message as _;

use crate::{
    Body, Kind, RoomId,
    room::{CreateRoom, Creation, RoomError, RoomKind},
};

/// Roles, ordered by rank.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, prost::Enumeration)]
#[repr(i32)]
pub enum Role {
    /// Not set: refused.
    Unspecified = 0,
    /// Reads, posts, rotates the key, leaves.
    Member = 1,
    /// Also invites, removes members and sets the policy.
    Admin = 2,
    /// Everything; exactly one per group or channel.
    Owner = 3,
}

impl Role {
    /// Lowercase name, as the API shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unspecified => "unspecified",
            Self::Member => "member",
            Self::Admin => "admin",
            Self::Owner => "owner",
        }
    }

    /// Parses [`Role::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "member" => Some(Self::Member),
            "admin" => Some(Self::Admin),
            "owner" => Some(Self::Owner),
            _ => None,
        }
    }
}

/// Who may join a room without an invite.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, prost::Enumeration)]
#[repr(i32)]
pub enum Policy {
    /// Not set: refused.
    Unspecified = 0,
    /// Members join only when an admin invites them.
    InviteOnly = 1,
    /// Anyone may join.
    Open = 2,
    /// Anyone holding enough of a token may join (see [`Gate`]).
    TokenGated = 3,
    /// Anyone with a live subscription to the room in the `Payments` contract may join.
    Paid = 4,
}

impl Policy {
    /// Lowercase name, as the API shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unspecified => "unspecified",
            Self::InviteOnly => "invite_only",
            Self::Open => "open",
            Self::TokenGated => "token_gated",
            Self::Paid => "paid",
        }
    }

    /// Whether joining needs a check on chain.
    pub fn is_gated(self) -> bool {
        matches!(self, Self::TokenGated | Self::Paid)
    }

    /// Whether anyone may try to join without an invite.
    pub fn admits_joins(self) -> bool {
        !matches!(self, Self::InviteOnly | Self::Unspecified)
    }

    /// Parses [`Policy::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "invite_only" => Some(Self::InviteOnly),
            "open" => Some(Self::Open),
            "token_gated" => Some(Self::TokenGated),
            "paid" => Some(Self::Paid),
            _ => None,
        }
    }
}

/// Payload of `KIND_INVITE`: adds members.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Invite {
    /// Addresses to add, 20 bytes each.
    #[prost(bytes = "vec", repeated, tag = "1")]
    pub members: Vec<Vec<u8>>,
}

/// Payload of `KIND_REMOVE`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Remove {
    /// Address to remove, 20 bytes.
    #[prost(bytes = "vec", tag = "1")]
    pub member: Vec<u8>,
}

/// Payload of `KIND_SET_ROLE`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct SetRole {
    /// Member whose role changes, 20 bytes.
    #[prost(bytes = "vec", tag = "1")]
    pub member: Vec<u8>,
    /// [`Role`].
    #[prost(enumeration = "Role", tag = "2")]
    pub role: i32,
}

/// Payload of `KIND_SET_POLICY`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct SetPolicy {
    /// [`Policy`].
    #[prost(enumeration = "Policy", tag = "1")]
    pub policy: i32,
    /// What joining needs, for `TokenGated` and `Paid` (absent otherwise).
    #[prost(message, optional, tag = "2")]
    pub gate: Option<Gate>,
}

/// Kinds of gate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, prost::Enumeration)]
#[repr(i32)]
pub enum GateKind {
    /// Not set: refused.
    Unspecified = 0,
    /// `balanceOf(member) >= min_balance` of an ERC-20 token.
    Erc20 = 1,
    /// `balanceOf(member) >= min_balance` of an ERC-721 collection.
    Erc721 = 2,
    /// `balanceOf(member, token_id) >= min_balance` of an ERC-1155 token.
    Erc1155 = 3,
    /// A live subscription to this room in the `Payments` contract at `contract`
    /// (`subscriptionExpiry(room, member) > now`), whose on-chain room owner is the room's owner.
    Subscription = 4,
}

/// What a gated room asks of a joining member, checked on chain by the node the member joins
/// through, and again whenever that check expires.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct Gate {
    /// [`GateKind`].
    #[prost(enumeration = "GateKind", tag = "1")]
    pub kind: i32,
    /// Chain id the contract lives on.
    #[prost(uint64, tag = "2")]
    pub chain_id: u64,
    /// Token or `Payments` contract, 20 bytes.
    #[prost(bytes = "vec", tag = "3")]
    pub contract: Vec<u8>,
    /// ERC-1155 token id, 32 bytes big-endian (empty otherwise).
    #[prost(bytes = "vec", tag = "4")]
    pub token_id: Vec<u8>,
    /// Least balance, 32 bytes big-endian (empty means 1).
    #[prost(bytes = "vec", tag = "5")]
    pub min_balance: Vec<u8>,
}

impl Gate {
    /// Checks the fields' shapes against the policy they come with.
    pub fn check(&self, policy: Policy) -> Result<(), RoomError> {
        let kind = GateKind::try_from(self.kind).unwrap_or(GateKind::Unspecified);
        let fits = match policy {
            Policy::TokenGated => matches!(kind, GateKind::Erc20 | GateKind::Erc721 | GateKind::Erc1155),
            Policy::Paid => kind == GateKind::Subscription,
            _ => false,
        };
        if !fits {
            return Err(malformed("the gate's kind does not fit the policy"));
        }
        if self.contract.len() != 20 || self.chain_id == 0 {
            return Err(malformed("a gate names a chain id and a 20-byte contract"));
        }
        if (kind == GateKind::Erc1155) != (self.token_id.len() == 32) || self.min_balance.len() > 32 {
            return Err(malformed("an ERC-1155 gate has a 32-byte token id; balances fit 32 bytes"));
        }
        Ok(())
    }
}

/// Payload of `KIND_ROTATE_KEY`: a new epoch key, wrapped for each member device. The epoch's id
/// is this envelope's id.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct RotateKey {
    /// One wrap per recipient device.
    #[prost(message, repeated, tag = "1")]
    pub wraps: Vec<Wrap>,
}

/// The epoch key sealed to one device's box key with HPKE (see [`crate::e2e`]).
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Wrap {
    /// Recipient's X25519 public key, 32 bytes.
    #[prost(bytes = "vec", tag = "1")]
    pub box_key: Vec<u8>,
    /// HPKE encapsulated key, 32 bytes.
    #[prost(bytes = "vec", tag = "2")]
    pub enc: Vec<u8>,
    /// HPKE ciphertext of the 32-byte epoch key, 48 bytes.
    #[prost(bytes = "vec", tag = "3")]
    pub ciphertext: Vec<u8>,
}

/// Most wraps in one `RotateKey` (member devices of a room).
pub const MAX_WRAPS: usize = 1024;

/// A decoded control operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Creates the room.
    Create(Creation),
    /// Adds members.
    Invite(Vec<Address>),
    /// The author joins.
    Join,
    /// The author leaves.
    Leave,
    /// Removes a member.
    Remove(Address),
    /// Changes a member's role.
    SetRole(Address, Role),
    /// Changes the join policy (with its gate when token-gated or paid).
    SetPolicy(Policy, Option<Gate>),
    /// Starts a new key epoch.
    RotateKey(Vec<Wrap>),
}

/// A control envelope, positioned in its room's order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Control {
    /// Envelope id.
    pub id: B256,
    /// Lamport clock.
    pub lamport: u64,
    /// Sending wallet.
    pub author: Address,
    /// What it does.
    pub op: Op,
}

impl Control {
    /// Decodes the control operation of a body (already verified). `Ok(None)` for a kind that
    /// is not a control kind.
    pub fn decode(id: B256, body: &Body) -> Result<Option<Self>, RoomError> {
        let kind = Kind::try_from(body.kind).unwrap_or(Kind::Unspecified);
        let author = Address::try_from(body.sender.as_slice()).map_err(|_| malformed("sender must be 20 bytes"))?;
        let room = RoomId::from_slice(&body.room).map_err(|_| malformed("room must be 32 bytes"))?;
        let payload = body.payload.as_slice();
        let address = |b: &[u8]| Address::try_from(b).map_err(|_| malformed("address must be 20 bytes"));
        let op = match kind {
            Kind::CreateRoom => Op::Create(CreateRoom::check_parts(&author, &room, payload)?),
            Kind::Invite => {
                let p = Invite::decode(payload).map_err(|e| malformed(&e.to_string()))?;
                if p.members.is_empty() {
                    return Err(malformed("an invite names at least one address"));
                }
                if p.members.len() > crate::room::MAX_INITIAL_MEMBERS {
                    return Err(RoomError::TooManyMembers);
                }
                Op::Invite(p.members.iter().map(|m| address(m)).collect::<Result<_, _>>()?)
            }
            Kind::Join => Op::Join,
            Kind::Leave => Op::Leave,
            Kind::Remove => {
                Op::Remove(address(&Remove::decode(payload).map_err(|e| malformed(&e.to_string()))?.member)?)
            }
            Kind::SetRole => {
                let p = SetRole::decode(payload).map_err(|e| malformed(&e.to_string()))?;
                let role = match Role::try_from(p.role) {
                    Ok(r) if r != Role::Unspecified => r,
                    _ => return Err(malformed("unknown role")),
                };
                Op::SetRole(address(&p.member)?, role)
            }
            Kind::SetPolicy => {
                let p = SetPolicy::decode(payload).map_err(|e| malformed(&e.to_string()))?;
                let policy = match Policy::try_from(p.policy) {
                    Ok(pol) if pol != Policy::Unspecified => pol,
                    _ => return Err(malformed("unknown policy")),
                };
                match (&p.gate, policy.is_gated()) {
                    (Some(g), true) => g.check(policy)?,
                    (None, false) => {}
                    _ => return Err(malformed("token-gated and paid policies, and only they, carry a gate")),
                }
                Op::SetPolicy(policy, p.gate)
            }
            Kind::RotateKey => {
                let p = RotateKey::decode(payload).map_err(|e| malformed(&e.to_string()))?;
                if p.wraps.is_empty() || p.wraps.len() > MAX_WRAPS {
                    return Err(malformed("a key rotation wraps the key for 1 to 1024 devices"));
                }
                if p.wraps.iter().any(|w| w.box_key.len() != 32 || w.enc.len() != 32 || w.ciphertext.len() != 48) {
                    return Err(malformed("a wrap has a 32-byte box key, a 32-byte enc and a 48-byte ciphertext"));
                }
                Op::RotateKey(p.wraps)
            }
            _ => return Ok(None),
        };
        Ok(Some(Self { id, lamport: body.lamport, author, op }))
    }

    /// Position in the room's order.
    pub fn position(&self) -> (u64, B256) {
        (self.lamport, self.id)
    }
}

fn malformed(s: &str) -> RoomError {
    RoomError::Malformed(s.to_string())
}

/// Why an operation is void.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Void {
    /// The room has not been created (before this point).
    #[error("no such room")]
    NoRoom,
    /// The room already exists.
    #[error("a room with this id already exists")]
    Exists,
    /// The author is not a member.
    #[error("you are not a member of this room")]
    NotMember,
    /// The author's role does not allow it.
    #[error("your role in this room does not allow this")]
    Forbidden,
    /// The target is not a member.
    #[error("that address is not a member of this room")]
    TargetNotMember,
    /// Everyone named is already a member.
    #[error("already a member")]
    AlreadyMember,
    /// Joining needs an invite.
    #[error("this room is invite-only; ask an admin to invite you")]
    InviteRequired,
    /// The owner must hand ownership over first.
    #[error("the owner cannot leave or be removed; hand ownership to another member first")]
    OwnerStays,
    /// Direct rooms keep their two members and have no roles.
    #[error("direct rooms keep their two members and have no roles")]
    DirectRoom,
    /// Public channels are not encrypted.
    #[error("public channels are not encrypted")]
    NotEncrypted,
}

impl Void {
    /// Stable snake_case code, for API clients.
    pub fn code(self) -> &'static str {
        match self {
            Self::NoRoom => "room_not_found",
            Self::Exists => "room_exists",
            Self::NotMember => "not_a_member",
            Self::Forbidden => "role_forbidden",
            Self::TargetNotMember => "target_not_member",
            Self::AlreadyMember => "already_member",
            Self::InviteRequired => "invite_required",
            Self::OwnerStays => "owner_stays",
            Self::DirectRoom => "direct_room_fixed",
            Self::NotEncrypted => "room_not_encrypted",
        }
    }
}

/// A room's state after replaying its control envelopes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoomState {
    /// The creation, once applied.
    pub created: Option<Creation>,
    /// Current members and roles.
    pub members: BTreeMap<Address, Role>,
    /// Former members, with the position at which they left or were removed.
    pub former: BTreeMap<Address, (u64, B256)>,
    /// Join policy.
    pub policy: Option<Policy>,
    /// The gate of a token-gated or paid room.
    pub gate: Option<Gate>,
    /// Key epochs (ids of effective `RotateKey` envelopes), oldest first.
    pub epochs: Vec<B256>,
    /// Position of the last departure (leave or removal): an epoch older than this is known to
    /// a former member, so clients rotate before sending.
    pub last_departure: Option<(u64, B256)>,
    /// Position of the last effective operation.
    pub last: Option<(u64, B256)>,
}

impl RoomState {
    /// Replays `controls` in the room's order.
    pub fn replay(controls: impl IntoIterator<Item = Control>) -> Self {
        let mut controls: Vec<Control> = controls.into_iter().collect();
        controls.sort_by_key(Control::position);
        controls.dedup_by_key(|c| c.id);
        let mut state = Self::default();
        for c in &controls {
            let _ = state.apply(c);
        }
        state
    }

    /// Replays `controls` and reports whether the one with id `target` took effect at its
    /// place in the order (its `Void` reason otherwise; `NoRoom` if it is not among them).
    pub fn replay_checked(controls: impl IntoIterator<Item = Control>, target: B256) -> (Self, Result<(), Void>) {
        let mut controls: Vec<Control> = controls.into_iter().collect();
        controls.sort_by_key(Control::position);
        controls.dedup_by_key(|c| c.id);
        let mut state = Self::default();
        let mut outcome = Err(Void::NoRoom);
        for c in &controls {
            let r = state.apply(c);
            if c.id == target {
                outcome = r;
            }
        }
        (state, outcome)
    }

    /// The room's kind, once created.
    pub fn kind(&self) -> Option<RoomKind> {
        self.created.as_ref().map(|c| c.kind)
    }

    /// The current owner (none for direct rooms).
    pub fn owner(&self) -> Option<Address> {
        self.members.iter().find(|(_, r)| **r == Role::Owner).map(|(a, _)| *a)
    }

    /// The current epoch.
    pub fn epoch(&self) -> Option<B256> {
        self.epochs.last().copied()
    }

    /// A member's role.
    pub fn role(&self, address: &Address) -> Option<Role> {
        self.members.get(address).copied()
    }

    /// Applies one operation placed after everything applied so far; `Err` when it is void
    /// (and then nothing changed).
    pub fn apply(&mut self, c: &Control) -> Result<(), Void> {
        let pos = c.position();
        let Some(created) = &self.created else {
            let Op::Create(creation) = &c.op else { return Err(Void::NoRoom) };
            self.created = Some(creation.clone());
            match creation.kind {
                RoomKind::Direct => {
                    self.members.insert(creation.owner, Role::Member);
                    self.policy = Some(Policy::InviteOnly);
                }
                kind => {
                    self.members.insert(creation.owner, Role::Owner);
                    self.policy = Some(if kind == RoomKind::Channel { Policy::Open } else { Policy::InviteOnly });
                }
            }
            for m in &creation.members {
                self.members.entry(*m).or_insert(Role::Member);
            }
            self.last = Some(pos);
            return Ok(());
        };
        let kind = created.kind;
        let author = self.role(&c.author);
        let direct = kind == RoomKind::Direct;
        match &c.op {
            Op::Create(_) => return Err(Void::Exists),
            Op::Join => {
                if author.is_some() {
                    return Err(Void::AlreadyMember);
                }
                // A gated room's gate is checked on chain by the node the member joins through.
                if direct || !self.policy.is_some_and(Policy::admits_joins) {
                    return Err(Void::InviteRequired);
                }
                self.add(c.author, Role::Member);
            }
            Op::Invite(addresses) => {
                if direct {
                    return Err(Void::DirectRoom);
                }
                if author.is_none() {
                    return Err(Void::NotMember);
                }
                if author < Some(Role::Admin) {
                    return Err(Void::Forbidden);
                }
                let new: Vec<Address> = addresses.iter().filter(|a| !self.members.contains_key(*a)).copied().collect();
                if new.is_empty() {
                    return Err(Void::AlreadyMember);
                }
                for a in new {
                    self.add(a, Role::Member);
                }
            }
            Op::Leave => {
                let role = author.ok_or(Void::NotMember)?;
                if direct {
                    return Err(Void::DirectRoom);
                }
                if role == Role::Owner {
                    return Err(Void::OwnerStays);
                }
                self.depart(c.author, pos);
            }
            Op::Remove(target) => {
                if direct {
                    return Err(Void::DirectRoom);
                }
                let role = author.ok_or(Void::NotMember)?;
                let target_role = self.role(target).ok_or(Void::TargetNotMember)?;
                if target_role == Role::Owner {
                    return Err(Void::OwnerStays);
                }
                if role < Role::Admin || role <= target_role {
                    return Err(Void::Forbidden);
                }
                self.depart(*target, pos);
            }
            Op::SetRole(target, new_role) => {
                if direct {
                    return Err(Void::DirectRoom);
                }
                let role = author.ok_or(Void::NotMember)?;
                if role != Role::Owner || *target == c.author {
                    return Err(Void::Forbidden);
                }
                self.role(target).ok_or(Void::TargetNotMember)?;
                if *new_role == Role::Owner {
                    self.members.insert(c.author, Role::Admin);
                }
                self.members.insert(*target, *new_role);
            }
            Op::SetPolicy(policy, gate) => {
                if direct {
                    return Err(Void::DirectRoom);
                }
                let role = author.ok_or(Void::NotMember)?;
                if role < Role::Admin {
                    return Err(Void::Forbidden);
                }
                self.policy = Some(*policy);
                self.gate = gate.clone();
            }
            Op::RotateKey(_) => {
                if !kind.is_private() {
                    return Err(Void::NotEncrypted);
                }
                author.ok_or(Void::NotMember)?;
                self.epochs.push(c.id);
            }
        }
        self.last = Some(pos);
        Ok(())
    }

    fn add(&mut self, address: Address, role: Role) {
        self.former.remove(&address);
        self.members.insert(address, role);
    }

    fn depart(&mut self, address: Address, pos: (u64, B256)) {
        self.members.remove(&address);
        self.former.insert(address, pos);
        self.last_departure = Some(pos);
    }

    /// Whether `address` may have posted at `pos`: a member now (placed after the last
    /// operation applied), or a former member whose departure comes after `pos`.
    pub fn could_post_at(&self, address: &Address, pos: (u64, B256)) -> bool {
        self.members.contains_key(address) || self.former.get(address).is_some_and(|left| pos < *left)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn addr(i: u8) -> Address {
        Address::repeat_byte(i + 1)
    }

    fn control(n: u64, lamport: u64, author: Address, op: Op) -> Control {
        let mut id = [0u8; 32];
        id[24..].copy_from_slice(&n.to_be_bytes());
        Control { id: B256::from(id), lamport, author, op }
    }

    fn group(owner: Address, members: Vec<Address>) -> Op {
        Op::Create(Creation { room: RoomId([9; 32]), owner, name: "g".into(), kind: RoomKind::Group, members })
    }

    #[test]
    fn authority_rules() {
        let (owner, admin, member, stranger) = (addr(0), addr(1), addr(2), addr(3));
        let mut s = RoomState::default();
        s.apply(&control(0, 0, owner, group(owner, vec![admin, member]))).expect("create");
        assert_eq!(s.apply(&control(1, 1, member, Op::SetRole(member, Role::Admin))), Err(Void::Forbidden));
        assert_eq!(s.apply(&control(2, 1, admin, Op::SetRole(admin, Role::Admin))), Err(Void::Forbidden));
        s.apply(&control(3, 2, owner, Op::SetRole(admin, Role::Admin))).expect("promote");
        assert_eq!(s.apply(&control(4, 3, admin, Op::Remove(owner))), Err(Void::OwnerStays));
        assert_eq!(s.apply(&control(5, 3, member, Op::Invite(vec![stranger]))), Err(Void::Forbidden));
        assert_eq!(s.apply(&control(6, 3, stranger, Op::Join)), Err(Void::InviteRequired));
        assert_eq!(s.apply(&control(7, 3, owner, Op::Leave)), Err(Void::OwnerStays));
        s.apply(&control(8, 4, admin, Op::Remove(member))).expect("admin removes a member");
        assert!(!s.could_post_at(&member, (5, B256::ZERO)));
        assert!(s.could_post_at(&member, (3, B256::ZERO)));
        assert_eq!(s.last_departure, Some((4, control(8, 4, admin, Op::Join).id)));
        s.apply(&control(9, 5, owner, Op::SetPolicy(Policy::Open, None))).expect("policy");
        s.apply(&control(10, 6, stranger, Op::Join)).expect("open join");
        s.apply(&control(11, 7, owner, Op::SetRole(stranger, Role::Owner))).expect("hand over");
        assert_eq!((s.owner(), s.role(&owner)), (Some(stranger), Some(Role::Admin)));
        s.apply(&control(12, 8, owner, Op::Leave)).expect("former owner leaves");
    }

    #[derive(Debug, Clone)]
    enum Pick {
        Invite(u8),
        Join,
        Leave,
        Remove(u8),
        SetRole(u8, u8),
        Policy(bool),
        Rotate,
    }

    fn pick() -> impl Strategy<Value = Pick> {
        prop_oneof![
            (0u8..6).prop_map(Pick::Invite),
            Just(Pick::Join),
            Just(Pick::Leave),
            (0u8..6).prop_map(Pick::Remove),
            (0u8..6, 1u8..4).prop_map(|(a, r)| Pick::SetRole(a, r)),
            any::<bool>().prop_map(Pick::Policy),
            Just(Pick::Rotate),
        ]
    }

    fn op_of(p: &Pick) -> Op {
        match p {
            Pick::Invite(a) => Op::Invite(vec![addr(*a)]),
            Pick::Join => Op::Join,
            Pick::Leave => Op::Leave,
            Pick::Remove(a) => Op::Remove(addr(*a)),
            Pick::SetRole(a, r) => Op::SetRole(addr(*a), Role::try_from(i32::from(*r)).unwrap_or(Role::Member)),
            Pick::Policy(open) => Op::SetPolicy(if *open { Policy::Open } else { Policy::InviteOnly }, None),
            Pick::Rotate => Op::RotateKey(Vec::new()),
        }
    }

    proptest! {
        /// Concurrent operations (many share a lamport value), delivered to replicas in
        /// different orders and applied incrementally where they can be: every replica ends in
        /// the same state as the full replay, and the authority rules hold at every step.
        #[test]
        fn replicas_agree_and_rules_hold(
            ops in prop::collection::vec((0u8..6, 1u64..12, pick()), 1..60),
            seeds in prop::collection::vec(any::<u64>(), 3),
        ) {
            let owner = addr(0);
            let mut all = vec![control(0, 0, owner, group(owner, vec![addr(1), addr(2)]))];
            for (i, (author, lamport, p)) in ops.iter().enumerate() {
                all.push(control(i as u64 + 1, *lamport, addr(*author), op_of(p)));
            }
            let reference = RoomState::replay(all.clone());

            for seed in seeds {
                // A replica receives the envelopes in a shuffled order; when one lands before
                // the last one it applied, it replays (as the node does), otherwise it applies
                // it on top.
                let mut order = all.clone();
                let mut rng = seed;
                for i in (1..order.len()).rev() {
                    rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    order.swap(i, (rng >> 33) as usize % (i + 1));
                }
                let mut seen: Vec<Control> = Vec::new();
                let mut state = RoomState::default();
                let mut applied_up_to: Option<(u64, B256)> = None;
                for c in order {
                    seen.push(c.clone());
                    if applied_up_to.is_some_and(|p| c.position() < p) {
                        state = RoomState::replay(seen.clone());
                    } else {
                        let _ = state.apply(&c);
                    }
                    applied_up_to = applied_up_to.max(Some(c.position()));
                }
                let replayed = RoomState::replay(seen);
                prop_assert_eq!(&state.members, &replayed.members);
                prop_assert_eq!(&state.members, &reference.members);
                prop_assert_eq!(&state.policy, &reference.policy);
                prop_assert_eq!(&state.epochs, &reference.epochs);
            }

            // The rules, checked step by step along the canonical order.
            let mut sorted = all;
            sorted.sort_by_key(Control::position);
            let mut state = RoomState::default();
            for c in &sorted {
                let before = state.clone();
                let result = state.apply(c);
                let author = before.role(&c.author);
                // Exactly one owner, always.
                prop_assert_eq!(state.members.values().filter(|r| **r == Role::Owner).count(), 1);
                if result.is_err() {
                    prop_assert_eq!(&state, &before);
                    continue;
                }
                match &c.op {
                    Op::Remove(t) => {
                        prop_assert!(author >= Some(Role::Admin) && author > before.role(t));
                        prop_assert!(before.role(t) != Some(Role::Owner));
                    }
                    Op::SetRole(t, _) => prop_assert!(author == Some(Role::Owner) && *t != c.author),
                    Op::Invite(_) | Op::SetPolicy(..) => prop_assert!(author >= Some(Role::Admin)),
                    Op::Join => prop_assert!(author.is_none() && before.policy == Some(Policy::Open)),
                    Op::Leave | Op::RotateKey(_) => prop_assert!(author.is_some()),
                    Op::Create(_) => prop_assert!(before.created.is_none(), "a second create took effect"),
                }
                // Nobody ever gains a role through someone else's void operation, and a
                // member never promotes themselves.
                for (a, r) in &state.members {
                    if let Some(old) = before.role(a) && *r > old {
                        prop_assert!(c.author != *a);
                    }
                }
            }
        }
    }
}
