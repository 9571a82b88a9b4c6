//! Event kinds of the event log. The string is what is stored and what subscribers match.

pub const USER_SIGNED_UP: &str = "user.signed_up";
pub const USER_UPDATED: &str = "user.updated";
pub const ORGANIZATION_CREATED: &str = "organization.created";
pub const ORGANIZATION_UPDATED: &str = "organization.updated";
pub const MEMBER_ADDED: &str = "member.added";
pub const MEMBER_ROLE_CHANGED: &str = "member.role_changed";
pub const MEMBER_REMOVED: &str = "member.removed";
pub const OWNERSHIP_TRANSFERRED: &str = "organization.ownership_transferred";
pub const INVITATION_CREATED: &str = "invitation.created";
pub const INVITATION_REVOKED: &str = "invitation.revoked";
pub const API_KEY_CREATED: &str = "api_key.created";
pub const API_KEY_REVOKED: &str = "api_key.revoked";
pub const EMAIL_QUEUED: &str = "email.queued";
