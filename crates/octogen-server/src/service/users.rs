//! Portal users and their memberships in organizations.

use octogen_core::error::ValidationIssue;
use octogen_core::loc;
use octogen_store::{NewUser, Role, User};
use secrecy::SecretString;
use serde_json::json;

use super::password::{self, PasswordProblem, MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS};
use super::{Actor, Services};
use crate::error::{ApiError, ApiResult};

const MAX_EMAIL_CHARS: usize = 254;

impl Services {
    /// Creates a user who signs in with `email` and `password`. The password
    /// policy is checked before hashing; the password never reaches an error or log.
    pub async fn create_user(
        &self,
        actor: &Actor,
        email: &str,
        password: &SecretString,
        is_operator: bool,
    ) -> ApiResult<User> {
        let email = normalize_email(email)?;
        password::check_policy(password).map_err(password_issue)?;
        let password_hash = password::hash(password).await?;
        let new = NewUser::new(email, password_hash, is_operator);
        let detail = json!({"email": new.email, "operator": is_operator});
        let event = actor.event(None, "user.created", Some(&new.id), Some(detail));
        Ok(self.store.create_user(new, &[event]).await?)
    }

    /// Adds a user to an organization, or changes their role there.
    pub async fn set_membership(&self, actor: &Actor, user_id: &str, org_id: &str, role: Role) -> ApiResult<bool> {
        let user = self.store.get_user(user_id).await?;
        let detail = json!({"email": user.email, "role": role});
        let event = actor.event(Some(org_id), "membership.set", Some(user_id), Some(detail));
        Ok(self.store.put_membership(user_id, org_id, role, &[event]).await?)
    }

    pub async fn remove_membership(&self, actor: &Actor, user_id: &str, org_id: &str) -> ApiResult<bool> {
        let user = self.store.get_user(user_id).await?;
        let event = actor.event(Some(org_id), "membership.removed", Some(user_id), Some(json!({"email": user.email})));
        Ok(self.store.remove_membership(user_id, org_id, &[event]).await?)
    }
}

/// Emails are compared lowercased and trimmed; the shape check is deliberately
/// loose (one `@`, a dotted domain) since the address is a sign-in name, not mail.
pub fn normalize_email(email: &str) -> ApiResult<String> {
    let email = email.trim().to_lowercase();
    let valid = email.chars().count() <= MAX_EMAIL_CHARS
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && matches!(email.split_once('@'), Some((local, domain))
            if !local.is_empty() && domain.contains('.') && !domain.contains('@')
                && !domain.starts_with('.') && !domain.ends_with('.'));
    if !valid {
        return Err(ApiError::validation(
            ValidationIssue::new(
                loc!["body", "email"],
                "value_error",
                "Enter an email address such as name@example.com",
            )
            .with_input(json!(email)),
        ));
    }
    Ok(email)
}

/// The issue for a password outside the policy. Never carries the input.
pub(super) fn password_issue(problem: PasswordProblem) -> ApiError {
    let (kind, message, ctx) = match problem {
        PasswordProblem::TooShort => (
            "string_too_short",
            format!("The password needs at least {MIN_PASSWORD_CHARS} characters"),
            json!({"min_length": MIN_PASSWORD_CHARS}),
        ),
        PasswordProblem::TooLong => (
            "string_too_long",
            format!("The password can have at most {MAX_PASSWORD_CHARS} characters"),
            json!({"max_length": MAX_PASSWORD_CHARS}),
        ),
    };
    ApiError::validation(ValidationIssue::new(loc!["body", "password"], kind, message).with_ctx(ctx))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_trimmed_and_lowercased() {
        assert_eq!(normalize_email("  Ada@Example.COM ").unwrap(), "ada@example.com");
        for bad in ["", "ada", "ada@", "@example.com", "ada@example", "a da@example.com", "a@b@example.com", "a@.com"] {
            assert!(normalize_email(bad).is_err(), "{bad:?}");
        }
    }
}
