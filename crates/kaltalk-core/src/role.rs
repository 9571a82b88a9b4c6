//! Roles and the one permission table the server enforces.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Owner,
    Admin,
    Agent,
}

/// What a member may do. Checked on the server for every request that needs it; the
/// dashboard only hides what the server would refuse anyway.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Permission {
    /// Read conversations and reply (every member).
    UseInbox,
    /// See who is in the team (every member).
    ViewTeam,
    /// Invite people and change or remove admins and agents.
    ManageTeam,
    /// Create and revoke API keys.
    ManageApiKeys,
    /// Rename the organization and change its settings.
    ManageOrganization,
    /// Create inboxes and change their settings (widget look, allowed sites, identity).
    ManageInboxes,
    /// Read the local email outbox (it holds sign-in links, so owners only).
    ReadOutbox,
    /// Hand the organization to another member; appoint or remove admins.
    TransferOwnership,
    /// Delete the organization and everything in it.
    DeleteOrganization,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Owner, Role::Admin, Role::Agent];

    /// The permission table.
    pub fn can(self, permission: Permission) -> bool {
        use Permission::*;
        match self {
            Role::Owner => true,
            Role::Admin => matches!(
                permission,
                UseInbox
                    | ViewTeam
                    | ManageTeam
                    | ManageApiKeys
                    | ManageOrganization
                    | ManageInboxes
            ),
            Role::Agent => matches!(permission, UseInbox | ViewTeam),
        }
    }

    /// Whether a member with this role may set another member's role from `from` to `to`
    /// (or invite someone as `to`, with `from` = `to`). Nobody creates a second owner this
    /// way: ownership moves only by transfer. Admins manage agents and admins but cannot
    /// touch the owner.
    pub fn may_assign(self, from: Role, to: Role) -> bool {
        if from == Role::Owner || to == Role::Owner {
            return false;
        }
        self.can(Permission::ManageTeam)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Agent => "agent",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Role::Owner => "Owner",
            Role::Admin => "Admin",
            Role::Agent => "Agent",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown role {0:?}: expected owner, admin or agent")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "owner" => Ok(Role::Owner),
            "admin" => Ok(Role::Admin),
            "agent" => Ok(Role::Agent),
            other => Err(UnknownRole(other.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agents_cannot_manage_anything() {
        assert!(Role::Agent.can(Permission::UseInbox));
        assert!(!Role::Agent.can(Permission::ManageTeam));
        assert!(!Role::Agent.can(Permission::ManageApiKeys));
        assert!(!Role::Agent.may_assign(Role::Agent, Role::Admin));
    }

    #[test]
    fn admins_manage_team_but_not_ownership_or_outbox() {
        assert!(Role::Admin.can(Permission::ManageTeam));
        assert!(!Role::Admin.can(Permission::TransferOwnership));
        assert!(!Role::Admin.can(Permission::ReadOutbox));
        assert!(Role::Admin.may_assign(Role::Agent, Role::Admin));
        assert!(!Role::Admin.may_assign(Role::Owner, Role::Agent));
    }

    #[test]
    fn nobody_makes_an_owner_by_role_change() {
        for role in Role::ALL {
            assert!(!role.may_assign(Role::Admin, Role::Owner));
        }
    }

    #[test]
    fn roles_round_trip_through_text() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>().ok(), Some(role));
        }
        assert!("root".parse::<Role>().is_err());
    }
}
