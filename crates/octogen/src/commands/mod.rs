pub mod admin;
pub mod keys;
pub mod serve;
