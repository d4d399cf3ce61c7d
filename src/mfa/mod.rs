//! The MFA step's own logic, below the request path that uses it: the state of a login that
//! waits for its code ([`challenge`]), checking codes and recovery codes with their lock-outs
//! ([`codes`]), the e-mailed code of a first enrollment ([`email_code`]), enrollment secrets shown but not yet confirmed ([`pending`]), browsers a user
//! chose to remember ([`remember`]) and the ending of VMS sessions whose MFA step was
//! abandoned ([`sweeper`]).
//!
//! The login interception that creates a challenge lives in `proxy::login`; the pages that
//! complete it in `web::flow`; what an approved session is, in `gate`.

pub mod challenge;
pub mod codes;
pub mod email_code;
pub mod pending;
pub mod remember;
pub mod sweeper;
