//! The `Faas-Signature` of a callback: `t=<unix seconds>,v1=<hex HMAC-SHA256>` of
//! `"<t>.<raw body>"`, keyed by the bytes of the owner's callback key text.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "faas-signature";
/// The header naming the execution.
pub const EXECUTION_ID_HEADER: &str = "faas-execution-id";

/// The `Faas-Signature` value of `body` sent at `t` (unix seconds).
pub fn signature(key: &str, t: i64, body: &[u8]) -> String {
    format!("t={t},v1={}", hex::encode(mac(key, t, body)))
}

fn mac(key: &str, t: i64, body: &[u8]) -> Vec<u8> {
    // HMAC takes a key of any length: this cannot fail.
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    m.update(t.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    m.finalize().into_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_an_independent_hmac() {
        // python3: hmac.new(b"k3y", b'1700000000.{"id":"e1"}', hashlib.sha256).hexdigest()
        assert_eq!(
            signature("k3y", 1_700_000_000, br#"{"id":"e1"}"#),
            "t=1700000000,v1=c42a3ef4d6ea300d148480ff9919eff074ce550325cfaccd070778d56133fd46"
        );
        assert_ne!(
            signature("k3y", 1_700_000_001, br#"{"id":"e1"}"#),
            signature("k3y", 1_700_000_000, br#"{"id":"e1"}"#)
        );
    }
}
