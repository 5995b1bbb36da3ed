pub mod admin;
pub mod catalog;
pub mod client;
pub mod keys;
pub mod serve;
pub mod users;
