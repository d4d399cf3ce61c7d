//! The MFA step wrapped around the VMS login: interception ([`login`]), withheld responses
//! ([`challenge`]), the pages' logic ([`flow`]), approved sessions ([`approval`]), their
//! revocation across instances ([`revocation`]), cookies ([`cookies`]), sessions the VMS
//! keeps before login ([`prelogin`]) and the ending of abandoned sessions ([`sweeper`]).

pub mod account;
pub mod approval;
pub mod challenge;
pub mod codes;
pub mod cookies;
pub mod flow;
pub mod login;
pub mod login_form;
pub mod pending;
pub mod prelogin;
pub mod revocation;
pub mod sign_in_addresses;
pub mod sweeper;
pub mod verified;
