//! Browser sessions: the login form trades an API key for a cookie, so the key is
//! typed once and never stored by the browser. The cookie is HttpOnly (no script
//! reads it) and SameSite=Strict (no other site's page sends it); it names the key by
//! its place in `CONSOLE_API_KEYS`, when it expires, and a MAC made with that key, so
//! any replica that knows the keys checks it and removing a key ends its sessions.
//! It also carries a random session id, which logging out revokes (through the
//! console's [`crate::ledger`], so every replica refuses the cookie afterwards).
//! Every form that acts carries a CSRF token derived from the session the same way.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The cookie's name.
pub const COOKIE: &str = "mcp_jobs_console";

/// How long a login lasts.
pub const LIFETIME: chrono::Duration = chrono::Duration::hours(12);

/// A verified session cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The key's place in `CONSOLE_API_KEYS`.
    pub index: usize,
    /// Random, 128 bits: what logging out revokes.
    pub id: String,
    pub expires: DateTime<Utc>,
}

/// Makes the cookie value for the key at `index`: `<index>.<expires>.<id>.<mac>`.
pub fn issue(keys: &[String], index: usize, now: DateTime<Utc>) -> Option<String> {
    let expires = (now + LIFETIME).timestamp();
    let id = random_id();
    let claim = format!("{index}.{expires}.{id}");
    let mac = hex(&mac(keys.get(index)?, "session", &claim));
    Some(format!("{claim}.{mac}"))
}

/// The session a cookie value stands for, if it is one [`issue`] made, unexpired.
pub fn verify(keys: &[String], cookie: &str, now: DateTime<Utc>) -> Option<Session> {
    let (claim, presented) = cookie.rsplit_once('.')?;
    let mut parts = claim.split('.');
    let (Some(index), Some(expires), Some(id), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let index: usize = index.parse().ok()?;
    let expires = DateTime::from_timestamp(expires.parse().ok()?, 0)?;
    let presented = unhex(presented)?;
    let mut check = keyed(keys.get(index)?, "session");
    check.update(claim.as_bytes());
    check.verify_slice(&presented).ok()?;
    (now < expires).then(|| Session {
        index,
        id: id.to_owned(),
        expires,
    })
}

/// A one-time token for an action form: a resubmitted form carries the same one and
/// is not acted on twice.
pub fn form_token() -> String {
    random_id()
}

/// 128 random bits, in hex: unguessable.
fn random_id() -> String {
    hex(&rand::random::<[u8; 16]>())
}

/// The CSRF token of a session: forms carry it, actions compare it.
pub fn csrf_token(keys: &[String], index: usize, cookie: &str) -> String {
    keys.get(index)
        .map(|key| hex(&mac(key, "csrf", cookie)))
        .unwrap_or_default()
}

/// The value of the session cookie in a `Cookie` header, if any.
pub fn from_header(cookies: &str) -> Option<&str> {
    cookies
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
}

/// `Set-Cookie` for a session (`Secure` unless the console is told it serves plain
/// HTTP to hosts other than localhost).
pub fn set_cookie(value: &str, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        LIFETIME.num_seconds()
    )
}

/// `Set-Cookie` that ends the session in this browser.
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// A MAC keyed by the API key, separated by purpose so a session MAC is never a
/// valid CSRF token or the other way round.
fn keyed(key: &str, purpose: &str) -> Hmac<Sha256> {
    // HMAC takes keys of any length.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(purpose.as_bytes());
    mac.update(b"\0");
    mac
}

fn mac(key: &str, purpose: &str, data: &str) -> Vec<u8> {
    let mut mac = keyed(key, purpose);
    mac.update(data.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Vec<String> {
        vec!["first-key".into(), "second-key".into()]
    }

    #[test]
    fn a_session_names_its_key_until_it_expires() {
        let now = Utc::now();
        let cookie = issue(&keys(), 1, now).unwrap_or_default();
        assert_eq!(verify(&keys(), &cookie, now).map(|s| s.index), Some(1));
        assert_eq!(verify(&keys(), &cookie, now + LIFETIME), None);
        // Two logins in the same second are two sessions.
        let again = issue(&keys(), 1, now).unwrap_or_default();
        assert_ne!(
            verify(&keys(), &again, now).map(|s| s.id),
            verify(&keys(), &cookie, now).map(|s| s.id)
        );
        // Removing the key ends its sessions; another key's MAC does not fit.
        assert_eq!(verify(&keys()[..1], &cookie, now), None);
        let forged = cookie.replacen("1.", "0.", 1);
        assert_eq!(verify(&keys(), &forged, now), None);
        let longer = cookie.replacen('.', "9.", 1);
        assert_eq!(verify(&keys(), &longer, now), None);
        assert_eq!(verify(&keys(), "garbage", now), None);
    }

    #[test]
    fn csrf_tokens_belong_to_one_session() {
        let now = Utc::now();
        let cookie = issue(&keys(), 0, now).unwrap_or_default();
        let token = csrf_token(&keys(), 0, &cookie);
        assert_eq!(token, csrf_token(&keys(), 0, &cookie));
        let other = issue(&keys(), 1, now).unwrap_or_default();
        assert_ne!(csrf_token(&keys(), 1, &other), token);
        // The session MAC itself is not the CSRF token.
        let session_mac = cookie.rsplit_once('.').map(|(_, m)| m).unwrap_or_default();
        assert_ne!(session_mac, token);
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        assert_eq!(
            from_header("a=1; mcp_jobs_console=x.y.z; b=2"),
            Some("x.y.z")
        );
        assert_eq!(from_header("a=1"), None);
        let set = set_cookie("v", true);
        assert!(
            set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("Secure")
        );
    }
}
