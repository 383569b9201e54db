//! ServiceAccount tokens for projected volumes (upstream `pkg/kubelet/token`): requested
//! through the TokenRequest API bound to the pod, cached, and renewed once 80% of their
//! lifetime has passed (or after 24 hours), with a few seconds of jitter.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use serde_json::{json, Value};

/// Upstream's `maxTTL`: tokens older than this are renewed whatever their expiry.
const MAX_TTL: Duration = Duration::from_secs(24 * 3600);
/// Upstream's `maxJitter`.
const MAX_JITTER: Duration = Duration::from_secs(10);

/// What a token is requested for.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct TokenKey {
    /// The pod's namespace.
    pub namespace: String,
    /// The ServiceAccount.
    pub service_account: String,
    /// The audience (empty: the API server's).
    pub audience: String,
    /// `expirationSeconds` asked for.
    pub expiration_seconds: i64,
    /// The pod it is bound to.
    pub pod_name: String,
    /// The pod's uid.
    pub pod_uid: String,
}

/// A token and its lifetime.
#[derive(Clone, Debug)]
pub struct CachedToken {
    /// The JWT.
    pub token: String,
    /// When it was issued (expiry minus the requested lifetime, as upstream computes).
    pub issued: SystemTime,
    /// When it expires.
    pub expires: SystemTime,
}

/// Upstream's `requiresRefresh`: past 80% of the requested lifetime, or older than 24 h.
pub fn requires_refresh(
    token: &CachedToken,
    requested: Duration,
    now: SystemTime,
    jitter: Duration,
) -> bool {
    if now + jitter >= token.issued + MAX_TTL {
        return true;
    }
    let margin = requested / 5;
    now + jitter + margin >= token.expires
}

/// The kubelet's token cache.
pub struct TokenManager {
    client: kube::Client,
    cache: Mutex<HashMap<TokenKey, CachedToken>>,
}

impl TokenManager {
    /// A manager requesting tokens with `client`.
    pub fn new(client: kube::Client) -> Self {
        TokenManager {
            client,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The token for `key`, requested anew when the cached one needs a refresh.
    pub async fn get(&self, key: &TokenKey) -> Result<String, String> {
        let requested = Duration::from_secs(key.expiration_seconds.max(0) as u64);
        let jitter = MAX_JITTER.mul_f64(rand::random::<f64>());
        if let Some(t) = self.cache.lock().unwrap().get(key) {
            if !requires_refresh(t, requested, SystemTime::now(), jitter) {
                return Ok(t.token.clone());
            }
        }
        match self.request(key).await {
            Ok(t) => {
                let token = t.token.clone();
                self.cache.lock().unwrap().insert(key.clone(), t);
                Ok(token)
            }
            Err(e) => {
                // A still-valid cached token keeps serving while renewal fails.
                if let Some(t) = self.cache.lock().unwrap().get(key) {
                    if SystemTime::now() < t.expires {
                        tracing::warn!(error = %e, "token renewal failed; keeping the current token");
                        return Ok(t.token.clone());
                    }
                }
                Err(format!("failed to fetch token: {e}"))
            }
        }
    }

    /// Forgets the tokens of a removed pod.
    pub fn forget_pod(&self, pod_uid: &str) {
        self.cache
            .lock()
            .unwrap()
            .retain(|k, _| k.pod_uid != pod_uid);
    }

    async fn request(&self, key: &TokenKey) -> Result<CachedToken, String> {
        let audiences: Vec<&str> = if key.audience.is_empty() {
            Vec::new()
        } else {
            vec![key.audience.as_str()]
        };
        let body = json!({
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {
                "audiences": audiences,
                "expirationSeconds": key.expiration_seconds,
                "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": key.pod_name, "uid": key.pod_uid},
            },
        });
        let path = format!(
            "/api/v1/namespaces/{}/serviceaccounts/{}/token",
            key.namespace, key.service_account
        );
        let request = http::Request::post(path)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(serde_json::to_vec(&body).unwrap_or_default())
            .map_err(|e| e.to_string())?;
        let response: Value = self.client.request(request).await.map_err(|e| match e {
            kube::Error::Api(s) => s.message,
            e => e.to_string(),
        })?;
        let token = response
            .pointer("/status/token")
            .and_then(Value::as_str)
            .ok_or("no token in the TokenRequest response")?
            .to_string();
        let expires = response
            .pointer("/status/expirationTimestamp")
            .and_then(Value::as_str)
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| SystemTime::UNIX_EPOCH + Duration::from_secs(t.timestamp().max(0) as u64))
            .ok_or("no expirationTimestamp in the TokenRequest response")?;
        let issued = expires
            .checked_sub(Duration::from_secs(key.expiration_seconds.max(0) as u64))
            .unwrap_or(SystemTime::UNIX_EPOCH);
        Ok(CachedToken {
            token,
            issued,
            expires,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_at_eighty_percent_or_a_day() {
        let issued = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let hour = Duration::from_secs(3600);
        let t = CachedToken {
            token: "t".into(),
            issued,
            expires: issued + hour,
        };
        let none = Duration::ZERO;
        assert!(!requires_refresh(
            &t,
            hour,
            issued + hour.mul_f64(0.79),
            none
        ));
        assert!(requires_refresh(
            &t,
            hour,
            issued + hour.mul_f64(0.81),
            none
        ));
        // Jitter brings it forward.
        assert!(requires_refresh(
            &t,
            hour,
            issued + hour.mul_f64(0.79),
            Duration::from_secs(60)
        ));
        // An extended (one-year) token is still renewed after a day.
        let long = CachedToken {
            expires: issued + hour * 24 * 365,
            ..t
        };
        assert!(!requires_refresh(&long, hour, issued + hour * 23, none));
        assert!(requires_refresh(&long, hour, issued + hour * 24, none));
    }
}
