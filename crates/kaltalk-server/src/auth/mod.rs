//! Who is asking: the dashboard session (`AgentSession`), API callers (`ApiPrincipal`),
//! password hashing, CSRF and login limits.

pub mod csrf;
pub mod limits;
pub mod password;
pub mod session;

pub use csrf::{SessionForm, SessionUpload, UploadCap, UploadedFile};
pub use session::{AgentOrApp, AgentSession, ApiPrincipal, ClientIp, SessionKind};
