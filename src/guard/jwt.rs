//! Verification of the bearer JWT that names a guarded route's caller. Signatures are checked by
//! the `jsonwebtoken` crate; the token's JSON is read by the guard's strict reader first, so a
//! repeated name (`{"sub":"2","sub":"3"}`, or names differing only in case) is refused rather
//! than resolved one way here and another way in the backend.
//!
//! Decisions: the header's `alg` must be exactly the configured algorithm (never `none`, never
//! another family); `crit` is refused, since no extension is understood (RFC 7515 §4.1.11);
//! `kid` picks the key of a JWKS file and must name one of its keys when the set holds several;
//! `exp` and `nbf`, when present, must be non-negative integers, and are checked without leeway.

use super::body::scan_json;
use base64::Engine;
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::{Map, Value};
use std::path::PathBuf;
use std::str::FromStr;

/// Why the configured JWT key material cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum JwtKeyError {
    /// The secret's environment variable is not set.
    #[error("guard.identity.jwt_secret_env: {0} is not set (the JWT secret)")]
    SecretUnset(String),
    /// The secret's environment variable is empty.
    #[error("guard.identity.jwt_secret_env: {0} is empty; an empty HMAC secret would let anyone sign tokens")]
    SecretEmpty(String),
    /// An HMAC algorithm configured with a public key file.
    #[error("guard.identity: {0:?} is verified with jwt_secret_env, not a public key")]
    SecretAlgorithm(Algorithm),
    /// The key file cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    Unreadable {
        /// The key file.
        path: PathBuf,
        /// The read error.
        source: std::io::Error,
    },
    /// The key file is not a PEM public key of the algorithm's family.
    #[error("{}: not a {algorithm:?} public key in PEM form: {source}", path.display())]
    NotPem {
        /// The key file.
        path: PathBuf,
        /// The configured algorithm.
        algorithm: Algorithm,
        /// Why the key was refused.
        source: jsonwebtoken::errors::Error,
    },
    /// The JWKS file holds no usable key.
    #[error("{}: {source}", path.display())]
    Jwks {
        /// The JWKS file.
        path: PathBuf,
        /// What is wrong with its content.
        source: JwksError,
    },
}

/// What is wrong with a JWKS document.
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    /// Not a JSON Web Key Set.
    #[error("not a JWKS: {0}")]
    NotJwks(serde_json::Error),
    /// A key of the right family that cannot be used.
    #[error("unusable key: {0}")]
    UnusableKey(jsonwebtoken::errors::Error),
    /// No key of the algorithm's family.
    #[error("no key in the set can verify {0:?}")]
    NoFittingKey(Algorithm),
}

/// Why a bearer token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not three dot-separated segments.
    #[error("not a JWT")]
    NotJwt,
    /// A segment (`header` or `payload`) that is not base64url.
    #[error("the {0} is not base64url")]
    NotBase64(&'static str),
    /// A segment that decodes to JSON other than an object.
    #[error("the {0} is not a JSON object")]
    NotObject(&'static str),
    /// A segment whose JSON the strict reader refuses (repeated names, malformed).
    #[error("the {part} is ambiguous or malformed: {why}")]
    Ambiguous {
        /// `header` or `payload`.
        part: &'static str,
        /// What the strict reader refused.
        why: String,
    },
    /// The header's `alg` is not the configured algorithm.
    #[error("only {0:?} is accepted")]
    Algorithm(Algorithm),
    /// The header names critical extensions.
    #[error("the header names critical extensions (crit), none is supported")]
    Critical,
    /// The header's `kid` is not a string.
    #[error("kid is not a string")]
    KidNotString,
    /// No key has the token's `kid`.
    #[error("no key has kid {0:?}")]
    UnknownKid(String),
    /// The key set holds several keys and the token names none.
    #[error("the token has no kid and the key set holds several keys")]
    NoKid,
    /// The signature does not verify.
    #[error("signature mismatch")]
    Signature,
    /// `exp` has passed.
    #[error("expired")]
    Expired,
    /// `nbf` has not come yet.
    #[error("not yet valid")]
    NotYetValid,
    /// `exp` or `nbf` is not a non-negative integer.
    #[error("{0} is not a non-negative integer")]
    TimeClaim(&'static str),
}

/// Where the verification key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwtKey {
    /// An HMAC secret held in this environment variable (HS256, HS384, HS512).
    SecretEnv(String),
    /// A PEM public key (RSA, EC or Ed25519).
    PublicKeyFile(PathBuf),
    /// A JWKS document; the token's `kid` selects the key.
    JwksFile(PathBuf),
}

/// The validated JWT settings of `[guard.identity]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtSettings {
    /// The one algorithm tokens must be signed with.
    pub algorithm: Algorithm,
    /// The verification key.
    pub key: JwtKey,
}

/// Parses an algorithm name as the config spells it (`"HS256"`, `"RS256"`, `"ES256"`, ...).
pub fn parse_algorithm(name: &str) -> Option<Algorithm> {
    Algorithm::from_str(name).ok()
}

/// Whether `algorithm` is verified with a shared secret (rather than a public key).
pub fn is_hmac(algorithm: Algorithm) -> bool {
    matches!(
        algorithm,
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
    )
}

/// Loaded keys and the algorithm they verify.
pub struct JwtVerifier {
    algorithm: Algorithm,
    keys: Vec<(Option<String>, DecodingKey)>,
}

impl JwtVerifier {
    /// Loads the key material: reads the secret variable or the key file. Refuses an unset or
    /// empty secret, an unreadable file and keys of another family than the algorithm.
    pub fn load(settings: &JwtSettings) -> Result<JwtVerifier, JwtKeyError> {
        let algorithm = settings.algorithm;
        let keys = match &settings.key {
            JwtKey::SecretEnv(var) => {
                let secret =
                    std::env::var(var).map_err(|_| JwtKeyError::SecretUnset(var.clone()))?;
                if secret.is_empty() {
                    return Err(JwtKeyError::SecretEmpty(var.clone()));
                }
                vec![(None, DecodingKey::from_secret(secret.as_bytes()))]
            }
            JwtKey::PublicKeyFile(path) => {
                let pem = read(path)?;
                let key = match family(algorithm) {
                    Family::Rsa => DecodingKey::from_rsa_pem(&pem),
                    Family::Ec => DecodingKey::from_ec_pem(&pem),
                    Family::Ed => DecodingKey::from_ed_pem(&pem),
                    Family::Hmac => return Err(JwtKeyError::SecretAlgorithm(algorithm)),
                }
                .map_err(|source| JwtKeyError::NotPem {
                    path: path.clone(),
                    algorithm,
                    source,
                })?;
                vec![(None, key)]
            }
            JwtKey::JwksFile(path) => {
                jwks(&read(path)?, algorithm).map_err(|source| JwtKeyError::Jwks {
                    path: path.clone(),
                    source,
                })?
            }
        };
        Ok(JwtVerifier { algorithm, keys })
    }

    /// Verifies `token` at Unix time `now` and returns its claims, or says why it was refused.
    pub fn verify(&self, token: &str, now: u64) -> Result<Map<String, Value>, TokenError> {
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::NotJwt);
        };
        let header = strict_object(h, "header")?;
        let alg = header.get("alg").and_then(Value::as_str);
        if alg.and_then(parse_algorithm) != Some(self.algorithm) {
            return Err(TokenError::Algorithm(self.algorithm));
        }
        if header.contains_key("crit") {
            return Err(TokenError::Critical);
        }
        let kid = match header.get("kid") {
            None => None,
            Some(Value::String(k)) => Some(k.as_str()),
            Some(_) => return Err(TokenError::KidNotString),
        };
        let key = self.key_for(kid)?;
        let claims = strict_object(p, "payload")?;
        let message = &token[..h.len() + 1 + p.len()];
        match jsonwebtoken::crypto::verify(s, message.as_bytes(), key, self.algorithm) {
            Ok(true) => {}
            _ => return Err(TokenError::Signature),
        }
        if time_claim(&claims, "exp")?.is_some_and(|exp| now >= exp) {
            return Err(TokenError::Expired);
        }
        if time_claim(&claims, "nbf")?.is_some_and(|nbf| now < nbf) {
            return Err(TokenError::NotYetValid);
        }
        Ok(claims)
    }

    fn key_for(&self, kid: Option<&str>) -> Result<&DecodingKey, TokenError> {
        if let [(key_id, key)] = self.keys.as_slice() {
            return match (key_id, kid) {
                (Some(have), Some(want)) if have != want => {
                    Err(TokenError::UnknownKid(want.to_owned()))
                }
                _ => Ok(key),
            };
        }
        let want = kid.ok_or(TokenError::NoKid)?;
        self.keys
            .iter()
            .find(|(id, _)| id.as_deref() == Some(want))
            .map(|(_, key)| key)
            .ok_or_else(|| TokenError::UnknownKid(want.to_owned()))
    }
}

/// The keys of a JWKS document that can verify `algorithm`.
fn jwks(
    bytes: &[u8],
    algorithm: Algorithm,
) -> Result<Vec<(Option<String>, DecodingKey)>, JwksError> {
    let set: JwkSet = serde_json::from_slice(bytes).map_err(JwksError::NotJwks)?;
    let mut keys = Vec::new();
    for jwk in &set.keys {
        let fits = matches!(
            (&jwk.algorithm, family(algorithm)),
            (AlgorithmParameters::RSA(_), Family::Rsa)
                | (AlgorithmParameters::EllipticCurve(_), Family::Ec)
                | (AlgorithmParameters::OctetKeyPair(_), Family::Ed)
        );
        if fits {
            let key = DecodingKey::from_jwk(jwk).map_err(JwksError::UnusableKey)?;
            keys.push((jwk.common.key_id.clone(), key));
        }
    }
    if keys.is_empty() {
        return Err(JwksError::NoFittingKey(algorithm));
    }
    Ok(keys)
}

enum Family {
    Hmac,
    Rsa,
    Ec,
    Ed,
}

fn family(algorithm: Algorithm) -> Family {
    match algorithm {
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => Family::Hmac,
        Algorithm::ES256 | Algorithm::ES384 => Family::Ec,
        Algorithm::EdDSA => Family::Ed,
        _ => Family::Rsa,
    }
}

fn read(path: &PathBuf) -> Result<Vec<u8>, JwtKeyError> {
    std::fs::read(path).map_err(|source| JwtKeyError::Unreadable {
        path: path.clone(),
        source,
    })
}

/// A base64url segment holding a JSON object without repeated or escaped names.
fn strict_object(segment: &str, part: &'static str) -> Result<Map<String, Value>, TokenError> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| TokenError::NotBase64(part))?;
    match scan_json(&bytes, bytes.len()) {
        Ok(scan) => match scan.value {
            Value::Object(map) => Ok(map),
            _ => Err(TokenError::NotObject(part)),
        },
        Err(e) => Err(TokenError::Ambiguous {
            part,
            why: e.to_string(),
        }),
    }
}

/// A NumericDate claim: absent, or a non-negative integer (anything else refuses the token).
fn time_claim(claims: &Map<String, Value>, name: &'static str) -> Result<Option<u64>, TokenError> {
    match claims.get(name) {
        None => Ok(None),
        Some(v) => v.as_u64().map(Some).ok_or(TokenError::TimeClaim(name)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{encode, EncodingKey, Header};
    use serde_json::json;

    const SECRET: &str = "unit-test-secret";

    fn hs256() -> JwtVerifier {
        JwtVerifier {
            algorithm: Algorithm::HS256,
            keys: vec![(None, DecodingKey::from_secret(SECRET.as_bytes()))],
        }
    }

    fn sign(claims: &Value) -> String {
        let key = EncodingKey::from_secret(SECRET.as_bytes());
        encode(&Header::new(Algorithm::HS256), claims, &key).unwrap()
    }

    /// A token with hand-written header and payload JSON, signed with the test secret.
    fn sign_raw(header: &str, payload: &str) -> String {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let message = format!("{}.{}", b64.encode(header), b64.encode(payload));
        let key = EncodingKey::from_secret(SECRET.as_bytes());
        let sig = jsonwebtoken::crypto::sign(message.as_bytes(), &key, Algorithm::HS256).unwrap();
        format!("{message}.{sig}")
    }

    #[test]
    fn a_valid_token_gives_its_claims() {
        let t = sign(&json!({"sub": 7, "team": "acme", "exp": 2000, "nbf": 10}));
        let claims = hs256().verify(&t, 1000).unwrap();
        assert_eq!(claims["sub"], 7);
    }

    #[test]
    fn forged_expired_early_and_other_algorithms_are_refused() {
        let v = hs256();
        let t = sign(&json!({"sub": "7"}));
        let mut forged = t.clone();
        forged.push('x');
        assert!(v.verify(&forged, 0).is_err());
        assert!(v.verify(&sign(&json!({"exp": 10})), 10).is_err());
        assert!(v.verify(&sign(&json!({"nbf": 11})), 10).is_err());
        assert!(v
            .verify(&sign_raw(r#"{"alg":"none"}"#, r#"{"sub":"7"}"#), 0)
            .is_err());
        assert!(v
            .verify(&sign_raw(r#"{"alg":"HS512"}"#, r#"{"sub":"7"}"#), 0)
            .is_err());
        assert!(v.verify("a.b", 0).is_err());
    }

    #[test]
    fn time_claims_must_be_non_negative_integers() {
        let v = hs256();
        for bad in [
            json!(2e9),
            json!(-1),
            json!("9999999999"),
            json!(true),
            json!(null),
        ] {
            for claim in ["exp", "nbf"] {
                let t = sign(&json!({"sub": "7", claim: bad.clone()}));
                assert!(v.verify(&t, 0).is_err(), "{claim} = {bad}");
            }
        }
    }

    #[test]
    fn repeated_names_and_crit_are_refused() {
        let v = hs256();
        let ok = sign_raw(r#"{"alg":"HS256"}"#, r#"{"sub":"2"}"#);
        assert!(v.verify(&ok, 0).is_ok());
        for (header, payload) in [
            (r#"{"alg":"HS256"}"#, r#"{"sub":"2","sub":"3"}"#),
            (r#"{"alg":"HS256"}"#, r#"{"sub":"2","SUB":"3"}"#),
            (r#"{"alg":"HS256","alg":"HS256"}"#, r#"{"sub":"2"}"#),
            (
                r#"{"alg":"HS256","crit":["b64"],"b64":false}"#,
                r#"{"sub":"2"}"#,
            ),
            (r#"{"alg":"HS256","kid":7}"#, r#"{"sub":"2"}"#),
        ] {
            assert!(
                v.verify(&sign_raw(header, payload), 0).is_err(),
                "{header} {payload}"
            );
        }
    }

    #[test]
    fn an_empty_or_unset_secret_refuses_to_load() {
        let settings = |var: &str| JwtSettings {
            algorithm: Algorithm::HS256,
            key: JwtKey::SecretEnv(var.into()),
        };
        std::env::set_var("SCIMGATE_UNIT_EMPTY_JWT_SECRET", "");
        let empty = JwtVerifier::load(&settings("SCIMGATE_UNIT_EMPTY_JWT_SECRET"));
        assert!(matches!(empty, Err(JwtKeyError::SecretEmpty(_))));
        let unset = JwtVerifier::load(&settings("SCIMGATE_UNIT_UNSET_JWT_SECRET"));
        assert!(matches!(unset, Err(JwtKeyError::SecretUnset(_))));
    }

    #[test]
    fn rsa_keys_from_pem_verify_rs256_and_refuse_hs256_confusion() {
        let dir = env!("CARGO_MANIFEST_DIR");
        let public = std::path::Path::new(dir).join("tests/fixtures/jwt/rsa-public.pem");
        let private = include_bytes!("../../tests/fixtures/jwt/rsa-private.pem");
        let verifier = JwtVerifier::load(&JwtSettings {
            algorithm: Algorithm::RS256,
            key: JwtKey::PublicKeyFile(public.clone()),
        })
        .unwrap();
        let signing = EncodingKey::from_rsa_pem(private).unwrap();
        let token = encode(
            &Header::new(Algorithm::RS256),
            &json!({"sub": "9"}),
            &signing,
        )
        .unwrap();
        assert_eq!(verifier.verify(&token, 0).unwrap()["sub"], "9");
        let ps = encode(
            &Header::new(Algorithm::PS256),
            &json!({"sub": "9"}),
            &signing,
        )
        .unwrap();
        assert!(verifier.verify(&ps, 0).is_err());
        // The classic confusion: an HS256 token keyed with the public key's own bytes.
        let pem = std::fs::read(&public).unwrap();
        let confused = encode(
            &Header::new(Algorithm::HS256),
            &json!({"sub": "9"}),
            &EncodingKey::from_secret(&pem),
        )
        .unwrap();
        assert!(verifier.verify(&confused, 0).is_err());
    }

    #[test]
    fn ecdsa_keys_from_pem_and_jwks_verify_and_kid_selects() {
        let pair = rcgen::KeyPair::generate().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let pem = dir.path().join("pub.pem");
        std::fs::write(&pem, pair.public_key_pem()).unwrap();
        let signing = EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes()).unwrap();
        let token = |kid: Option<&str>| {
            let mut h = Header::new(Algorithm::ES256);
            h.kid = kid.map(str::to_string);
            encode(&h, &json!({"sub": "usr_ann"}), &signing).unwrap()
        };
        let from_pem = JwtVerifier::load(&JwtSettings {
            algorithm: Algorithm::ES256,
            key: JwtKey::PublicKeyFile(pem),
        })
        .unwrap();
        assert_eq!(from_pem.verify(&token(None), 0).unwrap()["sub"], "usr_ann");

        let der = pair.public_key_raw();
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let (x, y) = (b64.encode(&der[1..33]), b64.encode(&der[33..65]));
        let jwks = dir.path().join("keys.json");
        let set = json!({"keys": [
            {"kty": "EC", "crv": "P-256", "kid": "a", "x": x, "y": y},
            {"kty": "EC", "crv": "P-256", "kid": "b", "x": x, "y": y},
        ]});
        std::fs::write(&jwks, set.to_string()).unwrap();
        let from_set = JwtVerifier::load(&JwtSettings {
            algorithm: Algorithm::ES256,
            key: JwtKey::JwksFile(jwks),
        })
        .unwrap();
        assert!(from_set.verify(&token(Some("b")), 0).is_ok());
        assert!(from_set.verify(&token(Some("c")), 0).is_err());
        assert!(from_set.verify(&token(None), 0).is_err());
        // An HS256 token signed with the public key's bytes must not pass as ES256.
        assert!(from_pem.verify(&sign(&json!({"sub": "x"})), 0).is_err());
    }
}
